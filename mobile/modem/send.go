package modem

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/warthog618/modem/at"
	"github.com/warthog618/sms/encoding/pdumode"
	"github.com/warthog618/sms/encoding/tpdu"

	"smsrouter/mobile/smstext"
)

// ErrNotRegistered is returned by Send while the modem is not registered on
// a network: nothing was sent.
var ErrNotRegistered = errors.New("modem: not registered on the network")

// SendResult is what the modem said to a whole text.
type SendResult struct {
	References []int // the TP-MR of each part (status reports name them)
	Coding     smstext.Coding
}

// SendError is a Send that did not get every part out.
type SendError struct {
	Part, Parts int
	References  []int // parts sent before this one
	CMS         int   // the +CMS ERROR code, -1 when there was none
	Uncertain   bool  // the part may have gone out: the PDU was given and no answer came
	Temporary   bool  // worth retrying later; true whenever Uncertain
	Err         error
}

func (e *SendError) Error() string {
	what := "refused"
	switch {
	case e.Uncertain:
		what = "uncertain"
	case e.Temporary:
		what = "temporary failure"
	}
	s := fmt.Sprintf("modem: send part %d of %d %s", e.Part, e.Parts, what)
	if e.CMS >= 0 {
		s += fmt.Sprintf(": +CMS ERROR %d", e.CMS)
	}
	if e.Err != nil {
		s += ": " + e.Err.Error()
	}
	return s
}

func (e *SendError) Unwrap() error { return e.Err }

// IsUncertain reports a part that may or may not have gone out.
func IsUncertain(err error) bool {
	var se *SendError
	return errors.As(err, &se) && se.Uncertain
}

// IsTemporary reports an error worth retrying later.
func IsTemporary(err error) bool {
	var se *SendError
	return errors.As(err, &se) && se.Temporary
}

// permanentCMS are +CMS ERROR codes (TS 27.005 3.2.5) about the message or
// the recipient: sending it again cannot help. Every other code (network
// congestion, SIM busy, memory, unknown) is temporary.
var permanentCMS = map[int]bool{
	1: true, 8: true, 10: true, 21: true, 28: true, 29: true, 30: true, 50: true, 69: true,
	81: true, 95: true, 96: true, 97: true, 98: true, 99: true, 111: true, 127: true,
	0xC1: true, 0xC3: true, 0xC4: true, 0xC6: true, 0xC7: true,
	301: true, 303: true, 304: true, 305: true,
}

// uncertainCMS: the network did not confirm, but the centre may have the
// message (332: network timeout).
var uncertainCMS = map[int]bool{332: true}

func classifyCMS(code int) (temporary, uncertain bool) {
	switch {
	case uncertainCMS[code]:
		return true, true
	case permanentCMS[code], code >= 0x80 && code <= 0x9F: // TP-PID and TP-DCS errors
		return false, false
	}
	return true, false
}

// Send sends text to the number ("+48600111222" international, otherwise
// as dialled) with AT+CMGS in PDU mode, one command per part, and returns
// the message reference of each part. While the modem is closed or not
// registered it returns a temporary error without sending anything.
func (d *Device) Send(ctx context.Context, to, text string) (SendResult, error) {
	return d.SendMessage(ctx, Outgoing{To: to, Text: text})
}

// Outgoing is one text to send, with what a caller that resumes after a
// failure or a crash needs.
type Outgoing struct {
	To, Text string
	// ConcatRef fixes the reference of a concatenated text (1..255), so a
	// retry carries the same one; 0 lets the device choose.
	ConcatRef int
	// Skip is how many leading parts went out already: they are not sent
	// again, and their References are -1.
	Skip int
	// Sending, when set, is called just before a part's PDU is given to the
	// modem, and Sent once the modem said it went, with its TP-MR (-1 when
	// the modem gave none). Both run on SendMessage's goroutine.
	Sending func(part, parts int)
	Sent    func(part, parts, reference int)
}

