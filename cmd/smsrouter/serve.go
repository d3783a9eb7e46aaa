package main

// `smsrouter serve` as a service: one log line when it starts and one when it
// stops; it starts while the database is down and waits for it (the FastAGI
// and HTTP listeners answer meanwhile, messages wait in the spool); SIGHUP
// reloads the configuration without losing or repeating a message.
//
// What runs is kept as generations: the router is made once (its claim folder
// lives as long as the process), while the listeners' servers, the spool
// watchers and the evidence reader are replaced on every reload, each new one
// started before the old one is stopped. The listening sockets themselves are
// kept across a reload unless their address changed (socket.go).

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"smsrouter/channels"
	"smsrouter/ingress/console"
	"smsrouter/ingress/httpapi"
	"smsrouter/metrics"
	"smsrouter/router"
	"smsrouter/router/dlr"
)

// Waiting for the database at start-up: the first retry after dbRetryMin, each
// further one twice as late, up to dbRetryMax.
const (
	dbRetryMin = time.Second
	dbRetryMax = 30 * time.Second
	// reloadOpenTimeout bounds opening a reloaded configuration's database.
	reloadOpenTimeout = 15 * time.Second
)

// service is one run of `smsrouter serve`.
type service struct {
	e    *env
	c    *common
	m    *metrics.Metrics
	logs *swapHandler // e.log's handler, replaced when [log] changes

	plan  *plan         // the configuration in force
	store *router.Store // nil while waiting for the database
	sys   *system       // nil until routing starts

	dbMu  sync.Mutex
	dbErr error // why there is no database yet, for the db probe
	// live is the store in force, for the db probe (which runs on scrapes,
	// beside a reload that replaces it).
	live atomic.Pointer[router.Store]

	sockets map[string]*socket // by address
	front   *front             // the servers on the sockets
	jobs    func()             // stops the spool watchers and the evidence reader
	// stopLinks stops the mobile links; they are restarted by a reload only
	// when their own settings changed (a session with an operator is not
	// dropped for a new notice text).
	stopLinks func()
	handled   atomic.Int64 // messages that reached a state since start
	// consoleSessions are the web console's logins, kept across reloads.
	consoleSessions *console.Sessions
	started         time.Time
}

func cmdServe(ctx context.Context, e *env, c *common) int {
	// First of all: until then SIGHUP would end the process.
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)

	cfg, err := c.load(e)
	if err != nil {
		return fail(e, exitUsage, err)
	}
	p, err := prepare(cfg)
	if err != nil {
		return fail(e, exitUsage, err)
	}
	sv := &service{e: e, c: c, plan: p, sockets: map[string]*socket{}, started: time.Now(), consoleSessions: console.NewSessions()}
	sv.logs = newSwapHandler(e.log.Handler())
	e.log = slog.New(sv.logs)
	sv.m = serveMetrics(e)
	e.observer = countFates{e.observer, &sv.handled}
	sv.m.AddProbe("db", sv.probeDB)
	// The queue gauges read the spool alone, which a reload never moves: set
	// before anything listens (SetStats must not race a scrape), they show
	// what waits while the database is down too.
	if a, err := router.NewAdmin(p.rc, nil); err == nil {
		sv.m.SetStats(a.Stats)
	}
	sv.m.SetReports(sv.pendingReports)
	sv.setAMIProbe(p)
	e.log.Info("smsrouter starting", sv.startAttrs(p)...)

	code, why := sv.run(ctx, hup)
	sv.shutdown()
	e.log.Info("smsrouter stopped", "why", why, "handled", sv.handled.Load(),
		"uptime", time.Since(sv.started).Round(time.Second).String(), "exit", code)
	return code
}

// startAttrs are the start line's fields: what runs, where, and how it was
// configured.
func (sv *service) startAttrs(p *plan) []any {
	off := func(a string) string {
		if a == "" {
			return "off"
		}
		return a
	}
	return []any{"version", version, "config", sv.c.choice.String(), "spool", p.cfg.Spool,
		"work_dir", p.cfg.workDir(), "db", router.RedactDSN(p.cfg.dsn()),
		"fastagi", off(p.agiAddr), "http", off(p.httpAddr), "metrics", off(p.metricsAddr), "pid", os.Getpid()}
}

