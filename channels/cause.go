package channels

import "errors"

// Causes name why a delivery failed, the way the retry rules are keyed: each
// cause has its own delay and number of attempts before the next way to the
// recipient is tried (router.RetryRules). A failure without a cause is retried
// on the router's backoff, as before causes existed.
const (
	CauseBusy        = "busy"         // the line was busy (REASON 5, from an outcome context)
	CauseNoAnswer    = "no_answer"    // it rang until the call gave up (call file Status: Expired)
	CauseCongestion  = "congestion"   // the network could not place the call (REASON 8)
	CauseFaxTraining = "fax_training" // FAXSTATUS=FAILED, FAXERROR of training or negotiation
	CauseFailed      = "failed"       // Asterisk could not use the call (Status: Failed), or its fax/playback failed
	CauseSIP480      = "sip_480"      // the softphone has no registered contact (Temporarily Unavailable)
	CauseSIP404      = "sip_404"      // Asterisk knows no such SIP endpoint (Not Found)
	CauseAMIDown     = "ami_down"     // Asterisk's manager interface cannot be reached
)

// Causes lists every cause, in the order the configuration documents them.
var Causes = []string{CauseBusy, CauseNoAnswer, CauseCongestion, CauseFaxTraining, CauseFailed,
	CauseSIP480, CauseSIP404, CauseAMIDown}

type causeError struct {
	err   error
	cause string
}

func (e causeError) Error() string { return e.err.Error() }
func (e causeError) Unwrap() error { return e.err }

// Because tags err with the cause of the failure; it keeps whatever else err
// is marked with (Permanent, RetryAfter).
func Because(cause string, err error) error {
	if err == nil {
		return nil
	}
	return causeError{err: err, cause: cause}
}

// CauseOf returns the cause err was tagged with, or "".
func CauseOf(err error) string {
	var c causeError
	if errors.As(err, &c) {
		return c.cause
	}
	return ""
}
