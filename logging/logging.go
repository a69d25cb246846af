// Package logging sends popa3d's log lines to syslog (ident popa3d, LOG_PID,
// facility daemon, as popa3d 1.0.3) or to stderr. It maps slog levels to the
// three syslog priorities popa3d uses: Info is info, Warn is notice, Error is
// crit.
package logging

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strconv"
	"sync"
	"time"
)

// Syslog returns a logger writing to the local syslog daemon, tagging each
// line popa3d[pid]. network and addr name its socket ("unixgram" and a path,
// say); empty strings try the system's usual sockets (/dev/log first). The
// pid is a parameter, not always this process's, so that a session's
// pre-auth process logs under its session's pid, and all lines of one
// session carry one pid as in popa3d. log/syslog always writes its own pid,
// which is why this small client exists.
func Syslog(network, addr string, pid int) (*slog.Logger, error) {
	w := &syslogWriter{network: network, addr: addr, tag: "popa3d[" + strconv.Itoa(pid) + "]: "}
	if err := w.connect(); err != nil {
		return nil, fmt.Errorf("connect to syslog: %w", err)
	}
	return slog.New(&handler{emit: func(l slog.Level, line string) error {
		sev := 6 // info
		switch {
		case l >= slog.LevelError:
			sev = 2 // crit
		case l >= slog.LevelWarn:
			sev = 5 // notice
		case l < slog.LevelInfo:
			sev = 7 // debug
		}
		return w.write(3<<3|sev, line) // facility daemon
	}}), nil
}

// syslogWriter sends RFC 3164 lines to the local syslog daemon as
// log/syslog does for a local socket, reconnecting once after a failed write
// (the daemon restarted). Inside the pre-auth chroot a reconnect cannot find
// the socket; the line is then lost, as with popa3d.
type syslogWriter struct {
	network, addr, tag string

	mu   sync.Mutex
	conn net.Conn
}

func (w *syslogWriter) connect() error {
	if w.addr != "" {
		c, err := net.Dial(w.network, w.addr)
		if err != nil {
			return err
		}
		w.conn = c
		return nil
	}
	var first error
	for _, path := range []string{"/dev/log", "/var/run/syslog", "/var/run/log"} {
		for _, network := range []string{"unixgram", "unix"} {
			c, err := net.Dial(network, path)
			if err == nil {
				w.conn = c
				return nil
			}
			if first == nil {
				first = err
			}
		}
	}
	return first
}

func (w *syslogWriter) write(pri int, msg string) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	line := fmt.Sprintf("<%d>%s %s%s\n", pri, time.Now().Format(time.Stamp), w.tag, msg)
	var err error
	for attempt := 0; attempt < 2; attempt++ {
		if w.conn == nil {
			if err = w.connect(); err != nil {
				continue
			}
		}
		if _, err = io.WriteString(w.conn, line); err == nil {
			return nil
		}
		w.conn.Close()
		w.conn = nil
	}
	return err
}

// Writer returns a logger writing one line per record to w, prefixed with the
// time, the program, the process id and the syslog priority name.
func Writer(w io.Writer, pid int) *slog.Logger {
	var mu sync.Mutex
	prefix := "popa3d[" + strconv.Itoa(pid) + "]: "
	return slog.New(&handler{emit: func(l slog.Level, line string) error {
		mu.Lock()
		defer mu.Unlock()
		_, err := fmt.Fprintf(w, "%s %s%s: %s\n", time.Now().Format(time.RFC3339), prefix, Priority(l), line)
		return err
	}})
}

// Priority names the syslog priority a level maps to.
func Priority(l slog.Level) string {
	switch {
	case l >= slog.LevelError:
		return "crit"
	case l >= slog.LevelWarn:
		return "notice"
	case l >= slog.LevelInfo:
		return "info"
	}
	return "debug"
}

// handler renders a record as its message followed by " key=value" for each
// attribute, so that popa3d's messages stay exactly as popa3d wrote them.
type handler struct {
	emit  func(slog.Level, string) error
	attrs []slog.Attr
}

func (h *handler) Enabled(context.Context, slog.Level) bool { return true }

func (h *handler) Handle(_ context.Context, r slog.Record) error {
	var b bytes.Buffer
	b.WriteString(r.Message)
	add := func(a slog.Attr) bool {
		if a.Equal(slog.Attr{}) {
			return true
		}
		b.WriteByte(' ')
		b.WriteString(a.Key)
		b.WriteByte('=')
		v := a.Value.Resolve().String()
		if v == "" || bytes.ContainsAny([]byte(v), " \t\"=") {
			v = strconv.Quote(v)
		}
		b.WriteString(v)
		return true
	}
	for _, a := range h.attrs {
		add(a)
	}
	r.Attrs(add)
	return h.emit(r.Level, sanitize(b.Bytes()))
}

// sanitize replaces control bytes, which a client may have put into a user
// name, so that a log line stays one line of text.
func sanitize(b []byte) string {
	for i, c := range b {
		if c < 0x20 || c == 0x7f {
			b[i] = '?'
		}
	}
	return string(b)
}

func (h *handler) WithAttrs(as []slog.Attr) slog.Handler {
	return &handler{emit: h.emit, attrs: append(h.attrs[:len(h.attrs):len(h.attrs)], as...)}
}

func (h *handler) WithGroup(string) slog.Handler { return h }
