package router

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"smsrouter/internal/newfile"
)

// layout names the folders smsrouter owns. They all live in one work folder on the
// same filesystem as Asterisk's spool, so that every move is an atomic rename.
//
//	incoming/<to>.smsrouter-<id>[~<depth>] queued by smsrouter itself (send, FastAGI, HTTP, notices)
//	claimed/<owner>/<id>.<attempts>[.s]   being processed by the live process <owner>
//	deferred/<due ms>.<id>.<attempts>     waiting for its next attempt
//	parts/<oa>_<da>_<ref>_<total>.<seq>.<id>.<attempts>   concatenated parts waiting for siblings
//	stage/<owner>.<n>/                    a batch's artefacts, from before its journal write until published
//	rejected/<id>.<source name>(+.reason) quarantined input
type layout struct {
	work, inbox, claimed, deferred, parts, stage, rejected string
	morx, mttx, outgoing                                   string // Asterisk's folders
}

func newLayout(spool, work string) layout {
	if work == "" {
		work = filepath.Join(spool, "smsrouter")
	}
	return layout{
		work:     work,
		inbox:    InboxDir(work),
		claimed:  filepath.Join(work, "claimed"),
		deferred: filepath.Join(work, "deferred"),
		parts:    filepath.Join(work, "parts"),
		stage:    filepath.Join(work, "stage"),
		rejected: filepath.Join(work, "rejected"),
		morx:     filepath.Join(spool, "sms", "morx"),
		mttx:     filepath.Join(spool, "sms", "mttx"),
		outgoing: filepath.Join(spool, "outgoing"),
	}
}

func (l layout) create() error {
	for _, d := range []string{l.inbox, l.claimed, l.deferred, l.parts, l.stage, l.rejected, l.morx, l.mttx, l.outgoing} {
		if err := os.MkdirAll(d, 0o770); err != nil {
			return fmt.Errorf("create spool folder: %w", err)
		}
	}
	return nil
}

// InboxDir is the folder of the messages smsrouter queues itself, below its work
// folder. Only smsrouter writes there, which is why a name there is trusted to carry
// a message's id (unlike a name in morx, which anyone who can write morx chooses).
func InboxDir(work string) string { return filepath.Join(work, "incoming") }

// claimName is how a claimed file is called: its id, how many attempts it has had,
// and flags: "s" when it is a concatenated part to be routed on its own, "d<n>"
// when smsrouter generated it n generations deep (see channels.Message.Depth),
// "w<k>" when it is to be tried from the recipient's k-th further way on (see
// NumberWay), "r<n>" when that way has been tried n times already.
type claimName struct {
	id       string
	attempts int
	solo     bool
	depth    int
	way      int
	tries    int
}

func (c claimName) String() string {
	s := c.id + "." + strconv.Itoa(c.attempts)
	flags := ""
	if c.solo {
		flags += "s"
	}
	for _, f := range []struct {
		key byte
		n   int
	}{{'d', c.depth}, {'w', c.way}, {'r', c.tries}} {
		if f.n > 0 {
			flags += string(f.key) + strconv.Itoa(f.n)
		}
	}
	if flags != "" {
		s += "." + flags
	}
	return s
}

func parseClaimName(name string) (claimName, bool) {
	f := strings.Split(name, ".")
	if len(f) < 2 || len(f) > 3 || !validID(f[0]) {
		return claimName{}, false
	}
	n, err := strconv.Atoi(f[1])
	if err != nil || n < 0 || n > 1_000_000 {
		return claimName{}, false
	}
	c := claimName{id: f[0], attempts: n}
	if len(f) == 3 {
		flags := f[2]
		if flags == "" {
			return claimName{}, false
		}
		if strings.HasPrefix(flags, "s") {
			c.solo, flags = true, flags[1:]
		}
		// Each number flag at most once, in this order.
		for _, f := range []struct {
			key byte
			dst *int
		}{{'d', &c.depth}, {'w', &c.way}, {'r', &c.tries}} {
			if flags == "" || flags[0] != f.key {
				continue
			}
			end := 1
			for end < len(flags) && flags[end] >= '0' && flags[end] <= '9' {
				end++
			}
			v, err := strconv.Atoi(flags[1:end])
			if err != nil || v < 1 || v > 99 || flags[1] == '0' {
				return claimName{}, false
			}
			*f.dst, flags = v, flags[end:]
		}
		if flags != "" {
			return claimName{}, false
		}
	}
	return c, true
}

