package smpp

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/linxGnu/gosmpp/data"
	"github.com/linxGnu/gosmpp/pdu"

	"smsrouter/mobile/smstext"
)

// Message is one text to submit.
type Message struct {
	// From and To: "+48600111222" is sent international (TON 1, NPI 1)
	// without the plus; an address with a letter is alphanumeric (TON 5,
	// NPI 0, at most 11 characters); anything else takes the Config's
	// TON/NPI.
	From, To string
	Text     string
	// ConcatRef fixes the reference of a concatenated text (1..255), so a
	// retry of the same message carries the same one; 0 lets the client
	// choose.
	ConcatRef int
	// Validity, when positive, asks the SMSC to give up after it (relative
	// validity_period).
	Validity time.Duration
	// Skip is how many leading parts the SMSC accepted already (an earlier
	// Submit of the same text with the same ConcatRef that failed later on):
	// they are not sent again, and their MessageIDs are "".
	Skip int
	// Sending, when set, is called just before a part is first sent, and
	// Accepted once the SMSC accepted it, so the caller can record progress
	// that a crash must not forget. Both run on Submit's goroutine.
	Sending  func(part, parts int)
	Accepted func(part, parts int, id string)
	// Ack, when set, sends Text as an SME acknowledgement of a message the
	// SMSC delivered (see ack.go): From and To are then ignored for Ack's
	// addresses, and the text goes in one part, cut to fit.
	Ack *Ack
}

// Result is what the SMSC said to a whole text.
type Result struct {
	MessageIDs []string // one per part, in part order
	Coding     smstext.Coding
}

// ErrNotBound is returned when no session was bound within BindWait: the
// SMSC certainly has nothing.
var ErrNotBound = errors.New("smpp: not bound to the SMSC")

// SubmitError is a Submit that did not get every part accepted.
type SubmitError struct {
	Part, Parts int      // the part that failed (1-based) and how many there are
	Accepted    []string // message ids of the parts accepted before it
	Status      Status   // the SMSC's answer, 0 when there was none
	Uncertain   bool     // the part went out and no answer came: it may have been accepted
	Temporary   bool     // worth retrying later; true whenever Uncertain
	Err         error
}

func (e *SubmitError) Error() string {
	var what string
	switch {
	case e.Uncertain:
		what = "uncertain"
	case e.Temporary:
		what = "temporary failure"
	default:
		what = "refused"
	}
	s := fmt.Sprintf("smpp: submit part %d of %d %s", e.Part, e.Parts, what)
	if e.Status != StatusOK {
		s += ": " + e.Status.String()
	}
	if e.Err != nil {
		s += ": " + e.Err.Error()
	}
	return s
}

func (e *SubmitError) Unwrap() error { return e.Err }

// IsUncertain reports a submit that may or may not have been accepted.
func IsUncertain(err error) bool {
	var se *SubmitError
	return errors.As(err, &se) && se.Uncertain
}

// IsTemporary reports an error worth retrying later (uncertain ones too:
// the caller decides whether a duplicate is worse than a loss).
func IsTemporary(err error) bool {
	var se *SubmitError
	if errors.As(err, &se) {
		return se.Temporary
	}
	return errors.Is(err, ErrNotBound)
}

