package smpp

import (
	"smsrouter/internal/smsctest"

	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"smsrouter/mobile/smstext"
)

func num(e map[string]any, k string) int {
	f, _ := e[k].(float64)
	return int(f)
}

func submitCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func TestBindModes(t *testing.T) {
	tests := []struct {
		mode  BindMode
		kinds []string
	}{
		{Transceiver, []string{"transceiver"}},
		{TransmitterReceiver, []string{"transmitter", "receiver"}},
		{Transmitter, []string{"transmitter"}},
	}
	for _, tt := range tests {
		t.Run(tt.mode.String(), func(t *testing.T) {
			s := smsctest.Start(t)
			c := runClient(t, s, Config{Bind: tt.mode, SystemType: "smsr", AddrTON: 1, AddrNPI: 1})
			for _, k := range tt.kinds {
				ev := s.Wait("bind", func(e map[string]any) bool { return e["kind"] == k })
				if ev["system_type"] != "smsr" || num(ev, "interface_version") != 0x34 || num(ev, "addr_ton") != 1 {
					t.Errorf("bind %s: %v", k, ev)
				}
			}
			if _, err := c.Submit(submitCtx(t), Message{From: "100", To: "+48600111222", Text: "bound"}); err != nil {
				t.Fatal(err)
			}
			st := c.Status()
			if len(st) != len(tt.kinds) {
				t.Fatalf("status %+v", st)
			}
			for i, b := range st {
				if !b.Bound || b.Role != tt.kinds[i] {
					t.Errorf("bind %d: %+v", i, b)
				}
			}
		})
	}
}

func TestBindRefused(t *testing.T) {
	s := smsctest.Start(t)
	c := runClient(t, s, Config{SystemID: "smsrouter", Password: "wrong"})
	s.Wait("bind_refused", nil)
	s.Wait("bind_refused", nil) // and it keeps trying, with backoff
	_, err := c.Submit(submitCtx(t), Message{From: "100", To: "200", Text: "x"})
	if !errors.Is(err, ErrNotBound) || !IsTemporary(err) || IsUncertain(err) {
		t.Fatalf("submit while refused: %v", err)
	}
	if st := c.Status()[0]; st.Bound || !strings.Contains(st.LastError, "ESME_RINVPASWD") {
		t.Errorf("status %+v", st)
	}
}

func TestSubmitCodings(t *testing.T) {
	s := smsctest.Start(t)
	c := runClient(t, s, Config{RegisteredDelivery: true, SourceTON: 0, SourceNPI: 1, DestTON: 2, DestNPI: 1})
	tests := []struct {
		name           string
		msg            Message
		dc             int
		smHex          string
		srcTON, dstTON int
		src, dst       string
	}{
		{"gsm7 exact bytes", Message{From: "1001", To: "+48600111222", Text: "Hi @£€{}"}, 0,
			"48692000011b651b281b29", 0, 1, "1001", "48600111222"},
		{"polish ucs2", Message{From: "Biuro", To: "600111222", Text: "Zażółć gęślą jaźń"}, 8,
			hex.EncodeToString([]byte{0, 'Z', 0, 'a', 1, 0x7c, 0, 0xf3, 1, 0x42, 1, 7, 0, ' ', 0, 'g', 1, 0x19, 1, 0x5b, 0, 'l', 1, 5, 0, ' ', 0, 'j', 0, 'a', 1, 0x7a, 1, 0x44}),
			5, 2, "Biuro", "600111222"},
		{"greek ucs2", Message{From: "+302101234567", To: "+306900000000", Text: "Καλημέρα"}, 8,
			"039a03b103bb03b703bc03ad03c103b1", 1, 1, "302101234567", "306900000000"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res, err := c.Submit(submitCtx(t), tt.msg)
			if err != nil {
				t.Fatal(err)
			}
			ev := s.Wait("submit", func(e map[string]any) bool { return e["message_id"] == res.MessageIDs[0] })
			if num(ev, "data_coding") != tt.dc || ev["sm_hex"] != tt.smHex {
				t.Errorf("data_coding %v sm %v; want %d %s", ev["data_coding"], ev["sm_hex"], tt.dc, tt.smHex)
			}
			// The SMSC's own decoding of what it got.
			if ev["text"] != tt.msg.Text {
				t.Errorf("SMSC read %q, want %q", ev["text"], tt.msg.Text)
			}
			if ev["source_addr"] != tt.src || num(ev, "source_addr_ton") != tt.srcTON ||
				ev["destination_addr"] != tt.dst || num(ev, "dest_addr_ton") != tt.dstTON {
				t.Errorf("addresses %v/%v -> %v/%v", ev["source_addr"], ev["source_addr_ton"], ev["destination_addr"], ev["dest_addr_ton"])
			}
			if num(ev, "registered_delivery") != 1 || num(ev, "esm_class") != 0 {
				t.Errorf("registered_delivery %v esm_class %v", ev["registered_delivery"], ev["esm_class"])
			}
		})
	}
}

