// Package quietio makes the few system calls a session repeats for every
// RETR and TOP (the mailbox's stat checks, the message's pread) as raw
// system calls, which do not pass through the Go scheduler.
//
// Why: a session process waits for each command with every P idle, and the
// runtime's monitor thread (sysmon) then falls into a deep sleep; the first
// ordinary system call after the wait (syscall.Syscall enters the
// scheduler's syscall state) wakes it with a futex, and it then polls every
// 20 µs until the process is idle again. Under TLS with privilege
// separation, one command at a time, that cost the user's session process
// about two futex and four nanosleep calls per RETR beside the five calls
// that do the work (strace -c), more CPU than the work itself on the 2-core
// VM of bench/tls. privsep.RawIO does the same for the session's sockets.
//
// Each call here is short on a local file (its data in the page cache, or a
// disk read); it holds the process's one P while it runs, which a session
// process serving one client can afford. Nothing else in the program needs
// this.
package quietio

import (
	"io"
	"os"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Fstat is fstat(2) on f's descriptor, as a raw system call.
func Fstat(f *os.File, st *unix.Stat_t) error {
	rc, err := f.SyscallConn()
	if err != nil {
		return err
	}
	var serr error
	if err := rc.Control(func(fd uintptr) { serr = fstat(fd, st, f.Name()) }); err != nil {
		return err
	}
	return serr
}

// fstat is fstat(2) of fd as a raw system call; name names the file in the
// error.
func fstat(fd uintptr, st *unix.Stat_t, name string) error {
	for {
		_, _, errno := syscall.RawSyscall(unix.SYS_FSTAT, fd, uintptr(unsafe.Pointer(st)), 0)
		switch errno {
		case 0:
			return nil
		case syscall.EINTR:
			continue
		}
		return &os.PathError{Op: "fstat", Path: name, Err: errno}
	}
}

// Lstat is lstat(2) of path (fstatat with AT_SYMLINK_NOFOLLOW), as a raw
// system call.
func Lstat(path string, st *unix.Stat_t) error {
	p, err := unix.BytePtrFromString(path)
	if err != nil {
		return &os.PathError{Op: "lstat", Path: path, Err: err}
	}
	atFDCWD := unix.AT_FDCWD // a variable: the negative constant does not convert
	for {
		_, _, errno := syscall.RawSyscall6(sysFstatat, uintptr(atFDCWD), uintptr(unsafe.Pointer(p)),
			uintptr(unsafe.Pointer(st)), unix.AT_SYMLINK_NOFOLLOW, 0, 0)
		switch errno {
		case 0:
			return nil
		case syscall.EINTR:
			continue
		}
		return &os.PathError{Op: "lstat", Path: path, Err: errno}
	}
}

// ReaderAt reads a regular file with pread(2) as raw system calls; its
// ReadAt keeps os.File.ReadAt's contract (fills p, or says why not, io.EOF
// at the end).
type ReaderAt struct {
	f  *os.File
	rc syscall.RawConn
}

// NewReaderAt returns a ReaderAt of f, or f itself if it has no descriptor.
func NewReaderAt(f *os.File) io.ReaderAt {
	rc, err := f.SyscallConn()
	if err != nil {
		return f
	}
	return &ReaderAt{f: f, rc: rc}
}

// ReadAt implements io.ReaderAt.
func (r *ReaderAt) ReadAt(p []byte, off int64) (int, error) {
	if off < 0 {
		return 0, &os.PathError{Op: "readat", Path: r.f.Name(), Err: syscall.EINVAL}
	}
	done := 0
	var errno syscall.Errno
	if err := r.rc.Control(func(fd uintptr) {
		for done < len(p) {
			n, _, e := syscall.RawSyscall6(unix.SYS_PREAD64, fd, uintptr(unsafe.Pointer(&p[done])),
				uintptr(len(p)-done), uintptr(off+int64(done)), 0, 0)
			switch {
			case e == syscall.EINTR:
				continue
			case e != 0:
				errno = e
				return
			case n == 0:
				return
			}
			done += int(n)
		}
	}); err != nil {
		return done, err
	}
	switch {
	case errno != 0:
		return done, &os.PathError{Op: "read", Path: r.f.Name(), Err: errno}
	case done < len(p):
		return done, io.EOF
	}
	return done, nil
}

// File is a regular file opened and read with raw system calls, for the
// message files a Maildir session opens one per RETR: os.File would also
// try to register each in the runtime's poller and change its flags (three
// more system calls), and wake the monitor thread as above.
type File struct {
	fd   int
	name string
}

// OpenAt opens name in the directory dir read-only, never through a
// symbolic link (openat with O_NOFOLLOW), and without waiting for a writer
// if it is a FIFO (O_NONBLOCK, which changes nothing for a regular file:
// the caller checks the type with Stat); path names it in errors.
func OpenAt(dir *os.File, name, path string) (*File, error) {
	p, err := unix.BytePtrFromString(name)
	if err != nil {
		return nil, &os.PathError{Op: "open", Path: path, Err: err}
	}
	rc, err := dir.SyscallConn()
	if err != nil {
		return nil, &os.PathError{Op: "open", Path: path, Err: err}
	}
	var fd uintptr
	var errno syscall.Errno
	if err := rc.Control(func(dfd uintptr) {
		for {
			fd, _, errno = syscall.RawSyscall6(unix.SYS_OPENAT, dfd, uintptr(unsafe.Pointer(p)),
				unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_NONBLOCK|unix.O_CLOEXEC, 0, 0, 0)
			if errno != syscall.EINTR {
				return
			}
		}
	}); err != nil {
		return nil, &os.PathError{Op: "open", Path: path, Err: err}
	}
	if errno != 0 {
		return nil, &os.PathError{Op: "open", Path: path, Err: errno}
	}
	return &File{fd: int(fd), name: path}, nil
}

// Name returns the path the file was opened as.
func (f *File) Name() string { return f.name }

// Stat is fstat(2) of the file.
func (f *File) Stat(st *unix.Stat_t) error {
	if f.fd < 0 {
		return &os.PathError{Op: "fstat", Path: f.name, Err: os.ErrClosed}
	}
	return fstat(uintptr(f.fd), st, f.name)
}

// Read implements io.Reader: io.EOF at the end.
func (f *File) Read(p []byte) (int, error) {
	if f.fd < 0 {
		return 0, &os.PathError{Op: "read", Path: f.name, Err: os.ErrClosed}
	}
	if len(p) == 0 {
		return 0, nil
	}
	for {
		n, _, errno := syscall.RawSyscall(unix.SYS_READ, uintptr(f.fd), uintptr(unsafe.Pointer(&p[0])), uintptr(len(p)))
		switch {
		case errno == syscall.EINTR:
			continue
		case errno != 0:
			return 0, &os.PathError{Op: "read", Path: f.name, Err: errno}
		case n == 0:
			return 0, io.EOF
		}
		return int(n), nil
	}
}

// Close closes the file; a second Close is an error, as os.File's.
func (f *File) Close() error {
	if f.fd < 0 {
		return &os.PathError{Op: "close", Path: f.name, Err: os.ErrClosed}
	}
	_, _, errno := syscall.RawSyscall(unix.SYS_CLOSE, uintptr(f.fd), 0, 0)
	f.fd = -1
	if errno != 0 {
		return &os.PathError{Op: "close", Path: f.name, Err: errno}
	}
	return nil
}
