package smpp

import (
	"smsrouter/internal/smsctest"

	"context"
	"log/slog"
	"testing"
	"time"
)

func testLogger(t testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(string(p[:len(p)-1]))
	return len(p), nil
}

// runClient makes a client for s with cfg's non-zero fields and runs it
// until the test ends.
func runClient(t testing.TB, s *smsctest.SMSC, cfg Config) *Client {
	t.Helper()
	cfg.Addr = s.Addr()
	if cfg.SystemID == "" {
		cfg.SystemID, cfg.Password = "smsrouter", "secret"
	}
	if cfg.Handler == nil && cfg.Bind != Transmitter {
		cfg.Handler = func(d *Delivery) { d.Ack(nil) }
	}
	if cfg.ReconnectMin == 0 {
		cfg.ReconnectMin, cfg.ReconnectMax = 50*time.Millisecond, 500*time.Millisecond
	}
	if cfg.Logger == nil {
		cfg.Logger = testLogger(t)
	}
	c, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { c.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	return c
}
