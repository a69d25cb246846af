package mbox

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"io/fs"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/popa3d/popa3d/mailbox"
	"github.com/popa3d/popa3d/mailbox/internal/cachefile"
)

// cacheEnv is a store with an index cache and a record of the cache errors it
// reported.
type cacheEnv struct {
	store    *Store
	stateDir string
	mu       sync.Mutex
	errs     []error
}

func newCacheEnv(t *testing.T, opts Options) *cacheEnv {
	t.Helper()
	env := &cacheEnv{}
	if opts.StateDir == "" {
		opts.StateDir = filepath.Join(t.TempDir(), "state")
	}
	opts.LockDir = filepath.Join(t.TempDir(), "locks")
	env.stateDir = opts.StateDir
	env.store = testStore(opts)
	env.store.cacheErr = func(err error) {
		env.mu.Lock()
		defer env.mu.Unlock()
		env.errs = append(env.errs, err)
	}
	return env
}

// takeErrs returns and forgets the cache errors reported so far.
func (env *cacheEnv) takeErrs() []error {
	env.mu.Lock()
	defer env.mu.Unlock()
	errs := env.errs
	env.errs = nil
	return errs
}

func (env *cacheEnv) indexFile(t *testing.T, path string) string {
	t.Helper()
	key, err := mailbox.StateKey(path)
	if err != nil {
		t.Fatal(err)
	}
	return filepath.Join(env.stateDir, key+indexExt)
}

// open opens path, checks that it was indexed as want says (indexedFull,
// indexedCache or indexedAppend), and compares the snapshot with a fresh
// parse of the file: entries, sizes, UIDs and every message's bytes.
func (env *cacheEnv) open(t *testing.T, path, want string) *mbox {
	t.Helper()
	mb, err := env.store.Open(context.Background(), path)
	if err != nil {
		t.Fatalf("Open %s: %v", path, err)
	}
	t.Cleanup(func() { mb.Close() })
	m := mb.(*mbox)
	if m.indexedBy != want {
		t.Errorf("indexed by %q, want %q", m.indexedBy, want)
	}
	compareFresh(t, m)
	return m
}

// compareFresh compares m's snapshot with a fresh parse of its file.
func compareFresh(t *testing.T, m *mbox) {
	t.Helper()
	content, err := os.ReadFile(m.path)
	if err != nil {
		t.Fatal(err)
	}
	r := bytes.NewReader(content)
	entries, err := Index(r, int64(len(content)), Limits{})
	if err != nil {
		t.Fatalf("fresh parse: %v", err)
	}
	uids, err := UIDs(r, entries)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(m.entries, entries) {
		t.Fatalf("entries differ from a fresh parse:\n got %+v\nwant %+v", m.entries, entries)
	}
	msgs := m.Messages()
	if len(msgs) != len(entries) {
		t.Fatalf("%d messages, fresh parse %d", len(msgs), len(entries))
	}
	for i, msg := range msgs {
		if msg.Size != entries[i].Size || msg.UID != uids[i] {
			t.Errorf("message %d: size %d UID %q, fresh parse %d %q", i, msg.Size, msg.UID, entries[i].Size, uids[i])
		}
		e := entries[i]
		if got, want := readMessage(t, m, i), content[e.DataOffset:e.DataOffset+e.DataSize]; !bytes.Equal(got, want) {
			t.Errorf("message %d: bytes differ from a fresh parse", i)
		}
	}
	if m.loaded != int64(len(content)) {
		t.Errorf("loaded %d, file %d bytes", m.loaded, len(content))
	}
}

// reopen closes m and opens its mailbox again.
func (env *cacheEnv) reopen(t *testing.T, m *mbox, want string) *mbox {
	t.Helper()
	m.Close()
	return env.open(t, m.path, want)
}

// testMessage returns a message whose UIDL depends on id.
func testMessage(id, body string) string {
	return "From sender@example.org Thu Feb 15 10:00:00 2024\n" +
		"Delivered-To: user@example.net\n" +
		"Received: from mx.example.org by mail.example.net id " + id + "\n" +
		"Subject: message " + id + "\n\n" + body + "\n\n"
}

