package pop3

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/popa3d/popa3d/internal/testnet"
	"github.com/popa3d/popa3d/mailbox"
)

// recorder is an Observer that keeps what it is given.
type recorder struct {
	mu        sync.Mutex
	events    []Event
	summaries []Summary
}

func (r *recorder) SessionEvent(e Event) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.events = append(r.events, e)
}

func (r *recorder) SessionEnded(s Summary) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.summaries = append(r.summaries, s)
}

// kinds returns the events as "kind/failure" words, without their times.
func (r *recorder) kinds() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var w []string
	for _, e := range r.events {
		s := e.Kind.String()
		if e.Failure != FailureNone {
			s += "/" + e.Failure.String()
		}
		w = append(w, s)
	}
	return strings.Join(w, " ")
}

func TestObserverWholeSession(t *testing.T) {
	rec := &recorder{}
	h := start(t, func(s *Server) {
		s.Observer = rec
		s.Store.(*memStore).commitDelay = 30 * time.Millisecond
	})
	h.login()
	h.send("RETR 2\r\nTOP 1 0\r\nRETR 9\r\nDELE 1\r\nDELE 3\r\nQUIT\r\n")
	h.readAll()
	sum := h.wait()
	if got := rec.kinds(); got != "login_passed message_retrieved mailbox_updated" {
		t.Fatalf("events: %s", got)
	}
	login, retr, upd := rec.events[0], rec.events[1], rec.events[2]
	if login.User != "alice" || login.Time.IsZero() {
		t.Errorf("login event %+v", login)
	}
	if retr.Bytes != 35 {
		t.Errorf("retrieved %d bytes, want 35 (LIST's size of message 2)", retr.Bytes)
	}
	if upd.Count != 2 || upd.Bytes != 26+34 || upd.Duration < 30*time.Millisecond {
		t.Errorf("update event %+v", upd)
	}
	if len(rec.summaries) != 1 || rec.summaries[0] != sum {
		t.Fatalf("summaries %+v, Serve returned %+v", rec.summaries, sum)
	}
	if sum.User != "alice" || !sum.Authenticated || sum.RemoteAddr != "192.0.2.1" || sum.Failure != FailureNone ||
		sum.Retrieved != 1 || sum.Deleted != 2 || sum.UpdateTime != upd.Duration || sum.BytesSent == 0 {
		t.Errorf("summary %+v", sum)
	}
}

func TestObserverFailures(t *testing.T) {
	for _, tc := range []struct {
		name, input string
		mod         func(*Server)
		events      string
		user        string // in the failure event
	}{
		{"bad password", "USER alice\r\nPASS wrong\r\n", nil, "login_failed/bad_password", "alice"},
		{"unknown user", "USER wrong\r\nPASS wrong\r\n", nil, "login_failed/unknown_user", ""},
		{"unavailable", "USER alice\r\nPASS wrong\r\n", func(s *Server) { s.Auth = errAuth{errors.New("wrong: down")} }, "login_failed/auth_unavailable", ""},
		{"in use", "USER alice\r\nPASS secret pw\r\n", func(s *Server) { s.Store.(*memStore).openEr = mailbox.ErrInUse },
			"login_passed mailbox_load_failed/mailbox_in_use", "alice"},
		{"refused", "USER alice\r\nPASS secret pw\r\n", func(s *Server) {
			s.Store.(*memStore).openEr = &mailbox.LoadError{Location: "alice", Err: mailbox.ErrFormat}
		}, "login_passed mailbox_load_failed/mailbox_refused", "alice"},
		{"unavailable mailbox", "USER alice\r\nPASS secret pw\r\n", func(s *Server) {
			s.Store.(*memStore).openEr = &mailbox.LoadError{Location: "alice", Err: fmt.Errorf("read: %w", context.DeadlineExceeded)}
		}, "login_passed mailbox_load_failed/mailbox_unavailable", "alice"},
		{"changed at update", "USER alice\r\nPASS secret pw\r\nDELE 1\r\nQUIT\r\n", func(s *Server) { s.Store.(*memStore).staleCommit = true },
			"login_passed mailbox_updated/mailbox_changed", ""},
		{"changed at retr", "USER alice\r\nPASS secret pw\r\nRETR 1\r\n", func(s *Server) { s.Store.(*memStore).staleOpen = true },
			"login_passed", ""},
		{"no login", "USER alice\r\nQUIT\r\n", nil, "", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rec := &recorder{}
			h := start(t, func(s *Server) {
				s.Observer = rec
				if tc.mod != nil {
					tc.mod(s)
				}
			})
			h.send(tc.input)
			h.readAll()
			sum := h.wait()
			if got := rec.kinds(); got != tc.events {
				t.Fatalf("events %q, want %q", got, tc.events)
			}
			last := Event{}
			if len(rec.events) > 0 {
				last = rec.events[len(rec.events)-1]
			}
			if last.Failure != FailureNone && last.User != tc.user {
				t.Errorf("failure event names %q, want %q", last.User, tc.user)
			}
			if want := last.Failure; tc.name == "changed at retr" {
				if sum.Failure != FailureMailboxChanged {
					t.Errorf("summary failure %v, want mailbox_changed", sum.Failure)
				}
			} else if sum.Failure != want {
				t.Errorf("summary failure %v, want %v", sum.Failure, want)
			}
			// Nothing the client sent as a password reaches an observer.
			all := fmt.Sprintf("%+v %+v", rec.events, rec.summaries)
			if strings.Contains(all, "wrong") || strings.Contains(all, "secret") {
				t.Errorf("observer saw a password: %s", all)
			}
		})
	}
}