// Submit sends m as one submit_sm per part (or one with message_payload
// when Config.UsePayload) and returns the message id of each. It waits for a
// window slot, the rate limit and the end of any throttling pause; a
// throttled part is retried until ctx ends. The error, always a
// *SubmitError, says which parts were accepted and whether the failed one is
// uncertain (see the package documentation).
func (c *Client) Submit(ctx context.Context, m Message) (Result, error) {
	if m.Ack != nil {
		return c.submitAck(ctx, m)
	}
	ref := uint8(m.ConcatRef)
	if m.ConcatRef <= 0 || m.ConcatRef > 255 {
		ref = uint8(c.refs.Add(1))
	}
	from, err := c.address(m.From, c.cfg.SourceTON, c.cfg.SourceNPI)
	if err != nil {
		return Result{}, &SubmitError{Part: 1, Parts: 1, Err: fmt.Errorf("source: %w", err)}
	}
	to, err := c.address(m.To, c.cfg.DestTON, c.cfg.DestNPI)
	if err != nil {
		return Result{}, &SubmitError{Part: 1, Parts: 1, Err: fmt.Errorf("destination: %w", err)}
	}
	var (
		coding smstext.Coding
		bodies [][]byte
		udhi   bool
	)
	if c.cfg.UsePayload {
		var whole []byte
		coding, whole, err = smstext.Encode(m.Text)
		bodies = [][]byte{whole}
	} else {
		var parts []smstext.Part
		coding, parts, err = smstext.Split(m.Text, ref, c.cfg.MaxParts)
		for _, p := range parts {
			bodies = append(bodies, p.Bytes())
		}
		udhi = len(parts) > 1
	}
	if err != nil {
		return Result{}, &SubmitError{Part: 1, Parts: 1, Err: err}
	}
	res := Result{Coding: coding}
	for i, body := range bodies {
		if i < m.Skip {
			res.MessageIDs = append(res.MessageIDs, "")
			continue
		}
		sm := c.submitPDU(from, to, coding, body, udhi, m.Validity)
		if m.Sending != nil {
			m.Sending(i+1, len(bodies))
		}
		id, err := c.submitPart(ctx, sm)
		if err != nil {
			err.Part, err.Parts, err.Accepted = i+1, len(bodies), res.MessageIDs
			return res, err
		}
		res.MessageIDs = append(res.MessageIDs, id)
		if m.Accepted != nil {
			m.Accepted(i+1, len(bodies), id)
		}
	}
	return res, nil
}

// submitAck sends an acknowledgement: one submit_sm, with the same
// progress callbacks and errors as any text.
func (c *Client) submitAck(ctx context.Context, m Message) (Result, error) {
	sm, coding, err := c.ackPDU(m.Ack, m.Text)
	if err != nil {
		return Result{}, &SubmitError{Part: 1, Parts: 1, Err: err}
	}
	res := Result{Coding: coding}
	if m.Skip >= 1 {
		return Result{MessageIDs: []string{""}, Coding: coding}, nil
	}
	if m.Validity > 0 {
		sm.ValidityPeriod = relativeTime(m.Validity)
	}
	if m.Sending != nil {
		m.Sending(1, 1)
	}
	id, serr := c.submitPart(ctx, sm)
	if serr != nil {
		serr.Part, serr.Parts = 1, 1
		return res, serr
	}
	res.MessageIDs = []string{id}
	if m.Accepted != nil {
		m.Accepted(1, 1, id)
	}
	return res, nil
}

func (c *Client) submitPDU(from, to pdu.Address, coding smstext.Coding, body []byte, udhi bool, validity time.Duration) *pdu.SubmitSM {
	sm := pdu.NewSubmitSM().(*pdu.SubmitSM)
	sm.ServiceType = c.cfg.ServiceType
	sm.SourceAddr, sm.DestAddr = from, to
	if udhi {
		sm.EsmClass |= esmUDHI
	}
	if c.cfg.RegisteredDelivery {
		sm.RegisteredDelivery = 1
	}
	if validity > 0 {
		sm.ValidityPeriod = relativeTime(validity)
	}
	enc := data.Encoding(data.GSM7BIT)
	if coding == smstext.UCS2 {
		enc = data.UCS2
	}
	if c.cfg.UsePayload {
		sm.Message.SetMessageDataWithEncoding(nil, enc)
		sm.RegisterOptionalParam(pdu.Field{Tag: tagMessagePayload, Data: body})
	} else {
		// Parts are at most 140 octets, within short_message's 254.
		sm.Message.SetMessageDataWithEncoding(body, enc)
	}
	return sm
}

