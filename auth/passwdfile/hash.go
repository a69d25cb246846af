package passwdfile

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/GehirnInc/crypt/sha256_crypt"
	"github.com/GehirnInc/crypt/sha512_crypt"
	"golang.org/x/crypto/argon2"
	"golang.org/x/crypto/bcrypt"

	"github.com/popa3d/popa3d/sasl"
)

// The schemes, by the names Hash takes.
const (
	schemeArgon2id = "argon2id"
	schemeBcrypt   = "bcrypt"
	schemeSHA512   = "sha512-crypt"
	schemeSHA256   = "sha256-crypt"
	schemeSCRAM    = "scram-sha-256"
)

// scramPrefix starts a SCRAM-SHA-256 verifier, in Dovecot's format:
// {SCRAM-SHA-256}iterations,salt,StoredKey,ServerKey with the three binary
// fields in standard base 64 with padding.
const scramPrefix = "{SCRAM-SHA-256}"

// Parameters of new hashes.
const (
	// Argon2id: OWASP's minimum recommendation (Password Storage Cheat Sheet:
	// m=19 MiB, t=2, p=1), with RFC 9106's 16-byte salt and 32-byte tag. About
	// 25 ms per verification on a current server core.
	argon2Memory  = 19456 // KiB
	argon2Time    = 2
	argon2Threads = 1
	argon2SaltLen = 16
	argon2KeyLen  = 32

	// bcryptCost is about 0.25 s per verification on a current server core.
	bcryptCost = 12

	// SHA-crypt hashes keep the library's (and glibc's, and openssl passwd's)
	// default of 5000 rounds, so that they read like the ones other tools make;
	// they are here for compatibility, argon2id is the scheme to choose.
)

// Bounds on what a line may ask for. The file is trusted to name accounts, but
// one wrong or hostile line must not let a single login take the machine's
// memory or minutes of CPU: each verification of an unknown user costs as much
// as one of the most common entry, so a bad entry would also slow every login.
const (
	// Argon2id: at most 1 GiB of memory per login, 100 passes and 255 lanes
	// (x/crypto/argon2 takes at most 255). The worst allowed costs about a
	// minute; the default costs 25 ms.
	argon2MaxMemory  = 1 << 20 // KiB
	argon2MaxTime    = 100
	argon2MaxThreads = 255
	// Salt and tag lengths: 8 bytes is the reference implementation's minimum
	// salt; a tag shorter than 16 bytes is too weak to keep, and neither needs
	// more than 64.
	argon2MinSaltLen = 8
	argon2MaxSaltLen = 64
	argon2MinKeyLen  = 16
	argon2MaxKeyLen  = 64

	// bcryptMaxCost is about 4 s per login (each step doubles the cost).
	bcryptMaxCost = 16

	// SHA-crypt rounds: glibc's minimum, and a maximum of about 2.5 s per
	// login with SHA-512 (the format allows 999 999 999, about 4 minutes).
	shaCryptMinRounds = 1000
	shaCryptMaxRounds = 10_000_000
	shaCryptMaxSalt   = 16 // longer salts are silently cut by crypt(3)
)

// cryptChars is the alphabet of crypt(3)'s base 64, in SHA-crypt's order.
const cryptChars = "./0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"

// bcryptChars is the same alphabet in bcrypt's order.
const bcryptChars = "./ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"

var phcBase64 = base64.RawStdEncoding.Strict()

// hash is a stored password hash, parsed and checked.
type hash struct {
	scheme string
	// params are the cost parameters in a canonical form: two hashes with the
	// same scheme and params cost the same to verify.
	params  string
	encoded string // as stored

	// argon2id
	memory, time uint32
	threads      uint8
	salt, key    []byte

	// SCRAM-SHA-256: the iterations are cost, the salt salt, the StoredKey
	// key, and:
	serverKey []byte

	// bcrypt and SHA-crypt
	cost    int    // bcrypt cost, SHA-crypt rounds or SCRAM iterations
	saltLen int    // SHA-crypt salt length
	setting string // SHA-crypt: the stored string without its digest
}

