package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"smsrouter/asteriskconf/agi"
	"smsrouter/ingress/httpapi"
	"smsrouter/metrics"
	"smsrouter/router"
	"smsrouter/router/dlr"
)

// startOps starts what serve runs beside the router: the metrics endpoint, the
// HTTP API, the periodic reading of delivery evidence, the delivery-report
// dispatcher and journal retention (reports.go). Listening happens
// before it returns, so a port in use is a configuration error at start-up, not a
// silent gap later. wait returns once everything stopped after ctx ended.
func startOps(ctx context.Context, e *env, s *system, m *metrics.Metrics) (wait func() error, err error) {
	rc, err := s.cfg.routerConfig()
	if err != nil {
		return nil, err
	}
	admin, err := router.NewAdmin(rc, s.journal)
	if err != nil {
		return nil, err
	}
	m.SetStats(admin.Stats)
	reqs := dlr.NewStore(s.store)
	m.SetReports(reqs.Pending)
	m.AddProbe("db", func(ctx context.Context) error { return s.store.DB.PingContext(ctx) })
	retention, err := s.cfg.Journal.retention()
	if err != nil {
		return nil, err
	}
	runReports, err := startReports(ctx, e, s, m, rc.Location)
	if err != nil {
		return nil, err
	}
	if addr := s.cfg.SIP.AMIAddr; addr != "" && s.cfg.SIP.Username != "" {
		m.AddProbe("ami", func(ctx context.Context) error { _, err := amiBanner(ctx, addr); return err })
	}

	muxes := map[string]*http.ServeMux{}
	mux := func(addr string) (*http.ServeMux, error) {
		a, err := localAddr(addr)
		if err != nil {
			return nil, err
		}
		if muxes[a] == nil {
			muxes[a] = http.NewServeMux()
		}
		return muxes[a], nil
	}
	if s.cfg.Metrics.Listen != "" {
		mx, err := mux(s.cfg.Metrics.Listen)
		if err != nil {
			return nil, fmt.Errorf("[metrics] %w", err)
		}
		mx.Handle("/metrics", m.Handler())
		mx.Handle("/healthz", m.Healthz())
	}
	if s.cfg.HTTP.Listen != "" {
		api, err := newAPI(s.cfg, s.router.Inbox(), m, e, admin, reqs)
		if err != nil {
			return nil, err
		}
		mx, err := mux(s.cfg.HTTP.Listen)
		if err != nil {
			return nil, fmt.Errorf("[http] %w", err)
		}
		// Everything but the metrics' own paths: the API answers other paths
		// with its JSON 404.
		mx.Handle("/", api)
	}

	var wg sync.WaitGroup
	var mu sync.Mutex
	var errs []error
	var servers []*http.Server
	var capped []*httpapi.CapListener
	headerTimeout := s.cfg.HTTP.HeaderTimeout.Duration
	if headerTimeout <= 0 {
		headerTimeout = httpapi.DefaultHeaderTimeout
	}
	for addr, mx := range muxes {
		raw, err := net.Listen("tcp", addr)
		if err != nil {
			for _, srv := range servers {
				srv.Close()
			}
			return nil, fmt.Errorf("listen %s: %w", addr, err)
		}
		// net/http serves each connection in a goroutine of its own, so idle
		// clients do not delay others; the cap bounds how many it holds.
		l := httpapi.LimitListener(raw, s.cfg.HTTP.MaxConns, func() { m.ObserveConn("http", "refused") })
		capped = append(capped, l)
		srv := &http.Server{Handler: mx, ReadHeaderTimeout: headerTimeout, ReadTimeout: 15 * time.Second,
			WriteTimeout: 15 * time.Second, IdleTimeout: time.Minute, MaxHeaderBytes: 16 << 10,
			ConnState: httpapi.FirstBytesTimeouts(headerTimeout, func() { m.ObserveConn("http", "timeout") }),
			ErrorLog:  nil, BaseContext: func(net.Listener) context.Context { return ctx }}
		servers = append(servers, srv)
		e.log.Info("http listening", "addr", l.Addr().String())
		wg.Go(func() {
			if err := srv.Serve(l); err != nil && !errors.Is(err, http.ErrServerClosed) {
				mu.Lock()
				errs = append(errs, fmt.Errorf("http %s: %w", addr, err))
				mu.Unlock()
			}
		})
	}
	m.TrackOpen("http", func() int {
		n := 0
		for _, l := range capped {
			n += l.Open()
		}
		return n
	})
	wg.Go(func() {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		for _, srv := range servers {
			srv.Shutdown(sctx) //nolint:errcheck // best effort at exit
		}
	})
	wg.Go(func() { evidenceLoop(ctx, e, admin, s.cfg.Evidence) })
	wg.Go(runReports)
	wg.Go(func() { pruneLoop(ctx, e, s.journal, retention, s.cfg.Journal.pruneEvery(), m) })
	return func() error {
		wg.Wait()
		return errors.Join(errs...)
	}, nil
}

