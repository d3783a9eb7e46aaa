package router

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"smsrouter/channels"
)

// An unanswered call (the captured Status: Expired archive) is retried by the
// no_answer rule: after its delay, as often as it allows, counted per way;
// then the sender is told.
func TestUnansweredCallRetriedByRule(t *testing.T) {
	eachDB(t, func(t *testing.T, dsn string) {
		rg := newRig(t, dsn, func(c *Config) {
			c.Retry = RetryRules{channels.CauseNoAnswer: {Delay: 15 * time.Minute, Attempts: 2}}
		})
		rg.set("5550001", 'S', "PJSIP/5550001")
		rg.set("5551001", 'S', "PJSIP/1001")
		ctx := context.Background()
		if _, err := rg.r.Submit("5550001", "5551001", "ring ring"); err != nil {
			t.Fatal(err)
		}
		rg.drain()
		expired := tailOf(t, "call/spool-behaviour/expire-1795239855.call")
		var retries []string
		for try := 1; try <= 2; try++ {
			archive(t, rg, expired)
			sum, err := rg.admin().RecordEvidence(ctx, true)
			if err != nil || len(sum.Retried) != 1 || len(sum.Notices) != 0 {
				t.Fatalf("try %d: %+v %v", try, sum, err)
			}
			retries = append(retries, sum.Retried[0])
			// Not before the rule's delay.
			if due := rg.r.NextDue(); !due.Equal(rg.clock.now().Add(15 * time.Minute).Truncate(time.Millisecond)) {
				t.Fatalf("try %d: next due %v, want 15 min from %v", try, due, rg.clock.now())
			}
			if s := rg.drain(); len(s.Outcomes) != 0 {
				t.Fatalf("try %d: retried early: %+v", try, s.Outcomes)
			}
			rg.clock.advance(15 * time.Minute)
			s := rg.drain()
			if len(s.Outcomes) != 1 || s.Outcomes[0].ID != sum.Retried[0] || s.Outcomes[0].State != StateDelivered {
				t.Fatalf("try %d: %+v", try, s.Outcomes)
			}
			rec, _ := rg.journal.Get(ctx, sum.Retried[0])
			if !strings.Contains(rec.Detail, `"way_tries":`+string(rune('0'+try))) {
				t.Fatalf("try %d: attempts not counted: %s", try, rec.Detail)
			}
		}
		// The rule's attempts are used up and there is no other way: the notice.
		archive(t, rg, expired)
		sum, err := rg.admin().RecordEvidence(ctx, true)
		if err != nil || len(sum.Retried) != 0 || len(sum.Notices) != 1 {
			t.Fatalf("last: %+v %v", sum, err)
		}
		rg.drain()
		if texts := rg.delivered()["5550001"]; len(texts) != 1 || !strings.Contains(texts[0], "5551001") {
			t.Fatalf("notice %q", texts)
		}
		if got := rg.delivered()["5551001"]; len(got) != 3 {
			t.Fatalf("%d calls' messages, want the first and two retries", len(got))
		}
		if retries[0] == retries[1] {
			t.Fatal("the same retry twice")
		}
	})
}

// Evidence read twice queues one retry: the retry's id comes from the call.
func TestRetryQueuedOnce(t *testing.T) {
	rg := newRig(t, testdbSQLite(t), nil)
	rg.set("5550001", 'S', "PJSIP/5550001")
	rg.set("5551001", 'S', "PJSIP/1001")
	ctx := context.Background()
	rg.r.Submit("5550001", "5551001", "once")
	rg.drain()
	archive(t, rg, tailOf(t, "call/spool-behaviour/expire-1795239855.call"))
	a := rg.admin()
	rec0 := rg.records()[0]
	o := CallOutcome{File: "x.call", Status: "Expired"}
	id1, err := a.afterCall(ctx, rec0, o, map[string]any{})
	if err != nil {
		t.Fatal(err)
	}
	// A crash before the journal recorded the outcome: the next run finds the
	// retry already queued.
	id2, err := a.afterCall(ctx, rec0, o, map[string]any{})
	if err != nil || id1 != id2 || len(rg.files("smsrouter/deferred")) != 1 {
		t.Fatalf("%s %s %v %v", id1, id2, err, rg.files("smsrouter/deferred"))
	}
}

