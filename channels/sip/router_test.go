package sip_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"smsrouter/channels"
	"smsrouter/channels/sip"
	"smsrouter/channels/sms"
	"smsrouter/internal/quiet"
	"smsrouter/internal/testdb"
	"smsrouter/router"
)

// world is the real router on a temporary spool and SQLite, with the T channel
// talking to a fake PBX. Numbers: 5551000 → PJSIP/1000 (T), 5552000 →
// PJSIP/2000 (T); notices come from 9001.
type world struct {
	t       *testing.T
	pbx     *fakePBX
	spool   string
	work    string
	store   *router.Store
	journal *router.Journal
	cfg     router.Config

	r  *router.Router
	ch *sip.Channel
	// wrap, when set, wraps the T channel given to the router.
	wrap func(channels.Channel) channels.Channel
	// rp is what Wake calls: the router exists only after its channels.
	rp atomic.Pointer[router.Router]
}

func newWorld(t *testing.T, validity time.Duration) *world {
	t.Helper()
	return newWorldOn(t, testdb.SQLite(t), validity)
}

// newWorldOn is newWorld on the database dsn.
func newWorldOn(t *testing.T, dsn string, validity time.Duration) *world {
	t.Helper()
	w := &world{t: t, pbx: newPBX(t), spool: t.TempDir()}
	w.work = filepath.Join(w.spool, "smsrouter")
	store, err := router.OpenStore(dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	ctx := context.Background()
	if _, err := store.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	for _, e := range []router.Entry{{Number: "5551000", Letter: 'T', Extension: "PJSIP/1000"},
		{Number: "5552000", Letter: 'T', Extension: "PJSIP/2000"}} {
		if err := store.Set(ctx, e); err != nil {
			t.Fatal(err)
		}
	}
	w.store, w.journal = store, router.NewJournal(store)
	w.cfg = router.Config{Spool: w.spool, SMSCNumber: "9001", DefaultValidity: validity,
		RetryMin: 200 * time.Millisecond, RetryMax: time.Second}
	return w
}

// start builds a fresh channel and router, as a daemon start does.
func (w *world) start() {
	w.t.Helper()
	cfg := pbxConfig(w.pbx, w.t, func(number string) {
		if r := w.rp.Load(); r != nil {
			if _, err := r.Wake(number); err != nil {
				w.t.Errorf("wake %s: %v", number, err)
			}
		}
	})
	cfg.MarkerDir = filepath.Join(w.work, "sip-sent")
	w.ch = newChannel(w.t, cfg)
	var tch channels.Channel = w.ch
	if w.wrap != nil {
		tch = w.wrap(tch)
	}
	r, err := router.New(w.cfg, router.NewSQLDirectory(w.store), w.journal, map[byte]channels.Channel{'T': tch}, nil)
	if err != nil {
		w.t.Fatal(err)
	}
	w.r = r
	w.rp.Store(r)
	w.t.Cleanup(func() { r.Close() })
}

// stop ends the daemon: the channel (and the AMI session) and the router go.
func (w *world) stop() {
	w.rp.Store(nil)
	w.ch.Close()
	w.r.Close()
}

func (w *world) drain() *router.Summary {
	w.t.Helper()
	sum, err := w.r.Drain(context.Background())
	if err != nil {
		w.t.Fatal(err)
	}
	return sum
}

func (w *world) state(id string) router.State {
	w.t.Helper()
	rec, err := w.journal.Get(context.Background(), id)
	if err != nil {
		w.t.Fatal(err)
	}
	return rec.State
}

func (w *world) deferred() int {
	entries, _ := os.ReadDir(filepath.Join(w.work, "deferred"))
	return len(entries)
}

func TestOfflineMessageIsHeldThenSentOnceWhenReachable(t *testing.T) {
	w := newWorld(t, 2*time.Hour)
	// An hour's backoff: only the wake-up can bring the message out in time.
	w.cfg.RetryMin, w.cfg.RetryMax = time.Hour, time.Hour
	w.pbx.Set("1000", "Unreachable")
	w.start()
	id, err := w.r.Submit("5552000", "5551000", "Are you there?")
	if err != nil {
		t.Fatal(err)
	}
	sum := w.drain()
	if sum.Counts[router.StateDeferred] != 1 || w.state(id) != router.StateDeferred || w.deferred() != 1 {
		t.Fatalf("first pass %+v, state %s, deferred files %d", sum.Counts, w.state(id), w.deferred())
	}
	rec, _ := w.journal.Get(context.Background(), id)
	if rec.LastError != "held: 1000 has no reachable contact" {
		t.Fatalf("journal error %q", rec.LastError)
	}
	if n := len(w.pbx.Sent()); n != 0 {
		t.Fatalf("%d MessageSends to an offline phone", n)
	}
	if due := w.r.NextDue(); due.Before(time.Now().Add(30 * time.Minute)) {
		t.Fatalf("next attempt %v: the backoff should be an hour away", due)
	}

	// The softphone registers: the event wakes the message long before its
	// next backoff slot.
	w.pbx.Online("1000")
	waitFor(t, "wake", func() bool { due := w.r.NextDue(); return !due.IsZero() && !due.After(time.Now()) })
	sum = w.drain()
	if sum.Counts[router.StateDelivered] != 1 || w.state(id) != router.StateDelivered {
		t.Fatalf("after wake %+v, state %s", sum.Counts, w.state(id))
	}
	w.drain()
	got := w.pbx.Sent()
	if len(got) != 1 || got[0].To != "pjsip:1000" || got[0].Body != "Are you there?" ||
		got[0].From != `"SMS 5552000" <sip:5552000@pbx.example>` {
		t.Fatalf("sent %+v", got)
	}
}

// A T sender's notice goes out through the same channel: the notice is a message
// from the SMS Centre routed by the sender's letter.
func TestValidityExpiryNotifiesTSenderOverSIP(t *testing.T) {
	w := newWorld(t, 700*time.Millisecond)
	w.pbx.Set("1000", "Unreachable")
	w.pbx.Set("2000", "Reachable")
	w.start()
	id, err := w.r.Submit("5552000", "5551000", "hello")
	if err != nil {
		t.Fatal(err)
	}
	w.drain()
	if w.state(id) != router.StateDeferred {
		t.Fatalf("state %s", w.state(id))
	}
	time.Sleep(800 * time.Millisecond)
	sum := w.drain()
	if w.state(id) != router.StateExpired || sum.Counts[router.StateDelivered] != 1 {
		t.Fatalf("state %s, pass %+v", w.state(id), sum.Counts)
	}
	got := w.pbx.Sent()
	want := sentMsg{To: "pjsip:2000", From: `"SMS 9001" <sip:9001@pbx.example>`,
		Body: "Cannot deliver SMS to 5551000. Delivery failed until the message expired."}
	if len(got) != 1 || got[0].To != want.To || got[0].From != want.From || got[0].Body != want.Body {
		t.Fatalf("sent %+v\nwant %+v", got, want)
	}
}

func TestRestartWhileHeldStillDeliversOnce(t *testing.T) {
	w := newWorld(t, time.Hour)
	w.pbx.Set("1000", "")
	w.start()
	id, err := w.r.Submit("5552000", "5551000", "after the restart")
	if err != nil {
		t.Fatal(err)
	}
	w.drain()
	if w.state(id) != router.StateDeferred {
		t.Fatalf("state %s", w.state(id))
	}
	w.stop() // the daemon dies; the in-memory held map is gone

	w.start()
	w.pbx.Online("1000") // nobody here knows 1000 was holding anything
	// The deferred file persists; its backoff slot comes and the retry sends.
	waitFor(t, "backoff slot", func() bool { due := w.r.NextDue(); return !due.IsZero() && !due.After(time.Now()) })
	w.drain()
	w.drain()
	if w.state(id) != router.StateDelivered {
		t.Fatalf("state %s", w.state(id))
	}
	if got := w.pbx.Sent(); len(got) != 1 || got[0].Body != "after the restart" {
		t.Fatalf("sent %+v", got)
	}
}

// commitLost wraps the T channel: its first successful delivery is reported to the
// router as a failure, exactly what the router sees when the process dies (or the
// journal write fails) after MessageSend succeeded but before the commit.
type commitLost struct {
	channels.Channel
	once sync.Once
}

func (c *commitLost) Deliver(ctx context.Context, m channels.Message) (channels.Result, error) {
	res, err := c.Channel.Deliver(ctx, m)
	lost := false
	if err == nil {
		c.once.Do(func() { lost = true })
	}
	if lost {
		return channels.Result{}, errors.New("simulated crash before the journal commit")
	}
	return res, err
}

func TestCrashAfterSuccessBeforeCommitDoesNotSendTwice(t *testing.T) {
	w := newWorld(t, time.Hour)
	w.pbx.Set("1000", "Reachable")
	w.wrap = func(ch channels.Channel) channels.Channel { return &commitLost{Channel: ch} }
	w.start()
	id, err := w.r.Submit("5552000", "5551000", "exactly once")
	if err != nil {
		t.Fatal(err)
	}
	w.drain()
	if w.state(id) != router.StateDeferred || len(w.pbx.Sent()) != 1 {
		t.Fatalf("state %s, %d sends", w.state(id), len(w.pbx.Sent()))
	}
	// Restart too, so nothing in memory helps: only the marker on disk.
	w.stop()
	w.wrap = nil
	w.start()
	waitFor(t, "retry slot", func() bool { due := w.r.NextDue(); return !due.IsZero() && !due.After(time.Now()) })
	w.drain()
	if w.state(id) != router.StateDelivered {
		t.Fatalf("state %s", w.state(id))
	}
	rec, _ := w.journal.Get(context.Background(), id)
	if got := w.pbx.Sent(); len(got) != 1 {
		t.Fatalf("%d MessageSends, want 1 (detail %s)", len(got), rec.Detail)
	}
}

// TestQuietHoursDoNotHoldT: a SIP message rings nothing, so quiet hours do not
// hold it, while an S message to a phone in the same window waits.
func TestQuietHoursDoNotHoldT(t *testing.T) {
	w := newWorld(t, 2*time.Hour)
	now := time.Now().UTC()
	// A window around now, whatever the hour the test runs.
	w.cfg.Quiet = router.QuietHours{Zone: time.UTC,
		Default: quiet.Window{Start: (now.Hour() + 23) % 24 * 60, End: (now.Hour() + 2) % 24 * 60}}
	if err := w.store.Set(context.Background(), router.Entry{Number: "5553000", Letter: 'S', Extension: "PJSIP/3000"}); err != nil {
		t.Fatal(err)
	}
	w.pbx.Set("1000", "Reachable")
	w.start()
	sch, err := sms.New(sms.Config{Spool: w.spool, SMSCNumber: "9001"})
	if err != nil {
		t.Fatal(err)
	}
	w.r.Close()
	w.r, err = router.New(w.cfg, router.NewSQLDirectory(w.store), w.journal, map[byte]channels.Channel{'T': w.ch, 'S': sch}, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { w.r.Close() })
	tid, err := w.r.Submit("5552000", "5551000", "silent")
	if err != nil {
		t.Fatal(err)
	}
	sid, err := w.r.Submit("5552000", "5553000", "rings")
	if err != nil {
		t.Fatal(err)
	}
	w.drain()
	if w.state(tid) != router.StateDelivered || len(w.pbx.Sent()) != 1 {
		t.Fatalf("T: %s, %d sent", w.state(tid), len(w.pbx.Sent()))
	}
	rec, _ := w.journal.Get(context.Background(), sid)
	if rec.State != router.StateDeferred || !strings.HasPrefix(rec.LastError, "held: quiet hours until ") {
		t.Fatalf("S: %s %q", rec.State, rec.LastError)
	}
}