func testMailbox(n int) string {
	var b strings.Builder
	for i := range n {
		b.WriteString(testMessage(fmt.Sprint("m", i), strings.Repeat(fmt.Sprintf("line %d of the body\n", i), 1+i%5)))
	}
	return b.String()
}

func mtimeOf(t *testing.T, path string) time.Time {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return fi.ModTime()
}

// TestIndexCacheUnchanged opens every golden mailbox twice: the second open
// comes from the cache and equals a fresh parse.
func TestIndexCacheUnchanged(t *testing.T) {
	for _, name := range goldenInputs(t) {
		t.Run(name, func(t *testing.T) {
			content := readGolden(t, name+".mbox")
			if _, err := Index(bytes.NewReader(content), int64(len(content)), Limits{}); err != nil || len(content) == 0 {
				t.Skip("not an openable, non-empty mailbox")
			}
			env := newCacheEnv(t, Options{})
			path := install(t, content)
			m := env.open(t, path, indexedFull)
			if _, err := os.Stat(env.indexFile(t, path)); err != nil {
				t.Fatalf("no index cache written: %v", err)
			}
			m = env.reopen(t, m, indexedCache)
			env.reopen(t, m, indexedCache)
			if errs := env.takeErrs(); len(errs) != 0 {
				t.Errorf("cache errors: %v", errs)
			}
		})
	}
}

// TestIndexCacheAppend appends mail several times; each open parses only the
// tail and gives what a fresh parse gives, UID suffixes for new duplicates
// included.
func TestIndexCacheAppend(t *testing.T) {
	env := newCacheEnv(t, Options{})
	path := install(t, []byte(testMailbox(30)))
	m := env.open(t, path, indexedFull)
	dup := testMessage("m3", "another body\n") // same UIDL as message 4
	steps := []struct{ name, add string }{
		{"one message", testMessage("new1", "hello\n")},
		{"duplicate UIDL", dup},
		{"byte-identical duplicate", dup},
		{"two messages", testMessage("new2", "a\n") + testMessage("new3", "b\n")},
		{"no blank line: joins the last message", "From not-a-separator\nmore body\n"},
		{"unterminated", "\nFrom x@example.org\nDelivered-To: y\n\nno final newline"},
		{"completing the unterminated line", " now ended\n\n"},
		{"duplicate of the first", testMessage("m0", "line 0 of the body\n")},
	}
	for _, step := range steps {
		appendFile(t, path, []byte(step.add))
		m.Close()
		m = env.open(t, path, indexedAppend)
		if t.Failed() {
			t.Fatalf("after appending %s", step.name)
		}
		m = env.reopen(t, m, indexedCache)
	}
	uids := uidsOf(m.Messages())
	if n := len(uids); !strings.HasPrefix(uids[n-1], uids[0]+".") {
		t.Errorf("the appended duplicate of message 1 got UID %q, message 1 has %q", uids[n-1], uids[0])
	}
	if errs := env.takeErrs(); len(errs) != 0 {
		t.Errorf("cache errors: %v", errs)
	}
}

// TestIndexCacheAppendDuringSession appends while a session is open; the
// next session sees the new mail.
func TestIndexCacheAppendDuringSession(t *testing.T) {
	env := newCacheEnv(t, Options{})
	path := install(t, []byte(testMailbox(5)))
	m := env.open(t, path, indexedFull)
	appendFile(t, path, []byte(testMessage("late", "x\n")))
	if err := m.Verify(context.Background()); err != nil {
		t.Fatal(err)
	}
	m = env.reopen(t, m, indexedAppend)
	if len(m.Messages()) != 6 {
		t.Errorf("%d messages, want 6", len(m.Messages()))
	}
}

