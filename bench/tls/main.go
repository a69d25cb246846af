// Command tls measures a POP3 server over implicit TLS: whole sessions per
// second (TCP connect, TLS handshake, greeting, USER, PASS, STAT, QUIT)
// with several in flight, and RETR throughput of a whole mailbox with 1 and
// 8 commands in flight; with the server's CPU time from /proc for each
// (every process under -pid, live or reaped), so that the table can give
// CPU seconds per GB served, which does not depend on the client being the
// bottleneck. bench/tls/run.sh drives it against ours and Dovecot.
//
//	go run ./bench/tls -addr 127.0.0.1:995 -pid PID -user U -pass P [-c 8] [-d 10s] sessions
//	go run ./bench/tls -addr 127.0.0.1:995 -pid PID -user U -pass P [-w 1] retr
//
// A user name with %d gives each session worker its own account (worker i
// logs in as the name with i in place of %d, from 1). The server's
// certificate is not verified: the benchmark measures, it does not trust.
package main

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:995", "server address (implicit TLS)")
	pid := flag.Int("pid", 0, "the server's root process, for its CPU time (0: none)")
	user := flag.String("user", "", "user name (%d: one account per worker)")
	pass := flag.String("pass", "", "password")
	conc := flag.Int("c", 8, "sessions: sessions in flight")
	dur := flag.Duration("d", 10*time.Second, "sessions: how long to measure")
	window := flag.Int("w", 1, "retr: RETR commands in flight")
	flag.Parse()
	if *user == "" || *pass == "" || flag.NArg() != 1 {
		flag.Usage()
		os.Exit(2)
	}
	var err error
	switch flag.Arg(0) {
	case "sessions":
		err = sessions(*addr, *pid, *user, *pass, *conc, *dur)
	case "retr":
		err = retr(*addr, *pid, *user, *pass, *window)
	default:
		err = fmt.Errorf("unknown mode %q", flag.Arg(0))
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "tls bench:", err)
		os.Exit(1)
	}
}

// client is one POP3 session over TLS.
type client struct {
	c *tls.Conn
	r *bufio.Reader
}

func dial(ctx context.Context, addr string) (*client, error) {
	d := &tls.Dialer{NetDialer: &net.Dialer{Timeout: 10 * time.Second}, Config: &tls.Config{InsecureSkipVerify: true}}
	c, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	tc := c.(*tls.Conn)
	_ = tc.SetDeadline(time.Now().Add(5 * time.Minute))
	cl := &client{c: tc, r: bufio.NewReaderSize(tc, 256<<10)}
	if _, err := cl.status(); err != nil {
		tc.Close()
		return nil, fmt.Errorf("greeting: %w", err)
	}
	return cl, nil
}

func (cl *client) status() (string, error) {
	l, err := cl.r.ReadString('\n')
	if err != nil {
		return "", err
	}
	if !strings.HasPrefix(l, "+OK") {
		return "", fmt.Errorf("server said %q", strings.TrimSpace(l))
	}
	return l, nil
}

func (cl *client) cmd(s string) (string, error) {
	if _, err := io.WriteString(cl.c, s+"\r\n"); err != nil {
		return "", err
	}
	return cl.status()
}

// body reads a multi-line body and returns its size on the wire.
func (cl *client) body() (int64, error) {
	var n int64
	for {
		l, err := cl.r.ReadSlice('\n')
		if errors.Is(err, bufio.ErrBufferFull) {
			n += int64(len(l))
			continue
		}
		if err != nil {
			return n, err
		}
		n += int64(len(l))
		if len(l) == 3 && l[0] == '.' {
			return n, nil
		}
	}
}

func (cl *client) login(user, pass string) (int, error) {
	if _, err := cl.cmd("USER " + user); err != nil {
		return 0, err
	}
	if _, err := cl.cmd("PASS " + pass); err != nil {
		return 0, err
	}
	l, err := cl.cmd("STAT")
	if err != nil {
		return 0, err
	}
	f := strings.Fields(l)
	if len(f) < 2 {
		return 0, fmt.Errorf("STAT: %q", l)
	}
	return strconv.Atoi(f[1])
}

func userFor(pattern string, i int) string {
	if strings.Contains(pattern, "%d") {
		return fmt.Sprintf(pattern, i+1)
	}
	return pattern
}

