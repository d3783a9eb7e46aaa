package smpp

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"smsrouter/internal/smsctest"
	"smsrouter/mobile/smstext"
)

func TestAckAsked(t *testing.T) {
	receipt := []byte("id:1 sub:001 dlvrd:001 submit date:2501021504 done date:2501021505 stat:DELIVRD err:000 text:x")
	tests := []struct {
		name string
		rd   byte
		esm  byte
		sm   []byte
		want AckKind
	}{
		{"nothing asked", 0x00, 0, []byte("hi"), NoAck},
		{"an SMSC receipt only", 0x01, 0, []byte("hi"), NoAck},
		{"intermediate notification only", 0x10, 0, []byte("hi"), NoAck},
		{"delivery acknowledgement", 0x04, 0, []byte("hi"), DeliveryAck},
		{"with an SMSC receipt too", 0x05, 0, []byte("hi"), DeliveryAck},
		{"manual/user acknowledgement", 0x08, 0, []byte("hi"), ManualAck},
		{"both: the delivery one", 0x0C, 0, []byte("hi"), DeliveryAck},
		{"a receipt asks for nothing", 0x04, esmSMSCReceipt, receipt, NoAck},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			body := deliverBody(tt.esm, 0, tt.sm)
			body[len(body)-len(tt.sm)-5] = tt.rd // registered_delivery
			d := parseDelivery(pduFrame(cmdDeliverSM, 7, body), time.Now())
			if d.Malformed != nil {
				t.Fatal(d.Malformed)
			}
			if d.RegisteredDelivery != tt.rd || d.AckAsked() != tt.want {
				t.Fatalf("registered_delivery %#x: asked %v, want %v", d.RegisteredDelivery, d.AckAsked(), tt.want)
			}
		})
	}
	// user_message_reference: two octets, or nothing.
	d := parseDelivery(pduFrame(cmdDeliverSM, 1, deliverBody(0, 0, []byte("hi"), tlv(tagUserMessageRef, []byte{0x12, 0x34}))), time.Now())
	if !bytes.Equal(d.UserMessageReference(), []byte{0x12, 0x34}) {
		t.Fatalf("reference %x", d.UserMessageReference())
	}
	d = parseDelivery(pduFrame(cmdDeliverSM, 1, deliverBody(0, 0, []byte("hi"), tlv(tagUserMessageRef, []byte{0x12}))), time.Now())
	if d.UserMessageReference() != nil {
		t.Fatalf("a 1-octet reference read as %x", d.UserMessageReference())
	}
	if AckKindOf(DeliveryAck.String()) != DeliveryAck || AckKindOf(ManualAck.String()) != ManualAck || AckKindOf("x") != NoAck {
		t.Fatal("kind names do not read back")
	}
}

// submitFields reads a submit_sm body as SMPP 3.4 4.4.1 lays it out, with
// this package's reader rather than gosmpp's.
type submitFields struct {
	from, to    Address
	esm, rd, dc byte
	validity    string
	sm          []byte
	tlvs        map[uint16][]byte
}

func readSubmit(t *testing.T, frame []byte) submitFields {
	t.Helper()
	if h := header(frame); h.id != cmdSubmitSM || int(h.length) != len(frame) {
		t.Fatalf("header %+v of %d octets", h, len(frame))
	}
	r := reader{b: frame[16:]}
	var f submitFields
	r.cstring("service_type", 6)
	f.from = r.address("source", 21)
	f.to = r.address("dest", 21)
	f.esm = r.byte("esm_class")
	r.byte("protocol_id")
	r.byte("priority")
	r.cstring("schedule", 17)
	f.validity = r.cstring("validity", 17)
	f.rd = r.byte("registered_delivery")
	r.byte("replace")
	f.dc = r.byte("data_coding")
	r.byte("sm_default_msg_id")
	n := r.byte("sm_length")
	f.sm = r.bytes("short_message", int(n))
	if r.err != nil {
		t.Fatal(r.err)
	}
	tlvs, err := readTLVs(r.b)
	if err != nil {
		t.Fatal(err)
	}
	f.tlvs = tlvs
	return f
}

