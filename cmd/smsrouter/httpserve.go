package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"time"

	"smsrouter/asteriskconf/agi"
	"smsrouter/ingress/httpapi"
	"smsrouter/metrics"
	"smsrouter/router"
	"smsrouter/router/dlr"
)

// newAPI builds the HTTP API over the inbox folder, queueing exactly like
// `smsrouter send`, and answering from the journal and the spool. Before the
// database is open (serve waiting for it) admin has no journal and reqs is
// nil: messages are queued all the same, lookups answer 503 and a message that
// asks for a delivery report is refused, since its request could not be stored.
func newAPI(cfg Config, inbox string, m *metrics.Metrics, e *env, admin *router.Admin, reqs *dlr.Store) (*httpapi.API, error) {
	tokens, users, err := cfg.HTTP.credentials()
	if err != nil {
		return nil, err
	}
	loc, err := cfg.location()
	if err != nil {
		return nil, err
	}
	hc := httpapi.Config{
		Tokens: tokens, Users: users, Rate: cfg.HTTP.Rate, Burst: cfg.HTTP.Burst, MaxBody: cfg.HTTP.MaxBody,
		Submit:   submitWithReports(inbox, reqs, e),
		Location: loc, HideText: cfg.HTTP.HideText,
		Observe: m.ObserveAPI, Log: e.log,
	}
	if j := admin.Journal(); j != nil && reqs != nil {
		hc.Journal, hc.Locate, hc.Reports = j, admin.Locate, reqs.Of
	}
	api, err := httpapi.New(hc)
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
		if m.Report != nil && reqs == nil {
			return "", errors.New("the database is not open yet: a delivery report request cannot be stored")
		}
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
		e.log.Info("delivery evidence recorded", "calls", sum.Recorded, "notices", len(sum.Notices), "reports", len(sum.Reports),
			"carried_on", sum.Retried, "unknown_ids", sum.Orphans, "waiting_for_result", sum.Waiting)
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