// TestIndexCacheRewritten covers another MUA rewriting the mailbox: to the
// same size with a new mtime, and with the old mtime set back, where the spot
// checks must find the change; to a smaller size; and by replacing the file.
func TestIndexCacheRewritten(t *testing.T) {
	orig := testMailbox(12)
	// Same size, boundaries moved: two messages of different lengths swap.
	swapped := swapMessages(t, orig, 2, 3)
	// Same size, same boundaries, a hashed header changed.
	header := strings.Replace(orig, "id m5\n", "id m9\n", 1)
	// Same size, a message's body changed to contain a separator.
	split := strings.Replace(orig, "of the body\nline 7 of", "of the body\n\nFrom 7 o", 1)
	for _, tc := range []struct {
		name    string
		content string
		setBack bool // restore the old mtime
	}{
		{"same size, new mtime", swapped, false},
		{"boundaries moved, mtime set back", swapped, true},
		{"hashed header changed, mtime set back", header, true},
		{"body split, mtime set back", split, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if len(tc.content) != len(orig) || tc.content == orig {
				t.Fatal("bad test case")
			}
			env := newCacheEnv(t, Options{})
			path := install(t, []byte(orig))
			m := env.open(t, path, indexedFull)
			m.Close()
			old := mtimeOf(t, path)
			f, err := os.OpenFile(path, os.O_WRONLY, 0) // in place: same inode
			if err != nil {
				t.Fatal(err)
			}
			if _, err := f.WriteAt([]byte(tc.content), 0); err != nil {
				t.Fatal(err)
			}
			f.Close()
			if tc.setBack {
				if err := os.Chtimes(path, old, old); err != nil {
					t.Fatal(err)
				}
			} else if mtimeOf(t, path).Equal(old) {
				t.Fatal("mtime did not change")
			}
			env.open(t, path, indexedFull)
		})
	}

	t.Run("truncated", func(t *testing.T) {
		env := newCacheEnv(t, Options{})
		path := install(t, []byte(orig))
		m := env.open(t, path, indexedFull)
		entries, err := Index(strings.NewReader(orig), int64(len(orig)), Limits{})
		if err != nil {
			t.Fatal(err)
		}
		if err := os.Truncate(path, entries[len(entries)-1].Offset); err != nil {
			t.Fatal(err)
		}
		m = env.reopen(t, m, indexedFull)
		env.reopen(t, m, indexedCache)
	})

	t.Run("truncated and regrown", func(t *testing.T) {
		env := newCacheEnv(t, Options{})
		path := install(t, []byte(orig))
		m := env.open(t, path, indexedFull)
		m.Close()
		// Delete message 1 as another MUA would, then new mail arrives: the
		// file is larger than the cache says, but its start moved.
		rest := orig[strings.Index(orig[1:], "From ")+1:]
		if err := os.WriteFile(path, []byte(rest+testMessage("n1", "x\n")+testMessage("n2", strings.Repeat("long\n", 100))), 0o600); err != nil {
			t.Fatal(err)
		}
		env.open(t, path, indexedFull)
	})

	t.Run("replaced", func(t *testing.T) {
		env := newCacheEnv(t, Options{})
		path := install(t, []byte(orig))
		m := env.open(t, path, indexedFull)
		m.Close()
		old := mtimeOf(t, path)
		tmp := path + ".new"
		if err := os.WriteFile(tmp, []byte(swapped), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Chtimes(tmp, old, old); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(tmp, path); err != nil {
			t.Fatal(err)
		}
		env.open(t, path, indexedFull)
	})
}

// swapMessages returns content with messages i and j (adjacent, i < j)
// exchanged; they must differ in length.
func swapMessages(t *testing.T, content string, i, j int) string {
	t.Helper()
	entries, err := Index(strings.NewReader(content), int64(len(content)), Limits{})
	if err != nil {
		t.Fatal(err)
	}
	a, b := entries[i], entries[j]
	if a.RawSize == b.RawSize || j != i+1 {
		t.Fatal("messages of the same length")
	}
	ra := content[a.Offset : a.Offset+a.RawSize]
	rb := content[b.Offset : b.Offset+b.RawSize]
	return content[:a.Offset] + rb + ra + content[b.Offset+b.RawSize:]
}