func TestSubmitLong(t *testing.T) {
	long := strings.Repeat("Dzien dobry, to jest dluga wiadomosc. ", 11)[:400]
	longPL := strings.Repeat("Dzień dobry, to jest długa wiadomość. ", 11)[:400]
	for _, payload := range []bool{false, true} {
		for _, text := range []string{long, longPL} {
			name := fmt.Sprintf("payload=%v/ascii=%v", payload, text == long)
			t.Run(name, func(t *testing.T) {
				s := smsctest.Start(t)
				c := runClient(t, s, Config{UsePayload: payload})
				res, err := c.Submit(submitCtx(t), Message{From: "100", To: "+48600111222", Text: text, ConcatRef: 0x5a})
				if err != nil {
					t.Fatal(err)
				}
				wantParts := 3
				if text != long {
					wantParts = 6 // 400 UTF-16 units in parts of 67
				}
				if payload {
					wantParts = 1
				}
				if len(res.MessageIDs) != wantParts {
					t.Fatalf("%d message ids, want %d", len(res.MessageIDs), wantParts)
				}
				var joined strings.Builder
				for i, id := range res.MessageIDs {
					ev := s.Wait("submit", func(e map[string]any) bool { return e["message_id"] == id })
					if payload {
						if ev["sm_hex"] != "" || num(ev, "esm_class") != 0 {
							t.Errorf("payload submit has short_message %v esm_class %v", ev["sm_hex"], ev["esm_class"])
						}
						b, _ := hex.DecodeString(ev["payload_hex"].(string))
						s, _, err := smstext.Decode(byte(num(ev, "data_coding")), b)
						if err != nil {
							t.Fatal(err)
						}
						joined.WriteString(s)
						continue
					}
					if num(ev, "esm_class") != 0x40 {
						t.Errorf("part %d esm_class %#x", i+1, num(ev, "esm_class"))
					}
					want := fmt.Sprintf("0003%02x%02x%02x", 0x5a, wantParts, i+1)
					if udh, _ := ev["udh_hex"].([]any); len(udh) != 1 || udh[0] != want {
						t.Errorf("part %d UDH %v, want %s", i+1, ev["udh_hex"], want)
					}
					joined.WriteString(ev["text"].(string))
				}
				if joined.String() != text {
					t.Errorf("SMSC got %q\nwant %q", joined.String(), text)
				}
			})
		}
	}
}

func TestThrottling(t *testing.T) {
	s := smsctest.Start(t)
	c := runClient(t, s, Config{ThrottleMin: 50 * time.Millisecond, ThrottleMax: 400 * time.Millisecond})
	s.Wait("bind", nil)
	s.Send(map[string]any{"cmd": "mode", "submit": "throttle", "n": 4})
	s.Wait("mode", nil)
	res, err := c.Submit(submitCtx(t), Message{From: "100", To: "200", Text: "patience"})
	if err != nil {
		t.Fatal(err)
	}
	// The SMSC reports each submit_sm on its event stream, which may reach the
	// test after the response reached the client: wait for the accepted one.
	s.Wait("submit", func(e map[string]any) bool { return e["action"] != "throttle" })
	subs := s.All("submit")
	if len(subs) != 5 {
		t.Fatalf("%d submit_sm, want 4 throttled and 1 accepted", len(subs))
	}
	for i, e := range subs[:4] {
		if e["action"] != "throttle" || e["text"] != "patience" {
			t.Errorf("submit %d: %v", i+1, e)
		}
	}
	if subs[4]["message_id"] != res.MessageIDs[0] {
		t.Errorf("accepted id %v, got %v", subs[4]["message_id"], res.MessageIDs)
	}

	// Throttled until the caller's deadline: temporary, certainly not
	// accepted, never permanent.
	s.Send(map[string]any{"cmd": "mode", "submit": "throttle", "n": 1000})
	s.Wait("mode", nil)
	ctx, cancel := context.WithTimeout(context.Background(), 700*time.Millisecond)
	defer cancel()
	_, err = c.Submit(ctx, Message{From: "100", To: "200", Text: "never"})
	var se *SubmitError
	if !errors.As(err, &se) || !se.Temporary || se.Uncertain || se.Status != StatusThrottled {
		t.Fatalf("throttled to the deadline: %#v", err)
	}
}

