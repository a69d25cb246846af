package main

import (
	"bufio"
	"bytes"
	"flag"
	"fmt"
	"io"
	"os"

	"golang.org/x/term"

	"github.com/popa3d/popa3d/auth/passwdfile"
)

// passwdCommand prints a password hash for a password file entry. The password
// is read from the terminal without echo (twice), or as one line from stdin.
// With -s scram-sha-256 it prints a SCRAM-SHA-256 verifier
// ({SCRAM-SHA-256}iterations,salt,storedkey,serverkey), which also verifies
// PLAIN and PASS.
func passwdCommand(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("passwd", flag.ContinueOnError)
	fs.SetOutput(stderr)
	scheme := fs.String("s", "argon2id", "hash scheme: argon2id, bcrypt, sha512-crypt, sha256-crypt or scram-sha-256")
	if err := fs.Parse(args); err != nil || fs.NArg() > 0 {
		fmt.Fprintln(stderr, "Usage: popa3d passwd [-s SCHEME]")
		return 1
	}
	pw, err := readPassword(stdin, stderr)
	if err != nil {
		fmt.Fprintf(stderr, "popa3d passwd: %v\n", err)
		return 1
	}
	defer clear(pw)
	if len(pw) == 0 {
		fmt.Fprintln(stderr, "popa3d passwd: empty passwords are refused")
		return 1
	}
	h, err := passwdfile.Hash(pw, *scheme)
	if err != nil {
		fmt.Fprintf(stderr, "popa3d passwd: %v\n", err)
		return 1
	}
	fmt.Fprintln(stdout, h)
	return 0
}

func readPassword(stdin io.Reader, stderr io.Writer) ([]byte, error) {
	if f, ok := stdin.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		fmt.Fprint(stderr, "Password: ")
		a, err := term.ReadPassword(int(f.Fd()))
		fmt.Fprintln(stderr)
		if err != nil {
			return nil, err
		}
		fmt.Fprint(stderr, "Again: ")
		b, err := term.ReadPassword(int(f.Fd()))
		fmt.Fprintln(stderr)
		if err != nil {
			return nil, err
		}
		defer clear(b)
		if !bytes.Equal(a, b) {
			clear(a)
			return nil, fmt.Errorf("the passwords differ")
		}
		return a, nil
	}
	line, err := bufio.NewReader(stdin).ReadBytes('\n')
	if err != nil && err != io.EOF {
		return nil, err
	}
	line = bytes.TrimSuffix(line, []byte("\n"))
	line = bytes.TrimSuffix(line, []byte("\r"))
	return line, nil
}
