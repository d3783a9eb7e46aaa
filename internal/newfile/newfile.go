// Package newfile creates the spool's small files with fewer system calls
// than package os.
//
// os.OpenFile hands every file it opens to the runtime's network poller: for
// a regular file that is four calls more than the open itself (fcntl twice to
// make it non-blocking, an epoll_ctl that fails with EPERM, fcntl twice to
// make it blocking again). A drain creates two files per message (the staged
// part and the call file), where the few microseconds each add up
// (issue 17). os.NewFile adopts a descriptor with one fcntl and no poller.
package newfile

import (
	"errors"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"

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
// os.CreateTemp does, with mode 0600.
func CreateTemp(dir, prefix string) (*os.File, error) {
	for range 10000 {
		f, err := Create(filepath.Join(dir, prefix+strconv.FormatUint(uint64(rand.Uint32()), 10)), 0o600)
		if !errors.Is(err, fs.ErrExist) {
			return f, err
		}
	}
	return nil, &fs.PathError{Op: "createtemp", Path: filepath.Join(dir, prefix+"*"), Err: fs.ErrExist}
}
