package report

import (
	"encoding/binary"
	"time"

	"github.com/popa3d/popa3d/pop3"
)

// Version 3 of the summary record (version 2 of the magic is left to a
// record of another kind) adds what the metrics need and version 1 lacks:
// the login mechanism, whether the session ran the UPDATE state (so that the
// daemon knows the state each session ended in), and the bytes of the
// messages retrieved. Its layout, big-endian and fixed like version 1's:
//
//	magic "PR\x00\x03"  4
//	flags               1  authenticated 1, updated 2
//	failure             1  pop3.Failure
//	mechanism           1  MechanismCode; 0 exactly when no login was attempted
//	retrieved           4
//	deleted             4
//	retrieved bytes     8
//	bytes sent          8
//	duration            8  nanoseconds
//	UPDATE time         8  nanoseconds, at most the duration
//
// Session processes write version 3 (Writer); Read takes either version.

// SizeV3 is the length of every version-3 record.
const SizeV3 = 4 + 1 + 1 + 1 + 4 + 4 + 8 + 8 + 8 + 8

// MaxSize is the length of the longest record of any version.
const MaxSize = SizeV3

var magicV3 = [4]byte{'P', 'R', 0, 3}

const flagUpdated = 2

// mechanisms are the login mechanisms a record can name, by code. Code 0 is
// "no login"; a mechanism not in the table is reported as "other". A code
// is part of the record's layout: a new name is appended, and no code
// changes.
var mechanisms = [...]string{"", "USER", "PLAIN", "LOGIN", "CRAM-MD5", "SCRAM-SHA-1", "SCRAM-SHA-256",
	"XOAUTH2", "OAUTHBEARER", "other", "SCRAM-SHA-256-PLUS"}

// NumMechanisms is the number of mechanism codes: 0 (no login) to
// NumMechanisms-1.
const NumMechanisms = len(mechanisms)

// otherMechanism is the code of "other".
const otherMechanism = 9

// MechanismCode returns the code of a login mechanism's name: 0 for "", the
// code of "other" for a name the table lacks.
func MechanismCode(name string) uint8 {
	for i, m := range mechanisms {
		if m == name {
			return uint8(i)
		}
	}
	return otherMechanism
}

// MechanismName returns the name of a mechanism code ("" for 0 and any
// code out of range).
func MechanismName(code uint8) string {
	if int(code) < NumMechanisms {
		return mechanisms[code]
	}
	return ""
}

// loginAttempted reports whether s's session tried to log in: it passed,
// or failed with a login's reason.
func loginAttempted(s pop3.Summary) bool {
	switch {
	case s.Authenticated, s.Failure == pop3.FailureUnknownUser, s.Failure == pop3.FailureBadPassword,
		s.Failure == pop3.FailureAuthUnavailable:
		return true
	}
	return false
}

// LoginMechanism returns the mechanism of s's login, or "" when it
// attempted none: s.Mechanism when the session named one, else "USER"
// (USER and PASS).
func LoginMechanism(s pop3.Summary) string {
	if !loginAttempted(s) {
		return ""
	}
	if s.Mechanism != "" {
		return s.Mechanism
	}
	return "USER"
}

// setMechanism gives s the mechanism a record named.
func setMechanism(s *pop3.Summary, name string) { s.Mechanism = name }

// Record is what a version-3 record carries: a summary's figures and the
// name of its login mechanism.
type Record struct {
	Summary   pop3.Summary // without User and RemoteAddr
	Mechanism string       // "" when no login was attempted
}

// EncodeV3 returns the version-3 record of s, with LoginMechanism(s).
func EncodeV3(s pop3.Summary) []byte {
	return EncodeRecord(Record{Summary: s, Mechanism: LoginMechanism(s)})
}

// EncodeRecord returns r as a version-3 record. Counts beyond a record's
// range are clamped; a mechanism is written only for a session that
// attempted a login.
func EncodeRecord(r Record) []byte {
	s := r.Summary
	b := make([]byte, 0, SizeV3)
	b = append(b, magicV3[:]...)
	var flags byte
	if s.Authenticated {
		flags |= flagAuthenticated
		if s.Updated {
			flags |= flagUpdated
		}
	}
	var mech uint8
	if loginAttempted(s) {
		mech = MechanismCode(r.Mechanism)
		if mech == 0 {
			mech = otherMechanism
		}
	}
	b = append(b, flags, byte(s.Failure), mech)
	b = binary.BigEndian.AppendUint32(b, uint32(min(max(s.Retrieved, 0), 1<<32-1)))
	b = binary.BigEndian.AppendUint32(b, uint32(min(max(s.Deleted, 0), 1<<32-1)))
	b = binary.BigEndian.AppendUint64(b, uint64(min(max(s.RetrievedBytes, 0), 1<<62)))
	b = binary.BigEndian.AppendUint64(b, uint64(min(max(s.BytesSent, 0), 1<<62)))
	d := min(max(s.Duration, 0), 1<<62)
	b = binary.BigEndian.AppendUint64(b, uint64(d))
	b = binary.BigEndian.AppendUint64(b, uint64(max(min(s.UpdateTime, d), 0)))
	return b
}

// DecodeRecord checks and decodes one version-3 record: it refuses any
// other size or magic, an unknown flag, failure or mechanism, a mechanism
// without a login or a login without one, UPDATE without a login, and any
// figure out of range.
func DecodeRecord(b []byte) (Record, error) {
	if len(b) != SizeV3 || [4]byte(b[:4]) != magicV3 {
		return Record{}, ErrBadRecord
	}
	flags, failure, mech := b[4], pop3.Failure(b[5]), b[6]
	s := pop3.Summary{
		Authenticated: flags&flagAuthenticated != 0,
		Updated:       flags&flagUpdated != 0,
		Failure:       failure,
		Retrieved:     int(binary.BigEndian.Uint32(b[7:])),
		Deleted:       int(binary.BigEndian.Uint32(b[11:])),
	}
	rb := binary.BigEndian.Uint64(b[15:])
	n := binary.BigEndian.Uint64(b[23:])
	d := binary.BigEndian.Uint64(b[31:])
	u := binary.BigEndian.Uint64(b[39:])
	switch {
	case flags&^(flagAuthenticated|flagUpdated) != 0, s.Updated && !s.Authenticated,
		int(failure) >= pop3.NumFailures, int(mech) >= NumMechanisms,
		(mech != 0) != loginAttempted(s),
		rb > 1<<62, n > 1<<62, d > 1<<62, u > d:
		return Record{}, ErrBadRecord
	}
	s.RetrievedBytes, s.BytesSent, s.Duration, s.UpdateTime = int64(rb), int64(n), time.Duration(d), time.Duration(u)
	return Record{Summary: s, Mechanism: MechanismName(mech)}, nil
}