// class names what a verification of h costs.
func (h *hash) class() string { return h.scheme + " " + h.params }

// smallStateMemory stands for what a bcrypt or SHA-crypt verification
// allocates: a few KiB of state (bcrypt's Blowfish tables are 4 KiB), rounded
// up.
const smallStateMemory = 64 << 10

// verifyMemory returns about how many bytes a verification of h allocates: for
// argon2id its m KiB of blocks (x/crypto/argon2 rounds m down to a multiple
// of 4p, never below the 8p that parsing requires), for the others a few KiB.
func (h *hash) verifyMemory() int64 {
	if h.scheme != schemeArgon2id {
		return smallStateMemory
	}
	return int64(h.memory) << 10
}

// errHash is the reason for every malformed hash whose scheme is known; the
// message never shows the hash.
func errHash(scheme, why string) error {
	return fmt.Errorf("malformed %s hash: %s", scheme, why)
}

// parseHash parses a stored hash. Its errors never quote s.
func parseHash(s string) (*hash, error) {
	switch {
	case strings.HasPrefix(s, "$argon2id$"):
		return parseArgon2id(s)
	case strings.HasPrefix(s, "$2a$"), strings.HasPrefix(s, "$2b$"), strings.HasPrefix(s, "$2y$"):
		return parseBcrypt(s)
	case strings.HasPrefix(s, "$6$"):
		return parseSHACrypt(s, schemeSHA512, 86)
	case strings.HasPrefix(s, "$5$"):
		return parseSHACrypt(s, schemeSHA256, 43)
	case strings.HasPrefix(s, scramPrefix):
		return parseSCRAM(s)
	case strings.HasPrefix(s, "$argon2i$"), strings.HasPrefix(s, "$argon2d$"):
		return nil, errors.New("unsupported hash: only argon2id of the Argon2 variants")
	case strings.HasPrefix(s, "$"):
		// Name the scheme ("$1$", "$y$", "$2x$") only when it is plainly one:
		// a short identifier followed by more fields.
		id, after, found := strings.Cut(s[1:], "$")
		if !found || after == "" || len(id) < 1 || len(id) > 8 || !isSchemeID(id) {
			return nil, errors.New("unsupported hash (want argon2id, bcrypt, sha512-crypt, sha256-crypt or {SCRAM-SHA-256})")
		}
		return nil, fmt.Errorf("unsupported hash scheme $%s$ (want argon2id, bcrypt, sha512-crypt, sha256-crypt or {SCRAM-SHA-256})", id)
	default:
		return nil, errors.New("unsupported hash (want argon2id, bcrypt, sha512-crypt, sha256-crypt or {SCRAM-SHA-256}; traditional DES crypt is not accepted)")
	}
}

