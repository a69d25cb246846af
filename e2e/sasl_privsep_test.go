package e2e

import (
	"slices"
	"testing"
)

// TestSASLPrivsepPlain logs a real system account in with AUTH PLAIN under
// privilege separation, in inetd mode and with -D: the pre-auth process
// parses the exchange and hands root the same credentials as USER/PASS.
// System accounts offer PLAIN only (shadow holds no SCRAM verifier), and an
// authorization identity of another user never reaches root.
func TestSASLPrivsepPlain(t *testing.T) {
	s := newSystemSiteWith(t, "saslpre")
	msgs := smallMessages("saslplain", 1, 3)
	u := s.account("saslplain", "plain sys pass", "YESCRYPT", msgs)
	for _, mode := range []string{"inetd", "daemon"} {
		t.Run(mode, func(t *testing.T) {
			addr, finish := s.startMode(mode)
			sess := runSASLClient(t, addr, account{name: u.Name, password: "plain sys pass"}, "PLAIN")
			if sess.Auth != "+OK" {
				t.Fatalf("AUTH PLAIN: %q", sess.Auth)
			}
			if !slices.Contains(sess.Capa, "SASL PLAIN") {
				t.Errorf("CAPA %q, want SASL PLAIN alone", sess.Capa)
			}
			sess.checkMessages(t, msgs)
			if sess := runSASLClient(t, addr, account{name: u.Name, password: "wrong"}, "PLAIN"); sess.Auth != replyAuthFailed {
				t.Errorf("wrong password: %q", sess.Auth)
			}
			if sess := runSASLClient(t, addr, account{name: u.Name, password: "plain sys pass"}, "SCRAM-SHA-256"); sess.Auth != "-ERR Unsupported authentication mechanism" {
				t.Errorf("SCRAM for a system account: %q", sess.Auth)
			}
			c := dial(t, addr)
			if got := c.cmd("AUTH PLAIN " + b64("root\x00"+u.Name+"\x00plain sys pass")); got != "-ERR [AUTH] Authorization identity must be the authenticated user" {
				t.Errorf("authzid root: %q", got)
			}
			c.expectClose()
			finish(t)
		})
	}
}
