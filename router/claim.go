package router

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"smsrouter/channels"
)

// item is one claimed message during a batch.
type item struct {
	claim   claimName
	path    string // where the claimed file is now
	source  string // the name it had in morx (or deferred/parts), for logs and quarantine
	resumed bool   // it may have been processed before a crash: ask the journal first
	// foreign marks a file taken from morx: written by Asterisk or anyone else who can
	// write there, so its name tells nothing trusted and it may be incomplete.
	foreign bool
	f       *os.File // the open claimed file of a foreign item (see takeForeign); nil otherwise
	// parts are the ids of the other parts of a joined concatenation (part 1's
	// is the joined message's own), so the journal can answer for each of them.
	parts []string
}

// claimBatch takes up to limit files: first deferred messages that are due, then
// smsrouter's own queued messages (inbox), then new ones from morx, then
// concatenations that are complete or timed out. Each take is an atomic rename, so
// concurrent processes never take the same file.
func (r *Router) claimBatch(limit int) ([]*item, error) {
	var items []*item
	now := r.now()

	if entries, err := os.ReadDir(r.l.deferred); err == nil {
		for _, e := range entries {
			if len(items) >= limit {
				return items, nil
			}
			due, c, ok := parseDeferredName(e.Name())
			if !ok || due.After(now) {
				continue
			}
			if it := r.take(filepath.Join(r.l.deferred, e.Name()), e.Name(), c, true); it != nil {
				items = append(items, it)
			}
		}
	} else {
		return nil, fmt.Errorf("read %s: %w", r.l.deferred, err)
	}

	// Our own messages: only smsrouter writes the inbox, so its names are trusted to
	// carry the id the submitter was given and how deep a generated message is.
	err := eachName(r.l.inbox, limit-len(items), func(name string) bool {
		c := claimName{id: NewID(now)}
		if id, depth, ok := channels.ParseSpoolName(name); ok && validID(id) {
			c.id, c.depth = id, depth
		}
		if it := r.take(filepath.Join(r.l.inbox, name), name, c, false); it != nil {
			items = append(items, it)
		}
		return len(items) < limit
	})
	if err != nil {
		return items, err
	}

	// Asterisk's files, and whatever else lands in morx: never trust the name for an
	// id (a hostile name could take over another message's journal row), and take a
	// file only once nobody is writing it any more.
	takeMorx := func(name string) bool {
		if until, ok := r.notBefore[name]; ok && now.Before(until) {
			r.lookAgainAt(until)
			return true
		}
		if it := r.takeForeign(name, now); it != nil {
			items = append(items, it)
		}
		return len(items) < limit
	}
	resumed := r.morxCursor != nil
	exhausted, err := r.eachMorx(limit-len(items), takeMorx)
	if err != nil {
		return items, err
	}
	if exhausted && resumed && len(items) == 0 {
		// The pass's reading of morx ended: once more from the start for files that
		// came in behind it, before the pass is allowed to end.
		if _, err := r.eachMorx(limit, takeMorx); err != nil {
			return items, err
		}
	}
	if len(items) >= limit {
		return items, nil
	}
	more, err := r.claimParts(limit - len(items))
	if err != nil {
		return items, err
	}
	return append(items, more...), nil
}

// eachName calls fn with the names in dir that do not start with a dot (dot files
// are app_sms's and our own half-written temporaries), reading the folder in chunks,
// until fn returns false or the folder is exhausted.
func eachName(dir string, chunk int, fn func(name string) bool) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("open %s: %w", dir, err)
	}
	defer d.Close()
	for {
		names, err := d.Readdirnames(max(chunk, 64))
		for _, name := range names {
			if strings.HasPrefix(name, ".") {
				continue
			}
			if !fn(name) {
				return nil
			}
		}
		if err != nil || len(names) == 0 {
			return nil
		}
	}
}

// eachMorx is eachName for morx, but reading on from where the pass's last batch
// stopped: morx can hold tens of thousands of files, and reading it from the start
// for every batch made a drain cost grow with the square of the work (on ext4 the
// names already taken still have to be read past). It reports whether the folder
// was read to its end, which closes the cursor.
func (r *Router) eachMorx(chunk int, fn func(name string) bool) (exhausted bool, err error) {
	if r.morxCursor == nil {
		if r.morxCursor, err = os.Open(r.l.morx); err != nil {
			return false, fmt.Errorf("open %s: %w", r.l.morx, err)
		}
		r.morxUnread = nil
	}
	for {
		if len(r.morxUnread) == 0 {
			names, err := r.morxCursor.Readdirnames(max(chunk, 64))
			if err != nil || len(names) == 0 {
				r.closeMorxCursor()
				return true, nil
			}
			r.morxUnread = names
		}
		for len(r.morxUnread) > 0 {
			name := r.morxUnread[0]
			r.morxUnread = r.morxUnread[1:]
			if strings.HasPrefix(name, ".") {
				continue
			}
			if !fn(name) {
				return false, nil
			}
		}
	}
}

