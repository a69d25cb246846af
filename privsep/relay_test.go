package privsep

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/popa3d/popa3d/auth"
	"github.com/popa3d/popa3d/auth/system/systemtest"
	"github.com/popa3d/popa3d/mailbox"
	"github.com/popa3d/popa3d/pop3"
)

// The relay is tested with real processes: the test binary re-executes
// itself as a root session process (sessionRole) running Runner.Serve on a
// real TCP connection, which re-executes it as the pre-auth process
// (preauthRole), chrooted and unprivileged, exactly as the program does.

// testConfigEnv carries a testConfig to the re-executed roles.
const testConfigEnv = "PRIVSEP_TEST_CONFIG"

type testConfig struct {
	JailDir          string
	JailUID, JailGID int
	UserUID, UserGID int
	Relay            bool
	Idle, Write      time.Duration
}

// testUser and testPassword log in; any other password fails.
const (
	testUser     = "ppspuser"
	testPassword = "relay password"
)

// testMessages is the mailbox every session serves: a short message, one
// with a line that needs dot-stuffing, and one bigger than any socket
// buffer (for the stalled client).
var testMessages = []string{
	"From: a@example.org\nSubject: one\n\nHello\n",
	"Subject: two\n\n.leading dot\n" + strings.Repeat("line of text\n", 5000),
	"Subject: three\n\n" + strings.Repeat(strings.Repeat("x", 99)+"\n", 40000),
}

func loadTestConfig() testConfig {
	var c testConfig
	if err := json.Unmarshal([]byte(os.Getenv(testConfigEnv)), &c); err != nil {
		fmt.Fprintln(os.Stderr, "test config:", err)
		os.Exit(2)
	}
	return c
}

func (c testConfig) limits() pop3.Limits {
	lim := pop3.DefaultLimits()
	lim.IdleTimeout, lim.WriteTimeout, lim.AuthFailureDelay = c.Idle, c.Write, 0
	return lim
}

// sessionRole is the root session process: Runner.Serve on stdin/stdout.
func sessionRole() int {
	cfg := loadTestConfig()
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	r := &Runner{
		PreauthCommand: func() *exec.Cmd {
			cmd := exec.Command(os.Args[0])
			cmd.Env = []string{testRoleEnv + "=preauth", testConfigEnv + "=" + os.Getenv(testConfigEnv)}
			cmd.Stderr = os.Stderr
			return cmd
		},
		Auth:      testAuth{uid: cfg.UserUID, gid: cfg.UserGID},
		Jail:      Jail{UID: cfg.JailUID, GID: cfg.JailGID, Dir: cfg.JailDir},
		MailGroup: -1,
		Server:    &pop3.Server{Limits: cfg.limits(), Logger: log},
		Relay:     cfg.Relay,
	}
	setTestStore(r)
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM)
	defer stop()
	connect := func() (io.ReadWriter, error) { return net.FileConn(os.Stdin) }
	if err := r.Serve(ctx, os.Stdin, os.Stdout, connect, pop3.ConnInfo{RemoteAddr: "127.0.0.1"}); err != nil {
		log.Error(err.Error())
		return 1
	}
	return 0
}

// preauthRole is the pre-auth process, as cmd/popa3d runs it.
func preauthRole() int {
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	if err := CloseInherited(PreauthDescriptors()...); err != nil {
		log.Error(err.Error())
		return 1
	}
	cfg := loadTestConfig()
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM)
	defer stop()
	jail := Jail{UID: cfg.JailUID, GID: cfg.JailGID, Dir: cfg.JailDir}
	srv := &pop3.Server{Limits: cfg.limits(), Logger: log}
	connect := func() (io.ReadWriter, pop3.ConnInfo, error) {
		c, err := net.FileConn(os.Stdin)
		return c, pop3.ConnInfo{}, err
	}
	if err := preauthSession(ctx, jail, srv, connect, true); err != nil {
		log.Error(err.Error())
		return 1
	}
	return 0
}

// setTestStore wires the session lock and the mailbox store.
func setTestStore(r *Runner) {
	r.Lock = mailbox.LockerFunc(func(string) (io.Closer, error) { return io.NopCloser(nil), nil })
	r.NewStore = func(auth.Identity, mailbox.Locker) (mailbox.Store, error) {
		return memStore{}, nil
	}
}

type testAuth struct{ uid, gid int }

