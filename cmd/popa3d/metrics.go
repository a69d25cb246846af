package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"runtime"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/popa3d/popa3d/metrics"
	"github.com/popa3d/popa3d/metrics/prom"
)

// exporterRole is the first argument that makes the program the metrics
// exporter of a privilege-separated -D daemon. Like preauthRole, only the
// program itself passes it.
const exporterRole = "--metrics-exporter"

// The descriptors the daemon hands the exporter: the read end of the
// snapshot pipe and the metrics listener, announced in its environment.
const (
	exporterPipeFD     = 3
	exporterListenerFD = 4
	exporterEnv        = "POPA3D_METRICS_FDS"
	exporterEnvValue   = "3,4"
)

// exporterDescriptors lists what the exporter role keeps at start-up
// (CloseInherited): fds 3 and 4 when the daemon announced them.
func exporterDescriptors() []int {
	if os.Getenv(exporterEnv) == exporterEnvValue {
		return []int{exporterPipeFD, exporterListenerFD}
	}
	return nil
}

// feedInterval is how often the daemon sends the exporter its counters
// when they changed: a scrape sees figures at most this old.
const feedInterval = 200 * time.Millisecond

// listenMetrics opens the metrics listener, if metrics_listen is set (nil
// otherwise). It is opened by the process that starts as root, before
// anything gives up root, so that a low port works; root never accepts on
// it.
func listenMetrics(ctx context.Context, addr string, log *slog.Logger) (*net.TCPListener, error) {
	if addr == "" {
		return nil, nil
	}
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("metrics_listen: %w", err)
	}
	log.Info("Metrics on http://" + ln.Addr().String() + prom.Path)
	return ln.(*net.TCPListener), nil
}

// serveMetricsInProcess serves counters on ln from this process, which has
// given up root (single-account mode), until ctx is done.
func serveMetricsInProcess(ctx context.Context, ln net.Listener, counters *metrics.Counters, log *slog.Logger) (wait func()) {
	if ln == nil {
		return func() {}
	}
	if os.Geteuid() == 0 {
		// becomeServingUser never leaves root here; refuse rather than
		// parse HTTP as root should that change.
		panic("metrics: the in-process exporter must not run as root")
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := prom.Serve(ctx, ln, prom.Handler(counters.Snapshot), log); err != nil {
			log.Error(err.Error())
		}
	}()
	return func() { <-done }
}

// superviseExporter runs the exporter process of a privilege-separated
// daemon until ctx is done: it starts `popa3d --metrics-exporter` with the
// read end of a pipe and ln, feeds the pipe with counters' snapshots
// (metrics.Feed, which never waits and never reads), and starts a new
// exporter, after a pause, if one exits. The returned function waits for
// it to end.
func superviseExporter(ctx context.Context, re reexec, ln *net.TCPListener, counters *metrics.Counters, log *slog.Logger) (wait func()) {
	if ln == nil {
		return func() {}
	}
	lnFile, err := ln.File()
	_ = ln.Close() // the copy in lnFile stays
	if err != nil {
		log.Error(fmt.Sprintf("metrics: %v", err))
		return func() {}
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		defer lnFile.Close()
		pause := time.Second
		for ctx.Err() == nil {
			began := time.Now()
			if err := runExporterOnce(ctx, re, lnFile, counters); err != nil && ctx.Err() == nil {
				log.Error(fmt.Sprintf("metrics exporter: %v", err))
			}
			if time.Since(began) > time.Minute {
				pause = time.Second
			}
			select {
			case <-ctx.Done():
			case <-time.After(pause):
				pause = min(2*pause, time.Minute)
			}
		}
	}()
	return func() { <-done }
}

