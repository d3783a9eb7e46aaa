package router

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"smsrouter/channels"
)

// fateLog is an Observer that remembers what it was told.
type fateLog struct {
	mu    sync.Mutex
	fates []State
}

func (f *fateLog) Fate(o Outcome, received time.Time) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if received.IsZero() {
		panic("observer told no receive time")
	}
	f.fates = append(f.fates, o.State)
}

func (rg *rig) admin() *Admin {
	rg.t.Helper()
	a, err := NewAdmin(rg.r.cfg, rg.journal)
	if err != nil {
		rg.t.Fatal(err)
	}
	a.now = rg.clock.now
	return a
}

// deferThree queues three messages while the directory is down, so all three wait
// in deferred/, and returns their ids by recipient.
func deferThree(t *testing.T, rg *rig) map[string]string {
	t.Helper()
	for _, n := range []string{"5550001", "5551001", "5551002", "5551003"} {
		rg.set(n, 'S', "PJSIP/"+n)
	}
	real := rg.dir
	rg.dir = downDirectory{}
	ids := map[string]string{}
	for _, da := range []string{"5551001", "5551002", "5551003"} {
		id, err := rg.r.Submit("5550001", da, "to "+da)
		if err != nil {
			t.Fatal(err)
		}
		ids[da] = id
	}
	if sum := rg.drain(); sum.Counts[StateDeferred] != 3 {
		t.Fatalf("want 3 deferred, got %+v", sum.Counts)
	}
	rg.dir = real
	return ids
}

func TestAdminRetryNowAndDrop(t *testing.T) {
	eachDB(t, func(t *testing.T, dsn string) {
		obs := &fateLog{}
		rg := newRig(t, dsn, func(c *Config) { c.Observer = obs })
		ids := deferThree(t, rg)
		a := rg.admin()
		ctx := context.Background()

		st, err := a.Stats()
		if err != nil || st.Deferred != 3 || st.Incoming != 0 || st.Oldest.IsZero() {
			t.Fatalf("stats %+v %v", st, err)
		}

		// Retry one: only it goes out at the next drain.
		done, err := a.RetryNow([]string{ids["5551001"]})
		if err != nil || len(done) != 1 {
			t.Fatalf("RetryNow: %v %v", done, err)
		}
		if sum := rg.drain(); sum.Counts[StateDelivered] != 1 || len(rg.files("smsrouter/deferred")) != 2 {
			t.Fatalf("after retry: %+v, deferred %v", sum.Counts, rg.files("smsrouter/deferred"))
		}
		if _, err := a.RetryNow([]string{ids["5551001"]}); !errors.Is(err, ErrNotWaiting) {
			t.Fatalf("retrying a delivered message: %v", err)
		}

		// Drop with a notice: journal says dropped, the sender is told.
		rec, err := a.Drop(ctx, ids["5551002"], "", true)
		if err != nil || rec.State != StateDropped {
			t.Fatalf("Drop: %+v %v", rec, err)
		}
		got, err := rg.journal.Get(ctx, ids["5551002"])
		if err != nil || got.State != StateDropped || !strings.Contains(got.Detail, "notice_id") || got.OA != "5550001" {
			t.Fatalf("journal after drop: %+v %v", got, err)
		}
		// Drop silently.
		if _, err := a.Drop(ctx, ids["5551003"], "spam", false); err != nil {
			t.Fatal(err)
		}
		got, _ = rg.journal.Get(ctx, ids["5551003"])
		if got.State != StateDropped || got.LastError != "spam" || strings.Contains(got.Detail, "notice_id") {
			t.Fatalf("silent drop: %+v", got)
		}
		if _, err := a.Drop(ctx, ids["5551003"], "", false); !errors.Is(err, ErrNotWaiting) {
			t.Fatalf("second drop: %v", err)
		}
		if _, err := a.Drop(ctx, "../../etc", "", false); err == nil {
			t.Fatal("a path as id was accepted")
		}
		sum := rg.drain() // the notice
		if sum.Counts[StateDelivered] != 1 {
			t.Fatalf("notice: %+v", sum.Counts)
		}
		if texts := rg.delivered()["5550001"]; len(texts) != 1 || !strings.Contains(texts[0], "5551002") {
			t.Fatalf("notice text %q", texts)
		}
		rg.assertIdle()
		if st, _ := a.Stats(); st != (QueueStats{}) {
			t.Fatalf("stats after all: %+v", st)
		}
		obs.mu.Lock()
		defer obs.mu.Unlock()
		if len(obs.fates) != 5 { // 3 deferred, 1 delivered, 1 notice delivered
			t.Fatalf("observer saw %v", obs.fates)
		}
	})
}

