package main

import (
	"context"
	"errors"
	"fmt"
	"os"

	"smsrouter/asteriskconf/agi"
	"smsrouter/ingress/fastagi"
	"smsrouter/router"
)

// AGIConfig is the [agi] section: the FastAGI server the dialplan calls
// (chaninfo, postsms, route). serve runs it when listen is set; `smsrouter
// agi` runs it alone.
type AGIConfig struct {
	Listen       string   `toml:"listen"`        // host:port; empty: serve runs no FastAGI server
	MaxConns     int      `toml:"max_conns"`     // open connections; beyond it new ones are closed at once
	MaxHandlers  int      `toml:"max_handlers"`  // requests handled at once
	HandlerWait  duration `toml:"handler_wait"`  // how long a request waits for a free handler
	EnvTimeout   duration `toml:"env_timeout"`   // deadline for a connection's environment block
	RouteTimeout duration `toml:"route_timeout"` // how long route waits for the router's decision
	LookupCache  duration `toml:"lookup_cache"`  // chaninfo cache; 0: read the directory every time
}

// connMetrics is what the listeners report about their connections
// (*metrics.Metrics).
type connMetrics interface {
	ObserveConn(listener, reason string)
	TrackOpen(listener string, open func() int)
}

// newAGIServer builds the FastAGI server over the directory and journal; inbox
// is where postsms queues (router.InboxDir).
func newAGIServer(cfg Config, addr string, dir router.Directory, journal *router.Journal, inbox string, e *env) (*agi.Server, error) {
	h, err := fastagi.New(fastagi.Config{
		// Requests that arrive together share their directory queries.
		Directory: router.NewCoalescing(dir, 0), Journal: journal, Inbox: inbox,
		Results: router.CallResultsDir(cfg.workDir()), Sync: cfg.Queue.Sync == nil || *cfg.Queue.Sync,
		RouteTimeout: cfg.AGI.RouteTimeout.Duration, LookupCache: cfg.AGI.LookupCache.Duration, Log: e.log,
	})
	if err != nil {
		return nil, err
	}
	srv := &agi.Server{
		Addr: addr, Handlers: instrumentAGI(h.Handlers(), e.agiObserve), Logger: e.log,
		MaxConns: cfg.AGI.MaxConns, MaxHandlers: cfg.AGI.MaxHandlers,
		HandlerWait: cfg.AGI.HandlerWait.Duration, EnvTimeout: cfg.AGI.EnvTimeout.Duration,
	}
	if e.conns != nil {
		srv.Observe = func(ev agi.ConnEvent) { e.conns.ObserveConn("agi", ev.String()) }
		e.conns.TrackOpen("agi", func() int { return srv.Stats().Open })
	}
	return srv, nil
}

func listenAGI(ctx context.Context, e *env, srv *agi.Server) (wait func() error, err error) {
	l, err := agi.Listen(ctx, srv.Addr)
	if err != nil {
		return nil, err
	}
	e.log.Info("FastAGI listening", "addr", l.Addr().String())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, l) }()
	return func() error { return <-done }, nil
}

// cmdAGI is `smsrouter agi`: the FastAGI server alone, for a box where
// drain runs from the dialplan instead of serve.
func cmdAGI(ctx context.Context, e *env, c *common, listen string) int {
	cfg, store, err := c.openStore(ctx, e, router.OpenExisting)
	if err != nil {
		return fail(e, exitUsage, err)
	}
	defer store.Close()
	addr := listen
	if addr == "" {
		addr = cfg.AGI.Listen
	}
	if addr == "" {
		addr = agi.DefaultAddr
	}
	if cfg.Spool == "" {
		return fail(e, exitUsage, errors.New("no spool folder: set spool in the config or pass --spool"))
	}
	if st, err := os.Stat(cfg.Spool); err != nil || !st.IsDir() {
		return fail(e, exitUsage, fmt.Errorf("spool %s is not a folder (pass --spool)", cfg.Spool))
	}
	inbox := router.InboxDir(cfg.workDir())
	if err := os.MkdirAll(inbox, 0o770); err != nil {
		return fail(e, exitUsage, err)
	}
	store.SetPool(agiPool + 4)
	srv, err := newAGIServer(cfg, addr, router.NewSQLLetterDirectory(store), router.NewJournal(store), inbox, e)
	if err != nil {
		return fail(e, exitUsage, err)
	}
	wait, err := listenAGI(ctx, e, srv)
	if err != nil {
		return fail(e, exitUsage, err)
	}
	if err := wait(); err != nil {
		return fail(e, exitPartial, err)
	}
	return exitOK
}
