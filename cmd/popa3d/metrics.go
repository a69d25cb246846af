package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/popa3d/popa3d/metrics"
	"github.com/popa3d/popa3d/privsep"
)

// exporterProgram is the exporter's program (cmd/popa3d-metrics), looked
// for beside this one. It is a program of its own so that the HTTP server
// and the metrics library are linked into no session process.
const exporterProgram = "popa3d-metrics"

// The descriptors handed to the exporter: the read end of the snapshot pipe
// and the metrics listener, announced in its environment.
const (
	exporterEnv      = "POPA3D_METRICS_FDS"
	exporterEnvValue = "3,4"
)

// feedInterval is how often the daemon sends the exporter its counters
// when they changed: a scrape sees figures at most this old.
const feedInterval = 200 * time.Millisecond

// listenMetrics opens the metrics listener, if metrics_listen is set (nil
// otherwise). It is opened by the process that starts, before anything
// gives up root, so that a low port works; no process of popa3d's but the
// exporter accepts on it.
func listenMetrics(ctx context.Context, addr string, log *slog.Logger) (*net.TCPListener, error) {
	if addr == "" {
		return nil, nil
	}
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("metrics_listen: %w", err)
	}
	log.Info("Metrics on http://" + ln.Addr().String() + metrics.Path)
	return ln.(*net.TCPListener), nil
}

// exporter is how the daemon starts its exporter.
type exporter struct {
	program string
	re      reexec       // for the logging flags and stderr
	jail    privsep.Jail // under privilege separation: where it runs; zero otherwise
}

// newExporter returns the exporter of the program beside this one; with
// jail set (privilege separation), it confines itself there.
func newExporter(re reexec, jail privsep.Jail) (exporter, error) {
	exe, err := filepath.EvalSymlinks(re.exe)
	if err != nil {
		return exporter{}, fmt.Errorf("metrics exporter: %w", err)
	}
	p := filepath.Join(filepath.Dir(exe), exporterProgram)
	if err := unix.Access(p, unix.X_OK); err != nil {
		return exporter{}, fmt.Errorf("metrics exporter %s: %w (metrics_listen needs it installed beside popa3d)", p, err)
	}
	return exporter{program: p, re: re, jail: jail}, nil
}

func (e exporter) command(ctx context.Context) *exec.Cmd {
	var args []string
	if e.re.toStderr {
		args = append(args, "-e")
	}
	if e.jail.Dir != "" {
		args = append(args, "-jail", e.jail.Dir, "-uid", strconv.Itoa(e.jail.UID), "-gid", strconv.Itoa(e.jail.GID))
	}
	cmd := exec.CommandContext(ctx, e.program, args...)
	cmd.Env = []string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin", exporterEnv + "=" + exporterEnvValue}
	if tz, ok := os.LookupEnv("TZ"); ok {
		cmd.Env = append(cmd.Env, "TZ="+tz)
	}
	if e.re.stderr != nil {
		cmd.Stderr = e.re.stderr
	}
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGTERM) }
	cmd.WaitDelay = 5 * time.Second
	return cmd
}

// supervise runs the exporter until ctx is done: it starts the exporter
// with the read end of a pipe and ln, feeds the pipe with counters'
// snapshots (metrics.Feed, which never waits on the pipe and never reads
// from it), and starts a new exporter, after a growing pause, if one exits.
// The returned function waits for it to end.
func (e exporter) supervise(ctx context.Context, ln *net.TCPListener, counters *metrics.Counters, log *slog.Logger) (wait func()) {
	lnFile, err := ln.File()
	_ = ln.Close() // the copy in lnFile stays open
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
			if err := e.runOnce(ctx, lnFile, counters); err != nil && ctx.Err() == nil {
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

// runOnce starts one exporter process, feeds it until it exits or ctx is
// done, and waits for it.
func (e exporter) runOnce(ctx context.Context, lnFile *os.File, counters *metrics.Counters) error {
	pr, pw, err := os.Pipe()
	if err != nil {
		return err
	}
	defer pw.Close()
	cmd := e.command(ctx)
	cmd.ExtraFiles = []*os.File{pr, lnFile}
	exited, err := privsep.StartNoNewPrivs(cmd)
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

// serveMetrics starts the exporter when metrics_listen is set (ln not nil)
// and returns a function that waits for it to end once ctx is done. jail is
// where it runs under privilege separation (zero in single-account mode,
// where it runs as the serving account).
func serveMetrics(ctx context.Context, ln *net.TCPListener, re reexec, jail privsep.Jail, counters *metrics.Counters, log *slog.Logger) (wait func(), err error) {
	if ln == nil {
		return func() {}, nil
	}
	e, err := newExporter(re, jail)
	if err != nil {
		ln.Close()
		return nil, err
	}
	return e.supervise(ctx, ln, counters, log), nil
}