// run serves until ctx ends or something fails, and returns the exit code and
// why it stopped.
func (sv *service) run(ctx context.Context, hup <-chan os.Signal) (code int, why string) {
	stopped := func() string {
		// A signal's cause says which ("terminated signal received").
		if err := context.Cause(ctx); err != nil && err != context.Canceled { //nolint:errorlint // the bare cancel is what is left out
			return err.Error()
		}
		return "stopped"
	}
	inbox := router.InboxDir(sv.plan.cfg.workDir())
	if err := os.MkdirAll(inbox, 0o770); err != nil {
		fail(sv.e, exitUsage, err)
		return exitUsage, "cannot create the inbox: " + err.Error()
	}
	if err := sv.openSockets(sv.plan); err != nil {
		fail(sv.e, exitUsage, err)
		return exitUsage, err.Error()
	}
	// Wait for the database; a reload meanwhile may name another one. The
	// listeners' sockets are open (a port in use stopped us above), but
	// their servers start only once it is clear whether the database answers:
	// a healthy start never shows a client the waiting servers, which refuse
	// what needs the database.
	if err := sv.waitForDatabase(ctx, hup); err != nil {
		if ctx.Err() != nil {
			return exitOK, stopped()
		}
		fail(sv.e, exitUsage, err)
		return exitUsage, err.Error()
	}
	s, err := newSystem(sv.e, sv.plan, sv.store, true)
	if err != nil {
		sv.store = nil // newSystem closed it
		fail(sv.e, exitUsage, err)
		return exitUsage, err.Error()
	}
	sv.sys = s
	sv.switchFront(ctx, sv.plan)
	sv.jobs = sv.startJobs(ctx, s, sv.plan)
	sv.stopLinks = sv.startLinks(ctx, s, sv.plan)
	sv.e.log.Info("serving", "db", s.store.String(), "letters", letters(s.chans))

	rctx, stopRouter := context.WithCancel(ctx)
	defer stopRouter()
	served := make(chan error, 1)
	go func() { served <- s.router.Serve(rctx, 0) }()
	for {
		select {
		case <-ctx.Done():
			if err := <-served; err != nil {
				fail(sv.e, exitPartial, err)
				return exitPartial, stopped() + "; " + err.Error()
			}
			if err := sv.front.stop(); err != nil {
				fail(sv.e, exitPartial, err)
				return exitPartial, stopped() + "; " + err.Error()
			}
			return exitOK, stopped()
		case err := <-served:
			if err == nil { // only when ctx ended, seen above on the next turn
				<-ctx.Done()
				return exitOK, stopped()
			}
			fail(sv.e, exitPartial, err)
			return exitPartial, "the spool watch failed: " + err.Error()
		case <-hup:
			sv.reload(ctx)
		}
	}
}

// shutdown stops whatever is still running, in the reverse order of start.
func (sv *service) shutdown() {
	if sv.stopLinks != nil {
		sv.stopLinks()
	}
	if sv.jobs != nil {
		sv.jobs()
	}
	if sv.front != nil {
		sv.front.stop() //nolint:errcheck // reported by run when it mattered
	}
	for addr, s := range sv.sockets {
		s.close()
		delete(sv.sockets, addr)
	}
	if sv.sys != nil {
		sv.sys.close()
	} else if sv.store != nil {
		sv.store.Close()
	}
}

// letters lists the service letters with a channel, e.g. "CFSTV".
func letters(chans map[byte]channels.Channel) string {
	var b strings.Builder
	for _, l := range router.Letters {
		if _, ok := chans[byte(l)]; ok {
			b.WriteRune(l)
		}
	}
	return b.String()
}

