package main

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"strings"
	"time"

	"smsrouter/asteriskconf/agi"
	"smsrouter/ingress/httpapi"
	"smsrouter/metrics"
	"smsrouter/router"
)

// newAPI builds the send API over the inbox folder, queueing exactly like
// `smsrouter send`.
func newAPI(cfg Config, inbox string, m *metrics.Metrics, e *env) (*httpapi.API, error) {
	tokens, users, err := cfg.HTTP.credentials()
	if err != nil {
		return nil, err
	}
	api, err := httpapi.New(httpapi.Config{
		Tokens: tokens, Users: users, Rate: cfg.HTTP.Rate, Burst: cfg.HTTP.Burst, MaxBody: cfg.HTTP.MaxBody,
		Submit: func(from, to, text string) (string, error) {
			return router.SubmitTo(inbox, from, to, text, time.Now())
		},
		Observe: m.ObserveAPI, Log: e.log,
	})
	if err != nil {
		return nil, fmt.Errorf("[http] %w", err)
	}
	return api, nil
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
