package router

import (
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

type stagedBatch struct {
	dir   string
	files []stagedFile
}

const manifestName = "manifest.json"

// stage writes every artefact of the batch (grouped by message id) into a fresh
// staging folder.
func (r *Router) stage(byID map[string][]channels.Artefact, order []string) (*stagedBatch, error) {
	r.batchSeq++
	sb := &stagedBatch{dir: filepath.Join(r.l.stage, fmt.Sprintf("%s.%d", r.owner, r.batchSeq))}
	if err := os.Mkdir(sb.dir, 0o770); err != nil {
		return nil, fmt.Errorf("stage: %w", err)
	}
	n := 0
	for _, id := range order {
		for _, a := range byID[id] {
			if err := checkArtefact(a); err != nil {
				sb.discard()
				return nil, fmt.Errorf("stage %s: %w", id, err)
			}
			n++
			f := stagedFile{ID: id, File: strconv.Itoa(n), Dir: a.Dir, Name: a.Name, Kind: a.Kind}
			mode := a.Mode
			if mode == 0 {
				mode = 0o644
			}
			p := filepath.Join(sb.dir, f.File)
			// Not synced one by one: a single syncfs below covers the whole batch
			// (one fsync per file made Sync cost two thirds of a drain's time).
			if err := writeNew(p, a.Data, mode, false); err != nil {
				sb.discard()
				return nil, fmt.Errorf("stage %s: %w", id, err)
			}
			// Set the mode explicitly: the umask must not make a call file unreadable
			// to Asterisk.
			if err := os.Chmod(p, mode); err != nil {
				sb.discard()
				return nil, fmt.Errorf("stage %s: %w", id, err)
			}
			if !a.NotBefore.IsZero() && a.NotBefore.After(r.now()) {
				f.NotBefore = a.NotBefore.UnixMilli()
				if err := os.Chtimes(p, a.NotBefore, a.NotBefore); err != nil {
					sb.discard()
					return nil, fmt.Errorf("stage %s: %w", id, err)
				}
			}
			sb.files = append(sb.files, f)
		}
	}
	data, err := json.Marshal(sb.files)
	if err != nil {
		sb.discard()
		return nil, fmt.Errorf("stage manifest: %w", err)
	}
	// Under a temporary name, then renamed: a crash mid-write must leave no manifest
	// (the batch never reached the journal), never an empty or truncated one.
	tmp := filepath.Join(sb.dir, "."+manifestName)
	if err := writeNew(tmp, data, 0o640, false); err != nil {
		sb.discard()
		return nil, fmt.Errorf("stage manifest: %w", err)
	}
	if r.cfg.Sync {
		// Every staged file and the manifest's content are durable before the
		// manifest gets its name.
		if err := syncFS(sb.dir); err != nil {
			sb.discard()
			return nil, fmt.Errorf("stage sync: %w", err)
		}
	}
	if err := os.Rename(tmp, filepath.Join(sb.dir, manifestName)); err != nil {
		sb.discard()
		return nil, fmt.Errorf("stage manifest: %w", err)
	}
	if r.cfg.Sync {
		if err := syncDir(sb.dir); err != nil {
			sb.discard()
			return nil, fmt.Errorf("stage sync: %w", err)
		}
	}
	return sb, nil
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

func (sb *stagedBatch) discard() {
	if sb != nil {
		os.RemoveAll(sb.dir)
	}
}

// publish renames the staged files of the given messages into place (in staging
// order: data files before the call file that uses them) and throws away the rest.
// It returns the published paths per message.
func (r *Router) publish(sb *stagedBatch, keep func(id string) bool) map[string][]string {
	out := map[string][]string{}
	touched := map[string]bool{}
	for _, f := range sb.files {
		src := filepath.Join(sb.dir, f.File)
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
		default:
			// Never overwrite: a clash means two writers chose one name, which unique
			// names rule out; keep the file staged for an admin rather than lose it.
			r.log.Error("publish failed; artefact left in staging", "id", f.ID, "file", src, "target", dst, "err", err)
			continue
		}
	}
	if r.cfg.Sync {
		for d := range touched {
			if err := syncDir(d); err != nil {
				r.log.Warn("sync failed", "dir", d, "err", err)
			}
		}
	}
	os.Remove(filepath.Join(sb.dir, manifestName))
	if err := os.Remove(sb.dir); err != nil {
		r.log.Warn("staging folder left behind", "dir", sb.dir, "err", err)
	}
	return out
}

// recoverStages finishes the staged batches of a dead process.
func (r *Router) recoverStages(ctx context.Context, owner string) error {
	entries, err := os.ReadDir(r.l.stage)
	if err != nil {
		return err
	}
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), owner+".") {
			if err := r.settleStage(ctx, filepath.Join(r.l.stage, e.Name())); err != nil {
				return err
			}
		}
	}
	return nil
}

// settleUncertain settles this process's own batches whose commit may or may not
// have happened.
func (r *Router) settleUncertain(ctx context.Context) error {
	for len(r.uncertain) > 0 {
		if err := r.settleStage(ctx, r.uncertain[0]); err != nil {
			return err
		}
		r.uncertain = r.uncertain[1:]
	}
	return nil
}

// settleStage publishes the files of messages the journal calls final (the commit
// happened; the publish step did not) and drops the others (those messages are
// still queued and will be redone).
func (r *Router) settleStage(ctx context.Context, dir string) error {
	data, err := os.ReadFile(filepath.Join(dir, manifestName))
	if err != nil {
		// No manifest: the batch never reached the journal.
		os.RemoveAll(dir)
		return nil
	}
	sb := &stagedBatch{dir: dir}
	if err := json.Unmarshal(data, &sb.files); err != nil {
		r.log.Error("unreadable staging manifest; left for an admin", "dir", dir, "err", err)
		return nil
	}
	ids := make([]string, 0, len(sb.files))
	for _, f := range sb.files {
		ids = append(ids, f.ID)
	}
	states, err := r.journal.States(ctx, ids)
	if err != nil {
		return fmt.Errorf("settle %s: %w", dir, err)
	}
	published := r.publish(sb, func(id string) bool { return states[id].Final() })
	for id, files := range published {
		r.log.Info("committed delivery published after a failure", "id", id, "files", files)
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
