// Package systemd is popa3d's side of systemd's protocols: socket activation
// (the listeners systemd opened, LISTEN_FDS, told apart by LISTEN_FDNAMES)
// and service notification (sd_notify: READY, RELOADING, STOPPING, the
// watchdog), on top of github.com/coreos/go-systemd/v22.
package systemd

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"strconv"
	"time"

	"github.com/coreos/go-systemd/v22/activation"
	"github.com/coreos/go-systemd/v22/daemon"
)

// firstFD is SD_LISTEN_FDS_START.
const firstFD = 3

// maxFDs bounds LISTEN_FDS: more is a mistake, not a configuration.
const maxFDs = 64

// Descriptors lists the descriptors systemd handed this process (3 up to
// 3+LISTEN_FDS-1, when LISTEN_PID is this process), without touching them or
// the environment: for privsep.CloseInherited, which runs first.
func Descriptors() []int {
	pid, err := strconv.Atoi(os.Getenv("LISTEN_PID"))
	if err != nil || pid != os.Getpid() {
		return nil
	}
	n, err := strconv.Atoi(os.Getenv("LISTEN_FDS"))
	if err != nil || n <= 0 || n > maxFDs {
		return nil
	}
	fds := make([]int, n)
	for i := range fds {
		fds[i] = firstFD + i
	}
	return fds
}

// Socket is one listener systemd handed over, with its FileDescriptorName
// (the socket unit's name when it set none).
type Socket struct {
	Name     string
	Listener net.Listener
}

// Sockets returns the listening sockets systemd handed this process, in
// order, and removes LISTEN_PID, LISTEN_FDS and LISTEN_FDNAMES from the
// environment. None (and no error) when the process was not socket
// activated. Each must be a listening stream socket.
func Sockets() ([]Socket, error) {
	if len(Descriptors()) == 0 {
		activation.Files(true) // clears a stale environment
		return nil, nil
	}
	files := activation.Files(true)
	var out []Socket
	var errs []error
	for i, f := range files {
		ln, err := net.FileListener(f)
		f.Close()
		if err != nil {
			errs = append(errs, fmt.Errorf("systemd socket %d (%s): not a listening stream socket: %w", firstFD+i, f.Name(), err))
			continue
		}
		out = append(out, Socket{Name: f.Name(), Listener: ln})
	}
	if err := errors.Join(errs...); err != nil {
		for _, s := range out {
			s.Listener.Close()
		}
		return nil, err
	}
	return out, nil
}

// Notifier sends sd_notify messages when NOTIFY_SOCKET is set, and nothing
// otherwise. Failures are logged, never fatal.
type Notifier struct {
	Logger *slog.Logger
}

func (n Notifier) send(state string) {
	if _, err := daemon.SdNotify(false, state); err != nil && n.Logger != nil {
		n.Logger.Warn(fmt.Sprintf("sd_notify: %v", err))
	}
}

// Ready says that the service is up (READY=1), with a status line.
func (n Notifier) Ready(status string) { n.send("READY=1\nSTATUS=" + status) }

// Reloading says that a reload has begun (RELOADING=1 with MONOTONIC_USEC,
// as Type=notify-reload wants); Ready says when it is over.
func (n Notifier) Reloading() {
	n.send(daemon.SdNotifyReloading + "\n" + daemon.SdNotifyMonotonicUsec())
}

// Stopping says that the service is shutting down (STOPPING=1).
func (n Notifier) Stopping() { n.send("STOPPING=1\nSTATUS=Stopping: letting sessions finish") }

// Watchdog pings systemd's watchdog (WATCHDOG=1) at half the interval it
// asked for (WATCHDOG_USEC, for this process: WATCHDOG_PID) while alive()
// holds, until ctx is done. Without a watchdog it returns at once.
func (n Notifier) Watchdog(ctx context.Context, alive func() bool) {
	every, err := daemon.SdWatchdogEnabled(false)
	if err != nil && n.Logger != nil {
		n.Logger.Warn(fmt.Sprintf("systemd watchdog: %v", err))
	}
	if every <= 0 {
		return
	}
	t := time.NewTicker(every / 2)
	defer t.Stop()
	for {
		if alive() {
			n.send(daemon.SdNotifyWatchdog)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
