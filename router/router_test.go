package router

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"smsrouter/asteriskconf/callfile"
	"smsrouter/asteriskconf/smsq"
	"smsrouter/channels"
)

// plain is a message as app_sms writes it, received a minute ago: its validity
// period runs from that scts.
var plain = "oa=5550001\nda=5551001\nud=Hello World from an FSK phone\nscts=" +
	time.Now().UTC().Add(-time.Minute).Format("2006-01-02T15:04:05") + "\nmr=0\n"

func TestDeliverSWritesQueueAndCallFile(t *testing.T) {
	eachDB(t, func(t *testing.T, dsn string) {
		rg := newRig(t, dsn, nil)
		rg.set("5551001", 'S', "PJSIP/1001")
		rg.morx("5550001.2026-11-21T05:39:34-0", plain)
		sum := rg.drain()
		if sum.Counts[StateDelivered] != 1 || !sum.Clean() {
			t.Fatalf("summary %+v", sum.Counts)
		}
		if got := rg.delivered()["5551001"]; len(got) != 1 || got[0] != "Hello World from an FSK phone" {
			t.Fatalf("mttx for 5551001 = %q", got)
		}
		calls := rg.files("outgoing")
		if len(calls) != 1 || !strings.HasPrefix(calls[0], "smsrouter.mttx.5551001.") {
			t.Fatalf("call files %v", calls)
		}
		data, _ := os.ReadFile(filepath.Join(rg.spool, "outgoing", calls[0]))
		rec, err := callfile.Parse(data)
		if err != nil {
			t.Fatal(err)
		}
		if rec.Channel != "PJSIP/1001" || rec.Application != "SMS" || rec.Data != "5551001,s" || !strings.Contains(rec.CallerID, "9001") {
			t.Fatalf("call file %+v", rec.CallFile)
		}
		if st := rg.stateOf("5550001", "5551001"); len(st) != 1 || st[0] != StateDelivered {
			t.Fatalf("journal %v", st)
		}
		rg.assertIdle()
	})
}

func TestSecondMessageUsesThePendingCall(t *testing.T) {
	eachDB(t, func(t *testing.T, dsn string) { secondMessageUsesThePendingCall(t, dsn) })
}

// secondMessageUsesThePendingCall: one call per phone at a time, also for a
// message that arrives while the call is being placed.
func secondMessageUsesThePendingCall(t *testing.T, dsn string) {
	rg := newRig(t, dsn, nil)
	rg.set("5551001", 'S', "PJSIP/1001")
	rg.morx("a.1", plain)
	rg.drain()
	rg.morx("a.2", strings.Replace(plain, "Hello", "Again", 1))
	rg.drain()
	if calls := rg.files("outgoing"); len(calls) != 1 {
		t.Fatalf("a call that has not dialled yet drains the queue; want 1 call file, got %v", calls)
	}
	if got := rg.delivered()["5551001"]; len(got) != 2 {
		t.Fatalf("want 2 messages queued, got %q", got)
	}
	// Once Asterisk starts dialling, a new message waits for that call: the
	// phone is never called twice at once.
	calls := rg.files("outgoing")
	p := filepath.Join(rg.spool, "outgoing", calls[0])
	f, _ := os.OpenFile(p, os.O_APPEND|os.O_WRONLY, 0)
	f.WriteString("\nStartRetry: 14546 1 (1795239857)\n")
	f.Close()
	rg.morx("a.3", strings.Replace(plain, "Hello", "Third", 1))
	rg.drain()
	if calls := rg.files("outgoing"); len(calls) != 1 {
		t.Fatalf("want no second call file while the first is dialling, got %v", calls)
	}
	// The call ends having handed over the first two only (app_sms read the
	// queue before the third landed): the next pass calls again for the third.
	for _, name := range rg.files("sms/mttx") {
		if m, err := smsq.Parse([]byte(mustRead(t, filepath.Join(rg.spool, "sms", "mttx", name))), time.UTC); err != nil || !strings.Contains(m.Text, "Third") {
			os.Remove(filepath.Join(rg.spool, "sms", "mttx", name))
		}
	}
	os.Remove(p)
	rg.morx("a.4", strings.Replace(strings.Replace(plain, "Hello", "Fourth", 1), "5551001", "5551009", 1))
	rg.drain()
	calls = rg.files("outgoing")
	if len(calls) != 1 || !strings.HasPrefix(calls[0], "smsrouter.mttx.5551001.") {
		t.Fatalf("want one follow-up call for the part left, got %v", calls)
	}
}

