//go:build cgo

package system

/*
#include <stdlib.h>
#include "p3system.h"
*/
import "C"

import (
	"fmt"
	"strings"
	"syscall"
	"unsafe"

	"github.com/popa3d/popa3d/auth"
)

// account is a passwd entry on the C heap; release it with free.
type account struct {
	c C.struct_p3_account
}

// lookupAccount looks name up with getpwnam_r. It returns nil and no error
// for a name that is not an account, including the empty name and a name
// with a NUL byte (which getpwnam would cut short, finding another account).
func lookupAccount(name string) (*account, error) {
	if name == "" || strings.IndexByte(name, 0) >= 0 {
		return nil, nil
	}
	cname := C.CString(name)
	defer C.free(unsafe.Pointer(cname))
	a := new(account)
	switch r := C.p3_getpw(cname, &a.c); r {
	case C.P3_FOUND:
		return a, nil
	case C.P3_NOT_FOUND:
		return nil, nil
	default:
		return nil, fmt.Errorf("getpwnam %q: %w", name, syscall.Errno(r))
	}
}

// free wipes and releases the entry.
func (a *account) free() { C.p3_account_free(&a.c) }

func (a *account) uid() int { return int(a.c.pw.pw_uid) }

// identity returns the account's identity, without a mailbox.
func (a *account) identity() auth.Identity {
	return auth.Identity{
		Name: C.GoString(a.c.pw.pw_name),
		UID:  int(a.c.pw.pw_uid),
		GID:  int(a.c.pw.pw_gid),
		Home: C.GoString(a.c.pw.pw_dir),
	}
}

// Lookup returns the identity of the account name as the C library's
// getpwnam_r finds it (so nsswitch.conf is honoured), without checking a
// password and without a mailbox: Mailbox is empty (see MailboxRule). Name
// is the account's own name, which may differ from the one asked for where
// NSS maps names. A name that is not an account gives an error that wraps
// auth.ErrUnknownUser; a lookup that failed, as when a directory service is
// down, another error. It does not refuse uid 0: callers that switch to the
// account must.
func Lookup(name string) (auth.Identity, error) {
	a, err := lookupAccount(name)
	if err != nil {
		return auth.Identity{}, err
	}
	if a == nil {
		return auth.Identity{}, fmt.Errorf("look up %q: %w", name, auth.ErrUnknownUser)
	}
	defer a.free()
	return a.identity(), nil
}
