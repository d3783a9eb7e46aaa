package callfile

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"time"

	"smsrouter/internal/newfile"
)

// maxName bounds placed file names. pbx_spool builds the archive path
// "<outgoing_done>/<name>" in a 256-byte buffer and would silently truncate
// a longer one; 128 bytes leaves room for any sane spool directory.
const maxName = 128

// callFileMode lets Asterisk, usually another user in a shared group,
// append its StartRetry lines and set the mtime.
const callFileMode os.FileMode = 0o660

var (
	// ErrExists is returned when a file of that name is already in the
	// target directory. pbx_spool refers to calls by path, so replacing a
	// file whose call is running would let that call archive or delete the
	// new file.
	ErrExists = errors.New("file already exists")

	// ErrCrossDevice is returned when the temporary directory is not on the
	// target's filesystem, so a rename into place is impossible.
	ErrCrossDevice = errors.New("temporary directory is on a different filesystem")
)

// Place puts a call file into outgoingDir under name, so that pbx_spool
// only ever sees the whole file: see PlaceFile. The file gets mode 0660.
// When notBefore is in the future, pbx_spool holds the call until then.
func Place(outgoingDir, tmpDir, name string, data []byte, notBefore time.Time) (path string, err error) {
	return PlaceFile(outgoingDir, tmpDir, name, data, callFileMode, notBefore)
}

// PlaceFile atomically creates dir/name with the given content and mode,
// for any directory a daemon watches (outgoing/, sms/mttx/):
//
//  1. write data to a new temporary file in tmpDir and fsync it;
//  2. if notBefore is in the future, set the mtime to notBefore, rounded up
//     to a whole second because pbx_spool compares whole seconds;
//  3. rename it to dir/name without replacing an existing file
//     (renameat2 RENAME_NOREPLACE, or link+unlink where the filesystem
//     lacks it), then fsync dir so the entry survives a crash.
//
// tmpDir must be a different directory on the same filesystem as dir.
// name must be a plain file name: not empty, no '/', no leading '.', no
// control characters, at most 128 bytes. An existing dir/name gives an
// error matching ErrExists (and fs.ErrExist); the temporary file is removed
// on every error.
func PlaceFile(dir, tmpDir, name string, data []byte, mode os.FileMode, notBefore time.Time) (string, error) {
	if err := checkName(name); err != nil {
		return "", err
	}
	target := filepath.Join(dir, name)
	if err := checkDirs(dir, tmpDir); err != nil {
		return "", fmt.Errorf("callfile: place %s: %w", target, err)
	}
	tmp, err := writeTemp(tmpDir, data, mode, notBefore)
	if err != nil {
		return "", fmt.Errorf("callfile: place %s: %w", target, err)
	}
	if err := renameNoReplace(tmp, target); err != nil {
		_ = os.Remove(tmp)
		return "", renameError(target, tmpDir, err)
	}
	if err := syncDir(dir); err != nil {
		// The file is in place and Asterisk may already be dialling; only
		// its durability across a power loss is in doubt. Report the path
		// so the caller does not place it a second time.
		return target, fmt.Errorf("callfile: place %s: sync directory: %w", target, err)
	}
	return target, nil
}

// UniqueName returns "<prefix>-<unix nanoseconds>-<pid>-<16 hex digits>".
// The random part (64 bits from crypto/rand) keeps names apart in a fast
// loop and across goroutines; the pid and time keep them apart across
// processes and make names sort roughly by creation. prefix should itself
// be a plain file name part (letters, digits, '.', '-', '_').
func UniqueName(prefix string) string {
	var r [8]byte
	_, _ = rand.Read(r[:]) // crypto/rand.Read never fails (Go 1.24+)
	s := strconv.FormatInt(time.Now().UnixNano(), 10) + "-" + strconv.Itoa(os.Getpid()) + "-" + hex.EncodeToString(r[:])
	if prefix == "" {
		return s
	}
	return prefix + "-" + s
}

func checkName(name string) error {
	switch {
	case name == "":
		return fmt.Errorf("callfile: empty file name: %w", ErrInvalid)
	case len(name) > maxName:
		return fmt.Errorf("callfile: file name of %d bytes, more than %d: %w", len(name), maxName, ErrInvalid)
	case name[0] == '.':
		// Also rules out "." and "..", and keeps our names apart from the
		// dot-named temporary files of smsq and of this package.
		return fmt.Errorf("callfile: file name %q starts with '.': %w", name, ErrInvalid)
	}
	for i := 0; i < len(name); i++ {
		if b := name[i]; b == '/' || b < 0x20 || b == 0x7f {
			return fmt.Errorf("callfile: file name %q: byte %#02x at %d not allowed: %w", name, b, i, ErrInvalid)
		}
	}
	return nil
}

