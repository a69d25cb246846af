package account

import (
	"os"
	"testing"
)

func TestExpandHome(t *testing.T) {
	for _, tc := range []struct {
		setting, home, want string
		err                 bool
	}{
		{"~/Mailbox", "/home/alice", "/home/alice/Mailbox", false},
		{"~/Mailbox", "/home/alice/", "/home/alice/Mailbox", false},
		{"~/.popa3d/", "/home/alice", "/home/alice/.popa3d", false},
		{"~/", "/home/alice", "/home/alice", false},
		{"~/Mailbox", "", "", true},
		{"~/Mailbox", "home/alice", "", true},
		{"/var/mail/alice", "", "/var/mail/alice", false},
		{"spool/alice", "/home/alice", "spool/alice", false},
		{"~alice/Mailbox", "/home/alice", "~alice/Mailbox", false},
		{"", "/home/alice", "", false},
	} {
		got, err := ExpandHome(tc.setting, tc.home)
		if got != tc.want || (err != nil) != tc.err {
			t.Errorf("ExpandHome(%q, %q) = %q, %v; want %q (error %v)", tc.setting, tc.home, got, err, tc.want, tc.err)
		}
		if InHome(tc.setting) != (len(tc.setting) > 1 && tc.setting[:2] == "~/") {
			t.Errorf("InHome(%q) = %v", tc.setting, InHome(tc.setting))
		}
	}
}

func TestLookup(t *testing.T) {
	root, err := Lookup("root")
	if err != nil || root.UID != 0 || root.GID != 0 || root.Home == "" {
		t.Errorf("Lookup(root) = %+v, %v", root, err)
	}
	if byID, err := LookupID(0); err != nil || byID != root {
		t.Errorf("LookupID(0) = %+v, %v; want %+v", byID, err, root)
	}
	if me, err := LookupID(os.Geteuid()); err == nil && me.UID != os.Geteuid() {
		t.Errorf("LookupID(%d) = %+v", os.Geteuid(), me)
	}
	if a, err := Lookup("p3anosuchuser"); err == nil {
		t.Errorf("Lookup of a missing account: %+v", a)
	}
	if gid, err := LookupGroup("root"); err != nil || gid != 0 {
		t.Errorf("LookupGroup(root) = %d, %v", gid, err)
	}
	if gid, err := LookupGroup("p3anosuchgroup"); err == nil || gid != -1 {
		t.Errorf("LookupGroup of a missing group: %d, %v", gid, err)
	}
}