func TestSubmitStatuses(t *testing.T) {
	s := smsctest.Start(t)
	c := runClient(t, s, Config{})
	tests := []struct {
		status    int
		temporary bool
	}{
		{0x0B, false}, // ESME_RINVDSTADR
		{0x0A, false}, // ESME_RINVSRCADR
		{0x08, true},  // ESME_RSYSERR
		{0x45, true},  // ESME_RSUBMITFAIL
		{0x400, true}, // vendor specific
	}
	for _, tt := range tests {
		s.Send(map[string]any{"cmd": "mode", "submit": "status", "status": tt.status, "n": 1})
		s.Wait("mode", nil)
		_, err := c.Submit(submitCtx(t), Message{From: "100", To: "200", Text: "x"})
		var se *SubmitError
		if !errors.As(err, &se) || int(se.Status) != tt.status || se.Temporary != tt.temporary || se.Uncertain {
			t.Errorf("status %#x: %v", tt.status, err)
		}
	}
}

func TestNoResponseIsUncertain(t *testing.T) {
	s := smsctest.Start(t)
	c := runClient(t, s, Config{ResponseTimeout: 300 * time.Millisecond, EnquireLink: time.Hour})
	s.Wait("bind", nil)
	s.Send(map[string]any{"cmd": "mode", "submit": "silent", "n": 1})
	s.Wait("mode", nil)
	_, err := c.Submit(submitCtx(t), Message{From: "100", To: "200", Text: "into the void"})
	if !IsUncertain(err) || !IsTemporary(err) {
		t.Fatalf("no answer: %v, want uncertain", err)
	}
	// The session is still good.
	if _, err := c.Submit(submitCtx(t), Message{From: "100", To: "200", Text: "next"}); err != nil {
		t.Fatal(err)
	}
	if n := len(s.All("bind")); n != 1 {
		t.Errorf("%d binds, want the one session", n)
	}
}

func TestDropMidWindow(t *testing.T) {
	s := smsctest.Start(t)
	c := runClient(t, s, Config{Window: 10, BindWait: 10 * time.Second})
	s.Wait("bind", nil)
	s.Send(map[string]any{"cmd": "mode", "submit": "drop", "n": 5})
	s.Wait("mode", nil)

	type outcome struct {
		text string
		res  Result
		err  error
	}
	outs := make([]outcome, 20)
	var wg sync.WaitGroup
	for i := range outs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			outs[i].text = fmt.Sprintf("message %d", i)
			outs[i].res, outs[i].err = c.Submit(submitCtx(t), Message{From: "100", To: "200", Text: outs[i].text})
		}()
	}
	wg.Wait()
	s.Wait("dropping", nil)

	accepted := map[string]string{} // text -> id the SMSC issued and answered
	received := map[string]bool{}
	for _, e := range s.All("submit") {
		received[e["text"].(string)] = true
		if e["action"] == "ok" {
			accepted[e["text"].(string)] = e["message_id"].(string)
		}
	}
	var ok, uncertain, notSent int
	for _, o := range outs {
		switch {
		case o.err == nil:
			ok++
			if id := accepted[o.text]; id == "" || id != o.res.MessageIDs[0] {
				t.Errorf("%q reported sent as %v, the SMSC accepted it as %q", o.text, o.res.MessageIDs, id)
			}
		case IsUncertain(o.err):
			uncertain++
			if !received[o.text] {
				t.Logf("%q uncertain though the SMSC never read it (allowed: it was written)", o.text)
			}
		default:
			notSent++
			if received[o.text] {
				t.Errorf("%q reported not sent (%v), but the SMSC has it", o.text, o.err)
			}
		}
	}
	if uncertain < 5 {
		t.Errorf("%d uncertain, want at least the 5 the SMSC swallowed", uncertain)
	}
	if n := len(s.All("bind")); n < 2 {
		t.Errorf("no reconnect after the drop (%d binds)", n)
	}
	t.Logf("after the drop: %d accepted, %d uncertain, %d not sent", ok, uncertain, notSent)
	// And the link works again.
	if _, err := c.Submit(submitCtx(t), Message{From: "100", To: "200", Text: "after"}); err != nil {
		t.Fatal(err)
	}
}

