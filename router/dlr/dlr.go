// Package dlr delivers delivery reports: it tells whoever asked, when a message was
// submitted, what became of it. Kannel's dlr-url callbacks (ingress/httpapi) are the
// first kind; SMS status reports to a phone that asked for one (srr) can be another,
// with a Sender of their own.
//
// A request is stored in the database (smsrouter_dlr) before its message is queued
// (router.Submission.Accepted), so a crash cannot lose it. The Dispatcher, run by
// serve, watches the journal for the requests' messages: whenever a message's row
// changes it works out which reports are now owed (Due), hands each to its kind's
// Sender, and records every outcome. Reports are sent in order (accepted, buffered,
// then the final one), each at most once: its bit is recorded as soon as the Sender
// succeeds, so a restart neither loses nor repeats it, and a request is leased to
// one process at a time, so two serve processes never both send it. A failing Sender
// is retried with backoff until Config.GiveUp after its first failure; then the
// request is closed with the reason.
//
// The report types are Kannel's dlr-mask bits, and the states map onto them so:
//
//	the message is in the spool (the SMS Centre accepted it)   8  Accepted ("delivered to SMSC")
//	deferred: it waits for a retry                              4  Buffered ("queued on SMSC"), once
//	delivered: handed to its channel                            1  Delivered
//	bounced, expired, dropped: it will never be delivered       2  Failed
//	rejected: malformed, quarantined                           16  Rejected ("SMSC reject") if the mask
//	                                                               asks for 16, else 2 Failed
//
// A message whose call is archived (Archive: yes) is delivered (1) once the call
// was answered, failed (2) once it ended Expired or Failed for good; while a
// failed call is retried, the newest retry's row decides (smsrouter_retry).
// A message delivered on its first try owes no 4. Held (a part waiting for its
// siblings) owes nothing of its own: the joined message's fate is each part's.
package dlr

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"smsrouter/router"
)

// Type is a kind of report, one bit of a mask (Kannel's dlr-mask values).
type Type int

// The report types.
const (
	Delivered Type = 1  // final: the message was handed to its channel
	Failed    Type = 2  // final: it will never be delivered (bounced, expired, dropped)
	Buffered  Type = 4  // it waits in the spool for a retry
	Accepted  Type = 8  // it is in the spool: the SMS Centre has it
	Rejected  Type = 16 // final: refused as malformed
	// AllTypes is every bit a mask may hold; others are ignored.
	AllTypes = Delivered | Failed | Buffered | Accepted | Rejected
)

var typeNames = map[Type]string{Delivered: "delivered", Failed: "failed", Buffered: "buffered", Accepted: "accepted", Rejected: "rejected"}

func (t Type) String() string {
	if n, ok := typeNames[t]; ok {
		return n
	}
	var parts []string
	for _, b := range order {
		if t&b != 0 {
			parts = append(parts, typeNames[b])
		}
	}
	if len(parts) == 0 {
		return "none"
	}
	return strings.Join(parts, "|")
}

// Types lists the single types a mask holds, in the order they are sent.
func (t Type) Types() []Type {
	var out []Type
	for _, b := range order {
		if t&b != 0 {
			out = append(out, b)
		}
	}
	return out
}

// order is the order a message's reports are sent in: the life of a message.
var order = []Type{Accepted, Buffered, Delivered, Failed, Rejected}

// finalTypes are the types that end a message's reports.
const finalTypes = Delivered | Failed | Rejected

// FinalType is the report a final state owes under mask (see the package doc).
func FinalType(st router.State, mask Type) Type {
	switch st {
	case router.StateDelivered:
		return Delivered
	case router.StateRejected:
		if mask&Rejected != 0 {
			return Rejected
		}
		return Failed
	}
	return Failed
}

// Due returns the reports a message owes now, in the order to send them: those
// mask asks for, given its journal record (nil while the journal has none: the
// message is in the spool, not yet taken), less those already sent. done says
// that nothing more can ever be owed.
func Due(mask, sent Type, rec *router.Record) (due []Type, done bool) {
	mask &= AllTypes
	owed := Accepted
	final := false
	if rec != nil {
		if rec.State == router.StateDeferred || rec.Attempts > 0 {
			owed |= Buffered
		}
		switch pending, failed := router.CallFate(*rec); {
		case pending: // the call's outcome decides, once Asterisk has written it
		case failed:
			owed |= Failed
			final = true
		case rec.State.Final():
			owed |= FinalType(rec.State, mask)
			final = true
		}
	}
	for _, t := range order {
		if owed&mask&t != 0 && sent&t == 0 {
			due = append(due, t)
		}
	}
	// Nothing more can come when the message is final, or when the mask asks for
	// nothing beyond what was owed and sent.
	future := mask &^ sent &^ owed & (Buffered | finalTypes)
	done = len(due) == 0 && (final || future == 0)
	return due, done
}

// Request is a delivery report asked for when a message was submitted.
type Request struct {
	ID     string // the message's id, as the submitter got it back
	Kind   string // which Sender delivers it ("kannel": Kannel's dlr-url)
	Target string // where to: a URL for "kannel"
	Mask   Type
	// Info is what the Sender needs besides the journal (for Kannel: from, to,
	// the sendsms user, coding, charset, udh), kept as the request made it.
	Info map[string]string
}

// Report is one report to send.
type Report struct {
	Request
	Type Type
	// Record is the message's journal row when the report is about it (nil for
	// an Accepted report sent before the router took the message). For a part
	// of a joined concatenation it is the joined message's row.
	Record *router.Record
	At     time.Time // when the report is made
}

// Sender delivers reports of one kind. An error means "not delivered": the
// Dispatcher retries it later, unless it is Permanent.
type Sender interface {
	Send(ctx context.Context, r Report) error
}

// permanent marks an error that retrying cannot fix.
type permanent struct{ err error }

func (p permanent) Error() string { return p.err.Error() }
func (p permanent) Unwrap() error { return p.err }

// Permanent marks err as one that retrying cannot fix (a URL the Sender will
// never call): the request is closed at once.
func Permanent(err error) error { return permanent{err} }

// IsPermanent reports whether err was marked Permanent.
func IsPermanent(err error) bool {
	var p permanent
	return errors.As(err, &p)
}

// ParseMask reads a dlr-mask: a number from 0 to 31 (Kannel's bits; 32, its
// "intermediate" reports, are not produced here and are refused rather than
// silently ignored).
func ParseMask(s string) (Type, error) {
	var v int
	if _, err := fmt.Sscanf(s, "%d", &v); err != nil || fmt.Sprint(v) != strings.TrimSpace(s) {
		return 0, fmt.Errorf("dlr-mask %q is not a number", s)
	}
	if v < 0 || v > int(AllTypes) {
		return 0, fmt.Errorf("dlr-mask %d: the bits are 1 delivered, 2 failed, 4 buffered, 8 accepted, 16 rejected (at most 31)", v)
	}
	return Type(v), nil
}