func TestRetryAllDeferred(t *testing.T) {
	rg := newRig(t, testdbSQLite(t), nil)
	deferThree(t, rg)
	done, err := rg.admin().RetryNow(nil)
	if err != nil || len(done) != 3 {
		t.Fatalf("RetryNow(nil): %v %v", done, err)
	}
	if sum := rg.drain(); sum.Counts[StateDelivered] != 3 {
		t.Fatalf("%+v", sum.Counts)
	}
}

func fixture(t *testing.T, rel string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "testdata", "asterisk", rel))
	if err != nil {
		t.Fatalf("fixture: %v", err)
	}
	return b
}

func TestParseCallOutcomeFixtures(t *testing.T) {
	const id = "1795239855000-0123456789"
	for _, c := range []struct {
		file, status string
		attempts     int
	}{
		{"call/spool-behaviour/expire-1795239855.call", "Expired", 2},
		{"call/spool-behaviour/future-1795239855.call", "Completed", 1},
		{"call/spool-behaviour/invalid-1795239855.call", "Failed", 0},
		{"call/voice/archived-voice-wav8k-1795239831201942069.call", "Completed", 1},
		{"call/voice/archived-voice-missing_file-1795239849848335786.call", "Completed", 1},
	} {
		data := fixture(t, c.file)
		if _, ok := ParseCallOutcome("x", data); ok {
			t.Errorf("%s: a call file without %s is not ours", c.file, channels.CallVar)
		}
		ours := append([]byte("Setvar: "+channels.CallVar+"="+id+"\n"), data...)
		o, ok := ParseCallOutcome("x", ours)
		if !ok || o.ID != id || o.Status != c.status || o.Attempts != c.attempts {
			t.Errorf("%s: got %+v %v, want %s after %d attempts", c.file, o, ok, c.status, c.attempts)
		}
	}
	// Still in outgoing/ (no Status) or a hostile id: not evidence.
	if _, ok := ParseCallOutcome("x", []byte("Channel: Local/1@x\nSetvar: "+channels.CallVar+"="+id+"\n")); ok {
		t.Error("a call file without Status counted")
	}
	if _, ok := ParseCallOutcome("x", []byte("Setvar: "+channels.CallVar+"=../x\nStatus: Expired\n")); ok {
		t.Error("an invalid id was accepted")
	}
}

// archive moves the call file the S channel placed into outgoing_done with what
// Asterisk appends when the call ends (taken from a captured archive).
func archive(t *testing.T, rg *rig, tail string) string {
	t.Helper()
	calls := rg.files("outgoing")
	if len(calls) != 1 {
		t.Fatalf("call files: %v", calls)
	}
	src := filepath.Join(rg.spool, "outgoing", calls[0])
	data, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	done := filepath.Join(rg.spool, "outgoing_done")
	os.MkdirAll(done, 0o755)
	if err := os.WriteFile(filepath.Join(done, calls[0]), append(data, tail...), 0o644); err != nil {
		t.Fatal(err)
	}
	os.Remove(src)
	return calls[0]
}

// tailOf is the bookkeeping Asterisk appended to a captured archive: everything
// from its first StartRetry (or Status) line on.
func tailOf(t *testing.T, rel string) string {
	s := string(fixture(t, rel))
	i := strings.Index(s, "\nStartRetry:")
	if i < 0 {
		i = strings.Index(s, "\nStatus:")
	}
	return s[i:]
}

