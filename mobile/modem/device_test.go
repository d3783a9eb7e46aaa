package modem

import (
	"context"
	"encoding/hex"
	"errors"
	"log/slog"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/warthog618/modem/at"
	"github.com/warthog618/sms"
	"github.com/warthog618/sms/encoding/pdumode"
	"github.com/warthog618/sms/encoding/tpdu"

	"smsrouter/internal/modemsim"
	"smsrouter/mobile/smstext"
)

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// inbox collects what the device hands over.
type inbox chan *Message

func (in inbox) next(t *testing.T) *Message {
	t.Helper()
	select {
	case m := <-in:
		return m
	case <-time.After(10 * time.Second):
		t.Fatal("nothing handed over in 10s")
		return nil
	}
}

func (in inbox) none(t *testing.T, d time.Duration) {
	t.Helper()
	select {
	case m := <-in:
		t.Fatalf("unexpected message %+v", m)
	case <-time.After(d):
	}
}

// startDevice runs a Device on the sim until the returned stop is called
// (or the test ends).
func startDevice(t *testing.T, s *modemsim.Sim, cfg Config) (*Device, inbox, func()) {
	t.Helper()
	in := make(inbox, 64)
	cfg.Port = s.Link
	if cfg.Handler == nil {
		cfg.Handler = func(m *Message) { in <- m }
	}
	if cfg.CommandTimeout == 0 {
		cfg.CommandTimeout = 2 * time.Second
	}
	if cfg.ReopenMin == 0 {
		cfg.ReopenMin, cfg.ReopenMax = 50*time.Millisecond, 300*time.Millisecond
	}
	cfg.Logger = slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
	d, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { d.Run(ctx); close(done) }()
	stopped := false
	stop := func() {
		if !stopped {
			stopped = true
			cancel()
			<-done
		}
	}
	t.Cleanup(stop)
	return d, in, stop
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

var scts = modemsim.SCTS

func deliverPDUs(t *testing.T, from, text string, ref int) []string {
	return modemsim.DeliverPDUs(t, from, text, ref, time.Time{})
}

func statusReportPDU(t *testing.T, mr byte, to string, st byte) string {
	return modemsim.StatusReportPDU(t, mr, to, st)
}

// decodeSent reads a PDU the sim got from AT+CMGS.
func decodeSent(t *testing.T, h string) *tpdu.TPDU {
	t.Helper()
	p, err := pdumode.UnmarshalHexString(h)
	if err != nil {
		t.Fatal(err)
	}
	tp, err := sms.Unmarshal(p.TPDU, sms.AsMO)
	if err != nil {
		t.Fatal(err)
	}
	return tp
}

func TestReceive(t *testing.T) {
	s := modemsim.New(t)
	// One stored before the device opens: found by the first sweep.
	early := deliverPDUs(t, "+48600111222", "Stored while away", 1)[0]
	s.Receive(early, false)
	d, in, _ := startDevice(t, s, Config{})
	m := in.next(t)
	if m.Text != "Stored while away" || m.From != "+48600111222" || !m.SCTS.Equal(scts) || m.Kind != Deliver || m.Malformed != nil {
		t.Fatalf("first message %+v", m)
	}
	if err := m.Ack(); err != nil {
		t.Fatal(err)
	}
	if len(s.Stored()) != 0 {
		t.Fatalf("not deleted after Ack: %v", s.Stored())
	}
	if err := m.Ack(); !errors.Is(err, ErrSettled) {
		t.Errorf("second Ack: %v", err)
	}

	// Announced with +CMTI: a concatenated UCS-2 text, parts out of order.
	text := strings.Repeat("Zażółć gęślą jaźń — ", 8)
	parts := deliverPDUs(t, "+48600999888", text, 77)
	if len(parts) < 3 {
		t.Fatalf("%d parts", len(parts))
	}
	for i := len(parts) - 1; i >= 0; i-- {
		s.Receive(parts[i], true)
	}
	var r smstext.Reassembler[*Message]
	var whole []*Message
	for range parts {
		m := in.next(t)
		if !m.Concat.Valid() || m.Concat.Ref != 77 || m.Concat.Total != len(parts) {
			t.Fatalf("part %+v", m.Concat)
		}
		whole, _, _ = r.Add(smstext.Key{From: m.From, Ref: m.Concat.Ref, Total: m.Concat.Total}, m.Concat.Seq, m, time.Now())
	}
	var joined strings.Builder
	for _, p := range whole {
		joined.WriteString(p.Text)
	}
	if joined.String() != text {
		t.Fatalf("joined %q", joined.String())
	}
	if n := len(s.Stored()); n != len(parts) {
		t.Fatalf("%d stored before the whole is acknowledged, want %d", n, len(parts))
	}
	for _, p := range whole {
		if err := p.Ack(); err != nil {
			t.Fatal(err)
		}
	}
	if len(s.Stored()) != 0 || d.Status().Held != 0 {
		t.Fatalf("after Ack: stored %v, held %d", s.Stored(), d.Status().Held)
	}
}

func TestDeletedOnlyAfterAck(t *testing.T) {
	s := modemsim.New(t)
	_, in, stop := startDevice(t, s, Config{SweepEvery: 200 * time.Millisecond})
	pdu := deliverPDUs(t, "+48600111222", "do not lose me", 1)[0]
	idx := s.Receive(pdu, true)
	first := in.next(t)
	// Released: stays, and comes again at a sweep.
	first.Release()
	again := in.next(t)
	if again.Fingerprint != first.Fingerprint || again.Index != idx {
		t.Fatalf("released message came back as %+v", again)
	}
	// The process dies between reading and acknowledging.
	stop()
	if _, ok := s.Stored()[idx]; !ok {
		t.Fatal("the message left the SIM without an Ack")
	}
	// A new process reads it again, with the same identity.
	_, in2, _ := startDevice(t, s, Config{})
	m := in2.next(t)
	if m.Fingerprint != first.Fingerprint || m.From != first.From || !m.SCTS.Equal(first.SCTS) || m.Text != "do not lose me" {
		t.Fatalf("read again as %+v", m)
	}
	if err := m.Ack(); err != nil {
		t.Fatal(err)
	}
	if len(s.Stored()) != 0 {
		t.Fatal("not deleted after Ack")
	}
}

func TestSend(t *testing.T) {
	s := modemsim.New(t)
	d, _, _ := startDevice(t, s, Config{StatusReports: true, Validity: 24 * time.Hour})
	waitFor(t, "open", func() bool { return d.Status().Open })

	res, err := d.Send(context.Background(), "+48600111222", "Hello from the PBX €")
	if err != nil {
		t.Fatal(err)
	}
	if len(res.References) != 1 || res.Coding != smstext.GSM7 {
		t.Fatalf("result %+v", res)
	}
	sent := s.SentPDUs()
	tp := decodeSent(t, sent[0])
	text, err := sms.Decode([]*tpdu.TPDU{tp})
	if err != nil || string(text) != "Hello from the PBX €" || tp.DA.Number() != "+48600111222" || !tp.FirstOctet.SRR() {
		t.Fatalf("sent %q to %s srr %v: %v", text, tp.DA.Number(), tp.FirstOctet.SRR(), err)
	}

	long := string([]rune(strings.Repeat("Γειά σου κόσμε! ", 25))[:400])
	res, err = d.Send(context.Background(), "600111222", long)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.References) != 6 || res.Coding != smstext.UCS2 {
		t.Fatalf("long result %+v", res)
	}
	var tps []*tpdu.TPDU
	for _, h := range s.SentPDUs()[1:] {
		tp := decodeSent(t, h)
		if tp.DA.Number() != "600111222" || tp.DA.TypeOfNumber() != tpdu.TonUnknown {
			t.Errorf("national recipient sent as %s ton %d", tp.DA.Number(), tp.DA.TypeOfNumber())
		}
		tps = append(tps, tp)
	}
	if !sms.IsCompleteMessage(tps) {
		t.Fatal("parts do not make a whole message")
	}
	text, err = sms.Decode(tps)
	if err != nil || string(text) != long {
		t.Fatalf("long text arrived as %q: %v", text, err)
	}
}

