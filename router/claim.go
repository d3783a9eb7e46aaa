package router

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"smsrouter/channels"
)

// item is one claimed message during a batch.
type item struct {
	claim   claimName
	path    string // where the claimed file is now
	source  string // the name it had in morx (or deferred/parts), for logs and quarantine
	resumed bool   // it may have been processed before a crash: ask the journal first
}

// claimBatch takes up to BatchSize files: first deferred messages that are due, then
// new ones from morx, then concatenations that are complete or timed out. Each take
// is an atomic rename, so concurrent processes never take the same file.
func (r *Router) claimBatch() ([]*item, error) {
	var items []*item
	limit := r.cfg.BatchSize
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

	d, err := os.Open(r.l.morx)
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", r.l.morx, err)
	}
	defer d.Close()
	for len(items) < limit {
		names, err := d.Readdirnames(limit)
		for _, name := range names {
			// Dot files are app_sms's (and our) half-written temporaries.
			if strings.HasPrefix(name, ".") {
				continue
			}
			c := claimName{id: NewID(now)}
			if id, depth, ok := channels.ParseSpoolName(name); ok && validID(id) {
				c.id, c.depth = id, depth
			}
			if it := r.take(filepath.Join(r.l.morx, name), name, c, false); it != nil {
				items = append(items, it)
			}
		}
		if err != nil || len(names) == 0 {
			break
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
