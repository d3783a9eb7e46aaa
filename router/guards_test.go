package router

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"smsrouter/asteriskconf/smsq"
	"smsrouter/channels"
	"smsrouter/channels/fax"
	"smsrouter/channels/voice"
	"smsrouter/internal/quiet"
	faxrender "smsrouter/render/fax"
	tts "smsrouter/render/voice"
)

// fsk is a morx file as app_sms writes it for a phone's message with reference mr.
func fsk(oa, da string, mr int, text string, at time.Time) string {
	return fmt.Sprintf("oa=%s\nda=%s\nud=%s\nscts=%s\nmr=%d\n", oa, da, text, at.UTC().Format("2006-01-02T15:04:05"), mr)
}

// withRinging gives the rig's router the real V (espeak-ng) and F channels.
func (rg *rig) withRinging() {
	rg.t.Helper()
	engine, err := tts.Preset("espeak-ng")
	if err != nil {
		rg.t.Fatal(err)
	}
	v, err := voice.New(voice.Config{Spool: rg.spool, SMSCNumber: "9001", Location: time.UTC,
		Renderer: &tts.Renderer{Engine: engine, DefaultLang: "en"}, Options: rg.store.VoiceOptions})
	if err != nil {
		rg.t.Fatal(err)
	}
	f, err := fax.New(fax.Config{Spool: rg.spool, SMSCNumber: "9001", Render: faxrender.Options{Location: time.UTC}})
	if err != nil {
		rg.t.Fatal(err)
	}
	rg.r.channels['V'], rg.r.channels['F'] = v, f
}

func (rg *rig) submit(from, to, text string) string {
	rg.t.Helper()
	id, err := SubmitTo(rg.r.l.inbox, from, to, text, rg.clock.now())
	if err != nil {
		rg.t.Fatal(err)
	}
	return id
}

func TestQuietHoursHoldRingingDeliveriesUntilTheWindowEnds(t *testing.T) {
	eachDB(t, func(t *testing.T, dsn string) {
		waw, err := time.LoadLocation("Europe/Warsaw")
		if err != nil {
			t.Fatal(err)
		}
		rg := newRig(t, dsn, func(c *Config) {
			c.Quiet = QuietHours{Default: quiet.Window{Start: 22 * 60, End: 7 * 60}, Zone: waw}
		})
		rg.withRinging()
		// 23:10 in Warsaw (CET, UTC+1).
		rg.clock.t = time.Date(2026, 12, 2, 22, 10, 0, 0, time.UTC)
		rg.set("5551001", 'S', "PJSIP/1001")
		rg.set("5551002", 'V', "PJSIP/1002")
		rg.set("5551003", 'F', "PJSIP/fax1003")
		rg.set("5551004", 'S', "PJSIP/1004") // turned quiet hours off
		rg.set("5551005", 'S', "PJSIP/1005") // a window of its own, in London
		ctx := context.Background()
		if err := rg.store.setQuiet(ctx, "5551004", quietOff, ""); err != nil {
			t.Fatal(err)
		}
		if _, err := rg.store.DB.Exec("INSERT INTO smsrouter_number_pref (Account, QuietStart, QuietEnd, TimeZone) VALUES ('5551005', '23:00', '06:00', 'Europe/London')"); err != nil {
			t.Fatal(err)
		}
		ids := map[string]string{}
		for _, to := range []string{"5551001", "5551002", "5551003", "5551004", "5551005"} {
			ids[to] = rg.submit("5550001", to, "Good night")
		}
		sum := rg.drain()
		if sum.Counts[StateDeferred] != 3 || sum.Counts[StateDelivered] != 2 {
			t.Fatalf("summary %+v", sum.Counts)
		}
		for _, to := range []string{"5551001", "5551002", "5551003"} {
			rec := rg.record(ids[to])
			if rec.State != StateDeferred || rec.LastError != "held: quiet hours until 07:00" || rec.Attempts != 0 {
				t.Errorf("%s: %s %q attempts %d", to, rec.State, rec.LastError, rec.Attempts)
			}
			if want := time.Date(2026, 12, 3, 6, 0, 0, 0, time.UTC); !rec.NextAttempt.Equal(want) {
				t.Errorf("%s: next attempt %v, want %v", to, rec.NextAttempt, want)
			}
		}
		if got := rg.files("outgoing"); len(got) != 2 {
			t.Fatalf("only the two numbers outside their quiet hours get calls now: %v", got)
		}
		// 06:59 Warsaw: still quiet; 07:00: everything goes.
		rg.clock.t = time.Date(2026, 12, 3, 5, 59, 0, 0, time.UTC)
		if sum := rg.drain(); len(sum.Outcomes) != 0 {
			t.Fatalf("nothing is due before 07:00: %+v", sum.Counts)
		}
		rg.clock.t = time.Date(2026, 12, 3, 6, 0, 0, 0, time.UTC)
		sum = rg.drain()
		if sum.Counts[StateDelivered] != 3 {
			t.Fatalf("at 07:00: %+v", sum.Counts)
		}
		for _, to := range []string{"5551002", "5551003"} {
			if rec := rg.record(ids[to]); rec.State != StateDelivered {
				t.Errorf("%s: %s", to, rec.State)
			}
		}
		calls := strings.Join(rg.files("outgoing"), " ")
		for _, want := range []string{"smsrouter.mttx.5551001.", "smsrouter.voice.", "smsrouter.fax."} {
			if !strings.Contains(calls, want) {
				t.Errorf("no call for %s after the window: %s", want, calls)
			}
		}
		rg.assertIdle()
	})
}

