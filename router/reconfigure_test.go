package router

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"smsrouter/channels"
	"smsrouter/channels/sms"
)

// gateDirectory holds the first LookupMany until the test opens the gate, so
// that a test can act while a batch is in the middle of its work.
type gateDirectory struct {
	Directory
	once    sync.Once
	entered chan struct{}
	open    chan struct{}
}

func (g *gateDirectory) LookupMany(ctx context.Context, ns []string) (map[string]Entry, error) {
	first := false
	g.once.Do(func() { first = true })
	if first {
		close(g.entered)
		<-g.open
	}
	return g.Directory.LookupMany(ctx, ns)
}

// TestReconfigureBetweenBatches: a new notice text handed over while a batch
// is in the middle of its work takes effect with the next batch, never within
// one; Reconfigure returns only once it is in force, with the channels it
// replaced; every message gets exactly one notice.
func TestReconfigureBetweenBatches(t *testing.T) {
	// 30 notices to one sender: more than the loop guard lets through by default.
	// A pass starts with a quarter of BatchSize: a first batch of 10.
	rg := newRig(t, testdbSQLite(t), func(c *Config) { c.BatchSize = 40; c.Guards.PairLimit = -1 })
	rg.set("5550001", 'S', "PJSIP/5550001")
	gate := &gateDirectory{Directory: rg.dir, entered: make(chan struct{}), open: make(chan struct{})}
	rg.dir = gate
	now := rg.clock.now()
	for i := range 30 {
		rg.morx(fmt.Sprintf("m.%02d", i), morxAt(now, "5550001", "5559999", fmt.Sprintf("to nobody %d", i)))
	}
	drained := make(chan *Summary, 1)
	go func() { drained <- rg.drain() }()
	<-gate.entered // the first batch is waiting for its directory answer

	cfg := rg.r.cfg
	cfg.Notices.Unknown = "NEW {{.To}} is unknown"
	newS, err := sms.New(sms.Config{Spool: cfg.Spool, SMSCNumber: cfg.SMSCNumber, Location: time.UTC})
	if err != nil {
		t.Fatal(err)
	}
	type result struct {
		old map[byte]channels.Channel
		err error
	}
	reconfigured := make(chan result, 1)
	go func() {
		old, err := rg.r.Reconfigure(context.Background(), cfg, nil, nil, map[byte]channels.Channel{'S': newS})
		reconfigured <- result{old, err}
	}()
	select {
	case res := <-reconfigured:
		t.Fatalf("Reconfigure returned (%v) while a batch was in progress", res.err)
	case <-time.After(200 * time.Millisecond):
	}
	close(gate.open)
	res := <-reconfigured
	if res.err != nil {
		t.Fatal(res.err)
	}
	if _, ok := res.old['S']; !ok || res.old['S'] == channels.Channel(newS) {
		t.Fatalf("Reconfigure returned %v, want the replaced S channel", res.old)
	}
	<-drained
	rg.drain() // the notices queued by the last batches

	var oldText, newText int
	for _, text := range rg.delivered()["5550001"] {
		switch {
		case strings.HasPrefix(text, "NEW 5559999"):
			newText++
		case strings.Contains(text, "Number does not exist"):
			oldText++
		default:
			t.Errorf("unexpected delivery %q", text)
		}
	}
	// The batch in progress (10 messages) finished with the old text; every
	// later one used the new text.
	if oldText != 10 || newText != 20 {
		t.Fatalf("notices: %d with the old text, %d with the new; want 10 and 20", oldText, newText)
	}
	rg.assertIdle()
}

// TestReconfigureRefusals: what Reconfigure refuses changes nothing.
func TestReconfigureRefusals(t *testing.T) {
	rg := newRig(t, testdbSQLite(t), nil)
	base := rg.r.cfg
	for _, tc := range []struct {
		name   string
		mutate func(*Config)
		want   string
	}{
		{"a notice that does not parse", func(c *Config) { c.Notices.Unknown = "{{.To" }, "notice unknown"},
		{"a notice with a field it never gets", func(c *Config) { c.Notices.Expired = "{{.Sender}} expired" }, "notice expired"},
		{"a bad SMSC number", func(c *Config) { c.SMSCNumber = "nine" }, "SMSC number"},
		{"another spool", func(c *Config) { c.Spool = t.TempDir() }, "restart needed"},
		{"another work folder", func(c *Config) { c.WorkDir = t.TempDir() }, "restart needed"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := base
			tc.mutate(&cfg)
			_, err := rg.r.Reconfigure(context.Background(), cfg, nil, nil, nil)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err %v, want one saying %q", err, tc.want)
			}
			if err := cfg.Validate(); tc.want != "restart needed" && err == nil {
				t.Errorf("Validate passes what Reconfigure refuses")
			}
			if rg.r.cfg.Notices != base.Notices || rg.r.channels['S'] == nil {
				t.Fatal("a refused configuration changed the router")
			}
		})
	}
}