// waitForDatabase opens the configured database, retrying with backoff while
// it does not answer, and returns an error only for a definite answer that
// waiting cannot change (no such database, no schema) or when ctx ends.
func (sv *service) waitForDatabase(ctx context.Context, hup <-chan os.Signal) error {
	delay := dbRetryMin
	for attempt := 1; ; attempt++ {
		store, err := openStore(ctx, sv.plan.cfg, router.OpenExisting)
		if err == nil {
			store.SetPool(dbPool(sv.plan.cfg, sv.plan.agiAddr != ""))
			sv.store = store
			sv.live.Store(store)
			sv.setDBErr(nil)
			if attempt > 1 {
				sv.e.log.Info("database answers; routing starts", "db", store.String(), "attempts", attempt)
			}
			return nil
		}
		if !errors.Is(err, errDatabaseDown) {
			return err
		}
		sv.setDBErr(fmt.Errorf("waiting for the database: %w", err))
		if sv.front == nil {
			sv.front = sv.startFront(ctx, sv.plan, nil)
		}
		// Every attempt while the delay grows, then one line per capped delay.
		sv.e.log.Warn("waiting for the database; messages wait in the spool", "err", err, "attempt", attempt, "retry_in", delay.String())
		t := time.NewTimer(delay)
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-t.C:
			delay = min(2*delay, dbRetryMax)
		case <-hup:
			t.Stop()
			// A new configuration may name a database that answers: try at once.
			if sv.reloadWaiting(ctx) {
				delay = dbRetryMin
			}
		}
	}
}

func (sv *service) setDBErr(err error) {
	sv.dbMu.Lock()
	defer sv.dbMu.Unlock()
	sv.dbErr = err
}

// probeDB is the "db" dependency of /metrics and /healthz.
func (sv *service) probeDB(ctx context.Context) error {
	sv.dbMu.Lock()
	err := sv.dbErr
	sv.dbMu.Unlock()
	if err != nil {
		return err
	}
	store := sv.live.Load()
	if store == nil {
		return errors.New("not open yet")
	}
	return store.DB.PingContext(ctx)
}

// pendingReports is the source of the pending delivery-report gauges: the
// database in force, which a reload may replace.
func (sv *service) pendingReports(ctx context.Context) (int, time.Time, error) {
	store := sv.live.Load()
	if store == nil {
		return 0, time.Time{}, errors.New("the database is not open yet")
	}
	return dlr.NewStore(store).Pending(ctx)
}

// setAMIProbe reports the AMI dependency while [sip] is configured.
func (sv *service) setAMIProbe(p *plan) {
	if p.sip == nil {
		sv.m.RemoveProbe("ami")
		return
	}
	addr := p.sip.AMI.Addr
	sv.m.AddProbe("ami", func(ctx context.Context) error { _, err := amiBanner(ctx, addr); return err })
}

// countFates counts every fate for the stop line, and passes it on.
type countFates struct {
	next router.Observer
	n    *atomic.Int64
}

func (c countFates) Fate(o router.Outcome, received time.Time) {
	c.n.Add(1)
	if c.next != nil {
		c.next.Fate(o, received)
	}
}

// openSockets listens on every address p names that is not open yet.
// Nothing is closed here: on failure the sockets opened by this call are
// closed again, and the caller keeps what it had.
func (sv *service) openSockets(p *plan) error {
	var opened []string
	for _, addr := range p.addrs() {
		if _, ok := sv.sockets[addr]; ok {
			continue
		}
		s, err := listenSocket(addr)
		if err != nil {
			for _, a := range opened {
				sv.sockets[a].close()
				delete(sv.sockets, a)
			}
			return fmt.Errorf("listen %s: %w", addr, err)
		}
		sv.sockets[addr] = s
		opened = append(opened, addr)
		sv.e.log.Info("listening", "addr", s.addr().String(), "for", p.listenerNames(addr))
	}
	return nil
}

// closeUnusedSockets closes the sockets p no longer names.
func (sv *service) closeUnusedSockets(p *plan) {
	want := map[string]bool{}
	for _, a := range p.addrs() {
		want[a] = true
	}
	for addr, s := range sv.sockets {
		if !want[addr] {
			s.close()
			delete(sv.sockets, addr)
			sv.e.log.Info("stopped listening", "addr", addr)
		}
	}
}

// listenerNames says what listens on addr: "fastagi", "http", "metrics".
func (p *plan) listenerNames(addr string) string {
	var names []string
	for _, l := range []struct{ name, addr string }{{"fastagi", p.agiAddr}, {"http", p.httpAddr}, {"metrics", p.metricsAddr}} {
		if l.addr == addr {
			names = append(names, l.name)
		}
	}
	return strings.Join(names, ",")
}

