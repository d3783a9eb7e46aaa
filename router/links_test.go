package router

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"smsrouter/asteriskconf/smsq"
	"smsrouter/channels"
	"smsrouter/internal/numplan"
)

// fakeLink is a mobile link's channel that records what it is given.
type fakeLink struct {
	name string
	mu   sync.Mutex
	got  []channels.Message
	err  error
	n    int
}

func (f *fakeLink) Deliver(_ context.Context, m channels.Message) (channels.Result, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.got = append(f.got, m)
	if f.err != nil {
		return channels.Result{}, f.err
	}
	f.n++
	return channels.Result{Detail: map[string]any{"link": f.name},
		Refs: []channels.Ref{{System: "link:" + f.name, Ref: f.name + "-" + m.ID, Part: 1, Parts: 1, At: time.Now()}}}, nil
}

func (f *fakeLink) messages() []channels.Message {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]channels.Message(nil), f.got...)
}

var plPlan = numplan.Plan{CountryCode: "48", InternationalPrefix: "00", NationalPrefix: "0", ExtensionLength: 4}

// linkRig is a rig with two links, gsm for Polish mobiles and wide for the rest.
func linkRig(t *testing.T, dsn string, mutate func(*Config)) (*rig, *fakeLink, *fakeLink) {
	gsm, wide := &fakeLink{name: "gsm"}, &fakeLink{name: "wide"}
	rg := newRig(t, dsn, func(c *Config) {
		c.Plan = plPlan
		c.Routes = []Route{{Prefix: "+48", Link: "gsm"}, {Link: "wide"}}
		c.Links = map[string]channels.Channel{"gsm": gsm, "wide": wide}
		c.Inbound = map[string]Inbound{
			"+48221234567": {Link: "gsm", FirstWord: true},
			"+48221234568": {Link: "gsm", To: "1001"},
		}
		if mutate != nil {
			mutate(c)
		}
	})
	rg.set("1001", 'S', "PJSIP/1001")
	rg.set("1000", 'S', "PJSIP/1000")
	return rg, gsm, wide
}

func (rg *rig) record(id string) Record {
	rg.t.Helper()
	r, err := rg.journal.Get(context.Background(), id)
	if err != nil {
		rg.t.Fatal(err)
	}
	return r
}

func detailOf(t *testing.T, r Record) map[string]any {
	t.Helper()
	d := map[string]any{}
	if err := json.Unmarshal([]byte(r.Detail), &d); err != nil {
		t.Fatalf("detail %q: %v", r.Detail, err)
	}
	return d
}

func TestRoutesAndNumberPlan(t *testing.T) {
	rg, gsm, wide := linkRig(t, testdbSQLite(t), nil)
	inbox := InboxDir(filepath.Join(rg.spool, "smsrouter"))
	ids := map[string]string{}
	for _, to := range []string{"0601234567", "0048601234568", "+4915112345678", "+1000", "1099", "1000"} {
		id, err := SubmitTo(inbox, "1001", to, "to "+to, rg.clock.now())
		if err != nil {
			t.Fatal(err)
		}
		ids[to] = id
	}
	rg.drain()
	got := func(f *fakeLink) map[string]string {
		out := map[string]string{}
		for _, m := range f.messages() {
			out[m.To] = m.Text
		}
		return out
	}
	if g := got(gsm); len(g) != 2 || g["+48601234567"] != "to 0601234567" || g["+48601234568"] != "to 0048601234568" {
		t.Fatalf("gsm got %v", g)
	}
	// +1000 is an international number, not the extension 1000: the default route.
	if g := got(wide); len(g) != 2 || g["+4915112345678"] == "" || g["+1000"] != "to +1000" {
		t.Fatalf("wide got %v", g)
	}
	r := rg.record(ids["0601234567"])
	d := detailOf(t, r)
	if r.State != StateDelivered || r.Letter != "L" || r.DA != "+48601234567" || d["link"] != "gsm" ||
		d["to_as_written"] != "0601234567" || !strings.Contains(d["route"].(string), `route 1: prefix "+48"`) {
		t.Fatalf("journal %+v %v", r, d)
	}
	// An unknown extension is never sent to the mobile network.
	if r := rg.record(ids["1099"]); r.State != StateBounced || r.Letter != "" {
		t.Fatalf("1099: %+v", r)
	}
	if r := rg.record(ids["1000"]); r.State != StateDelivered || r.Letter != "S" {
		t.Fatalf("1000: %+v", r)
	}
	// The refs the link gave were recorded with the fate.
	parts, err := rg.journal.Receipts(context.Background(), ids["0601234567"])
	if err != nil || len(parts) != 1 || parts[0].System != "link:gsm" {
		t.Fatalf("refs %+v %v", parts, err)
	}
}

