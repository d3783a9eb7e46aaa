package main

// SIGHUP: serve reads its configuration again and checks it completely, with
// the same code as at start-up (prepare). A configuration that fails is
// refused with a log line saying why, and the one in force stays. One that
// passes is built beside the running one (database, sockets for new addresses,
// channels) and handed to the router, which takes it between two batches;
// only then are the old channels, servers, sockets and database closed.

import (
	"context"
	"fmt"
	"log/slog"
	"reflect"
	"strings"
	"time"

	"smsrouter/router"
)

// readPlan finds, reads and checks the configuration as serve's start did.
func (sv *service) readPlan() (*plan, configChoice, error) {
	choice, err := findConfig(sv.c.config, sv.e.configEnv, sv.e.systemConfig)
	if err != nil {
		return nil, choice, err
	}
	cfg, err := loadConfig(choice.path)
	if err != nil {
		return nil, choice, err
	}
	if sv.c.spool != "" {
		cfg.Spool = sv.c.spool
	}
	if sv.c.db != "" {
		cfg.DB = sv.c.db
	}
	p, err := prepare(cfg)
	return p, choice, err
}

func (sv *service) refuseReload(err error) {
	sv.e.log.Error("reload refused; the configuration in force stays", "why", err.Error())
}

// reload applies a new configuration to the running router.
func (sv *service) reload(ctx context.Context) {
	start := time.Now()
	sv.e.log.Info("reloading the configuration (SIGHUP)")
	p, choice, err := sv.readPlan()
	if err != nil {
		sv.refuseReload(err)
		return
	}
	old, s := sv.plan, sv.sys
	if err := movedQueue(old, p); err != nil {
		sv.refuseReload(err)
		return
	}

	// The database is reopened only when its DSN changed.
	store, journal, dir := s.store, s.journal, s.dir
	var newStore *router.Store
	var newJournal *router.Journal
	var newDir router.Directory
	if p.cfg.dsn() != old.cfg.dsn() {
		octx, cancel := context.WithTimeout(ctx, reloadOpenTimeout)
		newStore, err = openStore(octx, p.cfg, router.OpenExisting)
		cancel()
		if err != nil {
			sv.refuseReload(fmt.Errorf("the new database: %w", err))
			return
		}
		store, journal, dir = newStore, router.NewJournal(newStore), router.NewSQLDirectory(newStore)
		newJournal, newDir = journal, dir
	}
	undo := func() {
		sv.closeUnusedSockets(old)
		if newStore != nil {
			newStore.Close()
		}
	}
	if err := sv.openSockets(p); err != nil {
		undo()
		sv.refuseReload(err)
		return
	}
	chans, err := p.build(store)
	if err != nil {
		undo()
		sv.refuseReload(err)
		return
	}
	rc := p.rc
	rc.Observer = sv.e.observer
	// The mobile links are rebuilt only when what they are made of changed;
	// otherwise they keep their sessions with the network.
	links, linkChans := s.links, s.linkChans
	relink := linksChanged(old.cfg, p.cfg)
	if relink {
		if links, linkChans, err = buildLinks(p.cfg, rc, journal, sv.e.log); err != nil {
			closeChannels(chans, sv.e.log)
			undo()
			sv.refuseReload(err)
			return
		}
	}
	rc.Links = linkChans
	replaced, err := s.router.Reconfigure(ctx, rc, newDir, newJournal, chans)
	if err != nil {
		closeChannels(chans, sv.e.log)
		undo()
		sv.refuseReload(err)
		return
	}

	// In force: the router delivers with the new channels from its next batch.
	// The old channels' watchers and the jobs over the old database stop
	// before anything they use changes.
	sv.jobs()
	if relink {
		sv.stopLinks()
		if s.links != nil {
			for _, name := range s.links.names() {
				sv.m.RemoveProbe("link " + name)
			}
		}
		s.links, s.linkChans = links, linkChans
	}
	s.closeChannels = attachChannels(chans, s.router, sv.e.log)
	closeChannels(replaced, sv.e.log)
	oldStore := s.store
	s.cfg, s.chans, s.store, s.journal, s.dir = p.cfg, chans, store, journal, dir
	store.SetPool(dbPool(p.cfg, p.agiAddr != ""))
	sv.live.Store(store)
	sv.plan = p
	sv.jobs = sv.startJobs(ctx, s, p)
	if relink {
		sv.stopLinks = sv.startLinks(ctx, s, p)
	}
	sv.switchFront(ctx, p)
	sv.closeUnusedSockets(p)
	if newStore != nil {
		oldStore.Close() // nothing uses it any more: the old servers have stopped
	}
	sv.applyLog(old, p)
	sv.setAMIProbe(p)
	sv.e.log.Info("configuration reloaded", "config", choice.String(), "changed", changedSections(old.cfg, p.cfg),
		"took", time.Since(start).Round(time.Millisecond).String())
}