// submitPart sends one submit_sm and waits for its answer, retrying while
// the SMSC throttles.
func (c *Client) submitPart(ctx context.Context, sm *pdu.SubmitSM) (string, *SubmitError) {
	var lastStatus Status
	for {
		if err := c.pace(ctx); err != nil {
			return "", &SubmitError{Status: lastStatus, Temporary: true, Err: fmt.Errorf("%w (not sent)", err)}
		}
		k, err := c.session(ctx)
		if err != nil {
			<-c.window
			return "", &SubmitError{Status: lastStatus, Temporary: true, Err: err}
		}
		frame, err := k.request(ctx, sm, c.cfg.ResponseTimeout)
		<-c.window
		if err != nil {
			return "", &SubmitError{Uncertain: errors.Is(err, errUncertain), Temporary: true, Err: err}
		}
		h := header(frame)
		switch {
		case h.status == StatusOK && h.id == cmdSubmitSM|respBit:
			c.unthrottle()
			return cstringBody(frame), nil
		case h.status == StatusOK:
			// A generic_nack saying OK is not an acceptance.
			return "", &SubmitError{Temporary: true, Err: fmt.Errorf("answered with command %#x", h.id)}
		case h.status.Throttling():
			lastStatus = h.status
			pause := c.throttle()
			k.log.Info("smpp throttled", "status", h.status.String(), "pause", pause)
			continue
		case h.status.Permanent():
			return "", &SubmitError{Status: h.status}
		default:
			return "", &SubmitError{Status: h.status, Temporary: true}
		}
	}
}

// pace waits for the end of any throttling pause, the rate limit and a
// window slot, which the caller releases.
func (c *Client) pace(ctx context.Context) error {
	for {
		c.mu.Lock()
		wait := time.Until(c.thrUntil)
		c.mu.Unlock()
		if wait <= 0 {
			break
		}
		if !sleep(ctx, wait) {
			return ctx.Err()
		}
	}
	if c.limiter != nil {
		if err := c.limiter.Wait(ctx); err != nil {
			return err
		}
	}
	select {
	case c.window <- struct{}{}:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// throttle starts or lengthens the pause every submit observes. Answers to
// submits already in flight when the pause began do not lengthen it again.
func (c *Client) throttle() time.Duration {
	c.mu.Lock()
	defer c.mu.Unlock()
	now := time.Now()
	if now.Before(c.thrUntil) {
		return time.Until(c.thrUntil)
	}
	c.thrStep = min(max(2*c.thrStep, c.cfg.ThrottleMin), c.cfg.ThrottleMax)
	c.thrUntil = now.Add(c.thrStep)
	return c.thrStep
}

func (c *Client) unthrottle() {
	c.mu.Lock()
	if !c.thrUntil.IsZero() && time.Now().After(c.thrUntil) {
		c.thrStep, c.thrUntil = 0, time.Time{}
	}
	c.mu.Unlock()
}

func (c *Client) address(s string, ton, npi byte) (pdu.Address, error) {
	switch {
	case s == "":
		return pdu.NewAddressWithTonNpiAddr(ton, npi, "")
	case strings.HasPrefix(s, "+") && digits(s[1:]):
		return pdu.NewAddressWithTonNpiAddr(1, 1, s[1:])
	case digits(s):
		return pdu.NewAddressWithTonNpiAddr(ton, npi, s)
	case len(s) <= 11 && printable(s):
		return pdu.NewAddressWithTonNpiAddr(5, 0, s)
	}
	return pdu.Address{}, fmt.Errorf("address %q is neither a number nor an alphanumeric sender of at most 11 characters", s)
}

// Numeric reports whether s is a number an address can carry: up to 20
// digits, after an optional leading +.
func Numeric(s string) bool { return digits(strings.TrimPrefix(s, "+")) }

func digits(s string) bool {
	if s == "" || len(s) > 20 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

func printable(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < 0x20 || s[i] > 0x7e {
			return false
		}
	}
	return true
}

// relativeTime is SMPP's relative time format YYMMDDhhmmss000R (7.1.1),
// months and years left at zero.
func relativeTime(d time.Duration) string {
	s := int64(d / time.Second)
	days, s := s/86400, s%86400
	if days > 99 {
		days = 99
	}
	return fmt.Sprintf("0000%02d%02d%02d%02d000R", days, s/3600, s/60%60, s%60)
}