func TestInboundMapping(t *testing.T) {
	nat := plPlan
	nat.Show = numplan.ShowNational
	rg, gsm, _ := linkRig(t, testdbSQLite(t), func(c *Config) { c.Plan = nat })
	inbox := InboxDir(filepath.Join(rg.spool, "smsrouter"))
	submit := func(from, to, text string) string {
		id, err := SubmitTo(inbox, from, to, text, rg.clock.now())
		if err != nil {
			t.Fatal(err)
		}
		return id
	}
	first := submit("+48601234567", "+48221234567", "1001: hello there")
	fixed := submit("+48601234568", "+48221234568", "to the fixed one")
	noWord := submit("+48601234569", "+48221234567", "hello")
	relay := submit("+48601234570", "+48221234567", "+48601234571 free SMS please")
	rg.drain()
	got := rg.delivered()
	if len(got["1001"]) != 2 {
		t.Fatalf("1001 got %v", got)
	}
	texts := strings.Join(got["1001"], "|")
	if !strings.Contains(texts, "hello there") || strings.Contains(texts, "1001:") || !strings.Contains(texts, "to the fixed one") {
		t.Fatalf("texts %q", texts)
	}
	r := rg.record(first)
	d := detailOf(t, r)
	in, _ := d["inbound"].(map[string]any)
	// The sender is shown to the phone in national form, which a reply reads back.
	if r.DA != "1001" || r.OA != "0601234567" || in["to"] != "+48221234567" || in["first_word"] != "1001" {
		t.Fatalf("first word: %+v %v", r, d)
	}
	if r := rg.record(fixed); r.DA != "1001" || r.State != StateDelivered {
		t.Fatalf("fixed: %+v", r)
	}
	// No number in the first word: the sender is told how to address it.
	if r := rg.record(noWord); r.State != StateBounced || !strings.Contains(r.LastError, "first word") {
		t.Fatalf("no word: %+v", r)
	}
	// Mobile to mobile through the gateway: never.
	if r := rg.record(relay); r.State != StateBounced || r.Letter != "" {
		t.Fatalf("relay: %+v", r)
	}
	// The notices to the mobile senders leave through the link.
	rg.drain()
	var notices []string
	for _, m := range gsm.messages() {
		notices = append(notices, m.To+": "+m.Text)
	}
	all := strings.Join(notices, "\n")
	if len(notices) != 2 || !strings.Contains(all, "+48601234569: Cannot deliver SMS to +48221234567. Start the message with the number") ||
		!strings.Contains(all, "+48601234570: Cannot deliver SMS to +48601234571. Number does not exist.") {
		t.Fatalf("notices through the link:\n%s", all)
	}
	// A reply from the PBX phone to the number it was shown goes back out.
	reply := submit("1001", "0601234567", "thanks")
	rg.drain()
	if r := rg.record(reply); r.State != StateDelivered || r.Letter != "L" || r.DA != "+48601234567" {
		t.Fatalf("reply: %+v", r)
	}
}

// TestConcatenatedInboundFirstWord: parts with a 16-bit reference wait, are
// joined, and only then is the first word read.
func TestConcatenatedInboundFirstWord(t *testing.T) {
	rg, _, _ := linkRig(t, testdbSQLite(t), nil)
	texts := []string{"1001 first part, ", "second part, ", "third part"}
	for i, text := range texts {
		m := &smsq.Message{OA: "+48601234567", DA: "+48221234567", SCTS: rg.clock.now().UTC().Truncate(time.Second), DCS: -1, MR: -1,
			Text: text, UDH: []byte{0x08, 0x04, 0x12, 0x34, 3, byte(3 - i)}, HasUDH: true}
		// Parts arrive last first.
		m.Text = texts[2-i]
		data, err := m.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		id := NewID(rg.clock.now())
		rg.inbox(channels.SpoolName("+48221234567", id, 0), string(data))
		if sum := rg.drain(); i < 2 && sum.Counts[StateHeld] != 1 {
			t.Fatalf("part %d not held: %+v", 3-i, sum.Counts)
		}
	}
	if got := rg.delivered()["1001"]; len(got) != 1 || got[0] != "first part, second part, third part" {
		t.Fatalf("1001 got %q", got)
	}
}

