package proxy

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
)

// The helper's answer for each connection is one record of fixed layout
// (RecordSize bytes, one SOCK_SEQPACKET message), which root decodes
// strictly (DecodeRecord): root never parses the header, nor text.
//
//	0   4  magic "P3X1"
//	4   8  request id, big-endian
//	12  1  status: 0 client address, 1 no client named (the proxy's own
//	       connection), 2 refused (no valid header in time)
//	13  1  address family: 4 or 6 with status 0, else 0
//	14  2  client port, big-endian (0 unless status 0)
//	16 16  client address: IPv4 in the first 4 bytes and zeros after, or
//	       IPv6 (never IPv4-mapped); all zero unless status 0
const RecordSize = 32

var recordMagic = [4]byte{'P', '3', 'X', '1'}

// Status is what the helper found.
type Status byte

// The statuses of a record.
const (
	StatusClient  Status = 0
	StatusLocal   Status = 1
	StatusRefused Status = 2
)

// Record is the helper's answer about one connection.
type Record struct {
	ID     uint64
	Status Status
	Client netip.AddrPort // valid only with StatusClient
}

// Encode returns the record's bytes.
func (r Record) Encode() [RecordSize]byte {
	var b [RecordSize]byte
	copy(b[0:4], recordMagic[:])
	binary.BigEndian.PutUint64(b[4:12], r.ID)
	b[12] = byte(r.Status)
	if r.Status == StatusClient {
		a := r.Client.Addr().Unmap()
		if a.Is4() {
			b[13] = 4
			v := a.As4()
			copy(b[16:20], v[:])
		} else {
			b[13] = 6
			v := a.As16()
			copy(b[16:32], v[:])
		}
		binary.BigEndian.PutUint16(b[14:16], r.Client.Port())
	}
	return b
}

// DecodeRecord decodes exactly one record and checks every field.
func DecodeRecord(b []byte) (Record, error) {
	if len(b) != RecordSize {
		return Record{}, fmt.Errorf("proxy record: %d bytes, want %d", len(b), RecordSize)
	}
	if [4]byte(b[0:4]) != recordMagic {
		return Record{}, errors.New("proxy record: bad magic")
	}
	r := Record{ID: binary.BigEndian.Uint64(b[4:12]), Status: Status(b[12])}
	fam, port, addr := b[13], binary.BigEndian.Uint16(b[14:16]), b[16:32]
	switch r.Status {
	case StatusLocal, StatusRefused:
		if fam != 0 || port != 0 || !zero(addr) {
			return Record{}, errors.New("proxy record: an address with a status that has none")
		}
		return r, nil
	case StatusClient:
	default:
		return Record{}, fmt.Errorf("proxy record: unknown status %d", b[12])
	}
	var a netip.Addr
	switch fam {
	case 4:
		if !zero(addr[4:]) {
			return Record{}, errors.New("proxy record: IPv4 address with trailing bytes")
		}
		a = netip.AddrFrom4([4]byte(addr[:4]))
	case 6:
		a = netip.AddrFrom16([16]byte(addr))
		if a.Is4In6() {
			return Record{}, errors.New("proxy record: IPv4-mapped IPv6 address")
		}
	default:
		return Record{}, fmt.Errorf("proxy record: unknown address family %d", fam)
	}
	if a.IsUnspecified() {
		return Record{}, errors.New("proxy record: unspecified address")
	}
	r.Client = netip.AddrPortFrom(a, port)
	return r, nil
}

func zero(b []byte) bool {
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}