// TestIndexCacheBadFile damages the cache file in every way a crash, a disk
// or a user can; each is reported and gives a full parse, and the cache is
// written again.
func TestIndexCacheBadFile(t *testing.T) {
	content := []byte(testMailbox(20))
	other := []byte(testMailbox(20))
	for _, tc := range []struct {
		name   string
		damage func(t *testing.T, b []byte, otherIndex []byte) []byte
		is     error
	}{
		{"empty", func(t *testing.T, b, _ []byte) []byte { return nil }, nil},
		{"garbage", func(t *testing.T, b, _ []byte) []byte { return bytes.Repeat([]byte("garbage!"), 100) }, nil},
		{"truncated", func(t *testing.T, b, _ []byte) []byte { return b[:len(b)-1] }, nil},
		{"truncated to the header", func(t *testing.T, b, _ []byte) []byte { return b[:indexHeaderLen] }, nil},
		{"flipped byte in the header", flipAt(20), nil},
		{"flipped byte in an entry", flipAt(-100), nil},
		{"flipped byte in the checksum", flipAt(-1), nil},
		{"appended byte", func(t *testing.T, b, _ []byte) []byte { return append(b, 0) }, nil},
		{"another mailbox's", func(t *testing.T, _, o []byte) []byte { return o }, nil},
		{"older version", func(t *testing.T, b, _ []byte) []byte {
			b = slices.Clone(b[:len(b)-indexSumLen])
			binary.LittleEndian.PutUint32(b[len(indexMagic):], indexVersion-1)
			return binary.LittleEndian.AppendUint32(b, indexSum(b))
		}, cachefile.ErrVersion},
	} {
		t.Run(tc.name, func(t *testing.T) {
			env := newCacheEnv(t, Options{})
			path := install(t, content)
			otherPath := install(t, other)
			env.open(t, otherPath, indexedFull).Close()
			m := env.open(t, path, indexedFull)
			m.Close()
			file := env.indexFile(t, path)
			b, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			ob, err := os.ReadFile(env.indexFile(t, otherPath))
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(file, tc.damage(t, slices.Clone(b), ob), 0o600); err != nil {
				t.Fatal(err)
			}
			m = env.open(t, path, indexedFull)
			errs := env.takeErrs()
			if len(errs) != 1 {
				t.Fatalf("cache errors %v, want one", errs)
			}
			if tc.is != nil && !errors.Is(errs[0], tc.is) {
				t.Errorf("cache error %v, want %v", errs[0], tc.is)
			}
			env.reopen(t, m, indexedCache)
		})
	}
}

func flipAt(at int) func(t *testing.T, b, _ []byte) []byte {
	return func(t *testing.T, b, _ []byte) []byte {
		if at < 0 {
			at += len(b)
		}
		b[at] ^= 0x40
		return b
	}
}