func TestRecordEvidence(t *testing.T) {
	eachDB(t, func(t *testing.T, dsn string) {
		// No retry of an unanswered call: its outcome is final at once (the
		// retries are TestUnansweredCallRetriedByRule's).
		noRetry := func(c *Config) { c.Retry = RetryRules{channels.CauseNoAnswer: {}} }
		rg := newRig(t, dsn, noRetry)
		rg.set("5550001", 'S', "PJSIP/5550001")
		rg.set("5551001", 'S', "PJSIP/1001")
		ctx := context.Background()
		id, _ := rg.r.Submit("5550001", "5551001", "hello")
		rg.drain()
		file := archive(t, rg, tailOf(t, "call/spool-behaviour/expire-1795239855.call"))
		a := rg.admin()

		sum, err := a.RecordEvidence(ctx, true)
		if err != nil || sum.Recorded != 1 || len(sum.Notices) != 1 {
			t.Fatalf("first pass: %+v %v", sum, err)
		}
		rec, _ := rg.journal.Get(ctx, id)
		calls := CallsOf(rec)
		if rec.State != StateDelivered || len(calls) != 1 || calls[0].Status != "Expired" || calls[0].File != file ||
			calls[0].Attempts != 2 || !strings.Contains(rec.LastError, "not answered") {
			t.Fatalf("journal: %+v calls %+v", rec, calls)
		}
		// Idempotent: nothing new, no second notice.
		if sum, err := a.RecordEvidence(ctx, true); err != nil || sum.Recorded != 0 || sum.Known != 1 || len(sum.Notices) != 0 {
			t.Fatalf("second pass: %+v %v", sum, err)
		}
		// The notice is an ordinary message to the sender.
		if s := rg.drain(); s.Counts[StateDelivered] != 1 {
			t.Fatalf("notice: %+v", s.Counts)
		}
		if texts := rg.delivered()["5550001"]; len(texts) != 1 || !strings.Contains(texts[0], "5551001") {
			t.Fatalf("notice %q", texts)
		}

		// A completed call is recorded without a notice; a call file of another
		// system or an unknown id is left alone.
		rg2 := newRig(t, dsn, noRetry)
		id2, _ := rg2.r.Submit("5550001", "5551001", "again")
		rg2.drain()
		archive(t, rg2, tailOf(t, "call/spool-behaviour/future-1795239855.call"))
		done := filepath.Join(rg2.spool, "outgoing_done")
		os.WriteFile(filepath.Join(done, "foreign.call"), fixture(t, "call/spool-behaviour/invalid-1795239855.call"), 0o644)
		os.WriteFile(filepath.Join(done, "orphan.call"), []byte("Setvar: SMSROUTER_ID=1795239855000-00000000ff\nStatus: Failed\n"), 0o644)
		sum, err = rg2.admin().RecordEvidence(ctx, true)
		if err != nil || sum.Recorded != 1 || sum.Orphans != 1 || len(sum.Notices) != 0 {
			t.Fatalf("completed: %+v %v", sum, err)
		}
		rec, _ = rg2.journal.Get(ctx, id2)
		if c := CallsOf(rec); len(c) != 1 || c[0].Status != "Completed" || rec.LastError != "" {
			t.Fatalf("completed: %+v", rec)
		}
	})
}

func FuzzParseCallOutcome(f *testing.F) {
	f.Add([]byte("Channel: Local/1@x\nSetvar: SMSROUTER_ID=1795239855000-0123456789\nStartRetry: 1 1 (1795239857)\nStatus: Expired\n"))
	f.Add([]byte("Setvar: SMSROUTER_ID=1795239855000-0123456789\nStatus: Completed\nEndRetry: x y (z)\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		o, ok := ParseCallOutcome("f", data)
		if !ok {
			return
		}
		if !validID(o.ID) || o.Status == "" || o.Attempts < 0 {
			t.Fatalf("accepted %+v", o)
		}
	})
}