func (a testAuth) Authenticate(_ context.Context, user, password string) (auth.Identity, error) {
	if user != testUser || password != testPassword {
		return auth.Identity{}, auth.ErrFailed
	}
	return auth.Identity{Name: user, UID: a.uid, GID: a.gid, Mailbox: "memory"}, nil
}

// memStore serves testMessages; Commit reports the deletions on stderr.
type memStore struct{}

func (memStore) Open(context.Context, string) (mailbox.Mailbox, error) { return memMailbox{}, nil }

type memMailbox struct{}

func (memMailbox) Location() string { return "memory" }

func (memMailbox) Messages() []mailbox.Message {
	var ms []mailbox.Message
	for i, m := range testMessages {
		ms = append(ms, mailbox.Message{Size: int64(len(m) + strings.Count(m, "\n")), UID: fmt.Sprintf("uid%d", i+1)})
	}
	return ms
}

func (memMailbox) Open(_ context.Context, i int) (io.ReadCloser, error) {
	return io.NopCloser(strings.NewReader(testMessages[i])), nil
}

func (memMailbox) Verify(context.Context) error { return nil }

func (memMailbox) Commit(_ context.Context, deleted []int) error {
	fmt.Fprintf(os.Stderr, "COMMIT %v\n", deleted)
	return nil
}

func (memMailbox) Close() error { return nil }

// relayEnv is one test's accounts and jail.
type relayEnvironment struct {
	t   *testing.T
	cfg testConfig
}

func newRelayEnvironment(t *testing.T) *relayEnvironment {
	t.Helper()
	systemtest.RequireRoot(t)
	jail := systemtest.AddUser(t, "ppspjail"+strconv.Itoa(os.Getpid()%1000), "--system")
	user := systemtest.AddUser(t, testUser)
	return &relayEnvironment{t: t, cfg: testConfig{
		JailDir: t.TempDir(), JailUID: jail.UID, JailGID: jail.GID, UserUID: user.UID, UserGID: user.GID,
		Idle: 30 * time.Second, Write: 30 * time.Second,
	}}
}

// testSession is one session process and the client's end of its
// connection.
type testSession struct {
	t      *testing.T
	cmd    *exec.Cmd
	client *net.TCPConn
	r      *bufio.Reader
	log    bytes.Buffer
	done   chan struct{}
}