// TestIndexCacheStateDir checks that a StateDir that is missing is created,
// its last component only, and that one that cannot be created or written
// never fails the open.
func TestIndexCacheStateDir(t *testing.T) {
	content := []byte(testMailbox(3))
	t.Run("missing", func(t *testing.T) {
		dir := filepath.Join(t.TempDir(), "b")
		env := newCacheEnv(t, Options{StateDir: dir})
		path := install(t, content)
		m := env.open(t, path, indexedFull)
		if fi, err := os.Stat(dir); err != nil || fi.Mode().Perm() != 0o700 {
			t.Fatalf("state dir: %v, %v", fi, err)
		}
		env.reopen(t, m, indexedCache)
	})
	t.Run("missing parent", func(t *testing.T) {
		parent := filepath.Join(t.TempDir(), "a")
		env := newCacheEnv(t, Options{StateDir: filepath.Join(parent, "b")})
		path := install(t, content)
		m := env.open(t, path, indexedFull)
		if errs := env.takeErrs(); len(errs) != 1 {
			t.Errorf("cache errors %v, want one", errs)
		}
		if _, err := os.Lstat(parent); !errors.Is(err, fs.ErrNotExist) {
			t.Fatalf("parent of the state dir: %v", err)
		}
		env.reopen(t, m, indexedFull)
	})
	for _, tc := range []struct {
		name  string
		setup func(t *testing.T) string
	}{
		{"a file", func(t *testing.T) string {
			p := filepath.Join(t.TempDir(), "file")
			os.WriteFile(p, nil, 0o600)
			return p
		}},
		{"under a file", func(t *testing.T) string {
			p := filepath.Join(t.TempDir(), "file")
			os.WriteFile(p, nil, 0o600)
			return filepath.Join(p, "state")
		}},
		{"read-only", func(t *testing.T) string {
			if os.Geteuid() == 0 {
				t.Skip("root writes to read-only directories")
			}
			p := filepath.Join(t.TempDir(), "ro")
			os.Mkdir(p, 0o500)
			return p
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			env := newCacheEnv(t, Options{StateDir: tc.setup(t)})
			path := install(t, content)
			m := env.open(t, path, indexedFull)
			if errs := env.takeErrs(); len(errs) == 0 {
				t.Error("no cache error reported")
			}
			m = env.reopen(t, m, indexedFull)
			if err := m.Commit(context.Background(), []int{0}); err != nil {
				t.Fatal(err)
			}
			env.reopen(t, m, indexedFull)
		})
	}
	t.Run("index file of another owner or writable by others", func(t *testing.T) {
		env := newCacheEnv(t, Options{})
		path := install(t, content)
		m := env.open(t, path, indexedFull)
		file := env.indexFile(t, path)
		if err := os.Chmod(file, 0o620); err != nil {
			t.Fatal(err)
		}
		m = env.reopen(t, m, indexedFull)
		if errs := env.takeErrs(); len(errs) != 1 {
			t.Errorf("cache errors %v, want one", errs)
		}
		m = env.reopen(t, m, indexedCache) // rewritten with mode 0600
		if os.Geteuid() != 0 {
			return
		}
		if err := os.Chown(file, 54321, -1); err != nil {
			t.Fatal(err)
		}
		env.reopen(t, m, indexedFull)
		if errs := env.takeErrs(); len(errs) != 1 {
			t.Errorf("cache errors %v, want one", errs)
		}
	})
	t.Run("index file is a directory", func(t *testing.T) {
		env := newCacheEnv(t, Options{})
		path := install(t, content)
		if err := os.MkdirAll(env.indexFile(t, path), 0o700); err != nil {
			t.Fatal(err)
		}
		env.open(t, path, indexedFull)
		if errs := env.takeErrs(); len(errs) != 2 { // read, then write
			t.Errorf("cache errors %v, want two", errs)
		}
	})
	t.Run("disabled", func(t *testing.T) {
		s := newTestStore(t)
		path := install(t, content)
		for range 2 {
			m := openMailbox(t, s, path).(*mbox)
			if m.indexedBy != indexedFull || m.indexFile != "" {
				t.Errorf("indexed by %q with cache file %q", m.indexedBy, m.indexFile)
			}
			m.Close()
		}
	})
}

// TestIndexCacheCommit checks the cache written by Commit: the kept messages
// at their new offsets and with their new UIDs, then mail that arrived during
// the session.
func TestIndexCacheCommit(t *testing.T) {
	dup := testMessage("m1", "a duplicate\n")
	content := testMailbox(10) + dup + dup
	for _, tc := range []struct {
		name    string
		deleted []int
		newMail string
		want    string
	}{
		{"middle", []int{2, 5}, "", indexedCache},
		{"first of a duplicate group", []int{1}, "", indexedCache},
		{"last", []int{11}, "", indexedCache},
		{"all but one", []int{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10}, "", indexedCache},
		{"all", []int{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11}, "", indexedFull},
		{"with new mail", []int{0, 4}, testMessage("new", "x\n") + dup, indexedAppend},
		{"all, with new mail", []int{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11}, testMessage("new", "x\n"), indexedFull},
	} {
		t.Run(tc.name, func(t *testing.T) {
			env := newCacheEnv(t, Options{})
			path := install(t, []byte(content))
			m := env.open(t, path, indexedFull)
			if tc.newMail != "" {
				appendFile(t, path, []byte(tc.newMail))
			}
			if err := m.Commit(context.Background(), tc.deleted); err != nil {
				t.Fatal(err)
			}
			m.Close()
			fi, err := os.Stat(path)
			if err != nil {
				t.Fatal(err)
			}
			if fi.Size() == 0 {
				if _, err := os.Stat(env.indexFile(t, path)); !errors.Is(err, os.ErrNotExist) {
					t.Errorf("index cache of an emptied mailbox: %v", err)
				}
				return
			}
			m = env.open(t, path, tc.want)
			env.reopen(t, m, indexedCache)
			if errs := env.takeErrs(); len(errs) != 0 {
				t.Errorf("cache errors: %v", errs)
			}
		})
	}
}

