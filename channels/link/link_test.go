package link

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"smsrouter/channels"
	"smsrouter/internal/modemsim"
	"smsrouter/internal/numplan"
	"smsrouter/internal/smsctest"
	"smsrouter/mobile/modem"
	"smsrouter/mobile/smpp"
)

type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

func testLogger(t testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// smppLink runs an SMPP client bound to s and a channel on it.
func smppLink(t *testing.T, s *smsctest.SMSC, cfg Config, ccfg smpp.Config) (*Channel, *smpp.Client) {
	t.Helper()
	ccfg.Addr, ccfg.SystemID, ccfg.Password = s.Addr(), "smsrouter", "secret"
	ccfg.Bind = smpp.Transmitter
	if ccfg.ReconnectMin == 0 {
		ccfg.ReconnectMin, ccfg.ReconnectMax = 50*time.Millisecond, 200*time.Millisecond
	}
	ccfg.Logger = testLogger(t)
	c, err := smpp.New(ccfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { c.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	s.Wait("bind", nil)
	cfg.Transport = SMPP(c)
	waitFor(t, "bound", func() bool { return cfg.Transport.Ready() == nil })
	return newChannel(t, cfg), c
}

func newChannel(t *testing.T, cfg Config) *Channel {
	t.Helper()
	if cfg.Name == "" {
		cfg.Name = "sms1"
	}
	if cfg.MarkerDir == "" {
		cfg.MarkerDir = filepath.Join(t.TempDir(), "link-sent")
	}
	if cfg.Number == "" {
		cfg.Number = "+48221234567"
	}
	cfg.Logger = testLogger(t)
	ch, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return ch
}

var msgSeq int

func message(to, text string) channels.Message {
	msgSeq++
	return channels.Message{
		ID: channels.NewID(time.Now()), From: "1001", To: to, Text: text, Letter: 'L', Extension: "sms1",
		Attempt: 1, Validity: time.Now().Add(time.Hour),
	}
}

// submitted is what the SMSC got in one submit_sm.
type submitted struct {
	text   string
	coding int
	udh    []byte
	source string
	dest   string
}

func decodeSubmit(t *testing.T, ev map[string]any) submitted {
	t.Helper()
	s, err := smsctest.ParseSubmit(ev)
	if err != nil {
		t.Fatal(err)
	}
	return submitted{text: s.Text, coding: s.Coding, udh: s.UDH, source: s.Source, dest: s.Dest}
}

// waitSubmits returns the next n submits the SMSC reports.
func waitSubmits(s *smsctest.SMSC, n int) []map[string]any {
	var out []map[string]any
	for range n {
		out = append(out, s.Wait("submit", nil))
	}
	return out
}

func TestDeliverTexts(t *testing.T) {
	s := smsctest.Start(t)
	ch, _ := smppLink(t, s, Config{}, smpp.Config{Window: 10})
	long := strings.Repeat("The quick brown fox jumps over the lazy dog. ", 9)[:400]
	for _, c := range []struct {
		name, text string
		coding     int
		parts      int
	}{
		{"gsm 7-bit", "Hello from the PBX @ 10:30, 100€ [ok]", 0, 1},
		{"polish ucs-2", "Zażółć gęślą jaźń", 8, 1},
		{"greek ucs-2", "Καλημέρα κόσμε", 8, 1},
		{"400 characters in parts", long, 0, 3},
	} {
		t.Run(c.name, func(t *testing.T) {
			m := message("+48600111222", c.text)
			res, err := ch.Deliver(context.Background(), m)
			if err != nil {
				t.Fatal(err)
			}
			var got strings.Builder
			var ref byte
			for i := 0; i < c.parts; i++ {
				sub := decodeSubmit(t, s.Wait("submit", nil))
				if sub.coding != c.coding || sub.dest != "48600111222" || sub.source != "48221234567" {
					t.Fatalf("part %d: %+v", i+1, sub)
				}
				if c.parts > 1 {
					if len(sub.udh) != 6 || sub.udh[4] != byte(c.parts) || sub.udh[5] != byte(i+1) {
						t.Fatalf("part %d UDH % x", i+1, sub.udh)
					}
					if i > 0 && sub.udh[3] != ref {
						t.Fatalf("reference changed between parts")
					}
					ref = sub.udh[3]
				}
				got.WriteString(sub.text)
			}
			if got.String() != c.text {
				t.Fatalf("SMSC got %q, want %q", got.String(), c.text)
			}
			if len(res.Refs) != c.parts || res.Refs[0].System != "link:sms1" || res.Refs[0].Ref == "" {
				t.Fatalf("refs %+v", res.Refs)
			}
			if res.Detail["parts"] != c.parts {
				t.Fatalf("detail %v", res.Detail)
			}
			// A second delivery of the same message (a retry after a failed
			// journal write) sends nothing and reports the same refs.
			again, err := ch.Deliver(context.Background(), m)
			if err != nil || again.Detail["already_sent"] != true || again.Refs[0].Ref != res.Refs[0].Ref {
				t.Fatalf("again: %v %+v", err, again)
			}
		})
	}
	if n := len(s.All("submit")); n != 1+1+1+3 {
		t.Fatalf("SMSC saw %d submits", n)
	}
}

func TestSourceAndTextTemplate(t *testing.T) {
	s := smsctest.Start(t)
	plan := numplan.Plan{CountryCode: "48", InternationalPrefix: "00", NationalPrefix: "0", ExtensionLength: 4, DIDPrefix: "+4822123"}
	for _, c := range []struct {
		name   string
		cfg    Config
		from   string
		source string
		text   string
	}{
		{"number", Config{}, "1001", "48221234567", "hi"},
		{"sender in the DID range", Config{Source: SourceSender, Plan: plan}, "1001", "48221231001", "hi"},
		{"sender outside it", Config{Source: SourceSender, Plan: plan}, "555", "48221234567", "hi"},
		{"alphanumeric", Config{Source: "ACME"}, "1001", "ACME", "hi"},
		{"extension before the text", Config{Text: "{{.From}}: {{.Text}}"}, "1001", "48221234567", "1001: hi"},
	} {
		t.Run(c.name, func(t *testing.T) {
			c.cfg.Name = "sms1"
			ch, _ := smppLink(t, s, c.cfg, smpp.Config{})
			m := message("+48600111222", "hi")
			m.From = c.from
			if _, err := ch.Deliver(context.Background(), m); err != nil {
				t.Fatal(err)
			}
			sub := decodeSubmit(t, s.Wait("submit", nil))
			if sub.source != c.source || sub.text != c.text {
				t.Fatalf("got source %q text %q, want %q %q", sub.source, sub.text, c.source, c.text)
			}
		})
	}
}

// TestResumeAfterTemporaryFailure: part 2 of 3 refused for now; the retry
// sends parts 2 and 3 only, with the same reference.
func TestResumeAfterTemporaryFailure(t *testing.T) {
	s := smsctest.Start(t)
	ch, _ := smppLink(t, s, Config{}, smpp.Config{})
	s.Send(map[string]any{"cmd": "mode", "submit": "status", "status": 0x08, "n": 1, "after": 1})
	s.Wait("mode", nil)
	m := message("+48600111222", strings.Repeat("x", 400))
	_, err := ch.Deliver(context.Background(), m)
	if err == nil || channels.IsPermanent(err) || !strings.Contains(err.Error(), "part 2 of 3 not sent") {
		t.Fatalf("err %v", err)
	}
	res, err := ch.Deliver(context.Background(), m)
	if err != nil {
		t.Fatal(err)
	}
	subs := waitSubmits(s, 4)
	var seqs []byte
	ref := decodeSubmit(t, subs[0]).udh[3]
	for _, e := range subs {
		u := decodeSubmit(t, e).udh
		seqs = append(seqs, u[5])
		if u[3] != ref {
			t.Fatal("the retry used another concatenation reference")
		}
	}
	if string(seqs) != "\x01\x02\x02\x03" {
		t.Fatalf("parts sent % x", seqs)
	}
	if len(res.Refs) != 3 || res.Detail["resent_parts"] != nil {
		t.Fatalf("result %+v", res)
	}
}

// TestUncertainPartIsResentAndSaid: a submit_sm that gets no answer is
// reported uncertain, resent on the retry, and the result says so.
func TestUncertainPartIsResentAndSaid(t *testing.T) {
	s := smsctest.Start(t)
	ch, _ := smppLink(t, s, Config{}, smpp.Config{ResponseTimeout: 300 * time.Millisecond})
	s.Send(map[string]any{"cmd": "mode", "submit": "silent", "n": 1, "after": 1})
	s.Wait("mode", nil)
	m := message("+48600111222", strings.Repeat("y", 300))
	_, err := ch.Deliver(context.Background(), m)
	if err == nil || channels.IsPermanent(err) || !strings.Contains(err.Error(), "part 2 of 2 uncertain") || !strings.Contains(err.Error(), "may arrive twice") {
		t.Fatalf("err %v", err)
	}
	res, err := ch.Deliver(context.Background(), m)
	if err != nil {
		t.Fatal(err)
	}
	resent, _ := res.Detail["resent_parts"].([]map[string]any)
	if len(resent) != 1 || resent[0]["part"] != 2 || !strings.Contains(resent[0]["first_send"].(string), "no answer") {
		t.Fatalf("detail %v", res.Detail)
	}
	waitSubmits(s, 3) // 1, 2 unanswered, 2 again
	if n := len(s.All("submit")); n != 3 {
		t.Fatalf("%d submits, want 3", n)
	}
}

// TestCrashMidSendLeavesATrace: a process that died after deciding to send
// a part left an S line; the next try resends it and says why.
func TestCrashMidSendLeavesATrace(t *testing.T) {
	s := smsctest.Start(t)
	dir := filepath.Join(t.TempDir(), "link-sent")
	m := message("+48600111222", "short")
	os.MkdirAll(dir, 0o770)
	os.WriteFile(filepath.Join(dir, markerLog), []byte(m.ID+" S 1/1 1700000000000\n"+m.ID+" A 1/1 170000"), 0o640) // torn last line
	ch, _ := smppLink(t, s, Config{MarkerDir: dir}, smpp.Config{})
	res, err := ch.Deliver(context.Background(), m)
	if err != nil {
		t.Fatal(err)
	}
	resent, _ := res.Detail["resent_parts"].([]map[string]any)
	if len(resent) != 1 || !strings.Contains(resent[0]["first_send"].(string), "process stopped") {
		t.Fatalf("detail %v", res.Detail)
	}
}

func TestPermanentAndNotBound(t *testing.T) {
	s := smsctest.Start(t)
	ch, _ := smppLink(t, s, Config{}, smpp.Config{})
	s.Send(map[string]any{"cmd": "mode", "submit": "status", "status": 0x0B, "n": 1})
	s.Wait("mode", nil)
	_, err := ch.Deliver(context.Background(), message("+48600111222", "hi"))
	if !channels.IsPermanent(err) || channels.PublicReason(err) != publicBadNumber {
		t.Fatalf("err %v (public %q)", err, channels.PublicReason(err))
	}

	// A link whose SMSC is gone: temporary, and nothing goes anywhere.
	c, err := smpp.New(smpp.Config{Addr: "127.0.0.1:1", SystemID: "x", Bind: smpp.Transmitter, Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	down := newChannel(t, Config{Transport: SMPP(c)})
	_, err = down.Deliver(context.Background(), message("+48600111222", "hi"))
	if err == nil || channels.IsPermanent(err) || !errors.Is(err, smpp.ErrNotBound) {
		t.Fatalf("err %v", err)
	}
}

func TestElsewhere(t *testing.T) {
	_, err := Elsewhere{Name: "gsm"}.Deliver(context.Background(), message("+48600111222", "hi"))
	if d, ok := channels.RetryDelay(err); !ok || d != ElsewhereDelay || channels.IsPermanent(err) {
		t.Fatalf("err %v", err)
	}
}

// modemLink runs a modem device on the simulator and a channel on it.
func modemLink(t *testing.T, sim *modemsim.Sim) (*Channel, *modem.Device) {
	t.Helper()
	d, err := modem.New(modem.Config{Port: sim.Link, Handler: func(m *modem.Message) { m.Release() },
		CommandTimeout: time.Second, ReopenMin: 50 * time.Millisecond, ReopenMax: 200 * time.Millisecond, Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { d.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	waitFor(t, "modem open", func() bool { return d.Status().Open && d.Status().Registered })
	return newChannel(t, Config{Transport: Modem(d)}), d
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestModemDeliver(t *testing.T) {
	sim := modemsim.New(t)
	ch, _ := modemLink(t, sim)
	text := "Zażółć gęślą jaźń " + strings.Repeat("ą", 70)
	m := message("+48600111222", text)
	res, err := ch.Deliver(context.Background(), m)
	if err != nil {
		t.Fatal(err)
	}
	var got strings.Builder
	for _, p := range sim.SentPDUs() {
		txt, _, _, _ := modemsim.SentText(t, p)
		got.WriteString(txt)
	}
	if got.String() != text || len(res.Refs) != 2 || !strings.HasPrefix(res.Refs[0].Ref, "+48600111222/") {
		t.Fatalf("modem sent %q, refs %+v", got.String(), res.Refs)
	}
}

// TestModemUnpluggedMidSend: the stick took the PDU and vanished before it
// answered: uncertain; once it is back the part goes again, and it is said.
func TestModemUnpluggedMidSend(t *testing.T) {
	sim := modemsim.New(t)
	ch, d := modemLink(t, sim)
	sim.Set(func(s *modemsim.Sim) { s.StallCMGS = true })
	m := message("+48600111222", "are you there")
	errc := make(chan error, 1)
	go func() { _, err := ch.Deliver(context.Background(), m); errc <- err }()
	waitFor(t, "the PDU", func() bool { return len(sim.SentPDUs()) == 1 })
	sim.Unplug()
	err := <-errc
	if err == nil || !strings.Contains(err.Error(), "uncertain") {
		t.Fatalf("err %v", err)
	}
	// The driver notices the device is gone (else "modem back" below would be
	// its old state, seen before it noticed).
	waitFor(t, "modem gone", func() bool { return !d.Status().Open })
	// While it is away nothing is tried.
	if _, err := ch.Deliver(context.Background(), m); err == nil || !errors.Is(err, modem.ErrNotOpen) || len(sim.SentPDUs()) != 1 {
		t.Fatalf("unplugged: err %v, %d PDUs", err, len(sim.SentPDUs()))
	}
	sim.Set(func(s *modemsim.Sim) { s.StallCMGS = false })
	sim.Plug()
	waitFor(t, "modem back", func() bool { return d.Status().Open && d.Status().Registered })
	res, err := ch.Deliver(context.Background(), m)
	if err != nil {
		t.Fatal(err)
	}
	if res.Detail["resent_parts"] == nil || len(sim.SentPDUs()) != 2 {
		t.Fatalf("detail %v, %d PDUs", res.Detail, len(sim.SentPDUs()))
	}
}

func TestConcatRefIsStable(t *testing.T) {
	id := channels.NewID(time.Now())
	if concatRef(id) != concatRef(id) || concatRef(id) < 1 || concatRef(id) > 255 {
		t.Fatal(concatRef(id))
	}
}

func TestMarkersSurviveRestartAndCompact(t *testing.T) {
	dir := t.TempDir()
	mk, err := newMarkers(dir, true)
	if err != nil {
		t.Fatal(err)
	}
	w, _ := mk.open("old")
	w.sending(1, 2)
	w.accepted(1, 2, "A1")
	w, _ = mk.open("done")
	w.sending(1, 1)
	w.accepted(1, 1, "B1")
	mk.forget("done")
	w, _ = mk.open("../../etc/passwd")
	w.sending(1, 1)
	w.uncertain(1, 1, "no answer\nin 10s")
	if err := w.close(); err != nil {
		t.Fatal(err)
	}
	mk.f.Close()
	// A restart reads it all back.
	mk, err = newMarkers(dir, false)
	if err != nil {
		t.Fatal(err)
	}
	if st, _ := mk.load("old"); st.skip() != 1 || st.parts != 2 || st.acc[1].ref != "A1" {
		t.Fatalf("old: %+v", st)
	}
	if st, _ := mk.load("done"); st.parts != 0 {
		t.Fatalf("forgotten message remembered: %+v", st)
	}
	if st, _ := mk.load("../../etc/passwd"); !strings.Contains(st.doubt[1], "no answer in 10s") {
		t.Fatalf("hostile id: %+v", st)
	}
	// Compaction keeps what is young and not done.
	if err := mk.cleanup(context.Background(), time.Now().Add(-time.Hour)); err != nil {
		t.Fatal(err)
	}
	if err := mk.cleanup(context.Background(), time.Now().Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(filepath.Join(dir, markerLog)); len(b) != 0 {
		t.Fatalf("log after compacting everything away: %q", b)
	}
	w, _ = mk.open("new")
	w.sending(1, 1)
	mk.f.Close()
	mk, _ = newMarkers(dir, false)
	if st, _ := mk.load("new"); st.doubt[1] == "" {
		t.Fatal("written after compaction, lost")
	}
}

// FuzzMarkerLog: whatever the log holds (torn, hostile), reading it never
// fails and never yields an impossible state.
func FuzzMarkerLog(f *testing.F) {
	f.Add([]byte("1 S 1/2 1700000000000\n1 A 1/2 1700000000001 ABC\n1 U 2/2 1700000000002 no answer\n1 D 0/0 17"))
	f.Add([]byte("x A 300/2 1 r\n\x00\xff"))
	f.Add(append(bytes.Repeat([]byte("a"), 70000), []byte("\n1 S 1/1 1")...))
	f.Fuzz(func(t *testing.T, data []byte) {
		dir := t.TempDir()
		os.WriteFile(filepath.Join(dir, markerLog), data, 0o640)
		mk, err := newMarkers(dir, false)
		if err != nil {
			t.Fatal(err)
		}
		defer mk.f.Close()
		for id := range mk.lines {
			st, _ := mk.load(id)
			if st.skip() > st.parts || st.parts > 255 || len(st.acc) > 255 {
				t.Fatalf("%s: %+v", id, st)
			}
		}
	})
}
