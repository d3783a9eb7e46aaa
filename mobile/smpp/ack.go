package smpp

import (
	"errors"
	"fmt"

	"github.com/linxGnu/gosmpp/data"
	"github.com/linxGnu/gosmpp/pdu"

	"smsrouter/mobile/smstext"
)

// SME acknowledgements (SMPP 3.4 2.11, 5.2.12, 5.2.17). A deliver_sm whose
// registered_delivery has bits 3-2 set asks the receiving ESME to answer the
// originator once the message reached its end: 01 a delivery
// acknowledgement, 10 a manual/user acknowledgement, 11 both. The answer is
// a submit_sm back to the originator whose esm_class says which kind it is,
// carrying the original's user_message_reference so the SMSC can relate the
// two; its short message is free text for the person.

// AckKind is the kind of SME acknowledgement, as its esm_class message type.
type AckKind byte

// Kinds of acknowledgement.
const (
	NoAck       AckKind = 0
	DeliveryAck AckKind = data.SM_ESME_DLV_ACK_TYPE      // esm_class 0x08
	ManualAck   AckKind = data.SM_ESME_MAN_USER_ACK_TYPE // esm_class 0x10
)

func (k AckKind) String() string {
	switch k {
	case DeliveryAck:
		return "delivery"
	case ManualAck:
		return "manual"
	case NoAck:
		return "none"
	}
	return fmt.Sprintf("esm_class %#02x", byte(k))
}

// AckKindOf reads a kind's name back (String); NoAck for anything else.
func AckKindOf(name string) AckKind {
	switch name {
	case "delivery":
		return DeliveryAck
	case "manual":
		return ManualAck
	}
	return NoAck
}

// AckAsked says which acknowledgement the delivery's sender asked for. Both
// (11) is answered with a delivery acknowledgement: a gateway can say when a
// message was delivered, never that a person acknowledged it by hand. A
// delivery receipt asks for nothing: it is the SMSC's, not an SME's message.
func (d *Delivery) AckAsked() AckKind {
	if d.Receipt != nil || d.Malformed != nil {
		return NoAck
	}
	switch d.RegisteredDelivery & data.SM_SME_ACK_MASK {
	case data.SM_SME_ACK_DELIVERY_REQUESTED, data.SM_SME_ACK_BOTH_REQUESTED:
		return DeliveryAck
	case data.SM_SME_ACK_MANUAL_REQUESTED:
		return ManualAck
	}
	return NoAck
}

// UserMessageReference is the delivery's user_message_reference TLV (2
// octets), or nil.
func (d *Delivery) UserMessageReference() []byte {
	v := d.TLVs[tagUserMessageRef]
	if len(v) != 2 {
		return nil
	}
	return append([]byte(nil), v...)
}

// Ack makes a Message an SME acknowledgement of a delivery.
type Ack struct {
	Kind AckKind
	// From is the address the acknowledged message was sent to, To its
	// originator, both with their TON and NPI as the deliver_sm gave them.
	From, To Address
	// UserMessageReference is echoed as it came (2 octets); nil when the
	// delivery had none.
	UserMessageReference []byte
}

// ackText codes an acknowledgement's text as one short message: its
// esm_class names the message type, and no SMSC joins the parts of an
// acknowledgement. A longer text is cut and ends in "...".
func ackText(text string) (smstext.Coding, []byte, error) {
	r := []rune(text)
	for n := len(r); ; n-- {
		t := text
		if n < len(r) {
			t = string(r[:n]) + "..."
		}
		coding, parts, err := smstext.Split(t, 0, 1)
		switch {
		case err == nil && len(parts) == 1:
			return coding, parts[0].Bytes(), nil
		case err != nil && !errors.Is(err, smstext.ErrTooLong), n <= 0:
			return 0, nil, fmt.Errorf("acknowledgement text: %w", err)
		}
	}
}

// ackPDU is the submit_sm of an acknowledgement: its addresses exactly as
// given, esm_class of its kind, registered_delivery 0 (an acknowledgement
// of an acknowledgement would never end), the reference echoed, the text in
// one short message.
func (c *Client) ackPDU(a *Ack, text string) (*pdu.SubmitSM, smstext.Coding, error) {
	if a.Kind != DeliveryAck && a.Kind != ManualAck {
		return nil, 0, fmt.Errorf("acknowledgement kind %v", a.Kind)
	}
	from, err := pdu.NewAddressWithTonNpiAddr(a.From.TON, a.From.NPI, a.From.Addr)
	if err != nil {
		return nil, 0, fmt.Errorf("acknowledgement source: %w", err)
	}
	to, err := pdu.NewAddressWithTonNpiAddr(a.To.TON, a.To.NPI, a.To.Addr)
	if err != nil {
		return nil, 0, fmt.Errorf("acknowledgement destination: %w", err)
	}
	if a.To.Addr == "" {
		return nil, 0, fmt.Errorf("acknowledgement without a destination")
	}
	coding, body, err := ackText(text)
	if err != nil {
		return nil, 0, err
	}
	sm := pdu.NewSubmitSM().(*pdu.SubmitSM)
	sm.ServiceType = c.cfg.ServiceType
	sm.SourceAddr, sm.DestAddr = from, to
	sm.EsmClass = byte(a.Kind)
	sm.RegisteredDelivery = 0
	enc := data.Encoding(data.GSM7BIT)
	if coding == smstext.UCS2 {
		enc = data.UCS2
	}
	sm.Message.SetMessageDataWithEncoding(body, enc)
	if len(a.UserMessageReference) == 2 {
		sm.RegisterOptionalParam(pdu.Field{Tag: tagUserMessageRef, Data: append([]byte(nil), a.UserMessageReference...)})
	}
	return sm, coding, nil
}
