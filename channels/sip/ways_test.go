package sip_test

import (
	"context"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"smsrouter/asteriskconf/smsq"
	"smsrouter/channels"
	"smsrouter/channels/sip"
	"smsrouter/channels/sms"
	"smsrouter/internal/testdb"
	"smsrouter/router"
)

// waysWorld is the real router with the T channel (fake PBX) and the real S
// channel on the database dsn: newWorldOn's numbers, 5551000 with SMS to the
// same phone as its further way, and 5550005 (the sender of the captured srr=1
// morx file) T on PJSIP/5005.
func waysWorld(t *testing.T, dsn string) (*world, string) {
	t.Helper()
	return waysWorldWith(t, dsn, nil)
}

// waysWorldWith is waysWorld with the router's and the T channel's
// configuration changed by mutate.
func waysWorldWith(t *testing.T, dsn string, mutate func(*router.Config, *sip.Config)) (*world, string) {
	t.Helper()
	w := newWorldOn(t, dsn, time.Hour)
	store, ctx := w.store, context.Background()
	if err := store.Set(ctx, router.Entry{Number: "5550005", Letter: 'T', Extension: "PJSIP/5005"}); err != nil {
		t.Fatal(err)
	}
	if err := store.SetWays(ctx, "5551000", []router.NumberWay{{Letter: 'S'}}); err != nil {
		t.Fatal(err)
	}
	w.cfg.Location, w.cfg.RetryMin, w.cfg.RetryMax = time.UTC, time.Hour, time.Hour
	cfg := pbxConfig(w.pbx, t, nil)
	cfg.MarkerDir = filepath.Join(w.work, "sip-sent")
	if mutate != nil {
		mutate(&w.cfg, &cfg)
	}
	w.ch = newChannel(t, cfg)
	smsCh, err := sms.New(sms.Config{Spool: w.spool, SMSCNumber: "9001", Location: time.UTC})
	if err != nil {
		t.Fatal(err)
	}
	w.r, err = router.New(w.cfg, router.NewSQLDirectory(store), w.journal, map[byte]channels.Channel{'T': w.ch, 'S': smsCh}, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { w.r.Close() })
	// The captured morx file of a phone that asked for a status report, sent to
	// 5551000 and received now.
	b, err := os.ReadFile(filepath.Join("..", "..", "testdata", "asterisk", "morx", "status_report_request", "5550005.2026-11-21T05:40:34-7"))
	if err != nil {
		t.Fatal(err)
	}
	s := strings.Replace(string(b), "da=5559999", "da=5551000", 1)
	s = strings.Replace(s, "scts=2026-11-21T05:40:34", "scts="+time.Now().UTC().Format("2006-01-02T15:04:05"), 1)
	return w, s
}

func (w *world) morx(name, body string) {
	w.t.Helper()
	dir := filepath.Join(w.spool, "sms", "morx")
	os.MkdirAll(dir, 0o755)
	if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
		w.t.Fatal(err)
	}
}