func TestQuietHoldEndsAtTheValidity(t *testing.T) {
	rg := newRig(t, testdbSQLite(t), func(c *Config) {
		c.Quiet = QuietHours{Default: quiet.Window{Start: 22 * 60, End: 7 * 60}, Zone: time.UTC}
	})
	rg.clock.t = time.Date(2026, 12, 2, 23, 0, 0, 0, time.UTC)
	rg.set("5551001", 'S', "PJSIP/1001")
	rg.set("5550001", 'S', "PJSIP/1000")
	// vp=60: valid for an hour, ending inside the window.
	rg.morx("5550001.x", fsk("5550001", "5551001", 1, "late", rg.clock.now().Add(-time.Second))+"vp=60\n")
	rg.drain()
	if st := rg.stateOf("5550001", "5551001"); len(st) != 1 || st[0] != StateDeferred {
		t.Fatalf("held first: %v", st)
	}
	rg.clock.advance(time.Hour)
	rg.drain()
	if st := rg.stateOf("5550001", "5551001"); len(st) != 1 || st[0] != StateExpired {
		t.Fatalf("a hold does not outlive the validity: %v", st)
	}
}

func TestResentFSKMessageIsDeliveredOnce(t *testing.T) {
	eachDB(t, func(t *testing.T, dsn string) {
		rg := newRig(t, dsn, nil)
		rg.set("5551001", 'S', "PJSIP/1001")
		at := rg.clock.now().Add(-time.Second)
		// Two copies in one batch, a third in the next (the ack was lost twice).
		rg.morx("5550001.a", fsk("5550001", "5551001", 7, "Meet at 5", at))
		rg.morx("5550001.b", fsk("5550001", "5551001", 7, "Meet at 5", at.Add(20*time.Second)))
		sum := rg.drain()
		if sum.Counts[StateDelivered] != 1 || sum.Counts[StateDuplicate] != 1 {
			t.Fatalf("first batch %+v", sum.Counts)
		}
		// A restart: a new router on the same database still knows it.
		rg.r.Close()
		rg.r = rg.newRouter(rg.r.cfg)
		rg.clock.advance(5 * time.Minute)
		rg.morx("5550001.c", fsk("5550001", "5551001", 7, "Meet at 5", at.Add(5*time.Minute)))
		// Not a copy: another reference, or another text.
		rg.morx("5550001.d", fsk("5550001", "5551001", 8, "Meet at 5", at))
		rg.morx("5550001.e", fsk("5550001", "5551001", 7, "Meet at 6", at))
		sum = rg.drain()
		if sum.Counts[StateDelivered] != 2 || sum.Counts[StateDuplicate] != 1 {
			t.Fatalf("second batch %+v", sum.Counts)
		}
		if got := rg.delivered()["5551001"]; len(got) != 3 {
			t.Fatalf("mttx %q", got)
		}
		var dups int
		for _, rec := range rg.records() {
			if rec.State == StateDuplicate {
				dups++
				if !strings.HasPrefix(rec.LastError, "duplicate of ") {
					t.Errorf("duplicate's reason %q", rec.LastError)
				}
			}
		}
		if dups != 2 {
			t.Fatalf("journal has %d duplicates", dups)
		}
		// After the window the same message is new again.
		rg.clock.advance(11 * time.Minute)
		rg.morx("5550001.f", fsk("5550001", "5551001", 7, "Meet at 5", rg.clock.now()))
		if sum := rg.drain(); sum.Counts[StateDelivered] != 1 {
			t.Fatalf("after the window %+v", sum.Counts)
		}
		rg.assertIdle()
	})
}

// racingDirectory commits another process's fingerprint for the message while
// the batch is being delivered: after this batch's guard looked, before its
// journal write.
type racingDirectory struct {
	Directory
	store *Store
	fp    string
	done  bool
}