func TestSendErrors(t *testing.T) {
	s := modemsim.New(t)
	d, _, _ := startDevice(t, s, Config{})
	waitFor(t, "open", func() bool { return d.Status().Open })
	tests := []struct {
		cms       int
		temporary bool
		uncertain bool
	}{
		{21, false, false},   // short message transfer rejected
		{28, false, false},   // unidentified subscriber
		{42, true, false},    // congestion
		{331, true, false},   // no network service
		{332, true, true},    // network timeout: the centre may have it
		{500, true, false},   // unknown error
		{0xC3, false, false}, // invalid SME address
	}
	for _, tt := range tests {
		s.Set(func(s *modemsim.Sim) { s.CMSNext = []int{tt.cms} })
		_, err := d.Send(context.Background(), "+48600111222", "x")
		var se *SendError
		if !errors.As(err, &se) || se.CMS != tt.cms || se.Temporary != tt.temporary || se.Uncertain != tt.uncertain {
			t.Errorf("+CMS ERROR %d: %v", tt.cms, err)
		}
	}
	// A failure in the middle of a long text says which parts went.
	s.Set(func(s *modemsim.Sim) { s.CMSNext = []int{0, 42} })
	_, err := d.Send(context.Background(), "+48600111222", strings.Repeat("a", 300))
	var se *SendError
	if !errors.As(err, &se) || se.Part != 2 || se.Parts != 2 || len(se.References) != 1 {
		t.Errorf("second part refused: %#v", err)
	}
	if _, err := d.Send(context.Background(), "12ab", "x"); err == nil || IsTemporary(err) {
		t.Errorf("bad number: %v", err)
	}
}