// addrs are the addresses serve listens on for p: FastAGI, and the HTTP API
// and the metrics, which may share one.
func (p *plan) addrs() []string {
	var out []string
	seen := map[string]bool{}
	for _, a := range []string{p.agiAddr, p.httpAddr, p.metricsAddr} {
		if a != "" && !seen[a] {
			seen[a] = true
			out = append(out, a)
		}
	}
	return out
}

// front is one generation of the servers on serve's sockets.
type front struct {
	cancel context.CancelFunc
	wg     sync.WaitGroup
	http   []*http.Server
	mu     sync.Mutex
	errs   []error
	once   sync.Once
	err    error
}

// startFront starts the FastAGI and HTTP servers p configures on the open
// sockets. Without a database yet (dir nil), chaninfo answers E (directory
// unreachable), postsms and the HTTP API queue into the inbox, where the
// router finds the messages once it runs, and route answers PENDING.
func (sv *service) startFront(ctx context.Context, p *plan, s *system) *front {
	gctx, cancel := context.WithCancel(ctx)
	f := &front{cancel: cancel}
	e := sv.e
	inbox := router.InboxDir(p.cfg.workDir())
	var dir router.Directory = waitingDirectory{sv}
	var journal *router.Journal
	var reqs *dlr.Store
	if s != nil {
		// chaninfo needs the letter and Extension only.
		dir, journal, reqs = router.NewSQLLetterDirectory(s.store), s.journal, dlr.NewStore(s.store)
	}
	if p.agiAddr != "" {
		srv, err := newAGIServer(p.cfg, p.agiAddr, dir, journal, inbox, e)
		if err != nil {
			f.fail(err) // not expected: prepare checked the settings
		} else {
			s := sv.sockets[p.agiAddr]
			f.wg.Go(func() {
				if err := srv.Serve(gctx, s.lease()); err != nil {
					f.fail(err)
				}
			})
		}
	}

	muxes := map[string]*http.ServeMux{}
	mux := func(addr string) *http.ServeMux {
		if muxes[addr] == nil {
			muxes[addr] = http.NewServeMux()
		}
		return muxes[addr]
	}
	if p.metricsAddr != "" {
		mx := mux(p.metricsAddr)
		mx.Handle("/metrics", sv.m.Handler())
		mx.Handle("/healthz", sv.m.Healthz())
	}
	if p.httpAddr != "" {
		admin, err := router.NewAdmin(p.rc, journal)
		var api *httpapi.API
		if err == nil {
			api, err = newAPI(p.cfg, inbox, sv.m, e, admin, reqs)
		}
		if err != nil {
			f.fail(err) // not expected: prepare checked the settings
		} else {
			// Everything but the metrics' own paths: the API answers other
			// paths with its JSON 404.
			mux(p.httpAddr).Handle("/", api)
		}
		if p.cfg.Console.Enabled {
			mux(p.httpAddr).Handle(console.Prefix, sv.newConsole(p, s))
		}
	}
	headerTimeout := p.cfg.HTTP.HeaderTimeout.Duration
	if headerTimeout <= 0 {
		headerTimeout = httpapi.DefaultHeaderTimeout
	}
	var capped []*httpapi.CapListener
	for addr, mx := range muxes {
		s := sv.sockets[addr]
		// net/http serves each connection in a goroutine of its own, so idle
		// clients do not delay others; the cap bounds how many it holds.
		l := httpapi.LimitListener(s.lease(), p.cfg.HTTP.MaxConns, func() { sv.m.ObserveConn("http", "refused") })
		capped = append(capped, l)
		srv := &http.Server{Handler: mx, ReadHeaderTimeout: headerTimeout, ReadTimeout: 15 * time.Second,
			WriteTimeout: 15 * time.Second, IdleTimeout: time.Minute, MaxHeaderBytes: 16 << 10,
			ConnState:   httpapi.FirstBytesTimeouts(headerTimeout, func() { sv.m.ObserveConn("http", "timeout") }),
			BaseContext: func(net.Listener) context.Context { return gctx }}
		f.http = append(f.http, srv)
		f.wg.Go(func() {
			if err := srv.Serve(l); err != nil && !errors.Is(err, http.ErrServerClosed) {
				f.fail(fmt.Errorf("http %s: %w", addr, err))
			}
		})
	}
	sv.m.TrackOpen("http", func() int {
		n := 0
		for _, l := range capped {
			n += l.Open()
		}
		return n
	})
	return f
}