// Authorize reports nothing: the login happens in ServeLogin, which does.
func TestObserverHandoff(t *testing.T) {
	rec := &recorder{}
	c, s := testnet.SocketPair(t)
	srv := testServer(newMemStore(testBoxes), &logCapture{})
	srv.Observer = rec
	c.Write([]byte("USER alice\r\nPASS secret pw\r\nQUIT\r\n"))
	creds, err := srv.Authorize(context.Background(), s, ConnInfo{})
	if err != nil {
		t.Fatal(err)
	}
	if got := rec.kinds(); got != "" || len(rec.summaries) != 0 {
		t.Fatalf("Authorize reported %q %v", got, rec.summaries)
	}
	srv.ServeLogin(context.Background(), s, ConnInfo{}, creds)
	if got := rec.kinds(); got != "login_passed mailbox_updated" || len(rec.summaries) != 1 {
		t.Fatalf("ServeLogin reported %q %v", got, rec.summaries)
	}
}

// The summary line is written by the built-in observer, with or without
// Server.Observer, and reads as it always has.
func TestSummaryLogLine(t *testing.T) {
	for _, tc := range []struct {
		input, want string
	}{
		{"USER alice\r\nPASS secret pw\r\nRETR 1\r\nDELE 2\r\nQUIT\r\n",
			`level=INFO msg="Session summary" user=alice from=192.0.2.1 retrieved=1 deleted=1 bytes_sent=59 duration=0s`},
		{"USER alice\r\nPASS nope\r\n",
			`level=INFO msg="Session summary" user="" from=192.0.2.1 retrieved=0 deleted=0 bytes_sent=61 duration=0s`},
	} {
		for _, obs := range []Observer{nil, &recorder{}} {
			var buf bytes.Buffer
			c, s := testnet.SocketPair(t)
			srv := testServer(newMemStore(testBoxes), &logCapture{})
			srv.Observer = obs
			srv.Logger = slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{ReplaceAttr: func(_ []string, a slog.Attr) slog.Attr {
				if a.Key == slog.TimeKey {
					return slog.Attr{}
				}
				return a
			}}))
			// A stopped clock makes the duration 0s; without deadlines, the
			// stopped clock cannot time a read out.
			t0 := time.Unix(1000, 0)
			srv.Now = func() time.Time { return t0 }
			srv.Limits.IdleTimeout, srv.Limits.PreAuthTime, srv.Limits.WriteTimeout = 0, 0, 0
			c.Write([]byte(tc.input))
			srv.Serve(context.Background(), s, ConnInfo{RemoteAddr: "192.0.2.1"})
			var got []string
			for _, l := range strings.Split(buf.String(), "\n") {
				if strings.Contains(l, "Session summary") {
					got = append(got, l)
				}
			}
			if len(got) != 1 || got[0] != tc.want {
				t.Errorf("observer %T: summary lines %q, want %q", obs, got, tc.want)
			}
		}
	}
}
