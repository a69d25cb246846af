// Command popa3d-metrics is popa3d's Prometheus exporter. It is started
// only by `popa3d -D` when metrics_listen is set, never by hand: the daemon
// hands it the listening socket and the read end of a pipe on which it
// writes its counters (metrics.Feed), and the exporter serves the latest of
// them over HTTP (package metrics/prom) until the pipe ends.
//
// It is a program of its own so that the HTTP server and the metrics
// library are linked into no other process: popa3d's privilege-separated
// sessions are two processes each, and every package linked into them costs
// memory in each (doc/design.md §14.5).
//
// Started as root (a privilege-separated daemon, -jail), it enters the
// pre-auth jail before it accepts a connection: chroot into DIR, the given
// unprivileged uid and gid, no_new_privs, no process may be started. Started
// as another account (single-account mode, as the serving account), it
// stays that account. It refuses to serve as root.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/popa3d/popa3d/logging"
	"github.com/popa3d/popa3d/metrics/prom"
	"github.com/popa3d/popa3d/privsep"
)

// The descriptors popa3d hands the exporter, announced as fdsEnv=fdsValue.
const (
	pipeFD     = 3
	listenerFD = 4
	fdsEnv     = "POPA3D_METRICS_FDS"
	fdsValue   = "3,4"
)

func main() {
	// As every role of popa3d: nothing inherited but what was handed.
	handed := []int{}
	if os.Getenv(fdsEnv) == fdsValue {
		handed = []int{pipeFD, listenerFD}
	}
	if err := privsep.CloseInherited(handed...); err != nil {
		fmt.Fprintf(os.Stderr, "popa3d-metrics: %v\n", err)
		os.Exit(1)
	}
	os.Exit(run(os.Args, os.Stderr, len(handed) > 0))
}

func run(args []string, stderr io.Writer, handed bool) int {
	fs := flag.NewFlagSet(args[0], flag.ContinueOnError)
	fs.SetOutput(stderr)
	toStderr := fs.Bool("e", false, "log to stderr instead of syslog")
	jailDir := fs.String("jail", "", "chroot into this directory, as -uid and -gid (when started as root)")
	uid := fs.Int("uid", -1, "the jail's account")
	gid := fs.Int("gid", -1, "the jail's group")
	if err := fs.Parse(args[1:]); err != nil || fs.NArg() > 0 || !handed {
		fmt.Fprintf(stderr, "popa3d-metrics is started only by popa3d -D (metrics_listen)\n")
		return 1
	}
	log := newLogger(*toStderr, stderr)
	fail := func(err error) int {
		log.Error(fmt.Sprintf("metrics exporter: %v", err))
		return 1
	}
	var st unix.Stat_t
	if err := unix.Fstat(pipeFD, &st); err != nil || st.Mode&unix.S_IFMT != unix.S_IFIFO {
		return fail(fmt.Errorf("fd %d is not a pipe", pipeFD))
	}
	pipe := os.NewFile(pipeFD, "metrics pipe")
	lnFile := os.NewFile(listenerFD, "metrics listener")
	ln, err := net.FileListener(lnFile)
	lnFile.Close()
	if err != nil {
		return fail(fmt.Errorf("fd %d: %w", listenerFD, err))
	}
	if _, ok := ln.(*net.TCPListener); !ok {
		return fail(fmt.Errorf("fd %d is not a TCP listener", listenerFD))
	}
	switch {
	case *jailDir != "":
		if *uid <= 0 || *gid <= 0 {
			return fail(fmt.Errorf("-jail needs an unprivileged -uid and -gid, not %d and %d", *uid, *gid))
		}
		j := privsep.Jail{UID: *uid, GID: *gid, Dir: *jailDir}
		if err := j.Enter(); err != nil {
			return fail(err)
		}
	case os.Geteuid() == 0 || os.Getuid() == 0:
		return fail(fmt.Errorf("started as root without -jail: an exporter never serves as root"))
	}
	signal.Ignore(syscall.SIGHUP) // the daemon's reload is not the exporter's business
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var m prom.Mirror
	go func() {
		defer cancel() // the daemon is gone, or wrote something else: stop
		if err := m.Run(ctx, pipe); err != nil {
			log.Error(fmt.Sprintf("metrics exporter: %v", err))
		}
	}()
	if err := prom.Serve(ctx, ln, prom.Handler(m.Snapshot), log); err != nil {
		return fail(err)
	}
	return 0
}

// newLogger logs as popa3d does: to stderr with -e, else to syslog.
func newLogger(toStderr bool, stderr io.Writer) *slog.Logger {
	if toStderr {
		return logging.Writer(stderr, os.Getpid())
	}
	l, err := logging.Syslog("", "", os.Getpid())
	if err != nil {
		l = logging.Writer(stderr, os.Getpid())
		l.Warn(err.Error() + "; logging to stderr")
	}
	return l
}