// parseArgon2id parses a PHC string $argon2id$v=19$m=M,t=T,p=P$salt$tag, in
// the form the reference implementation writes: fields in this order, decimal
// numbers without leading zeros, base 64 without padding.
func parseArgon2id(s string) (*hash, error) {
	f := strings.Split(s, "$")
	if len(f) != 6 {
		return nil, errHash(schemeArgon2id, "want $argon2id$v=19$m=…,t=…,p=…$salt$hash")
	}
	if f[2] != "v=19" {
		return nil, errHash(schemeArgon2id, "only version 19 (v=19) is supported")
	}
	ps := strings.Split(f[3], ",")
	if len(ps) != 3 {
		return nil, errHash(schemeArgon2id, "want exactly the parameters m, t and p")
	}
	var v [3]uint64
	for i, name := range []string{"m=", "t=", "p="} {
		n, ok := strings.CutPrefix(ps[i], name)
		if !ok {
			return nil, errHash(schemeArgon2id, "want exactly the parameters m, t and p, in this order")
		}
		x, ok := decimal(n)
		if !ok {
			return nil, errHash(schemeArgon2id, "parameter "+name[:1]+" is not a number")
		}
		v[i] = x
	}
	m, t, p := v[0], v[1], v[2]
	switch {
	case p < 1 || p > argon2MaxThreads:
		return nil, errHash(schemeArgon2id, fmt.Sprintf("p must be 1 to %d", argon2MaxThreads))
	case t < 1 || t > argon2MaxTime:
		return nil, errHash(schemeArgon2id, fmt.Sprintf("t must be 1 to %d", argon2MaxTime))
	case m > argon2MaxMemory:
		return nil, errHash(schemeArgon2id, fmt.Sprintf("m must be at most %d KiB (1 GiB)", argon2MaxMemory))
	case m < 8*p: // RFC 9106 section 3.1
		return nil, errHash(schemeArgon2id, "m must be at least 8 times p")
	}
	salt, err := phcBase64.DecodeString(f[4])
	if err != nil || len(salt) < argon2MinSaltLen || len(salt) > argon2MaxSaltLen {
		return nil, errHash(schemeArgon2id, fmt.Sprintf("salt must be %d to %d bytes in base 64 without padding", argon2MinSaltLen, argon2MaxSaltLen))
	}
	key, err := phcBase64.DecodeString(f[5])
	if err != nil || len(key) < argon2MinKeyLen || len(key) > argon2MaxKeyLen {
		return nil, errHash(schemeArgon2id, fmt.Sprintf("hash must be %d to %d bytes in base 64 without padding", argon2MinKeyLen, argon2MaxKeyLen))
	}
	return &hash{
		scheme:  schemeArgon2id,
		params:  fmt.Sprintf("m=%d,t=%d,p=%d,salt=%d,key=%d", m, t, p, len(salt), len(key)),
		encoded: s,
		memory:  uint32(m),
		time:    uint32(t),
		threads: uint8(p),
		salt:    salt,
		key:     key,
	}, nil
}

var scramBase64 = base64.StdEncoding.Strict()

// parseSCRAM parses {SCRAM-SHA-256}iterations,salt,StoredKey,ServerKey:
// iterations a decimal number from sasl.MinIterations to sasl.MaxIterations
// (a DoS guard: PLAIN and PASS against the entry run that many PBKDF2
// rounds on the server), a salt of sasl.MinSaltLen to sasl.MaxSaltLen bytes
// and two 32-byte keys, in standard base 64 with padding.
func parseSCRAM(s string) (*hash, error) {
	f := strings.Split(s[len(scramPrefix):], ",")
	if len(f) != 4 {
		return nil, errHash(schemeSCRAM, "want {SCRAM-SHA-256}iterations,salt,storedkey,serverkey")
	}
	iter, ok := decimal(f[0])
	if !ok || iter < sasl.MinIterations || iter > sasl.MaxIterations {
		return nil, errHash(schemeSCRAM, fmt.Sprintf("iterations must be %d to %d", sasl.MinIterations, sasl.MaxIterations))
	}
	salt, err := scramBase64.DecodeString(f[1])
	if err != nil || len(salt) < sasl.MinSaltLen || len(salt) > sasl.MaxSaltLen {
		return nil, errHash(schemeSCRAM, fmt.Sprintf("salt must be %d to %d bytes in base 64", sasl.MinSaltLen, sasl.MaxSaltLen))
	}
	stored, err1 := scramBase64.DecodeString(f[2])
	server, err2 := scramBase64.DecodeString(f[3])
	if err1 != nil || err2 != nil || len(stored) != sasl.KeyLen || len(server) != sasl.KeyLen {
		return nil, errHash(schemeSCRAM, fmt.Sprintf("StoredKey and ServerKey must be %d bytes in base 64", sasl.KeyLen))
	}
	return &hash{
		scheme:    schemeSCRAM,
		params:    fmt.Sprintf("i=%d,salt=%d", iter, len(salt)),
		encoded:   s,
		cost:      int(iter),
		salt:      salt,
		key:       stored,
		serverKey: server,
	}, nil
}

