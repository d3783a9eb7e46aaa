package mobile

import (
	"context"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"smsrouter/asteriskconf/smsq"
	"smsrouter/internal/modemsim"
	"smsrouter/internal/numplan"
	"smsrouter/internal/smsctest"
	"smsrouter/mobile/modem"
	"smsrouter/mobile/smpp"
	"smsrouter/mobile/smstext"
	"smsrouter/router"
)

var plan = numplan.Plan{CountryCode: "48", InternationalPrefix: "00", NationalPrefix: "0", ExtensionLength: 4, DIDPrefix: "+4822123"}

type receipts struct {
	mu   sync.Mutex
	got  []string
	fail error
}

func (rs *receipts) record(_ context.Context, system, ref string, rc router.Receipt) error {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	if rs.fail != nil {
		return rs.fail
	}
	rs.got = append(rs.got, system+" "+ref+" "+rc.Stat)
	return nil
}

func (rs *receipts) list() []string {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	return append([]string(nil), rs.got...)
}

func newReceiver(t *testing.T, mutate func(*Config)) (*Receiver, string, *receipts) {
	t.Helper()
	work := t.TempDir()
	rs := &receipts{}
	cfg := Config{Link: "gsm", Number: "+48225550000", Numbers: []string{"+48225550001"}, Plan: plan, WorkDir: work,
		Location: time.UTC, Receipts: rs.record}
	if mutate != nil {
		mutate(&cfg)
	}
	r, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return r, work, rs
}

// queued parses the files in the inbox, oldest name first.
func queued(t *testing.T, work string) []*smsq.Message {
	t.Helper()
	entries, _ := os.ReadDir(router.InboxDir(work))
	var names []string
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), ".") {
			t.Errorf("left behind: %s", e.Name())
			continue
		}
		names = append(names, e.Name())
	}
	sort.Strings(names)
	var out []*smsq.Message
	for _, n := range names {
		b, err := os.ReadFile(filepath.Join(router.InboxDir(work), n))
		if err != nil {
			t.Fatal(err)
		}
		m, err := smsq.Parse(b, time.UTC)
		if err != nil {
			t.Fatalf("%s: %v", n, err)
		}
		out = append(out, m)
	}
	return out
}

func delivery(from, to string, fromTON byte, text string) *smpp.Delivery {
	return &smpp.Delivery{Command: "deliver_sm", From: smpp.Address{Addr: from, TON: fromTON, NPI: 1},
		To: smpp.Address{Addr: to, TON: 1, NPI: 1}, Text: text, Data: []byte(text), Received: time.Now()}
}

func TestSMPPMessages(t *testing.T) {
	r, work, _ := newReceiver(t, nil)
	for _, d := range []*smpp.Delivery{
		delivery("48601234567", "48225550000", 1, "international sender"),
		delivery("601234568", "48225550001", 2, "national sender to the second number"),
		delivery("BANK", "48225550000", 5, "your code is 1234"),
		delivery("48601234569", "48221231001", 1, "to an extension in the DID range"),
		delivery("48601234570", "48999999999", 1, "to a number the link does not own"),
	} {
		r.SMPP(d)
	}
	got := queued(t, work)
	want := []struct{ oa, da, text string }{
		{"+48601234567", "+48225550000", "international sender"},
		{"+48601234568", "+48225550001", "national sender to the second number"},
		{"+48225550000", "+48225550000", "[BANK] your code is 1234"},
		{"+48601234569", "1001", "to an extension in the DID range"},
		{"+48601234570", "+48225550000", "to a number the link does not own"},
	}
	if len(got) != len(want) {
		t.Fatalf("%d queued", len(got))
	}
	byText := map[string]*smsq.Message{}
	for _, m := range got {
		byText[strings.TrimPrefix(m.Text, "")] = m
	}
	for _, w := range want {
		m := byText[w.text]
		if m == nil || m.OA != w.oa || m.DA != w.da {
			t.Errorf("%q: got %+v, want %s → %s", w.text, m, w.oa, w.da)
		}
	}
}