func TestEnquireLink(t *testing.T) {
	s := smsctest.Start(t)
	c := runClient(t, s, Config{EnquireLink: 100 * time.Millisecond, ResponseTimeout: time.Second})
	for range 4 {
		s.Wait("enquire_link", nil)
	}
	s.Send(map[string]any{"cmd": "enquire_link"})
	if ev := s.Wait("enquire_link_resp", nil); num(ev, "status") != 0 {
		t.Errorf("enquire_link_resp %v", ev)
	}
	if n := len(s.All("bind")); n != 1 {
		t.Errorf("%d binds: the session did not hold", n)
	}
	if st := c.Status()[0]; !st.Bound || st.Reconnects != 0 {
		t.Errorf("status %+v", st)
	}
}

func TestSMSCUnbinds(t *testing.T) {
	s := smsctest.Start(t)
	c := runClient(t, s, Config{})
	s.Wait("bind", nil)
	s.Send(map[string]any{"cmd": "unbind"})
	s.Wait("bind", nil) // bound again
	if _, err := c.Submit(submitCtx(t), Message{From: "100", To: "200", Text: "again"}); err != nil {
		t.Fatal(err)
	}
	if st := c.Status()[0]; st.Reconnects != 1 {
		t.Errorf("reconnects = %d, want 1", st.Reconnects)
	}
}

// deliveries collects what the handler got, acknowledging by the test's rule.
type deliveries struct {
	ch  chan *Delivery
	ack func(*Delivery) error // nil: the test acks itself
}

func (d *deliveries) handle(x *Delivery) {
	if d.ack != nil {
		x.Ack(d.ack(x))
	}
	d.ch <- x
}

func (d *deliveries) next(t *testing.T) *Delivery {
	t.Helper()
	select {
	case x := <-d.ch:
		return x
	case <-time.After(10 * time.Second):
		t.Fatal("no delivery in 10s")
		return nil
	}
}

func TestMobileOriginated(t *testing.T) {
	for _, mode := range []BindMode{Transceiver, TransmitterReceiver} {
		t.Run(mode.String(), func(t *testing.T) {
			s := smsctest.Start(t)
			d := &deliveries{ch: make(chan *Delivery, 16)}
			runClient(t, s, Config{Bind: mode, Handler: d.handle})
			s.Wait("bind", func(e map[string]any) bool { return e["kind"] != "transmitter" })

			// A single GSM text: no deliver_sm_resp until the handler acks.
			s.Send(map[string]any{"cmd": "deliver", "source": "48600111222", "dest": "1001", "data_coding": 0, "sm_hex": "48656c6c6f2000011b65"})
			x := d.next(t)
			if x.Text != "Hello @£€" || x.From.Addr != "48600111222" || x.From.TON != 1 || x.To.Addr != "1001" || x.Concat.Valid() || x.Malformed != nil {
				t.Fatalf("delivery %+v", x)
			}
			time.Sleep(200 * time.Millisecond)
			if r := s.All("deliver_resp"); len(r) != 0 {
				t.Fatalf("deliver_sm_resp before Ack: %v", r)
			}
			if err := x.Ack(nil); err != nil {
				t.Fatal(err)
			}
			if ev := s.Wait("deliver_resp", nil); num(ev, "status") != 0 {
				t.Errorf("deliver_sm_resp %v", ev)
			}
			if err := x.Ack(nil); !errors.Is(err, ErrAcked) {
				t.Errorf("second Ack: %v", err)
			}

			// Not stored: the SMSC is told to try again later.
			s.Send(map[string]any{"cmd": "deliver", "source": "48600111222", "dest": "1001", "data_coding": 8, "sm_hex": "041f04400438043204350442"})
			x = d.next(t)
			if x.Text != "Привет" {
				t.Errorf("UCS-2 text %q", x.Text)
			}
			x.Ack(errors.New("queue unavailable"))
			if ev := s.Wait("deliver_resp", nil); num(ev, "status") != int(StatusRxTempAppn) {
				t.Errorf("deliver_sm_resp after a failed store: %v", ev)
			}
			s.Send(map[string]any{"cmd": "deliver", "source": "48600111222", "dest": "1001", "sm_hex": "41"})
			x = d.next(t)
			x.Ack(Reject(errors.New("hostile")))
			if ev := s.Wait("deliver_resp", nil); num(ev, "status") != int(StatusRxPermAppn) {
				t.Errorf("deliver_sm_resp after a rejection: %v", ev)
			}

			// Concatenated: parts arrive with their place and are joined.
			text := strings.Repeat("Długi tekst z telefonu. ", 6)
			coding, parts, err := smstext.Split(text, 0x33, 0)
			if err != nil {
				t.Fatal(err)
			}
			for i := len(parts) - 1; i >= 0; i-- { // out of order on purpose
				s.Send(map[string]any{"cmd": "deliver", "source": "48600111222", "dest": "1001", "esm_class": 0x40,
					"data_coding": int(coding), "sm_hex": hex.EncodeToString(parts[i].Bytes())})
			}
			var r smstext.Reassembler[*Delivery]
			var whole []*Delivery
			for range parts {
				x := d.next(t)
				k := smstext.Key{From: x.From.Addr, To: x.To.Addr, Ref: x.Concat.Ref, Total: x.Concat.Total}
				whole, _, _ = r.Add(k, x.Concat.Seq, x, time.Now())
			}
			if len(whole) != len(parts) {
				t.Fatalf("reassembled %d of %d parts", len(whole), len(parts))
			}
			var joined strings.Builder
			for _, p := range whole {
				joined.WriteString(p.Text)
				p.Ack(nil)
			}
			if joined.String() != text {
				t.Errorf("joined %q", joined.String())
			}
			for range parts {
				if ev := s.Wait("deliver_resp", nil); num(ev, "status") != 0 {
					t.Errorf("part answered %v", ev)
				}
			}

			// message_payload.
			s.Send(map[string]any{"cmd": "deliver", "source": "48600111222", "dest": "1001", "data_coding": 8, "payload_hex": "00410042"})
			x = d.next(t)
			if x.Text != "AB" {
				t.Errorf("payload text %q", x.Text)
			}
			x.Ack(nil)
		})
	}
}