func formatSCRAM(iter int, salt, stored, server []byte) string {
	return fmt.Sprintf("%s%d,%s,%s,%s", scramPrefix, iter, scramBase64.EncodeToString(salt),
		scramBase64.EncodeToString(stored), scramBase64.EncodeToString(server))
}

// verifySCRAM reports whether password, prepared as a SCRAM client prepares
// it (RFC 8265 OpaqueString; a password that cannot be prepared is used as
// it is, and matches nothing a prepared one made), derives h's StoredKey.
func verifySCRAM(h *hash, password []byte) bool {
	pw := string(password)
	if p, err := sasl.PreparePassword(pw); err == nil {
		pw = p
	}
	stored, server, err := sasl.SCRAMSHA256Keys(pw, h.salt, h.cost)
	if err != nil {
		return false
	}
	defer clear(stored)
	clear(server)
	return subtle.ConstantTimeCompare(stored, h.key) == 1
}

// parseBcrypt parses $2a$, $2b$ or $2y$, two digits of cost, $, 22 characters
// of salt and 31 of digest.
func parseBcrypt(s string) (*hash, error) {
	if len(s) != 60 || s[6] != '$' || !onlyCryptChars(s[7:]) {
		return nil, errHash(schemeBcrypt, "want $2b$NN$ and 53 characters of salt and digest")
	}
	// The cost is always two digits: 04 to 31.
	digits := isDigit(s[4]) && isDigit(s[5])
	cost := int(s[4]-'0')*10 + int(s[5]-'0')
	if !digits || cost < bcrypt.MinCost || cost > bcryptMaxCost {
		return nil, errHash(schemeBcrypt, fmt.Sprintf("cost must be %02d to %d", bcrypt.MinCost, bcryptMaxCost))
	}
	return &hash{
		scheme:  schemeBcrypt,
		params:  fmt.Sprintf("cost=%d", cost),
		encoded: s,
		cost:    cost,
	}, nil
}

// parseSHACrypt parses $5$ or $6$, an optional rounds=N$, a salt of 1 to 16
// characters and a digest of digestLen characters, as crypt(3) writes them.
func parseSHACrypt(s, scheme string, digestLen int) (*hash, error) {
	rest := s[3:]
	rounds := uint64(5000) // the default when rounds= is absent
	if r, ok := strings.CutPrefix(rest, "rounds="); ok {
		n, after, found := strings.Cut(r, "$")
		x, ok := decimal(n)
		if !found || !ok || x < shaCryptMinRounds || x > shaCryptMaxRounds {
			return nil, errHash(scheme, fmt.Sprintf("rounds must be %d to %d", shaCryptMinRounds, shaCryptMaxRounds))
		}
		rounds, rest = x, after
	}
	salt, digest, found := strings.Cut(rest, "$")
	if !found || len(salt) < 1 || len(salt) > shaCryptMaxSalt || !printable(salt) {
		return nil, errHash(scheme, fmt.Sprintf("salt must be 1 to %d characters", shaCryptMaxSalt))
	}
	if len(digest) != digestLen || !onlyCryptChars(digest) {
		return nil, errHash(scheme, fmt.Sprintf("digest must be %d characters of ./0-9A-Za-z", digestLen))
	}
	return &hash{
		scheme:  scheme,
		params:  fmt.Sprintf("rounds=%d,salt=%d", rounds, len(salt)),
		encoded: s,
		cost:    int(rounds),
		saltLen: len(salt),
		setting: s[:len(s)-len(digest)-1],
	}, nil
}

