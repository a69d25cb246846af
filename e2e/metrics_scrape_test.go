package e2e

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"
)

// series is one scrape: the value of each series, keyed by its name and
// labels as the exposition writes them (`popa3d_logins_total{mechanism="USER",result="passed"}`).
type series map[string]float64

// tryScrape GETs http://addr/metrics with a plain HTTP client and parses
// the text exposition format.
func tryScrape(addr string) (series, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+"/metrics", nil)
	if err != nil {
		return nil, err
	}
	// Plain text, no compression: what a person with curl would see.
	req.Header.Set("Accept", "text/plain")
	resp, err := (&http.Client{Transport: &http.Transport{DisableCompression: true, DisableKeepAlives: true}}).Do(req)
	if err != nil {
		return nil, fmt.Errorf("scrape %s: %w", addr, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/plain") {
		return nil, fmt.Errorf("scrape %s: %s, %q", addr, resp.Status, resp.Header.Get("Content-Type"))
	}
	s := series{}
	sc := bufio.NewScanner(io.LimitReader(resp.Body, 1<<20))
	for sc.Scan() {
		l := sc.Text()
		if l == "" || strings.HasPrefix(l, "#") {
			continue
		}
		i := strings.LastIndexByte(l, ' ')
		if i < 0 {
			return nil, fmt.Errorf("scrape %s: line %q", addr, l)
		}
		v, err := strconv.ParseFloat(l[i+1:], 64)
		if err != nil {
			return nil, fmt.Errorf("scrape %s: line %q: %v", addr, l, err)
		}
		s[l[:i]] = v
	}
	return s, sc.Err()
}

// String lists the popa3d series, for failure messages.
func (s series) String() string {
	var b strings.Builder
	keys := make([]string, 0, len(s))
	for k := range s {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		fmt.Fprintf(&b, "%s %g\n", k, s[k])
	}
	return b.String()
}

