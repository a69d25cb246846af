package mbox

import (
	"crypto/md5"
	"encoding/binary"
	"fmt"
	"io"
	"slices"
	"strconv"
	"unsafe"

	"github.com/popa3d/popa3d/mailbox"
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
	repeated, suffixed := repeatsOf(entries, p)
	if len(repeated) == 0 {
		return plainUIDs(entries[p:]), nil
	}
	return repeatedUIDs(r, entries, p, repeated, suffixed)
}

// messagesFrom appends the snapshot of entries[p:] to msgs, their sizes
// and the UIDs uidsFrom gives, and returns it. Without a repeated UIDL,
// the common case, the UIDs go straight into the messages.
func messagesFrom(r io.ReaderAt, entries []Entry, p int, msgs []mailbox.Message) ([]mailbox.Message, error) {
	msgs = slices.Grow(msgs, len(entries)-p)
	repeated, suffixed := repeatsOf(entries, p)
	if len(repeated) > 0 {
		uids, err := repeatedUIDs(r, entries, p, repeated, suffixed)
		if err != nil {
			return nil, err
		}
		for i, uid := range uids {
			msgs = append(msgs, mailbox.Message{Size: entries[p+i].Size, UID: uid})
		}
		return msgs, nil
	}
	b := make([]byte, 16*(len(entries)-p))
	for i := p; i < len(entries); i++ {
		putUIDL(b[16*(i-p):16*(i-p)+16], &entries[i].Hash)
	}
	all := unsafe.String(unsafe.SliceData(b), len(b))
	for i := p; i < len(entries); i++ {
		msgs = append(msgs, mailbox.Message{Size: entries[i].Size, UID: all[16*(i-p) : 16*(i-p)+16]})
	}
	return msgs, nil
}

// repeatsOf returns the UIDLs that entries[p:] repeat, ascending, each once:
// those that two of entries[p:] share, or one of them with one of
// entries[:p]; and how many messages of entries[p:] repeat one (get a
// suffix).
func repeatsOf(entries []Entry, p int) (repeated []uint64, suffixed int) {
	n := len(entries)
	key := func(i int) uint64 { return binary.BigEndian.Uint64(entries[i].Hash[:]) }
	// The UIDLs of entries[p:], ascending: sorting is quicker than a map
	// over all messages.
	keys := make([]uint64, 0, n-p)
	for i := p; i < n; i++ {
		keys = append(keys, key(i))
	}
	slices.Sort(keys)
	// Which of them entries[:p] has too, one bit each.
	var early []uint64
	if p > 0 {
		early = make([]uint64, (len(keys)+63)/64)
		for i := range p {
			if k, ok := slices.BinarySearch(keys, key(i)); ok {
				early[k/64] |= 1 << (k % 64)
			}
		}
	}
	// The repeated UIDLs in place of keys.
	repeated = keys[:0]
	for lo := 0; lo < len(keys); {
		hi := lo + 1
		for hi < len(keys) && keys[hi] == keys[lo] {
			hi++
		}
		if hi-lo > 1 || early != nil && early[lo/64]&(1<<(lo%64)) != 0 {
			repeated = append(repeated, keys[lo])
			suffixed += hi - lo
			if early == nil || early[lo/64]&(1<<(lo%64)) == 0 {
				suffixed--
			}
		}
		lo = hi
	}
	return repeated, suffixed
}

// plainUIDs returns the UIDLs of entries, all in one string.
func plainUIDs(entries []Entry) []string {
	b := make([]byte, 16*len(entries))
	for i := range entries {
		putUIDL(b[16*i:16*i+16], &entries[i].Hash)
	}
	// b is not written again, so it can back the string without a copy,
	// as in strings.Builder.
	all := unsafe.String(unsafe.SliceData(b), len(b))
	uids := make([]string, len(entries))
	for i := range uids {
		uids[i] = all[16*i : 16*i+16]
	}
	return uids
}

// repeatedUIDs returns the UIDs of entries[p:] where repeated, ascending, are
// the UIDLs they repeat (uidsFrom), suffixed of those messages.
func repeatedUIDs(r io.ReaderAt, entries []Entry, p int, repeated []uint64, suffixed int) ([]string, error) {
	n := len(entries)
	key := func(i int) uint64 { return binary.BigEndian.Uint64(entries[i].Hash[:]) }
	// For each repeated UIDL: whether a message had it yet, one bit each,
	// and how many repeats of it had each raw hash. The first message in
	// file order with a UIDL keeps it, each later one gets its raw hash,
	// then "-2", "-3", … for byte-identical copies.
	seen := make([]uint64, (len(repeated)+63)/64)
	type repeat struct {
		key int // index in repeated
		raw uint32
	}
	repeats := make(map[repeat]int)
	buf := make([]byte, 64<<10)
	note := func(k, i int) (raw uint32, nth int, err error) {
		if bit := uint64(1) << (k % 64); seen[k/64]&bit == 0 {
			seen[k/64] |= bit
			return 0, 0, nil
		}
		if raw, err = rawHash(r, &entries[i], buf); err != nil {
			return 0, 0, err
		}
		rep := repeat{key: k, raw: raw}
		repeats[rep]++
		return raw, repeats[rep], nil
	}
	for i := range p {
		if k, ok := slices.BinarySearch(repeated, key(i)); ok {
			if _, _, err := note(k, i); err != nil {
				return nil, err
			}
		}
	}

	// One string holds all UIDs; each UID is a substring of it. A suffix
	// is "." and 8 hex digits, then "-" and a number for a copy.
	b := make([]byte, 0, 16*(n-p)+len(".01234567-99")*suffixed)
	ends := make([]int, n-p)
	for i := p; i < n; i++ {
		b = appendUIDL(b, &entries[i].Hash)
		if k, ok := slices.BinarySearch(repeated, key(i)); ok {
			raw, nth, err := note(k, i)
			if err != nil {
				return nil, err
			}
			if nth > 0 {
				b = append(b, '.')
				b = binary.BigEndian.AppendUint64(b, hex8(raw))
				if nth > 1 {
					b = append(b, '-')
					b = strconv.AppendInt(b, int64(nth), 10)
				}
			}
		}
		ends[i-p] = len(b)
	}
	all := unsafe.String(unsafe.SliceData(b), len(b))
	uids := make([]string, n-p)
	start := 0
	for i, end := range ends {
		uids[i] = all[start:end]
		start = end
	}
	return uids, nil
}

// appendUIDL appends the 16 hex digits of popa3d's UIDL for h to b.
func appendUIDL(b []byte, h *[8]byte) []byte {
	b = binary.BigEndian.AppendUint64(b, hex8(binary.LittleEndian.Uint32(h[0:4])))
	return binary.BigEndian.AppendUint64(b, hex8(binary.LittleEndian.Uint32(h[4:8])))
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
