package main

import (
	"context"
	"io"
	"net"
	"strings"
	"testing"
	"time"
)

// TestBody feeds multi-line replies through a real loopback connection and
// checks that body stops exactly at each terminator, including one that
// straddles the client's buffer and bodies that begin with an empty or a
// dot-stuffed line.
func TestBody(t *testing.T) {
	long := strings.Repeat("x", 256<<10-3) + "\r\n" // puts the terminator across the 256 KiB buffer
	bodies := []string{
		".\r\n",
		"\r\n.\r\n",
		"..\r\n.\r\n",
		"a\r\n.\r\n",
		"..x\r\n.\r\n",
		"line\r\n...\r\nmore\r\n.\r\n",
		long + ".\r\n",
		strings.Repeat("y", 300<<10) + "\r\n.\r\n",
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		io.WriteString(c, "+OK hello\r\n")
		for _, b := range bodies {
			io.WriteString(c, "+OK\r\n"+b)
		}
		io.WriteString(c, "+OK last\r\n")
	}()
	cl, err := dial(context.Background(), ln.Addr().String(), 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	for i, b := range bodies {
		if _, err := cl.status(); err != nil {
			t.Fatalf("reply %d: %v", i, err)
		}
		n, err := cl.body()
		if err != nil {
			t.Fatalf("body %d: %v", i, err)
		}
		if n != int64(len(b)) {
			t.Errorf("body %d: read %d bytes, want %d", i, n, len(b))
		}
	}
	if s, err := cl.status(); err != nil || s != "+OK last" {
		t.Errorf("after the bodies: %q, %v; want +OK last", s, err)
	}
}
