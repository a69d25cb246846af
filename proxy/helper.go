package proxy

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/popa3d/popa3d/privsep"
	"golang.org/x/sys/unix"
)

// The helper's channel: one end of a SOCK_SEQPACKET socket pair, handed to
// the helper process as fd 3 and announced as HelperEnv=3 (as systemd
// announces LISTEN_FDS).
const (
	HelperFD  = 3
	HelperEnv = "POPA3D_PROXY_FD"
)

// requestSize is a request's size: the id (8 bytes, big-endian) and the
// header timeout in milliseconds (4 bytes), with the connection's descriptor
// as SCM_RIGHTS.
const requestSize = 12

// helperSlack is how much longer than the header timeout root waits for the
// helper's answer.
const helperSlack = 2 * time.Second

// helperRestartEvery bounds how often a helper that died is restarted.
const helperRestartEvery = time.Second

// Helper is root's side of the PROXY helper: a long-lived process, jailed as
// the pre-auth process is (chroot, preauth_user, no new process), that
// receives each PROXY connection's descriptor, reads exactly its header
// (ReadHeader) and answers one Record. Root thus parses no network input: it
// hands over a descriptor and decodes a fixed-size record (DecodeRecord).
// The helper is started at the first use and restarted (at most once per
// second) if it dies; while it is down, PROXY connections are closed.
type Helper struct {
	// Command returns the command that runs the program as the helper;
	// Helper adds the channel as fd 3.
	Command func() *exec.Cmd
	Logger  *slog.Logger

	mu        sync.Mutex
	conn      *net.UnixConn
	proc      *os.Process
	exited    <-chan struct{}
	pending   map[uint64]chan Record
	next      uint64
	lastStart time.Time
	closed    bool
}

// Start starts the helper now, so that a bad set-up shows at start-up.
func (h *Helper) Start() error {
	h.mu.Lock()
	defer h.mu.Unlock()
	_, err := h.startLocked()
	return err
}

// Close stops the helper: it sees the end of its channel and exits, or is
// killed a second later.
func (h *Helper) Close() {
	h.mu.Lock()
	h.closed = true
	conn, proc, exited := h.conn, h.proc, h.exited
	h.mu.Unlock()
	if conn == nil {
		return
	}
	conn.Close()
	select {
	case <-exited:
	case <-time.After(time.Second):
		_ = proc.Kill()
		<-exited
	}
}

func (h *Helper) log() *slog.Logger {
	if h.Logger == nil {
		return slog.New(slog.DiscardHandler)
	}
	return h.Logger
}

func (h *Helper) startLocked() (*net.UnixConn, error) {
	if h.closed {
		return nil, errors.New("proxy helper: stopped")
	}
	if h.conn != nil {
		return h.conn, nil
	}
	if time.Since(h.lastStart) < helperRestartEvery {
		return nil, errors.New("proxy helper: not running (restarted less than a second ago)")
	}
	h.lastStart = time.Now()
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_SEQPACKET|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("proxy helper: socketpair: %w", err)
	}
	ours := os.NewFile(uintptr(fds[0]), "proxy helper channel")
	theirs := os.NewFile(uintptr(fds[1]), "proxy helper channel")
	defer theirs.Close()
	fc, err := net.FileConn(ours)
	ours.Close()
	if err != nil {
		return nil, fmt.Errorf("proxy helper: %w", err)
	}
	conn := fc.(*net.UnixConn)
	cmd := h.Command()
	if len(cmd.ExtraFiles) != 0 {
		conn.Close()
		return nil, errors.New("proxy helper: the command has descriptors of its own")
	}
	cmd.ExtraFiles = []*os.File{theirs}
	if cmd.Env == nil {
		cmd.Env = os.Environ()
	}
	cmd.Env = append(cmd.Env, HelperEnv+"="+strconv.Itoa(HelperFD))
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{}
	}
	cmd.SysProcAttr.Pdeathsig = syscall.SIGKILL
	exited, err := startNoNewPrivs(cmd)
	if err != nil {
		conn.Close()
		return nil, fmt.Errorf("proxy helper: start: %w", err)
	}
	h.conn, h.proc, h.exited = conn, cmd.Process, exited
	h.pending = map[uint64]chan Record{}
	h.log().Info(fmt.Sprintf("PROXY header helper started (pid %d)", cmd.Process.Pid))
	go h.read(conn, cmd, exited)
	return conn, nil
}

