package sms

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"smsrouter/asteriskconf/callfile"
	"smsrouter/asteriskconf/smsq"
	"smsrouter/channels"
)

func newChannel(t *testing.T) (*Channel, string) {
	t.Helper()
	spool := t.TempDir()
	os.MkdirAll(filepath.Join(spool, "outgoing"), 0o755)
	c, err := New(Config{Spool: spool, SMSCNumber: "9001", Location: time.UTC})
	if err != nil {
		t.Fatal(err)
	}
	return c, spool
}

func msg(text string) channels.Message {
	return channels.Message{
		ID: channels.NewID(time.Unix(1795240000, 0)), From: "5550001", To: "+48601234567", Text: text,
		Received: time.Unix(1795240000, 0), Sent: time.Date(2026, 11, 21, 5, 39, 34, 0, time.UTC),
		Letter: 'S', Extension: "PJSIP/1000", Attempt: 1,
	}
}

func parts(t *testing.T, res channels.Result) []*smsq.Message {
	t.Helper()
	var out []*smsq.Message
	for _, a := range res.Artefacts {
		if a.Kind != "mttx" {
			continue
		}
		m, err := smsq.Parse(a.Data, time.UTC)
		if err != nil {
			t.Fatalf("%s: %v", a.Name, err)
		}
		out = append(out, m)
	}
	return out
}

func TestDeliverShortGSM7(t *testing.T) {
	c, spool := newChannel(t)
	m := msg("Price 5€ [x] {y} ~ ^ | \\")
	res, err := c.Deliver(context.Background(), m)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Artefacts) != 1 || res.AfterPublish == nil {
		t.Fatalf("want an mttx file, and the call placed after it, got %d artefacts", len(res.Artefacts))
	}
	mt := res.Artefacts[0]
	// app_sms turns non-alphanumerics of a queue name into '-'.
	if mt.Dir != filepath.Join(spool, "sms", "mttx") || mt.Name != "-48601234567."+m.ID+"-1" {
		t.Fatalf("mttx artefact %s/%s", mt.Dir, mt.Name)
	}
	p := parts(t, res)[0]
	if p.Text != m.Text || p.OA != "5550001" || p.DCS != -1 || p.HasUDH || !p.SCTS.Equal(m.Sent) {
		t.Fatalf("part %+v", p)
	}
	publish(t, res)
	callData, err := os.ReadFile(filepath.Join(spool, "outgoing", "smsrouter.mttx.-48601234567."+m.ID))
	if err != nil {
		t.Fatalf("call file: %v", err)
	}
	call := channels.Artefact{Data: callData}
	want := "Channel: PJSIP/1000\nCallerid: \"SMS\" <9001>\nApplication: SMS\nData: -48601234567,s\n" +
		"MaxRetries: 60\nRetryTime: 60\nWaitTime: 20\nSetvar: SMSROUTER_ID=" + m.ID + "\n"
	if string(call.Data) != want {
		t.Fatalf("call file:\n%s\nwant:\n%s", call.Data, want)
	}
}

func TestDeliverSplitsLongTexts(t *testing.T) {
	for _, tc := range []struct {
		name  string
		text  string
		parts int
		dcs   int
	}{
		{"160 GSM characters fit one SMS", strings.Repeat("a", 160), 1, -1},
		{"161 need two", strings.Repeat("a", 161), 2, -1},
		{"escapes count twice", strings.Repeat("€", 80) + "a", 2, -1},
		{"70 UCS-2 units fit one", strings.Repeat("ż", 70), 1, 8},
		{"71 need two", strings.Repeat("ż", 71), 2, 8},
		{"Ç is not in app_sms's table", "Ça va", 1, 8},
		{"emoji", "Hi 😀", 1, 8},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, _ := newChannel(t)
			res, err := c.Deliver(context.Background(), msg(tc.text))
			if err != nil {
				t.Fatal(err)
			}
			ps := parts(t, res)
			if len(ps) != tc.parts {
				t.Fatalf("%d parts, want %d", len(ps), tc.parts)
			}
			var joined strings.Builder
			var ref byte
			for i, p := range ps {
				if p.DCS != tc.dcs {
					t.Errorf("part %d dcs %d, want %d", i+1, p.DCS, tc.dcs)
				}
				if tc.parts > 1 {
					r, total, seq, ok := p.Concat()
					if !ok || int(total) != tc.parts || int(seq) != i+1 || len(p.UDH) != 5 {
						t.Fatalf("part %d udh %X", i+1, p.UDH)
					}
					if i == 0 {
						ref = byte(r)
					} else if byte(r) != ref {
						t.Fatalf("parts of one message must share a reference")
					}
				}
				joined.WriteString(p.Text)
			}
			if joined.String() != tc.text {
				t.Fatalf("joined %q", joined.String())
			}
		})
	}
}

func TestConsecutiveMessagesGetFreshReferences(t *testing.T) {
	c, _ := newChannel(t)
	long := strings.Repeat("x", 200)
	r1, _ := c.Deliver(context.Background(), msg(long))
	r2, _ := c.Deliver(context.Background(), msg(long))
	a, _, _, _ := parts(t, r1)[0].Concat()
	b, _, _, _ := parts(t, r2)[0].Concat()
	if a == b {
		t.Fatal("two messages in a row to one phone must not share a concatenation reference")
	}
}

func TestTooLongIsPermanent(t *testing.T) {
	c, _ := newChannel(t)
	_, err := c.Deliver(context.Background(), msg(strings.Repeat("ż", 67*10+1)))
	if !channels.IsPermanent(err) || !strings.Contains(err.Error(), "too long") {
		t.Fatalf("err %v", err)
	}
}