// newAPI builds the HTTP API over the inbox folder, queueing exactly like
// `smsrouter send`, and answering from the journal and the spool.
func newAPI(cfg Config, inbox string, m *metrics.Metrics, e *env, admin *router.Admin, reqs *dlr.Store) (*httpapi.API, error) {
	tokens, users, err := cfg.HTTP.credentials()
	if err != nil {
		return nil, err
	}
	loc, err := cfg.location()
	if err != nil {
		return nil, err
	}
	api, err := httpapi.New(httpapi.Config{
		Tokens: tokens, Users: users, Rate: cfg.HTTP.Rate, Burst: cfg.HTTP.Burst, MaxBody: cfg.HTTP.MaxBody,
		Submit:  submitWithReports(inbox, reqs, e),
		Journal: admin.Journal(), Locate: admin.Locate, Reports: reqs.Of, Location: loc, HideText: cfg.HTTP.HideText,
		Observe: m.ObserveAPI, Log: e.log,
	})
	if err != nil {
		return nil, fmt.Errorf("[http] %w", err)
	}
	return api, nil
}

// submitWithReports queues an API message; a delivery-report request is
// stored first, so that once the client hears "accepted" the request survives
// any crash (router/dlr).
func submitWithReports(inbox string, reqs *dlr.Store, e *env) func(ctx context.Context, m httpapi.Message) (string, error) {
	return func(ctx context.Context, m httpapi.Message) (string, error) {
		sub := router.Submission{From: m.From, To: m.To, Text: m.Text, Validity: m.Validity, UDH: m.UDH}
		stored := ""
		if m.Report != nil {
			sub.Accepted = func(id string) error {
				if err := reqs.Add(ctx, dlr.Request{ID: id, Kind: httpapi.KindKannel, Target: m.Report.URL, Mask: m.Report.Mask, Info: m.Report.Info}); err != nil {
					return err
				}
				stored = id
				return nil
			}
		}
		id, err := router.SubmitMessage(inbox, sub, time.Now())
		if err != nil {
			if stored != "" {
				if ferr := reqs.Forget(context.WithoutCancel(ctx), stored); ferr != nil {
					e.log.Warn("delivery report request of an unqueued message left for retention", "id", stored, "err", ferr)
				}
			}
			return "", err
		}
		if stored != "" {
			if err := reqs.Queued(context.WithoutCancel(ctx), id); err != nil {
				// The request waits for the message's journal row instead.
				e.log.Warn("delivery report: accepted report delayed", "id", id, "err", err)
			}
		}
		return id, nil
	}
}

// evidenceLoop records delivery evidence every cfg.Every until ctx ends.
func evidenceLoop(ctx context.Context, e *env, a *router.Admin, cfg EvidenceConfig) {
	every := cfg.Every.Duration
	if every <= 0 {
		every = time.Minute
	}
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			recordEvidence(ctx, e, a, cfg.Notify)
		}
	}
}

// recordEvidence reads outgoing_done once; a failure is logged, never fatal:
// evidence is an account of deliveries, not part of them.
func recordEvidence(ctx context.Context, e *env, a *router.Admin, notify bool) {
	sum, err := a.RecordEvidence(ctx, notify)
	if err != nil {
		e.log.Warn("delivery evidence not recorded", "err", err)
		return
	}
	if sum.Recorded > 0 {
		e.log.Info("delivery evidence recorded", "calls", sum.Recorded, "notices", len(sum.Notices), "unknown_ids", sum.Orphans)
	}
}

// drainEvidence is drain's last step: evidence for the calls that finished since
// the last run.
func drainEvidence(ctx context.Context, e *env, s *system) {
	rc, err := s.cfg.routerConfig()
	if err != nil {
		return
	}
	a, err := router.NewAdmin(rc, s.journal)
	if err != nil {
		return
	}
	recordEvidence(ctx, e, a, s.cfg.Evidence.Notify)
}

// amiBanner connects to an AMI port and reads its greeting ("Asterisk Call
// Manager/…"), which proves that something speaking AMI listens there without
// logging in.
func amiBanner(ctx context.Context, addr string) (string, error) {
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return "", err
	}
	defer conn.Close()
	deadline := time.Now().Add(3 * time.Second)
	if dl, ok := ctx.Deadline(); ok && dl.Before(deadline) {
		deadline = dl
	}
	conn.SetDeadline(deadline)
	line, err := bufio.NewReader(conn).ReadString('\n')
	if err != nil {
		return "", fmt.Errorf("no banner from %s: %w", addr, err)
	}
	line = strings.TrimSpace(line)
	if !strings.HasPrefix(line, "Asterisk Call Manager") {
		return line, fmt.Errorf("%s does not speak AMI (banner %q)", addr, line)
	}
	return line, nil
}

// instrumentAGI wraps FastAGI handlers so that each request's duration and
// result reach the metrics (smsrouter_agi_request_duration_seconds). observe nil
// returns the handlers unchanged.
func instrumentAGI(hs map[string]agi.Handler, observe func(script string, d time.Duration, err error)) map[string]agi.Handler {
	if observe == nil {
		return hs
	}
	out := make(map[string]agi.Handler, len(hs))
	for name, h := range hs {
		out[name] = agi.HandlerFunc(func(ctx context.Context, s *agi.Session) error {
			start := time.Now()
			err := h.ServeAGI(ctx, s)
			observe(name, time.Since(start), err)
			return err
		})
	}
	return out
}

// serveMetrics makes serve's metrics registry and hooks it into env, so the
// router (observer) and the FastAGI server (agiObserve) report to it.
func serveMetrics(e *env) *metrics.Metrics {
	m := metrics.New(nil)
	e.observer = m
	e.agiObserve = m.ObserveAGI
	e.conns = m
	return m
}
