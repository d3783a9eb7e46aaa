package link

import (
	"context"
	"strings"
	"testing"
	"time"

	"smsrouter/channels"
	"smsrouter/internal/modemsim"
	"smsrouter/internal/smsctest"
	"smsrouter/mobile/smpp"
)

func ackRequest(t *testing.T, link string, ref *uint16) []byte {
	t.Helper()
	b, err := AckRequest{Link: link, Bind: "transceiver", Kind: "delivery",
		From: AckAddress{Addr: "48600999888", TON: 1, NPI: 1}, To: AckAddress{Addr: "221234567", TON: 2, NPI: 1},
		UserMessageReference: ref, Received: time.Now()}.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestDeliverAcknowledgement: a report carrying an acknowledgement request
// goes to the originator as an ESME Delivery Acknowledgement with the
// reference, untouched by the link's text template and source, and a retry
// after a failed journal write sends nothing again.
func TestDeliverAcknowledgement(t *testing.T) {
	s := smsctest.Start(t)
	ch, _ := smppLink(t, s, Config{Text: "{{.From}}: {{.Text}}", Source: "Operator"}, smpp.Config{RegisteredDelivery: true})
	ref := uint16(77)
	m := message("+48600999888", "Delivered to 1001 by SMS, 14:03")
	m.From, m.Depth, m.Acknowledges = "9001", 1, ackRequest(t, "sms1", &ref)
	res, err := ch.Deliver(context.Background(), m)
	if err != nil {
		t.Fatal(err)
	}
	ev := s.Wait("submit", nil)
	if smsctest.Num(ev, "esm_class") != 0x08 || smsctest.Num(ev, "registered_delivery") != 0 ||
		smsctest.Num(ev, "user_message_reference") != 77 || ev["text"] != "Delivered to 1001 by SMS, 14:03" ||
		ev["destination_addr"] != "48600999888" || smsctest.Num(ev, "dest_addr_ton") != 1 ||
		ev["source_addr"] != "221234567" || smsctest.Num(ev, "source_addr_ton") != 2 {
		t.Fatalf("the SMSC got %v", ev)
	}
	if res.Detail["acknowledgement"] != "delivery" || len(res.Refs) != 1 {
		t.Fatalf("result %+v", res)
	}
	if again, err := ch.Deliver(context.Background(), m); err != nil || again.Detail["already_sent"] != true {
		t.Fatalf("again: %v %+v", err, again)
	}
	if n := len(s.All("submit")); n != 1 {
		t.Fatalf("%d submits", n)
	}

	// A request of another link, or one that cannot be read: permanent.
	for _, bad := range [][]byte{ackRequest(t, "other", nil), []byte(`{"link":"sms1","kind":"delivery"}`), []byte("{")} {
		m := message("+48600999888", "x")
		m.Acknowledges = bad
		if _, err := ch.Deliver(context.Background(), m); !channels.IsPermanent(err) {
			t.Errorf("%s: %v", bad, err)
		}
	}
}

// TestModemSendsNoAcknowledgement: a modem has no SME acknowledgement, and
// refuses to fake one.
func TestModemSendsNoAcknowledgement(t *testing.T) {
	sim := modemsim.New(t)
	ch, _ := modemLink(t, sim)
	m := message("+48600999888", "Delivered to 1001 by SMS, 14:03")
	m.Acknowledges = ackRequest(t, "sms1", nil)
	_, err := ch.Deliver(context.Background(), m)
	if !channels.IsPermanent(err) || !strings.Contains(err.Error(), "modem") || len(sim.SentPDUs()) != 0 {
		t.Fatalf("modem: %v, %d PDUs", err, len(sim.SentPDUs()))
	}
}

func TestAckRequestOf(t *testing.T) {
	ref := uint16(0x1234)
	d := &smpp.Delivery{RegisteredDelivery: 0x08, From: smpp.Address{Addr: "48600999888", TON: 1, NPI: 1},
		To: smpp.Address{Addr: "48221234567", TON: 1, NPI: 1}, Bind: "receiver", Received: time.Now(),
		TLVs: map[uint16][]byte{0x0204: {0x12, 0x34}}}
	req, ok := AckRequestOf("op", d)
	if !ok || req.Kind != "manual" || req.Bind != "receiver" || req.UserMessageReference == nil || *req.UserMessageReference != ref {
		t.Fatalf("%+v %v", req, ok)
	}
	b, _ := req.Marshal()
	back, err := ParseAckRequest(b)
	if err != nil || back.From != req.From || *back.UserMessageReference != ref {
		t.Fatalf("%+v %v", back, err)
	}
	a := back.smpp()
	if a.Kind != smpp.ManualAck || a.To.Addr != "48600999888" || a.From.Addr != "48221234567" || string(a.UserMessageReference) != "\x12\x34" {
		t.Fatalf("%+v", a)
	}
	d.RegisteredDelivery = 0x01
	if _, ok := AckRequestOf("op", d); ok {
		t.Fatal("a receipt request taken for an acknowledgement request")
	}
}
