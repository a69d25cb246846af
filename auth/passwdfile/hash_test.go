package passwdfile

import (
	"context"
	"errors"
	"strings"
	"testing"
)

// Hashes made by other implementations than the ones this package uses, so
// that a wrong reading of a format cannot hide behind a matching mistake.
var vectors = []struct {
	name, hash, password, source string
}{
	{
		"argon2id p=1", "$argon2id$v=19$m=256,t=2,p=1$c29tZXNhbHQ$nf65EOgLrQMR/uIPnA4rEsF5h7TKyQwu9U1bMCHGi/4", "password",
		"Argon2 reference implementation test vector (phc-winner-argon2 src/test.c, also in libar2's tests)",
	},
	{
		"argon2id p=2", "$argon2id$v=19$m=256,t=2,p=2$c29tZXNhbHQ$bQk8UB/VmZZF4Oo79iDXuL5/0ttZwg2f/5U52iv1cDc", "password",
		"Argon2 reference implementation test vector",
	},
	{
		"argon2id m=64MiB", "$argon2id$v=19$m=65536,t=2,p=1$c29tZXNhbHQ$CTFhFdXPJO1aFaMaO6Mm5c8y7cJHAph8ArZWb2GRPPc", "password",
		"Argon2 reference implementation test vector",
	},
	{
		"bcrypt 2b", "$2b$05$abcdefghijklmnopqrstuuHNbAKRhpaujgo33bRWs.NLUTJO3lOy2", "correct horse",
		"python3 crypt.crypt (libxcrypt)",
	},
	{
		"bcrypt 2y", "$2y$05$abcdefghijklmnopqrstuuHNbAKRhpaujgo33bRWs.NLUTJO3lOy2", "correct horse",
		"python3 crypt.crypt (libxcrypt)",
	},
	{
		"bcrypt 2a", "$2a$05$abcdefghijklmnopqrstuuHNbAKRhpaujgo33bRWs.NLUTJO3lOy2", "correct horse",
		"python3 crypt.crypt (libxcrypt)",
	},
	{
		"sha512-crypt", "$6$QzGb1rCq$Q3MeVk.e2zQdjl5i4hqUzyjoZqzWzTSAilOpG4ROrS9FNpSdcRBvSTLpEn9WV4z/gZWjiPwe.j.sXtV9RJhwA1", "correct horse",
		"openssl passwd -6 -salt QzGb1rCq 'correct horse'",
	},
	{
		"sha512-crypt 16-char salt", "$6$tIl9.Mk/3Hd8Zq0w$7dx6qiRGNW90woiZijedxJqMBghxnwULao2HjL0Y5IF5BvFFKrsD57LMYexEt/ehrcFD60ooSN4vRuxWKMK7b/", "Tr0ub4dor&3",
		"openssl passwd -6 -salt 'tIl9.Mk/3Hd8Zq0w' 'Tr0ub4dor&3'",
	},
	{
		"sha512-crypt rounds", "$6$rounds=10000$saltsaltsalt$XbL0wa.99vvsRYMr5bBKdITb.ZHLqGROubWVobCta9RxXByqp.P8f.uGgQGfR4VQvUS2ybvGNqru9cEcwv0Yt1", "correct horse",
		"python3 crypt.crypt('correct horse', '$6$rounds=10000$saltsaltsalt')",
	},
	{
		"sha512-crypt explicit default rounds", "$6$rounds=5000$abcdefghijklmnop$q2YZbPhm1LySTIzZVDisu/y2CX1McrFsw529ViOLMxoKT.sfgjBo4aFu.hwtGjEDxRb6mn/TZMj7V4/1AUTLi1", "correct horse",
		"python3 crypt.crypt",
	},
	{
		"sha512-crypt minimum rounds, UTF-8 password", "$6$rounds=1000$x$.zeaToU/B50nxlzklljjBgMM014UOhX9eVsa19o.uZZ2KYqSNXsiLOV5KqHQleguPC67RAAGwYlvc/VtE6DRf/", "pässwörd",
		"python3 crypt.crypt",
	},
	{
		"sha256-crypt", "$5$Wd8nPq2x$JZaOn4cCNm6KVj0wRkqHHcrCzjE5EZdjlEr0oJlVTN4", "correct horse",
		"openssl passwd -5 -salt Wd8nPq2x 'correct horse'",
	},
	{
		"sha256-crypt rounds", "$5$rounds=12000$saltsaltsalt$0g7AkmTwBpe2KPdErul/7pbI9G8.vhlkQy/mv6ltHqD", "correct horse",
		"python3 crypt.crypt('correct horse', '$5$rounds=12000$saltsaltsalt')",
	},
	{
		"sha256-crypt rounds by openssl", "$5$rounds=20000$sAlt$nRJ6LJ42uiT872Oo8qe0BPrKTh3hR2Egr0rFGotOfq9", "Tr0ub4dor&3",
		"openssl passwd -5 -salt 'rounds=20000$sAlt' 'Tr0ub4dor&3'",
	},
}