// TestSMPPConcatenatedParts: each part is queued with its header, 8-bit from
// the UDH and 16-bit from sar_* alike, for the router to join.
func TestSMPPConcatenatedParts(t *testing.T) {
	r, work, _ := newReceiver(t, nil)
	d1 := delivery("48601234567", "48221234567", 1, "part one ")
	d1.Concat, d1.UDH = smstext.Concat{Ref: 7, Total: 2, Seq: 1}, []byte{5, 0, 3, 7, 2, 1}
	d2 := delivery("48601234567", "48221234567", 1, "part two")
	d2.Concat = smstext.Concat{Ref: 0x1234, Total: 2, Seq: 2}
	r.SMPP(d1)
	r.SMPP(d2)
	seen := map[string]bool{}
	for _, m := range queued(t, work) {
		ref, total, seq, ok := m.Concat()
		if !ok || total != 2 {
			t.Fatalf("%+v", m)
		}
		seen[string(rune('0'+seq))+":"+m.Text] = true
		if seq == 2 && ref != 0x1234 {
			t.Fatalf("16-bit reference lost: %d", ref)
		}
	}
	if !seen["1:part one "] || !seen["2:part two"] {
		t.Fatalf("%v", seen)
	}
}

// TestSMPPStoredButNotAcknowledged: a delivery stored before a crash and not
// acknowledged comes again and is recognised; once acknowledged, the same text
// is a new message.
func TestSMPPStoredButNotAcknowledged(t *testing.T) {
	r, work, _ := newReceiver(t, nil)
	d := delivery("48601234567", "48221234567", 1, "ok")
	// The crash: stored, never acknowledged (the key is still remembered).
	k := key("smpp", "gsm", []byte(d.From.Addr), []byte(d.To.Addr), []byte{d.DataCoding}, d.UDH, d.Data, []byte("0 0 0"))
	if _, _, err := r.store(inbound{from: "+48601234567", to: "+48221234567", sent: time.Now(), text: "ok", key: k}); err != nil {
		t.Fatal(err)
	}
	r.SMPP(d) // the SMSC delivers it again
	if n := len(queued(t, work)); n != 1 {
		t.Fatalf("%d queued after the redelivery, want 1", n)
	}
	r.SMPP(delivery("48601234567", "48221234567", 1, "ok")) // the same text, sent again later
	if n := len(queued(t, work)); n != 2 {
		t.Fatalf("%d queued, want 2", n)
	}
}

func TestSMPPReceipts(t *testing.T) {
	r, _, rs := newReceiver(t, nil)
	d := delivery("48600111222", "48221234567", 1, "id:1A2B sub:001 dlvrd:001 submit date:2501021504 done date:2501021505 stat:DELIVRD err:000 text:x")
	d.Receipt = &smpp.Receipt{MessageID: "1A2B", Stat: "DELIVRD", State: smpp.StateDelivered, Err: "000"}
	r.SMPP(d)
	dec, _, rs2 := newReceiver(t, func(c *Config) { c.ReceiptIDs = ReceiptIDsDecimal })
	d2 := delivery("48600111222", "48221234567", 1, "")
	d2.Receipt = &smpp.Receipt{MessageID: "6699", Stat: "UNDELIV"}
	dec.SMPP(d2)
	if got := rs.list(); len(got) != 1 || got[0] != "link:gsm 1a2b DELIVRD" {
		t.Fatalf("%v", got)
	}
	if got := rs2.list(); len(got) != 1 || got[0] != "link:gsm 1a2b UNDELIV" {
		t.Fatalf("decimal ids: %v", got)
	}
	if receiptFinal(&smpp.Receipt{Stat: "ENROUTE"}) || !receiptFinal(&smpp.Receipt{Stat: "undeliv"}) {
		t.Fatal("receiptFinal")
	}
	if _, err := New(Config{Link: "x", Number: "+1", WorkDir: "/tmp", Receipts: rs.record, ReceiptIDs: "octal"}); err == nil {
		t.Fatal("bad receipt_ids accepted")
	}
}

func TestSMPPMalformedIsQuarantined(t *testing.T) {
	r, work, _ := newReceiver(t, nil)
	d := &smpp.Delivery{Command: "deliver_sm", Malformed: errors.New("short_message: 200 octets announced, 3 left"), Raw: []byte{1, 2, 3}}
	r.SMPP(d)
	files, _ := filepath.Glob(filepath.Join(work, "rejected", "gsm-*.pdu"))
	if len(files) != 1 {
		t.Fatalf("quarantined %v", files)
	}
	reason, _ := os.ReadFile(files[0] + ".reason")
	if !strings.Contains(string(reason), "200 octets announced") {
		t.Fatalf("reason %q", reason)
	}
}

