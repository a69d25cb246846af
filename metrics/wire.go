package metrics

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
)

// Under privilege separation the daemon, root, holds the counters, and the
// exporter, an unprivileged process of its own, serves them: the daemon
// writes its Snapshot to a pipe as one record of fixed layout, a few times a
// second when it changed, and the exporter keeps the latest. The record is
// the magic "PM", a layout version, then every field of Snapshot in order,
// big-endian (encoding/binary's layout of the struct: fixed-size fields
// only). It is smaller than PIPE_BUF, so a write of it is atomic: the
// daemon writes without waiting (a full pipe drops that record, a later
// one supersedes it) and the reader never sees half of one.

var wireMagic = [4]byte{'P', 'M', 0, 1}

// WireSize is the length of every encoded Snapshot.
var WireSize = len(wireMagic) + binary.Size(Snapshot{})

// ErrBadSnapshot is returned for anything that is not one encoded Snapshot.
var ErrBadSnapshot = errors.New("metrics: not a snapshot record")

// Encode returns s as one record.
func (s Snapshot) Encode() []byte {
	b, err := binary.Append(wireMagic[:], binary.BigEndian, s)
	if err != nil {
		// Snapshot has fixed-size fields only: this cannot happen.
		panic(fmt.Sprintf("metrics: encode a snapshot: %v", err))
	}
	return b
}

// Decode checks and decodes one record: exactly WireSize bytes with the
// magic, and figures that are consistent (histogram counts that add up,
// no negative gauge or time).
func Decode(b []byte) (Snapshot, error) {
	var s Snapshot
	if len(b) != WireSize || [4]byte(b[:4]) != wireMagic {
		return s, ErrBadSnapshot
	}
	if err := binary.Read(bytes.NewReader(b[4:]), binary.BigEndian, &s); err != nil {
		return Snapshot{}, ErrBadSnapshot
	}
	for _, h := range []Histogram{s.SessionDuration, s.UpdateDuration} {
		var n uint64
		for _, c := range h.Counts {
			n += c
		}
		if n != h.Count || h.Sum < 0 {
			return Snapshot{}, ErrBadSnapshot
		}
	}
	if s.Active < 0 || s.PenaltiesInForce < 0 || s.UpdateTime < 0 {
		return Snapshot{}, ErrBadSnapshot
	}
	return s, nil
}