// Hashes of the empty password, which a login must refuse all the same.
const (
	emptySHA512 = "$6$emptysalt$TrI.h19YNad.S.Xw2WEgON9ojBrkXYcCfZrEcOEa9k/Bp5Sw4dxhsyY0KdBJ5Vt2UbEFOMolXqrfnZHc1QRM.." // python3 crypt.crypt('', '$6$emptysalt')
	emptyBcrypt = "$2b$04$abcdefghijklmnopqrstuubyCG3zY1GIXMyxfivm.ClDiInHzxjiq"                                        // python3 crypt.crypt('', '$2b$04$abcdefghijklmnopqrstuu')
)

func TestVectors(t *testing.T) {
	for _, v := range vectors {
		t.Run(v.name, func(t *testing.T) {
			f := openString(t, "alice:"+v.hash+"\n", "/var/mail/%u")
			ctx := context.Background()
			if _, err := f.Authenticate(ctx, "alice", v.password); err != nil {
				t.Errorf("right password (hash from %s): %v", v.source, err)
			}
			for _, wrong := range []string{v.password + "x", v.password[:len(v.password)-1], strings.ToUpper(v.password)} {
				if _, err := f.Authenticate(ctx, "alice", wrong); !errors.Is(err, errFailed) {
					t.Errorf("wrong password %q: got %v, want a failure", wrong, err)
				}
			}
		})
	}
}

func TestEmptyPasswordHashes(t *testing.T) {
	for _, stored := range []string{emptySHA512, emptyBcrypt} {
		h, err := parseHash(stored)
		if err != nil {
			t.Fatal(err)
		}
		// The vector really is a hash of "", so only the rule refuses it.
		if !verifyHash(h, nil) {
			t.Fatalf("%s hash: does not verify the empty password", h.scheme)
		}
		f := openString(t, "alice:"+stored+"\n", "/var/mail/%u")
		if _, err := f.Authenticate(context.Background(), "alice", ""); !errors.Is(err, errFailed) {
			t.Errorf("%s hash of the empty password: empty password got %v, want a failure", h.scheme, err)
		}
	}
}

func TestHashRoundTrip(t *testing.T) {
	for _, tc := range []struct{ scheme, prefix, params string }{
		{"", "$argon2id$v=19$m=19456,t=2,p=1$", "m=19456,t=2,p=1,salt=16,key=32"},
		{"argon2id", "$argon2id$v=19$m=19456,t=2,p=1$", "m=19456,t=2,p=1,salt=16,key=32"},
		{"bcrypt", "$2a$12$", "cost=12"},
		{"sha512-crypt", "$6$", "rounds=5000,salt=16"},
		{"sha256-crypt", "$5$", "rounds=5000,salt=16"},
	} {
		t.Run(tc.scheme, func(t *testing.T) {
			const pw = "Tr0ub4dor&3: with spaces"
			s, err := Hash([]byte(pw), tc.scheme)
			if err != nil {
				t.Fatal(err)
			}
			if !strings.HasPrefix(s, tc.prefix) {
				t.Errorf("Hash = %q, want prefix %q", s, tc.prefix)
			}
			h, err := parseHash(s)
			if err != nil {
				t.Fatal(err)
			}
			if h.params != tc.params {
				t.Errorf("params %s, want %s", h.params, tc.params)
			}
			again, _ := Hash([]byte(pw), tc.scheme)
			if again == s {
				t.Error("two hashes of one password are equal: salt not random")
			}
			f := openString(t, "alice:"+s+"\n", "/var/mail/%u")
			if _, err := f.Authenticate(context.Background(), "alice", pw); err != nil {
				t.Errorf("right password: %v", err)
			}
			if _, err := f.Authenticate(context.Background(), "alice", pw+"!"); !errors.Is(err, errFailed) {
				t.Errorf("wrong password: got %v, want a failure", err)
			}
		})
	}
}

func TestHashRefuses(t *testing.T) {
	for _, tc := range []struct {
		password, scheme string
	}{
		{"", ""},
		{"", "bcrypt"},
		{strings.Repeat("x", 73), "bcrypt"}, // bcrypt would ignore the rest
		{"pw", "md5-crypt"},
		{"pw", "Argon2id"},
	} {
		if s, err := Hash([]byte(tc.password), tc.scheme); err == nil {
			t.Errorf("Hash(%q, %q) = %q, want an error", tc.password, tc.scheme, s)
		}
	}
}

// The classes of a dummy are those of the hash it stands for, and it does not
// verify the password of the real hash.
func TestDummyFor(t *testing.T) {
	for _, v := range vectors {
		h, err := parseHash(v.hash)
		if err != nil {
			t.Fatalf("%s: %v", v.name, err)
		}
		d, err := dummyFor(h)
		if err != nil {
			t.Fatalf("%s: %v", v.name, err)
		}
		if d.class() != h.class() || d.encoded == h.encoded {
			t.Errorf("%s: dummy %s, want class %s and another hash", v.name, d.class(), h.class())
		}
		if verifyHash(d, []byte(v.password)) {
			t.Errorf("%s: dummy verifies the real password", v.name)
		}
	}
}
