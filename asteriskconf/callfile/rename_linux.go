package callfile

import (
	"errors"
	"os"

	"golang.org/x/sys/unix"
)

// renameNoReplace renames old to new unless new exists, atomically. A
// rename shows up in inotify as IN_MOVED_TO, which pbx_spool acts on at
// once. Filesystems without RENAME_NOREPLACE fall back to link+unlink,
// equally atomic for the check but seen by pbx_spool about 2 s later.
func renameNoReplace(old, new string) error {
	err := unix.Renameat2(unix.AT_FDCWD, old, unix.AT_FDCWD, new, unix.RENAME_NOREPLACE)
	if errors.Is(err, unix.EINVAL) || errors.Is(err, unix.ENOSYS) {
		return linkUnlink(old, new)
	}
	if err != nil {
		return &os.LinkError{Op: "renameat2", Old: old, New: new, Err: err}
	}
	return nil
}
