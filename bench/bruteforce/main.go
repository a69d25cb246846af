// Command bruteforce measures the -D daemon's brute-force penalties: workers
// from one source address guess passwords as fast as the server lets them
// (one PASS per connection, a refused connection retried after 10 ms),
// while a prober from another address logs in every 500 ms. It prints the
// wrong guesses answered in each minute and the prober's login latency
// (dial to PASS reply) before and during the attack.
//
//	bruteforce -addr 127.0.0.1:1110 -from 127.0.0.1 -honest-from 127.0.0.2 \
//	    -user alice -pass 'alice pw' -victim bob -workers 4 -minutes 3
//
// bench/guard.sh runs it against a daemon with the default settings.
package main

import (
	"bufio"
	"errors"
	"flag"
	"fmt"
	"net"
	"os"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:1110", "the daemon")
	from := flag.String("from", "127.0.0.1", "the attacker's source address")
	honestFrom := flag.String("honest-from", "127.0.0.2", "the honest client's source address")
	user := flag.String("user", "", "the honest account")
	pass := flag.String("pass", "", "its password")
	victim := flag.String("victim", "", "the account attacked")
	workers := flag.Int("workers", 4, "parallel attacking workers")
	minutes := flag.Int("minutes", 3, "length of the attack")
	flag.Parse()
	if *user == "" || *victim == "" {
		flag.Usage()
		os.Exit(2)
	}
	probe := func() (time.Duration, error) {
		t0 := time.Now()
		ok, err := login(*honestFrom, *addr, *user, *pass)
		if err == nil && !ok {
			err = errors.New("the honest login failed")
		}
		return time.Since(t0), err
	}
	var base []time.Duration
	for range 20 {
		d, err := probe()
		if err != nil {
			fmt.Fprintln(os.Stderr, "baseline:", err)
			os.Exit(1)
		}
		base = append(base, d)
		time.Sleep(100 * time.Millisecond)
	}

	start := time.Now()
	end := start.Add(time.Duration(*minutes) * time.Minute)
	perMinute := make([]atomic.Int64, *minutes+1)
	var refused, errs atomic.Int64
	var wg sync.WaitGroup
	for w := range *workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; time.Now().Before(end); i++ {
				ok, err := login(*from, *addr, *victim, fmt.Sprintf("guess %d-%d", w, i))
				switch {
				case errors.Is(err, errRefused):
					refused.Add(1)
					time.Sleep(10 * time.Millisecond)
				case err != nil:
					errs.Add(1)
					time.Sleep(10 * time.Millisecond)
				case !ok:
					if m := int(time.Since(start) / time.Minute); m < len(perMinute) {
						perMinute[m].Add(1)
					}
				}
			}
		}()
	}
	var during []time.Duration
	probeErrs := 0
	for time.Now().Before(end) {
		d, err := probe()
		if err != nil {
			probeErrs++
		} else {
			during = append(during, d)
		}
		time.Sleep(500 * time.Millisecond)
	}
	wg.Wait()
	fmt.Printf("workers %d from %s against %s, %d minutes\n", *workers, *from, *addr, *minutes)
	for m := range *minutes {
		fmt.Printf("minute %d: %d wrong guesses answered\n", m+1, perMinute[m].Load())
	}
	fmt.Printf("connections refused: %d; other errors: %d\n", refused.Load(), errs.Load())
	mb, md := median(base), median(during)
	fmt.Printf("honest logins from %s: baseline median %v (p90 %v); during the attack median %v (p90 %v) over %d logins, %d failed; ratio %.2f\n",
		*honestFrom, mb.Round(time.Microsecond), pct(base, 90).Round(time.Microsecond), md.Round(time.Microsecond),
		pct(during, 90).Round(time.Microsecond), len(during), probeErrs, float64(md)/float64(mb))
}

var errRefused = errors.New("refused without a byte")

// login tries one USER/PASS from the local address from: whether it passed,
// errRefused for a connection closed without a byte.
func login(from, addr, user, pass string) (bool, error) {
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(from)}, Timeout: 30 * time.Second}
	c, err := d.Dial("tcp4", addr)
	if err != nil {
		return false, err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(60 * time.Second))
	r := bufio.NewReader(c)
	l, err := r.ReadString('\n')
	if err != nil {
		if l == "" {
			return false, errRefused
		}
		return false, err
	}
	for _, cmd := range []string{"USER " + user, "PASS " + pass} {
		if _, err := c.Write([]byte(cmd + "\r\n")); err != nil {
			return false, err
		}
		if l, err = r.ReadString('\n'); err != nil {
			return false, err
		}
	}
	ok := strings.HasPrefix(l, "+OK")
	if ok {
		c.Write([]byte("QUIT\r\n"))
		r.ReadString('\n')
	}
	return ok, nil
}

func median(ds []time.Duration) time.Duration { return pct(ds, 50) }

func pct(ds []time.Duration, p int) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := append([]time.Duration(nil), ds...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	return s[len(s)*p/100]
}
