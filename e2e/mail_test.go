package e2e

import (
	"bytes"
	"crypto/md5"
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"
)

// message is a test message whose every wire property is known without the
// server: its data is what RETR sends (before CRLF and dot-stuffing), and its
// hashed lines are the header lines popa3d's UIDL hashes
// (doc/popa3d-compat.md §13, UIDL algorithm).
type message struct {
	fromLine string // the mbox From_ line, without LF
	sender   string // the Return-Path address
	data     []byte // header, empty line, body; every line ends in LF
	hashed   []byte // Delivered-To and the first Received with its continuation
}

// raw is the message as stored in an mbox: the From_ line, the data and the
// empty separator line, which popa3d does not send because the message has a
// body (doc/popa3d-compat.md §7, mbox parsing).
func (m message) raw() []byte {
	var b bytes.Buffer
	b.WriteString(m.fromLine + "\n")
	b.Write(m.data)
	b.WriteString("\n")
	return b.Bytes()
}

// size is the LIST size: every LF counts as CRLF; dot-stuffing is not counted.
func (m message) size() int { return len(m.data) + bytes.Count(m.data, []byte("\n")) }

// uid is popa3d's UIDL: the MD5 of the hashed lines, its first two 32-bit
// little-endian words printed as %08x each.
func (m message) uid() string {
	sum := md5.Sum(m.hashed)
	return fmt.Sprintf("%02x%02x%02x%02x%02x%02x%02x%02x",
		sum[3], sum[2], sum[1], sum[0], sum[7], sum[6], sum[5], sum[4])
}

// wire is the message as RETR sends it between "+OK" and ".": CRLF line ends
// and dot-stuffing.
func (m message) wire() []byte {
	var b bytes.Buffer
	for _, l := range lines(m.data) {
		if len(l) > 0 && l[0] == '.' {
			b.WriteByte('.')
		}
		b.Write(l)
		b.WriteString("\r\n")
	}
	return b.Bytes()
}

// crlf is the data with CRLF line ends and no dot-stuffing (what curl writes).
func (m message) crlf() []byte { return bytes.ReplaceAll(m.data, []byte("\n"), []byte("\r\n")) }

// header is the header and the empty line after it: what TOP n 0 sends.
func (m message) header() []byte {
	i := bytes.Index(m.data, []byte("\n\n"))
	return m.data[:i+2]
}

// lines splits LF-ended data into lines without their LF.
func lines(data []byte) [][]byte {
	ls := bytes.SplitAfter(data, []byte("\n"))
	var out [][]byte
	for _, l := range ls {
		if len(l) > 0 {
			out = append(out, bytes.TrimSuffix(l, []byte("\n")))
		}
	}
	return out
}

// newMessage builds message n of user's mailbox. The UIDL input is the
// Delivered-To line and the first Received line with its continuation; Date
// and Message-ID come after the Received, so they are not hashed.
func newMessage(user string, n int, subject string, body []byte) message {
	delivered := fmt.Sprintf("Delivered-To: %s@example.net\n", user)
	received := fmt.Sprintf("Received: from mx%d.example.org (mx%d.example.org [192.0.2.%d])\n"+
		"\tby pop.example.net (Postfix) with ESMTP id E2E%04d; Thu, 15 Feb 2024 10:%02d:00 +0000\n", n, n, n%250+1, n, n%60)
	var b bytes.Buffer
	fmt.Fprintf(&b, "Return-Path: <sender%d@example.org>\n", n)
	b.WriteString(delivered)
	b.WriteString(received)
	fmt.Fprintf(&b, "Date: Thu, 15 Feb 2024 09:%02d:59 +0000\n", n%60)
	fmt.Fprintf(&b, "From: Sender %d <sender%d@example.org>\n", n, n)
	fmt.Fprintf(&b, "To: %s@example.net\n", user)
	fmt.Fprintf(&b, "Subject: %s\n", subject)
	fmt.Fprintf(&b, "Message-ID: <e2e-%d-%s@example.org>\n", n, user)
	b.WriteString("\n")
	b.Write(body)
	return message{
		fromLine: fmt.Sprintf("From sender%d@example.org Thu Feb 15 10:%02d:00 2024", n, n%60),
		sender:   fmt.Sprintf("sender%d@example.org", n),
		data:     b.Bytes(),
		hashed:   []byte(delivered + received),
	}
}

// Sizes of the long lines and of the big message in the standard mailbox.
const (
	longLine   = 100_000
	dotLongOne = 70_000
	bigMessage = 3 << 20
)

// standardMessages is the mailbox most tests serve: dot-led lines, quoted and
// unquoted From lines inside a paragraph, long lines, 8-bit bytes, a message
// of a few MB and a short last message.
func standardMessages(user string) []message {
	return standardMessagesLines(user, longLine, dotLongOne)
}

