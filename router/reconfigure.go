package router

import (
	"context"
	"errors"
	"fmt"
	"text/template"

	"smsrouter/channels"
)

// reconfig is a configuration handed to Reconfigure, waiting for the gap
// between two batches.
type reconfig struct {
	cfg     Config
	notices map[string]*template.Template
	dir     Directory
	journal *Journal
	chans   map[byte]channels.Channel

	done chan error                // told once, when applied or refused
	old  map[byte]channels.Channel // the channels replaced, set before done
}

// ErrRestartNeeded wraps a Reconfigure refused because the change cannot be
// made to a running router (another spool or work folder).
var ErrRestartNeeded = errors.New("restart needed")

// Reconfigure hands a running router a new configuration, new channels and,
// when not nil, a new directory and journal (another database). They take
// effect between two batches: the batch at hand, if any, finishes with what it
// started with, so every message is delivered under one configuration and
// nothing is lost or repeated. The claim folder, the messages waiting in the
// spool and any undecided batches are kept: an undecided batch is settled as
// before and publishes what it staged. Reconfigure returns once the change is
// in force, with the channels it replaced, which the caller closes (no
// delivery uses them any more).
//
// It refuses, changing nothing, a configuration New would refuse, another
// spool or work folder (ErrRestartNeeded: the claim folder lives there), and a
// new journal while a batch is undecided in the old one, which alone can say
// whether that batch was committed. ctx bounds the wait for the batch at hand.
func (r *Router) Reconfigure(ctx context.Context, cfg Config, dir Directory, journal *Journal, chans map[byte]channels.Channel) (replaced map[byte]channels.Channel, err error) {
	cfg, notices, err := cfg.compile()
	if err != nil {
		return nil, err
	}
	// The layout never changes after New, so it is read without the lock.
	if l := newLayout(cfg.Spool, cfg.WorkDir); l != r.l {
		return nil, fmt.Errorf("%w: the spool (%s) or work folder (%s) changed from %s, %s; the claim folder and the queue live there",
			ErrRestartNeeded, cfg.Spool, l.work, r.l.morx, r.l.work)
	}
	r.reconfMu.Lock()
	defer r.reconfMu.Unlock()
	p := &reconfig{cfg: cfg, notices: notices, dir: dir, journal: journal, chans: chans, done: make(chan error, 1)}
	r.pending.Store(p)
	// A running pass takes it at its next batch; otherwise it is applied as
	// soon as the router is free. Serve is woken so that a new rescan interval
	// counts from now.
	go func() {
		r.mu.Lock()
		defer r.mu.Unlock()
		r.applyPending()
	}()
	select {
	case r.kick <- struct{}{}:
	default:
	}
	select {
	case err := <-p.done:
		return p.old, err
	case <-ctx.Done():
		if r.pending.CompareAndSwap(p, nil) {
			return nil, fmt.Errorf("reconfigure: %w", ctx.Err())
		}
		// Taken already: it is being applied.
		err := <-p.done
		return p.old, err
	}
}

// applyPending puts a waiting configuration in force. r.mu must be held, and
// no batch may be in progress.
func (r *Router) applyPending() {
	p := r.pending.Swap(nil)
	if p == nil {
		return
	}
	if p.journal != nil && p.journal != r.journal && len(r.uncertain) > 0 {
		p.done <- fmt.Errorf("%d batches wait for the old database to say whether they were committed; reload again once it answers (the log says when they are settled)", len(r.uncertain))
		return
	}
	p.old = r.channels
	r.cfg, r.notices, r.channels = p.cfg, p.notices, p.chans
	if p.dir != nil {
		r.dir = p.dir
	}
	if p.journal != nil {
		r.journal = p.journal
	}
	r.loc.Store(p.cfg.Location)
	p.done <- nil
}
