package router

import (
	"context"
	"fmt"
	"time"

	"github.com/fsnotify/fsnotify"
)

// Serve drains the queue whenever a file lands in morx or deferred/ (inotify), when a deferred
// message or a waiting concatenation falls due, and every rescan interval anyway:
// inotify drops events when its queue (16,384 by default) overflows, so the
// periodic rescan is what guarantees that nothing waits forever. rescan is its
// interval; 0 uses Config.Rescan, which then follows Reconfigure.
func (r *Router) Serve(ctx context.Context, rescan time.Duration) error {
	every := func() time.Duration {
		if rescan > 0 {
			return rescan
		}
		r.mu.Lock()
		defer r.mu.Unlock()
		return r.cfg.Rescan
	}
	w, err := fsnotify.NewWatcher()
	if err != nil {
		return fmt.Errorf("serve: watch: %w", err)
	}
	defer w.Close()
	// morx and the inbox for new messages; deferred/ because `smsrouter retry`
	// (another process) renames messages there to be due now.
	for _, dir := range []string{r.l.morx, r.l.inbox, r.l.deferred} {
		if err := w.Add(dir); err != nil {
			return fmt.Errorf("serve: watch %s: %w", dir, err)
		}
	}
	interval := every()
	ticker := time.NewTicker(interval)
	defer ticker.Stop()
	due := time.NewTimer(0) // drain once at start: files may have arrived while we were down
	defer due.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case ev, ok := <-w.Events:
			if !ok {
				return fmt.Errorf("serve: watcher closed")
			}
			if ev.Op&(fsnotify.Create|fsnotify.Write|fsnotify.Rename) == 0 {
				continue
			}
			drainEvents(w)
		case err, ok := <-w.Errors:
			if !ok {
				return fmt.Errorf("serve: watcher closed")
			}
			r.log.Warn("spool watch error; rescanning", "err", err)
		case <-ticker.C:
		case <-due.C:
		case <-r.kick:
		}
		if _, err := r.Drain(ctx); err != nil && ctx.Err() == nil {
			r.log.Error("drain failed", "err", err)
		}
		r.makeSpareStage()
		if next := r.NextDue(); !next.IsZero() {
			due.Reset(max(time.Until(next), 10*time.Millisecond))
		}
		if d := every(); d != interval {
			interval = d
			ticker.Reset(d)
		}
	}
}

// drainEvents swallows the events already queued: one drain handles them all.
func drainEvents(w *fsnotify.Watcher) {
	for {
		select {
		case <-w.Events:
		default:
			return
		}
	}
}