// start starts a session process with cfg on a fresh TCP connection.
func (e *relayEnvironment) start(cfg testConfig) *testSession {
	t := e.t
	t.Helper()
	ln, err := net.ListenTCP("tcp4", &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	client, err := net.DialTCP("tcp4", nil, ln.Addr().(*net.TCPAddr))
	if err != nil {
		t.Fatal(err)
	}
	server, err := ln.AcceptTCP()
	if err != nil {
		t.Fatal(err)
	}
	f, err := server.File()
	server.Close()
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	b, _ := json.Marshal(cfg)
	s := &testSession{t: t, client: client, r: bufio.NewReader(client), done: make(chan struct{})}
	s.cmd = exec.Command(os.Args[0])
	s.cmd.Env = []string{testRoleEnv + "=session", testConfigEnv + "=" + string(b)}
	s.cmd.Stdin, s.cmd.Stdout, s.cmd.Stderr = f, f, &s.log
	if err := s.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { s.cmd.Wait(); close(s.done) }()
	t.Cleanup(func() {
		client.Close()
		s.cmd.Process.Kill()
		<-s.done
		if t.Failed() {
			t.Logf("session process %d log:\n%s", s.cmd.Process.Pid, s.log.String())
		}
	})
	return s
}

// exchange sends one command and returns its whole response.
func (s *testSession) exchange(cmd string, multi bool) []byte {
	s.t.Helper()
	s.client.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := s.client.Write([]byte(cmd + "\r\n")); err != nil {
		s.t.Fatalf("%s: %v", cmd, err)
	}
	var out []byte
	first := true
	for {
		line, err := s.r.ReadBytes('\n')
		out = append(out, line...)
		if err != nil {
			s.t.Fatalf("%s: %v after %q", cmd, err, out)
		}
		if first && (!multi || !bytes.HasPrefix(line, []byte("+OK"))) || !first && string(line) == ".\r\n" {
			return out
		}
		first = false
	}
}

// greeting reads the greeting.
func (s *testSession) greeting() []byte {
	s.t.Helper()
	s.client.SetReadDeadline(time.Now().Add(10 * time.Second))
	line, err := s.r.ReadBytes('\n')
	if err != nil {
		s.t.Fatalf("greeting: %v", err)
	}
	return line
}

// login logs in and returns the pre-auth process once the session has
// started after the hand-off (0 if it has exited).
func (s *testSession) login() int {
	s.t.Helper()
	s.greeting()
	s.exchange("USER "+testUser, false)
	pre := waitChild(s.t, s.cmd.Process.Pid)
	if r := s.exchange("PASS "+testPassword, false); string(r) != "+OK\r\n" {
		s.t.Fatalf("PASS: %q", r)
	}
	if !running(pre) {
		return 0
	}
	return pre
}

// rest reads until the server closes the connection.
func (s *testSession) rest() []byte {
	s.t.Helper()
	s.client.SetReadDeadline(time.Now().Add(10 * time.Second))
	b, err := io.ReadAll(s.r)
	if err != nil {
		s.t.Errorf("reading to the end: %v", err)
	}
	return b
}

// ended waits up to d for the session process and the pre-auth process
// pre (if not 0) to end, and reports how long it took.
func (s *testSession) ended(pre int, d time.Duration) time.Duration {
	s.t.Helper()
	t0 := time.Now()
	select {
	case <-s.done:
	case <-time.After(d):
		s.t.Fatalf("session process %d still runs after %v", s.cmd.Process.Pid, d)
	}
	for pre != 0 && running(pre) {
		if time.Since(t0) > d {
			s.t.Fatalf("pre-auth process %d still runs after %v", pre, d)
		}
		time.Sleep(10 * time.Millisecond)
	}
	return time.Since(t0)
}

// waitChild returns the child process of pid, waiting for it to appear.
func waitChild(t *testing.T, pid int) int {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		files, _ := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/children", pid))
		for _, f := range files {
			b, _ := os.ReadFile(f)
			if fs := strings.Fields(string(b)); len(fs) > 0 {
				n, _ := strconv.Atoi(fs[0])
				return n
			}
		}
	}
	t.Fatalf("process %d started no child", pid)
	return 0
}

// running reports whether pid is a process that has not ended (a zombie
// has).
func running(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	i := bytes.LastIndexByte(b, ')')
	return i < 0 || i+2 >= len(b) || b[i+2] != 'Z'
}

// TestRelayTranscript runs the same session directly and through the relay,
// one command at a time and all pipelined in one write: the client must see
// the same bytes, the same deletions must be committed, and both processes
// must end when the session does.
func TestRelayTranscript(t *testing.T) {
	e := newRelayEnvironment(t)
	script := []struct {
		cmd   string
		multi bool
	}{
		{"USER " + testUser, false}, {"PASS " + testPassword, false},
		{"STAT", false}, {"LIST", true}, {"UIDL", true}, {"RETR 1", true}, {"RETR 2", true}, {"RETR 3", true},
		{"TOP 2 3", true}, {"DELE 1", false}, {"DELE 2", false}, {"RSET", false}, {"DELE 2", false},
		{"NOOP", false}, {"QUIT", false},
	}
	transcripts := map[string][]byte{}
	for _, pipelined := range []bool{false, true} {
		for _, relay := range []bool{false, true} {
			name := fmt.Sprintf("relay=%v pipelined=%v", relay, pipelined)
			cfg := e.cfg
			cfg.Relay = relay
			s := e.start(cfg)
			got := s.greeting()
			pre := 0
			if pipelined {
				var all []byte
				for _, c := range script {
					all = append(all, c.cmd+"\r\n"...)
				}
				if _, err := s.client.Write(all); err != nil {
					t.Fatal(err)
				}
			} else {
				for i, c := range script {
					if i == 1 {
						pre = waitChild(t, s.cmd.Process.Pid)
					}
					got = append(got, s.exchange(c.cmd, c.multi)...)
				}
			}
			got = append(got, s.rest()...)
			el := s.ended(pre, 10*time.Second)
			t.Logf("%s: %d bytes; both processes ended %v after the last byte", name, len(got), el.Round(time.Millisecond))
			if !strings.Contains(s.log.String(), "COMMIT [1]\n") {
				t.Errorf("%s: no COMMIT [1] in the log:\n%s", name, s.log.String())
			}
			transcripts[name] = got
		}
		direct, relayed := transcripts[fmt.Sprintf("relay=false pipelined=%v", pipelined)], transcripts[fmt.Sprintf("relay=true pipelined=%v", pipelined)]
		if !bytes.Equal(direct, relayed) {
			t.Errorf("pipelined=%v: relayed transcript differs: %d bytes, direct %d", pipelined, len(relayed), len(direct))
		}
		if !bytes.HasSuffix(direct, []byte("+OK\r\n")) || len(direct) < 4000000 {
			t.Errorf("pipelined=%v: direct transcript of %d bytes ends %q", pipelined, len(direct), direct[max(0, len(direct)-40):])
		}
	}
}

