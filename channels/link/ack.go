package link

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"smsrouter/channels"
	"smsrouter/mobile/smpp"
)

// Acknowledgements the mobile network asks for. An SMSC's deliver_sm whose
// registered_delivery asks for an SME acknowledgement (SMPP 3.4 5.2.17) is
// answered, once the PBX delivered the message or gave up on it, by a
// submit_sm back to the originator whose esm_class says "delivery
// acknowledgement" (or "manual/user acknowledgement"), echoing the
// deliver_sm's user_message_reference, with the same short text a phone
// that asked app_sms for a status report gets.
//
// The ingress writes an AckRequest beside the queued message; the router
// keeps it with the message (journal detail "network_ack"), and when the
// message's fate is final queues the report as a new message through this
// link carrying the request (channels.Message.Acknowledges), so a link that
// is down holds it like any other text and the markers send it once.
//
// A GSM modem has no equivalent: a handset's request for a status report
// (TP-SRR) is answered by its own SMSC when the modem's SIM took the message,
// and there is nothing for the receiving end to send. Modem links record no
// request and a modem never sends one.

// AckAddress is an SMPP address as it came, type of number and numbering
// plan included.
type AckAddress struct {
	Addr string `json:"addr"`
	TON  byte   `json:"ton"`
	NPI  byte   `json:"npi"`
}

// AckRequest is what answering one acknowledgement request needs. A 3.4
// deliver_sm carries no message id of the SMSC's (its deliver_sm_resp's
// message_id is unused): the user_message_reference, when the originator
// set one, and the addresses are all that relate the answer to it.
type AckRequest struct {
	Link string `json:"link"`
	Bind string `json:"bind,omitempty"` // the bind it came on, for the journal
	Kind string `json:"kind"`           // "delivery" or "manual"
	// From is the originator (where the acknowledgement goes), To the address
	// it was sent to (where it comes from).
	From AckAddress `json:"from"`
	To   AckAddress `json:"to"`
	// UserMessageReference is the deliver_sm's user_message_reference, nil
	// when it had none.
	UserMessageReference *uint16   `json:"user_message_reference,omitempty"`
	Received             time.Time `json:"received"`
}

// AckRequestOf returns the request of a delivery that asks for an
// acknowledgement; ok is false for one that asks for none.
func AckRequestOf(link string, d *smpp.Delivery) (req AckRequest, ok bool) {
	kind := d.AckAsked()
	if kind == smpp.NoAck || d.From.TON == 5 || !smpp.Numeric(d.From.Addr) {
		// Nobody to answer: an alphanumeric sender (a bank's name) or none.
		return AckRequest{}, false
	}
	req = AckRequest{Link: link, Bind: d.Bind, Kind: kind.String(),
		From:     AckAddress{Addr: d.From.Addr, TON: d.From.TON, NPI: d.From.NPI},
		To:       AckAddress{Addr: d.To.Addr, TON: d.To.TON, NPI: d.To.NPI},
		Received: d.Received.UTC().Truncate(time.Millisecond)}
	if r := d.UserMessageReference(); r != nil {
		v := binary.BigEndian.Uint16(r)
		req.UserMessageReference = &v
	}
	return req, true
}

// Marshal codes the request for the queue and the journal.
func (r AckRequest) Marshal() ([]byte, error) { return json.Marshal(r) }

// ParseAckRequest reads a request back, refusing one that cannot be answered.
func ParseAckRequest(b []byte) (AckRequest, error) {
	var r AckRequest
	if err := json.Unmarshal(b, &r); err != nil {
		return r, fmt.Errorf("acknowledgement request: %w", err)
	}
	switch {
	case smpp.AckKindOf(r.Kind) == smpp.NoAck:
		return r, fmt.Errorf("acknowledgement request: kind %q", r.Kind)
	case r.From.Addr == "" || len(r.From.Addr) > 20 || len(r.To.Addr) > 20:
		return r, errors.New("acknowledgement request: no originator, or an address longer than 20")
	case !channels.ValidLinkName(r.Link):
		return r, fmt.Errorf("acknowledgement request: link %q", r.Link)
	}
	return r, nil
}

func (r AckRequest) smpp() *smpp.Ack {
	a := &smpp.Ack{Kind: smpp.AckKindOf(r.Kind),
		From: smpp.Address{Addr: r.To.Addr, TON: r.To.TON, NPI: r.To.NPI},
		To:   smpp.Address{Addr: r.From.Addr, TON: r.From.TON, NPI: r.From.NPI}}
	if r.UserMessageReference != nil {
		a.UserMessageReference = binary.BigEndian.AppendUint16(nil, *r.UserMessageReference)
	}
	return a
}
