// Package account looks up the local accounts and groups that the
// configuration names (preauth_user, run_as, mail_group) and expands a
// setting's leading "~/" with an account's home directory. It is the one
// place that turns such a name into ids and a home, and that knows "~/".
//
// Logins are not looked up here: the accounts backends (auth/system,
// auth/pam) do that with their own rules for hostile names and secrets.
package account

import (
	"fmt"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
)

// Account is a local account: its ids and home directory.
type Account struct {
	UID, GID int
	Home     string
}

// Lookup returns the account called name.
func Lookup(name string) (Account, error) {
	u, err := user.Lookup(name)
	if err != nil {
		return Account{}, err
	}
	return fromUser(u)
}

// LookupID returns the account with user id uid.
func LookupID(uid int) (Account, error) {
	u, err := user.LookupId(strconv.Itoa(uid))
	if err != nil {
		return Account{}, err
	}
	return fromUser(u)
}

func fromUser(u *user.User) (Account, error) {
	uid, err1 := strconv.Atoi(u.Uid)
	gid, err2 := strconv.Atoi(u.Gid)
	if err1 != nil || err2 != nil {
		return Account{}, fmt.Errorf("account %s: ids %q and %q are not numbers", u.Username, u.Uid, u.Gid)
	}
	return Account{UID: uid, GID: gid, Home: u.HomeDir}, nil
}

// LookupGroup returns the id of the group called name.
func LookupGroup(name string) (int, error) {
	g, err := user.LookupGroup(name)
	if err != nil {
		return -1, err
	}
	gid, err := strconv.Atoi(g.Gid)
	if err != nil {
		return -1, fmt.Errorf("group %s: id %q is not a number", name, g.Gid)
	}
	return gid, nil
}

// homePrefix starts a setting that names a path in an account's home
// directory (popa3d's $HOME/Mailbox style).
const homePrefix = "~/"

// InHome reports whether setting names a path in an account's home
// directory: whether it starts with "~/".
func InHome(setting string) bool { return strings.HasPrefix(setting, homePrefix) }

// ExpandHome returns setting with its leading "~/" replaced by the home
// directory home, which must then be absolute; a setting that does not start
// with "~/" is returned as it is. An expanded path is cleaned
// (filepath.Join).
func ExpandHome(setting, home string) (string, error) {
	rest, ok := strings.CutPrefix(setting, homePrefix)
	if !ok {
		return setting, nil
	}
	if !filepath.IsAbs(home) {
		return "", fmt.Errorf("home directory %q is not an absolute path", home)
	}
	return filepath.Join(home, rest), nil
}