func TestRetryRulesConfig(t *testing.T) {
	c := Config{Spool: t.TempDir(), Retry: RetryRules{"busy": {Delay: time.Minute, Attempts: 9}}}
	if err := c.fill(); err != nil {
		t.Fatal(err)
	}
	if c.Retry["busy"].Attempts != 9 || c.Retry["no_answer"] != DefaultRetryRules["no_answer"] {
		t.Fatalf("%+v", c.Retry)
	}
	for _, bad := range []RetryRules{{"bussy": {}}, {"busy": {Attempts: -1}}, {"busy": {Attempts: MaxRuleAttempts + 1}}, {"busy": {Delay: -time.Second}}} {
		c := Config{Spool: t.TempDir(), Retry: bad}
		if err := c.fill(); err == nil {
			t.Errorf("%v accepted", bad)
		}
	}
	for _, bad := range []string{"X", "SC", "sf"} {
		c := Config{Spool: t.TempDir(), Reports: Reports{Letters: bad}}
		if err := c.fill(); err == nil {
			t.Errorf("reports %q accepted", bad)
		}
	}
}

// A retry after an unanswered call keeps the sender's validity (vp, counted
// from the original scts), rather than starting the default one afresh.
func TestRetryKeepsTheSendersValidity(t *testing.T) {
	eachDB(t, func(t *testing.T, dsn string) {
		rg := newRig(t, dsn, func(c *Config) {
			c.Retry = RetryRules{channels.CauseNoAnswer: {Delay: 30 * time.Minute, Attempts: 3}}
		})
		rg.set("5550001", 'S', "PJSIP/5550001")
		rg.set("5551001", 'S', "PJSIP/1001")
		ctx := context.Background()
		// Sent 10 minutes ago with an hour's validity: it ends 50 minutes from now.
		sent := rg.clock.now().Add(-10 * time.Minute).Truncate(time.Second)
		rg.morx("m1", fsk("5550001", "5551001", 1, "within the hour", sent)+"vp=60\n")
		if s := rg.drain(); s.Counts[StateDelivered] != 1 {
			t.Fatalf("first: %+v", s.Counts)
		}
		expired := tailOf(t, "call/spool-behaviour/expire-1795239855.call")
		archive(t, rg, expired)
		sum, err := rg.admin().RecordEvidence(ctx, true)
		if err != nil || len(sum.Retried) != 1 {
			t.Fatalf("evidence: %+v %v", sum, err)
		}
		// The first retry is due in 30 minutes, within the validity: delivered,
		// and the phone still sees the original time.
		rg.clock.advance(30 * time.Minute)
		if s := rg.drain(); s.Counts[StateDelivered] != 1 {
			t.Fatalf("first retry: %+v", s.Outcomes)
		}
		parts := rg.files("sms/mttx")
		if len(parts) == 0 {
			t.Fatal("no parts in sms/mttx")
		}
		for _, f := range parts {
			data, _ := os.ReadFile(filepath.Join(rg.spool, "sms", "mttx", f))
			if !strings.Contains(string(data), "scts="+sent.UTC().Format("2006-01-02T15:04:05")) {
				t.Errorf("%s shows another time than the original's:\n%s", f, data)
			}
		}
		// The second would be due after the validity: it waits only until the
		// validity ends, then expires and the sender is told.
		archive(t, rg, expired)
		sum2, err := rg.admin().RecordEvidence(ctx, true)
		if err != nil || len(sum2.Retried) != 1 {
			t.Fatalf("evidence 2: %+v %v", sum2, err)
		}
		end := sent.Add(time.Hour)
		if due := rg.r.NextDue(); !due.Equal(end) {
			t.Fatalf("second retry due %v, want the validity's end %v", due, end)
		}
		rg.clock.t = end
		s := rg.drain()
		if len(s.Outcomes) < 1 || s.Outcomes[0].ID != sum2.Retried[0] || s.Outcomes[0].State != StateExpired {
			t.Fatalf("second retry: %+v", s.Outcomes)
		}
	})
}