// decimal parses a decimal number of at most 10 digits without sign or
// leading zero.
func decimal(s string) (uint64, bool) {
	if len(s) == 0 || len(s) > 10 || (s[0] == '0' && len(s) > 1) {
		return 0, false
	}
	for i := 0; i < len(s); i++ {
		if !isDigit(s[i]) {
			return 0, false
		}
	}
	n, err := strconv.ParseUint(s, 10, 64)
	return n, err == nil
}

// isSchemeID reports whether s looks like a crypt(3) scheme identifier.
func isSchemeID(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; !isDigit(c) && (c < 'a' || c > 'z') && c != '-' {
			return false
		}
	}
	return true
}

func isDigit(c byte) bool { return '0' <= c && c <= '9' }

func onlyCryptChars(s string) bool {
	for i := 0; i < len(s); i++ {
		if strings.IndexByte(cryptChars, s[i]) < 0 {
			return false
		}
	}
	return true
}

// printable reports whether s is printable ASCII other than space, '$' and ':'.
func printable(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c <= ' ' || c >= 0x7f || c == '$' || c == ':' {
			return false
		}
	}
	return true
}

// verifyHash reports whether password matches h, in time that depends on h's
// class and the password, never on how much of the digest matches.
func verifyHash(h *hash, password []byte) bool {
	switch h.scheme {
	case schemeArgon2id:
		key := argon2.IDKey(password, h.salt, h.time, h.memory, h.threads, uint32(len(h.key)))
		defer clear(key)
		return subtle.ConstantTimeCompare(key, h.key) == 1
	case schemeSCRAM:
		return verifySCRAM(h, password)
	case schemeBcrypt:
		// CompareHashAndPassword compares with crypto/subtle.
		return bcrypt.CompareHashAndPassword([]byte(h.encoded), password) == nil
	case schemeSHA512, schemeSHA256:
		// Not the library's Verify: it takes the digest for part of the salt
		// when the hash has rounds= (GehirnInc/crypt issue 9), so every such
		// hash would fail. Hash the setting alone and compare here.
		var out string
		var err error
		if h.scheme == schemeSHA512 {
			out, err = sha512_crypt.New().Generate(password, []byte(h.setting))
		} else {
			out, err = sha256_crypt.New().Generate(password, []byte(h.setting))
		}
		return err == nil && subtle.ConstantTimeCompare([]byte(out), []byte(h.encoded)) == 1
	}
	return false
}

// dummyFor returns a hash of the same class as h whose password nobody knows:
// a random salt of the same length and a random digest. Verifying against it
// costs what verifying against h costs, because the work of every scheme
// depends only on its parameters, the salt length and the password, never on
// the digest; and it costs nothing to make, so a reload stays cheap.
func dummyFor(h *hash) (*hash, error) {
	var s string
	switch h.scheme {
	case schemeArgon2id:
		s = fmt.Sprintf("$argon2id$v=19$m=%d,t=%d,p=%d$%s$%s", h.memory, h.time, h.threads,
			phcBase64.EncodeToString(randomBytes(len(h.salt))), phcBase64.EncodeToString(randomBytes(len(h.key))))
	case schemeSCRAM:
		s = formatSCRAM(h.cost, randomBytes(len(h.salt)), randomBytes(sasl.KeyLen), randomBytes(sasl.KeyLen))
	case schemeBcrypt:
		s = fmt.Sprintf("$2b$%02d$%s", h.cost, randomChars(bcryptChars, 53))
	case schemeSHA512:
		s = fmt.Sprintf("$6$rounds=%d$%s$%s", h.cost, randomChars(cryptChars, h.saltLen), randomChars(cryptChars, 86))
	case schemeSHA256:
		s = fmt.Sprintf("$5$rounds=%d$%s$%s", h.cost, randomChars(cryptChars, h.saltLen), randomChars(cryptChars, 43))
	}
	d, err := parseHash(s)
	if err != nil {
		return nil, err
	}
	if d.class() != h.class() {
		return nil, fmt.Errorf("dummy %s hash has parameters %s, want %s", h.scheme, d.params, h.params)
	}
	return d, nil
}

