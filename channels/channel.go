// Package channels defines the one small interface every delivery channel (sms, fax,
// voice, command, sip) implements, and the message a channel is asked to deliver.
//
// A channel that produces files does not write them where Asterisk looks: it returns
// them as Artefacts. The router stages them, records the message's fate in the
// journal, and only then renames them into place, so a crash can neither lose a
// delivery nor repeat one.
package channels

import (
	"context"
	"errors"
	"os"
	"time"

	"smsrouter/internal/quiet"
)

// Message is one message as a channel sees it.
type Message struct {
	ID        string
	From, To  string    // sender and recipient numbers, already validated
	Text      string    // valid UTF-8
	Received  time.Time // when smsrouter took it
	Sent      time.Time // the SMS Centre timestamp (scts) it arrived with; zero if none
	Letter    byte      // the recipient's service letter
	Extension string    // the recipient's Extension from the directory, e.g. PJSIP/1000
	Attempt   int       // 1 for the first try
	// Validity is when the message expires; channels use it to bound their own retries.
	Validity time.Time
	// Depth is 0 for a message from a person, n+1 for one smsrouter generated in
	// answer to a message of depth n (notices, command replies, forwards).
	Depth int
	// Acknowledges is set on a status report that answers a mobile network's
	// request for an acknowledgement (an SMPP deliver_sm's registered_delivery):
	// the link's own record of that request (channels/link.AckRequest, JSON),
	// opaque to the router. The link sends the text as that acknowledgement.
	Acknowledges []byte
	// Quiet is the recipient's quiet window in QuietZone (the zero Window:
	// none). The router holds a delivery that would ring in it; a channel that
	// places a call later on its own (an S follow-up) holds that call the same way.
	Quiet     quiet.Window
	QuietZone *time.Location
}

// Artefact is a file the channel wants placed in Dir under Name.
type Artefact struct {
	Kind      string // what it is, for the journal: "mttx", "call", "fax", "wav", "notice"…
	Dir       string // target directory, on the same filesystem as the router's work dir
	Name      string // file name, unique in Dir
	Data      []byte
	Mode      os.FileMode // 0 means 0644
	NotBefore time.Time   // when set and in the future, the file's mtime (call files start then)
}

// Result is what a delivery produced.
type Result struct {
	Artefacts []Artefact
	// Detail is journaled as JSON with the message: what was done, for the admin.
	Detail map[string]any
	// AfterPublish, when set, runs once the artefacts are in place. Their
	// folders are being synced meanwhile: a step that needs them on the disk
	// first syncs them itself (as the S channel does before placing a call).
	AfterPublish func(ctx context.Context) error
	// Refs are the names another system gave the delivery (an SMSC's message id
	// per part), recorded with the message's fate so that a later report from
	// that system (a delivery receipt) finds the message.
	Refs []Ref
}

// Ref is one name another system gave (a part of) a delivered message.
type Ref struct {
	System string    // who named it, e.g. "link:gsm"
	Ref    string    // the name, e.g. the SMSC's message id
	Part   int       // which part, 1-based
	Parts  int       // of how many
	At     time.Time // when the system took it
}

// Channel delivers messages for one service letter.
type Channel interface {
	// Deliver prepares (or performs) the delivery of m. An error is temporary (the
	// message is retried with backoff) unless it is marked Permanent.
	Deliver(ctx context.Context, m Message) (Result, error)
}

// BatchStarter is implemented by channels that remember what they learn from the
// spool. The router calls StartBatch before the first Deliver of every batch, runs
// AfterPublish only once all of the batch's artefacts are published, and does not
// start the next batch before the last AfterPublish of this one has returned.
type BatchStarter interface {
	StartBatch()
}

// SpoolWatcher is implemented by channels that keep what they know of the spool
// current from filesystem events. A long-running process (serve) runs Watch until
// it stops; a one-shot drain need not, the channel stays correct without it.
type SpoolWatcher interface {
	Watch(ctx context.Context) error
}

type permanentError struct {
	err    error
	public string
}

func (e permanentError) Error() string { return e.err.Error() }
func (e permanentError) Unwrap() error { return e.err }

type retryAfter struct {
	err error
	d   time.Duration
}

func (e retryAfter) Error() string { return e.err.Error() }
func (e retryAfter) Unwrap() error { return e.err }

// RetryAfter marks a temporary failure that is worth trying again after d
// rather than at the message's next backoff slot: the delivery belongs to
// another process (a mobile link runs in serve, not in a one-shot drain).
func RetryAfter(d time.Duration, err error) error {
	if err == nil {
		return nil
	}
	return retryAfter{err: err, d: d}
}

// RetryDelay reports the delay a RetryAfter error asks for.
func RetryDelay(err error) (time.Duration, bool) {
	var r retryAfter
	if errors.As(err, &r) {
		return r.d, true
	}
	return 0, false
}

// Permanent marks err as a definite failure: retrying cannot help, the sender is told.
// The sender's notice says only that delivery failed; use PermanentBecause to tell
// them why.
func Permanent(err error) error {
	if err == nil {
		return nil
	}
	return permanentError{err: err}
}

// PermanentBecause is Permanent with the sentence the sender's notice gives as
// the reason ("The message is too long."). err goes to the journal and the log,
// public to a phone: it must be a whole sentence written for a person, never an
// error's text, which may hold Go, SQL or Asterisk internals.
func PermanentBecause(public string, err error) error {
	if err == nil {
		return nil
	}
	return permanentError{err: err, public: public}
}

// ErrNoService is wrapped by a Deliver error that means "this channel offers
// no service at this number" (a C number that no [command] rule serves): a
// definite answer, which the router bounces with the no_service notice, the
// same as a letter without a channel.
var ErrNoService = errors.New("no service at this number")

// PublicNotSetUp is what a sender is told when the recipient's directory entry
// cannot be used (no dialable Extension, an endpoint Asterisk does not know).
const PublicNotSetUp = "The number is not set up to receive messages."

// IsPermanent reports whether err was marked Permanent.
func IsPermanent(err error) bool {
	var p permanentError
	return errors.As(err, &p)
}

// PublicReason is the sentence a PermanentBecause error carries for the sender,
// or "" when it carries none.
func PublicReason(err error) string {
	var p permanentError
	if errors.As(err, &p) {
		return p.public
	}
	return ""
}

// Janitor is implemented by channels that leave files behind (fax pages, voice
// recordings) and remove them once they are older than their configured age. The
// router calls Cleanup every few minutes.
type Janitor interface {
	Cleanup(ctx context.Context, now time.Time) error
}
