// Package golden holds the test that replays popa3d 1.0.3's recorded sessions
// (testdata/popa3d-golden) against our protocol engine and mbox backend, byte
// for byte, and checks every deliberate difference on its own. It has no code
// of its own.
package golden
