package privsep

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"

	"github.com/popa3d/popa3d/limits"
	"github.com/popa3d/popa3d/pop3"
	"github.com/popa3d/popa3d/sasl"
)

// The credentials record is all that crosses from the pre-auth process to
// root: a magic, the login mechanism's code, three lengths and three byte
// strings (user, password, pipelined input). The magic also says where the
// session goes on (mode). Version 2 (P3C2, P3R2) added the mechanism byte,
// so that the user's session reports how the client logged in; version 1
// (P3C1, P3R1, no mechanism) is no longer written by anything and is
// refused like any other bad header. The layout, big-endian:
//
//	magic      4  "P3C2" (direct) or "P3R2" (relayed)
//	mechanism  1  mechUser (USER/PASS) or mechPlain (AUTH PLAIN)
//	user       2  length
//	password   2  length
//	pending    2  length
//	then the user name, the password and the pending bytes.
//
// Root reads at most MaxRecord bytes and checks every length against the
// bound the pre-auth process itself enforces, so a compromised pre-auth
// process can make root read no more than that and can only present a user
// name and password, as any client can (popa3d: a buffer-sized record and
// 256 bytes of credentials, section 2).
const (
	recordMagic = "P3C2" // direct
	relayMagic  = "P3R2" // relayed
	headerSize  = len(recordMagic) + 1 + 3*2

	// The mechanism codes: the only two by which a pre-auth process hands
	// a password to root (SCRAM needs no password and is for virtual users
	// only). Any other byte is refused.
	mechUser  = 1
	mechPlain = 2

	// MaxUser is the longest user name a record may carry: a USER argument
	// (limits.Argument characters, each at most 4 bytes of UTF-8).
	MaxUser = 4 * limits.Argument
	// MaxPassword is the longest password a record may carry: a whole PASS
	// line less "PASS ".
	MaxPassword = limits.PassLine
	// MaxPending is the most pipelined input a record may carry.
	MaxPending = limits.ReadBuffer
	// MaxRecord bounds a whole record.
	MaxRecord = headerSize + MaxUser + MaxPassword + MaxPending
)

// errRecord is wrapped by every rejection of a record.
var errRecord = errors.New("bad credentials record")

// mode says which connection a session goes on on after the hand-off.
type mode int

const (
	// direct: the client's own socket, which the session process holds
	// too; the pre-auth process has exited (plaintext: nothing is copied).
	direct mode = iota
	// relayed: the relay channel; the pre-auth process stays and relays
	// the session between it and the client (TLS, whose state cannot be
	// handed over). See the package documentation.
	relayed
)

func (m mode) magic() string {
	if m == relayed {
		return relayMagic
	}
	return recordMagic
}

// EncodeRecord returns the record for c and m, or an error if a field is
// over its bound (the pre-auth process then ends the session instead).
func EncodeRecord(c pop3.Credentials, m mode) ([]byte, error) {
	if err := checkFields(len(c.User), len(c.Password), len(c.Pending)); err != nil {
		return nil, err
	}
	mech, err := mechanismCode(c.Mechanism)
	if err != nil {
		return nil, err
	}
	b := make([]byte, 0, headerSize+len(c.User)+len(c.Password)+len(c.Pending))
	b = append(b, m.magic()...)
	b = append(b, mech)
	b = binary.BigEndian.AppendUint16(b, uint16(len(c.User)))
	b = binary.BigEndian.AppendUint16(b, uint16(len(c.Password)))
	b = binary.BigEndian.AppendUint16(b, uint16(len(c.Pending)))
	b = append(b, c.User...)
	b = append(b, c.Password...)
	b = append(b, c.Pending...)
	return b, nil
}

// mechanismCode returns the record's code for a Credentials.Mechanism ("" is
// USER/PASS, as pop3.Credentials says).
func mechanismCode(name string) (byte, error) {
	switch name {
	case "", pop3.MechanismUser:
		return mechUser, nil
	case sasl.MechPlain:
		return mechPlain, nil
	}
	return 0, fmt.Errorf("%w: mechanism %q carries no password", errRecord, name)
}

// DecodeRecord parses a record from untrusted bytes. It accepts exactly one
// whole record; a user name or password that is empty or holds a NUL (which
// C interfaces would cut short) is refused, and so is a mechanism code
// other than mechUser and mechPlain. The magic gives the mode. The decoded
// Mechanism is always named (pop3.MechanismUser or "PLAIN"), never "".
func DecodeRecord(b []byte) (pop3.Credentials, mode, error) {
	if len(b) < headerSize {
		return pop3.Credentials{}, direct, fmt.Errorf("%w: no header", errRecord)
	}
	var m mode
	switch string(b[:len(recordMagic)]) {
	case recordMagic:
		m = direct
	case relayMagic:
		m = relayed
	default:
		return pop3.Credentials{}, direct, fmt.Errorf("%w: no header", errRecord)
	}
	var mech string
	switch b[4] {
	case mechUser:
		mech = pop3.MechanismUser
	case mechPlain:
		mech = sasl.MechPlain
	default:
		return pop3.Credentials{}, direct, fmt.Errorf("%w: mechanism code %d", errRecord, b[4])
	}
	nu := int(binary.BigEndian.Uint16(b[5:]))
	np := int(binary.BigEndian.Uint16(b[7:]))
	nb := int(binary.BigEndian.Uint16(b[9:]))
	if err := checkFields(nu, np, nb); err != nil {
		return pop3.Credentials{}, direct, err
	}
	if len(b) != headerSize+nu+np+nb {
		return pop3.Credentials{}, direct, fmt.Errorf("%w: %d bytes for lengths %d+%d+%d", errRecord, len(b), nu, np, nb)
	}
	body := b[headerSize:]
	user, pass, pending := body[:nu], body[nu:nu+np], body[nu+np:]
	if nu == 0 || np == 0 {
		return pop3.Credentials{}, direct, fmt.Errorf("%w: empty user name or password", errRecord)
	}
	if bytes.IndexByte(user, 0) >= 0 || bytes.IndexByte(pass, 0) >= 0 {
		return pop3.Credentials{}, direct, fmt.Errorf("%w: NUL in user name or password", errRecord)
	}
	c := pop3.Credentials{User: string(user), Password: string(pass), Mechanism: mech}
	if nb > 0 {
		c.Pending = bytes.Clone(pending)
	}
	return c, m, nil
}

func checkFields(nu, np, nb int) error {
	if nu > MaxUser || np > MaxPassword || nb > MaxPending {
		return fmt.Errorf("%w: a field is over its bound (%d/%d, %d/%d, %d/%d)",
			errRecord, nu, MaxUser, np, MaxPassword, nb, MaxPending)
	}
	return nil
}

// readRecord reads one record from r, which the pre-auth process closes
// after writing (by exiting, or before it relays): at most MaxRecord bytes, then EOF. An empty read means the client
// never logged in (errNoRecord).
func readRecord(r io.Reader) (pop3.Credentials, mode, error) {
	buf := make([]byte, MaxRecord+1)
	n, err := io.ReadFull(r, buf)
	switch {
	case err == io.EOF:
		return pop3.Credentials{}, direct, errNoRecord
	case err == io.ErrUnexpectedEOF:
	case err != nil:
		return pop3.Credentials{}, direct, fmt.Errorf("read credentials: %w", err)
	default:
		return pop3.Credentials{}, direct, fmt.Errorf("%w: over %d bytes", errRecord, MaxRecord)
	}
	c, m, err := DecodeRecord(buf[:n])
	clear(buf)
	return c, m, err
}

// errNoRecord means the pre-auth process ended without credentials.
var errNoRecord = errors.New("no credentials")
