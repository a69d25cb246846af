//go:build cgo

package system

/*
#cgo LDFLAGS: -lcrypt
#include <crypt.h>
#include <stdlib.h>
#include "p3system.h"
*/
import "C"

import (
	"errors"
	"fmt"
	"strings"
	"syscall"
	"unsafe"
)

// cString copies s to the C heap; free it with wipeFree.
func cString(s string) *C.char { return C.CString(s) }

// wipeFree wipes and frees a C string made by cString.
func wipeFree(s *C.char) { C.p3_wipe_free(s) }

// cPrefix returns prefix on the C heap, or nil for "" (the default method).
func cPrefix(prefix string) *C.char {
	if prefix == "" {
		return nil
	}
	return C.CString(prefix)
}

// gensalt returns a new crypt(3) setting for prefix ("" for the default
// method). A setting holds no secret.
func gensalt(prefix string) (string, error) {
	if strings.IndexByte(prefix, 0) >= 0 {
		return "", errors.New("crypt_gensalt: NUL byte in the prefix")
	}
	cp := cPrefix(prefix)
	defer C.free(unsafe.Pointer(cp))
	buf := (*C.char)(C.malloc(C.CRYPT_GENSALT_OUTPUT_SIZE))
	defer C.free(unsafe.Pointer(buf))
	if e := C.p3_gensalt(cp, buf); e != 0 {
		return "", fmt.Errorf("crypt_gensalt %q: %w", prefix, syscall.Errno(e))
	}
	return C.GoString(buf), nil
}

// HashPassword hashes password the way passwd(1) would, with a new random
// salt: prefix picks the method ("$y$" yescrypt, "$gy$" gost-yescrypt, "$6$"
// sha512-crypt, "$5$" sha256-crypt, "$2b$" bcrypt, "$1$" md5-crypt, or any
// other that libxcrypt knows), at its default cost; "" means the system's
// default method. The result can go into /etc/shadow, for instance with
// "chpasswd -e". An empty password, or one with a NUL byte, is an error.
func HashPassword(password, prefix string) (string, error) {
	if password == "" {
		return "", errors.New("hash password: empty password")
	}
	if strings.IndexByte(password, 0) >= 0 || strings.IndexByte(prefix, 0) >= 0 {
		return "", errors.New("hash password: NUL byte")
	}
	cp := cPrefix(prefix)
	defer C.free(unsafe.Pointer(cp))
	pw := cString(password)
	defer wipeFree(pw)
	var e C.int
	h := C.p3_hash(pw, cp, &e)
	if h == nil {
		return "", fmt.Errorf("hash password with %q: %w", prefix, syscall.Errno(e))
	}
	defer C.free(unsafe.Pointer(h))
	return C.GoString(h), nil
}
