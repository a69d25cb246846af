package e2e

import (
	"strconv"
	"testing"
)

// TestMetricsPrivsepMechanism: under privilege separation the login
// mechanism crosses from the pre-auth process to root in the credentials
// record (privsep, version 2), so the user's session process reports how
// the client logged in: an AUTH PLAIN login of a system account is counted
// as PLAIN by the exporter, passed or failed, and a USER/PASS one as USER.
func TestMetricsPrivsepMechanism(t *testing.T) {
	s := newSystemSiteWith(t, "tfwmech")
	msgs := smallMessages("tfwmech", 1, 2)
	u := s.account("tfwmech", "tfw mech pw", "SHA512", msgs)
	maddr := freeAddr(t)
	s.set("metrics_listen", strconv.Quote(maddr))
	s.set("session_min_hold", `"0s"`)
	d := s.startDaemon()
	waitForChild(t, d.p.cmd.Process.Pid, isExporter)
	scrapeUntil(t, maddr, "an answer", func(series) bool { return true })

	good := account{name: u.Name, password: "tfw mech pw"}
	sess := runSASLClient(t, d.addr, good, "PLAIN")
	if sess.Auth != "+OK" {
		t.Fatalf("AUTH PLAIN: %q", sess.Auth)
	}
	sess.checkMessages(t, msgs)
	if sess := runSASLClient(t, d.addr, account{name: u.Name, password: "wrong"}, "PLAIN"); sess.Auth != replyAuthFailed {
		t.Errorf("AUTH PLAIN with a wrong password: %q", sess.Auth)
	}
	c := dial(t, d.addr)
	c.login(good)
	c.quit()

	want := map[string]float64{
		`popa3d_logins_total{mechanism="PLAIN",result="passed"}`:       1,
		`popa3d_logins_total{mechanism="PLAIN",result="bad_password"}`: 1,
		`popa3d_logins_total{mechanism="USER",result="passed"}`:        1,
		`popa3d_logins_total{mechanism="USER",result="bad_password"}`:  0,
	}
	got := scrapeUntil(t, maddr, "three logins", func(s series) bool {
		n := 0.0
		for k := range want {
			n += s[k]
		}
		return n == 3 && s["popa3d_sessions_active"] == 0
	})
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %v, want %v", k, got[k], v)
		}
	}
	d.terminate(t)
}