// TestSMPPThroughTheSMSC: a real deliver_sm from the npm SMSC is queued before
// the SMSC gets its deliver_sm_resp.
func TestSMPPThroughTheSMSC(t *testing.T) {
	s := smsctest.Start(t)
	r, work, _ := newReceiver(t, nil)
	c, err := smpp.New(smpp.Config{Addr: s.Addr(), SystemID: "smsrouter", Password: "secret", Handler: r.SMPP,
		ReconnectMin: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { c.Run(ctx); close(done) }()
	defer func() { cancel(); <-done }()
	s.Wait("bind", nil)
	s.Send(map[string]any{"cmd": "deliver", "source": "48601234567", "dest": "48221234567", "sm_hex": hex.EncodeToString([]byte("Hello PBX"))})
	resp := s.Wait("deliver_resp", nil)
	if smsctest.Num(resp, "status") != 0 {
		t.Fatalf("deliver_sm_resp %v", resp)
	}
	got := queued(t, work)
	if len(got) != 1 || got[0].Text != "Hello PBX" || got[0].OA != "+48601234567" {
		t.Fatalf("%+v", got)
	}
}

func modemMessage(t *testing.T, from, text string) *modem.Message {
	t.Helper()
	return &modem.Message{Kind: modem.Deliver, Index: -1, From: from, SCTS: modemsim.SCTS, Text: text,
		TPDU: []byte(from + text), Fingerprint: hex.EncodeToString([]byte(from + text))[:16]}
}

func TestModemMessagesAndDuplicates(t *testing.T) {
	r, work, _ := newReceiver(t, nil)
	m := modemMessage(t, "+48601234567", "hello PBX")
	r.Modem(m)
	// Read again after a crash before it was deleted: recognised.
	r.Modem(modemMessage(t, "+48601234567", "hello PBX"))
	got := queued(t, work)
	if len(got) != 1 || got[0].DA != "+48225550000" || got[0].OA != "+48601234567" || !got[0].SCTS.Equal(modemsim.SCTS) {
		t.Fatalf("%+v", got)
	}
}

func TestModemStatusReport(t *testing.T) {
	r, _, rs := newReceiver(t, nil)
	r.Modem(&modem.Message{Kind: modem.StatusReport, Index: -1, Report: &modem.Report{Reference: 42, Recipient: "0048600111222", Status: 0x41}})
	if got := rs.list(); len(got) != 1 || got[0] != "link:gsm +48600111222/42 UNDELIV" {
		t.Fatalf("%v", got)
	}
	rs.fail = errors.New("database down")
	r.Modem(&modem.Message{Kind: modem.StatusReport, Index: -1, Report: &modem.Report{Reference: 43, Recipient: "+48600111222"}})
	if len(rs.list()) != 1 {
		t.Fatal("recorded while failing")
	}
}

// TestModemThroughTheSimulator: a text in the simulated stick's storage is
// queued and only then deleted from it.
func TestModemThroughTheSimulator(t *testing.T) {
	sim := modemsim.New(t)
	r, work, _ := newReceiver(t, nil)
	parts := modemsim.DeliverPDUs(t, "+48601234567", strings.Repeat("Długi tekst ", 20), 9, time.Time{})
	for _, p := range parts {
		sim.Receive(p, false)
	}
	d, err := modem.New(modem.Config{Port: sim.Link, Handler: r.Modem, CommandTimeout: time.Second, ReopenMin: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { d.Run(ctx); close(done) }()
	defer func() { cancel(); <-done }()
	deadline := time.Now().Add(10 * time.Second)
	for len(sim.Stored()) > 0 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	got := queued(t, work)
	if len(sim.Stored()) != 0 || len(got) != len(parts) {
		t.Fatalf("stored %d, queued %d of %d", len(sim.Stored()), len(got), len(parts))
	}
	var b strings.Builder
	sort.Slice(got, func(i, j int) bool {
		_, _, a, _ := got[i].Concat()
		_, _, c, _ := got[j].Concat()
		return a < c
	})
	for _, m := range got {
		b.WriteString(m.Text)
	}
	if b.String() != strings.Repeat("Długi tekst ", 20) {
		t.Fatalf("%q", b.String())
	}
}

func TestStatusName(t *testing.T) {
	for st, want := range map[byte]string{0: "DELIVRD", 0x21: "ENROUTE", 0x41: "UNDELIV", 0x46: "EXPIRED", 0x45: "REJECTD", 0x63: "REJECTD", 0x64: "UNDELIV"} {
		if got := statusName(st); got != want {
			t.Errorf("%#x: %s, want %s", st, got, want)
		}
	}
}