// TestIndexCacheLimits checks that limits lowered since the cache was written
// still refuse the mailbox, and that a mailbox over popa3d's 2 GiB default
// works with a higher MaxBytes (the offsets are 64-bit throughout; a real
// file over 2 GiB is in TestLargeMailbox).
func TestIndexCacheLimits(t *testing.T) {
	content := []byte(testMailbox(10))
	stateDir := filepath.Join(t.TempDir(), "state")
	path := install(t, content)
	env := newCacheEnv(t, Options{StateDir: stateDir, Limits: Limits{MaxBytes: 4 << 30}})
	env.reopen(t, env.open(t, path, indexedFull), indexedCache)
	for _, opts := range []Options{{Limits: Limits{MaxMessages: 9}}, {Limits: Limits{MaxBytes: int64(len(content)) - 1}}} {
		opts.StateDir = stateDir
		env := newCacheEnv(t, opts)
		m, err := env.store.Open(context.Background(), path)
		assertRefused(t, m, err)
	}
	// Append past a lowered message limit.
	env = newCacheEnv(t, Options{StateDir: stateDir, Limits: Limits{MaxMessages: 11}})
	appendFile(t, path, []byte(testMessage("a", "b\n")+testMessage("c", "d\n")))
	m, err := env.store.Open(context.Background(), path)
	assertRefused(t, m, err)
}

// TestIndexCacheLargeOffsets round-trips an index of a mailbox over 4 GiB
// through the encoder and decoder.
func TestIndexCacheLargeOffsets(t *testing.T) {
	const big = 3 << 30
	e1 := Entry{Offset: 0, RawSize: big, DataOffset: 40, DataSize: big - 41, Size: big - 41 + 1000, Popa3dSize: big - 41 + 1000}
	e2 := Entry{Offset: big, RawSize: big + 7, DataOffset: big + 50, DataSize: big - 43, Size: big - 43 + 2000 + 2, Popa3dSize: big - 43 + 2000 + 1}
	e2.Hash[0] = 1
	c := &cachedIndex{path: "/var/mail/big", state: fileState{dev: 1, ino: 2, size: 2*big + 7, mtime: time.Now().UnixNano()},
		entries: []Entry{e1, e2}}
	c.msgs = []mailbox.Message{{Size: e1.Size, UID: e1.UIDL()}, {Size: e2.Size, UID: e2.UIDL() + ".0badcafe"}}
	b, err := encodeIndex(c)
	if err != nil {
		t.Fatal(err)
	}
	got, err := decodeIndex(b)
	if err != nil {
		t.Fatal(err)
	}
	if got.path != c.path || got.state != c.state || !slices.Equal(got.entries, c.entries) || !slices.Equal(got.msgs, c.msgs) {
		t.Errorf("round trip:\n got %+v\nwant %+v", got, c)
	}
}

// FuzzIndexCache feeds arbitrary bytes to the index cache decoder. Whatever
// it accepts must be a consistent index: the encoder takes it back, and the
// encoding decodes to the same index.
func FuzzIndexCache(f *testing.F) {
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := decodeIndex(b)
		// Reading in the smallest chunks puts every field on a chunk edge
		// somewhere; the outcome must not change.
		small, serr := decodeIndexFrom(bytes.NewReader(b), int64(len(b)), minIndexChunk, math.MaxInt)
		if (err == nil) != (serr == nil) {
			t.Fatalf("chunk size changes the outcome: %v, %v", err, serr)
		}
		if err != nil {
			if c != nil || small != nil {
				t.Fatal("index and error")
			}
			return
		}
		if small.path != c.path || small.state != c.state || !slices.Equal(small.entries, c.entries) || !slices.Equal(small.msgs, c.msgs) {
			t.Fatal("chunk size changes the index")
		}
		enc, err := encodeIndex(c)
		if err != nil {
			t.Fatalf("decoded index does not encode: %v", err)
		}
		c2, err := decodeIndex(enc)
		if err != nil {
			t.Fatal(err)
		}
		if c2.path != c.path || c2.state != c.state || !slices.Equal(c2.entries, c.entries) || !slices.Equal(c2.msgs, c.msgs) {
			t.Fatalf("round trip changed the index")
		}
		for i, msg := range c.msgs {
			if len(msg.UID) > 70 || !strings.HasPrefix(msg.UID, c.entries[i].UIDL()) || msg.Size != c.entries[i].Size {
				t.Fatalf("message %+v", msg)
			}
		}
	})
}

