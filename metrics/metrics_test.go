package metrics

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"smsrouter/router"
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
	stats := router.QueueStats{Incoming: 2, Deferred: 3, Held: 1, Oldest: now.Add(-90 * time.Second)}
	m := New(func() (router.QueueStats, error) { return stats, nil })
	m.now = func() time.Time { return now }
	m.AddProbe("db", func(context.Context) error { return nil })
	m.AddProbe("ami", func(context.Context) error { return errors.New("refused") })
	m.Fate(router.Outcome{Letter: "S", State: router.StateDelivered}, now.Add(-2*time.Second))
	m.Fate(router.Outcome{Letter: "S", State: router.StateDelivered}, now.Add(-20*time.Second))
	m.Fate(router.Outcome{State: router.StateRejected}, now)
	m.ObserveAGI("postsms", 3*time.Millisecond, nil)
	m.ObserveAGI("route", time.Second, errors.New("x"))
	m.ObserveAPI("v1", 202)

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
		`smsrouter_dependency_up{dependency="db"} 1`,
		`smsrouter_dependency_up{dependency="ami"} 0`,
		`smsrouter_agi_request_duration_seconds_count{result="ok",script="postsms"} 1`,
		`smsrouter_agi_request_duration_seconds_count{result="error",script="route"} 1`,
		`smsrouter_http_requests_total{code="Accepted",endpoint="v1"} 1`,
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