func (d *racingDirectory) LookupMany(ctx context.Context, ns []string) (map[string]Entry, error) {
	if !d.done {
		d.done = true
		if _, err := d.store.DB.ExecContext(ctx, "INSERT INTO smsrouter_fingerprint (fp, id, seen) VALUES (?, ?, ?)",
			d.fp, "1795240000000-0123456789", time.Now().UnixMilli()); err != nil {
			return nil, err
		}
	}
	return d.Directory.LookupMany(ctx, ns)
}

func TestDuplicateTakenByAnotherProcessMeanwhileIsNotDeliveredTwice(t *testing.T) {
	eachDB(t, func(t *testing.T, dsn string) {
		rg := newRig(t, dsn, nil)
		rg.set("5551001", 'S', "PJSIP/1001")
		body := fsk("5550001", "5551001", 3, "race", rg.clock.now().Add(-time.Second))
		rg.morx("5550001.a", body)
		j := &job{item: &item{}}
		j.msg = &smsq.Message{OA: "5550001", DA: "5551001", MR: 3}
		j.text = "race"
		real := rg.dir
		rg.dir = &racingDirectory{Directory: real, store: rg.store, fp: fingerprint(j)}
		sum := rg.drain()
		if sum.Counts[StateDelivered] != 0 {
			t.Fatalf("the batch whose fingerprint was taken must not publish: %+v", sum.Counts)
		}
		if got := rg.delivered()["5551001"]; len(got) != 0 {
			t.Fatalf("published %q", got)
		}
		// Its retry sees the other process's message.
		rg.clock.advance(time.Minute)
		sum = rg.drain()
		if sum.Counts[StateDuplicate] != 1 || len(rg.delivered()["5551001"]) != 0 {
			t.Fatalf("retry %+v, mttx %v", sum.Counts, rg.delivered())
		}
		rg.assertIdle()
	})
}

func TestLoopGuardStopsGeneratedMessagesBetweenAPair(t *testing.T) {
	eachDB(t, func(t *testing.T, dsn string) {
		rg := newRig(t, dsn, func(c *Config) { c.Guards = Guards{PairLimit: 3, PairWindow: 10 * time.Minute} })
		rg.set("5551001", 'S', "PJSIP/1001")
		for i := range 5 {
			rg.inbox(channels.SpoolName("5551001", NewID(rg.clock.now()), 1), fmt.Sprintf("oa=7000\nda=5551001\nud=auto reply %d\n", i))
		}
		sum := rg.drain()
		if sum.Counts[StateDelivered] != 3 || sum.Counts[StateDropped] != 2 {
			t.Fatalf("summary %+v", sum.Counts)
		}
		for _, rec := range rg.records() {
			if rec.State == StateDropped && !strings.HasPrefix(rec.LastError, "loop guard: 3 generated messages between 7000 and 5551001") {
				t.Errorf("reason %q", rec.LastError)
			}
		}
		// The other direction is the same pair; a person's own message is not counted.
		rg.set("7000", 'S', "PJSIP/7000")
		rg.inbox(channels.SpoolName("7000", NewID(rg.clock.now()), 1), "oa=5551001\nda=7000\nud=auto\n")
		rg.morx("5551001.x", fsk("5551001", "7000", 1, "typed by hand", rg.clock.now()))
		if sum := rg.drain(); sum.Counts[StateDropped] != 1 || sum.Counts[StateDelivered] != 1 {
			t.Fatalf("summary %+v", sum.Counts)
		}
		rg.clock.advance(11 * time.Minute)
		rg.inbox(channels.SpoolName("5551001", NewID(rg.clock.now()), 1), "oa=7000\nda=5551001\nud=later\n")
		if sum := rg.drain(); sum.Counts[StateDelivered] != 1 {
			t.Fatalf("after the window %+v", sum.Counts)
		}
	})
}

