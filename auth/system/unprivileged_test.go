//go:build cgo

package system

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/popa3d/popa3d/auth"
	"github.com/popa3d/popa3d/auth/system/systemtest"
)

// childEnv tells the test binary that it runs as the unprivileged child of
// TestUnprivileged; its value is the account to try.
const childEnv = "P3AS_UNPRIVILEGED_CHILD"

// TestUnprivileged runs without the right to read the shadow database: New
// must say so, so that a server started without root tells its admin instead
// of refusing everyone as if the passwords were wrong; and an Authenticator
// made anyway must refuse, with a detail for the log, and still tell unknown
// users apart.
func TestUnprivileged(t *testing.T) {
	if name := os.Getenv(childEnv); name != "" {
		unprivilegedChild(name)
		return
	}
	systemtest.RequireRoot(t)
	systemtest.AddUser(t, "p3asunpr")
	systemtest.SetPassword(t, "p3asunpr", testPassword, "YESCRYPT")

	// The test binary, where nobody can run it.
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	for d := dir; d != os.TempDir() && d != "/"; d = filepath.Dir(d) {
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	bin := filepath.Join(dir, "test")
	data, err := os.ReadFile(self)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(bin, data, 0o755); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "-test.run=^TestUnprivileged$", "-test.count=1")
	cmd.Env = append(os.Environ(), childEnv+"=p3asunpr")
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("child: %v\n%s", err, out)
	}
	got := string(out)
	if want := "New: system accounts: open /etc/shadow: permission denied (reading shadow passwords needs root)\n"; !strings.Contains(got, want) {
		t.Errorf("child output lacks %q:\n%s", want, got)
	}
	// What getspnam says depends on nsswitch.conf. With "shadow: files"
	// alone (a fresh or minimal Debian, a container), the files module's
	// EACCES is the answer: both logins fail with the lookup's error. With
	// a module after files that answers "not found" (libnss-systemd's
	// "files systemd"), the account has no shadow entry and the other name
	// is unknown. Either way both are refused, with a detail for the log.
	unreadable := []string{
		"p3asunpr: unavailable: system accounts: getspnam: permission denied\n",
		"p3asnone: unavailable: system accounts: getspnam: permission denied\n",
	}
	notFound := []string{
		"p3asunpr: failed: authentication failed: passwd field \"x\" but no shadow entry (shadow unreadable?)\n",
		"p3asnone: unknown: authentication failed\n",
	}
	want := notFound
	if strings.Contains(got, unreadable[0]) {
		want = unreadable
	}
	for _, w := range want {
		if !strings.Contains(got, w) {
			t.Errorf("child output lacks %q:\n%s", w, got)
		}
	}
}

// unprivilegedChild prints what each login gives.
func unprivilegedChild(name string) {
	_, err := New(Options{})
	fmt.Printf("New: %v\n", err)
	dummy, err := gensalt("")
	if err != nil {
		fmt.Println("gensalt:", err)
		return
	}
	a := &Authenticator{dummy: dummy}
	for _, user := range []string{name, "p3asnone"} {
		_, err := a.Authenticate(context.Background(), user, testPassword)
		switch {
		case err == nil:
			fmt.Printf("%s: accepted\n", user)
		case errors.Is(err, auth.ErrUnknownUser):
			fmt.Printf("%s: unknown: %v\n", user, err)
		case errors.Is(err, auth.ErrFailed):
			fmt.Printf("%s: failed: %v\n", user, err)
		default:
			fmt.Printf("%s: unavailable: %v\n", user, err)
		}
	}
}
