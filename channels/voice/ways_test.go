package voice_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"smsrouter/asteriskconf/smsq"
	"smsrouter/internal/testdb"
	tts "smsrouter/render/voice"
	"smsrouter/router"
)

// srrMorx is the morx file app_sms wrote for a phone that asked for a status
// report (captured), sent to da and received now (its scts would have expired).
func srrMorx(t *testing.T, da string) []byte {
	t.Helper()
	s := asterisk(t, "morx/status_report_request/5550005.2026-11-21T05:40:34-7")
	s = strings.Replace(s, "da=5559999", "da="+da, 1)
	s = strings.Replace(s, "scts=2026-11-21T05:40:34", "scts="+time.Now().UTC().Format("2006-01-02T15:04:05"), 1)
	return []byte(s)
}

// asterisk reads a captured fixture (a copy of shared/asterisk/fixtures).
func asterisk(t *testing.T, rel string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "..", "testdata", "asterisk", rel))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// finishCall does what pbx_spool does with Archive: yes once the one call file
// waiting in outgoing/ is done: it moves it to outgoing_done/ and appends the
// bookkeeping a real Asterisk appended to the captured archive rel.
func (b *bed) finishCall(t *testing.T, rel string) {
	t.Helper()
	calls, _ := filepath.Glob(filepath.Join(b.spool, "outgoing", "*"))
	if len(calls) != 1 {
		t.Fatalf("call files waiting: %v", calls)
	}
	data, err := os.ReadFile(calls[0])
	if err != nil {
		t.Fatal(err)
	}
	s := asterisk(t, rel)
	i := strings.Index(s, "\nStartRetry:")
	if i < 0 {
		i = strings.Index(s, "\nStatus:")
	}
	done := filepath.Join(b.spool, "outgoing_done")
	os.MkdirAll(done, 0o755)
	if err := os.WriteFile(filepath.Join(done, filepath.Base(calls[0])), append(data, s[i:]...), 0o644); err != nil {
		t.Fatal(err)
	}
	os.Remove(calls[0])
}

func (b *bed) evidence(t *testing.T, notify bool) router.EvidenceSummary {
	t.Helper()
	a, err := router.NewAdmin(b.cfg, b.journal)
	if err != nil {
		t.Fatal(err)
	}
	sum, err := a.RecordEvidence(context.Background(), notify)
	if err != nil {
		t.Fatal(err)
	}
	return sum
}

