package proxy

import (
	"net/netip"
	"testing"
)

func TestRecordRoundTrip(t *testing.T) {
	for _, r := range []Record{
		{ID: 1, Status: StatusClient, Client: netip.MustParseAddrPort("192.0.2.1:4000")},
		{ID: 1 << 60, Status: StatusClient, Client: netip.MustParseAddrPort("[2001:db8::1]:0")},
		{ID: 7, Status: StatusLocal},
		{ID: 8, Status: StatusRefused},
	} {
		b := r.Encode()
		got, err := DecodeRecord(b[:])
		if err != nil || got != r {
			t.Errorf("%+v: decoded %+v, %v", r, got, err)
		}
	}
}

// TestRecordStrict flips each byte of valid records and checks that every
// record DecodeRecord accepts re-encodes to exactly its input: nothing is
// read loosely.
func TestRecordStrict(t *testing.T) {
	for _, r := range []Record{
		{ID: 3, Status: StatusClient, Client: netip.MustParseAddrPort("192.0.2.1:4000")},
		{ID: 4, Status: StatusClient, Client: netip.MustParseAddrPort("[2001:db8::1]:5")},
		{ID: 5, Status: StatusRefused},
	} {
		b := r.Encode()
		for i := range b {
			for _, v := range []byte{0, 1, 4, 6, 0xff} {
				m := b
				m[i] = v
				got, err := DecodeRecord(m[:])
				if err != nil {
					continue
				}
				if again := got.Encode(); again != m {
					t.Errorf("byte %d = %#x: accepted %+v, which encodes differently", i, v, got)
				}
			}
		}
	}
	for _, b := range [][]byte{nil, make([]byte, RecordSize-1), make([]byte, RecordSize+1)} {
		if _, err := DecodeRecord(b); err == nil {
			t.Errorf("%d bytes accepted", len(b))
		}
	}
	mapped := Record{ID: 1, Status: StatusClient, Client: netip.MustParseAddrPort("192.0.2.1:1")}.Encode()
	mapped[13] = 6
	copy(mapped[16:], netip.MustParseAddr("::ffff:192.0.2.1").AsSlice())
	if _, err := DecodeRecord(mapped[:]); err == nil {
		t.Error("an IPv4-mapped address accepted")
	}
	unspec := Record{ID: 1, Status: StatusClient, Client: netip.MustParseAddrPort("192.0.2.1:1")}.Encode()
	copy(unspec[16:20], []byte{0, 0, 0, 0})
	if _, err := DecodeRecord(unspec[:]); err == nil {
		t.Error("0.0.0.0 accepted")
	}
}