// reloadWaiting applies a new configuration while serve waits for the
// database (no router yet); it reports whether one was applied.
func (sv *service) reloadWaiting(ctx context.Context) bool {
	sv.e.log.Info("reloading the configuration (SIGHUP)")
	p, choice, err := sv.readPlan()
	if err != nil {
		sv.refuseReload(err)
		return false
	}
	old := sv.plan
	if err := movedQueue(old, p); err != nil {
		sv.refuseReload(err)
		return false
	}
	if err := sv.openSockets(p); err != nil {
		sv.closeUnusedSockets(old)
		sv.refuseReload(err)
		return false
	}
	sv.plan = p
	prev := sv.front
	sv.front = sv.startFront(ctx, p, nil)
	if err := prev.stop(); err != nil {
		sv.e.log.Warn("previous listeners ended with an error", "err", err)
	}
	sv.closeUnusedSockets(p)
	sv.applyLog(old, p)
	sv.setAMIProbe(p)
	sv.e.log.Info("configuration reloaded", "config", choice.String(), "changed", changedSections(old.cfg, p.cfg))
	return true
}

// linksChanged says whether the mobile links must be rebuilt: their own
// settings, the numbering plan, or what they record receipts in and write with.
func linksChanged(a, b Config) bool {
	return !reflect.DeepEqual(a.Links, b.Links) || !reflect.DeepEqual(a.Numbers, b.Numbers) ||
		a.dsn() != b.dsn() || a.Timezone != b.Timezone || !reflect.DeepEqual(a.Queue.Sync, b.Queue.Sync)
}

// movedQueue refuses another spool or work folder: the queue, the inbox the
// listeners write to and this process's claim folder live there.
func movedQueue(old, p *plan) error {
	if p.cfg.Spool != old.cfg.Spool || p.cfg.workDir() != old.cfg.workDir() {
		return fmt.Errorf("%w: spool %s and work_dir %s were %s and %s; the queue and this process's claim folder live there (systemctl restart smsrouter)",
			router.ErrRestartNeeded, p.cfg.Spool, p.cfg.workDir(), old.cfg.Spool, old.cfg.workDir())
	}
	return nil
}

// applyLog makes a changed [log] section take effect for every logger.
func (sv *service) applyLog(old, p *plan) {
	if old.cfg.Log == p.cfg.Log {
		return
	}
	sv.logs.set(newLogger(sv.e.stderr, p.cfg.Log, sv.c.verbose, slog.LevelDebug).Handler())
}

// changedSections names the top-level keys and sections whose values differ,
// for the reload's log line ("notices, queue"); "nothing" when none.
func changedSections(a, b Config) string {
	va, vb := reflect.ValueOf(a), reflect.ValueOf(b)
	t := va.Type()
	var out []string
	for i := range t.NumField() {
		if !reflect.DeepEqual(va.Field(i).Interface(), vb.Field(i).Interface()) {
			name, _, _ := strings.Cut(t.Field(i).Tag.Get("toml"), ",")
			out = append(out, name)
		}
	}
	if len(out) == 0 {
		return "nothing"
	}
	return strings.Join(out, ", ")
}