func TestStatusReport(t *testing.T) {
	s := modemsim.New(t)
	_, in, _ := startDevice(t, s, Config{})
	s.Receive(statusReportPDU(t, 42, "+48600111222", 0x00), true)
	m := in.next(t)
	if m.Kind != StatusReport || m.Report == nil || m.Report.Reference != 42 || !m.Report.Delivered() || !m.Report.Final() ||
		m.Report.Recipient != "+48600111222" || !m.Report.Discharge.Equal(scts.Add(time.Minute)) {
		t.Fatalf("report %+v %+v", m, m.Report)
	}
	m.Ack()
	s.Receive(statusReportPDU(t, 43, "+48600111222", 0x41), true)
	m = in.next(t)
	if m.Report.Delivered() || !m.Report.Final() {
		t.Errorf("failed report %+v", m.Report)
	}
	m.Ack()
	waitFor(t, "deleted", func() bool { return len(s.Stored()) == 0 })
}

func TestUnsolicitedInsideAnswer(t *testing.T) {
	s := modemsim.New(t)
	a := deliverPDUs(t, "+48600111222", "first", 1)[0]
	b := deliverPDUs(t, "+48600111333", "second", 2)[0]
	s.Receive(a, false)
	s.Receive(a, false)
	idx := s.Receive(b, false)
	// The +CMTI of b arrives in the middle of the listing answer.
	s.Set(func(s *modemsim.Sim) { s.URCMid = []string{`+CMTI: "SM",` + itoa(idx)} })
	_, in, _ := startDevice(t, s, Config{})
	got := map[string]int{}
	for range 3 {
		m := in.next(t)
		got[m.Text]++
		m.Ack()
	}
	in.none(t, 300*time.Millisecond)
	if got["first"] != 2 || got["second"] != 1 {
		t.Fatalf("got %v", got)
	}
}

