package main

// End-to-end tests of the mobile link (issue 14) through the real binary: a
// `serve` with an SMPP link bound to the npm smpp SMSC, or a modem link on the
// simulated stick, a real SQLite or MariaDB directory and journal, and the
// artefacts each PBX letter produces. Faults are injected at the peers: the
// SMSC cuts the connection mid-window, leaves a submit unanswered, throttles;
// the stick is unplugged mid-send; serve is killed between reading a text from
// the SIM and deleting it.

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"smsrouter/asteriskconf/ami/amitest"
	"smsrouter/internal/modemsim"
	"smsrouter/internal/smsctest"
	"smsrouter/internal/testdb"
	"smsrouter/router"
)

// linkEntries are the PBX numbers of the link tests: one of each letter.
var linkEntries = []router.Entry{
	{Number: "1001", Letter: 'S', Extension: "PJSIP/1001"},
	{Number: "1002", Letter: 'F', Extension: "PJSIP/fax1002"},
	{Number: "1003", Letter: 'V', Extension: "PJSIP/1003"},
	{Number: "1004", Letter: 'T', Extension: "PJSIP/1004"},
	{Number: "1005", Letter: 'C', Extension: "-"},
}

const (
	linkNumber   = "+48221234567" // the link's own number
	mobileSender = "+48600999888"
)

// linkTOML is the configuration beside a link: the plan, the T channel on a
// fake AMI, a command service, quick retries.
func linkTOML(amiAddr string) string {
	return fmt.Sprintf(`
[queue]
sync = false
retry_min = "1s"
retry_max = "2s"
rescan = "1s"

[numbers]
country_code = "48"
extension_length = 4

[sip]
ami_addr = %q
username = "smsrouter"
secret = "s3cret"

[voice]
engine = "espeak-ng"

[[command.rule]]
numbers = ["1005"]
keyword = "PING"
action = "reply"
reply = "PONG to {{.From}}"

[[route]]
prefix = "+48"
link = "mobile"
`, amiAddr)
}

