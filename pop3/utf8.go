package pop3

import "context"

// UTF8 (RFC 6856) and IMPLEMENTATION (RFC 2449 section 6.9).

// cmdUTF8 turns on UTF-8 mode (RFC 6856 section 2) in AUTHORIZATION: from
// then on USER and PASS take UTF-8, prepared as RFC 8265 (PRECIS, the
// successor of the SASLprep that RFC 6856 section 3 names) prepares user
// names (UsernameCasePreserved) and passwords (OpaqueString); one that
// cannot be prepared is refused with -ERR. Messages are sent as they are
// stored either way. Before UTF8, USER and PASS take bytes as popa3d did.
func (ss *session) cmdUTF8(ctx context.Context, args []string) {
	ss.utf8 = true
	ss.reply("+OK UTF8 enabled")
}

// utf8Offered: UTF8 is a command of AUTHORIZATION, listed there.
func utf8Offered(ss *session) bool { return ss.state == stateAuthorization }

func implementationCapability(ss *session) string {
	return "IMPLEMENTATION " + ss.srv.Implementation
}

// implementationOffered: only when configured (off by default) and after
// login, so that an unauthenticated client learns nothing of the server.
func implementationOffered(ss *session) bool {
	return ss.srv != nil && ss.srv.Implementation != "" && ss.state == stateTransaction
}
