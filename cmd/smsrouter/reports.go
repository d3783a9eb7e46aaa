package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"

	"smsrouter/ingress/httpapi"
	"smsrouter/metrics"
	"smsrouter/router"
	"smsrouter/router/dlr"
)

// DLRConfig is [dlr]: how serve delivers the delivery reports clients ask for
// with dlr-url (router/dlr).
type DLRConfig struct {
	Poll     duration `toml:"poll"`      // how often the journal is looked at; default 1s
	Timeout  duration `toml:"timeout"`   // one callback at most; default 10s
	RetryMin duration `toml:"retry_min"` // first wait after a failed callback; doubles up to retry_max; default 5s
	RetryMax duration `toml:"retry_max"` // default 10m
	GiveUp   duration `toml:"give_up"`   // a report failing this long is given up, with the reason kept; default 24h
	Parallel int      `toml:"parallel"`  // callbacks at once; default 4 (each holds a database connection)
}

// startReports runs serve's delivery-report dispatcher until ctx ends.
func startReports(ctx context.Context, e *env, s *system, m *metrics.Metrics, loc *time.Location) (run func(), err error) {
	host, _ := os.Hostname()
	c := s.cfg.DLR
	d, err := dlr.NewDispatcher(s.store, s.journal, dlr.Config{
		Poll: c.Poll.Duration, Timeout: c.Timeout.Duration, RetryMin: c.RetryMin.Duration, RetryMax: c.RetryMax.Duration,
		GiveUp: c.GiveUp.Duration, Parallel: c.Parallel, Owner: fmt.Sprintf("%s/%d", host, os.Getpid()),
		Senders: map[string]dlr.Sender{httpapi.KindKannel: httpapi.NewCaller(loc)},
		Log:     e.log, Observe: m.ObserveReport, Alive: leaseHolderAlive(host),
	})
	if err != nil {
		return nil, fmt.Errorf("[dlr] %w", err)
	}
	return func() { d.Run(ctx) }, nil
}

// leaseHolderAlive answers for leases taken on this host ("host/pid"): the
// process runs if signal 0 reaches it. A lease of another host is assumed
// alive; it runs out by itself.
func leaseHolderAlive(host string) func(owner string) bool {
	return func(owner string) bool {
		h, p, ok := strings.Cut(owner, "/")
		pid, err := strconv.Atoi(p)
		if !ok || err != nil || h != host || pid <= 0 {
			return true
		}
		err = syscall.Kill(pid, 0)
		return err == nil || errors.Is(err, syscall.EPERM)
	}
}

// pruneLoop applies [journal] retention now and every prune_every until ctx
// ends, and forgets old batch ids (their own rule, router.BatchRetention). A
// failure is logged and tried again next time: pruning is housekeeping.
func pruneLoop(ctx context.Context, e *env, j *router.Journal, retention, every time.Duration, m *metrics.Metrics) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		now := time.Now()
		res, err := j.Prune(ctx, now.Add(-retention), 0, false)
		if err != nil && ctx.Err() == nil {
			e.log.Warn("journal retention: prune failed; trying again later", "err", err)
		}
		batches, berr := j.PruneBatches(ctx, now)
		if berr != nil && ctx.Err() == nil {
			e.log.Warn("journal retention: batch ids not pruned", "err", berr)
		}
		m.ObservePrune(res, batches)
		if res.Messages > 0 || res.Reports > 0 || batches > 0 {
			e.log.Info("journal retention applied", "removed", res.String(), "batch_ids", batches, "older_than", now.Add(-retention).Format(time.RFC3339))
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