// TestRelayEnds: a relayed session ends, both processes with it, when the
// client disconnects, when the client stops reading (write timeout), when it
// stops sending (idle timeout: the session's own, which ends the relay), on
// SIGTERM to the session, and on SIGTERM to the relay.
func TestRelayEnds(t *testing.T) {
	e := newRelayEnvironment(t)
	for _, tc := range []struct {
		name        string
		idle, write time.Duration
		act         func(s *testSession, pre int)
		within      time.Duration
		log         string
	}{
		{"client disconnects", 30 * time.Second, 30 * time.Second, func(s *testSession, _ int) { s.client.Close() },
			3 * time.Second, "Premature disconnect"},
		{"client half-closes", 30 * time.Second, 30 * time.Second, func(s *testSession, _ int) { s.client.CloseWrite() },
			3 * time.Second, "Premature disconnect"},
		{"client stops reading", 30 * time.Second, time.Second, func(s *testSession, _ int) {
			// Longer than the write timeout since AUTHORIZATION's last
			// write, whose deadline the relay must not inherit.
			time.Sleep(1500 * time.Millisecond)
			s.exchange("STAT", false)
			s.client.SetReadBuffer(4096)
			s.client.Write([]byte("RETR 3\r\n"))
		}, 4 * time.Second, "Relay ended: write to the client: "},
		{"client stops sending", time.Second, 30 * time.Second, func(*testSession, int) {},
			6 * time.Second, "Connection timed out"},
		{"SIGTERM to the session", 30 * time.Second, 30 * time.Second, func(s *testSession, _ int) { s.cmd.Process.Signal(syscall.SIGTERM) },
			3 * time.Second, "Session interrupted by shutdown"},
		{"SIGTERM to the relay", 30 * time.Second, 30 * time.Second, func(_ *testSession, pre int) { syscall.Kill(pre, syscall.SIGTERM) },
			3 * time.Second, "Premature disconnect"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := e.cfg
			cfg.Relay, cfg.Idle, cfg.Write = true, tc.idle, tc.write
			s := e.start(cfg)
			s.t = t
			pre := s.login()
			if pre == 0 {
				t.Fatal("the pre-auth process did not stay to relay")
			}
			s.exchange("STAT", false)
			tc.act(s, pre)
			el := s.ended(pre, tc.within)
			t.Logf("both processes ended %v later", el.Round(time.Millisecond))
			if !strings.Contains(s.log.String(), tc.log) {
				t.Errorf("no %q in the log:\n%s", tc.log, s.log.String())
			}
			if strings.Contains(s.log.String(), "COMMIT") {
				t.Errorf("the session committed:\n%s", s.log.String())
			}
		})
	}
}

// TestRelayFailedLogin: a refused login is answered through the relay from
// the jail, as it is on the client's socket, and both processes end.
func TestRelayFailedLogin(t *testing.T) {
	e := newRelayEnvironment(t)
	var transcripts [][]byte
	for _, relay := range []bool{false, true} {
		cfg := e.cfg
		cfg.Relay = relay
		s := e.start(cfg)
		got := s.greeting()
		got = append(got, s.exchange("USER "+testUser, false)...)
		pre := waitChild(t, s.cmd.Process.Pid)
		got = append(got, s.exchange("PASS wrong", false)...)
		got = append(got, s.rest()...)
		s.ended(pre, 10*time.Second)
		transcripts = append(transcripts, got)
	}
	if !bytes.Equal(transcripts[0], transcripts[1]) || !bytes.Contains(transcripts[0], []byte("-ERR [AUTH]")) {
		t.Errorf("direct %q, relayed %q", transcripts[0], transcripts[1])
	}
}
