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
	"log/syslog"
	"strconv"
	"sync"
	"time"
)

// Syslog returns a logger writing to the local syslog daemon. network and
// addr name its socket as log/syslog.Dial takes them; empty strings mean the
// system's default (/dev/log).
func Syslog(network, addr string) (*slog.Logger, error) {
	w, err := syslog.Dial(network, addr, syslog.LOG_DAEMON|syslog.LOG_INFO, "popa3d")
	if err != nil {
		return nil, fmt.Errorf("connect to syslog: %w", err)
	}
	return slog.New(&handler{emit: func(l slog.Level, line string) error {
		switch {
		case l >= slog.LevelError:
			return w.Crit(line)
		case l >= slog.LevelWarn:
			return w.Notice(line)
		case l >= slog.LevelInfo:
			return w.Info(line)
		default:
			return w.Debug(line)
		}
	}}), nil
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
