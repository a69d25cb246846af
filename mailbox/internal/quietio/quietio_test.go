package quietio

import (
	"bytes"
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"
)

func TestReaderAtMatchesFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "m")
	data := bytes.Repeat([]byte("0123456789abcdef"), 40000) // 640 KB
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	r := NewReaderAt(f)
	for _, tc := range []struct {
		off int64
		n   int
	}{{0, 0}, {0, 10}, {5, 100000}, {int64(len(data)) - 3, 3}, {int64(len(data)) - 3, 10}, {int64(len(data)), 1}, {int64(len(data)) + 5, 1}} {
		want := make([]byte, tc.n)
		wn, werr := f.ReadAt(want, tc.off)
		got := make([]byte, tc.n)
		gn, gerr := r.ReadAt(got, tc.off)
		if gn != wn || !errors.Is(gerr, werr) && gerr != werr || !bytes.Equal(got[:gn], want[:wn]) {
			t.Errorf("ReadAt(%d bytes at %d) = %d, %v; os.File: %d, %v", tc.n, tc.off, gn, gerr, wn, werr)
		}
	}
	if _, err := r.ReadAt(make([]byte, 1), -1); err == nil {
		t.Error("negative offset accepted")
	}
	f.Close()
	if _, err := r.ReadAt(make([]byte, 1), 0); err == nil {
		t.Error("read of a closed file")
	}
	var _ io.ReaderAt = r
}

func TestStats(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "m")
	if err := os.WriteFile(path, []byte("hello"), 0o600); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(dir, "l")
	if err := os.Symlink(path, link); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var a, b, c unix.Stat_t
	if err := Fstat(f, &a); err != nil {
		t.Fatal(err)
	}
	if err := Lstat(path, &b); err != nil {
		t.Fatal(err)
	}
	if a.Ino != b.Ino || a.Dev != b.Dev || a.Size != 5 || b.Size != 5 {
		t.Errorf("fstat %+v, lstat %+v", a, b)
	}
	if err := Lstat(link, &c); err != nil || c.Mode&unix.S_IFMT != unix.S_IFLNK {
		t.Errorf("lstat of a link followed it: mode %o, %v", c.Mode, err)
	}
	if err := Lstat(filepath.Join(dir, "none"), &c); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("lstat of nothing: %v", err)
	}
	f.Close()
	if err := Fstat(f, &a); err == nil {
		t.Error("fstat of a closed file")
	}
}

func TestFile(t *testing.T) {
	dir := t.TempDir()
	data := bytes.Repeat([]byte("line\n"), 30000)
	if err := os.WriteFile(filepath.Join(dir, "m"), data, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("m", filepath.Join(dir, "l")); err != nil {
		t.Fatal(err)
	}
	d, err := os.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	f, err := OpenAt(d, "m", filepath.Join(dir, "m"))
	if err != nil {
		t.Fatal(err)
	}
	var st unix.Stat_t
	if err := f.Stat(&st); err != nil || st.Size != int64(len(data)) || st.Mode&unix.S_IFMT != unix.S_IFREG {
		t.Fatalf("stat: %+v %v", st, err)
	}
	got, err := io.ReadAll(f)
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("read %d bytes, %v", len(got), err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err == nil {
		t.Error("second Close")
	}
	if _, err := f.Read(make([]byte, 1)); err == nil {
		t.Error("read after Close")
	}
	if _, err := OpenAt(d, "l", filepath.Join(dir, "l")); !errors.Is(err, unix.ELOOP) {
		t.Errorf("a symbolic link was followed: %v", err)
	}
	if _, err := OpenAt(d, "none", filepath.Join(dir, "none")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("missing file: %v", err)
	}
}