// checkDirs catches the two set-up mistakes early and with a clear
// message: writing the temporary file where Asterisk would see it, and a
// temporary directory on another filesystem. The rename still has the last
// word (two mounts of one filesystem share a device yet fail with EXDEV).
func checkDirs(dir, tmpDir string) error {
	di, err := os.Stat(dir)
	if err != nil {
		return err
	}
	ti, err := os.Stat(tmpDir)
	if err != nil {
		return fmt.Errorf("temporary directory: %w", err)
	}
	if !di.IsDir() {
		return fmt.Errorf("%s is not a directory", dir)
	}
	if !ti.IsDir() {
		return fmt.Errorf("temporary directory %s is not a directory", tmpDir)
	}
	if os.SameFile(di, ti) {
		return fmt.Errorf("temporary directory %s is the target directory; Asterisk would see partial files", tmpDir)
	}
	if dd, td, ok := devices(di, ti); ok && dd != td {
		return fmt.Errorf("%w: %s and %s", ErrCrossDevice, tmpDir, dir)
	}
	return nil
}

func devices(a, b os.FileInfo) (uint64, uint64, bool) {
	as, ok1 := a.Sys().(*syscall.Stat_t)
	bs, ok2 := b.Sys().(*syscall.Stat_t)
	if !ok1 || !ok2 {
		return 0, 0, false
	}
	// Dev is not uint64 on every platform.
	return uint64(as.Dev), uint64(bs.Dev), true
}

func writeTemp(tmpDir string, data []byte, mode os.FileMode, notBefore time.Time) (path string, err error) {
	f, err := newfile.CreateTemp(tmpDir, ".callfile-", mode)
	if err != nil {
		return "", err
	}
	path = f.Name()
	defer func() {
		if err != nil {
			_ = f.Close()
			_ = os.Remove(path)
		}
	}()
	if _, err = f.Write(data); err != nil {
		return "", fmt.Errorf("write %s: %w", path, err)
	}
	// The mode exactly, whatever the umask.
	if err = newfile.SetMode(f, mode); err != nil {
		return "", fmt.Errorf("chmod %s: %w", path, err)
	}
	if err = f.Sync(); err != nil {
		return "", fmt.Errorf("fsync %s: %w", path, err)
	}
	if err = f.Close(); err != nil {
		return "", fmt.Errorf("close %s: %w", path, err)
	}
	if err = holdUntil(path, notBefore); err != nil {
		return "", err
	}
	return path, nil
}

// holdUntil sets path's mtime to notBefore when that is in the future.
func holdUntil(path string, notBefore time.Time) error {
	if now := time.Now(); notBefore.After(now) {
		// pbx_spool reads whole seconds; rounding up means the call never
		// starts before notBefore.
		mt := notBefore.Truncate(time.Second)
		if mt.Before(notBefore) {
			mt = mt.Add(time.Second)
		}
		if err := os.Chtimes(path, now, mt); err != nil {
			return fmt.Errorf("set mtime of %s: %w", path, err)
		}
	}
	return nil
}

func renameError(target, tmpDir string, err error) error {
	switch {
	case errors.Is(err, syscall.EEXIST):
		return fmt.Errorf("callfile: place %s: %w: %w", target, ErrExists, os.ErrExist)
	case errors.Is(err, syscall.EXDEV):
		return fmt.Errorf("callfile: place %s: %w (%s): %w", target, ErrCrossDevice, tmpDir, err)
	}
	return fmt.Errorf("callfile: place %s: %w", target, err)
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	return err
}

// Call is one file for PlaceAll: its name and content in, and where it went
// (Path) or why not (Err) out.
type Call struct {
	Name string
	Data []byte
	// Temp, when set, is an empty temporary file in PlaceAll's tmpDir made
	// ahead (NewTemp), which takes Data instead of a file created now.
	Temp *Temp
	// NotBefore, when in the future, becomes the file's mtime: pbx_spool
	// starts the call then (SPEC §3, observed).
	NotBefore time.Time
	Path      string
	Err       error
}

