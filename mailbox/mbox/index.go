package mbox

import (
	"bytes"
	"crypto/md5"
	"encoding/binary"
	"errors"
	"fmt"
	"hash"
	"io"
	"runtime"
	"slices"

	"github.com/popa3d/popa3d/mailbox"
)

// Limits bounds what Index accepts: the limits every format shares.
type Limits = mailbox.Limits

// Entry is one message of an indexed mbox file, as popa3d 1.0.3 splits it
// (doc/popa3d-compat.md sections 7, 8 and 13).
type Entry struct {
	// Offset is the file offset of the message's From_ line: the start of its
	// raw extent.
	Offset int64
	// RawSize is the length of the raw extent: from the From_ line up to the
	// next message's From_ line, or to the end of the file. Compaction moves
	// exactly these bytes.
	RawSize int64
	// DataOffset is the file offset of the line after the From_ line.
	DataOffset int64
	// DataSize is the number of data bytes, without the trailing separator LF
	// that popa3d drops when the message has a body.
	DataSize int64
	// Size is the octet count as sent: every LF counts as CRLF, and a final line
	// without LF counts the CRLF that is appended to it. Dot-stuffing is not
	// counted (RFC 1939 section 11).
	Size int64
	// Popa3dSize is popa3d's LIST size, which counts a final line without LF
	// one octet short (doc/popa3d-compat.md section 8). It equals Size otherwise.
	Popa3dSize int64
	// Hash holds the first 8 bytes of the MD5 of the header lines popa3d takes
	// for its UIDL (section 13).
	Hash [8]byte
}

// UIDL returns popa3d's unique-id for the message: the first 8 bytes of Hash
// printed in the byte order 3 2 1 0 7 6 5 4, as 16 lowercase hex digits.
func (e *Entry) UIDL() string {
	var b [16]byte
	putUIDL(b[:], &e.Hash)
	return string(b[:])
}

// putUIDL writes the 16 hex digits of popa3d's UIDL for h into b, without a
// loop or a table: the UIDL is the first two 32-bit little-endian words of h,
// each printed as %08x. Decoding a cache prints every UIDL, so this is on the
// path of every warm open.
func putUIDL(b []byte, h *[8]byte) {
	binary.BigEndian.PutUint64(b[0:8], hex8(binary.LittleEndian.Uint32(h[0:4])))
	binary.BigEndian.PutUint64(b[8:16], hex8(binary.LittleEndian.Uint32(h[4:8])))
}

// hex8 returns the 8 lowercase hex digits of w, most significant first, as
// the bytes of a big-endian uint64.
func hex8(w uint32) uint64 {
	// Spread the nibbles out to one per byte.
	x := uint64(w)
	x = (x | x<<16) & 0x0000ffff0000ffff
	x = (x | x<<8) & 0x00ff00ff00ff00ff
	x = (x | x<<4) & 0x0f0f0f0f0f0f0f0f
	// A byte n becomes '0'+n, plus 'a'-'0'-10 where n > 9 (then n+6
	// carries into bit 4).
	letters := (x + 0x0606060606060606) >> 4 & 0x0101010101010101
	return x + 0x3030303030303030 + letters*('a'-'0'-10)
}

// Index splits the first size bytes of r into messages exactly as popa3d 1.0.3
// does, and returns them in file order. A size of 0 is an empty mailbox. A file
// that popa3d refuses, or one over a limit, gives an error wrapping
// mailbox.ErrFormat; a file shorter than size gives io.ErrUnexpectedEOF.
//
// Index reads r in large blocks into one reused buffer, so memory does not
// grow with line or message length; only the returned slice grows with the
// message count.
func Index(r io.ReaderAt, size int64, lim Limits) ([]Entry, error) {
	return indexSplit(r, size, lim, blockSize, splitMin, estimateBlock)
}

// splitMin is the smallest mailbox Index parses in two halves at once: a
// large mailbox's first open is bound by the parse, and session processes
// have two cores or more to themselves while they open. Below it the second
// goroutine would cost more than it saves.
const splitMin = 32 << 20

