package mbox

import (
	"cmp"
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
// uniqueness rule (popa3d-behaviour.md section 17.1). The first message in
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
	n := len(entries)
	key := func(i int32) uint64 { return binary.BigEndian.Uint64(entries[i].Hash[:]) }

	// Find the UIDLs that repeat by sorting a copy of all of them, which
	// is quicker than a map over all messages; only the messages with a
	// repeated UIDL are then sorted by UIDL and position.
	keys := make([]uint64, n)
	for i := range keys {
		keys[i] = key(int32(i))
	}
	slices.Sort(keys)
	var repeated []uint64 // ascending
	for i := 1; i < n; i++ {
		if keys[i] == keys[i-1] && (len(repeated) == 0 || repeated[len(repeated)-1] != keys[i]) {
			repeated = append(repeated, keys[i])
		}
	}
	keys = nil
	var order []int32
	if len(repeated) > 0 {
		for i := range int32(n) {
			if _, ok := slices.BinarySearch(repeated, key(i)); ok {
				order = append(order, i)
			}
		}
	}
	slices.SortFunc(order, func(a, b int32) int {
		if c := cmp.Compare(key(a), key(b)); c != 0 {
			return c
		}
		return cmp.Compare(a, b)
	})

	// suffix[i] is message i's disambiguation, for repeats only.
	type repeat struct {
		msg int32
		raw uint32 // first 4 bytes of the MD5 of the raw bytes
		nth int    // 1 for the first message with this raw hash, then 2, 3…
	}
	var repeats []repeat
	var buf []byte
	for lo := 0; lo < len(order); {
		hi := lo + 1
		for hi < len(order) && key(order[hi]) == key(order[lo]) {
			hi++
		}
		if hi-lo > 1 {
			group := len(repeats)
			for _, msg := range order[lo+1 : hi] {
				if buf == nil {
					buf = make([]byte, 64<<10)
				}
				raw, err := rawHash(r, &entries[msg], buf)
				if err != nil {
					return nil, err
				}
				repeats = append(repeats, repeat{msg: msg, raw: raw})
			}
			g := repeats[group:]
			slices.SortFunc(g, func(a, b repeat) int {
				if c := cmp.Compare(a.raw, b.raw); c != 0 {
					return c
				}
				return cmp.Compare(a.msg, b.msg)
			})
			for i := range g {
				g[i].nth = 1
				if i > 0 && g[i].raw == g[i-1].raw {
					g[i].nth = g[i-1].nth + 1
				}
			}
		}
		lo = hi
	}
	slices.SortFunc(repeats, func(a, b repeat) int { return cmp.Compare(a.msg, b.msg) })

	// One string holds all UIDs; each UID is a substring of it.
	var sb strings.Builder
	sb.Grow(16*n + 32*len(repeats))
	ends := make([]int, n)
	var uidl [16]byte
	var tail []byte
	for i := range entries {
		putUIDL(uidl[:], &entries[i].Hash)
		sb.Write(uidl[:])
		if len(repeats) > 0 && int(repeats[0].msg) == i {
			rp := repeats[0]
			repeats = repeats[1:]
			tail = append(tail[:0], '.')
			tail = fmt.Appendf(tail, "%08x", rp.raw)
			if rp.nth > 1 {
				tail = append(tail, '-')
				tail = strconv.AppendInt(tail, int64(rp.nth), 10)
			}
			sb.Write(tail)
		}
		ends[i] = sb.Len()
	}
	all := sb.String()
	uids := make([]string, n)
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