// A T-first recipient whose softphone has no registered contact gets the SMS
// at once instead of a held message, and the journal shows both tries.
func TestTFirstWithoutContactGetsTheSMS(t *testing.T) {
	testdb.Each(t, func(t *testing.T, dsn string) {
		w, _ := waysWorld(t, dsn)
		w.pbx.Set("1000", "Unreachable")
		id, err := w.r.Submit("5550005", "5551000", "Are you there?")
		if err != nil {
			t.Fatal(err)
		}
		sum := w.drain()
		if sum.Counts[router.StateDelivered] != 1 || w.deferred() != 0 {
			t.Fatalf("pass %+v, deferred %d", sum.Outcomes, w.deferred())
		}
		if n := len(w.pbx.Sent()); n != 0 {
			t.Fatalf("%d MessageSends to an offline phone", n)
		}
		files, _ := filepath.Glob(filepath.Join(w.spool, "sms", "mttx", "5551000.*"))
		if len(files) != 1 {
			t.Fatalf("mttx %v", files)
		}
		data, _ := os.ReadFile(files[0])
		if m, err := smsq.Parse(data, time.UTC); err != nil || m.Text != "Are you there?" {
			t.Fatalf("mttx %q %v", data, err)
		}
		rec, err := w.journal.Get(context.Background(), id)
		if err != nil {
			t.Fatal(err)
		}
		tries := router.WaysOf(rec)
		if rec.Letter != "S" || len(tries) != 2 ||
			tries[0].Letter != "T" || tries[0].Outcome != "failed" || tries[0].Cause != channels.CauseSIP480 ||
			!strings.Contains(tries[0].Reason, "no reachable contact") ||
			tries[1].Letter != "S" || tries[1].Extension != "PJSIP/1000" || tries[1].Outcome != "delivered" {
			t.Fatalf("journal %+v: %s", rec, rec.Detail)
		}

		// Registered again: T is the first way again.
		w.pbx.Set("1000", "Reachable")
		if _, err := w.r.Submit("5550005", "5551000", "Now by SIP"); err != nil {
			t.Fatal(err)
		}
		w.drain()
		if got := w.pbx.Sent(); len(got) != 1 || got[0].Body != "Now by SIP" {
			t.Fatalf("sent %+v", got)
		}
	})
}

// srr=1 on a message the softphone took: the report goes out with the same
// batch's commit, from the SMS Centre, to the sender's own softphone.
func TestSRRReportForSIPDelivery(t *testing.T) {
	testdb.Each(t, func(t *testing.T, dsn string) {
		w, morx := waysWorld(t, dsn)
		w.pbx.Set("1000", "Reachable")
		w.pbx.Set("5005", "Reachable")
		w.morx("5550005.fixture", morx)
		w.drain()
		w.drain()
		got := w.pbx.Sent()
		if len(got) != 2 || got[0].Body != "Please confirm delivery" || got[1].To != "pjsip:5005" ||
			!strings.HasPrefix(got[1].Body, "Delivered to 5551000 by SIP message, ") {
			t.Fatalf("sent %+v", got)
		}
		// No report about the report.
		w.drain()
		if n := len(w.pbx.Sent()); n != 2 {
			t.Fatalf("%d sends", n)
		}
	})
}

// Asterisk's manager cannot be reached: the T way is retried as the ami_down
// rule says, then the SMS goes out.
func TestTFirstWithAMIDownFallsBackAfterItsRetries(t *testing.T) {
	testdb.Each(t, func(t *testing.T, dsn string) {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		dead := ln.Addr().String()
		ln.Close()
		w, _ := waysWorldWith(t, dsn, func(rc *router.Config, sc *sip.Config) {
			rc.RetryMin, rc.RetryMax = 300*time.Millisecond, 300*time.Millisecond
			rc.Retry = router.RetryRules{channels.CauseAMIDown: {Attempts: 1}}
			sc.AMI.Addr = dead
		})
		id, err := w.r.Submit("5550005", "5551000", "is the PBX up?")
		if err != nil {
			t.Fatal(err)
		}
		if sum := w.drain(); sum.Counts[router.StateDeferred] != 1 {
			t.Fatalf("first try: %+v", sum.Outcomes)
		}
		rec, _ := w.journal.Get(context.Background(), id)
		if tries := router.WaysOf(rec); len(tries) != 1 || tries[0].Outcome != "deferred" || tries[0].Cause != channels.CauseAMIDown {
			t.Fatalf("first try: %s", rec.Detail)
		}
		time.Sleep(400 * time.Millisecond)
		if sum := w.drain(); sum.Counts[router.StateDelivered] != 1 {
			t.Fatalf("second try: %+v", sum.Outcomes)
		}
		rec, _ = w.journal.Get(context.Background(), id)
		if tries := router.WaysOf(rec); rec.Letter != "S" || len(tries) != 2 || tries[0].Outcome != "failed" || tries[1].Outcome != "delivered" {
			t.Fatalf("second try: %s", rec.Detail)
		}
	})
}