func TestDeliveryReceipts(t *testing.T) {
	s := smsctest.Start(t)
	d := &deliveries{ch: make(chan *Delivery, 16), ack: func(*Delivery) error { return nil }}
	c := runClient(t, s, Config{Handler: d.handle, RegisteredDelivery: true})
	res, err := c.Submit(submitCtx(t), Message{From: "100", To: "+48600111222", Text: "receipt please"})
	if err != nil {
		t.Fatal(err)
	}
	id := res.MessageIDs[0]
	tests := []struct {
		name  string
		cmd   map[string]any
		state MessageState
		stat  string
	}{
		{"text only", map[string]any{"stat": "DELIVRD"}, StateDelivered, "DELIVRD"},
		{"with TLVs", map[string]any{"stat": "UNDELIV", "err": "001", "tlvs": true, "state": 5}, StateUndeliverable, "UNDELIV"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cmd := map[string]any{"cmd": "receipt", "message_id": id, "source": "48600111222", "dest": "100"}
			for k, v := range tt.cmd {
				cmd[k] = v
			}
			s.Send(cmd)
			x := d.next(t)
			if x.Receipt == nil {
				t.Fatalf("no receipt in %+v (%v)", x, x.Malformed)
			}
			rc := x.Receipt
			if !SameMessageID(rc.MessageID, id) || rc.State != tt.state || rc.Stat != tt.stat ||
				rc.DoneDate != time.Date(2025, 1, 2, 15, 5, 0, 0, time.UTC) {
				t.Errorf("receipt %+v", rc)
			}
			if ev := s.Wait("deliver_resp", nil); num(ev, "status") != 0 {
				t.Errorf("receipt answered %v", ev)
			}
		})
	}
}

func TestTooManyUnacked(t *testing.T) {
	s := smsctest.Start(t)
	d := &deliveries{ch: make(chan *Delivery, 16)}
	runClient(t, s, Config{Handler: d.handle, MaxUnacked: 1})
	s.Wait("bind", nil)
	s.Send(map[string]any{"cmd": "deliver", "source": "1", "dest": "2", "sm_hex": "41"})
	first := d.next(t)
	s.Send(map[string]any{"cmd": "deliver", "source": "1", "dest": "2", "sm_hex": "42"})
	if ev := s.Wait("deliver_resp", nil); num(ev, "status") != int(StatusMsgQFull) {
		t.Fatalf("second delivery while the first is unacked: %v", ev)
	}
	first.Ack(nil)
	s.Wait("deliver_resp", func(e map[string]any) bool { return num(e, "status") == 0 })
}