// runExporterOnce starts one exporter process, feeds it until it exits or
// ctx is done, and waits for it.
func runExporterOnce(ctx context.Context, re reexec, lnFile *os.File, counters *metrics.Counters) error {
	pr, pw, err := os.Pipe()
	if err != nil {
		return err
	}
	defer pw.Close()
	cmd := re.command(ctx, exporterRole)
	cmd.ExtraFiles = []*os.File{pr, lnFile}
	cmd.Env = append(cmd.Env, exporterEnv+"="+exporterEnvValue)
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGTERM) }
	cmd.WaitDelay = 5 * time.Second
	exited, err := startNoNewPrivs(cmd)
	pr.Close()
	if err != nil {
		return fmt.Errorf("start: %w", err)
	}
	fctx, stop := context.WithCancel(ctx)
	fed := make(chan error, 1)
	go func() { fed <- metrics.Feed(fctx, counters, pw, feedInterval) }()
	err = <-exited
	stop()
	<-fed // a broken pipe is the exit just seen
	if err != nil {
		return err
	}
	return errors.New("exited")
}

// startNoNewPrivs starts cmd from an OS thread of its own that has
// PR_SET_NO_NEW_PRIVS, so that the child has it on every thread from its
// first instruction (as the pre-auth process: privsep's startPreauth), and
// returns a channel that receives cmd.Wait's result. The thread is kept
// until the process has exited: the parent-death signal follows the thread
// that started the process.
func startNoNewPrivs(cmd *exec.Cmd) (<-chan error, error) {
	started := make(chan error, 1)
	exited := make(chan error, 1)
	go func() {
		runtime.LockOSThread() // never unlocked: the thread ends with this goroutine
		if err := unix.Prctl(unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0); err != nil {
			started <- fmt.Errorf("prctl PR_SET_NO_NEW_PRIVS: %w", err)
			return
		}
		if err := cmd.Start(); err != nil {
			started <- err
			return
		}
		started <- nil
		exited <- cmd.Wait()
	}()
	if err := <-started; err != nil {
		return nil, err
	}
	return exited, nil
}

// runExporter is the exporter process of a privilege-separated daemon. It
// starts as root, handed the pipe and the listener; it reads the
// configuration and connects to syslog, then enters the pre-auth jail
// (chroot, preauth_user, no process may be started) before it accepts a
// connection, and serves the snapshots the daemon writes until the daemon
// closes the pipe or a signal stops it.
func runExporter(args []string, stderr io.Writer) int {
	fs := flag.NewFlagSet(args[0], flag.ContinueOnError)
	fs.SetOutput(stderr)
	cfgPath := fs.String("c", "", "")
	toStderr := fs.Bool("e", false, "")
	if err := fs.Parse(args[2:]); err != nil || fs.NArg() > 0 || os.Geteuid() != 0 || len(exporterDescriptors()) == 0 {
		fmt.Fprintf(stderr, "popa3d: %s is started only by popa3d -D itself, as root\n", exporterRole)
		return 1
	}
	cfg, ok := configFor(*cfgPath, *toStderr, stderr)
	if !ok {
		return 1
	}
	log := newLogger(cfg, stderr, false, os.Getpid())
	fail := func(err error) int {
		log.Error(fmt.Sprintf("metrics exporter: %v", err))
		return 1
	}
	var st unix.Stat_t
	if err := unix.Fstat(exporterPipeFD, &st); err != nil || st.Mode&unix.S_IFMT != unix.S_IFIFO {
		return fail(fmt.Errorf("fd %d is not a pipe", exporterPipeFD))
	}
	pipe := os.NewFile(exporterPipeFD, "metrics pipe")
	lnFile := os.NewFile(exporterListenerFD, "metrics listener")
	ln, err := net.FileListener(lnFile)
	lnFile.Close()
	if err != nil {
		return fail(fmt.Errorf("fd %d: %w", exporterListenerFD, err))
	}
	if _, ok := ln.(*net.TCPListener); !ok {
		return fail(fmt.Errorf("fd %d is not a TCP listener", exporterListenerFD))
	}
	j, err := jail(cfg, false)
	if err != nil {
		return fail(err)
	}
	if err := j.Enter(); err != nil {
		return fail(err)
	}
	ctx, stop := signalContext(false, log)
	defer stop()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var m prom.Mirror
	go func() {
		defer cancel() // the daemon is gone, or spoke nonsense: stop
		if err := m.Run(ctx, pipe); err != nil {
			log.Error(fmt.Sprintf("metrics exporter: %v", err))
		}
	}()
	if err := prom.Serve(ctx, ln, prom.Handler(m.Snapshot), log); err != nil {
		return fail(err)
	}
	return 0
}
