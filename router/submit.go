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

// seenDir holds one entry per message an ingress queued with SubmitOnce, named
// by the ingress's key for it. Each is a hard link to the queued spool file as
// it was written, which is what makes "queued" and "seen" one step.
func seenDir(work string) string { return filepath.Join(work, "seen") }

// SubmitOnce queues msg (a spool file's content, for recipient to) unless a
// message with the same key was queued before, and reports which. It is how a
// mobile link's ingress stores what the network hands it before telling the
// network so: after a crash between the two, the network hands the message
// over again, and the key (sender, time stamp, reference, text…) says it is
// already queued.
//
// Queueing and remembering the key are one atomic step: the file is written
// under a dot name, hard-linked as the key (which fails if the key exists),
// and only then renamed into the inbox. A crash after the link and before the
// rename leaves the dot file, which the next SubmitOnce with the key finds
// and renames in: nothing lost, nothing queued twice.
func SubmitOnce(work, key, to string, msg []byte, sync bool, now time.Time) (id string, dup bool, err error) {
	return SubmitOnceWith(work, key, to, msg, sync, now, nil)
}

// SubmitOnceWith is SubmitOnce that calls accepted with the message's id
// before the message appears in the inbox (to write a file the router reads
// with it, WriteAckRequest); its error leaves the message unqueued, to be
// tried again with the same key.
func SubmitOnceWith(work, key, to string, msg []byte, sync bool, now time.Time, accepted func(id string) error) (id string, dup bool, err error) {
	if !validKey(key) {
		return "", false, fmt.Errorf("submit once: key %q is not a file name", key)
	}
	if err := CheckNumber("recipient", to); err != nil {
		return "", false, err
	}
	inbox, seen := InboxDir(work), seenDir(work)
	if err := os.MkdirAll(seen, 0o770); err != nil {
		return "", false, fmt.Errorf("submit once: %w", err)
	}
	if err := os.MkdirAll(inbox, 0o770); err != nil {
		return "", false, fmt.Errorf("submit once: %w", err)
	}
	marker := filepath.Join(seen, key)
	tmp := filepath.Join(inbox, ".once-"+key)
	place := func() (string, error) {
		id := NewID(now)
		if accepted != nil {
			if err := accepted(id); err != nil {
				return "", fmt.Errorf("submit once: %w", err)
			}
		}
		if err := renameNoReplace(tmp, filepath.Join(inbox, channels.SpoolName(to, id, 0))); err != nil {
			return "", fmt.Errorf("submit once: %w", err)
		}
		if sync {
			if err := syncAll(nil, inbox, seen); err != nil {
				return "", fmt.Errorf("submit once: %w", err)
			}
		}
		return id, nil
	}
	for range 3 {
		if mi, err := os.Lstat(marker); err == nil {
			if ti, err := os.Lstat(tmp); err == nil && os.SameFile(mi, ti) {
				// Linked but never renamed in: finish what a crash interrupted.
				id, err := place()
				return id, false, err
			}
			return "", true, nil
		}
		os.Remove(tmp) // written before a crash but never linked: never announced
		if err := writeNew(tmp, msg, 0o640, sync); err != nil {
			return "", false, fmt.Errorf("submit once: %w", err)
		}
		if err := os.Link(tmp, marker); err != nil {
			os.Remove(tmp)
			if errors.Is(err, os.ErrExist) {
				continue // a twin got there first: look again
			}
			return "", false, fmt.Errorf("submit once: %w", err)
		}
		id, err := place()
		return id, false, err
	}
	return "", true, nil
}

// ForgetSeen drops a key SubmitOnce remembered: for a network that never hands
// over a message again once told it is stored (an SMSC after deliver_sm_resp),
// so that the same text sent again later is a new message.
func ForgetSeen(work, key string) {
	if validKey(key) {
		os.Remove(filepath.Join(seenDir(work), key))
	}
}

// CleanSeen forgets keys remembered before cut.
func CleanSeen(work string, cut time.Time) error {
	entries, err := os.ReadDir(seenDir(work))
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("clean seen: %w", err)
	}
	for _, e := range entries {
		if info, err := e.Info(); err == nil && info.ModTime().Before(cut) {
			os.Remove(filepath.Join(seenDir(work), e.Name()))
		}
	}
	return nil
}

func validKey(k string) bool {
	if k == "" || len(k) > 128 {
		return false
	}
	for i := 0; i < len(k); i++ {
		c := k[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

// Quarantine puts data an ingress cannot queue (an unreadable PDU) into the
// rejected folder with the reason beside it, like a malformed spool file, and
// returns where.
func Quarantine(work, name string, data []byte, reason string) (string, error) {
	dir := filepath.Join(work, "rejected")
	if err := os.MkdirAll(dir, 0o770); err != nil {
		return "", fmt.Errorf("quarantine: %w", err)
	}
	base := safeName(name)
	dst := filepath.Join(dir, base)
	for i := 1; ; i++ {
		if _, err := os.Lstat(dst); errors.Is(err, os.ErrNotExist) {
			break
		}
		dst = filepath.Join(dir, fmt.Sprintf("%s~%d", base, i))
	}
	if err := os.WriteFile(dst+".reason", []byte(reason+"\n"), 0o640); err != nil {
		return "", fmt.Errorf("quarantine: %w", err)
	}
	if err := writeNew(dst, data, 0o640, false); err != nil {
		return "", fmt.Errorf("quarantine: %w", err)
	}
	return dst, nil
}
