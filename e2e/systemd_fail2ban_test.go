package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"
)

// TestFail2banFilter runs fail2ban-regex with contrib/fail2ban's filter on
// the log of real sessions through a PROXY listener, in single-account mode
// (all sessions under one pid) and with privilege separation (a pid per
// session): failed logins, with a wrong password and for an unknown user,
// interleaved with a good login from another address. Each failure must be
// counted against the address that made it, and the good login's address
// never. The same lines are also checked as a syslog daemon writes them.
func TestFail2banFilter(t *testing.T) {
	regex := requireTool(t, "fail2ban-regex")
	common := "/etc/fail2ban/filter.d/common.conf"
	if _, err := os.Stat(common); err != nil {
		t.Fatalf("fail2ban's %s: %v", common, err)
	}
	for _, mode := range []string{"single", "privsep"} {
		t.Run(mode, func(t *testing.T) {
			ps := newProxySite(t, mode)
			ps.set("max_sessions_per_source", "10")
			d := ps.startDaemon()
			from := func(src string, port int) *client {
				return greeted(t, dialFrom(t, "127.0.0.1", ps.proxyAddr, headerV1(src, port)))
			}
			fail := func(c *client, pass string) {
				t.Helper()
				if r := c.cmd("PASS " + pass); !strings.HasPrefix(r, "-ERR") {
					t.Fatalf("PASS %s: %q", pass, r)
				}
				c.expectClose()
			}
			// Interleaved: the good login's "Session from" comes between
			// the bad one's "Session from" and its failure.
			bad := from("192.0.2.10", 41000)
			bad.ok("USER " + ps.user.name)
			good := from("192.0.2.12", 41001)
			good.ok("USER " + ps.user.name)
			fail(bad, "wrong")
			unknown := from("192.0.2.11", 41002)
			unknown.ok("USER pxynosuchuser")
			good.ok("PASS " + ps.user.password)
			fail(unknown, "whatever")
			good.quit()
			again := from("192.0.2.10", 41003)
			again.ok("USER " + ps.user.name)
			fail(again, "wrong again")
			v6 := greeted(t, dialFrom(t, "127.0.0.1", ps.proxyAddr, headerV2(t, "2001:db8::66", 41004)))
			v6.ok("USER " + ps.user.name)
			fail(v6, "wrong")
			d.terminate(t)
			log := d.p.log()

			dir := t.TempDir()
			os.Mkdir(filepath.Join(dir, "filter.d"), 0o755)
			for _, f := range []string{common, "../contrib/fail2ban/filter.d/popa3d.conf"} {
				b, err := os.ReadFile(f)
				if err != nil {
					t.Fatal(err)
				}
				os.WriteFile(filepath.Join(dir, "filter.d", filepath.Base(f)), b, 0o644)
			}
			want := []string{"192.0.2.10", "192.0.2.10", "192.0.2.11", "2001:db8::66"}
			check := func(what, text string) {
				t.Helper()
				p := filepath.Join(dir, what+".log")
				os.WriteFile(p, []byte(text), 0o644)
				r := runCommand(t, 60*time.Second, nil, nil, regex, "-c", dir, "-o", "ip", p, "popa3d")
				if r.code != 0 {
					t.Fatalf("fail2ban-regex on %s: exit %d\n%s\n%s", what, r.code, r.stdout, r.stderr)
				}
				got := strings.Fields(string(r.stdout))
				slices.Sort(got)
				if !slices.Equal(got, want) {
					t.Errorf("%s: fail2ban found failures from %q, want %q; log:\n%s", what, got, want, text)
				}
			}
			check("stderr", log)
			check("syslog", asSyslog(log))
			// The -D flood guard's penalty line (branch guard) has the
			// address in it and comes under the daemon's pid, between
			// sessions' lines in single-account mode: it counts for its
			// own address, and leaves nothing behind for the next line.
			want = append(want, "198.51.100.77")
			slices.Sort(want)
			pid := regexp.MustCompile(`popa3d\[(\d+)\]: info: Daemon totals`).FindStringSubmatch(log)
			if pid == nil {
				t.Fatalf("no Daemon totals line:\n%s", log)
			}
			penalty := fmt.Sprintf("%s popa3d[%s]: notice: 198.51.100.77: 5 failed logins, penalised\n", time.Now().UTC().Format("2006-01-02T15:04:05Z"), pid[1])
			i := strings.LastIndex(log[:strings.Index(log, "Session from 192.0.2.11")], "\n") + 1
			check("stderr with a penalty line", log[:i]+penalty+log[i:])
		})
	}
}

// stderrLine is a line of popa3d's stderr log.
var stderrLine = regexp.MustCompile(`^(\d{4})-(\d\d)-(\d\d)T(\d\d:\d\d:\d\d)Z (popa3d\[\d+\]): (?:debug|info|notice|crit): (.*)$`)

// asSyslog rewrites popa3d's stderr lines as a syslog daemon writes the
// same messages to a file (RFC 3164 time stamp, host name, tag, message).
func asSyslog(log string) string {
	var b strings.Builder
	for _, l := range strings.Split(log, "\n") {
		m := stderrLine.FindStringSubmatch(l)
		if m == nil {
			continue
		}
		tm, err := time.Parse("2006-01-02", m[1]+"-"+m[2]+"-"+m[3])
		if err != nil {
			continue
		}
		fmt.Fprintf(&b, "%s %2d %s pxyhost %s: %s\n", tm.Format("Jan"), tm.Day(), m[4], m[5], m[6])
	}
	return b.String()
}
