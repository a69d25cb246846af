// Command sessions measures how many whole POP3 sessions a server completes
// per second: connect, read the greeting, USER, PASS, STAT, QUIT, close. It
// is the client of bench/peers-sessions.sh, which runs it against our -D and
// Debian's popa3d on the same machine with the same account.
//
//	go run ./bench/sessions -addr 127.0.0.1:110 -user U -pass P [-c 8] [-d 10s]
//
// A user name with %d gives each of the c workers its own account (worker i
// logs in as the name with i in place of %d, from 1), since a mailbox serves
// one session at a time.
package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"net"
	"os"
	"slices"
	"strings"
	"sync"
	"time"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:110", "server address")
	user := flag.String("user", "", "user name")
	pass := flag.String("pass", "", "password")
	conc := flag.Int("c", 8, "sessions in flight")
	dur := flag.Duration("d", 10*time.Second, "how long to measure")
	warm := flag.Duration("warm", time.Second, "warm-up before measuring")
	flag.Parse()
	if *user == "" || *pass == "" {
		flag.Usage()
		os.Exit(2)
	}
	if err := session(context.Background(), *addr, userFor(*user, 0), *pass); err != nil {
		fmt.Fprintln(os.Stderr, "sessions: first session:", err)
		os.Exit(1)
	}
	run(*addr, *user, *pass, *conc, *warm)
	n, lat, fails := run(*addr, *user, *pass, *conc, *dur)
	slices.Sort(lat)
	pct := func(p float64) time.Duration {
		if len(lat) == 0 {
			return 0
		}
		return lat[min(len(lat)-1, int(p*float64(len(lat))))]
	}
	fmt.Printf("%.1f sessions/s  (%d in %v, %d in flight, %d failed)  latency p50 %v p90 %v p99 %v\n",
		float64(n)/dur.Seconds(), n, *dur, *conc, fails,
		pct(0.5).Round(10*time.Microsecond), pct(0.9).Round(10*time.Microsecond), pct(0.99).Round(10*time.Microsecond))
	if fails > 0 {
		os.Exit(1)
	}
}

// run keeps conc sessions in flight for d and returns how many completed,
// their durations, and how many failed.
func run(addr, user, pass string, conc int, d time.Duration) (int, []time.Duration, int) {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	// A dial cut by the deadline can report its timeout a moment before
	// ctx says it is done; it is no failure of the server.
	cut := time.Now().Add(d - 50*time.Millisecond)
	var mu sync.Mutex
	var lat []time.Duration
	fails := 0
	var wg sync.WaitGroup
	for w := range conc {
		wg.Go(func() {
			for ctx.Err() == nil {
				start := time.Now()
				err := session(ctx, addr, userFor(user, w), pass)
				mu.Lock()
				switch {
				case err == nil:
					lat = append(lat, time.Since(start))
				case ctx.Err() == nil && time.Now().Before(cut):
					fails++
					if fails <= 3 {
						fmt.Fprintln(os.Stderr, "sessions:", err)
					}
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	return len(lat), lat, fails
}

// userFor returns worker w's user name.
func userFor(pattern string, w int) string {
	if strings.Contains(pattern, "%d") {
		return fmt.Sprintf(pattern, w+1)
	}
	return pattern
}

// session runs one whole session and checks every reply.
func session(ctx context.Context, addr, user, pass string) error {
	var d net.Dialer
	c, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return err
	}
	defer c.Close()
	deadline := time.Now().Add(30 * time.Second)
	if dl, ok := ctx.Deadline(); ok && dl.Before(deadline) {
		deadline = dl.Add(10 * time.Second) // let a started session finish
	}
	c.SetDeadline(deadline)
	r := bufio.NewReader(c)
	expect := func(cmd string) error {
		if cmd != "" {
			if _, err := c.Write([]byte(cmd + "\r\n")); err != nil {
				return err
			}
		}
		line, err := r.ReadString('\n')
		if err != nil {
			return fmt.Errorf("after %q: %w", cmd, err)
		}
		if !strings.HasPrefix(line, "+OK") {
			return fmt.Errorf("after %q: %q", cmd, strings.TrimSpace(line))
		}
		return nil
	}
	for _, cmd := range []string{"", "USER " + user, "PASS " + pass, "STAT", "QUIT"} {
		if err := expect(cmd); err != nil {
			return err
		}
	}
	if _, err := r.ReadByte(); err == nil {
		return errors.New("bytes after QUIT's reply")
	}
	return nil
}