// TestIndexCacheSeedCorpus checks that testdata/fuzz/FuzzIndexCache holds the
// index of every golden mailbox and hand-made seed that parses, in go's corpus
// format; -update-corpus writes it.
func TestIndexCacheSeedCorpus(t *testing.T) {
	dir := filepath.Join("testdata", "fuzz", "FuzzIndexCache")
	seeds := make(map[string][]byte)
	add := func(name string, content []byte) {
		r := bytes.NewReader(content)
		entries, err := Index(r, int64(len(content)), Limits{})
		if err != nil || len(entries) == 0 {
			return
		}
		msgs, err := messagesOf(r, entries)
		if err != nil {
			t.Fatal(err)
		}
		c := &cachedIndex{path: "/var/mail/" + name, state: fileState{dev: 2049, ino: 1234, size: int64(len(content)), mtime: 1708000000123456789},
			entries: entries, msgs: msgs}
		b, err := encodeIndex(c)
		if err != nil {
			t.Fatal(err)
		}
		seeds[name] = b
	}
	for _, name := range goldenInputs(t) {
		add("golden-"+name, readGolden(t, name+".mbox"))
	}
	for name, s := range handSeeds {
		add(name, []byte(s))
	}
	checkSeedCorpus(t, dir, seeds, "TestIndexCacheSeedCorpus")
}

// putUIDLSlow is popa3d's UIDL printed the obvious way: the bytes of h in
// the order 3 2 1 0 7 6 5 4, two hex digits each.
func putUIDLSlow(b []byte, h *[8]byte) {
	const hexDigits = "0123456789abcdef"
	for i, j := range [8]int{3, 2, 1, 0, 7, 6, 5, 4} {
		b[2*i] = hexDigits[h[j]>>4]
		b[2*i+1] = hexDigits[h[j]&15]
	}
}

// TestPutUIDL compares the unrolled UIDL printer with putUIDLSlow.
func TestPutUIDL(t *testing.T) {
	for i := range 1000 {
		var h [8]byte
		sum := sha256.Sum256([]byte{byte(i), byte(i >> 8)})
		copy(h[:], sum[:])
		switch i {
		case 0, 0x09, 0x0a, 0x0f, 0x90, 0xa0, 0xff:
			h = [8]byte{byte(i), byte(i), byte(i), byte(i), byte(i), byte(i), byte(i), byte(i)}
		}
		var a, b [16]byte
		putUIDLSlow(a[:], &h)
		putUIDL(b[:], &h)
		if a != b {
			t.Fatalf("%x: %s, putUIDLSlow %s", h, b[:], a[:])
		}
	}
}

// TestIndexCacheChunks decodes a cache of many chunks at several chunk sizes.
func TestIndexCacheChunks(t *testing.T) {
	enc := syntheticIndex(t, 20000)
	want, err := decodeIndex(enc)
	if err != nil {
		t.Fatal(err)
	}
	if len(enc) < 4*indexChunk {
		t.Fatalf("only %d bytes", len(enc))
	}
	suffixed := 0
	for i, msg := range want.msgs {
		if len(msg.UID) > 16 {
			suffixed++
			if i%97 != 0 {
				t.Fatalf("message %d: UID %q", i, msg.UID)
			}
		}
	}
	if suffixed != (20000+96)/97 {
		t.Errorf("%d UIDs with a suffix", suffixed)
	}
	for _, chunk := range []int{minIndexChunk, minIndexChunk + 1, 1000, 4099} {
		got, err := decodeIndexFrom(bytes.NewReader(enc), int64(len(enc)), chunk, math.MaxInt)
		if err != nil {
			t.Fatalf("chunk %d: %v", chunk, err)
		}
		if !slices.Equal(got.entries, want.entries) || !slices.Equal(got.msgs, want.msgs) {
			t.Fatalf("chunk %d: index differs", chunk)
		}
	}
	// A bad byte in the middle is caught whatever the chunk size.
	bad := slices.Clone(enc)
	bad[len(bad)/2] ^= 1
	for _, chunk := range []int{minIndexChunk, indexChunk} {
		if _, err := decodeIndexFrom(bytes.NewReader(bad), int64(len(bad)), chunk, math.MaxInt); err == nil {
			t.Errorf("chunk %d: damaged cache accepted", chunk)
		}
	}
}