// indexSplit is Index with the read size, the split threshold and the
// estimate's sample size (estimateCount) as parameters, for tests. A mailbox of at least minSplit bytes is cut at the
// first message start ("\n\nFrom ") after its middle, and the two halves
// are parsed concurrently. The result is exactly the sequential parse's: a
// message start found by the search is one for the sequential parser too
// (any "\n\nFrom " after a From_ line is a message start, or a refusal),
// the first half parses its last message with the whole file in view (so
// it ends and is refused exactly as it would be), and an error of the first
// half wins, as it would come first.
func indexSplit(r io.ReaderAt, size int64, lim Limits, block int, minSplit, sample int64) ([]Entry, error) {
	return indexAppend(nil, r, size, lim, block, minSplit, sample)
}

// indexAppend is indexSplit appending the entries to dst, in its spare
// capacity if it has enough: an index cache decoded with room for the mail
// appended since grows in place.
func indexAppend(dst []Entry, r io.ReaderAt, size int64, lim Limits, block int, minSplit, sample int64) ([]Entry, error) {
	lim = lim.WithDefaults()
	collect := func(from, stop int64, out *entryChunks) error {
		return scanRange(r, size, lim, block, from, stop, func(e *Entry) error {
			out.add(e)
			return nil
		})
	}
	var mid int64 = -1
	if size >= minSplit && size <= lim.MaxBytes {
		var err error
		if mid, err = nextStart(r, size/2, size, block); err != nil {
			return nil, err
		}
	}
	est, err := estimateCount(r, size, lim, sample)
	if err != nil {
		return nil, err
	}
	dst = slices.Grow(dst, est)
	all := dst[len(dst):len(dst):cap(dst)]
	if mid <= 0 {
		entries := entryChunks{region: all}
		if err := collect(0, size, &entries); err != nil {
			return nil, err
		}
		return joinEntries(dst, &entries), nil
	}
	// Each half fills its share of one slice; the second half's entries
	// then move down next to the first half's.
	half := min(est, cap(all)) / 2
	first := entryChunks{region: all[:0:half]}
	second := entryChunks{region: all[half:half:cap(all)]}
	defer twoProcs()()
	var err2 error
	done := make(chan struct{})
	go func() {
		defer close(done)
		err2 = collect(mid, size, &second)
	}()
	err1 := collect(0, mid, &first)
	<-done
	switch {
	case err1 != nil:
		return nil, err1
	case err2 != nil:
		return nil, err2
	case first.n+second.n > lim.MaxMessages:
		return nil, refuse("more than %d messages", lim.MaxMessages)
	}
	if first.overflowed() || second.overflowed() {
		return joinEntries(dst, &first, &second), nil
	}
	k := copy(all[len(first.region):cap(all)], second.region)
	return dst[:len(dst)+len(first.region)+k], nil
}

// estimateCount guesses how many messages the first size bytes of r hold,
// from the message starts in its first sample bytes, with a quarter
// to spare: the capacity a parse's entries get at once; 0 for a small
// input. A wrong guess costs
// only speed: entries past it go into chunks (entryChunks), and capacity
// never used is never touched, so it costs address space, not memory.
func estimateCount(r io.ReaderAt, size int64, lim Limits, sample int64) (int, error) {
	const minEstimate = 64
	if size < 16*sample {
		return 0, nil
	}
	n := sample
	buf := make([]byte, n)
	if _, err := r.ReadAt(buf, 0); err != nil && !errors.Is(err, io.EOF) {
		return 0, fmt.Errorf("read at 0: %w", err)
	}
	starts := int64(bytes.Count(buf, fromSep)) + 1
	est := starts * (size / n)
	est += est/4 + minEstimate
	return int(min(est, int64(lim.MaxMessages), size/int64(minMessage)+1)), nil
}

// estimateBlock is the sample estimateCount reads: short enough to cost
// little next to the parse, long enough to hold dozens of messages. Below
// 16 samples' bytes the entries go into chunks from the start: the sample
// would be much of what the parse reads anyway.
const estimateBlock = 256 << 10

