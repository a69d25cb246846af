package passwdfile

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/popa3d/popa3d/auth"
	"github.com/popa3d/popa3d/sasl"
)

// The RFC 7677 example verifier (password "pencil", 4096 iterations).
const rfcVerifier = "{SCRAM-SHA-256}4096,W22ZaJ0SNY7soEsUEjb6gQ==,WG5d8oPm3OtcPnkdi4Uo7BkeZkBFzpcXkuLmtbsT4qY=,wfPLwcE6nTWhTAmQ7tl2KeoiWGPlZqQxSrmfPwDl2dU="

func TestSCRAMEntry(t *testing.T) {
	// The RFC's keys, recomputed: the format stores what RFC 5802 defines.
	h, err := parseHash(rfcVerifier)
	if err != nil {
		t.Fatal(err)
	}
	stored, server, _ := sasl.SCRAMSHA256Keys("pencil", h.salt, 4096)
	if !bytes.Equal(stored, h.key) || !bytes.Equal(server, h.serverKey) {
		t.Fatal("the RFC 7677 verifier does not hold the keys of \"pencil\"")
	}
	made, err := Hash([]byte("p\u00e4ss word"), "scram-sha-256")
	if err != nil || !strings.HasPrefix(made, "{SCRAM-SHA-256}10000,") {
		t.Fatalf("Hash: %q %v", made, err)
	}
	f := openString(t, "alice:"+rfcVerifier+"\nbob:"+made+"\ncarol:$5$Wd8nPq2x$JZaOn4cCNm6KVj0wRkqHHcrCzjE5EZdjlEr0oJlVTN4\nlocked:!"+rfcVerifier+"\n", "/mail/%u")
	ctx := context.Background()
	// PASS and PLAIN verify against the verifier.
	if id, err := f.Authenticate(ctx, "alice", "pencil"); err != nil || id.Name != "alice" || id.Mailbox != "/mail/alice" {
		t.Errorf("alice/pencil: %+v %v", id, err)
	}
	if _, err := f.Authenticate(ctx, "alice", "pencil2"); !errors.Is(err, auth.ErrFailed) {
		t.Errorf("wrong password: %v", err)
	}
	// A password is prepared as a SCRAM client prepares it (NFC).
	if _, err := f.Authenticate(ctx, "bob", "pa\u0308ss word"); err != nil {
		t.Errorf("bob, decomposed: %v", err)
	}
	if !f.HasSCRAM() {
		t.Error("HasSCRAM false")
	}
	cred, id, err := f.SCRAMSHA256(ctx, "alice")
	if err != nil || cred.Iterations != 4096 || !bytes.Equal(cred.StoredKey, h.key) || id.Name != "alice" {
		t.Errorf("alice: %+v %+v %v", cred, id, err)
	}
	// No verifier: a fake one, with the file's common count and salt
	// length, the same salt every time, and the refusal.
	for _, tc := range []struct {
		user    string
		unknown bool
	}{{"nosuchuser", true}, {"carol", false}, {"locked", false}} {
		c1, _, err1 := f.SCRAMSHA256(ctx, tc.user)
		c2, _, err2 := f.SCRAMSHA256(ctx, tc.user)
		var fail *auth.Failure
		if !errors.As(err1, &fail) || errors.Is(err1, auth.ErrUnknownUser) != tc.unknown || err2 == nil {
			t.Errorf("%s: %v", tc.user, err1)
		}
		if !bytes.Equal(c1.Salt, c2.Salt) || len(c1.Salt) != 16 || c1.Iterations != 4096 && c1.Iterations != 10000 {
			t.Errorf("%s: fake salt %x / %x, %d iterations", tc.user, c1.Salt, c2.Salt, c1.Iterations)
		}
	}
	other, _, _ := f.SCRAMSHA256(ctx, "someoneelse")
	fake, _, _ := f.SCRAMSHA256(ctx, "nosuchuser")
	if bytes.Equal(other.Salt, fake.Salt) {
		t.Error("two names share a fake salt")
	}
	if g := openString(t, "carol:$5$Wd8nPq2x$JZaOn4cCNm6KVj0wRkqHHcrCzjE5EZdjlEr0oJlVTN4\n", "/mail/%u"); g.HasSCRAM() {
		t.Error("HasSCRAM without a verifier")
	}
}