func (r *Router) closeMorxCursor() {
	if r.morxCursor != nil {
		r.morxCursor.Close()
		r.morxCursor = nil
	}
	r.morxUnread = nil
}

// writerPoll is how soon a morx file that is still open for writing is looked at
// again.
const writerPoll = 250 * time.Millisecond

// takeForeign claims a morx file under a fresh id, but only once it is whole.
//
// app_sms (and smsq) write a dot file and rename it in, but admins' scripts, cp and
// NFS copies write in place, and a file claimed half-written would be parsed half
// done. The kernel knows whether anyone has the file open for writing: a read lease
// (F_SETLEASE) is refused while someone does. The lease is kept, on the descriptor
// the message is then read from, until it has been read, so a writer that opens the
// file meanwhile waits. Where no lease can be had (a file of another owner without
// CAP_LEASE, a filesystem without leases), a file counts as whole once unchanged for
// the settle time. inotify's close-write would say the same, but fsnotify keeps that
// event unexported, and the rescan needs the check anyway.
func (r *Router) takeForeign(name string, now time.Time) *item {
	src := filepath.Join(r.l.morx, name)
	// O_NOFOLLOW and O_NONBLOCK: a symbolic link or a named pipe is not opened here;
	// it is claimed without a descriptor and prepare rejects it with the reason.
	f, err := os.OpenFile(src, os.O_RDONLY|unix.O_NOFOLLOW|unix.O_NONBLOCK, 0)
	if errors.Is(err, os.ErrNotExist) {
		return nil // another process was quicker
	}
	if err == nil {
		if until, whole := r.whole(f, now); !whole {
			f.Close()
			r.notBefore[name] = until
			r.lookAgainAt(until)
			return nil
		}
	} else {
		f = nil
	}
	delete(r.notBefore, name)
	it := r.take(src, name, claimName{id: NewID(now)}, false)
	if it == nil {
		if f != nil {
			f.Close()
		}
		return nil
	}
	it.foreign, it.f = true, f
	return it
}

// whole reports whether an opened morx file is complete; when it is not, until says
// when to look again.
func (r *Router) whole(f *os.File, now time.Time) (until time.Time, ok bool) {
	st, err := f.Stat()
	if err != nil || !st.Mode().IsRegular() {
		return time.Time{}, true // prepare rejects it with the reason
	}
	_, err = unix.FcntlInt(f.Fd(), unix.F_SETLEASE, unix.F_RDLCK)
	switch {
	case err == nil:
		return time.Time{}, true
	case errors.Is(err, unix.EAGAIN):
		return now.Add(writerPoll), false // open for writing right now
	}
	if settled := st.ModTime().Add(r.cfg.Settle); now.Before(settled) {
		return settled, false
	}
	return time.Time{}, true
}

// lookAgainAt makes Serve come back by t for a file that was not ready.
func (r *Router) lookAgainAt(t time.Time) {
	if r.nextLook.IsZero() || t.Before(r.nextLook) {
		r.nextLook = t
	}
}

// putBack returns a young foreign file that did not parse to morx under its own
// name: it is probably still being written by a program that reopens it for every
// piece. It is looked at again once it has been left alone for the settle time.
func (r *Router) putBack(j *job, mtime time.Time) bool {
	if !r.now().Before(mtime.Add(r.cfg.Settle)) {
		return false
	}
	if err := renameNoReplace(j.path, filepath.Join(r.l.morx, j.source)); err != nil {
		return false // the name was taken meanwhile: judge the file as it is
	}
	until := mtime.Add(r.cfg.Settle)
	r.notBefore[j.source] = until
	r.lookAgainAt(until)
	r.log.Debug("young spool file does not parse yet; looking again later", "file", j.source, "at", until.Format(time.RFC3339Nano))
	return true
}

func (r *Router) take(src, source string, c claimName, resumed bool) *item {
	dst := filepath.Join(r.myClaim, c.String())
	err := renameNoReplace(src, dst)
	if errors.Is(err, os.ErrExist) && !resumed {
		// Two spool files asked for the same id: the second gets a fresh one.
		c.id = NewID(r.now())
		dst = filepath.Join(r.myClaim, c.String())
		err = renameNoReplace(src, dst)
	}
	if err != nil {
		if !errors.Is(err, os.ErrNotExist) { // another process was quicker: not an error
			r.log.Warn("claim failed", "file", src, "err", err)
		}
		return nil
	}
	return &item{claim: c, path: dst, source: source, resumed: resumed}
}

