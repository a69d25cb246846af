package e2e

import (
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"os"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/argon2"

	"github.com/popa3d/popa3d/auth/system/systemtest"
)

// Failed-login timing (issue 8, finding 1): the time from the PASS to the
// -ERR must not tell whether the account exists, is locked or is root, nor
// what its hash costs to verify. The server answers every failed login
// auth_failure_delay after it read the PASS (a floor, padded to the next
// multiple when the verification takes longer), so the time a client sees
// is the same for every refusal. Before that fix the delay was slept after
// the verification and the client saw delay + cost.

const (
	// timingDelay is the auth_failure_delay of the timing test. It must be
	// well above what any verification below can cost on a loaded machine,
	// or the reply is padded to the next multiple of it: bcrypt cost 12 and
	// the argon2id hash cost 100-300 ms of CPU, but took up to 1 s (the
	// slowest 2.5 s) with six other test runs on two cores, where a 500 ms
	// delay had half the bcrypt replies padded to 1 s. A second also leaves
	// the server's process asleep long enough after a costly verification
	// for the scheduler to wake it on time. The test takes about two
	// minutes.
	timingDelay = time.Second
	// timingRounds is how many times each case is measured. The cases of
	// a backend are measured in turn, round after round, each round in
	// another order, so that load from elsewhere falls on all of them alike.
	timingRounds = 7
	// timingTolerance is how far apart the cases of one backend may be, in
	// their medians and in their lower quartiles.
	//
	// With the fix every reply is due at the same instant after the PASS,
	// and what is left is the wake-up of a timer, a write and a read on
	// loopback: within 1-2 ms from case to case here. Load from elsewhere
	// only ever adds to a sample, a few ms to tens of ms at random, and
	// with six other test runs on two cores (load average 12) it moved the
	// median of 9 samples of the cheapest case 12 ms above the others; the
	// lower quartile stayed within 5 ms. So the medians, logged and held to
	// timingMedianTolerance, only catch a gross difference, and the lower
	// quartile is held to timingTolerance.
	//
	// Without the fix each sample carries its verification's cost, which
	// load makes larger, never smaller, so the lower quartile keeps it: a
	// sha512-crypt hash (about 1 ms) against yescrypt at the default cost
	// (the system backend's dummy for unknown, locked and uid-0 names, and
	// pam_unix's hashing of existing accounts: 15-25 ms on an idle current
	// core, more under load), and in the password file sha512-crypt against
	// argon2id and bcrypt (100 ms and more). 10 ms is several times the
	// noise of the fixed server's quartiles and below the smallest of those
	// differences on a fast idle machine.
	timingTolerance = 10 * time.Millisecond
	// timingMedianTolerance bounds the spread of the medians: well above
	// their noise on a heavily loaded machine, well below the cost of a
	// bcrypt or an argon2id verification, and far below the extra delay
	// that most replies of a case get when its verification outlasts the
	// delay.
	timingMedianTolerance = 50 * time.Millisecond
)

// timingCase is one kind of failed login.
type timingCase struct{ name, user, password string }

