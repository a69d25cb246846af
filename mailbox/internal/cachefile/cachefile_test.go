package cachefile

import (
	"bytes"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/popa3d/popa3d/mailbox/internal/statedir"
)

var testFormat = Format{Name: "test cache", Magic: "P3DTEST", Version: 3}

// Sum returns the checksum that ends a cache file whose content before it is
// b (SumLen).
func Sum(b []byte) uint32 { return crc32.Checksum(b, crc32.MakeTable(crc32.Castagnoli)) }

// encodeWords writes words as a count then length-prefixed strings, a body
// small enough to check by hand, through Append, Commit and Write as a real
// encoder.
func encodeWords(w *Writer, words []string) error {
	w.Commit(binary.AppendUvarint(w.Append(binary.MaxVarintLen64), uint64(len(words))))
	for _, s := range words {
		b := w.Append(binary.MaxVarintLen64)
		b = binary.AppendUvarint(b, uint64(len(s)))
		w.Commit(b)
		if _, err := w.Write([]byte(s)); err != nil {
			return err
		}
	}
	return nil
}

func decodeWords(rd *Reader) ([]string, error) {
	b, err := rd.Next(binary.MaxVarintLen64)
	if err != nil {
		return nil, err
	}
	n, k := binary.Uvarint(b)
	if k <= 0 || n > uint64(rd.Left()) {
		return nil, testFormat.Corrupt("count")
	}
	rd.Skip(k)
	var words []string
	for range n {
		b, err := rd.Next(binary.MaxVarintLen64)
		if err != nil {
			return nil, err
		}
		l, k := binary.Uvarint(b)
		if k <= 0 {
			return nil, testFormat.Corrupt("length")
		}
		rd.Skip(k)
		s, err := rd.Bytes(int(l))
		if err != nil {
			return nil, err
		}
		words = append(words, string(s))
	}
	return words, nil
}

func encode(t *testing.T, words []string, chunk int) []byte {
	t.Helper()
	var buf bytes.Buffer
	w := NewWriter(&buf, testFormat, chunk)
	if err := encodeWords(w, words); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func decode(b []byte, chunk int) ([]string, error) {
	var words []string
	err := Decode(bytes.NewReader(b), int64(len(b)), testFormat, chunk, func(rd *Reader) (err error) {
		words, err = decodeWords(rd)
		return err
	})
	return words, err
}

var testWords = []string{"", "a", string(bytes.Repeat([]byte("long "), 300)), "last"}

// TestLayout pins the container's bytes: magic, little-endian version, the
// body, and the CRC-32C of all before it, little-endian.
func TestLayout(t *testing.T) {
	b := encode(t, []string{"hi"}, 64)
	want := []byte("P3DTEST\x03\x00\x00\x00\x01\x02hi")
	want = binary.LittleEndian.AppendUint32(want, Sum(want))
	if !bytes.Equal(b, want) {
		t.Errorf("file %q, want %q", b, want)
	}
}

// TestRoundTrip writes and reads at chunk sizes that put the header, a
// length and a string across chunk edges: the bytes and the outcome do not
// depend on them.
func TestRoundTrip(t *testing.T) {
	ref := encode(t, testWords, 4096)
	for _, chunk := range []int{1, 7, 11, 12, 13, 64, 1000} {
		b := encode(t, testWords, chunk)
		if !bytes.Equal(b, ref) {
			t.Fatalf("chunk %d: the encoding differs", chunk)
		}
		got, err := decode(b, max(chunk, binary.MaxVarintLen64))
		if err != nil || !slices.Equal(got, testWords) {
			t.Fatalf("chunk %d: %q, %v", chunk, got, err)
		}
	}
}

// TestDamage: every damage is an error, ErrVersion for another version and
// ErrCorrupt for the rest, and short files are told apart by their header.
func TestDamage(t *testing.T) {
	good := encode(t, testWords, 4096)
	resum := func(b []byte) []byte {
		b = b[:len(b)-SumLen]
		return binary.LittleEndian.AppendUint32(b, Sum(b))
	}
	for _, tc := range []struct {
		name string
		b    []byte
		is   error
	}{
		{"empty", nil, ErrCorrupt},
		{"magic only", []byte("P3DTEST"), ErrCorrupt},
		{"short, another version", []byte("P3DTEST\x04\x00\x00\x00"), ErrVersion},
		{"short, this version", []byte("P3DTEST\x03\x00\x00\x00"), ErrCorrupt},
		{"another version", resum(append([]byte("P3DTEST\x04"), good[8:]...)), ErrVersion},
		{"another magic", resum(append([]byte("P3DTESX"), good[7:]...)), ErrCorrupt},
		{"flipped body byte", func() []byte { b := slices.Clone(good); b[20] ^= 1; return b }(), ErrCorrupt},
		{"flipped checksum", func() []byte { b := slices.Clone(good); b[len(b)-1] ^= 1; return b }(), ErrCorrupt},
		{"appended byte", resum(append(slices.Clone(good), 0)), ErrCorrupt},
		{"truncated", good[:len(good)-1], nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, chunk := range []int{binary.MaxVarintLen64, 4096} {
				words, err := decode(tc.b, chunk)
				if err == nil {
					t.Fatalf("chunk %d: accepted as %q", chunk, words)
				}
				if tc.is != nil && !errors.Is(err, tc.is) {
					t.Errorf("chunk %d: %v, want %v", chunk, err, tc.is)
				}
			}
		})
	}
}

