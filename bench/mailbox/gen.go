package main

import (
	"bufio"
	"encoding/base64"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"time"
)

// shape is a mailbox's size mix. Text mails are log-normal around
// textMedian, clamped to [textMin, textMax]; one in attachEvery (none if 0)
// carries a base64 attachment, its total size log-uniform between attachMin
// and attachMax.
type shape struct {
	textMedian, textSigma float64
	textMin, textMax      int
	attachEvery           int
	attachMin, attachMax  float64
}

// shapes are the mixes gen -shape offers.
var shapes = map[string]shape{
	// mixed: most text mails 2-20 KB, one in 600 with an attachment of
	// 100 KB-2 MB: 200,000 messages come to about 1 GB, 10,000 to about
	// 50 MB.
	"mixed": {textMedian: 3600, textSigma: 0.5, textMin: 900, textMax: 60000,
		attachEvery: 600, attachMin: 100 << 10, attachMax: 2 << 20},
	// small: short text mails of about 1.4 KB (notifications, list
	// traffic), no attachment: 100,000 messages come to about 140 MB.
	"small": {textMedian: 1400, textSigma: 0.2, textMin: 900, textMax: 4000},
}

const (
	lineWidth = 72 // text lines wrap before this
	b64Width  = 76 // RFC 2045 section 6.8
)

// genStats describes a generated mailbox.
type genStats struct {
	Messages    int   `json:"messages"`
	Bytes       int64 `json:"bytes"`       // file size (LF line ends)
	Attachments int   `json:"attachments"` // messages with a base64 attachment
	Quoted      int   `json:"quoted"`      // body lines written as ">From "
}

var words = []string{
	"the", "of", "and", "to", "in", "a", "is", "that", "for", "it", "as", "was", "with", "be", "by",
	"on", "not", "he", "this", "are", "or", "his", "from", "at", "which", "but", "have", "an", "had",
	"they", "you", "were", "their", "one", "all", "we", "can", "her", "has", "there", "been", "if",
	"more", "when", "will", "would", "who", "so", "no", "meeting", "report", "server", "mailbox",
	"quarterly", "figures", "please", "attached", "review", "tomorrow", "schedule", "thanks",
	"regards", "project", "release", "deadline", "budget", "invoice", "customer", "delivery",
	"question", "answer", "update", "change", "request", "approved", "pending", "draft", "final",
	"version", "network", "storage", "backup", "password", "account", "message", "office", "travel",
	"conference", "agenda", "minutes", "summary", "details", "contract", "order", "shipment",
}

var firstNames = []string{"alice", "bob", "carol", "dave", "erin", "frank", "grace", "heidi", "ivan",
	"judy", "mallory", "oscar", "peggy", "rupert", "sybil", "trent", "victor", "walter"}

var domains = []string{"example.org", "example.com", "example.net", "mail.example.org",
	"lists.example.com", "corp.example.net"}

// generator writes one deterministic mbox: the same seed and count give the
// same bytes.
type generator struct {
	r     *rand.Rand
	w     *bufio.Writer
	user  string
	when  time.Time
	shape shape
	stats genStats
	line  []byte
	raw   []byte
	enc   []byte
}

// generate writes n messages of the mixed shape to w in mbox format
// (mboxo: body lines that begin with "From " are written as ">From ").
func generate(w io.Writer, n int, seed uint64, user string) (genStats, error) {
	return generateShape(w, shapes["mixed"], n, seed, user)
}

// generateShape is generate with the size mix sh.
func generateShape(w io.Writer, sh shape, n int, seed uint64, user string) (genStats, error) {
	g := &generator{
		r:     rand.New(rand.NewPCG(seed, uint64(n))),
		w:     bufio.NewWriterSize(w, 1<<20),
		user:  user,
		when:  time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC),
		shape: sh,
	}
	for i := range n {
		g.message(i)
	}
	if err := g.w.Flush(); err != nil {
		return g.stats, fmt.Errorf("write mailbox: %w", err)
	}
	g.stats.Messages = n
	return g.stats, nil
}

// size draws the target size of the next message.
func (g *generator) size() (int, bool) {
	sh := &g.shape
	if sh.attachEvery > 0 && g.r.IntN(sh.attachEvery) == 0 {
		u := g.r.Float64()
		return int(sh.attachMin * math.Pow(sh.attachMax/sh.attachMin, u)), true
	}
	s := int(math.Exp(math.Log(sh.textMedian) + sh.textSigma*g.r.NormFloat64()))
	return min(max(s, sh.textMin), sh.textMax), false
}

func (g *generator) pick(list []string) string { return list[g.r.IntN(len(list))] }

