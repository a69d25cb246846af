package pop3

import (
	"context"
	"io"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/popa3d/popa3d/auth"
	"github.com/popa3d/popa3d/internal/testnet"
	"github.com/popa3d/popa3d/mailbox"
)

// memAuth is an in-memory authenticator: user → password.
type memAuth map[string]string

func (m memAuth) Authenticate(ctx context.Context, user, pass string) (auth.Identity, error) {
	want, ok := m[user]
	if !ok {
		return auth.Identity{}, auth.Unknown()
	}
	if pass == "" || pass != want {
		return auth.Identity{}, auth.ErrFailed
	}
	return auth.Identity{Name: user, UID: -1, GID: -1, Mailbox: user}, nil
}

// memStore is the reference in-memory mailbox store: mailbox name → message
// data (LF line ends, as stored).
type memStore struct {
	mu     sync.Mutex
	boxes  map[string][]string
	open   map[string]bool
	openEr error // returned by Open when set

	staleOpen   bool // Mailbox.Open fails with ErrStale
	staleVerify bool
	staleCommit bool
	commits     [][]int
	closeDelay  time.Duration // Mailbox.Close takes this long before it releases
	commitDelay time.Duration // Mailbox.Commit takes this long
}

func newMemStore(boxes map[string][]string) *memStore {
	return &memStore{boxes: boxes, open: map[string]bool{}}
}

func (s *memStore) Open(ctx context.Context, loc string) (mailbox.Mailbox, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.openEr != nil {
		return nil, s.openEr
	}
	if s.open[loc] {
		return nil, mailbox.ErrInUse
	}
	s.open[loc] = true
	msgs := s.boxes[loc]
	m := &memMailbox{s: s, loc: loc, data: msgs}
	for _, d := range msgs {
		size := int64(len(d) + strings.Count(d, "\n"))
		if !strings.HasSuffix(d, "\n") && d != "" {
			size += 2
		}
		m.msgs = append(m.msgs, mailbox.Message{Size: size, UID: "uid-" + loc + "-" + strconv.Itoa(len(m.msgs)+1)})
	}
	return m, nil
}

func (s *memStore) commitLog() [][]int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([][]int(nil), s.commits...)
}

type memMailbox struct {
	s    *memStore
	loc  string
	data []string
	msgs []mailbox.Message
}

func (m *memMailbox) Location() string            { return m.loc }
func (m *memMailbox) Messages() []mailbox.Message { return m.msgs }
func (m *memMailbox) Open(ctx context.Context, i int) (io.ReadCloser, error) {
	if m.s.staleOpen {
		return nil, mailbox.ErrStale
	}
	return io.NopCloser(strings.NewReader(m.data[i])), nil
}
func (m *memMailbox) Verify(ctx context.Context) error {
	if m.s.staleVerify {
		return mailbox.ErrStale
	}
	return nil
}
func (m *memMailbox) Commit(ctx context.Context, deleted []int) error {
	time.Sleep(m.s.commitDelay)
	if m.s.staleCommit {
		return mailbox.ErrStale
	}
	m.s.mu.Lock()
	defer m.s.mu.Unlock()
	m.s.commits = append(m.s.commits, append([]int(nil), deleted...))
	return nil
}
func (m *memMailbox) Close() error {
	time.Sleep(m.s.closeDelay)
	m.s.mu.Lock()
	defer m.s.mu.Unlock()
	delete(m.s.open, m.loc)
	return nil
}

// logCapture collects log records as "level message".
type logCapture struct {
	mu    sync.Mutex
	lines []string
}

func (l *logCapture) Enabled(context.Context, slog.Level) bool { return true }
func (l *logCapture) Handle(_ context.Context, r slog.Record) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.lines = append(l.lines, r.Level.String()+" "+r.Message)
	return nil
}
func (l *logCapture) WithAttrs([]slog.Attr) slog.Handler { return l }
func (l *logCapture) WithGroup(string) slog.Handler      { return l }
func (l *logCapture) all() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return strings.Join(l.lines, "\n")
}

// countingConn counts the writes the server makes.
type countingConn struct {
	net.Conn
	mu     sync.Mutex
	writes int
}

func (c *countingConn) Write(p []byte) (int, error) {
	c.mu.Lock()
	c.writes++
	c.mu.Unlock()
	return c.Conn.Write(p)
}

func (c *countingConn) count() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.writes
}

// harness runs one session on a socket pair.
type harness struct {
	t      testing.TB
	client net.Conn
	server *countingConn
	store  *memStore
	log    *logCapture
	done   chan Summary
	cancel context.CancelFunc
}

var testBoxes = map[string][]string{
	"alice": {
		"Subject: one\n\nbody one\n",
		"Subject: two\n\n.dotted\nline two\n",
		"Subject: three\n\nl1\nl2\nl3\nl4\n",
	},
	"empty": {},
}

func testServer(store *memStore, log *logCapture) *Server {
	lim := DefaultLimits()
	lim.AuthFailureDelay = 0
	return &Server{
		Auth:   memAuth{"alice": "secret pw", "empty": "x"},
		Store:  store,
		Limits: lim,
		Logger: slog.New(log),
	}
}

func start(t testing.TB, mod func(*Server)) *harness {
	t.Helper()
	h := &harness{t: t, store: newMemStore(testBoxes), log: &logCapture{}, done: make(chan Summary, 1)}
	srv := testServer(h.store, h.log)
	if mod != nil {
		mod(srv)
	}
	c, s := testnet.SocketPair(t)
	h.client = c
	h.server = &countingConn{Conn: s}
	ctx, cancel := context.WithCancel(context.Background())
	h.cancel = cancel
	go func() {
		defer s.Close()
		h.done <- srv.Serve(ctx, h.server, ConnInfo{RemoteAddr: "192.0.2.1"})
	}()
	t.Cleanup(func() { cancel(); c.Close() })
	return h
}

func (h *harness) send(s string) {
	h.t.Helper()
	if _, err := h.client.Write([]byte(s)); err != nil {
		h.t.Fatal(err)
	}
}

// readAll reads until the server closes the connection.
func (h *harness) readAll() string {
	h.t.Helper()
	h.client.SetReadDeadline(time.Now().Add(10 * time.Second))
	b, err := io.ReadAll(h.client)
	if err != nil {
		h.t.Fatalf("read: %v (got %q)", err, b)
	}
	return string(b)
}

// readN reads exactly n bytes.
func (h *harness) readN(n int) string {
	h.t.Helper()
	h.client.SetReadDeadline(time.Now().Add(10 * time.Second))
	b := make([]byte, n)
	if _, err := io.ReadFull(h.client, b); err != nil {
		h.t.Fatalf("read %d: %v (got %q)", n, err, b)
	}
	return string(b)
}

// expect reads exactly the bytes of want.
func (h *harness) expect(want string) {
	h.t.Helper()
	if got := h.readN(len(want)); got != want {
		h.t.Fatalf("got %q\nwant %q", got, want)
	}
}

func (h *harness) wait() Summary {
	h.t.Helper()
	select {
	case s := <-h.done:
		return s
	case <-time.After(10 * time.Second):
		h.t.Fatal("session did not end")
	}
	return Summary{}
}

// login walks the session to TRANSACTION as alice.
func (h *harness) login() {
	h.t.Helper()
	h.send("USER alice\r\nPASS secret pw\r\n")
	h.expect("+OK\r\n+OK\r\n+OK\r\n")
}