// entryChunks collects a parse's entries: first into region, a slice whose
// capacity the caller sized (estimateCount), then, past it, in blocks that
// are never copied while the parse runs, for joinEntries to copy once into
// a slice of the exact length. Appending to one slice instead copies it at
// every growth, about four times its final size in all for Go's growth
// factor: on a large mailbox of small messages those copies and the fresh
// pages they fault in cost as much as the parse itself.
type entryChunks struct {
	region []Entry
	full   [][]Entry
	cur    []Entry
	n      int
}

// Chunk lengths double from minChunk to maxChunk entries: a small mailbox
// allocates little, a large one a block of about 450 KB at a time.
const (
	minChunk = 64
	maxChunk = 8192
)

func (c *entryChunks) add(e *Entry) {
	c.n++
	if len(c.region) < cap(c.region) {
		c.region = append(c.region, *e)
		return
	}
	if len(c.cur) == cap(c.cur) {
		k := minChunk
		if c.cur != nil {
			c.full = append(c.full, c.cur)
			k = min(2*cap(c.cur), maxChunk)
		}
		c.cur = make([]Entry, 0, k)
	}
	c.cur = append(c.cur, *e)
}

// overflowed reports whether c holds entries past its region.
func (c *entryChunks) overflowed() bool { return c.cur != nil }

// joinEntries returns dst followed by the entries of parts, in order, in
// one slice: dst extended in place if the only part's region, which
// follows dst in its spare capacity, holds them all.
func joinEntries(dst []Entry, parts ...*entryChunks) []Entry {
	n := len(dst)
	for _, c := range parts {
		n += c.n
	}
	if n == 0 {
		return nil
	}
	if len(parts) == 1 && !parts[0].overflowed() {
		return dst[:len(dst)+len(parts[0].region)]
	}
	entries := make([]Entry, 0, n)
	entries = append(entries, dst...)
	for _, c := range parts {
		entries = append(entries, c.region...)
		for _, b := range c.full {
			entries = append(entries, b...)
		}
		entries = append(entries, c.cur...)
	}
	return entries
}

// nextStart returns the offset of the first From_ line that follows an
// empty line at or after from, or -1 if there is none before size.
func nextStart(r io.ReaderAt, from, size int64, block int) (int64, error) {
	buf := make([]byte, max(block, 2*len(fromSep)))
	for off := from; off < size; {
		n := int(min(int64(len(buf)), size-off))
		if _, err := r.ReadAt(buf[:n], off); err != nil && !errors.Is(err, io.EOF) {
			return 0, fmt.Errorf("read at %d: %w", off, err)
		}
		if i := bytes.Index(buf[:n], fromSep); i >= 0 {
			return off + int64(i) + 2, nil
		}
		if off+int64(n) >= size {
			break
		}
		off += int64(n - len(fromSep) + 1) // a separator may straddle reads
	}
	return -1, nil
}

// blockSize is how much of the file one read fetches: enough to amortise
// the system call and keep the searches in long runs, small enough that the
// buffer's first touch costs little. A session process is new for each
// session, and each page of a fresh buffer is a page fault (about 7 µs on
// the VM of the benchmarks): the first open of a 46 MB mbox in a new session
// process took 45–50 ms with 1 MiB blocks and 30–34 ms with 128 KiB ones,
// popa3d 28–31 ms (privilege-separated -D, 9 opens each, same machine).
const blockSize = 128 << 10

// twoProcs lets the two halves of a split parse run at once in a process
// that runs Go code on one CPU only (a privilege-separated session process
// starts with GOMAXPROCS=1: its memory before login is what counts), when
// the machine has more: it raises GOMAXPROCS to 2 and returns what puts it
// back. Elsewhere it changes nothing.
func twoProcs() (restore func()) {
	if runtime.NumCPU() < 2 || runtime.GOMAXPROCS(0) != 1 {
		return func() {}
	}
	runtime.GOMAXPROCS(2)
	return func() { runtime.GOMAXPROCS(1) }
}