// TestFailedLoginTiming measures PASS sent to -ERR received over TCP against
// popa3d -D, for every kind of refusal of each backend: system accounts and
// PAM (an unknown user, a wrong password for a sha512-crypt and a yescrypt
// account, a locked account, and a second name with uid 0 with its right
// password), and the password file (an unknown user, a wrong password for an
// argon2id, a bcrypt and a sha512-crypt user). Each backend's cases must
// agree (see timingTolerance) and no reply may come before the delay. It needs
// root for the system accounts (skipped otherwise; failed when CI=true).
func TestFailedLoginTiming(t *testing.T) {
	systemtest.RequireRoot(t)
	start := time.Now()

	// System accounts, shared by the system and PAM backends.
	s := &sysSite{site: newSite(t)}
	s.pre = systemtest.AddUser(t, "ptimpre"+strconv.Itoa(os.Getpid()%1000), "--system")
	if err := os.Mkdir(s.path("spool"), 0o755); err != nil {
		t.Fatal(err)
	}
	s.settings["mailbox"] = `"spool/%u"`
	s.settings["chroot"] = `"empty"`
	s.settings["preauth_user"] = fmt.Sprintf("%q", s.pre.Name)
	s.settings["auth_failure_delay"] = fmt.Sprintf("%q", timingDelay.String())
	// Sequential connections from one source must never wait for a slot.
	s.settings["session_min_hold"] = `"0s"`

	sha := systemtest.AddUser(t, "ptimsha")
	systemtest.SetPassword(t, sha.Name, "sha password", "SHA512")
	yes := systemtest.AddUser(t, "ptimyes")
	systemtest.SetPassword(t, yes.Name, "yes password", "YESCRYPT")
	lock := systemtest.AddUser(t, "ptimlock")
	systemtest.SetHash(t, lock.Name, "!")
	root := systemtest.AddUser(t, "ptimroot", "-o", "-u", "0")
	systemtest.SetPassword(t, root.Name, "root password", "YESCRYPT")
	for name, prefix := range map[string]string{sha.Name: "$6$", yes.Name: "$y$", lock.Name: "!", root.Name: "$y$"} {
		if h := systemtest.ShadowHash(t, name); !strings.HasPrefix(h, prefix) {
			t.Fatalf("%s's hash %q does not start with %q", name, h, prefix)
		}
	}
	if root.UID != 0 {
		t.Fatalf("%s has uid %d, want 0", root.Name, root.UID)
	}
	const unknown = "ptimnouser"
	if _, err := user.Lookup(unknown); err == nil {
		t.Fatalf("%s exists", unknown)
	}
	systemCases := []timingCase{
		{"unknown user", unknown, "some password"},
		{"sha512-crypt, wrong password", sha.Name, "wrong password"},
		{"yescrypt, wrong password", yes.Name, "wrong password"},
		{"locked (!)", lock.Name, "some password"},
		{"uid 0, right password", root.Name, "root password"},
	}

	pamService := "ptim-timing-" + strconv.Itoa(os.Getpid())
	pamFile := filepath.Join("/etc/pam.d", pamService)
	if err := os.WriteFile(pamFile, []byte("@include common-auth\n@include common-account\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.Remove(pamFile) })

	t.Run("system", func(t *testing.T) {
		s.settings["auth"] = `"system"`
		s.writeConfig()
		d := s.startDaemon()
		checkTiming(t, measureFailures(t, d.addr, systemCases))
		d.terminate(t)
	})
	t.Run("pam", func(t *testing.T) {
		s.settings["auth"] = `"pam"`
		s.settings["pam_service"] = fmt.Sprintf("%q", pamService)
		s.writeConfig()
		d := s.startDaemon()
		checkTiming(t, measureFailures(t, d.addr, systemCases))
		d.terminate(t)
	})
	t.Run("passwd_file", func(t *testing.T) {
		bc := hashPassword(t, "bcrypt", "bcrypt password")
		if !strings.HasPrefix(bc, "$2a$12$") && !strings.HasPrefix(bc, "$2b$12$") {
			t.Fatalf("bcrypt hash %q is not of cost 12", bc)
		}
		f := newSite(t,
			account{name: "argon", hash: argon2idHash(t, "argon password", 65536, 2, 1)},
			account{name: "bcrypt", hash: bc},
			account{name: "sha", password: "sha password", scheme: "sha512-crypt"},
		)
		f.set("auth_failure_delay", fmt.Sprintf("%q", timingDelay.String()))
		f.set("session_min_hold", `"0s"`)
		d := f.startDaemon()
		checkTiming(t, measureFailures(t, d.addr, []timingCase{
			{"unknown user", "nosuchuser", "some password"},
			{"argon2id m=64MiB t=2, wrong password", "argon", "wrong password"},
			{"bcrypt cost 12, wrong password", "bcrypt", "wrong password"},
			{"sha512-crypt, wrong password", "sha", "wrong password"},
		}))
		d.terminate(t)
	})
	t.Logf("took %v", time.Since(start).Round(time.Second))
}

// argon2idHash makes a password file hash of password with the given
// argon2id costs (memory in KiB), in the PHC form popa3d reads.
func argon2idHash(t *testing.T, password string, memory, passes uint32, threads uint8) string {
	t.Helper()
	salt := make([]byte, 16)
	if _, err := rand.Read(salt); err != nil {
		t.Fatal(err)
	}
	key := argon2.IDKey([]byte(password), salt, passes, memory, threads, 32)
	b64 := base64.RawStdEncoding.EncodeToString
	return fmt.Sprintf("$argon2id$v=19$m=%d,t=%d,p=%d$%s$%s", memory, passes, threads, b64(salt), b64(key))
}

// timingResult is what measureFailures saw of one case.
type timingResult struct {
	timingCase
	samples []time.Duration // sorted
}

func (r timingResult) median() time.Duration { return r.samples[len(r.samples)/2] }

// quartile is the lower quartile: the time of a reply that the load from
// elsewhere did not hold up much, with most of the samples above it.
func (r timingResult) quartile() time.Duration { return r.samples[len(r.samples)/4] }

// measureFailures times timingRounds failed logins of each case, one
// connection after another (never two at once, so that no verification
// competes with another), the cases in turn and in a rotating order.
func measureFailures(t *testing.T, addr string, cases []timingCase) []timingResult {
	t.Helper()
	res := make([]timingResult, len(cases))
	for i, c := range cases {
		res[i].timingCase = c
	}
	for round := range timingRounds {
		for k := range cases {
			i := (k + round) % len(cases)
			res[i].samples = append(res[i].samples, failedLoginTime(t, addr, cases[i]))
		}
	}
	for i := range res {
		slices.Sort(res[i].samples)
	}
	return res
}

// failedLoginTime logs in as c and returns the time from sending the PASS
// to receiving its -ERR; the server must then close the connection.
func failedLoginTime(t *testing.T, addr string, c timingCase) time.Duration {
	t.Helper()
	cl := dial(t, addr)
	defer cl.close()
	cl.ok("USER " + c.user)
	// The clock starts before the write: the server cannot read the PASS
	// before it is sent, so no reply can be measured early.
	sent := time.Now()
	cl.send("PASS " + c.password)
	r := cl.line()
	took := time.Since(sent)
	if r != replyAuthFailed {
		t.Fatalf("%s: PASS: %q, want %q", c.name, r, replyAuthFailed)
	}
	cl.expectClose()
	return took
}

// checkTiming logs each case's figures and fails unless the cases' lower
// quartiles agree within timingTolerance, their medians within
// timingMedianTolerance, and no reply came before the delay.
func checkTiming(t *testing.T, res []timingResult) {
	t.Helper()
	ms := func(d time.Duration) string { return fmt.Sprintf("%.1f", float64(d)/float64(time.Millisecond)) }
	for _, r := range res {
		var all []string
		for _, d := range r.samples {
			all = append(all, ms(d))
		}
		t.Logf("%-36s median %s ms, lower quartile %s ms (samples: %s)", r.name, ms(r.median()), ms(r.quartile()), strings.Join(all, " "))
		if r.samples[0] < timingDelay {
			t.Errorf("%s: -ERR after %v, before the %v delay", r.name, r.samples[0], timingDelay)
		}
	}
	for _, stat := range []struct {
		name      string
		of        func(timingResult) time.Duration
		tolerance time.Duration
	}{
		{"lower quartiles", timingResult.quartile, timingTolerance},
		{"medians", timingResult.median, timingMedianTolerance},
	} {
		lo, hi := res[0], res[0]
		for _, r := range res {
			if stat.of(r) < stat.of(lo) {
				lo = r
			}
			if stat.of(r) > stat.of(hi) {
				hi = r
			}
		}
		spread := stat.of(hi) - stat.of(lo)
		t.Logf("spread of the %s: %s ms (tolerance %v)", stat.name, ms(spread), stat.tolerance)
		if spread > stat.tolerance {
			t.Errorf("failed logins tell their cases apart by their %s: %s %s ms, %s %s ms (%s ms apart, more than %v)",
				stat.name, lo.name, ms(stat.of(lo)), hi.name, ms(stat.of(hi)), ms(spread), stat.tolerance)
		}
	}
}