func TestExtensionProblems(t *testing.T) {
	c, _ := newChannel(t)
	for _, ext := range []string{"", "1000"} {
		m := msg("x")
		m.Extension = ext
		_, err := c.Deliver(context.Background(), m)
		if err == nil || channels.IsPermanent(err) {
			t.Errorf("extension %q: want a temporary error an admin can fix, got %v", ext, err)
		}
	}
	// A '#' after a blank would cut the line (pbx_spool has no escape for it).
	for _, ext := range []string{"PJSIP/1000\nApplication: System", "PJSIP/1000 #x", "PJSIP/1000\x00", "PJSIP/1000\r"} {
		c, _ := newChannel(t)
		m := msg("x")
		m.Extension = ext
		res, err := c.Deliver(context.Background(), m)
		if err == nil {
			t.Errorf("extension %q reached a call file:\n%s", ext, res.Artefacts[len(res.Artefacts)-1].Data)
		}
	}
}

func TestPendingCallIsReused(t *testing.T) {
	c, spool := newChannel(t)
	out := filepath.Join(spool, "outgoing")
	// A call for this queue placed earlier, not dialled yet (smsq's name form).
	waiting := filepath.Join(out, "smsq.mttx.-48601234567.1")
	os.WriteFile(waiting, []byte("Channel: PJSIP/1000\nApplication: SMS\nData: -48601234567,s\n"), 0o644)
	c.StartBatch()
	first := msg("first")
	res, err := c.Deliver(context.Background(), first)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Artefacts) != 1 || res.AfterPublish == nil {
		t.Fatalf("with a call waiting, only the mttx file is needed: %d artefacts", len(res.Artefacts))
	}
	// It starts dialling before our file is in place: no second call to a phone
	// being called; a follow-up waits for that call to end.
	f, _ := os.OpenFile(waiting, os.O_APPEND|os.O_WRONLY, 0)
	f.WriteString("\nStartRetry: 1 1 (1795239857)\n")
	f.Close()
	os.MkdirAll(filepath.Join(spool, "sms", "mttx"), 0o755)
	for _, a := range res.Artefacts {
		os.WriteFile(filepath.Join(a.Dir, a.Name), a.Data, 0o644)
	}
	if err := res.AfterPublish(context.Background()); err != nil {
		t.Fatal(err)
	}
	if entries, _ := os.ReadDir(out); len(entries) != 1 {
		t.Fatalf("want only the dialling call, got %d files", len(entries))
	}
	followUp := filepath.Join(spool, "smsrouter", "sms-followup", "-48601234567")
	if _, err := os.Stat(followUp); err != nil {
		t.Fatalf("no follow-up recorded: %v", err)
	}
	// The call ends without handing our part over: the follow-up call goes out.
	os.Remove(waiting)
	if err := c.FollowUps(); err != nil {
		t.Fatal(err)
	}
	entries, _ := os.ReadDir(out)
	if len(entries) != 1 || !strings.HasPrefix(entries[0].Name(), "smsrouter.mttx.-48601234567.") {
		t.Fatalf("want the follow-up call, got %v", entries)
	}
	data, _ := os.ReadFile(filepath.Join(out, entries[0].Name()))
	if rec, err := callfile.Parse(data); err != nil || rec.Data != "-48601234567,s" {
		t.Fatalf("placed call file %q: %v", data, err)
	}
	if _, err := os.Stat(followUp); err == nil {
		t.Fatal("follow-up left after its call was placed")
	}
	// A new batch sees the dialling call as not pending any more.
	c.StartBatch()
	res, _ = c.Deliver(context.Background(), msg("second"))
	if len(res.Artefacts) != 1 {
		t.Fatalf("our not-yet-dialled call is pending again: want 1 artefact, got %d", len(res.Artefacts))
	}
}

func TestOneCallPerQueueWithinABatch(t *testing.T) {
	c, spool := newChannel(t)
	c.StartBatch()
	var results []channels.Result
	for i := 0; i < 5; i++ {
		res, err := c.Deliver(context.Background(), msg("x"))
		if err != nil {
			t.Fatal(err)
		}
		results = append(results, res)
	}
	publish(t, results...)
	if calls, _ := os.ReadDir(filepath.Join(spool, "outgoing")); len(calls) != 1 {
		t.Fatalf("%d call files for one queue in one batch", len(calls))
	}
}

// publish does the router's part: the artefacts renamed into place, then
// every AfterPublish.
func publish(t *testing.T, results ...channels.Result) {
	t.Helper()
	for _, res := range results {
		for _, a := range res.Artefacts {
			os.MkdirAll(a.Dir, 0o755)
			if err := os.WriteFile(filepath.Join(a.Dir, a.Name), a.Data, 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	for _, res := range results {
		if res.AfterPublish != nil {
			if err := res.AfterPublish(context.Background()); err != nil {
				t.Fatal(err)
			}
		}
	}
}

func TestNewRefusesBadConfig(t *testing.T) {
	for _, cfg := range []Config{{}, {Spool: "/x", MaxParts: 256}, {Spool: "/x", CallerIDName: "a\"b"}} {
		if _, err := New(cfg); err == nil {
			t.Errorf("%+v accepted", cfg)
		}
	}
}

func TestQueue(t *testing.T) {
	for in, want := range map[string]string{"5551001": "5551001", "+48601": "-48601", "a.b/c": "a-b-c"} {
		if got := Queue(in); got != want {
			t.Errorf("Queue(%q) = %q, want %q", in, got, want)
		}
	}
}
