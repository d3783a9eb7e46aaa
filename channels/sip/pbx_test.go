package sip_test

import (
	"log/slog"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"smsrouter/asteriskconf/ami"
	"smsrouter/asteriskconf/ami/amitest"
	"smsrouter/channels/sip"
)

const (
	amiUser   = "smsrouter"
	amiSecret = "s3cret"
)

// fakePBX is the shared scripted Asterisk (amitest.PBX).
type fakePBX = amitest.PBX

func newPBX(t testing.TB) *fakePBX { return amitest.NewPBX(t, amiUser, amiSecret) }

type sentMsg = amitest.Sent

func pbxConfig(p *fakePBX, t testing.TB, wake func(string)) sip.Config {
	return sip.Config{
		AMI: ami.Config{Addr: p.Server.Addr, Username: amiUser, Secret: amiSecret, PingInterval: -1,
			ReconnectMin: 20 * time.Millisecond, ReconnectMax: 200 * time.Millisecond, Logger: slog.New(slog.DiscardHandler)},
		From:      `"SMS {{.From}}" <sip:{{.From}}@pbx.example>`,
		MarkerDir: filepath.Join(t.TempDir(), "sip-sent"),
		Wake:      wake,
		// Tests flip reachability without events too; do not let a cached answer hide it.
		ReachableTTL: time.Nanosecond,
	}
}

func newChannel(t testing.TB, cfg sip.Config) *sip.Channel {
	t.Helper()
	ch, err := sip.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ch.Close() })
	return ch
}

// waitFor polls cond for up to 5 s.
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// wakes records Wake calls.
type wakes struct {
	mu sync.Mutex
	n  []string
}

func (w *wakes) wake(number string) {
	w.mu.Lock()
	w.n = append(w.n, number)
	w.mu.Unlock()
}

func (w *wakes) got() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]string(nil), w.n...)
}
