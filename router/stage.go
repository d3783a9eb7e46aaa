package router

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"smsrouter/channels"
	"smsrouter/internal/newfile"
)

// stagedFile is one artefact written to a batch's staging folder. The manifest that
// lists them is written last, so a folder without one was never committed.
type stagedFile struct {
	ID        string `json:"id"`   // the message it belongs to
	File      string `json:"file"` // name inside the staging folder
	Dir       string `json:"dir"`  // where it goes
	Name      string `json:"name"`
	Kind      string `json:"kind"`
	NotBefore int64  `json:"not_before,omitempty"` // Unix ms; its mtime
}

const manifestName = "manifest.json"

// stage writes every artefact of the batch into its staging folder, then the
// manifest that lists them. The folder is made even when nothing is to be published:
// it is how a process that adopts this one's work after a crash learns which batch
// may be waiting for its journal commit.
func (r *Router) stage(b *batch) error {
	if b.manifest == nil {
		if err := os.Mkdir(b.dir, 0o770); err != nil {
			return fmt.Errorf("stage: %w", err)
		}
	}
	n := 0
	for _, j := range b.jobs {
		if j.settled || j.state == StateDeferred {
			continue
		}
		id := j.claim.id
		for _, a := range append(append([]channels.Artefact(nil), j.result.Artefacts...), j.notice...) {
			if err := r.stageFile(b, id, a, &n); err != nil {
				r.discard(b)
				return fmt.Errorf("stage %s: %w", id, err)
			}
		}
	}
	data, err := json.Marshal(b.files)
	if err != nil {
		r.discard(b)
		return fmt.Errorf("stage manifest: %w", err)
	}
	// The manifest is written under its own name: a crash while writing it leaves it
	// torn, but then the journal was never written (settleStage asks it all the same).
	mf := filepath.Join(b.dir, manifestName)
	paths := []string{b.dir, r.l.stage}
	if m := b.manifest; m != nil {
		// A spare folder's: made, and its entry in the staging folder synced,
		// before this batch began.
		b.manifest = nil
		b.open = append(b.open, m)
		paths = paths[:1]
		if _, err := m.Write(data); err != nil {
			r.discard(b)
			return fmt.Errorf("stage manifest: %w", err)
		}
	} else if err := writeNew(mf, data, 0o640, false); err != nil {
		r.discard(b)
		return fmt.Errorf("stage manifest: %w", err)
	} else {
		paths = append(paths, mf)
	}
	if !r.cfg.Sync || len(b.files) == 0 {
		b.closeOpen()
	} else {
		// The staged files, the manifest and the folder's entries are durable before
		// the journal is written: one round of fsyncs side by side, which the
		// filesystem commits together.
		err := syncAll(b.open, paths...)
		b.closeOpen()
		if err != nil {
			r.discard(b)
			return fmt.Errorf("stage sync: %w", err)
		}
	}
	return nil
}

func (r *Router) stageFile(b *batch, id string, a channels.Artefact, n *int) error {
	if err := checkArtefact(a); err != nil {
		return err
	}
	*n++
	f := stagedFile{ID: id, File: strconv.Itoa(*n), Dir: a.Dir, Name: a.Name, Kind: a.Kind}
	mode := a.Mode
	if mode == 0 {
		mode = 0o644
	}
	p := filepath.Join(b.dir, f.File)
	out, err := newfile.Create(p, mode)
	if err != nil {
		return err
	}
	// Kept open until the batch is synced (syncAll), so the fsync needs no second
	// open; closed at once when nothing is to be synced.
	if r.cfg.Sync {
		b.open = append(b.open, out)
	} else {
		defer out.Close()
	}
	if _, err := out.Write(a.Data); err != nil {
		return err
	}
	// The mode exactly: the umask must not make a call file unreadable to
	// Asterisk.
	if err := newfile.SetMode(out, mode); err != nil {
		return err
	}
	if !a.NotBefore.IsZero() && a.NotBefore.After(r.now()) {
		f.NotBefore = a.NotBefore.UnixMilli()
		if err := os.Chtimes(p, a.NotBefore, a.NotBefore); err != nil {
			return err
		}
	}
	b.files = append(b.files, f)
	return nil
}

