package mbox

import (
	"crypto/md5"
	"encoding/binary"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
)

// UIDs returns the unique-id of each entry, indexed like entries. Every UID is
// popa3d's UIDL (Entry.UIDL) except where popa3d would repeat one (identical
// hashed headers, or none at all), which breaks RFC 1939 section 7's
// uniqueness rule (doc/popa3d-compat.md section 17.1). The first message in
// file order with a given UIDL keeps it; each later one gets
//
//	<popa3d UIDL>.<first 8 hex digits of the MD5 of its raw bytes>
//
// where the raw bytes run from its From_ line to the end of its raw extent, so
// the suffix does not change when other duplicates are deleted. Byte-identical
// copies, which would get the same suffix, are told apart by "-2", "-3", … in
// file order. Only the repeated messages are read from r.
//
// The strings share one backing allocation.
func UIDs(r io.ReaderAt, entries []Entry) ([]string, error) {
	return uidsFrom(r, entries, 0)
}

// uidsFrom returns the UIDs of entries[p:], exactly as UIDs gives them for
// all entries: a UID depends only on the earlier messages with the same
// UIDL, and on the raw bytes of those that repeat it. Only the messages
// whose UIDL one of entries[p:] shares are looked at, and only the repeats
// among them read from r, so that a mailbox that grew costs the new messages
// (the index cache's append, p > 0) and a full parse the repeats (p = 0).
func uidsFrom(r io.ReaderAt, entries []Entry, p int) ([]string, error) {
	n := len(entries)
	key := func(i int) uint64 { return binary.BigEndian.Uint64(entries[i].Hash[:]) }
	// The UIDLs of entries[p:], ascending, each once: sorting is quicker
	// than a map over all messages.
	keys := make([]uint64, 0, n-p)
	for i := p; i < n; i++ {
		keys = append(keys, key(i))
	}
	slices.Sort(keys)
	keys = slices.Compact(keys)
	// For each of those UIDLs: whether a message had it yet, one bit
	// each, and for the few that repeat, how many repeats of it had each
	// raw hash. The first message in file order with a UIDL keeps it,
	// each later one gets its raw hash, then "-2", "-3", … for
	// byte-identical copies.
	seen := make([]uint64, (len(keys)+63)/64)
	type repeat struct {
		key int // index in keys
		raw uint32
	}
	var repeats map[repeat]int
	var buf []byte
	note := func(k, i int) (raw uint32, nth int, err error) {
		if bit := uint64(1) << (k % 64); seen[k/64]&bit == 0 {
			seen[k/64] |= bit
			return 0, 0, nil
		}
		if buf == nil {
			buf = make([]byte, 64<<10)
		}
		if raw, err = rawHash(r, &entries[i], buf); err != nil {
			return 0, 0, err
		}
		if repeats == nil {
			repeats = make(map[repeat]int)
		}
		rep := repeat{key: k, raw: raw}
		repeats[rep]++
		return raw, repeats[rep], nil
	}
	for i := range p {
		if k, ok := slices.BinarySearch(keys, key(i)); ok {
			if _, _, err := note(k, i); err != nil {
				return nil, err
			}
		}
	}

	// One string holds all UIDs; each UID is a substring of it.
	var sb strings.Builder
	sb.Grow(16 * (n - p))
	ends := make([]int, n-p)
	var uidl [16]byte
	var tail []byte
	for i := p; i < n; i++ {
		k, _ := slices.BinarySearch(keys, key(i))
		raw, nth, err := note(k, i)
		if err != nil {
			return nil, err
		}
		putUIDL(uidl[:], &entries[i].Hash)
		sb.Write(uidl[:])
		if nth > 0 {
			tail = append(tail[:0], '.')
			tail = fmt.Appendf(tail, "%08x", raw)
			if nth > 1 {
				tail = append(tail, '-')
				tail = strconv.AppendInt(tail, int64(nth), 10)
			}
			sb.Write(tail)
		}
		ends[i-p] = sb.Len()
	}
	all := sb.String()
	uids := make([]string, n-p)
	start := 0
	for i, end := range ends {
		uids[i] = all[start:end]
		start = end
	}
	return uids, nil
}

// rawHash returns the first 4 bytes of the MD5 of e's raw extent, read from r
// through buf.
func rawHash(r io.ReaderAt, e *Entry, buf []byte) (uint32, error) {
	h := md5.New()
	n, err := io.CopyBuffer(h, io.NewSectionReader(r, e.Offset, e.RawSize), buf)
	if err == nil && n < e.RawSize {
		err = io.ErrUnexpectedEOF
	}
	if err != nil {
		return 0, fmt.Errorf("read message at %d: %w", e.Offset, err)
	}
	var sum [md5.Size]byte
	return binary.BigEndian.Uint32(h.Sum(sum[:0])), nil
}