func TestAckPDU(t *testing.T) {
	c, err := New(Config{Addr: "127.0.0.1:1", SystemID: "x", Bind: Transmitter, RegisteredDelivery: true})
	if err != nil {
		t.Fatal(err)
	}
	a := &Ack{Kind: DeliveryAck, From: Address{Addr: "48221234567", TON: 1, NPI: 1}, To: Address{Addr: "600999888", TON: 2, NPI: 1},
		UserMessageReference: []byte{0x00, 0x2a}}
	sm, coding, err := c.ackPDU(a, "Delivered to 1001 by SMS, 14:03")
	if err != nil {
		t.Fatal(err)
	}
	f := readSubmit(t, marshal(sm, 9))
	// Back to the originator, from the address it wrote to, each with its own TON/NPI.
	if f.from != a.From || f.to != a.To {
		t.Errorf("addresses %+v → %+v", f.from, f.to)
	}
	// ESME Delivery Acknowledgement, and no receipt asked for it although the
	// link asks for receipts on its texts.
	if f.esm != 0x08 || f.rd != 0 {
		t.Errorf("esm_class %#x registered_delivery %#x", f.esm, f.rd)
	}
	if !bytes.Equal(f.tlvs[tagUserMessageRef], []byte{0x00, 0x2a}) || len(f.tlvs) != 1 {
		t.Errorf("TLVs %x", f.tlvs)
	}
	if text, _, _ := smstext.Decode(f.dc, f.sm); text != "Delivered to 1001 by SMS, 14:03" || coding != smstext.GSM7 || f.dc != 0 {
		t.Errorf("text %q coding %v dc %d", text, coding, f.dc)
	}

	// Manual/user, no reference, a text too long for one message: cut.
	a = &Ack{Kind: ManualAck, From: Address{Addr: "1001"}, To: Address{Addr: "48600999888", TON: 1, NPI: 1}}
	long := "Not delivered to 1001: " + strings.Repeat("ż", 80)
	sm, coding, err = c.ackPDU(a, long)
	if err != nil {
		t.Fatal(err)
	}
	f = readSubmit(t, marshal(sm, 10))
	text, _, _ := smstext.Decode(f.dc, f.sm)
	if f.esm != 0x10 || f.tlvs[tagUserMessageRef] != nil || coding != smstext.UCS2 || f.dc != 8 ||
		len(f.sm) > 140 || !strings.HasSuffix(text, "...") || !strings.HasPrefix(long, strings.TrimSuffix(text, "...")) {
		t.Errorf("esm %#x tlvs %x coding %v: %d octets %q", f.esm, f.tlvs, coding, len(f.sm), text)
	}

	for _, bad := range []*Ack{
		{Kind: NoAck, To: Address{Addr: "1"}},
		{Kind: DeliveryAck},
		{Kind: DeliveryAck, To: Address{Addr: strings.Repeat("1", 30)}},
	} {
		if _, _, err := c.ackPDU(bad, "x"); err == nil {
			t.Errorf("%+v: no error", bad)
		}
	}
}

// TestAckAgainstSMSC: the SMSC delivers a message asking for a delivery
// acknowledgement with a reference; the client reads both and its answer
// reaches the SMSC as an ESME Delivery Acknowledgement with the reference.
func TestAckAgainstSMSC(t *testing.T) {
	s := smsctest.Start(t)
	d := &deliveries{ch: make(chan *Delivery, 4), ack: func(*Delivery) error { return nil }}
	c := runClient(t, s, Config{Handler: d.handle, RegisteredDelivery: true})
	s.Wait("bind", nil)
	s.Send(map[string]any{"cmd": "deliver", "source": "48600999888", "dest": "48221234567", "dest_ton": 1,
		"registered_delivery": 0x04, "user_message_reference": 0x1234, "sm_hex": "48656c6c6f"})
	x := d.next(t)
	if x.AckAsked() != DeliveryAck || !bytes.Equal(x.UserMessageReference(), []byte{0x12, 0x34}) || x.Bind != "transceiver" {
		t.Fatalf("delivery: asked %v reference %x bind %q", x.AckAsked(), x.UserMessageReference(), x.Bind)
	}
	var accepted []string
	res, err := c.Submit(submitCtx(t), Message{Text: "Delivered to 1001 by SMS, 14:03",
		Ack:      &Ack{Kind: x.AckAsked(), From: x.To, To: x.From, UserMessageReference: x.UserMessageReference()},
		Accepted: func(part, parts int, id string) { accepted = append(accepted, id) }})
	if err != nil || len(res.MessageIDs) != 1 || len(accepted) != 1 || accepted[0] != res.MessageIDs[0] {
		t.Fatalf("submit: %+v %v (accepted %v)", res, err, accepted)
	}
	ev := s.Wait("submit", nil)
	if num(ev, "esm_class") != 0x08 || num(ev, "registered_delivery") != 0 || num(ev, "user_message_reference") != 0x1234 ||
		ev["destination_addr"] != "48600999888" || num(ev, "dest_addr_ton") != 1 ||
		ev["source_addr"] != "48221234567" || num(ev, "source_addr_ton") != 1 || ev["text"] != "Delivered to 1001 by SMS, 14:03" {
		t.Fatalf("the SMSC got %v", ev)
	}
}