// TestReconfigureKeepsUndecidedBatches: a reload while a batch is undecided
// (its journal write failed and the database is gone) keeps the batch, which
// is settled and published as before once the journal answers; only a new
// journal is refused, since the old one alone can say whether the batch was
// committed.
func TestReconfigureKeepsUndecidedBatches(t *testing.T) {
	store, f := flakyStore(t)
	rg := rigOn(t, store, nil)
	rg.set("5551001", 'S', "PJSIP/1001")
	now := rg.clock.now()
	rg.morx("a.1", morxAt(now, "5550001", "5551001", "first"))
	f.commit.Store(commitLostReply)
	f.thenDown.Store(true)
	rg.drain()
	if len(rg.r.uncertain) != 1 {
		t.Fatalf("want one undecided batch, have %d", len(rg.r.uncertain))
	}

	other := NewJournal(migratedStore(t, testdbSQLite(t)))
	if _, err := rg.r.Reconfigure(context.Background(), rg.r.cfg, nil, other, rg.r.channels); err == nil || !strings.Contains(err.Error(), "old database") {
		t.Fatalf("a new journal with an undecided batch: %v, want a refusal", err)
	}
	cfg := rg.r.cfg
	cfg.RetryMin = 2 * time.Second
	if _, err := rg.r.Reconfigure(context.Background(), cfg, nil, nil, rg.r.channels); err != nil {
		t.Fatalf("a new queue setting with an undecided batch: %v", err)
	}
	if len(rg.r.uncertain) != 1 || len(rg.files("smsrouter/stage")) != 1 {
		t.Fatal("the reload lost the undecided batch")
	}
	f.down.Store(false)
	rg.drain()
	if got := rg.deliveredTexts(); got["first"] != 1 {
		t.Fatalf("delivered %v, want \"first\" exactly once", got)
	}
	rg.assertIdle()
}

// TestReconfigureWaitsNoLongerThanCtx: a reload that cannot get between two
// batches before ctx ends is withdrawn, and never applied later.
func TestReconfigureWaitsNoLongerThanCtx(t *testing.T) {
	rg := newRig(t, testdbSQLite(t), nil)
	rg.r.mu.Lock() // a pass that does not end
	cfg := rg.r.cfg
	cfg.Notices.Unknown = "late"
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	_, err := rg.r.Reconfigure(ctx, cfg, nil, nil, rg.r.channels)
	rg.r.mu.Unlock()
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err %v, want the deadline", err)
	}
	rg.drain()
	if rg.r.cfg.Notices.Unknown == "late" {
		t.Fatal("a withdrawn reconfiguration was applied")
	}
}

// sizingDirectory records how many numbers each batch asked for.
type sizingDirectory struct {
	Directory
	mu    sync.Mutex
	sizes []int
}

func (d *sizingDirectory) LookupMany(ctx context.Context, ns []string) (map[string]Entry, error) {
	d.mu.Lock()
	d.sizes = append(d.sizes, len(ns))
	d.mu.Unlock()
	return d.Directory.LookupMany(ctx, ns)
}

// A pass's batches start at a quarter of BatchSize and double while they come
// back full; the next pass starts small again.
func TestBatchesGrowWithTheBacklog(t *testing.T) {
	rg := newRig(t, testdbSQLite(t), func(c *Config) { c.BatchSize = 8 })
	sizing := &sizingDirectory{Directory: rg.dir}
	rg.dir = sizing
	now := rg.clock.now()
	queue := func(from, n int) {
		for i := from; i < from+n; i++ {
			to := fmt.Sprintf("55510%02d", i)
			rg.set(to, 'S', "PJSIP/"+to)
			rg.morx(fmt.Sprintf("m.%02d", i), morxAt(now, "5559999", to, "hello"))
		}
	}
	queue(0, 30)
	if sum := rg.drain(); sum.Counts[StateDelivered] != 30 {
		t.Fatalf("first pass %v", sum.Counts)
	}
	queue(30, 5)
	if sum := rg.drain(); sum.Counts[StateDelivered] != 5 {
		t.Fatalf("second pass %v", sum.Counts)
	}
	if want := []int{2, 4, 8, 8, 8, 2, 3}; !slices.Equal(sizing.sizes, want) {
		t.Fatalf("batches asked for %v numbers, want %v", sizing.sizes, want)
	}
}
