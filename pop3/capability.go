package pop3

import "context"

// capability is one line of the CAPA listing (RFC 2449 section 5) and when
// it is offered.
type capability struct {
	line string // the tag and its parameters, as sent
	// text, when set, builds the line for the session instead (SASL lists
	// the mechanisms this session can complete).
	text func(ss *session) string
	// offered reports, from the server's configuration and the session's
	// state, whether the session offers the capability now; nil means
	// always. RFC 2449 section 5 lets the listing change with the state (an
	// IMPLEMENTATION line only after login) and RFC 2595 section 4 with the
	// connection (STLS until TLS is on, USER only where passwords may cross).
	offered func(ss *session) bool
}

// capabilityTable is every capability the engine can offer, in the order CAPA
// lists them. An entry is offered only when it is really wired in: the
// listing is what this session can do now, never what a build might do.
var capabilityTable = []capability{
	{line: "TOP"},                                // RFC 2449 section 6.1
	{line: "USER", offered: userOffered},         // section 6.2
	{line: "UIDL"},                               // section 6.8
	{line: "RESP-CODES"},                         // section 6.4
	{line: "AUTH-RESP-CODE"},                     // RFC 3206 section 6
	{line: "PIPELINING"},                         // RFC 2449 section 6.6
	{text: saslCapability, offered: saslOffered}, // RFC 2449 section 6.3, RFC 5034
	{line: "UTF8 USER", offered: utf8Offered},    // RFC 6856 section 2
	{text: implementationCapability, offered: implementationOffered}, // RFC 2449 section 6.9
	{line: "STLS", offered: stlsOffered},                             // RFC 2595 section 4
}

// capabilities returns the lines of table that ss offers now.
func capabilities(table []capability, ss *session) []string {
	var lines []string
	for _, c := range table {
		if c.offered == nil || c.offered(ss) {
			line := c.line
			if c.text != nil {
				line = c.text(ss)
			}
			lines = append(lines, line)
		}
	}
	return lines
}

// cmdCapa lists the capabilities (RFC 2449 section 5), in either state.
func (ss *session) cmdCapa(ctx context.Context, args []string) {
	ss.reply("+OK Capability list follows")
	for _, line := range capabilities(capabilityTable, ss) {
		ss.out.WriteString(line)
		ss.out.WriteString("\r\n")
	}
	ss.out.WriteString(".\r\n")
}