func mustRead(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestNoticesForUnknownAndDisabled(t *testing.T) {
	eachDB(t, func(t *testing.T, dsn string) {
		rg := newRig(t, dsn, nil)
		rg.set("5550001", 'S', "PJSIP/5550001")
		rg.set("5553333", 'N', "")
		rg.morx("x.1", "oa=5550001\nda=5559999\nud=to nobody\n")
		rg.morx("x.2", "oa=5550001\nda=5553333\nud=to a disabled number\n")
		sum := rg.drain()
		if sum.Counts[StateBounced] != 2 {
			t.Fatalf("summary %+v", sum.Counts)
		}
		got := rg.delivered()["5550001"]
		if len(got) != 2 {
			t.Fatalf("sender should get 2 notices by SMS, got %q", got)
		}
		joined := strings.Join(got, "|")
		if !strings.Contains(joined, "Cannot deliver SMS to 5559999. Number does not exist.") ||
			!strings.Contains(joined, "Cannot deliver SMS to 5553333.") {
			t.Fatalf("notices %q", got)
		}
		// The notices come from the SMS Centre and are journaled as messages too.
		if st := rg.stateOf("9001", "5550001"); len(st) != 2 || st[0] != StateDelivered {
			t.Fatalf("notice journal %v", st)
		}
		rg.assertIdle()
	})
}

func TestNoNoticeLoop(t *testing.T) {
	rg := newRig(t, testdbSQLite(t), nil)
	// Neither the sender nor the recipient exists: the notice to the sender is itself
	// undeliverable and must be dropped, not answered.
	rg.morx("x.1", "oa=5550077\nda=5559999\nud=nobody home\n")
	sum := rg.drain()
	if sum.Counts[StateBounced] != 1 || sum.Counts[StateDropped] != 1 || len(sum.Outcomes) != 2 {
		t.Fatalf("want the original bounced and its notice dropped, got %+v", sum.Counts)
	}
	if f := rg.files("sms/mttx"); len(f) != 0 {
		t.Fatalf("nothing should be queued: %v", f)
	}
	rg.assertIdle()
}

func TestAdminUpdateAppliesToNextMessage(t *testing.T) {
	eachDB(t, func(t *testing.T, dsn string) {
		rg := newRig(t, dsn, nil)
		rg.set("5550001", 'S', "PJSIP/5550001")
		rg.set("5551001", 'S', "PJSIP/1001")
		rg.morx("a.1", plain)
		rg.drain()
		if _, err := rg.store.DB.Exec("UPDATE PBXNumbers SET Message = 'N' WHERE Account = '5551001'"); err != nil {
			t.Fatal(err)
		}
		rg.morx("a.2", strings.Replace(plain, "Hello", "Again", 1)) // the same text again would be a resend
		sum := rg.drain()
		if sum.Counts[StateBounced] != 1 {
			t.Fatalf("after UPDATE to N the next message must bounce: %+v", sum.Counts)
		}
	})
}

func TestConcatenatedPartsJoinedInAnyOrder(t *testing.T) {
	rg := newRig(t, testdbSQLite(t), nil)
	rg.set("5551001", 'S', "PJSIP/1001")
	part := func(seq int, text string) string {
		return "oa=5550004\nda=5551001\nudh#0003A703" + []string{"", "01", "02", "03"}[seq] + "\nud=" + text + "\n"
	}
	rg.morx("p.3", part(3, " three."))
	if sum := rg.drain(); sum.Counts[StateHeld] != 1 {
		t.Fatalf("part 3 alone must wait: %+v", sum.Counts)
	}
	rg.morx("p.1", part(1, "One,"))
	rg.drain()
	if f := rg.files("sms/mttx"); len(f) != 0 {
		t.Fatalf("incomplete message delivered: %v", f)
	}
	rg.morx("p.2", part(2, " two,"))
	sum := rg.drain()
	if sum.Counts[StateDelivered] != 1 {
		t.Fatalf("summary %+v", sum.Counts)
	}
	if got := rg.delivered()["5551001"]; len(got) != 1 || got[0] != "One, two, three." {
		t.Fatalf("joined text %q", got)
	}
	if f := rg.files("smsrouter/parts"); len(f) != 0 {
		t.Fatalf("parts left: %v", f)
	}
	rg.assertIdle()
}

func TestConcatenated16BitReference(t *testing.T) {
	rg := newRig(t, testdbSQLite(t), nil)
	rg.set("5551001", 'S', "PJSIP/1001")
	rg.morx("p.2", "oa=5550004\nda=5551001\nudh#0804BEEF0202\nud=B\n")
	rg.morx("p.1", "oa=5550004\nda=5551001\nudh#0804BEEF0201\nud=A\n")
	rg.drain()
	if got := rg.delivered()["5551001"]; len(got) != 1 || got[0] != "AB" {
		t.Fatalf("joined text %q", got)
	}
}

func TestConcatenationTimeoutRoutesPartsAsTheyAre(t *testing.T) {
	rg := newRig(t, testdbSQLite(t), func(c *Config) { c.ConcatTimeout = time.Minute })
	rg.set("5551001", 'S', "PJSIP/1001")
	rg.morx("p.1", "oa=5550004\nda=5551001\nudh#0003A70201\nud=first half\n")
	rg.drain()
	if next := rg.r.NextDue(); next.IsZero() {
		t.Fatal("a waiting part must make NextDue non-zero so serve wakes up for it")
	}
	rg.clock.advance(2 * time.Minute)
	sum := rg.drain()
	if sum.Counts[StateDelivered] != 1 {
		t.Fatalf("summary %+v", sum.Counts)
	}
	if got := rg.delivered()["5551001"]; len(got) != 1 || got[0] != "first half" {
		t.Fatalf("delivered %q", got)
	}
	rg.assertIdle()
}

func TestDirectoryDownDefersThenDelivers(t *testing.T) {
	rg := newRig(t, testdbSQLite(t), nil)
	rg.set("5551001", 'S', "PJSIP/1001")
	real := rg.dir
	rg.dir = downDirectory{}
	rg.morx("a.1", plain)
	sum := rg.drain()
	if sum.Counts[StateDeferred] != 1 || sum.Clean() {
		t.Fatalf("a dead directory must defer, got %+v", sum.Counts)
	}
	if f := rg.files("sms/mttx"); len(f) != 0 {
		t.Fatalf("nothing may be delivered or bounced: %v", f)
	}
	if f := rg.files("smsrouter/deferred"); len(f) != 1 {
		t.Fatalf("deferred: %v", f)
	}
	// Not due yet: a drain right away leaves it alone.
	if sum := rg.drain(); len(sum.Outcomes) != 0 {
		t.Fatalf("retried before its time: %+v", sum.Counts)
	}
	rg.dir = real
	rg.clock.advance(2 * time.Second)
	sum = rg.drain()
	if sum.Counts[StateDelivered] != 1 {
		t.Fatalf("summary %+v", sum.Counts)
	}
	recs := rg.records()
	if len(recs) != 1 || recs[0].State != StateDelivered || recs[0].Attempts != 1 {
		t.Fatalf("journal %+v", recs)
	}
	rg.assertIdle()
}

func TestValidityEndsRetriesWithNotice(t *testing.T) {
	rg := newRig(t, testdbSQLite(t), nil)
	rg.set("5550001", 'S', "PJSIP/5550001")
	rg.set("5551001", 'S', "PJSIP/1001")
	real := rg.dir
	rg.dir = downDirectory{}
	rg.morx("a.1", strings.Replace(plain, "mr=0", "vp=5", 1)) // valid for 5 minutes
	rg.drain()
	for i := 0; i < 12; i++ {
		rg.clock.advance(time.Minute)
		rg.drain()
	}
	rg.dir = real
	// The notice itself waited for the directory too: past its longest backoff.
	rg.clock.advance(31 * time.Minute)
	rg.drain()
	if st := rg.stateOf("5550001", "5551001"); len(st) != 1 || st[0] != StateExpired {
		t.Fatalf("journal %v", st)
	}
	got := rg.delivered()["5550001"]
	if len(got) != 1 || !strings.Contains(got[0], "expired") {
		t.Fatalf("sender should be told it expired: %q", got)
	}
	if f := rg.files("sms/mttx"); len(f) != 1 {
		t.Fatalf("only the notice may be queued: %v", f)
	}
}

func TestJournalStopsRedeliveryAfterCrash(t *testing.T) {
	rg := newRig(t, testdbSQLite(t), nil)
	rg.set("5551001", 'S', "PJSIP/1001")
	rg.morx("a.1", plain)
	rg.drain()
	recs := rg.records()
	if len(recs) != 1 {
		t.Fatalf("journal %+v", recs)
	}
	// A process died after committing the fate but before removing its claimed file:
	// put the file back into a dead owner's folder.
	dead := filepath.Join(rg.spool, "smsrouter", "claimed", "deadhost-1-abc")
	if err := os.MkdirAll(dead, 0o755); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(dead, recs[0].ID+".0"), []byte(plain), 0o644)
	r2 := rg.newRouter(rg.r.cfg)
	if _, err := r2.Drain(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := rg.delivered()["5551001"]; len(got) != 1 {
		t.Fatalf("delivered again after a crash: %q", got)
	}
	if _, err := os.Stat(dead); !os.IsNotExist(err) {
		t.Fatalf("dead owner's folder should be adopted and removed: %v", err)
	}
	rg.assertIdle()
}

func TestCrashBetweenCommitAndPublishIsFinished(t *testing.T) {
	rg := newRig(t, testdbSQLite(t), nil)
	rg.set("5551001", 'S', "PJSIP/1001")
	rg.morx("a.1", plain)
	// Run a pass whose publish step never happens: stage and journal, then "die".
	r := rg.r
	items, err := r.claimBatch(r.cfg.BatchSize)
	if err != nil || len(items) != 1 {
		t.Fatalf("claim: %v %d", err, len(items))
	}
	j := &job{item: items[0]}
	r.prepare(j)
	entries, err := rg.dir.LookupMany(context.Background(), []string{"5551001"})
	if err != nil {
		t.Fatal(err)
	}
	r.dispatch(context.Background(), j, entries)
	b := r.newBatch()
	b.jobs = []*job{j}
	if err := r.stage(b); err != nil {
		t.Fatal(err)
	}
	b.closeFiles()
	if err := rg.journal.Put(context.Background(), b.id, stamp(b.records(), rg.clock.now())); err != nil {
		t.Fatal(err)
	}
	r.lock.release() // the process is gone, and the kernel drops its locks
	r.channels['S'].(io.Closer).Close()
	if f := rg.files("sms/mttx"); len(f) != 0 {
		t.Fatalf("nothing is published before the crash: %v", f)
	}
	r2 := rg.newRouter(r.cfg)
	if _, err := r2.Drain(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := rg.delivered()["5551001"]; len(got) != 1 {
		t.Fatalf("the committed delivery must be published exactly once: %q", got)
	}
	if calls := rg.files("outgoing"); len(calls) != 1 {
		t.Fatalf("call files %v", calls)
	}
	rg.assertIdle()
}

func TestRejectsHostileInputWithReason(t *testing.T) {
	cases := []struct{ name, body, reason string }{
		{"path in da", "oa=5550001\nda=../../etc/x\nud=x\n", "not a phone number"},
		{"newline in da", "oa=5550001\nda=1000\rApplication: System\nud=x\n", ""},
		{"letters in oa", "oa=evil\nda=5551001\nud=x\n", "sender (oa)"},
		{"no da", "oa=5550001\nud=x\n", "recipient (da) is missing"},
		{"odd hex", "oa=5550001\nda=5551001\nud##00480\n", "unreadable spool file"},
		{"nul byte", "oa=5550001\nda=5551001\nud=a\x00b\n", "unreadable spool file"},
		{"20 digits", "oa=5550001\nda=12345678901234567890\nud=x\n", "not a phone number"},
	}
	rg := newRig(t, testdbSQLite(t), nil)
	rg.set("5551001", 'S', "PJSIP/1001")
	for i, c := range cases {
		rg.morx("bad."+string(rune('a'+i)), c.body)
	}
	rg.morx("good.1", plain)
	// Files that do not parse are given the settle time to be finished first.
	rg.clock.advance(3 * time.Second)
	sum := rg.drain()
	if sum.Counts[StateRejected] != len(cases) || sum.Counts[StateDelivered] != 1 {
		t.Fatalf("summary %+v", sum.Counts)
	}
	rej := rg.files("smsrouter/rejected")
	if len(rej) != 2*len(cases) {
		t.Fatalf("rejected folder: %v", rej)
	}
	for i, c := range cases {
		var reason string
		for _, f := range rej {
			if strings.HasSuffix(f, "bad."+string(rune('a'+i))+".reason") {
				b, _ := os.ReadFile(filepath.Join(rg.spool, "smsrouter", "rejected", f))
				reason = string(b)
			}
		}
		if reason == "" || !strings.Contains(reason, c.reason) {
			t.Errorf("%s: reason %q, want it to mention %q", c.name, reason, c.reason)
		}
	}
	if calls := rg.files("outgoing"); len(calls) != 1 {
		t.Fatalf("only the good message may produce a call file: %v", calls)
	}
	rg.assertIdle()
}

func TestSubmitIsRoutedWithItsID(t *testing.T) {
	rg := newRig(t, testdbSQLite(t), nil)
	rg.set("5551001", 'S', "PJSIP/1001")
	long := strings.Repeat("Zażółć gęślą jaźń. ", 20) // 380 characters of UCS-2: 6 parts
	id, err := rg.r.Submit("5550001", "5551001", long)
	if err != nil {
		t.Fatal(err)
	}
	rg.drain()
	rec, err := rg.journal.Get(context.Background(), id)
	if err != nil || rec.State != StateDelivered {
		t.Fatalf("journal for %s: %+v %v", id, rec, err)
	}
	if got := rg.delivered()["5551001"]; len(got) != 1 || got[0] != long {
		t.Fatalf("delivered %q", got)
	}
	if n := len(rg.files("sms/mttx")); n != 6 {
		t.Fatalf("want 6 parts, got %d", n)
	}
	for _, bad := range [][2]string{{"../x", "5551001"}, {"5550001", "1\n2"}, {"5550001", ""}} {
		if _, err := rg.r.Submit(bad[0], bad[1], "x"); err == nil {
			t.Errorf("Submit(%q, %q) accepted", bad[0], bad[1])
		}
	}
	if _, err := rg.r.Submit("5550001", "5551001", "\xff\xfe"); err == nil {
		t.Error("invalid UTF-8 accepted")
	}
}

func TestMissingChannelBouncesWithNotice(t *testing.T) {
	rg := newRig(t, testdbSQLite(t), nil)
	rg.set("5550001", 'S', "PJSIP/5550001")
	rg.set("5552000", 'F', "PJSIP/fax")
	rg.morx("a.1", "oa=5550001\nda=5552000\nud=fax me\n")
	rg.drain()
	if got := rg.delivered()["5550001"]; len(got) != 1 || !strings.Contains(got[0], "service is not available") {
		t.Fatalf("notice %q", got)
	}
}

func TestClaimNameRoundTrip(t *testing.T) {
	id := NewID(time.Now())
	for _, c := range []claimName{{id: id}, {id: id, attempts: 7}, {id: id, solo: true}, {id: id, depth: 2}, {id: id, attempts: 3, solo: true, depth: 1},
		{id: id, way: 2}, {id: id, tries: 4}, {id: id, attempts: 9, solo: true, depth: 1, way: 3, tries: 12}} {
		got, ok := parseClaimName(c.String())
		if !ok || got != c {
			t.Errorf("%s → %+v %v", c, got, ok)
		}
	}
	for _, bad := range []string{"", ".lock", id, id + ".x", id + ".1.q", id + ".1.d0", id + ".1.", "../x.1", id + ".1.s.d1",
		id + ".1.w0", id + ".1.r1w1", id + ".1.w1w1", id + ".1.w", id + ".1.w01", id + ".1.w100", id + ".1.d1x"} {
		if _, ok := parseClaimName(bad); ok {
			t.Errorf("%q accepted", bad)
		}
	}
}

func FuzzParseClaimName(f *testing.F) {
	id := NewID(time.Unix(1795239855, 0))
	for _, s := range []string{id + ".0", id + ".3.sd1w2r4", id + ".1.w", id + ".1.d1x"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, name string) {
		c, ok := parseClaimName(name)
		if !ok {
			return
		}
		// What is accepted writes back to a name that reads the same.
		if again, ok := parseClaimName(c.String()); !ok || again != c {
			t.Fatalf("%q → %+v → %q → %+v %v", name, c, c.String(), again, ok)
		}
	})
}

func TestGeneratedMessagesStopAtMaxDepth(t *testing.T) {
	rg := newRig(t, testdbSQLite(t), nil)
	rg.set("5550001", 'S', "PJSIP/5550001")
	// A generated message at the deepest level that cannot be delivered is dropped,
	// not answered with yet another notice.
	rg.inbox(channels.SpoolName("5559999", NewID(rg.clock.now()), channels.MaxDepth), "oa=5550001\nda=5559999\nud=deep\n")
	sum := rg.drain()
	if sum.Counts[StateDropped] != 1 || len(sum.Outcomes) != 1 {
		t.Fatalf("summary %+v", sum.Counts)
	}
	// One level less gets its notice, marked one deeper.
	rg.inbox(channels.SpoolName("5559999", NewID(rg.clock.now()), 1), "oa=5550001\nda=5559999\nud=shallow\n")
	sum = rg.drain()
	if sum.Counts[StateBounced] != 1 || sum.Counts[StateDelivered] != 1 {
		t.Fatalf("summary %+v", sum.Counts)
	}
}

func TestWakeMakesDeferredMessagesDue(t *testing.T) {
	rg := newRig(t, testdbSQLite(t), nil)
	rg.set("5551001", 'S', "PJSIP/1001")
	rg.set("5551002", 'S', "PJSIP/1002")
	real := rg.dir
	rg.dir = downDirectory{}
	rg.morx("a.1", plain)
	rg.morx("a.2", strings.Replace(plain, "5551001", "5551002", 1))
	rg.drain()
	rg.dir = real
	n, err := rg.r.Wake("5551001")
	if err != nil || n != 1 {
		t.Fatalf("Wake: %d %v", n, err)
	}
	sum := rg.drain()
	if sum.Counts[StateDelivered] != 1 || len(rg.files("smsrouter/deferred")) != 1 {
		t.Fatalf("only the woken recipient's message goes now: %+v, deferred %v", sum.Counts, rg.files("smsrouter/deferred"))
	}
	if got := rg.delivered()["5551001"]; len(got) != 1 {
		t.Fatalf("delivered %q", got)
	}
}

type countingJanitor struct {
	channels.Channel
	calls int
}

func (c *countingJanitor) Cleanup(context.Context, time.Time) error { c.calls++; return nil }

func TestJanitorsRunEveryFewMinutes(t *testing.T) {
	rg := newRig(t, testdbSQLite(t), nil)
	j := &countingJanitor{Channel: rg.r.channels['S']}
	rg.r.channels['F'] = j
	rg.drain()
	rg.drain()
	if j.calls != 1 {
		t.Fatalf("cleanup ran %d times in one interval", j.calls)
	}
	rg.clock.advance(cleanupEvery)
	rg.drain()
	if j.calls != 2 {
		t.Fatalf("cleanup ran %d times", j.calls)
	}
}

// A long pass lists its first outcomes and, after them, only the messages that
// did not get through, while the counts cover them all.
func TestSummaryListsFailuresPastItsBound(t *testing.T) {
	var sum Summary
	for i := range listedOutcomes + 50 {
		sum.add(Outcome{ID: strconv.Itoa(i), State: StateDelivered})
	}
	sum.add(Outcome{ID: "d", State: StateDeferred})
	sum.add(Outcome{ID: "r", State: StateRejected})
	sum.add(Outcome{ID: "b", State: StateBounced})
	if sum.Total() != listedOutcomes+53 || sum.Counts[StateDelivered] != listedOutcomes+50 || sum.Counts[StateBounced] != 1 {
		t.Fatalf("total %d, counts %v", sum.Total(), sum.Counts)
	}
	if n := len(sum.Outcomes); n != listedOutcomes+2 {
		t.Fatalf("%d outcomes listed, want the first %d and the two failures", n, listedOutcomes)
	}
	if last := sum.Outcomes[listedOutcomes:]; last[0].ID != "d" || last[1].ID != "r" {
		t.Fatalf("past the bound: %+v", last)
	}
	if sum.Clean() {
		t.Fatal("a pass with a deferred and a rejected message is clean")
	}
}