// SendMessage is Send with a fixed concatenation reference, parts to skip
// and progress callbacks.
func (d *Device) SendMessage(ctx context.Context, o Outgoing) (SendResult, error) {
	to, text := o.To, o.Text
	if !validNumber(to) {
		return SendResult{}, &SendError{Part: 1, Parts: 1, CMS: -1, Err: fmt.Errorf("recipient %q is not a number", to)}
	}
	ref := uint8(o.ConcatRef)
	if o.ConcatRef <= 0 || o.ConcatRef > 255 {
		ref = uint8(d.refs.Add(1))
	}
	coding, parts, err := smstext.Split(text, ref, d.cfg.MaxParts)
	if err != nil {
		return SendResult{}, &SendError{Part: 1, Parts: 1, CMS: -1, Err: err}
	}
	d.sendMu.Lock()
	defer d.sendMu.Unlock()
	res := SendResult{Coding: coding}
	for i, p := range parts {
		fail := func(e *SendError) (SendResult, error) {
			e.Part, e.Parts, e.References = i+1, len(parts), res.References
			return res, e
		}
		if i < o.Skip {
			res.References = append(res.References, -1)
			continue
		}
		if err := ctx.Err(); err != nil {
			return fail(&SendError{CMS: -1, Temporary: true, Err: err})
		}
		d.mu.Lock()
		s, st := d.sess, d.st
		d.mu.Unlock()
		if s == nil {
			return fail(&SendError{CMS: -1, Temporary: true, Err: ErrNotOpen})
		}
		if !st.Registered {
			return fail(&SendError{CMS: -1, Temporary: true, Err: ErrNotRegistered})
		}
		pdu, n, err := d.submitPDU(to, coding, p)
		if err != nil {
			return fail(&SendError{CMS: -1, Err: err})
		}
		if o.Sending != nil {
			o.Sending(i+1, len(parts))
		}
		s.tap.pduSent.Store(false)
		info, err := s.a.SMSCommand("+CMGS="+strconv.Itoa(n), pdu, at.WithTimeout(d.cfg.SendTimeout))
		if err != nil {
			written := s.tap.pduSent.Load()
			var cms at.CMSError
			switch {
			case errors.As(err, &cms):
				code, cerr := strconv.Atoi(strings.TrimSpace(string(cms)))
				if cerr != nil {
					return fail(&SendError{CMS: -1, Temporary: true, Err: err})
				}
				temp, unc := classifyCMS(code)
				return fail(&SendError{CMS: code, Temporary: temp, Uncertain: unc && written, Err: err})
			case errors.Is(err, at.ErrDeadlineExceeded):
				s.fail(errors.New("AT+CMGS: no answer in time"))
			}
			return fail(&SendError{CMS: -1, Temporary: true, Uncertain: written, Err: err})
		}
		mr, ok := parseCMGS(info)
		if !ok {
			// OK without +CMGS: the modem says it went, but gives no reference.
			d.log.Warn("modem: +CMGS gave no message reference", "info", info)
			mr = -1
		}
		res.References = append(res.References, mr)
		if o.Sent != nil {
			o.Sent(i+1, len(parts), mr)
		}
	}
	return res, nil
}

// submitPDU builds the PDU-mode hex of one part and its TPDU length.
func (d *Device) submitPDU(to string, coding smstext.Coding, p smstext.Part) (string, int, error) {
	t := tpdu.TPDU{}
	if err := t.SetSmsType(tpdu.SmsSubmit); err != nil {
		return "", 0, err
	}
	da := tpdu.NewAddress()
	if strings.HasPrefix(to, "+") {
		da.SetNumber(to)
	} else {
		da.SetTypeOfNumber(tpdu.TonUnknown)
		da.SetNumberingPlan(tpdu.NpISDN)
		da.Addr = to
	}
	t.DA = da
	t.SetDCS(byte(coding))
	if p.UDH != nil {
		var udh tpdu.UserDataHeader
		if _, err := udh.UnmarshalBinary(p.UDH); err != nil {
			return "", 0, fmt.Errorf("user data header: %w", err)
		}
		t.SetUDH(udh)
	}
	t.SetUD(p.Data)
	if d.cfg.StatusReports {
		t.FirstOctet |= tpdu.FoSRR
	}
	if d.cfg.Validity > 0 {
		var vp tpdu.ValidityPeriod
		vp.SetRelative(d.cfg.Validity)
		t.SetVP(vp)
	}
	tp, err := t.MarshalBinary()
	if err != nil {
		return "", 0, fmt.Errorf("encode PDU: %w", err)
	}
	pdu := pdumode.PDU{TPDU: tp}
	if d.cfg.SMSC != "" {
		pdu.SMSC.SetNumber(d.cfg.SMSC)
	}
	h, err := pdu.MarshalHexString()
	if err != nil {
		return "", 0, fmt.Errorf("encode PDU: %w", err)
	}
	return h, len(tp), nil
}