// waitUntil polls cond for up to limit.
func waitUntil(t *testing.T, limit time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", limit, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// waitUntilOr is waitUntil that runs explain before failing.
func waitUntilOr(t *testing.T, limit time.Duration, what string, explain func(), cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for !cond() {
		if time.Now().After(deadline) {
			explain()
			t.Fatalf("timed out after %v waiting for %s", limit, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// journalRow reads one row, or nil.
func (b *bed) journalRow(id string) *router.Record {
	r, err := router.NewJournal(b.store).Get(context.Background(), id)
	if err != nil {
		return nil
	}
	return &r
}

// rows returns the journal rows matching pred.
func (b *bed) rows(pred func(router.Record) bool) []router.Record {
	b.t.Helper()
	recs, err := router.NewJournal(b.store).List(context.Background(), router.Filter{Limit: 10000})
	if err != nil {
		b.t.Fatal(err)
	}
	var out []router.Record
	for _, r := range recs {
		if pred(r) {
			out = append(out, r)
		}
	}
	return out
}

func detailMap(t *testing.T, r router.Record) map[string]any {
	t.Helper()
	d := map[string]any{}
	if err := json.Unmarshal([]byte(r.Detail), &d); err != nil {
		t.Fatalf("detail %q: %v", r.Detail, err)
	}
	return d
}

// morxFrom drops a message from a PBX phone into sms/morx as app_sms writes it.
func (b *bed) morxFrom(oa, da, text string, ucs2 bool) {
	b.t.Helper()
	name := fmt.Sprintf("%s.%s", oa, time.Now().Format("2006-01-02T15:04:05.000000000"))
	dcs := ""
	if ucs2 {
		dcs = "dcs=8\n"
	}
	body := fmt.Sprintf("oa=%s\nda=%s\nscts=%s\n%sud=%s\n", oa, da, time.Now().UTC().Format("2006-01-02T15:04:05"), dcs, text)
	tmp := filepath.Join(b.morx, "."+name)
	writeFile(b.t, tmp, []byte(body))
	if err := os.Rename(tmp, filepath.Join(b.morx, name)); err != nil {
		b.t.Fatal(err)
	}
}

// submits collects the SMSC's submit events, parsed.
func submits(t *testing.T, s *smsctest.SMSC, n int, limit time.Duration) []smsctest.Submit {
	t.Helper()
	var out []smsctest.Submit
	for len(out) < n {
		ev, ok := s.WaitFor("submit", nil, limit)
		if !ok {
			t.Fatalf("the SMSC got %d submits in %v, want %d", len(out), limit, n)
		}
		sub, err := smsctest.ParseSubmit(ev)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, sub)
	}
	return out
}

// artefacts lists the files a letter left in the spool: mttx files and call
// files for S, fax TIFFs, voice WAVs.
func (b *bed) artefacts(sub, prefix string) []string {
	var out []string
	for _, n := range b.list(sub) {
		if strings.HasPrefix(n, prefix) {
			out = append(out, n)
		}
	}
	return out
}

// checkLetters: a text from the mobile network to the link's number reaches
// each letter's artefact ("<ext> text" picks the extension), and the C
// service's answer goes back to the mobile sender through the link.
func checkLetters(t *testing.T, b *bed, pbx *amitest.PBX, inject func(text string), reply func() string) {
	t.Helper()
	for _, l := range []struct{ ext, text string }{
		{"1001", "to the SMS phone"}, {"1002", "to the fax"}, {"1003", "to the voice call"},
		{"1004", "to the softphone"}, {"1005", "PING"},
	} {
		inject(l.ext + " " + l.text)
	}
	waitUntil(t, 60*time.Second, "every letter's delivery", func() bool {
		return len(b.rows(func(r router.Record) bool {
			return r.OA == mobileSender && r.State == router.StateDelivered && strings.HasPrefix(r.DA, "100")
		})) == 5
	})
	// A batch's files are published, and its calls placed, after its journal
	// write: wait for them before looking closer.
	waitUntilOr(t, 20*time.Second, "the delivered messages' files", func() {
		t.Logf("outgoing %v, fax %v, voice %v", b.list("outgoing"), b.list("fax"), b.list("voice"))
	}, func() bool {
		for _, a := range [][2]string{{"outgoing", "smsrouter.mttx.1001."}, {"fax", "smsrouter-fax-"},
			{"outgoing", "smsrouter.fax."}, {"voice", "smsrouter-"}, {"outgoing", "smsrouter.voice."}} {
			if len(b.artefacts(a[0], a[1])) == 0 {
				return false
			}
		}
		return true
	})
	// S: the mttx file for the phone, and the call that hands it over.
	texts, queues := b.delivered()
	found := false
	for id, text := range texts {
		if queues[id] == "1001" && text == "to the SMS phone" {
			found = true
		}
	}
	if !found || len(b.artefacts("outgoing", "smsrouter.mttx.1001.")) == 0 {
		t.Fatalf("S: mttx %v, calls %v", texts, b.list("outgoing"))
	}
	// F: a TIFF and the SendFax call file.
	if len(b.artefacts("fax", "smsrouter-fax-")) == 0 || len(b.artefacts("outgoing", "smsrouter.fax.")) == 0 {
		t.Fatalf("F: fax %v, outgoing %v", b.list("fax"), b.list("outgoing"))
	}
	// V: a WAV and the Playback call file.
	if len(b.artefacts("voice", "smsrouter-")) == 0 || len(b.artefacts("outgoing", "smsrouter.voice.")) == 0 {
		t.Fatalf("V: voice %v, outgoing %v", b.list("voice"), b.list("outgoing"))
	}
	// T: MessageSend to the endpoint, from the mobile sender.
	sent := pbx.Sent()
	if len(sent) != 1 || sent[0].To != "pjsip:1004" || sent[0].Body != "to the softphone" || sent[0].From != mobileSender {
		t.Fatalf("T: %+v", sent)
	}
	// C: the answer leaves through the link to the mobile sender.
	if got := reply(); got != "PONG to "+mobileSender {
		t.Fatalf("C reply through the link: %q", got)
	}
	// The PBX phones saw the sender in a form they can reply to.
	for _, r := range b.rows(func(r router.Record) bool { return r.DA == "1001" && r.OA == mobileSender }) {
		if d := detailMap(t, r); d["inbound"] == nil {
			t.Fatalf("no inbound detail: %v", d)
		}
	}
}

// TestLinkSMPPEndToEnd: PBX phones text mobile numbers through an SMPP link
// and the SMSC gets exactly the texts (GSM 7-bit, Polish and Greek UCS-2, a
// 400-character text in parts), delivery receipts reach the journal, and a
// mobile phone reaches a PBX number of every letter through the same link.
func TestLinkSMPPEndToEnd(t *testing.T) {
	testdb.Each(t, func(t *testing.T, dsn string) {
		s := smsctest.Start(t)
		s.Timeout = 30 * time.Second
		pbx := amitest.NewPBX(t, "smsrouter", "s3cret")
		pbx.Set("1004", "Reachable")
		metricsAddr := fmt.Sprintf("127.0.0.1:%d", smsctest.FreePort(t))
		b := newBed(t, dsn, linkTOML(pbx.Server.Addr)+fmt.Sprintf(`
[metrics]
listen = %q

[[link]]
name = "mobile"
kind = "smpp"
number = %q
addr = %q
system_id = "smsrouter"
password = "secret"
receipts = true
notify_failed = true
reconnect_min = "100ms"
`, metricsAddr, linkNumber, s.Addr()), linkEntries...)
		srv := startServe(t, b)
		s.Wait("bind", nil)

		// PBX → mobile: the exact texts.
		long := strings.Repeat("Four hundred characters of plain GSM text, 0123456789. ", 8)[:400]
		want := map[string]string{
			"+48601000001": "Hello from the PBX: 100% @home, (ok)?",
			"+48601000002": "Zażółć gęślą jaźń",
			"+48601000003": "Καλημέρα κόσμε",
			"+48601000004": long,
		}
		b.morxFrom("1001", "0601000001", want["+48601000001"], false)
		b.morxFrom("1001", "0601000002", want["+48601000002"], true)
		b.morxFrom("1001", "+48601000003", want["+48601000003"], true)
		b.morxFrom("1001", "0048601000004", want["+48601000004"], false)
		subs := submits(t, s, 6, 30*time.Second)
		got := smsctest.Joined(subs)
		for to, text := range want {
			if g := got[strings.TrimPrefix(to, "+")]; len(g) != 1 || g[0] != text {
				t.Errorf("SMSC got for %s: %q, want %q", to, g, text)
			}
		}
		for _, sub := range subs {
			wantCoding := 0
			if sub.Dest == "48601000002" || sub.Dest == "48601000003" {
				wantCoding = 8
			}
			if sub.Coding != wantCoding || sub.Source != strings.TrimPrefix(linkNumber, "+") || !sub.Registered {
				t.Errorf("submit %+v", sub)
			}
		}
		// The journal knows the link and the SMSC's message ids.
		var rows []router.Record
		waitUntil(t, 10*time.Second, "the journal rows", func() bool {
			rows = b.rows(func(r router.Record) bool { return r.Letter == "L" && r.State == router.StateDelivered })
			return len(rows) == 4
		})
		for _, r := range rows {
			d := detailMap(t, r)
			ids, _ := d["message_ids"].([]any)
			if d["link"] != "mobile" || len(ids) == 0 || ids[0] == "" {
				t.Fatalf("journal row %+v", r)
			}
		}

		// Receipts: delivered for the first three, failed for the long one.
		for _, sub := range subs {
			stat, state := "DELIVRD", 2
			if sub.Dest == "48601000004" {
				stat, state = "UNDELIV", 5
			}
			s.Send(map[string]any{"cmd": "receipt", "message_id": sub.MessageID, "stat": stat, "state": state, "err": "001",
				"source": sub.Dest, "dest": sub.Source, "tlvs": true})
		}
		waitUntilOr(t, 30*time.Second, "receipts in the journal", func() {
			for _, r := range b.rows(func(r router.Record) bool { return r.Letter == "L" }) {
				t.Logf("%s %s %s %s", r.DA, r.State, r.LastError, r.Detail)
			}
			t.Logf("serve:\n%s", srv.out.String())
		}, func() bool {
			n := 0
			for _, r := range b.rows(func(r router.Record) bool { return r.Letter == "L" }) {
				h := detailString(r.Detail, "handset")
				if r.DA == "+48601000004" && strings.HasPrefix(h, "failed: UNDELIV") && strings.HasPrefix(r.LastError, "failed: UNDELIV") {
					n++
				} else if r.DA != "+48601000004" && h == "delivered to handset" {
					n++
				}
			}
			return n == 4
		})
		// The sender of the failed one is told (notify_failed), on the SMS phone.
		waitUntil(t, 30*time.Second, "the failure notice", func() bool {
			texts, queues := b.delivered()
			for id, text := range texts {
				if queues[id] == "1001" && strings.Contains(text, "Cannot deliver SMS to +48601000004") {
					return true
				}
			}
			return false
		})
		for _, ev := range s.All("deliver_resp") {
			if smsctest.Num(ev, "status") != 0 {
				t.Fatalf("a receipt was refused: %v", ev)
			}
		}

		// Mobile → PBX, every letter; the C reply comes back through the link.
		inject := func(text string) {
			s.Send(map[string]any{"cmd": "deliver", "source": strings.TrimPrefix(mobileSender, "+"), "dest": strings.TrimPrefix(linkNumber, "+"),
				"data_coding": 0, "sm_hex": hex.EncodeToString([]byte(text))})
		}
		checkLetters(t, b, pbx, inject, func() string {
			ev, ok := s.WaitFor("submit", func(e map[string]any) bool { return e["destination_addr"] == "48600999888" }, 30*time.Second)
			if !ok {
				return ""
			}
			sub, _ := smsctest.ParseSubmit(ev)
			return sub.Text
		})

		// A long text from the mobile network, in parts, joined before the
		// first word is read.
		parts := []string{"1001 first part of a long one, ", "the second part, ", "and the third."}
		for _, p := range []int{2, 0, 1} {
			udh := fmt.Sprintf("0500037703%02x", p+1)
			s.Send(map[string]any{"cmd": "deliver", "source": "48600999777", "dest": "48221234567", "esm_class": 0x40,
				"sm_hex": udh + hex.EncodeToString([]byte(parts[p]))})
		}
		waitUntil(t, 30*time.Second, "the joined long text", func() bool {
			texts, queues := b.delivered()
			for id, text := range texts {
				if queues[id] == "1001" && text == "first part of a long one, the second part, and the third." {
					return true
				}
			}
			return false
		})

		// The state of the link: metrics, /healthz, doctor.
		if v := metricValue(t, "http://"+metricsAddr+"/metrics", `smsrouter_link_up{kind="smpp",link="mobile"}`); v != 1 {
			t.Errorf("smsrouter_link_up = %v", v)
		}
		if v := metricValue(t, "http://"+metricsAddr+"/metrics", `smsrouter_link_events_total{event="receipt",link="mobile"}`); v < 4 {
			t.Errorf("receipts counted: %v", v)
		}
		out, _, _ := b.run(context.Background(), "doctor", "--config", b.conf)
		if !strings.Contains(out, "ok    link mobile    smpp (serve): transceiver bound") {
			t.Errorf("doctor:\n%s", out)
		}
		show, _, _ := b.run(context.Background(), "journal", "show", rows[0].ID, "--config", b.conf)
		if !strings.Contains(show, "link:         mobile") || !strings.Contains(show, "message id") {
			t.Errorf("journal show:\n%s", show)
		}

		// send --via, and the dry run.
		out, errOut, code := b.run(context.Background(), "send", "--config", b.conf, "--from", "1001", "--to", "+4915112345678", "--via", "mobile", "via the link")
		if code != 0 {
			t.Fatalf("send --via: %d %s", code, errOut)
		}
		viaID := strings.TrimSpace(out)
		ev, ok := s.WaitFor("submit", func(e map[string]any) bool { return e["destination_addr"] == "4915112345678" }, 30*time.Second)
		if !ok || ev["text"] != "via the link" {
			t.Fatalf("--via: %v", ev)
		}
		waitUntil(t, 10*time.Second, "the --via row", func() bool {
			r := b.journalRow(viaID)
			return r != nil && r.State == router.StateDelivered
		})
		if _, errOut, code := b.run(context.Background(), "send", "--config", b.conf, "--from", "1001", "--to", "1002", "--via", "mobile", "x"); code == 0 || !strings.Contains(errOut, "PBX number") {
			t.Fatalf("--via to a PBX number: %d %s", code, errOut)
		}
		out, _, code = b.run(context.Background(), "route", "--config", b.conf, "0601234567", "1099", "+4915112345678")
		if code != 1 || !strings.Contains(out, "0601234567 → +48601234567") || !strings.Contains(out, "through the mobile link mobile") ||
			!strings.Contains(out, "1099") || !strings.Contains(out, "no route matches") {
			t.Fatalf("route: %d\n%s", code, out)
		}
		srv.stop(t)
	})
}

// TestLinkModemEndToEnd is the same through a GSM modem on a pseudo-terminal.
func TestLinkModemEndToEnd(t *testing.T) {
	testdb.Each(t, func(t *testing.T, dsn string) {
		sim := modemsim.New(t)
		pbx := amitest.NewPBX(t, "smsrouter", "s3cret")
		pbx.Set("1004", "Reachable")
		b := newBed(t, dsn, linkTOML(pbx.Server.Addr)+fmt.Sprintf(`
[[link]]
name = "mobile"
kind = "modem"
number = %q
port = %q
receipts = true
sweep_every = "1s"
command_timeout = "2s"
reconnect_min = "100ms"
reconnect_max = "500ms"
`, linkNumber, sim.Link), linkEntries...)
		srv := startServe(t, b)
		waitUntil(t, 10*time.Second, "the modem opened", func() bool { return sim.Saw("AT+CNMI=2,1,0,2,0") })

		long := string([]rune(strings.Repeat("Tekst po polsku: zażółć gęślą jaźń. ", 12))[:400])
		b.morxFrom("1001", "0601000001", "Hello from the PBX", false)
		b.morxFrom("1001", "0601000002", long, true)
		byTo := map[string][]string{}
		waitUntil(t, 30*time.Second, "the PDUs", func() bool {
			byTo = map[string][]string{}
			for _, p := range sim.SentPDUs() {
				tp := modemsim.DecodeSent(t, p)
				text, _, _, _ := modemsim.SentText(t, p)
				byTo[tp.DA.Number()] = append(byTo[tp.DA.Number()], text)
			}
			return strings.Join(byTo["+48601000001"], "") == "Hello from the PBX" && strings.Join(byTo["+48601000002"], "") == long
		})
		if n := len(byTo["+48601000002"]); n != 6 {
			t.Fatalf("400 UCS-2 characters in %d parts, want 6", n)
		}
		// Status reports for the short one (delivered) and the first part of
		// the long one (failed).
		var short router.Record
		waitUntil(t, 10*time.Second, "the journal rows", func() bool {
			rows := b.rows(func(r router.Record) bool { return r.Letter == "L" && r.State == router.StateDelivered })
			for _, r := range rows {
				if r.DA == "+48601000001" {
					short = r
				}
			}
			return len(rows) == 2
		})
		parts, err := router.NewJournal(b.store).Receipts(context.Background(), short.ID)
		if err != nil || len(parts) != 1 {
			t.Fatalf("refs %+v %v", parts, err)
		}
		mr := parts[0].Ref[strings.LastIndex(parts[0].Ref, "/")+1:]
		var mrN int
		fmt.Sscan(mr, &mrN)
		sim.Receive(modemsim.StatusReportPDU(t, byte(mrN), "+48601000001", 0x00), true)
		waitUntil(t, 30*time.Second, "the status report in the journal", func() bool {
			r := b.journalRow(short.ID)
			return r != nil && detailString(r.Detail, "handset") == "delivered to handset"
		})

		seq := 0
		inject := func(text string) {
			seq++
			for _, p := range modemsim.DeliverPDUs(t, mobileSender, text, seq, time.Now()) {
				sim.Receive(p, true)
			}
		}
		checkLetters(t, b, pbx, inject, func() string {
			var got string
			waitUntil(t, 30*time.Second, "the C reply through the modem", func() bool {
				for _, p := range sim.SentPDUs() {
					if modemsim.DecodeSent(t, p).DA.Number() == mobileSender {
						got, _, _, _ = modemsim.SentText(t, p)
						return true
					}
				}
				return false
			})
			return got
		})
		waitUntil(t, 10*time.Second, "the SIM emptied", func() bool { return len(sim.Stored()) == 0 })
		srv.stop(t)
	})
}

// TestLinkSMPPFaults: the SMSC cuts the connection with submits in flight,
// leaves one unanswered, and throttles. Nothing is lost; a text the SMSC may
// have got twice is exactly one the journal says was resent after no answer.
func TestLinkSMPPFaults(t *testing.T) {
	s := smsctest.Start(t)
	s.Timeout = 60 * time.Second
	b := newBed(t, "", `
[queue]
sync = false
retry_min = "1s"
retry_max = "2s"
rescan = "1s"
parallel = 16

[numbers]
country_code = "48"
extension_length = 4

[[route]]
link = "mobile"

[[link]]
name = "mobile"
kind = "smpp"
number = "+48221234567"
addr = "`+s.Addr()+`"
system_id = "smsrouter"
password = "secret"
window = 10
response_timeout = "1s"
reconnect_min = "100ms"
reconnect_max = "500ms"
`, linkEntries...)
	startServe(t, b)
	s.Wait("bind", nil)

	send := func(n int, tag string) map[string]bool {
		want := map[string]bool{}
		for i := range n {
			text := fmt.Sprintf("%s message %02d", tag, i)
			b.morxFrom("1001", fmt.Sprintf("+486010%05d", i), text, false)
			want[text] = true
		}
		return want
	}
	// check waits until every text got to the SMSC and every row is delivered,
	// then compares what the SMSC saw twice with what the journal calls resent.
	check := func(tag string, want map[string]bool) (resent int) {
		t.Helper()
		waitUntil(t, 60*time.Second, tag+": every message delivered", func() bool {
			return len(b.rows(func(r router.Record) bool {
				return r.State == router.StateDelivered && strings.HasPrefix(r.Text, tag)
			})) == len(want)
		})
		seen, taken := map[string]int{}, map[string]int{}
		for _, ev := range s.All("submit") {
			if text, _ := ev["text"].(string); strings.HasPrefix(text, tag) {
				if ev["action"] == "throttle" || ev["action"] == "status" {
					continue // refused outright: the SMSC does not have it
				}
				seen[text]++
				if ev["action"] == "ok" {
					taken[text]++
				}
			}
		}
		for text := range want {
			if taken[text] == 0 {
				t.Errorf("%s: lost %q (never accepted by the SMSC)", tag, text)
			}
		}
		for _, r := range b.rows(func(r router.Record) bool { return strings.HasPrefix(r.Text, tag) }) {
			d := detailMap(t, r)
			said := d["resent_parts"] != nil
			if said {
				resent++
			}
			if seen[r.Text] > 1 && !said {
				t.Errorf("%s: %q reached the SMSC %d times and the journal does not say why", tag, r.Text, seen[r.Text])
			}
		}
		return resent
	}

	// 1. The connection is cut with three submits taken in and unanswered.
	s.Send(map[string]any{"cmd": "mode", "submit": "drop", "n": 3})
	s.Wait("mode", nil)
	want := send(10, "dropped")
	if resent := check("dropped", want); resent < 1 {
		t.Errorf("no message was marked resent after the connection dropped mid-window")
	}
	// The deferred tries said what was uncertain.
	var said bool
	for _, r := range b.rows(func(r router.Record) bool { return strings.HasPrefix(r.Text, "dropped") }) {
		as, _ := router.NewJournal(b.store).Attempts(context.Background(), r.ID)
		for _, a := range as {
			if a.State == router.StateDeferred && strings.Contains(a.Error, "uncertain") && strings.Contains(a.Error, "may arrive twice") {
				said = true
			}
		}
	}
	if !said {
		t.Error("no deferred try says a part is uncertain")
	}

	// 2. One submit_sm_resp never comes.
	s.Send(map[string]any{"cmd": "mode", "submit": "silent", "n": 1})
	s.Wait("mode", nil)
	want = send(1, "silent")
	if resent := check("silent", want); resent != 1 {
		t.Errorf("silent: %d resent, want 1", resent)
	}

	// 3. Throttling slows down, never fails a message.
	s.Send(map[string]any{"cmd": "mode", "submit": "throttle", "n": 5})
	s.Wait("mode", nil)
	want = send(5, "throttled")
	check("throttled", want)
	for _, r := range b.rows(func(r router.Record) bool { return strings.HasPrefix(r.Text, "throttled") }) {
		if r.Attempts != 0 || detailMap(t, r)["resent_parts"] != nil {
			t.Errorf("throttled message retried: %+v", r)
		}
	}
}

// TestLinkModemFaults: the stick is unplugged in the middle of a send, and
// serve is killed between reading a text from the SIM and deleting it.
func TestLinkModemFaults(t *testing.T) {
	sim := modemsim.New(t)
	b := newBed(t, "", `
[queue]
sync = false
retry_min = "1s"
retry_max = "2s"
rescan = "1s"

[numbers]
country_code = "48"
extension_length = 4

[[route]]
link = "mobile"

[[link]]
name = "mobile"
kind = "modem"
number = "+48221234567"
port = "`+sim.Link+`"
inbound = "1001"
sweep_every = "1s"
command_timeout = "1s"
send_timeout = "2s"
reconnect_min = "100ms"
reconnect_max = "300ms"
`, linkEntries...)
	srv := startServe(t, b)
	waitUntil(t, 10*time.Second, "the modem opened", func() bool { return sim.Saw("AT+CNMI=2,1,0,2,0") })

	// 1. Unplugged after the PDU went out, before +CMGS.
	sim.Set(func(s *modemsim.Sim) { s.StallCMGS = true })
	b.morxFrom("1001", "+48601000001", "sent while unplugged", false)
	waitUntil(t, 10*time.Second, "the PDU", func() bool { return len(sim.SentPDUs()) == 1 })
	sim.Unplug()
	var row router.Record
	waitUntil(t, 10*time.Second, "the uncertain try journaled", func() bool {
		rows := b.rows(func(r router.Record) bool { return r.Text == "sent while unplugged" })
		if len(rows) == 1 && rows[0].State == router.StateDeferred && strings.Contains(rows[0].LastError, "uncertain") {
			row = rows[0]
			return true
		}
		return false
	})
	if !strings.Contains(row.LastError, "part 1 of 1 uncertain") {
		t.Fatalf("last error %q", row.LastError)
	}
	sim.Set(func(s *modemsim.Sim) { s.StallCMGS = false })
	sim.Plug()
	waitUntil(t, 30*time.Second, "the resend", func() bool {
		r := b.journalRow(row.ID)
		return r != nil && r.State == router.StateDelivered
	})
	if d := detailMap(t, *b.journalRow(row.ID)); d["resent_parts"] == nil || len(sim.SentPDUs()) != 2 {
		t.Fatalf("detail %v, %d PDUs", d, len(sim.SentPDUs()))
	}

	// 2. kill -9 after the text is queued and while its deletion hangs.
	sim.Set(func(s *modemsim.Sim) { s.StallCMGD = true })
	for _, p := range modemsim.DeliverPDUs(t, "+48600999888", "read, queued, not deleted", 5, time.Now()) {
		sim.Receive(p, true)
	}
	waitUntil(t, 10*time.Second, "the deletion", func() bool {
		for _, c := range sim.Commands() {
			if strings.HasPrefix(c, "AT+CMGD=") {
				return true
			}
		}
		return false
	})
	if err := srv.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	<-srv.done
	if len(sim.Stored()) != 1 {
		t.Fatalf("the SIM holds %d messages", len(sim.Stored()))
	}
	sim.Set(func(s *modemsim.Sim) { s.StallCMGD = false })
	srv2 := startServe(t, b)
	waitUntil(t, 30*time.Second, "the SIM emptied", func() bool { return len(sim.Stored()) == 0 })
	waitUntil(t, 30*time.Second, "the delivery", func() bool {
		return len(b.rows(func(r router.Record) bool {
			return r.Text == "read, queued, not deleted" && r.State == router.StateDelivered
		})) >= 1
	})
	time.Sleep(2 * time.Second) // a second copy would have arrived by now
	rows := b.rows(func(r router.Record) bool { return r.Text == "read, queued, not deleted" })
	texts, _ := b.delivered()
	n := 0
	for _, text := range texts {
		if text == "read, queued, not deleted" {
			n++
		}
	}
	if len(rows) != 1 || n != 1 {
		t.Fatalf("after the crash: %d journal rows, %d deliveries, want 1 and 1", len(rows), n)
	}
	if !strings.Contains(srv2.out.String(), "handed over again after a crash") {
		t.Errorf("serve did not say it recognised the message:\n%s", srv2.out.String())
	}
	srv2.stop(t)
}

// TestLinkDoctorAndDrainWithoutServe: with no serve running, doctor binds the
// SMPP link and opens the modem itself and says so (a refused password is a
// failure with its fix), and a drain hands a message for a link to serve
// instead of sending it: deferred for a moment, then sent once serve runs.
func TestLinkDoctorAndDrainWithoutServe(t *testing.T) {
	s := smsctest.Start(t)
	sim := modemsim.New(t)
	links := func(password string) string {
		return fmt.Sprintf(`
[numbers]
country_code = "48"
extension_length = 4

[[route]]
link = "op"

[[link]]
name = "op"
kind = "smpp"
number = "+48221234567"
addr = %q
system_id = "smsrouter"
password = %q

[[link]]
name = "gsm"
kind = "modem"
number = "+48601000000"
port = %q
`, s.Addr(), password, sim.Link)
	}
	b := newBed(t, "", links("secret"), linkEntries...)
	out, _, _ := b.run(context.Background(), "doctor", "--config", b.conf)
	for _, want := range []string{
		"ok    link op        smpp: bound to " + s.Addr() + " as smsrouter (transceiver; serve is not running it)",
		"ok    link gsm       modem " + sim.Link + ": open, registered (home), signal -79 dBm, SMSC +48790998250 (serve is not running it)",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("doctor lacks %q:\n%s", want, out)
		}
	}
	b.writeConfig(links("wrong"))
	out, _, code := b.run(context.Background(), "doctor", "--config", b.conf)
	if code != 1 || !strings.Contains(out, "FAIL  link op") || !strings.Contains(out, "ESME_RINVPASWD") || !strings.Contains(out, "fix: check system_id and the password") {
		t.Errorf("doctor with a wrong password: %d\n%s", code, out)
	}
	b.writeConfig(links("secret"))

	b.morxFrom("1001", "0601000001", "waits for serve", false)
	out, code = b.drain(context.Background())
	if code != 1 || !strings.Contains(out, "deferred 1") {
		t.Fatalf("drain: %d %s", code, out)
	}
	rows := b.rows(func(r router.Record) bool { return r.Text == "waits for serve" })
	if len(rows) != 1 || rows[0].State != router.StateDeferred || !strings.Contains(rows[0].LastError, "runs in smsrouter serve") ||
		rows[0].NextAttempt.Sub(rows[0].Updated) > 3*time.Second {
		t.Fatalf("after drain: %+v", rows)
	}
	if n := len(s.All("submit")); n != 0 {
		t.Fatalf("drain sent %d", n)
	}
	startServe(t, b)
	ev, ok := s.WaitFor("submit", nil, 30*time.Second)
	if !ok || ev["text"] != "waits for serve" {
		t.Fatalf("serve did not send it: %v", ev)
	}
}
