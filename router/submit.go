package router

import (
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"time"
	"unicode/utf8"

	"smsrouter/asteriskconf/smsq"
	"smsrouter/channels"
)

// MaxSubmitText bounds a message queued by Submit: 255 concatenated parts of 153
// GSM characters is the most any SMS route can carry.
const MaxSubmitText = 255 * 153

// Submit queues a message as if an Asterisk SMS had been received from `from` for
// `to` (smsrouter send, FastAGI postsms, the HTTP API). It returns the id the
// journal will know it by.
func (r *Router) Submit(from, to, text string) (string, error) {
	return SubmitTo(r.l.inbox, from, to, text, r.now())
}

// SubmitTo writes the message into an inbox folder (InboxDir): under a dot name the
// router skips, then renamed into place, so no reader ever sees half of it.
func SubmitTo(inbox, from, to, text string, now time.Time) (string, error) {
	return SubmitMessage(inbox, Submission{From: from, To: to, Text: text}, now)
}

// Submission is a message to queue with SubmitMessage: what SubmitTo takes, and
// what an ingress that speaks a richer protocol (Kannel's sendsms) may add.
type Submission struct {
	From, To, Text string
	// Validity, when not 0, is how long the router may keep trying, from now
	// (the message's vp, in whole minutes, rounded up). 0 means the configured
	// default_validity.
	Validity time.Duration
	// UDH, when not nil, is a concatenation header's information element (IEI 00
	// or 08, without the UDHL octet): the message is one part of a longer one,
	// and the router holds it until its siblings arrive and joins them, exactly
	// as it does with parts from a phone. ConcatUDH checks one.
	UDH []byte
	// Accepted, when set, is called with the message's id before its file is
	// queued; an error stops the submission. It is where a caller makes
	// something about the message durable first (a delivery-report request):
	// once the file is in place the router may finish the message at once.
	Accepted func(id string) error
}

// ErrNotConcat is returned by ConcatUDH for a header that is not exactly one
// concatenation element.
var ErrNotConcat = errors.New("not a concatenation header")

// ConcatUDH checks a user data header given with its UDHL octet (as Kannel's
// udh= carries it) and returns its information elements for Submission.UDH. Only
// one concatenation element (8- or 16-bit reference) is accepted: any other
// element (ports, indications, text formatting) asks for something the router
// does not carry, and is refused rather than silently dropped.
func ConcatUDH(udh []byte) ([]byte, error) {
	if len(udh) == 0 {
		return nil, fmt.Errorf("%w: empty", ErrNotConcat)
	}
	if int(udh[0]) != len(udh)-1 {
		return nil, fmt.Errorf("%w: its length octet says %d bytes follow, but %d do", ErrNotConcat, udh[0], len(udh)-1)
	}
	ies := udh[1:]
	var concat []byte
	for rest := ies; len(rest) > 0; {
		if len(rest) < 2 || len(rest) < 2+int(rest[1]) {
			return nil, fmt.Errorf("%w: an element runs past the end", ErrNotConcat)
		}
		iei, n := rest[0], int(rest[1])
		switch {
		case iei == 0x00 && n == 3, iei == 0x08 && n == 4:
			if concat != nil {
				return nil, fmt.Errorf("%w: two concatenation elements", ErrNotConcat)
			}
			concat = rest[:2+n]
		default:
			return nil, fmt.Errorf("%w: element %02X (%d bytes) is not supported; only concatenation (00 or 08) is", ErrNotConcat, iei, n)
		}
		rest = rest[2+n:]
	}
	if concat == nil {
		return nil, fmt.Errorf("%w: no concatenation element", ErrNotConcat)
	}
	m := smsq.Message{UDH: concat}
	if _, total, _, ok := m.Concat(); !ok || total < 2 {
		return nil, fmt.Errorf("%w: part number must be 1..total and total at least 2", ErrNotConcat)
	}
	return append([]byte(nil), concat...), nil
}

// SubmitMessage queues s like SubmitTo and returns its id.
func SubmitMessage(inbox string, s Submission, now time.Time) (string, error) {
	if err := CheckNumber("sender", s.From); err != nil {
		return "", err
	}
	if err := CheckNumber("recipient", s.To); err != nil {
		return "", err
	}
	if !utf8.ValidString(s.Text) {
		return "", fmt.Errorf("text is not valid UTF-8")
	}
	if n := utf8.RuneCountInString(s.Text); n > MaxSubmitText {
		return "", fmt.Errorf("text has %d characters; at most %d fit in one concatenated SMS", n, MaxSubmitText)
	}
	if s.Validity < 0 {
		return "", fmt.Errorf("validity %v is negative", s.Validity)
	}
	vp := 0
	if s.Validity > 0 {
		minutes := math.Ceil(s.Validity.Minutes())
		if minutes > math.MaxUint32 {
			return "", fmt.Errorf("validity %v is too long", s.Validity)
		}
		vp = int(minutes)
	}
	if s.UDH != nil {
		if _, err := ConcatUDH(append([]byte{byte(len(s.UDH))}, s.UDH...)); err != nil {
			return "", err
		}
	}
	id := channels.NewID(now)
	data, err := (&smsq.Message{OA: s.From, DA: s.To, SCTS: now, DCS: -1, MR: -1, VP: vp,
		UDH: s.UDH, HasUDH: s.UDH != nil, Text: s.Text}).Marshal()
	if err != nil {
		return "", fmt.Errorf("queue message: %w", err)
	}
	if s.Accepted != nil {
		if err := s.Accepted(id); err != nil {
			return "", err
		}
	}
	tmp := filepath.Join(inbox, ".smsrouter-tmp-"+id)
	if err := writeNew(tmp, data, 0o640, false); err != nil {
		return "", fmt.Errorf("queue message: %w", err)
	}
	if err := renameNoReplace(tmp, filepath.Join(inbox, channels.SpoolName(s.To, id, 0))); err != nil {
		os.Remove(tmp)
		return "", fmt.Errorf("queue message: %w", err)
	}
	return id, nil
}