// TestExtendUIDs checks on random mailboxes full of repeated UIDLs, some
// byte-identical, that the UIDs of a prefix do not depend on what follows,
// and that uidsFrom gives for every split what UIDs gives for the whole.
func TestExtendUIDs(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	parts := []string{
		testMessage("a", "one\n"), testMessage("a", "two\n"), testMessage("b", "one\n"),
		"From x\nSubject: no hashed header\n\nbody\n\n", "From y\nSubject: none either\n\nbody\n\n",
		"From z\nX-Delivery-ID: 1\n\n",
	}
	for round := range 200 {
		var b strings.Builder
		for range 1 + rng.IntN(25) {
			b.WriteString(parts[rng.IntN(len(parts))])
		}
		content := b.String()
		r := strings.NewReader(content)
		entries, err := Index(r, int64(len(content)), Limits{})
		if err != nil {
			t.Fatal(err)
		}
		all, err := UIDs(r, entries)
		if err != nil {
			t.Fatal(err)
		}
		for p := range len(entries) + 1 {
			pre, err := UIDs(r, entries[:p])
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(pre, all[:p]) {
				t.Fatalf("round %d: UIDs of the first %d messages %q, of all %q", round, p, pre, all)
			}
			got, err := uidsFrom(r, entries, p)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(append(pre, got...), all) {
				t.Fatalf("round %d, split at %d: extended %q, want %q", round, p, got, all)
			}
			msgs, err := messagesFrom(r, entries, p, nil)
			if err != nil {
				t.Fatal(err)
			}
			for i, msg := range msgs {
				if msg.UID != got[i] || msg.Size != entries[p+i].Size {
					t.Fatalf("round %d, split at %d: message %d is %+v, uidsFrom %q", round, p, i, msg, got[i])
				}
			}
		}
	}
}

// TestIndexCacheSameSizeOutsideSample pins that a cache is trusted only for
// the mtime it recorded: a mailbox of more messages than the spot checks
// sample, rewritten in place to the same size with a new mtime, where only a
// message outside the sample changed a hashed header (the first Received:,
// not the Message-ID), must be parsed again and show that message's new
// UIDL. Trusting a cache whose size alone matches would pass the spot checks
// and serve the old UIDL.
func TestIndexCacheSameSizeOutsideSample(t *testing.T) {
	const n = 3 * (indexSamples + 2)
	orig := testMailbox(n)
	sampled := map[int]bool{}
	for _, i := range sampleIndices(n) {
		sampled[i] = true
	}
	victim := -1
	for i := n / 2; i < n; i++ {
		if !sampled[i] {
			victim = i
			break
		}
	}
	changed := strings.Replace(orig, fmt.Sprintf("id m%d\n", victim), fmt.Sprintf("id x%d\n", victim), 1)
	if victim < 0 || len(changed) != len(orig) || changed == orig {
		t.Fatal("bad test case")
	}
	env := newCacheEnv(t, Options{})
	path := install(t, []byte(orig))
	m := env.open(t, path, indexedFull)
	before := m.Messages()[victim].UID
	m.Close()
	old := mtimeOf(t, path)
	f, err := os.OpenFile(path, os.O_WRONLY, 0) // in place: same inode
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteAt([]byte(changed), 0); err != nil {
		t.Fatal(err)
	}
	f.Close()
	// A distinct mtime whatever the clock's granularity.
	if err := os.Chtimes(path, old, old.Add(time.Second)); err != nil {
		t.Fatal(err)
	}
	m = env.open(t, path, indexedFull)
	if after := m.Messages()[victim].UID; after == before {
		t.Errorf("message %d kept UIDL %s after its Received: line changed", victim, after)
	}
}
