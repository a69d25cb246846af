package pop3

import (
	"bytes"
	"testing"
)

// TestReplyBufferGrowsAtLogin: a session holds a small reply buffer until
// its mailbox is open, then the full one; what was queued moves over
// without a write, so pipelined replies still leave together.
func TestReplyBufferGrowsAtLogin(t *testing.T) {
	var wire bytes.Buffer
	ss := newSession(&Server{}, &wire, ConnInfo{}, nil)
	if got := ss.out.Size(); got != authBufferSize {
		t.Fatalf("reply buffer before login: %d bytes, want %d", got, authBufferSize)
	}
	ss.reply("+OK")
	ss.growReplyBuffer()
	if got := ss.out.Size(); got != bufferSize {
		t.Fatalf("reply buffer after login: %d bytes, want %d", got, bufferSize)
	}
	if wire.Len() != 0 || ss.out.Buffered() != len("+OK\r\n") {
		t.Fatalf("growing wrote %q, kept %d bytes", wire.String(), ss.out.Buffered())
	}
	ss.reply("+OK 2")
	if !ss.flush() || wire.String() != "+OK\r\n+OK 2\r\n" {
		t.Fatalf("wire %q", wire.String())
	}
	ss.growReplyBuffer() // a second time changes nothing
	if ss.out.Size() != bufferSize {
		t.Fatal("second growth")
	}
}