func TestSCRAMEntryBounds(t *testing.T) {
	salt, key := "W22ZaJ0SNY7soEsUEjb6gQ==", "WG5d8oPm3OtcPnkdi4Uo7BkeZkBFzpcXkuLmtbsT4qY="
	for _, bad := range []string{
		"{SCRAM-SHA-256}4095," + salt + "," + key + "," + key,    // too few iterations
		"{SCRAM-SHA-256}1000001," + salt + "," + key + "," + key, // too many: a DoS guard
		"{SCRAM-SHA-256}04096," + salt + "," + key + "," + key,
		"{SCRAM-SHA-256}4096,AAAA," + key + "," + key, // 3-byte salt
		"{SCRAM-SHA-256}4096," + salt + ",AAAA," + key,
		"{SCRAM-SHA-256}4096," + salt + "," + key,
		"{SCRAM-SHA-256}4096," + salt + "," + key + "," + key + ",x",
		"{SCRAM-SHA-256}4096," + salt + "," + key + "," + strings.TrimSuffix(key, "="),
	} {
		if _, err := parseHash(bad); err == nil || strings.Contains(err.Error(), salt) {
			t.Errorf("%q: %v", bad, err)
		}
	}
	for _, good := range []string{rfcVerifier, "{SCRAM-SHA-256}1000000," + salt + "," + key + "," + key} {
		h, err := parseHash(good)
		if err != nil {
			t.Fatalf("%q: %v", good, err)
		}
		d, err := dummyFor(h)
		if err != nil || d.class() != h.class() || bytes.Equal(d.salt, h.salt) {
			t.Errorf("dummy of %q: %+v %v", good, d, err)
		}
	}
}

// Adding a verifier to the file offers SCRAM without a restart.
func TestHasSCRAMFollowsReload(t *testing.T) {
	path := t.TempDir() + "/users"
	writeFile(t, path, "carol:$5$Wd8nPq2x$JZaOn4cCNm6KVj0wRkqHHcrCzjE5EZdjlEr0oJlVTN4\n")
	f, err := Open(Options{Path: path, MailboxTemplate: "/mail/%u"})
	if err != nil {
		t.Fatal(err)
	}
	if f.HasSCRAM() {
		t.Fatal("HasSCRAM without a verifier")
	}
	writeFile(t, path, "carol:$5$Wd8nPq2x$JZaOn4cCNm6KVj0wRkqHHcrCzjE5EZdjlEr0oJlVTN4\nalice:"+rfcVerifier+"\n")
	if !f.HasSCRAM() {
		t.Fatal("HasSCRAM false after a verifier was added")
	}
	if _, _, err := f.SCRAMSHA256(context.Background(), "alice"); err != nil {
		t.Fatal(err)
	}
}

// An unknown name's fake salt is the same in every process that reads the
// same file (inetd starts one per connection), as a real salt is, and
// changes with the file's secrets.
func TestFakeSaltAcrossProcesses(t *testing.T) {
	content := "alice:" + rfcVerifier + "\n"
	salt := func(content string) []byte {
		f := openString(t, content, "/mail/%u")
		c, _, err := f.SCRAMSHA256(context.Background(), "nosuchuser")
		if err == nil {
			t.Fatal("no refusal for an unknown name")
		}
		return c.Salt
	}
	a, b := salt(content), salt(content)
	if !bytes.Equal(a, b) {
		t.Errorf("two opens of one file give fake salts %x and %x", a, b)
	}
	made, _ := Hash([]byte("other"), "scram-sha-256")
	if c := salt("alice:" + made + "\n"); bytes.Equal(a, c) {
		t.Error("the fake salt does not depend on the file's secrets")
	}
}
