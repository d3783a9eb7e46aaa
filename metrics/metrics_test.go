package metrics

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"smsrouter/asteriskconf/agi"
	"smsrouter/router"
	"smsrouter/router/dlr"
)

func scrape(t *testing.T, h http.Handler) (int, string) {
	t.Helper()
	srv := httptest.NewServer(h)
	defer srv.Close()
	resp, err := http.Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func TestMetricsExposition(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	stats := router.QueueStats{Incoming: 2, Deferred: 3, Held: 1, Staged: 1, Rejected: 4, Oldest: now.Add(-90 * time.Second),
		OldestDeferred: now.Add(-90 * time.Second), OldestIncoming: now.Add(-5 * time.Second), OldestRejected: now.Add(-time.Hour)}
	m := New(func() (router.QueueStats, error) { return stats, nil })
	m.SetReports(func(context.Context) (int, time.Time, error) { return 7, now.Add(-time.Minute), nil })
	m.now = func() time.Time { return now }
	m.AddProbe("db", func(context.Context) error { return nil })
	m.AddProbe("ami", func(context.Context) error { return errors.New("refused") })
	m.Fate(router.Outcome{Letter: "S", State: router.StateDelivered}, now.Add(-2*time.Second))
	m.Fate(router.Outcome{Letter: "S", State: router.StateDelivered}, now.Add(-20*time.Second))
	m.Fate(router.Outcome{State: router.StateRejected}, now)
	m.ObserveAGI("postsms", 3*time.Millisecond, nil)
	m.ObserveAGI("route", time.Second, errors.New("x"))
	m.ObserveAGI("route", time.Second, fmt.Errorf("read: %w", agi.ErrHangup))
	m.ObserveAGI("route", time.Second, context.DeadlineExceeded)
	m.ObserveAGI("route", time.Second, fmt.Errorf("greeting: %w", agi.ErrProtocol))
	m.ObserveAPI("submit", "ok")
	m.ObserveAPI("sendsms", "bad_charset")
	m.ObserveAPI("sendsms", "made up by a client")
	m.ObserveAPI("/etc/passwd", "ok")
	m.ObserveReport("kannel", dlr.Delivered, "sent")
	m.ObserveReport("kannel", dlr.Failed, "retry")
	m.ObserveReport("weird", dlr.Delivered|dlr.Failed, "exploded")
	m.ObservePrune(router.PruneResult{Messages: 3, Attempts: 5, Reports: 1}, 2)

	code, body := scrape(t, m.Handler())
	if code != 200 {
		t.Fatalf("status %d", code)
	}
	for _, want := range []string{
		`smsrouter_messages_total{letter="S",state="delivered"} 2`,
		`smsrouter_messages_total{letter="-",state="rejected"} 1`,
		`smsrouter_delivery_latency_seconds_bucket{le="2.5"} 1`,
		`smsrouter_delivery_latency_seconds_bucket{le="30"} 2`,
		`smsrouter_delivery_latency_seconds_count 2`,
		`smsrouter_queue_messages{where="incoming"} 2`,
		`smsrouter_queue_messages{where="deferred"} 3`,
		`smsrouter_queue_messages{where="held"} 1`,
		`smsrouter_queue_oldest_message_age_seconds 90`,
		`smsrouter_queue_messages{where="staged"} 1`,
		`smsrouter_queue_messages{where="rejected"} 4`,
		`smsrouter_queue_messages{where="claimed"} 0`,
		`smsrouter_queue_oldest_age_seconds{where="deferred"} 90`,
		`smsrouter_queue_oldest_age_seconds{where="incoming"} 5`,
		`smsrouter_queue_oldest_age_seconds{where="rejected"} 3600`,
		`smsrouter_queue_oldest_age_seconds{where="held"} 0`,
		`smsrouter_delivery_reports_pending 7`,
		`smsrouter_delivery_reports_oldest_pending_age_seconds 60`,
		`smsrouter_delivery_reports_total{kind="kannel",result="sent",type="delivered"} 1`,
		`smsrouter_delivery_reports_total{kind="kannel",result="retry",type="failed"} 1`,
		`smsrouter_delivery_reports_total{kind="other",result="other",type="other"} 1`,
		`smsrouter_journal_pruned_total{table="messages"} 3`,
		`smsrouter_journal_pruned_total{table="batches"} 2`,
		`smsrouter_agi_request_duration_seconds_count{result="hangup",script="route"} 1`,
		`smsrouter_agi_request_duration_seconds_count{result="timeout",script="route"} 1`,
		`smsrouter_agi_request_duration_seconds_count{result="protocol",script="route"} 1`,
		`smsrouter_http_requests_total{endpoint="sendsms",result="bad_charset"} 1`,
		`smsrouter_http_requests_total{endpoint="sendsms",result="other"} 1`,
		`smsrouter_http_requests_total{endpoint="other",result="ok"} 1`,
		`smsrouter_dependency_up{dependency="db"} 1`,
		`smsrouter_dependency_up{dependency="ami"} 0`,
		`smsrouter_agi_request_duration_seconds_count{result="ok",script="postsms"} 1`,
		`smsrouter_agi_request_duration_seconds_count{result="error",script="route"} 1`,
		`smsrouter_http_requests_total{endpoint="submit",result="ok"} 1`,
		`smsrouter_spool_readable 1`,
		`go_goroutines`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("missing %s", want)
		}
	}
}

func TestHealthz(t *testing.T) {
	ok := func() (router.QueueStats, error) { return router.QueueStats{}, nil }
	for _, c := range []struct {
		name  string
		stats func() (router.QueueStats, error)
		probe error
		code  int
		want  string
	}{
		{"healthy", ok, nil, 200, "ok\n"},
		{"db down", ok, errors.New("connection refused"), 503, "db: connection refused\n"},
		{"spool unreadable", func() (router.QueueStats, error) { return router.QueueStats{}, errors.New("permission denied") }, nil, 503, "spool: permission denied\n"},
	} {
		t.Run(c.name, func(t *testing.T) {
			m := New(c.stats)
			m.AddProbe("db", func(context.Context) error { return c.probe })
			code, body := scrape(t, m.Healthz())
			if code != c.code || body != c.want {
				t.Fatalf("got %d %q, want %d %q", code, body, c.code, c.want)
			}
		})
	}
}

func TestProbesHaveADeadline(t *testing.T) {
	m := New(nil)
	m.probeTTL = 50 * time.Millisecond
	m.AddProbe("hung", func(ctx context.Context) error { <-ctx.Done(); return ctx.Err() })
	start := time.Now()
	res := m.Check(context.Background())
	if !errors.Is(res["hung"], context.DeadlineExceeded) || time.Since(start) > 2*time.Second {
		t.Fatalf("%v after %v", res, time.Since(start))
	}
}