// adoptOrphans takes over the claim folders of processes that died (their flock is
// free) and finishes or redoes what they left.
func (r *Router) adoptOrphans(ctx context.Context, sum *Summary) error {
	entries, err := os.ReadDir(r.l.claimed)
	if err != nil {
		return fmt.Errorf("read %s: %w", r.l.claimed, err)
	}
	for _, e := range entries {
		// Dot folders are claim folders being born (newClaimFolder).
		if !e.IsDir() || e.Name() == r.owner || strings.HasPrefix(e.Name(), ".") {
			continue
		}
		dir := filepath.Join(r.l.claimed, e.Name())
		lk, err := lockOwner(dir, false)
		if err != nil {
			continue // alive, or not ours to touch
		}
		err = r.adopt(ctx, e.Name(), dir, sum)
		lk.release()
		if err != nil {
			r.log.Warn("recovery postponed", "owner", e.Name(), "err", err)
			continue
		}
		os.Remove(filepath.Join(dir, ".lock"))
		if err := os.Remove(dir); err != nil {
			r.log.Warn("recovery: folder not empty", "owner", e.Name(), "err", err)
		}
	}
	// Staging folders nobody owns any more end here too.
	if err := r.recoverStages(ctx, ""); err != nil {
		r.log.Warn("recovery of staged batches postponed", "err", err)
	}
	return nil
}

// newClaimFolder creates and locks a process's claim folder. It is made under a dot
// name and renamed into place only once locked: otherwise another process could see
// it in the moment between mkdir and flock, take it for the folder of a dead
// process and remove it from under its new owner.
func newClaimFolder(dir string) (*ownerLock, error) {
	tmp := filepath.Join(filepath.Dir(dir), "."+filepath.Base(dir))
	if err := os.Mkdir(tmp, 0o770); err != nil {
		return nil, err
	}
	lk, err := lockOwner(tmp, false)
	if err == nil {
		err = os.Rename(tmp, dir) // the lock belongs to the file, so it moves along
	}
	if err != nil {
		lk.release()
		os.RemoveAll(tmp)
		return nil, err
	}
	return lk, nil
}

func (r *Router) adopt(ctx context.Context, owner, dir string, sum *Summary) error {
	// First the dead process's staged batches: the journal decides whether each
	// message's files are published or thrown away.
	if err := r.recoverStages(ctx, owner); err != nil {
		return err
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	var items []*item
	claimed := map[string]bool{}
	for _, e := range entries {
		if c, ok := parseClaimName(e.Name()); ok {
			claimed[c.id] = true
		}
	}
	for _, e := range entries {
		name := e.Name()
		src := filepath.Join(dir, name)
		switch {
		case name == ".lock":
		case strings.HasPrefix(name, ".join-"):
			os.Remove(src) // a joined message that was never renamed into place
		case strings.HasPrefix(name, asmPrefix):
			r.recoverAssembling(src, name, claimed)
		default:
			c, ok := parseClaimName(name)
			if !ok {
				r.quarantine(src, name, "unexpected file in a claim folder")
				continue
			}
			if it := r.take(src, name, c, true); it != nil {
				items = append(items, it)
			}
		}
	}
	sort.Slice(items, func(i, j int) bool { return items[i].claim.id < items[j].claim.id })
	for start := 0; start < len(items); start += r.cfg.BatchSize {
		r.processBatch(ctx, items[start:min(start+r.cfg.BatchSize, len(items))], sum)
	}
	return nil
}

// quarantine moves a file to rejected/ with the reason beside it.
func (r *Router) quarantine(src, source, reason string) string {
	base := safeName(source)
	if c, ok := parseClaimName(filepath.Base(src)); ok && !strings.HasPrefix(base, c.id) {
		base = c.id + "." + base
	}
	dst := filepath.Join(r.l.rejected, base)
	for i := 1; ; i++ {
		if _, err := os.Lstat(dst); errors.Is(err, os.ErrNotExist) {
			break
		}
		dst = filepath.Join(r.l.rejected, fmt.Sprintf("%s~%d", base, i))
	}
	// The reason goes first: a crash in between leaves the file claimed, and it is
	// simply rejected again.
	if err := os.WriteFile(dst+".reason", []byte(reason+"\n"), 0o640); err != nil {
		r.log.Error("cannot write quarantine reason", "file", dst, "err", err)
	}
	if err := renameNoReplace(src, dst); err != nil {
		r.log.Error("cannot quarantine", "file", src, "err", err)
	}
	return dst
}