// scrapeUntil scrapes until ready holds (the daemon's figures reach the
// exporter within a fraction of a second), for at most 10 s.
func scrapeUntil(t *testing.T, addr string, what string, ready func(series) bool) series {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		s, err := tryScrape(addr)
		if err == nil && ready(s) {
			return s
		}
		if time.Now().After(deadline) {
			t.Fatalf("metrics never showed %s (last error %v):\n%s", what, err, s)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// checkSeries fails for each series whose value is not the one wanted.
func checkSeries(t *testing.T, got series, want map[string]float64) {
	t.Helper()
	for k, v := range want {
		g, ok := got[k]
		if !ok {
			t.Errorf("no series %s", k)
		} else if g != v {
			t.Errorf("%s = %g, want %g", k, g, v)
		}
	}
	if t.Failed() {
		t.Logf("scrape:\n%s", got)
	}
}

// metricsScenario is the run both modes' metrics tests make against a
// daemon at addr whose metrics are at maddr, with at most 2 sessions per
// source and no slot held after a session: two idle sessions (and the
// active gauge at 2), a third refused per source, a wrong password, an
// unknown user, a good login that retrieves two messages and deletes one,
// and another that drops the connection in TRANSACTION. prior is the
// number of sessions that ended before, without a login (the start-up
// probe among them). It returns the series it expects, prior included.
func metricsScenario(t *testing.T, addr, maddr string, prior int, good, drop account, msgs []message) map[string]float64 {
	scrapeUntil(t, maddr, "the sessions before", func(s series) bool {
		return s[`popa3d_sessions_total{last_state="authorization"}`] == float64(prior) && s["popa3d_sessions_active"] == 0
	})
	idle1, idle2 := dial(t, addr), dial(t, addr)
	scrapeUntil(t, maddr, "2 active sessions", func(s series) bool { return s["popa3d_sessions_active"] == 2 })
	c, err := net.DialTimeout("tcp4", addr, ioTimeout)
	if err != nil {
		t.Fatal(err)
	}
	c.SetReadDeadline(time.Now().Add(ioTimeout))
	if n, err := c.Read(make([]byte, 16)); n != 0 || err == nil {
		t.Errorf("third connection from one source: read %d bytes, %v; want a close without a byte", n, err)
	}
	c.Close()
	idle1.close()
	idle2.close()
	scrapeUntil(t, maddr, "the idle sessions' end", func(s series) bool { return s["popa3d_sessions_active"] == 0 })

	w := dial(t, addr)
	w.ok("USER " + good.name)
	if r := w.cmd("PASS wrong password"); !strings.HasPrefix(r, "-ERR [AUTH]") {
		t.Errorf("wrong password: %q", r)
	}
	w.expectClose()

	u := dial(t, addr)
	u.ok("USER metnosuchuser")
	if r := u.cmd("PASS whatever"); !strings.HasPrefix(r, "-ERR [AUTH]") {
		t.Errorf("unknown user: %q", r)
	}
	u.expectClose()

	g := dial(t, addr)
	g.login(good)
	for i := range 2 {
		if got := g.okMulti(fmt.Sprintf("RETR %d", i+1)); string(got) != string(msgs[i].wire()) {
			t.Errorf("RETR %d: %q", i+1, excerpt(got, 0))
		}
	}
	g.ok("DELE 1")
	g.quit()

	d := dial(t, addr)
	d.login(drop)
	d.ok("STAT")
	d.close()

	return map[string]float64{
		"popa3d_connections_accepted_total":                               float64(6 + prior),
		`popa3d_connections_refused_total{reason="per_source"}`:           1,
		`popa3d_connections_refused_total{reason="sessions"}`:             0,
		`popa3d_logins_total{mechanism="USER",result="passed"}`:           2,
		`popa3d_logins_total{mechanism="USER",result="bad_password"}`:     1,
		`popa3d_logins_total{mechanism="USER",result="unknown_user"}`:     1,
		`popa3d_logins_total{mechanism="USER",result="auth_unavailable"}`: 0,
		`popa3d_sessions_total{last_state="authorization"}`:               float64(4 + prior),
		`popa3d_sessions_total{last_state="transaction"}`:                 1,
		`popa3d_sessions_total{last_state="update"}`:                      1,
		`popa3d_session_failures_total{reason="bad_password"}`:            1,
		`popa3d_session_failures_total{reason="unknown_user"}`:            1,
		"popa3d_messages_retrieved_total":                                 2,
		"popa3d_retrieved_bytes_total":                                    float64(msgs[0].size() + msgs[1].size()),
		"popa3d_messages_deleted_total":                                   1,
		"popa3d_update_duration_seconds_count":                            1,
		"popa3d_session_duration_seconds_count":                           float64(6 + prior),
		`popa3d_session_duration_seconds_bucket{le="+Inf"}`:               float64(6 + prior),
		"popa3d_sessions_active":                                          0,
		"popa3d_penalties_in_force":                                       0,
	}
}

// processUIDs returns the real, effective, saved and file-system uids of
// process pid, from /proc.
func processUIDs(t *testing.T, pid int) []string {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(l, "Uid:"); ok {
			return strings.Fields(rest)
		}
	}
	t.Fatalf("no Uid line in /proc/%d/status", pid)
	return nil
}

// listenerPID returns the pid of the process that has the listening
// socket on addr among pids, from /proc/net/tcp and /proc/PID/fd.
func listenerPID(t *testing.T, addr string, pids ...int) int {
	t.Helper()
	inode := listenInode(t, addr)
	for _, pid := range pids {
		if holdsSocket(pid, inode) {
			return pid
		}
	}
	t.Fatalf("none of %v holds the listener on %s", pids, addr)
	return 0
}

// holdsSocket reports whether process pid has a descriptor of the socket
// inode.
func holdsSocket(pid int, inode string) bool {
	ents, _ := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	for _, e := range ents {
		if l, err := os.Readlink(fmt.Sprintf("/proc/%d/fd/%s", pid, e.Name())); err == nil && l == "socket:["+inode+"]" {
			return true
		}
	}
	return false
}

// listenInode returns the inode of the IPv4 socket listening on addr.
func listenInode(t *testing.T, addr string) string {
	t.Helper()
	ap, err := netipAddrPort(addr)
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile("/proc/net/tcp")
	if err != nil {
		t.Fatal(err)
	}
	ip := ap.Addr().As4()
	local := fmt.Sprintf("%02X%02X%02X%02X:%04X", ip[3], ip[2], ip[1], ip[0], ap.Port())
	for _, l := range strings.Split(string(b), "\n")[1:] {
		f := strings.Fields(l)
		if len(f) > 9 && f[1] == local && f[3] == "0A" { // TCP_LISTEN
			return f[9]
		}
	}
	t.Fatalf("nothing listens on %s", addr)
	return ""
}

func netipAddrPort(addr string) (netip.AddrPort, error) { return netip.ParseAddrPort(addr) }