func TestSubmitViaAndElsewhere(t *testing.T) {
	rg, gsm, wide := linkRig(t, testdbSQLite(t), nil)
	work := filepath.Join(rg.spool, "smsrouter")
	// --via overrides the routes (+4915… would take the default route).
	id, err := SubmitVia(work, "gsm", "1001", "+4915112345678", "via gsm", rg.clock.now())
	if err != nil {
		t.Fatal(err)
	}
	rg.drain()
	if len(gsm.messages()) != 1 || len(wide.messages()) != 0 {
		t.Fatalf("gsm %v wide %v", gsm.messages(), wide.messages())
	}
	if d := detailOf(t, rg.record(id)); d["route"] != "send --via gsm" {
		t.Fatalf("detail %v", d)
	}
	if _, err := os.Stat(filepath.Join(viaDir(work), id)); !os.IsNotExist(err) {
		t.Fatal("via file left behind")
	}
	if _, err := SubmitVia(work, "../x", "1001", "+48600111222", "x", rg.clock.now()); err == nil {
		t.Fatal("bad link name accepted")
	}

	// A link another process runs: deferred for a moment, not for a backoff slot.
	gsm.mu.Lock()
	gsm.err = channels.RetryAfter(2*time.Second, errors.New("link gsm runs in smsrouter serve"))
	gsm.mu.Unlock()
	id2, _ := SubmitTo(InboxDir(work), "1001", "+48600111222", "later", rg.clock.now())
	rg.drain()
	r := rg.record(id2)
	if r.State != StateDeferred || r.NextAttempt.Sub(r.Updated) > 3*time.Second {
		t.Fatalf("%+v", r)
	}
}

func TestReceiptsReachTheJournal(t *testing.T) {
	eachDB(t, func(t *testing.T, dsn string) {
		rg, _, _ := linkRig(t, dsn, nil)
		work := filepath.Join(rg.spool, "smsrouter")
		ctx := context.Background()
		a, err := NewAdmin(rg.r.cfg, rg.journal)
		if err != nil {
			t.Fatal(err)
		}
		ok, _ := SubmitTo(InboxDir(work), "1001", "+48600111222", "will arrive", rg.clock.now())
		bad, _ := SubmitTo(InboxDir(work), "1000", "+48600111223", "will not", rg.clock.now())
		// A receipt that overtakes the journal write waits for it.
		if err := rg.journal.RecordReceipt(ctx, "link:gsm", "gsm-"+ok, Receipt{Stat: "DELIVRD", Delivered: true, Final: true, At: time.Now()}); err != nil {
			t.Fatal(err)
		}
		if sum, err := a.ApplyReceipts(ctx, nil); err != nil || sum.Applied != 0 {
			t.Fatalf("applied before the commit: %+v %v", sum, err)
		}
		rg.drain()
		// An intermediate receipt does not undo a final one.
		rg.journal.RecordReceipt(ctx, "link:gsm", "gsm-"+ok, Receipt{Stat: "ENROUTE", At: time.Now()})
		rg.journal.RecordReceipt(ctx, "link:gsm", "gsm-"+bad, Receipt{Stat: "UNDELIV", Err: "001", Final: true, At: time.Now()})
		sum, err := a.ApplyReceipts(ctx, func(system string) bool { return system == "link:gsm" })
		if err != nil || sum.Applied != 2 || len(sum.Notices) != 1 {
			t.Fatalf("apply: %+v %v", sum, err)
		}
		r := rg.record(ok)
		if d := detailOf(t, r); d["handset"] != "delivered to handset" || r.State != StateDelivered {
			t.Fatalf("ok: %+v", r)
		}
		r = rg.record(bad)
		if d := detailOf(t, r); d["handset"] != "failed: UNDELIV (error 001)" || r.LastError != "failed: UNDELIV (error 001)" || d["receipt_notice_id"] == nil {
			t.Fatalf("bad: %+v", r)
		}
		// Applying again changes nothing and tells nobody twice.
		if sum, err := a.ApplyReceipts(ctx, func(string) bool { return true }); err != nil || sum.Applied != 0 || len(sum.Notices) != 0 {
			t.Fatalf("again: %+v %v", sum, err)
		}
		// The sender's notice goes out through its own letter.
		rg.drain()
		if got := rg.delivered()["1000"]; len(got) != 1 || !strings.Contains(got[0], "Cannot deliver SMS to +48600111223") {
			t.Fatalf("notice: %v", rg.delivered())
		}
	})
}