func TestUnplugMidSend(t *testing.T) {
	s := modemsim.New(t)
	d, in, _ := startDevice(t, s, Config{SendTimeout: 30 * time.Second})
	waitFor(t, "open", func() bool { return d.Status().Open })
	s.Set(func(s *modemsim.Sim) { s.StallCMGS = true })
	errc := make(chan error, 1)
	go func() {
		_, err := d.Send(context.Background(), "+48600111222", "mid-send")
		errc <- err
	}()
	waitFor(t, "the PDU", func() bool { return len(s.SentPDUs()) == 1 })
	s.Unplug()
	err := <-errc
	if !IsTemporary(err) || !IsUncertain(err) || !errors.Is(err, at.ErrClosed) {
		t.Fatalf("unplugged after the PDU: %v, want temporary, uncertain, and the port seen closed", err)
	}
	waitFor(t, "closed", func() bool { return !d.Status().Open })
	// While unplugged nothing is sent, certainly.
	if _, err := d.Send(context.Background(), "+48600111222", "while away"); !IsTemporary(err) || IsUncertain(err) || !errors.Is(err, ErrNotOpen) {
		t.Fatalf("send while unplugged: %v", err)
	}
	// Plugged back at the same by-id path, a new tty behind it.
	s.Set(func(s *modemsim.Sim) { s.StallCMGS = false })
	s.Plug()
	waitFor(t, "reopened", func() bool { st := d.Status(); return st.Open && st.Reopens >= 1 })
	if _, err := d.Send(context.Background(), "+48600111222", "back"); err != nil {
		t.Fatal(err)
	}
	// Receiving works on the new tty too.
	s.Receive(deliverPDUs(t, "+48600111222", "hello again", 3)[0], true)
	if m := in.next(t); m.Text != "hello again" {
		t.Fatalf("after replug %+v", m)
	}
}

func TestHungModem(t *testing.T) {
	s := modemsim.New(t)
	d, _, _ := startDevice(t, s, Config{CommandTimeout: 300 * time.Millisecond, SweepEvery: 100 * time.Millisecond})
	waitFor(t, "open", func() bool { return d.Status().Open })
	s.Set(func(s *modemsim.Sim) { s.Silent = true })
	waitFor(t, "given up on", func() bool { return !d.Status().Open })
	if st := d.Status(); !strings.Contains(st.LastError, "no answer") {
		t.Errorf("status %+v", st)
	}
	s.Set(func(s *modemsim.Sim) { s.Silent = false })
	waitFor(t, "reopened", func() bool { st := d.Status(); return st.Open && st.Reopens >= 1 })
	if _, err := d.Send(context.Background(), "+48600111222", "alive"); err != nil {
		t.Fatal(err)
	}
}

func TestRegistrationAndSignal(t *testing.T) {
	s := modemsim.New(t)
	s.Set(func(s *modemsim.Sim) { s.CREG, s.CSQ = 2, 99 })
	d, _, _ := startDevice(t, s, Config{SweepEvery: 100 * time.Millisecond})
	waitFor(t, "open", func() bool { return d.Status().Open })
	st := d.Status()
	if st.Registered || st.Registration != 2 || st.RSSI != 99 || st.SignalDBm != 0 || st.SMSC != "+48790998250" {
		t.Fatalf("status %+v", st)
	}
	_, err := d.Send(context.Background(), "+48600111222", "wait")
	if !errors.Is(err, ErrNotRegistered) || !IsTemporary(err) || IsUncertain(err) || len(s.SentPDUs()) != 0 {
		t.Fatalf("send unregistered: %v", err)
	}
	s.Set(func(s *modemsim.Sim) { s.CREG, s.CSQ = 5, 20 })
	waitFor(t, "registered", func() bool { return d.Status().Registered })
	if st := d.Status(); st.Registration != 5 || st.SignalDBm != -73 {
		t.Errorf("status %+v", st)
	}
	if _, err := d.Send(context.Background(), "+48600111222", "now"); err != nil {
		t.Fatal(err)
	}
}

func TestPIN(t *testing.T) {
	s := modemsim.New(t)
	s.Set(func(s *modemsim.Sim) { s.PINOK, s.PIN = false, "1234" })
	d, _, _ := startDevice(t, s, Config{PIN: "1234"})
	waitFor(t, "open", func() bool { return d.Status().Open })
	if !s.Saw(`AT+CPIN="1234"`) {
		t.Error("PIN not given")
	}

	s2 := modemsim.New(t)
	s2.Set(func(s *modemsim.Sim) { s.PINOK, s.PIN = false, "1234" })
	d2, _, _ := startDevice(t, s2, Config{PIN: "9999"})
	waitFor(t, "refused", func() bool { return strings.Contains(d2.Status().LastError, "not trying again") })
	n := 0
	for _, c := range s2.Commands() {
		if strings.HasPrefix(c, "AT+CPIN=") {
			n++
		}
	}
	if n != 1 {
		t.Errorf("wrong PIN given %d times, want once", n)
	}
}

func itoa(i int) string { return strconv.Itoa(i) }

var _ = hex.EncodeToString