func (g *generator) message(i int) {
	target, attach := g.size()
	g.when = g.when.Add(time.Duration(1+g.r.IntN(300)) * time.Second)
	sent := g.when.Add(-time.Duration(1+g.r.IntN(30)) * time.Second)
	name := g.pick(firstNames)
	dom := g.pick(domains)
	from := name + "@" + dom
	rfc := func(t time.Time) string { return t.Format("Mon, 2 Jan 2006 15:04:05 -0700") }
	var h []byte
	h = fmt.Appendf(h, "From %s %s\n", from, g.when.Format("Mon Jan _2 15:04:05 2006"))
	h = fmt.Appendf(h, "Return-Path: <%s>\n", from)
	h = fmt.Appendf(h, "Received: from mx%d.%s (mx%d.%s [192.0.2.%d])\n\tby mail.example.net (Postfix) with ESMTPS id %X\n\tfor <%s@example.net>; %s\n",
		g.r.IntN(4), dom, g.r.IntN(4), dom, 1+g.r.IntN(254), g.r.Uint32(), g.user, rfc(g.when))
	h = fmt.Appendf(h, "Received: from [198.51.100.%d] (port %d)\n\tby mx.%s with ESMTPSA id %08x; %s\n",
		1+g.r.IntN(254), 1024+g.r.IntN(60000), dom, g.r.Uint32(), rfc(sent))
	h = fmt.Appendf(h, "Message-ID: <%s.%d.%08x@%s>\n", sent.Format("20060102150405"), i, g.r.Uint32(), dom)
	h = fmt.Appendf(h, "Date: %s\n", rfc(sent))
	h = fmt.Appendf(h, "From: %s <%s>\n", name, from)
	h = fmt.Appendf(h, "To: %s@example.net\n", g.user)
	h = fmt.Appendf(h, "Subject: %s %s %s #%d\n", g.pick(words), g.pick(words), g.pick(words), i)
	h = append(h, "MIME-Version: 1.0\n"...)
	g.stats.Bytes += int64(len(h))
	g.w.Write(h)
	rest := target - len(h)
	if !attach {
		g.put("Content-Type: text/plain; charset=us-ascii\nContent-Transfer-Encoding: 7bit\n\n")
		g.text(rest - 80)
	} else {
		boundary := fmt.Sprintf("=_b%d_%08x", i, g.r.Uint32())
		g.put("Content-Type: multipart/mixed; boundary=\"" + boundary + "\"\n\nThis is a multi-part message in MIME format.\n\n")
		g.put("--" + boundary + "\nContent-Type: text/plain; charset=us-ascii\n\n")
		note := 500 + g.r.IntN(2500)
		g.text(note)
		g.put("\n--" + boundary + "\nContent-Type: application/octet-stream; name=\"data.bin\"\nContent-Transfer-Encoding: base64\nContent-Disposition: attachment; filename=\"data.bin\"\n\n")
		g.base64(max(rest-note-400, 1) * 3 / 4 * b64Width / (b64Width + 1))
		g.put("--" + boundary + "--\n")
	}
	g.put("\n") // the empty line before the next From_ line
}

func (g *generator) put(s string) {
	g.w.WriteString(s)
	g.stats.Bytes += int64(len(s))
}

// text writes wrapped lines of words until about n bytes. Now and then a
// line begins with "From " (quoted as ">From ") or with a dot (stuffed by
// the server), so both rules are exercised.
func (g *generator) text(n int) {
	for written := 0; written < n; {
		l := g.line[:0]
		switch k := g.r.IntN(400); {
		case k == 0:
			l = append(l, ">From "...)
			g.stats.Quoted++
		case k <= 4:
			l = append(l, '.')
		case k <= 24:
			l = append(l, '\n') // paragraph break
		}
		width := 30 + g.r.IntN(lineWidth-30)
		for len(l) < width {
			if len(l) > 0 && l[len(l)-1] != '\n' && l[len(l)-1] != ' ' {
				l = append(l, ' ')
			}
			l = append(l, words[g.r.IntN(len(words))]...)
		}
		l = append(l, '\n')
		g.w.Write(l)
		written += len(l)
		g.stats.Bytes += int64(len(l))
		g.line = l
	}
}

// base64 writes n random bytes base64-encoded in lines of b64Width.
func (g *generator) base64(n int) {
	const chunk = b64Width / 4 * 3 * 1024 // whole lines
	g.stats.Attachments++
	for n > 0 {
		k := min(n, chunk)
		g.raw = g.raw[:0]
		for len(g.raw) < k {
			g.raw = bytesAppendUint64(g.raw, g.r.Uint64())
		}
		g.raw = g.raw[:k]
		enc := base64.StdEncoding.AppendEncode(g.enc[:0], g.raw)
		g.enc = enc
		for len(enc) > 0 {
			m := min(len(enc), b64Width)
			g.w.Write(enc[:m])
			g.w.WriteByte('\n')
			g.stats.Bytes += int64(m + 1)
			enc = enc[m:]
		}
		n -= k
	}
}

func bytesAppendUint64(b []byte, v uint64) []byte {
	return append(b, byte(v), byte(v>>8), byte(v>>16), byte(v>>24), byte(v>>32), byte(v>>40), byte(v>>48), byte(v>>56))
}