// maxCarry is the room before each block for bytes kept from the one before:
// the lookahead needed to classify a header line (lookahead), or the tail of
// the block in which "\n\nFrom " may begin. Keeping the room a multiple of 64
// puts every read at a cache-line-aligned address, which the kernel's copy to
// user space needs to run at full speed.
const maxCarry = 64

// lookahead is the length of the longest header name popa3d tests,
// "X-Delivery-ID:". popa3d keeps a 32-byte line-start window for the same
// purpose.
const lookahead = len("X-Delivery-ID:")

// fromSep marks a message start: an LF-only empty line, then a line beginning
// with "From " (doc/popa3d-compat.md section 7).
var fromSep = []byte("\n\nFrom ")

// scan runs the popa3d parser over the first size bytes of r, calling emit for
// each message in order. block is the read size (tests use tiny ones to
// exercise block boundaries).
func scan(r io.ReaderAt, size int64, lim Limits, block int, emit func(*Entry) error) error {
	return scanRange(r, size, lim, block, 0, size, emit)
}

// scanRange is scan from the message start at offset from, stopping after the
// message that ends at stop or later; it reads past stop as far as that
// message needs.
func scanRange(r io.ReaderAt, size int64, lim Limits, block int, from, stop int64, emit func(*Entry) error) error {
	lim = lim.WithDefaults()
	if size < 0 {
		return fmt.Errorf("negative mailbox size %d", size)
	}
	if size > lim.MaxBytes {
		return fmt.Errorf("%w: %d bytes is over the limit of %d", mailbox.ErrFormat, size, lim.MaxBytes)
	}
	if size == 0 {
		return nil
	}
	// A small mailbox needs no more buffer than its size.
	block = int(min(int64(block), size))
	p := parser{
		r:    r,
		size: size,
		buf:  make([]byte, maxCarry+block),
		lo:   maxCarry,
		hi:   maxCarry,
		base: from,
		from: from,
		stop: stop,
		blk:  block,
		md5:  md5.New(),
		max:  lim.MaxMessages,
	}
	return p.run(emit)
}

// parser is popa3d's mailbox_parse as a scanner over whole blocks: message
// starts are found with bytes.Index and sizes with bytes.Count, and only header
// lines are walked one by one.
type parser struct {
	r    io.ReaderAt
	size int64  // bytes to parse; reads never go past it
	buf  []byte // room for a carry, then blk bytes
	blk  int
	lo   int // buf[lo:hi] holds the input from file offset base on
	hi   int
	base int64
	from int64 // where parsing starts: 0, or a message start
	stop int64 // parsing ends with the message that reaches it
	md5  hash.Hash
	sum  [md5.Size]byte
	max  int // message count limit
}

// end returns the file offset just past the buffered bytes.
func (p *parser) end() int64 { return p.base + int64(p.hi-p.lo) }

// at returns the buffered bytes from file offset off on; off must lie within
// the buffer or at its end.
func (p *parser) at(off int64) []byte { return p.buf[p.lo+int(off-p.base) : p.hi] }

// span returns the buffered bytes from file offset from up to to.
func (p *parser) span(from, to int64) []byte {
	return p.buf[p.lo+int(from-p.base) : p.lo+int(to-p.base)]
}

// slide keeps the buffered bytes from file offset keep on (at most maxCarry of
// them), moves them just before the block area and reads the next block into
// it. It reports false, with no error, when the whole input has been read.
func (p *parser) slide(keep int64) (bool, error) {
	end := p.end()
	if end >= p.size {
		return false, nil
	}
	k := int(end - keep)
	copy(p.buf[maxCarry-k:maxCarry], p.buf[p.hi-k:p.hi])
	p.base, p.lo, p.hi = keep, maxCarry-k, maxCarry
	want := int(min(int64(p.blk), p.size-end))
	m, err := p.r.ReadAt(p.buf[maxCarry:maxCarry+want], end)
	p.hi += m
	if m < want {
		if err == nil || errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		}
		return false, fmt.Errorf("read at %d: %w", end+int64(m), err)
	}
	return true, nil
}