func checkArtefact(a channels.Artefact) error {
	if a.Dir == "" || !filepath.IsAbs(a.Dir) {
		return fmt.Errorf("artefact %q: target folder %q is not absolute", a.Name, a.Dir)
	}
	if a.Name == "" || a.Name == "." || a.Name == ".." || strings.ContainsAny(a.Name, "/\x00\n\r") || strings.HasPrefix(a.Name, ".") {
		return fmt.Errorf("artefact name %q is not a plain file name", a.Name)
	}
	return nil
}

// closeOpen closes the staged files kept open for syncing, and a spare
// manifest not written.
func (b *batch) closeOpen() {
	for _, f := range b.open {
		f.Close()
	}
	b.open = nil
	if b.manifest != nil {
		b.manifest.Close()
		b.manifest = nil
	}
}

// spareStage is a staging folder with an empty manifest, made between batches
// by a running serve for the next batch (named after the number it will get),
// as the S channel keeps a spare intent file: the folder's creation, the
// manifest's and the fsync of the staging folder's entry for it are then off
// the way of the next message. An empty manifest, like none, says the batch
// never reached the journal: a process that finds one of a dead owner's
// discards it, and the admin's count of staged batches leaves it out.
type spareStage struct {
	dir      string
	manifest *os.File
}

// makeSpareStage makes the spare staging folder for the next batch.
func (r *Router) makeSpareStage() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.spare != nil {
		return
	}
	dir := filepath.Join(r.l.stage, r.batchID(r.batchSeq+1))
	if err := os.Mkdir(dir, 0o770); err != nil {
		r.log.Warn("cannot make a spare staging folder", "dir", dir, "err", err)
		return
	}
	f, err := newfile.Create(filepath.Join(dir, manifestName), 0o640)
	if err == nil && r.cfg.Sync {
		err = syncDir(r.l.stage)
	}
	if err != nil {
		if f != nil {
			f.Close()
		}
		os.RemoveAll(dir)
		r.log.Warn("cannot make a spare staging folder", "dir", dir, "err", err)
		return
	}
	r.spare = &spareStage{dir: dir, manifest: f}
}

// dropSpareStage removes the spare staging folder, if any. r.mu is held.
func (r *Router) dropSpareStage() {
	if s := r.spare; s != nil {
		r.spare = nil
		s.manifest.Close()
		os.RemoveAll(s.dir)
	}
}

// discard throws a batch's staged files away: its journal write never happened.
func (r *Router) discard(b *batch) {
	b.closeOpen()
	if err := os.RemoveAll(b.dir); err != nil {
		r.log.Error("cannot remove staging folder", "dir", b.dir, "err", err)
	}
	b.files = nil
}

// publish renames the staged files of the given messages into place (in staging
// order: data files before the call file that uses them), throws away the rest and
// removes the staging folder. It returns the published paths per message.
//
// A target that already exists is never overwritten. If it holds the same bytes,
// this file was published before (a crash or a retry came in between) and the staged
// copy is dropped; if not, two writers chose one name, which unique names rule out,
// so the staged copy is quarantined for an admin. Either way the folder ends.
func (r *Router) publish(b *batch, keep func(id string) bool) map[string][]string {
	out, done := r.publishStart(b, keep)
	done()
	return out
}

// publishStart is publish up to the renames. The fsyncs of the folders they went
// to run meanwhile, so that what comes next (a channel placing its call once its
// parts are in place) need not wait for them; done waits for them and only then
// removes the staging folder, which recovery would need had they not reached the
// disk. Nothing may count a message as finished before done returns.
func (r *Router) publishStart(b *batch, keep func(id string) bool) (map[string][]string, func()) {
	out := map[string][]string{}
	touched := map[string]bool{}
	for _, f := range b.files {
		src := filepath.Join(b.dir, f.File)
		if !keep(f.ID) {
			os.Remove(src)
			continue
		}
		dst := filepath.Join(f.Dir, f.Name)
		err := renameNoReplace(src, dst)
		switch {
		case err == nil:
			out[f.ID] = append(out[f.ID], dst)
			touched[f.Dir] = true
		case errors.Is(err, os.ErrNotExist):
			// Published before a crash: the staged copy is already gone.
		case errors.Is(err, os.ErrExist) && sameContent(src, dst):
			r.log.Warn("artefact was already published; staged copy dropped", "id", f.ID, "target", dst)
			os.Remove(src)
		default:
			q := r.quarantine(src, f.Name, fmt.Sprintf("could not be published to %s: %v", dst, err))
			r.log.Error("publish failed; artefact quarantined", "id", f.ID, "target", dst, "quarantine", q, "err", err)
		}
	}
	var synced chan error
	if r.cfg.Sync && len(touched) > 0 {
		// After the renames, so Asterisk sees the files without waiting for this.
		dirs := make([]string, 0, len(touched))
		for d := range touched {
			dirs = append(dirs, d)
		}
		synced = make(chan error, 1)
		go func() { synced <- syncAll(nil, dirs...) }()
	}
	return out, func() {
		if synced != nil {
			if err := <-synced; err != nil {
				r.log.Warn("sync failed", "err", err)
			}
		}
		os.Remove(filepath.Join(b.dir, manifestName))
		if err := os.Remove(b.dir); err != nil && !errors.Is(err, os.ErrNotExist) {
			r.log.Warn("staging folder left behind", "dir", b.dir, "err", err)
		}
	}
}

