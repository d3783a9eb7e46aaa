package link

import (
	"context"
	"errors"
	"fmt"
	"strconv"

	"github.com/linxGnu/gosmpp/data"

	"smsrouter/mobile/modem"
	"smsrouter/mobile/smpp"
)

// publicBadNumber is the sender's reason when the network says the recipient's
// number is not valid.
const publicBadNumber = "The number is not valid on the mobile network."

// SMPP adapts an SMPP client (kept bound by its Run elsewhere).
func SMPP(c *smpp.Client) Transport { return smppTransport{c} }

type smppTransport struct{ c *smpp.Client }

func (smppTransport) Kind() string { return "smpp" }

func (t smppTransport) Ready() error {
	for _, b := range t.c.Status() {
		if b.Role != "receiver" && b.Bound {
			return nil
		}
	}
	return smpp.ErrNotBound
}

func (t smppTransport) Send(ctx context.Context, o Outgoing) error {
	m := smpp.Message{
		From: o.From, To: o.To, Text: o.Text, ConcatRef: o.ConcatRef, Validity: o.Validity, Skip: o.Skip,
		Sending: o.Sending, Accepted: o.Accepted,
	}
	if o.Ack != nil {
		m.Ack = o.Ack.smpp()
	}
	_, err := t.c.Submit(ctx, m)
	if err == nil {
		return nil
	}
	var se *smpp.SubmitError
	if !errors.As(err, &se) {
		return &SendError{Temporary: smpp.IsTemporary(err), Err: err}
	}
	out := &SendError{Part: se.Part, Parts: se.Parts, Uncertain: se.Uncertain, Temporary: se.Temporary, Err: err}
	if !se.Temporary {
		switch se.Status {
		case smpp.StatusInvDstAdr, smpp.Status(data.ESME_RINVDSTTON), smpp.Status(data.ESME_RINVDSTNPI):
			out.Public = publicBadNumber
		default:
			out.Public = publicRefused
		}
		if se.Status == smpp.StatusOK {
			// Refused before anything was sent: the text or an address cannot
			// be coded (too long, a sender the SMSC cannot carry).
			out.Public = "The message cannot be sent to the mobile network."
		}
	}
	return out
}

// Modem adapts a modem device (kept open by its Run elsewhere).
func Modem(d *modem.Device) Transport { return modemTransport{d} }

type modemTransport struct{ d *modem.Device }

func (modemTransport) Kind() string { return "modem" }

func (t modemTransport) Ready() error {
	st := t.d.Status()
	switch {
	case !st.Open:
		if st.LastError != "" {
			return fmt.Errorf("%w: %s", modem.ErrNotOpen, st.LastError)
		}
		return modem.ErrNotOpen
	case !st.Registered:
		return modem.ErrNotRegistered
	}
	return nil
}

// permanentCMSBadNumber are +CMS ERROR codes about the recipient (TS 24.011
// E.2): unassigned number, call barred, unidentified subscriber.
var permanentCMSBadNumber = map[int]bool{1: true, 10: true, 28: true}

func (t modemTransport) Send(ctx context.Context, o Outgoing) error {
	if o.Ack != nil {
		// Never recorded for a modem link (see ack.go); refused, not faked.
		return &SendError{Public: "The mobile network cannot carry this report.",
			Err: errors.New("a GSM modem sends no SME acknowledgement")}
	}
	_, err := t.d.SendMessage(ctx, modem.Outgoing{
		To: o.To, Text: o.Text, ConcatRef: o.ConcatRef, Skip: o.Skip, Sending: o.Sending,
		Sent: func(part, parts, mr int) {
			if o.Accepted != nil {
				o.Accepted(part, parts, strconv.Itoa(mr))
			}
		},
	})
	if err == nil {
		return nil
	}
	var se *modem.SendError
	if !errors.As(err, &se) {
		return &SendError{Temporary: modem.IsTemporary(err), Err: err}
	}
	out := &SendError{Part: se.Part, Parts: se.Parts, Uncertain: se.Uncertain, Temporary: se.Temporary, Err: err}
	if !se.Temporary {
		out.Public = publicRefused
		if permanentCMSBadNumber[se.CMS] {
			out.Public = publicBadNumber
		}
		if se.CMS < 0 {
			out.Public = "The message cannot be sent to the mobile network."
		}
	}
	return out
}