// ensure makes the buffer hold the k bytes from file offset off, or all of
// them up to the end of the input.
func (p *parser) ensure(off int64, k int) error {
	want := min(off+int64(k), p.size)
	for p.end() < want {
		if _, err := p.slide(off); err != nil {
			return err
		}
	}
	return nil
}

// byteAt returns the input byte at off, from the buffer when it is there.
func (p *parser) byteAt(off int64) (byte, error) {
	if off >= p.base && off < p.end() {
		return p.buf[p.lo+int(off-p.base)], nil
	}
	var b [1]byte
	if _, err := p.r.ReadAt(b[:], off); err != nil {
		if errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		}
		return 0, fmt.Errorf("read at %d: %w", off, err)
	}
	return b[0], nil
}

// hasFrom reports whether b begins with "From " (case-sensitive, popa3d).
func hasFrom(b []byte) bool {
	return len(b) >= 5 && b[0] == 'F' && b[1] == 'r' && b[2] == 'o' && b[3] == 'm' && b[4] == ' '
}

// lineEnd returns the offset of the first LF at or after off, or -1 if the
// input ends first.
func (p *parser) lineEnd(off int64) (int64, error) {
	for {
		if i := bytes.IndexByte(p.at(off), '\n'); i >= 0 {
			return off + int64(i), nil
		}
		off = p.end()
		ok, err := p.slide(off)
		if err != nil {
			return 0, err
		}
		if !ok {
			return -1, nil
		}
	}
}

func refuse(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{mailbox.ErrFormat}, args...)...)
}

func (p *parser) run(emit func(*Entry) error) error {
	if err := p.ensure(p.from, 5); err != nil {
		return err
	}
	// popa3d refuses a file that does not begin with a From_ line: anything
	// before the first one, or no From_ line at all.
	if !hasFrom(p.at(p.from)) {
		return refuse("the file does not begin with a From_ line")
	}
	var e Entry
	count := 0
	for start := p.from; ; {
		if count++; count > p.max {
			return refuse("more than %d messages", p.max)
		}
		next, err := p.message(start, &e)
		if err != nil {
			return err
		}
		if err := emit(&e); err != nil {
			return err
		}
		if next == p.size || next >= p.stop {
			return nil
		}
		start = next
	}
}