func (b *bed) drain(t *testing.T) *router.Summary {
	t.Helper()
	sum, err := b.r.Drain(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return sum
}

// mttx returns the texts waiting in sms/mttx for queue.
func (b *bed) mttx(t *testing.T, queue string) []string {
	t.Helper()
	files, _ := filepath.Glob(filepath.Join(b.spool, "sms", "mttx", queue+".*"))
	var out []string
	for _, f := range files {
		data, _ := os.ReadFile(f)
		m, err := smsq.Parse(data, time.UTC)
		if err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		out = append(out, m.Text)
	}
	return out
}

func espeak(t *testing.T) tts.Engine {
	t.Helper()
	engine, err := tts.Preset("espeak-ng")
	if err != nil {
		t.Fatal(err)
	}
	return engine
}

// A voice call whose archived call file says Failed hands the message to the
// recipient's next way (S), and the sender, who asked for a status report
// (app_sms srr=1, the captured morx file), hears how it ended.
func TestFailedVoiceCallFallsBackToSMSAndReportsDelivery(t *testing.T) {
	testdb.Each(t, func(t *testing.T, dsn string) {
		b := newBedOn(t, dsn, espeak(t), 0, true, nil)
		ctx := context.Background()
		if err := b.store.Set(ctx, router.Entry{Number: "5550005", Letter: 'S', Extension: "PJSIP/5005"}); err != nil {
			t.Fatal(err)
		}
		// 5551001 is V; its further way is S on the same phone.
		if err := b.store.SetWays(ctx, "5551001", []router.NumberWay{{Letter: 'S'}}); err != nil {
			t.Fatal(err)
		}
		os.MkdirAll(filepath.Join(b.spool, "sms", "morx"), 0o755)
		if err := os.WriteFile(filepath.Join(b.spool, "sms", "morx", "5550005.fixture"), srrMorx(t, "5551001"), 0o644); err != nil {
			t.Fatal(err)
		}

		// 1. The first way: a voice call is placed.
		sum := b.drain(t)
		if len(sum.Outcomes) != 1 || sum.Outcomes[0].State != router.StateDelivered || sum.Outcomes[0].Letter != "V" {
			t.Fatalf("first pass %+v", sum.Outcomes)
		}
		first := sum.Outcomes[0].ID
		// 2. Asterisk could not place it.
		b.finishCall(t, "call/spool-behaviour/invalid-1795239855.call")
		ev := b.evidence(t, true)
		if len(ev.Retried) != 1 || len(ev.Notices) != 0 || len(ev.Reports) != 0 {
			t.Fatalf("evidence %+v", ev)
		}
		rec := b.state(t, first)
		if !strings.Contains(rec.Detail, `"retry_id":"`+ev.Retried[0]+`"`) || !strings.Contains(rec.Detail, `"Status":"Failed"`) && !strings.Contains(rec.Detail, `"status":"Failed"`) {
			t.Fatalf("first row %s", rec.Detail)
		}
		// 3. The next way: SMS to the same phone.
		sum = b.drain(t)
		if len(sum.Outcomes) != 1 || sum.Outcomes[0].ID != ev.Retried[0] || sum.Outcomes[0].Letter != "S" || sum.Outcomes[0].State != router.StateDelivered {
			t.Fatalf("fallback pass %+v", sum.Outcomes)
		}
		if got := b.mttx(t, "5551001"); len(got) != 1 || got[0] != "Please confirm delivery" {
			t.Fatalf("mttx for 5551001: %q", got)
		}
		rec = b.state(t, ev.Retried[0])
		var d struct {
			Way   int    `json:"way"`
			Ways  string `json:"ways"`
			Tries []struct {
				Way       int    `json:"way"`
				Letter    string `json:"letter"`
				Extension string `json:"extension"`
				Outcome   string `json:"outcome"`
			} `json:"tries"`
			Report string `json:"report"`
		}
		if err := json.Unmarshal([]byte(rec.Detail), &d); err != nil {
			t.Fatal(err)
		}
		if d.Way != 1 || d.Ways != "V,S" || len(d.Tries) != 1 || d.Tries[0].Letter != "S" || d.Tries[0].Extension != "PJSIP/1001" ||
			d.Tries[0].Outcome != "delivered" || d.Report != "pending" {
			t.Fatalf("fallback row %s", rec.Detail)
		}
		// 4. The phone answered the SMS call: the sender gets the report.
		b.finishCall(t, "call/spool-behaviour/future-1795239855.call")
		ev = b.evidence(t, true)
		if len(ev.Reports) != 1 || len(ev.Retried) != 0 {
			t.Fatalf("evidence %+v", ev)
		}
		b.drain(t)
		got := b.mttx(t, "5550005")
		if len(got) != 1 || !strings.HasPrefix(got[0], "Delivered to 5551001 by SMS, ") {
			t.Fatalf("report to the sender: %q", got)
		}
		// A report is not reported on, and asks for nothing itself.
		b.finishCall(t, "call/spool-behaviour/future-1795239855.call")
		if ev := b.evidence(t, true); len(ev.Reports)+len(ev.Notices)+len(ev.Retried) != 0 {
			t.Fatalf("evidence about the report: %+v", ev)
		}
	})
}

// srr=1 and a call that is never answered on the last way: the sender gets a
// report that says so (no notices configured), or the notice serves as it.
func TestUnansweredLastWayReportsFailure(t *testing.T) {
	testdb.Each(t, func(t *testing.T, dsn string) {
		b := newBedOn(t, dsn, espeak(t), 0, true, func(c *router.Config) { c.Retry = router.RetryRules{"no_answer": {}} })
		ctx := context.Background()
		if err := b.store.Set(ctx, router.Entry{Number: "5550005", Letter: 'S', Extension: "PJSIP/5005"}); err != nil {
			t.Fatal(err)
		}
		for i, notify := range []bool{false, true} {
			os.MkdirAll(filepath.Join(b.spool, "sms", "morx"), 0o755)
			// A new message reference each time: the same one again within the
			// duplicate window is the phone resending, delivered once.
			morx := strings.Replace(string(srrMorx(t, "5551002")), "mr=7", fmt.Sprintf("mr=%d", 8+i), 1)
			os.WriteFile(filepath.Join(b.spool, "sms", "morx", "5550005.fixture"), []byte(morx), 0o644)
			b.drain(t)
			b.finishCall(t, "call/spool-behaviour/expire-1795239855.call")
			ev := b.evidence(t, notify)
			if len(ev.Retried) != 0 || len(ev.Reports)+len(ev.Notices) != 1 {
				t.Fatalf("notify %v: evidence %+v", notify, ev)
			}
			b.drain(t)
			// The report's (or notice's) own call to the sender.
			b.finishCall(t, "call/spool-behaviour/future-1795239855.call")
			b.evidence(t, notify)
		}
		got := b.mttx(t, "5550005")
		if len(got) != 2 || got[0] == got[1] {
			t.Fatalf("to the sender: %q", got)
		}
		want := map[string]bool{"Not delivered to 5551002: The call was not answered.": true,
			"Cannot deliver SMS to 5551002. Delivery failed until the message expired.": true}
		for _, g := range got {
			if !want[g] {
				t.Errorf("unexpected text to the sender %q", g)
			}
		}
	})
}