func openDir(t *testing.T) (*statedir.Dir, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "state")
	d, err := statedir.Open(path, true)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	return d, path
}

func readWords(d *statedir.Dir, name string) ([]string, error) {
	var words []string
	err := Read(d, name, testFormat, 4096, func(rd *Reader) (err error) {
		words, err = decodeWords(rd)
		return err
	})
	return words, err
}

// TestFile writes a cache file in a state directory and reads it back; a
// missing one is fs.ErrNotExist, a failed encoder leaves nothing behind, and
// a file that another account could have written is not read.
func TestFile(t *testing.T) {
	d, path := openDir(t)
	if _, err := readWords(d, "x"); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("missing file: %v", err)
	}
	if err := Write(d, "x", testFormat, 64, func(w *Writer) error { return encodeWords(w, testWords) }); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(filepath.Join(path, "x"))
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("cache file %v, %v", fi, err)
	}
	if got, err := readWords(d, "x"); err != nil || !slices.Equal(got, testWords) {
		t.Fatalf("read back %q, %v", got, err)
	}
	failed := errors.New("encoder failed")
	if err := Write(d, "x", testFormat, 64, func(w *Writer) error { encodeWords(w, testWords); return failed }); !errors.Is(err, failed) {
		t.Fatalf("failed encoder: %v", err)
	}
	if ents, _ := os.ReadDir(path); len(ents) != 1 {
		t.Errorf("after a failed write the directory holds %v", ents)
	}
	if got, err := readWords(d, "x"); err != nil || !slices.Equal(got, testWords) {
		t.Fatalf("a failed write changed the file: %q, %v", got, err)
	}

	if err := os.Chmod(filepath.Join(path, "x"), 0o620); err != nil {
		t.Fatal(err)
	}
	if _, err := readWords(d, "x"); err == nil {
		t.Error("group-writable cache file read")
	}
	if err := os.Chmod(filepath.Join(path, "x"), 0o600); err != nil {
		t.Fatal(err)
	}
	if os.Geteuid() == 0 {
		if err := os.Chown(filepath.Join(path, "x"), 54321, -1); err != nil {
			t.Fatal(err)
		}
		if _, err := readWords(d, "x"); err == nil {
			t.Error("another account's cache file read")
		}
	}
	if err := os.Symlink("x", filepath.Join(path, "link")); err != nil {
		t.Fatal(err)
	}
	if _, err := readWords(d, "link"); err == nil || errors.Is(err, fs.ErrNotExist) {
		t.Errorf("symbolic link: %v", err)
	}
	if err := os.Mkdir(filepath.Join(path, "dir"), 0o700); err != nil {
		t.Fatal(err)
	}
	if _, err := readWords(d, "dir"); err == nil {
		t.Error("directory read as a cache file")
	}
}