// defaultDummy is the dummy for a file without a usable hash: it costs what a
// hash made by Hash with the default scheme costs.
func defaultDummy() (*hash, error) {
	return dummyFor(&hash{
		scheme:  schemeArgon2id,
		params:  fmt.Sprintf("m=%d,t=%d,p=%d,salt=%d,key=%d", argon2Memory, argon2Time, argon2Threads, argon2SaltLen, argon2KeyLen),
		memory:  argon2Memory,
		time:    argon2Time,
		threads: argon2Threads,
		salt:    make([]byte, argon2SaltLen),
		key:     make([]byte, argon2KeyLen),
	})
}

// randomBytes returns n bytes from crypto/rand (whose Read never fails).
func randomBytes(n int) []byte {
	b := make([]byte, n)
	rand.Read(b)
	return b
}

// randomChars returns n random characters of a 64-character alphabet.
func randomChars(alphabet string, n int) string {
	b := randomBytes(n)
	for i := range b {
		b[i] = alphabet[b[i]&63]
	}
	return string(b)
}

// Hash hashes password for a line of the file. scheme is "argon2id" (the
// default when empty), "bcrypt", "sha512-crypt", "sha256-crypt" or
// "scram-sha-256"; each uses a fresh random salt and this package's default
// parameters: argon2id m=19456 KiB, t=2, p=1; bcrypt cost 12; SHA-crypt 5000
// rounds; SCRAM-SHA-256 sasl.DefaultIterations (10,000) with a 16-byte salt,
// of the password prepared by RFC 8265's OpaqueString, as a SCRAM client
// prepares it. An empty password is
// refused, as Authenticate would refuse it; so is one over 72 bytes for
// bcrypt, which would ignore the rest.
func Hash(password []byte, scheme string) (string, error) {
	if len(password) == 0 {
		return "", errors.New("hash: empty password")
	}
	var s string
	switch scheme {
	case "", schemeArgon2id:
		salt := randomBytes(argon2SaltLen)
		key := argon2.IDKey(password, salt, argon2Time, argon2Memory, argon2Threads, argon2KeyLen)
		s = fmt.Sprintf("$argon2id$v=19$m=%d,t=%d,p=%d$%s$%s", argon2Memory, argon2Time, argon2Threads,
			phcBase64.EncodeToString(salt), phcBase64.EncodeToString(key))
	case schemeBcrypt:
		b, err := bcrypt.GenerateFromPassword(password, bcryptCost)
		if err != nil {
			return "", fmt.Errorf("hash: %w", err)
		}
		s = string(b)
	case schemeSCRAM:
		p, err := sasl.PreparePassword(string(password))
		if err != nil {
			return "", fmt.Errorf("hash: %w", err)
		}
		salt := randomBytes(sasl.DefaultSaltLen)
		stored, server, err := sasl.SCRAMSHA256Keys(p, salt, sasl.DefaultIterations)
		if err != nil {
			return "", fmt.Errorf("hash: %w", err)
		}
		s = formatSCRAM(sasl.DefaultIterations, salt, stored, server)
	case schemeSHA512, schemeSHA256:
		var err error
		if scheme == schemeSHA512 {
			s, err = sha512_crypt.New().Generate(password, nil)
		} else {
			s, err = sha256_crypt.New().Generate(password, nil)
		}
		if err != nil {
			return "", fmt.Errorf("hash: %w", err)
		}
	default:
		return "", fmt.Errorf("hash: unknown scheme %q (want argon2id, bcrypt, sha512-crypt, sha256-crypt or scram-sha-256)", scheme)
	}
	// What Hash makes, the file must accept.
	if _, err := parseHash(s); err != nil {
		return "", fmt.Errorf("hash: %w", err)
	}
	return s, nil
}