// deferredName is "<due ms>.<claim name>".
func deferredName(due time.Time, c claimName) string {
	return fmt.Sprintf("%013d.%s", due.UnixMilli(), c)
}

func parseDeferredName(name string) (time.Time, claimName, bool) {
	ms, rest, ok := strings.Cut(name, ".")
	if !ok || len(ms) != 13 {
		return time.Time{}, claimName{}, false
	}
	v, err := strconv.ParseInt(ms, 10, 64)
	if err != nil {
		return time.Time{}, claimName{}, false
	}
	c, ok := parseClaimName(rest)
	return time.UnixMilli(v), c, ok
}

// renameNoReplace moves src to dst and fails with os.ErrExist instead of replacing
// an existing dst: two processes can never silently overwrite each other's files.
func renameNoReplace(src, dst string) error {
	err := unix.Renameat2(unix.AT_FDCWD, src, unix.AT_FDCWD, dst, unix.RENAME_NOREPLACE)
	if err == nil {
		return nil
	}
	if errors.Is(err, unix.EINVAL) || errors.Is(err, unix.ENOSYS) {
		// Filesystems without RENAME_NOREPLACE: link fails if dst exists, which is the
		// same guarantee in two steps.
		if err := os.Link(src, dst); err != nil {
			return err
		}
		return os.Remove(src)
	}
	return &os.LinkError{Op: "rename", Old: src, New: dst, Err: err}
}

// writeNew creates path, which must not exist, with data.
func writeNew(path string, data []byte, mode os.FileMode, sync bool) error {
	f, err := newfile.Create(path, mode)
	if err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		os.Remove(path)
		return err
	}
	if sync {
		if err := f.Sync(); err != nil {
			f.Close()
			os.Remove(path)
			return err
		}
	}
	return f.Close()
}

// syncAll makes durable the contents of the open files and of the named files and
// folders, all at once: a journaling filesystem commits concurrent fsyncs together,
// so a batch costs about one device flush rather than one per file, and nothing but
// these files is flushed (syncfs would wait for every other program's writes on the
// filesystem too).
func syncAll(open []*os.File, paths ...string) error {
	errs := make([]error, len(open)+len(paths))
	var wg sync.WaitGroup
	for i, f := range open {
		wg.Go(func() {
			if err := unix.Fdatasync(int(f.Fd())); err != nil {
				errs[i] = fmt.Errorf("fdatasync %s: %w", f.Name(), err)
			}
		})
	}
	for i, p := range paths {
		wg.Go(func() { errs[len(open)+i] = syncDir(p) })
	}
	wg.Wait()
	return errors.Join(errs...)
}

// syncDir makes a file's content, or the renames and creations in a folder,
// durable.
func syncDir(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	if err := f.Sync(); err != nil {
		return fmt.Errorf("fsync %s: %w", path, err)
	}
	return nil
}

// ownerLock holds the flock that tells other processes this claim folder is alive.
// The kernel drops it when the process dies, even by kill -9, which is how a later
// process knows it may adopt the folder's files.
type ownerLock struct{ f *os.File }

func lockOwner(dir string, wait bool) (*ownerLock, error) {
	f, err := os.OpenFile(filepath.Join(dir, ".lock"), os.O_RDWR|os.O_CREATE, 0o660)
	if err != nil {
		return nil, err
	}
	how := unix.LOCK_EX
	if !wait {
		how |= unix.LOCK_NB
	}
	if err := unix.Flock(int(f.Fd()), how); err != nil {
		f.Close()
		return nil, err
	}
	return &ownerLock{f: f}, nil
}

func (o *ownerLock) release() {
	if o != nil && o.f != nil {
		_ = unix.Flock(int(o.f.Fd()), unix.LOCK_UN)
		o.f.Close()
	}
}

// safeName turns an arbitrary source file name into something harmless to show
// and to use as part of a quarantine file name.
func safeName(name string) string {
	var b strings.Builder
	for _, r := range name {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '-', r == '_', r == '.', r == ':', r == '+':
			b.WriteRune(r)
		default:
			b.WriteByte('_')
		}
		if b.Len() >= 100 {
			break
		}
	}
	s := strings.TrimLeft(b.String(), ".")
	if s == "" {
		s = "unnamed"
	}
	return s
}