// TestRefReuse: a modem's message references wrap; a receipt that waited for
// an older message with the same ref does not stick to a new one.
func TestRefReuse(t *testing.T) {
	store, err := OpenStore(testdbSQLite(t))
	if err != nil {
		t.Fatal(err)
	}
	rg := rigOn(t, store, nil)
	ctx := context.Background()
	j := rg.journal
	old := time.Now().Add(-time.Hour)
	j.RecordReceipt(ctx, "link:m", "+48600111222/7", Receipt{Stat: "DELIVRD", Delivered: true, Final: true, At: old})
	id := NewID(time.Now())
	rec := Record{ID: id, Received: time.Now(), Updated: time.Now(), OA: "1", DA: "+48600111222", State: StateDelivered,
		Refs: []channels.Ref{{System: "link:m", Ref: "+48600111222/7", Part: 1, Parts: 1, At: time.Now()}}}
	if err := j.Put(ctx, "", []Record{rec}); err != nil {
		t.Fatal(err)
	}
	parts, _ := j.Receipts(ctx, id)
	if len(parts) != 1 || parts[0].Stat != "" || parts[0].Delivered {
		t.Fatalf("stale receipt kept: %+v", parts)
	}
}

func TestExplain(t *testing.T) {
	rg, _, _ := linkRig(t, testdbSQLite(t), nil)
	cfg := rg.r.cfg
	cfg.Routes = append([]Route{{Pattern: regexp.MustCompile(`\+4860[0-9]+`), Link: "gsm"}}, cfg.Routes...)
	for _, c := range []struct {
		n, want string
		link    string
	}{
		{"1001", "in PBXNumbers with letter S", ""},
		{"0601234567", `route 1 (pattern "\\+4860[0-9]+")`, "gsm"},
		{"0048221234999", "route 2", "gsm"},
		{"+4915112345678", "route 3 (default", "wide"},
		{"1099", "a local number", ""},
		{"0221234567", "is a number of the mobile link gsm", ""},
	} {
		w, err := Explain(context.Background(), cfg, rg.dir, c.n)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(w.Why, c.want) || w.Link != c.link {
			t.Errorf("%s: %+v", c.n, w)
		}
	}
	if _, err := Explain(context.Background(), cfg, rg.dir, "../x"); !errors.Is(err, ErrNotNumber) {
		t.Fatal(err)
	}
}

func TestSubmitOnce(t *testing.T) {
	work := t.TempDir()
	msg := []byte("oa=+48600111222\nda=+48221234567\nud=hi\n")
	id, dup, err := SubmitOnce(work, "modem-abc", "+48221234567", msg, true, time.Now())
	if err != nil || dup || id == "" {
		t.Fatal(id, dup, err)
	}
	if _, dup, _ := SubmitOnce(work, "modem-abc", "+48221234567", msg, false, time.Now()); !dup {
		t.Fatal("second submit not recognised")
	}
	// A crash after the link and before the rename: the next try finishes it.
	inbox := InboxDir(work)
	os.WriteFile(filepath.Join(inbox, ".once-modem-def"), msg, 0o640)
	os.Link(filepath.Join(inbox, ".once-modem-def"), filepath.Join(seenDir(work), "modem-def"))
	id2, dup, err := SubmitOnce(work, "modem-def", "+48221234567", msg, false, time.Now())
	if err != nil || dup || id2 == "" {
		t.Fatal(id2, dup, err)
	}
	// A crash before the link: written, never announced, written again.
	os.WriteFile(filepath.Join(inbox, ".once-modem-ghi"), []byte("torn"), 0o640)
	if _, dup, err := SubmitOnce(work, "modem-ghi", "+48221234567", msg, false, time.Now()); err != nil || dup {
		t.Fatal(dup, err)
	}
	entries, _ := os.ReadDir(inbox)
	n := 0
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), ".") {
			t.Errorf("left behind: %s", e.Name())
			continue
		}
		n++
		if b, _ := os.ReadFile(filepath.Join(inbox, e.Name())); string(b) != string(msg) {
			t.Errorf("%s holds %q", e.Name(), b)
		}
	}
	if n != 3 {
		t.Fatalf("%d queued, want 3", n)
	}
	ForgetSeen(work, "modem-abc")
	if _, dup, _ := SubmitOnce(work, "modem-abc", "+48221234567", msg, false, time.Now()); dup {
		t.Fatal("forgotten key still known")
	}
	if _, _, err := SubmitOnce(work, "../x", "+48221234567", msg, false, time.Now()); err == nil {
		t.Fatal("bad key accepted")
	}
}