func (f *front) fail(err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.errs = append(f.errs, err)
}

// stop lets the servers finish what they are doing (the FastAGI server its
// grace period, HTTP five seconds) and returns their errors.
func (f *front) stop() error {
	f.once.Do(func() {
		f.cancel()
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		for _, srv := range f.http {
			srv.Shutdown(sctx) //nolint:errcheck // best effort at exit
		}
		f.wg.Wait()
		f.mu.Lock()
		f.err = errors.Join(f.errs...)
		f.mu.Unlock()
	})
	return f.err
}

// switchFront starts p's servers over the running system and then stops the
// previous ones, which finish their requests meanwhile; returns once the old
// ones have stopped.
func (sv *service) switchFront(ctx context.Context, p *plan) {
	old := sv.front
	sv.front = sv.startFront(ctx, p, sv.sys)
	if old != nil {
		if err := old.stop(); err != nil {
			sv.e.log.Warn("previous listeners ended with an error", "err", err)
		}
	}
}

// startJobs runs what serve does beside routing for s: the channels' spool
// watchers and the reading of delivery evidence. The returned function stops
// them and waits.
func (sv *service) startJobs(ctx context.Context, s *system, p *plan) func() {
	jctx, cancel := context.WithCancel(ctx)
	waitWatch := watchSpool(jctx, sv.e, s.chans)
	var wg sync.WaitGroup
	admin, err := router.NewAdmin(p.rc, s.journal)
	if err != nil {
		sv.e.log.Warn("delivery evidence not read", "err", err) // not expected: prepare checked p.rc
	} else {
		wg.Go(func() { evidenceLoop(jctx, sv.e, admin, p.cfg.Evidence) })
	}
	if run, err := startReports(jctx, sv.e, s, sv.m, p.rc.Location); err != nil {
		sv.e.log.Warn("delivery reports not sent", "err", err) // not expected: the senders are fixed
	} else {
		wg.Go(run)
	}
	// What the goroutines use is taken now: a reload changes s once they
	// have stopped.
	journal := s.journal
	if retention, err := p.cfg.Journal.retention(); err == nil { // prepare checked it
		wg.Go(func() { pruneLoop(jctx, sv.e, journal, retention, p.cfg.Journal.pruneEvery(), sv.m) })
	}
	return func() {
		cancel()
		waitWatch()
		wg.Wait()
	}
}

// startLinks runs s's mobile links beside the router, their state in the
// metrics and /healthz; the returned function stops them and waits.
func (sv *service) startLinks(ctx context.Context, s *system, p *plan) func() {
	if s.links == nil || len(s.links.list) == 0 {
		return func() {}
	}
	admin, err := router.NewAdmin(p.rc, s.journal)
	if err != nil {
		sv.e.log.Warn("mobile links not run", "err", err) // not expected: prepare checked p.rc
		return func() {}
	}
	lctx, cancel := context.WithCancel(ctx)
	s.links.track(sv.m)
	wait := s.links.run(lctx, admin)
	return func() {
		cancel()
		wait()
	}
}

// waitingDirectory is the directory while serve waits for the database:
// unreachable, so chaninfo answers E and nobody is told "no such number".
type waitingDirectory struct{ sv *service }

func (w waitingDirectory) err() error {
	w.sv.dbMu.Lock()
	defer w.sv.dbMu.Unlock()
	if w.sv.dbErr != nil {
		return fmt.Errorf("%w: %v", router.ErrDirectoryUnavailable, w.sv.dbErr)
	}
	return fmt.Errorf("%w: the database is not open yet", router.ErrDirectoryUnavailable)
}

func (w waitingDirectory) Lookup(context.Context, string) (router.Entry, error) {
	return router.Entry{}, w.err()
}

func (w waitingDirectory) LookupMany(context.Context, []string) (map[string]router.Entry, error) {
	return nil, w.err()
}