func TestSelfServiceSetFThenTheNextMessageIsAFax(t *testing.T) {
	eachDB(t, func(t *testing.T, dsn string) {
		rg := newRig(t, dsn, func(c *Config) { c.SelfService = SelfService{Enabled: true, Number: "7999"} })
		rg.withRinging()
		rg.set("5551001", 'S', "PJSIP/1001")
		rg.set("5550001", 'S', "PJSIP/1000")
		ctx := context.Background()
		reqID := rg.submit("5551001", "7999", "set f")
		sum := rg.drain()
		if sum.Counts[StateDelivered] != 2 { // the request, and its reply (sent by fax now)
			t.Fatalf("summary %+v", sum.Counts)
		}
		e, err := rg.dir.Lookup(ctx, "5551001")
		if err != nil || e.Letter != 'F' || e.Extension != "PJSIP/1001" {
			t.Fatalf("entry %+v %v", e, err)
		}
		rec := rg.record(reqID)
		if !strings.Contains(rec.Detail, `"admin_action":"number set F by 5551001"`) {
			t.Errorf("journal detail %s", rec.Detail)
		}
		id := rg.submit("5550001", "5551001", "This comes by fax")
		rg.drain()
		if got := rg.record(id); got.State != StateDelivered || got.Letter != "F" {
			t.Fatalf("next message: %s %s", got.State, got.Letter)
		}
		if _, err := os.Stat(filepath.Join(rg.spool, "fax", fax.TIFFName(id))); err != nil {
			t.Fatalf("no fax: %v", err)
		}
		// SET T,S: T first, S as the further way; STATUS says so.
		rg.set("5551001", 'S', "PJSIP/1001")
		rg.submit("5551001", "7999", "SET T,S")
		rg.submit("5551001", "7999", "STATUS")
		rg.drain()
		ways, err := rg.store.Ways(ctx, "5551001")
		if err != nil || len(ways) != 1 || ways[0].Letter != 'S' || ways[0].Extension != "PJSIP/1001" {
			t.Fatalf("ways %+v %v", ways, err)
		}
		if e, _ := rg.dir.Lookup(ctx, "5551001"); e.Letter != 'T' {
			t.Fatalf("letter %c", e.Letter)
		}
		replies := rg.replies("5551001")
		want := []string{"Done: messages reach you by F.", "Done: messages reach you by T,S."}
		for _, w := range want {
			if !contains(replies, w) {
				t.Errorf("replies %q lack %q", replies, w)
			}
		}
	})
}

// replies are the texts of the replies from the self-service number to number,
// as the journal recorded them.
func (rg *rig) replies(number string) []string {
	var out []string
	for _, r := range rg.records() {
		if r.DA == number && r.OA == "7999" {
			out = append(out, r.Text)
		}
	}
	return out
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func TestSelfServiceRefusesStrangersWrongPINsAndBadValues(t *testing.T) {
	eachDB(t, func(t *testing.T, dsn string) {
		rg := newRig(t, dsn, func(c *Config) {
			c.SelfService = SelfService{Enabled: true, Number: "7999"}
		})
		rg.set("5551001", 'S', "PJSIP/1001")
		rg.set("5551002", 'S', "DAHDI/g1/1002") // T needs PJSIP/
		ctx := context.Background()
		if _, err := rg.store.DB.Exec("INSERT INTO smsrouter_number_pref (Account, Pin) VALUES ('5551001', '4321')"); err != nil {
			t.Fatal(err)
		}
		rg.submit("5559999", "7999", "SET F")      // not a PBX number: no reply
		rg.submit("5551001", "7999", "SET F")      // no PIN
		rg.submit("5551001", "7999", "1111 SET F") // wrong PIN
		rg.submit("5551002", "7999", "SET T")      // the line cannot take T
		rg.submit("5551002", "7999", "FROB")
		rg.drain()
		for n, letter := range map[string]byte{"5551001": 'S', "5551002": 'S'} {
			if e, _ := rg.dir.Lookup(ctx, n); e.Letter != letter {
				t.Errorf("%s changed to %c", n, e.Letter)
			}
		}
		r1, r2 := rg.replies("5551001"), rg.replies("5551002")
		if len(r1) != 2 || r1[0] != replyWrongPIN || r1[1] != replyWrongPIN {
			t.Errorf("5551001 got %q", r1)
		}
		if len(r2) != 2 || !contains(r2, "Cannot set T: your line is not set up for it. Ask the administrator.") ||
			!(strings.HasPrefix(r2[0], "Unknown command") || strings.HasPrefix(r2[1], "Unknown command")) {
			t.Errorf("5551002 got %q", r2)
		}
		if len(rg.replies("5559999")) != 0 {
			t.Errorf("a stranger got a reply")
		}
		for _, r := range append(r1, r2...) {
			if strings.ContainsAny(r, "%{}") || strings.Contains(r, "sql") || strings.Contains(r, "PBXNumbers") {
				t.Errorf("reply shows internals: %q", r)
			}
		}
		// The right PIN works, and QUIET is stored.
		rg.submit("5551001", "7999", "4321 QUIET 22-07")
		rg.drain()
		e, err := rg.dir.Lookup(ctx, "5551001")
		if err != nil || e.pref.window != (quiet.Window{Start: 22 * 60, End: 7 * 60}) || e.pref.pin != "4321" {
			t.Fatalf("prefs %+v %v", e.pref, err)
		}
	})
}