// sessions runs c workers doing whole sessions for d and prints the rate.
func sessions(addr string, pid int, user, pass string, c int, d time.Duration) error {
	ctx := context.Background()
	one := func(u string) error {
		cl, err := dial(ctx, addr)
		if err != nil {
			return err
		}
		defer cl.c.Close()
		if _, err := cl.login(u, pass); err != nil {
			return err
		}
		_, err = cl.cmd("QUIT")
		return err
	}
	if err := one(userFor(user, 0)); err != nil {
		return fmt.Errorf("first session: %w", err)
	}
	cpu0 := treeCPU(pid)
	start := time.Now()
	var done, failed atomic.Int64
	var first atomic.Value
	var wg sync.WaitGroup
	for i := range c {
		wg.Go(func() {
			for time.Since(start) < d {
				if err := one(userFor(user, i)); err != nil {
					failed.Add(1)
					first.CompareAndSwap(nil, err.Error())
					continue
				}
				done.Add(1)
			}
		})
	}
	wg.Wait()
	el := time.Since(start)
	cpu := treeCPU(pid) - cpu0
	n := done.Load()
	fmt.Printf("sessions c=%d: %d in %.1fs = %.0f/s; server CPU %.2fs = %.2f ms/session; failed %d",
		c, n, el.Seconds(), float64(n)/el.Seconds(), cpu, 1000*cpu/float64(max(n, 1)), failed.Load())
	if f := first.Load(); f != nil {
		fmt.Printf(" (first: %s)", f)
	}
	fmt.Println()
	return nil
}

// retr retrieves every message with window RETR commands in flight.
func retr(addr string, pid int, user, pass string, window int) error {
	cl, err := dial(context.Background(), addr)
	if err != nil {
		return err
	}
	defer cl.c.Close()
	n, err := cl.login(user, pass)
	if err != nil {
		return err
	}
	cpu0 := treeCPU(pid)
	start := time.Now()
	w := bufio.NewWriterSize(cl.c, 4096)
	next := 1
	var total int64
	send := func() error {
		fmt.Fprintf(w, "RETR %d\r\n", next)
		next++
		return w.Flush()
	}
	for next <= min(n, window) {
		if err := send(); err != nil {
			return err
		}
	}
	for got := 0; got < n; got++ {
		if _, err := cl.status(); err != nil {
			return fmt.Errorf("RETR %d: %w", got+1, err)
		}
		b, err := cl.body()
		if err != nil {
			return err
		}
		total += b
		if next <= n {
			if err := send(); err != nil {
				return err
			}
		}
	}
	el := time.Since(start)
	cpu := treeCPU(pid) - cpu0
	if _, err := cl.cmd("QUIT"); err != nil {
		return err
	}
	gb := float64(total) / 1e9
	fmt.Printf("retr w=%d: %d messages, %.1f MB in %.2fs = %.1f MB/s; server CPU %.2fs = %.2f s/GB\n",
		window, n, float64(total)/1e6, el.Seconds(), float64(total)/1e6/el.Seconds(), cpu, cpu/gb)
	return nil
}

// treeCPU returns the CPU seconds of process pid and all its descendants,
// live or reaped: each live process's own user and system time plus its
// reaped children's (cutime, cstime). A descendant that ends between two
// readings moves from its own count to its parent's, so differences are
// right as long as the root lives.
func treeCPU(pid int) float64 {
	if pid <= 0 {
		return 0
	}
	parent := map[int]int{}
	ticks := map[int]float64{}
	stats, _ := filepath.Glob("/proc/[0-9]*/stat")
	for _, f := range stats {
		b, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		s := string(b)
		i := strings.LastIndexByte(s, ')')
		if i < 0 {
			continue
		}
		fs := strings.Fields(s[i+1:])
		// After ")": state(0) ppid(1) ... utime(11) stime(12) cutime(13) cstime(14).
		if len(fs) < 15 {
			continue
		}
		p, _ := strconv.Atoi(filepath.Base(filepath.Dir(f)))
		pp, _ := strconv.Atoi(fs[1])
		var t float64
		for _, k := range fs[11:15] {
			v, _ := strconv.ParseFloat(k, 64)
			t += v
		}
		parent[p], ticks[p] = pp, t
	}
	var total float64
	for p, t := range ticks {
		for q := p; q > 1; q = parent[q] {
			if q == pid {
				total += t
				break
			}
		}
	}
	return total / 100 // USER_HZ
}