// startNoNewPrivs starts cmd with no_new_privs from its first instruction
// (privsep.StartNoNewPrivs); exited is closed when it has exited.
func startNoNewPrivs(cmd *exec.Cmd) (exited <-chan struct{}, err error) {
	waited, err := privsep.StartNoNewPrivs(cmd)
	if err != nil {
		return nil, err
	}
	done := make(chan struct{})
	go func() {
		<-waited
		close(done)
	}()
	return done, nil
}

// read dispatches the helper's records until its channel ends, then fails
// what was pending and reaps the process.
func (h *Helper) read(conn *net.UnixConn, cmd *exec.Cmd, exited <-chan struct{}) {
	buf := make([]byte, RecordSize+1)
	var why error
	for {
		n, _, flags, _, err := conn.ReadMsgUnix(buf, nil)
		if err != nil {
			why = err
			break
		}
		if n == 0 {
			why = errors.New("the helper closed its channel")
			break
		}
		if flags&(unix.MSG_TRUNC|unix.MSG_CTRUNC) != 0 {
			why = errors.New("an oversized record")
			break
		}
		r, err := DecodeRecord(buf[:n])
		if err != nil {
			why = err
			break
		}
		h.mu.Lock()
		ch := h.pending[r.ID]
		delete(h.pending, r.ID)
		h.mu.Unlock()
		if ch != nil {
			ch <- r // buffered
		}
	}
	h.mu.Lock()
	closed := h.closed
	if h.conn == conn {
		h.conn = nil
		for id, ch := range h.pending {
			ch <- Record{ID: id, Status: StatusRefused}
			delete(h.pending, id)
		}
	}
	h.mu.Unlock()
	conn.Close()
	_ = cmd.Process.Kill()
	<-exited
	if !closed {
		h.log().Error(fmt.Sprintf("PROXY header helper (pid %d) ended: %v", cmd.Process.Pid, why))
	}
}

// Resolve has the helper read c's header, within timeout. Root's own copy of
// the descriptor stays untouched until the helper has answered; the bytes
// after the header stay in the socket.
func (h *Helper) Resolve(ctx context.Context, c *net.TCPConn, timeout time.Duration) (Header, error) {
	h.mu.Lock()
	conn, err := h.startLocked()
	if err != nil {
		h.mu.Unlock()
		return Header{}, err
	}
	h.next++
	id := h.next
	ch := make(chan Record, 1)
	h.pending[id] = ch
	h.mu.Unlock()
	forget := func() {
		h.mu.Lock()
		delete(h.pending, id)
		h.mu.Unlock()
	}
	var req [requestSize]byte
	binary.BigEndian.PutUint64(req[0:8], id)
	binary.BigEndian.PutUint32(req[8:12], uint32(timeout.Milliseconds()))
	rc, err := c.SyscallConn()
	if err != nil {
		forget()
		return Header{}, fmt.Errorf("proxy helper: %w", err)
	}
	var werr error
	if err := rc.Control(func(fd uintptr) {
		_, _, werr = conn.WriteMsgUnix(req[:], unix.UnixRights(int(fd)), nil)
	}); err != nil {
		werr = err
	}
	if werr != nil {
		forget()
		return Header{}, fmt.Errorf("proxy helper: hand over a connection: %w", werr)
	}
	t := time.NewTimer(timeout + helperSlack)
	defer t.Stop()
	select {
	case r := <-ch:
		switch r.Status {
		case StatusClient:
			return Header{Source: r.Client}, nil
		case StatusLocal:
			return Header{}, nil
		}
		return Header{}, errors.New("no valid PROXY header in time")
	case <-t.C:
		forget()
		return Header{}, errors.New("the PROXY header helper did not answer in time")
	case <-ctx.Done():
		forget()
		return Header{}, ctx.Err()
	}
}

// helperPending bounds the connections the helper reads headers of at once;
// beyond, it refuses at once (root bounds them already, per listener).
const helperPending = 1024