// sameContent reports whether two files hold the same bytes.
func sameContent(a, b string) bool {
	x, _, errA := readCapped(a, maxArtefact)
	y, _, errB := readCapped(b, maxArtefact)
	return errA == nil && errB == nil && bytes.Equal(x, y)
}

// maxArtefact bounds what sameContent compares: a fax of many pages is the largest
// artefact a channel writes.
const maxArtefact = 256 << 20

// recoverStages settles the staged batches of a dead process (owner), or of every
// process that has no claim folder any more (owner "").
func (r *Router) recoverStages(ctx context.Context, owner string) error {
	entries, err := os.ReadDir(r.l.stage)
	if err != nil {
		return err
	}
	for _, e := range entries {
		name := e.Name()
		if strings.HasPrefix(name, ".") {
			continue
		}
		o := name[:max(strings.LastIndexByte(name, '.'), 0)]
		switch {
		case owner != "" && o != owner:
			continue
		case owner == "":
			// A folder whose owner's claim folder is gone: its owner died and was
			// adopted, or ended, without settling it.
			if o == r.owner || o == "" {
				continue
			}
			if _, err := os.Lstat(filepath.Join(r.l.claimed, o)); !errors.Is(err, os.ErrNotExist) {
				continue
			}
		}
		if err := r.settleStage(ctx, filepath.Join(r.l.stage, name)); err != nil {
			return err
		}
	}
	return nil
}

// settleStage decides a staged batch left by a process that is gone: the journal
// says whether its commit happened (Journal.Settle), and the files are published or
// thrown away accordingly. The messages themselves are in the dead process's claim
// folder; adopting them asks the journal about each one.
func (r *Router) settleStage(ctx context.Context, dir string) error {
	b := &batch{id: filepath.Base(dir), dir: dir}
	data, err := os.ReadFile(filepath.Join(dir, manifestName))
	if errors.Is(err, os.ErrNotExist) || err == nil && len(data) == 0 {
		// No manifest, or a spare's empty one (makeSpareStage): the batch never
		// reached the journal.
		r.discard(b)
		return nil
	}
	if err == nil {
		err = json.Unmarshal(data, &b.files)
	}
	readErr := err
	committed, err := r.journal.Settle(ctx, b.id)
	if err != nil {
		return fmt.Errorf("settle %s: %w", dir, err)
	}
	switch {
	case !committed:
		r.log.Info("staged batch of a dead process never committed; discarded", "batch", b.id, "files", len(b.files))
		r.discard(b)
	case readErr != nil:
		// Committed, yet its list of files cannot be read: an admin must look.
		dst := r.quarantine(dir, filepath.Base(dir), "committed batch with an unreadable staging manifest: "+readErr.Error())
		r.log.Error("committed batch with an unreadable staging manifest; folder quarantined", "dir", dir, "quarantine", dst, "err", readErr)
	default:
		published := r.publish(b, func(string) bool { return true })
		for id, files := range published {
			r.log.Info("committed delivery published after a failure", "id", id, "files", files)
		}
	}
	return nil
}

// backoff is the delay before attempt n+1: doubling from RetryMin up to RetryMax,
// with a little jitter so that a burst of failures does not retry in lockstep.
func (r *Router) backoff(attempts int) time.Duration {
	d := r.cfg.RetryMin
	for i := 1; i < attempts && d < r.cfg.RetryMax; i++ {
		d *= 2
	}
	d = min(d, r.cfg.RetryMax)
	jitter := time.Duration(int64(d) / 10)
	if jitter > 0 {
		d += time.Duration(r.now().UnixNano() % int64(jitter))
	}
	return d
}