// message parses the message whose From_ line starts at start (in the buffer,
// "From " verified) into e, and returns where the next one starts (size at
// the end of the input).
func (p *parser) message(start int64, e *Entry) (int64, error) {
	eol, err := p.lineEnd(start + 5)
	if err != nil {
		return 0, err
	}
	if eol < 0 || eol+1 == p.size {
		return 0, refuse("the From_ line at offset %d is the last line", start)
	}
	data := eol + 1
	if err := p.ensure(data, 5); err != nil {
		return 0, err
	}
	// popa3d still remembers the empty line before the From_ line, so a From_
	// line right after it would start a message without data: refused.
	if hasFrom(p.at(data)) {
		return 0, refuse("the From_ line at offset %d is followed by another", start)
	}

	// Headers: the data lines up to the first LF-only line. Only these are
	// walked line by line, for the UIDL (section 13).
	var lfs int64 // LFs in the data
	fixed, received := false, false
	p.md5.Reset()
	pos, blank := data, int64(-1)
	for pos < p.size {
		if err := p.ensure(pos, lookahead); err != nil {
			return 0, err
		}
		b := p.at(pos)
		if b[0] == '\n' {
			blank = pos
			break
		}
		taken := classify(b[:min(len(b), lookahead)], &fixed, &received)
		for {
			b := p.at(pos)
			if i := bytes.IndexByte(b, '\n'); i >= 0 {
				if taken {
					p.md5.Write(b[:i+1])
				}
				pos += int64(i + 1)
				lfs++
				break
			}
			if taken {
				p.md5.Write(b)
			}
			pos = p.end()
			ok, err := p.slide(pos)
			if err != nil {
				return 0, err
			}
			if !ok {
				break
			}
		}
	}

	next := p.size
	removed := int64(0) // the trailing separator LF, dropped from the data
	if blank >= 0 {
		// The rest of the message: find the next "\n\nFrom " and count LFs in
		// whole blocks. The empty line at blank is preceded by an LF (the
		// From_ line's or a header line's), so "From " right after it is a
		// start too.
		if err := p.ensure(blank, 6); err != nil {
			return 0, err
		}
		counted := blank
		if hasFrom(p.at(blank + 1)) {
			next = blank + 1
		} else {
			at := blank
			for {
				b := p.at(at)
				if i := bytes.Index(b, fromSep); i >= 0 {
					next = at + int64(i) + 2
					break
				}
				lfs += int64(bytes.Count(p.at(counted), newline))
				counted = p.end()
				keep := max(at, p.end()-int64(len(fromSep)-1))
				ok, err := p.slide(keep)
				if err != nil {
					return 0, err
				}
				if !ok {
					break
				}
				at = keep
			}
		}
		if next > counted {
			// The bytes between counted and next, if next < counted, are
			// "From" characters: no LF to take back.
			lfs += int64(bytes.Count(p.span(counted, next), newline))
		}
		// popa3d drops the empty line before the next From_ line (or the
		// empty last line of the file) only if the message has a body, a
		// line after the header-ending empty line; without one, the empty
		// line stays as the header/body separator.
		if next > blank+1 {
			if next < p.size {
				removed = 1
			} else {
				last, err := p.byteAt(p.size - 1)
				if err != nil {
					return 0, err
				}
				prev, err := p.byteAt(p.size - 2)
				if err != nil {
					return 0, err
				}
				if last == '\n' && prev == '\n' {
					removed = 1
				}
			}
		}
	}
	unterminated := int64(0)
	if next == p.size {
		last, err := p.byteAt(p.size - 1)
		if err != nil {
			return 0, err
		}
		if last != '\n' {
			unterminated = 1
		}
	}

	e.Offset = start
	e.RawSize = next - start
	e.DataOffset = data
	e.DataSize = next - data - removed
	lfs -= removed
	// Section 8: each line counts its bytes plus one. popa3d counts a final
	// line without LF as bytes+1 too, but CRLF is appended to it on the wire,
	// so our Size counts bytes+2 (section 17.2).
	e.Popa3dSize = e.DataSize + lfs + unterminated
	e.Size = e.DataSize + lfs + 2*unterminated
	copy(e.Hash[:], p.md5.Sum(p.sum[:0]))
	return next, nil
}

var newline = []byte{'\n'}

// classify applies popa3d's UIDL header selection to the start of one header
// line, b (at least lookahead bytes of it, unless the input ends first), and
// reports whether the line is hashed (doc/popa3d-compat.md section 13).
func classify(b []byte, fixed, received *bool) bool {
	switch b[0] {
	case ' ', '\t':
		// A continuation line inherits the previous line's choice.
	case 'R', 'r':
		// Only the first Received: counts: the one the local MTA added.
		*fixed = false
		if !*received && hasPrefixFold(b, "Received:") {
			*fixed, *received = true, true
		}
	case 'D', 'd':
		*fixed = hasPrefixFold(b, "Delivered-To:") || (!*received && hasPrefixFold(b, "Date:"))
	case 'M', 'm':
		*fixed = !*received && hasPrefixFold(b, "Message-ID:")
	case 'X':
		// Uppercase X only: popa3d's switch has no case 'x'.
		*fixed = hasPrefixFold(b, "X-Delivery-ID:")
	default:
		*fixed = false
	}
	return *fixed
}

// hasPrefixFold reports whether b begins with name, ignoring ASCII case (as
// strncasecmp in the C locale).
func hasPrefixFold(b []byte, name string) bool {
	if len(b) < len(name) {
		return false
	}
	for i := 0; i < len(name); i++ {
		c, d := b[i], name[i]
		if c == d {
			continue
		}
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		if 'A' <= d && d <= 'Z' {
			d += 'a' - 'A'
		}
		if c != d {
			return false
		}
	}
	return true
}