// PlaceAll places several call files as Place does (now, mode 0660, never
// replacing a file), with one round of fsyncs for them all when durable is set
// instead of two per file: the temporary files are written, synced side by
// side, renamed into place one by one, and outgoingDir is synced once. Each
// call's outcome is in its Path and Err (ErrExists as for Place); the error
// returned concerns them all (the folders, the last sync), and a call with a
// Path is in place even then.
//
// When durable, the folders in first are synced in the same round, before any
// call appears: what the calls hand over (the parts an SMS call delivers) is on
// the disk before a call that relies on it; should that fail, no call is placed.
func PlaceAll(outgoingDir, tmpDir string, calls []Call, durable bool, first ...string) error {
	if len(calls) == 0 {
		return nil
	}
	if err := checkDirs(outgoingDir, tmpDir); err != nil {
		return fmt.Errorf("callfile: place in %s: %w", outgoingDir, err)
	}
	tmps := make([]*os.File, len(calls))
	defer func() {
		for _, f := range tmps {
			if f != nil {
				f.Close()
				os.Remove(f.Name())
			}
		}
	}()
	for i := range calls {
		c := &calls[i]
		t := c.Temp
		c.Temp = nil // taken: renamed into place or removed here
		if c.Err = checkName(c.Name); c.Err != nil {
			t.Discard()
			continue
		}
		if t != nil && t.f != nil && t.dir == tmpDir {
			tmps[i] = t.f
			t.f = nil
			if _, err := tmps[i].Write(c.Data); err != nil {
				c.Err = fmt.Errorf("callfile: write %s: %w", tmps[i].Name(), err)
			}
		} else {
			t.Discard()
			tmps[i], c.Err = openTemp(tmpDir, c.Data, callFileMode)
		}
		if c.Err == nil {
			c.Err = holdUntil(tmps[i].Name(), c.NotBefore)
		}
	}
	if durable {
		var wg sync.WaitGroup
		for i, f := range tmps {
			if f != nil {
				wg.Go(func() {
					if err := f.Sync(); err != nil {
						calls[i].Err = fmt.Errorf("callfile: fsync %s: %w", f.Name(), err)
					}
				})
			}
		}
		firstErrs := make([]error, len(first))
		for i, dir := range first {
			wg.Go(func() { firstErrs[i] = syncDir(dir) })
		}
		wg.Wait()
		if err := errors.Join(firstErrs...); err != nil {
			for i := range calls {
				if calls[i].Err == nil {
					calls[i].Err = fmt.Errorf("callfile: not placed: %w", err)
				}
			}
			return fmt.Errorf("callfile: place in %s: %w", outgoingDir, err)
		}
	}
	placed := false
	for i, f := range tmps {
		c := &calls[i]
		if f == nil || c.Err != nil {
			continue
		}
		target := filepath.Join(outgoingDir, c.Name)
		if err := f.Close(); err != nil {
			c.Err = fmt.Errorf("callfile: place %s: close: %w", target, err)
			continue
		}
		if err := renameNoReplace(f.Name(), target); err != nil {
			c.Err = renameError(target, tmpDir, err)
			continue
		}
		tmps[i] = nil
		c.Path, placed = target, true
	}
	if durable && placed {
		if err := syncDir(outgoingDir); err != nil {
			return fmt.Errorf("callfile: place in %s: sync directory: %w", outgoingDir, err)
		}
	}
	return nil
}

// Temp is an empty temporary file for a call file, made ahead of the call (as a
// spare) so that placing the call creates no file: on a busy journaling
// filesystem a creation can wait as long as an fsync. Give it to PlaceAll in
// Call.Temp, or Discard it.
type Temp struct {
	dir string
	f   *os.File
}

// NewTemp makes an empty temporary file (mode 0660) in tmpDir.
func NewTemp(tmpDir string) (*Temp, error) {
	f, err := openTemp(tmpDir, nil, callFileMode)
	if err != nil {
		return nil, err
	}
	return &Temp{dir: tmpDir, f: f}, nil
}

// Discard removes a temporary file that will not be used. It may be called on
// nil and more than once.
func (t *Temp) Discard() {
	if t == nil || t.f == nil {
		return
	}
	t.f.Close()
	os.Remove(t.f.Name())
	t.f = nil
}

// openTemp writes data to a new temporary file in tmpDir and returns it open.
func openTemp(tmpDir string, data []byte, mode os.FileMode) (*os.File, error) {
	f, err := newfile.CreateTemp(tmpDir, ".callfile-", mode)
	if err != nil {
		return nil, fmt.Errorf("callfile: %w", err)
	}
	if _, err = f.Write(data); err == nil {
		// The mode exactly, whatever the umask.
		err = newfile.SetMode(f, mode)
	}
	if err != nil {
		f.Close()
		os.Remove(f.Name())
		return nil, fmt.Errorf("callfile: write %s: %w", f.Name(), err)
	}
	return f, nil
}
