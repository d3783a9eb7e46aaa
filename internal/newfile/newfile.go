// Package newfile creates the spool's small files with fewer system calls
// than package os.
//
// os.OpenFile hands every file it opens to the runtime's network poller: for
// a regular file that is four calls more than the open itself (fcntl twice to
// make it non-blocking, an epoll_ctl that fails with EPERM, fcntl twice to
// make it blocking again). A drain creates two files per message (the staged
// part and the call file), where the few microseconds each add up
// (issue 17). os.NewFile adopts a descriptor with one fcntl and no poller.
//
// The same files must have exactly the mode asked for (Asterisk must read a
// call file whatever the umask), which took an fchmod each: SetMode skips it
// when the umask took nothing away.
package newfile

import (
	"bufio"
	"bytes"
	"errors"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"sync"

	"golang.org/x/sys/unix"
)

// Create makes path, which must not exist, for writing, with perm reduced by
// the umask as open(2) does.
func Create(path string, perm fs.FileMode) (*os.File, error) {
	for {
		fd, err := unix.Open(path, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_CLOEXEC, uint32(perm.Perm()))
		if errors.Is(err, unix.EINTR) { // a network filesystem may be interrupted; os retries too
			continue
		}
		if err != nil {
			return nil, &fs.PathError{Op: "open", Path: path, Err: err}
		}
		return os.NewFile(uintptr(fd), path), nil
	}
}

// CreateTemp makes a new file in dir named prefix and a random number, as
// os.CreateTemp does, with perm reduced by the umask.
func CreateTemp(dir, prefix string, perm fs.FileMode) (*os.File, error) {
	for range 10000 {
		f, err := Create(filepath.Join(dir, prefix+strconv.FormatUint(uint64(rand.Uint32()), 10)), perm)
		if !errors.Is(err, fs.ErrExist) {
			return f, err
		}
	}
	return nil, &fs.PathError{Op: "createtemp", Path: filepath.Join(dir, prefix+"*"), Err: fs.ErrExist}
}

// SetMode gives f, made by Create or CreateTemp with perm mode, exactly that
// mode: open(2) reduced it by the umask, and fchmod is not reduced.
func SetMode(f *os.File, mode fs.FileMode) error {
	if mask, ok := umask(); ok && mode.Perm()&mask == 0 {
		return nil // nothing was taken away
	}
	return f.Chmod(mode)
}

// umask is the process's umask, read once: smsrouter never changes it, and
// reading it with umask(2) would mean setting it, racing every file created
// meanwhile. Linux shows it in /proc/self/status since 4.7; where it cannot be
// read, SetMode always calls fchmod.
var umask = sync.OnceValues(func() (fs.FileMode, bool) {
	status, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0, false
	}
	sc := bufio.NewScanner(bytes.NewReader(status))
	for sc.Scan() {
		if v, ok := bytes.CutPrefix(sc.Bytes(), []byte("Umask:")); ok {
			m, err := strconv.ParseUint(string(bytes.TrimSpace(v)), 8, 32)
			return fs.FileMode(m), err == nil && m <= 0o777
		}
	}
	return 0, false
})