// ServeHelper is the helper process's loop, run once it is jailed: for each
// connection root hands over on ch, it reads the header (ReadHeader) and
// answers a Record. It returns when root closes the channel.
func ServeHelper(ch *net.UnixConn, log *slog.Logger) error {
	sem := make(chan struct{}, helperPending)
	var wg sync.WaitGroup
	defer wg.Wait()
	buf := make([]byte, requestSize+1)
	oob := make([]byte, unix.CmsgSpace(4*4))
	answer := func(r Record) {
		b := r.Encode()
		if _, err := ch.Write(b[:]); err != nil {
			log.Error(fmt.Sprintf("proxy helper: answer: %v", err))
		}
	}
	for {
		n, oobn, flags, _, err := ch.ReadMsgUnix(buf, oob)
		if errors.Is(err, io.EOF) {
			return nil // root closed the channel
		}
		if err != nil {
			return fmt.Errorf("proxy helper: %w", err)
		}
		if n == 0 && oobn == 0 {
			return nil // root closed the channel
		}
		fds := rights(oob[:oobn])
		if n != requestSize || flags&(unix.MSG_TRUNC|unix.MSG_CTRUNC) != 0 || len(fds) != 1 {
			for _, fd := range fds {
				unix.Close(fd)
			}
			return fmt.Errorf("proxy helper: malformed request (%d bytes, %d descriptors)", n, len(fds))
		}
		id := binary.BigEndian.Uint64(buf[0:8])
		timeout := time.Duration(binary.BigEndian.Uint32(buf[8:12])) * time.Millisecond
		select {
		case sem <- struct{}{}:
		default:
			unix.Close(fds[0])
			answer(Record{ID: id, Status: StatusRefused})
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			answer(readHandedHeader(id, fds[0], timeout))
		}()
	}
}

// readHandedHeader reads the header of the connection on descriptor fd,
// which it closes.
func readHandedHeader(id uint64, fd int, timeout time.Duration) Record {
	f := os.NewFile(uintptr(fd), "client")
	c, err := net.FileConn(f)
	f.Close()
	if err != nil {
		return Record{ID: id, Status: StatusRefused}
	}
	defer c.Close()
	tc, ok := c.(*net.TCPConn)
	if !ok {
		return Record{ID: id, Status: StatusRefused}
	}
	h, err := ReadHeader(tc, time.Now().Add(timeout))
	switch {
	case err != nil:
		return Record{ID: id, Status: StatusRefused}
	case h.Local():
		return Record{ID: id, Status: StatusLocal}
	}
	return Record{ID: id, Status: StatusClient, Client: h.Source}
}

// rights returns the descriptors of SCM_RIGHTS messages in oob.
func rights(oob []byte) []int {
	msgs, err := unix.ParseSocketControlMessage(oob)
	if err != nil {
		return nil
	}
	var fds []int
	for _, m := range msgs {
		if fs, err := unix.ParseUnixRights(&m); err == nil {
			fds = append(fds, fs...)
		}
	}
	return fds
}

// HelperChannel returns the channel root handed this process as fd 3, or
// nil if none was announced or fd 3 is not a Unix socket.
func HelperChannel() (*net.UnixConn, error) {
	if os.Getenv(HelperEnv) != strconv.Itoa(HelperFD) {
		return nil, errors.New("proxy helper: no channel was handed (started only by popa3d -D)")
	}
	typ, err := unix.GetsockoptInt(HelperFD, unix.SOL_SOCKET, unix.SO_TYPE)
	if err != nil || typ != unix.SOCK_SEQPACKET {
		return nil, fmt.Errorf("proxy helper: fd %d is not a SOCK_SEQPACKET socket", HelperFD)
	}
	f := os.NewFile(HelperFD, "proxy helper channel")
	c, err := net.FileConn(f)
	f.Close()
	if err != nil {
		return nil, fmt.Errorf("proxy helper: %w", err)
	}
	uc, ok := c.(*net.UnixConn)
	if !ok {
		c.Close()
		return nil, errors.New("proxy helper: the channel is not a Unix socket")
	}
	return uc, nil
}

// HelperDescriptors lists the descriptors above 2 the helper role is handed,
// for privsep.CloseInherited.
func HelperDescriptors() []int {
	if os.Getenv(HelperEnv) == strconv.Itoa(HelperFD) {
		return []int{HelperFD}
	}
	return nil
}