// standardMessagesLines is standardMessages with long lines of the given
// lengths.
func standardMessagesLines(user string, long, dotLong int) []message {
	dots := "This message has dot-led lines.\n" +
		".\n" +
		"..\n" +
		"...\n" +
		".leading dot\n" +
		"..two leading dots\n" +
		". space after a dot\n" +
		"a line with a trailing dot.\n" +
		"end of the first message\n"
	fromLines := "A paragraph with From lines that do not start a message:\n" +
		">From the quoted start of a line\n" +
		"From here on, a From line after a non-empty line is body text\n" +
		">>From twice quoted\n" +
		"\n" +
		"Not after an empty line: from lowercase, From: with a colon.\n" +
		"From\n" +
		"the end\n"
	var eight bytes.Buffer
	eight.WriteString("UTF-8: Z\u00fcrich, \u20ac, \u65e5\u672c\u8a9e\n")
	eight.WriteString("Latin-1: \xe9t\xe9, \xfcber, \xa9\n")
	for c := 0x80; c <= 0xff; c++ {
		eight.WriteByte(byte(c))
	}
	eight.WriteString("\n")
	eight.WriteString(strings.Repeat("0123456789abcdefghijklmnopqrstuvwxyz", long/36+1)[:long] + "\n")
	eight.WriteString("." + strings.Repeat("a dot-led long line ", dotLong/20+1)[:dotLong-1] + "\n")
	eight.WriteString("after the long lines\n")
	return []message{
		newMessage(user, 1, "dot-led lines", []byte(dots)),
		newMessage(user, 2, "From lines in the body", []byte(fromLines)),
		newMessage(user, 3, "8-bit \xc3\xbcml\xc3\xa4uts and long lines", eight.Bytes()),
		newMessage(user, 4, "a big message", bigBody(bigMessage, 4)),
		newMessage(user, 5, "the last one", []byte("Short and last.\n")),
	}
}

// smallMessages is a mailbox of k short messages.
func smallMessages(user string, first, k int) []message {
	var ms []message
	for n := first; n < first+k; n++ {
		ms = append(ms, newMessage(user, n, "message "+strconv.Itoa(n),
			[]byte(fmt.Sprintf("Body of message %d for %s.\n.dot-led line %d\n", n, user, n))))
	}
	return ms
}

// bigBody is size bytes or a little more of text lines made from seed: words
// and paragraphs, with dot-led lines and From lines after non-empty lines
// sprinkled in. No line starts with "From " after an empty line, so the body
// stays one message.
func bigBody(size int, seed uint64) []byte {
	r := rand.New(rand.NewPCG(seed, 0x5eed))
	words := []string{"mail", "POP3", "mbox", "popa3d", "server", "client", "line", "octet",
		"message", "body", "header", "UIDL", "quit", "dele", "retr", "a", "the", "of"}
	var b bytes.Buffer
	afterEmpty := false
	for n := 0; b.Len() < size; n++ {
		empty := false
		switch {
		case n%997 == 0:
			fmt.Fprintf(&b, ".dot-led line %d\n", n)
		case n%1009 == 0 && !afterEmpty:
			fmt.Fprintf(&b, "From inside a paragraph, line %d\n", n)
		case n%53 == 0:
			b.WriteString("\n")
			empty = true
		default:
			k := 1 + r.IntN(14)
			for i := range k {
				if i > 0 {
					b.WriteByte(' ')
				}
				b.WriteString(words[r.IntN(len(words))])
			}
			b.WriteString("\n")
		}
		afterEmpty = empty
	}
	b.WriteString("end of the big message\n")
	return b.Bytes()
}

// mbox is the mailbox file holding msgs.
func mbox(msgs ...message) []byte {
	var b bytes.Buffer
	for _, m := range msgs {
		b.Write(m.raw())
	}
	return b.Bytes()
}

// without returns msgs less the messages numbered (1-based) in dels.
func without(msgs []message, dels ...int) []message {
	drop := map[int]bool{}
	for _, d := range dels {
		drop[d] = true
	}
	var out []message
	for i, m := range msgs {
		if !drop[i+1] {
			out = append(out, m)
		}
	}
	return out
}

// totalSize is STAT's octet count for msgs.
func totalSize(msgs []message) int {
	n := 0
	for _, m := range msgs {
		n += m.size()
	}
	return n
}

// listLines and uidlLines are the expected LIST and UIDL lines, numbered from 1.
func listLines(msgs []message) []string {
	var out []string
	for i, m := range msgs {
		out = append(out, fmt.Sprintf("%d %d", i+1, m.size()))
	}
	return out
}

func uidlLines(msgs []message) []string {
	var out []string
	for i, m := range msgs {
		out = append(out, fmt.Sprintf("%d %s", i+1, m.uid()))
	}
	return out
}
