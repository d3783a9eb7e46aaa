package router

import (
	"fmt"
	"strings"
	"time"

	"smsrouter/channels"
)

// RetryRule is how a failure of one cause is retried on the same way: after
// Delay (0: the router's backoff), at most Attempts more times. When they are
// used up, the recipient's next way is tried; on the last way, a failure found
// while delivering keeps being retried until the message expires (as a held
// SIP message always was), and a call that failed ends with the sender's
// notice.
type RetryRule struct {
	Delay    time.Duration
	Attempts int
}

// RetryRules are the rules by cause (channels.Cause*).
type RetryRules map[string]RetryRule

// MaxRuleAttempts bounds a rule's attempts (the claim name counts them in two digits).
const MaxRuleAttempts = 50

// DefaultRetryRules are HylaFAX-like: a busy line is tried again soon, an
// unanswered one later, a fax that failed training at a lower rate; what
// cannot get better by waiting (a call file Asterisk refused, an unknown SIP
// endpoint) goes to the next way at once. A softphone without a contact (480)
// and a manager interface that is down are retried on the router's backoff,
// but a recipient with another way gets it without waiting.
var DefaultRetryRules = RetryRules{
	channels.CauseBusy:        {Delay: 3 * time.Minute, Attempts: 5},
	channels.CauseNoAnswer:    {Delay: 15 * time.Minute, Attempts: 3},
	channels.CauseCongestion:  {Delay: 5 * time.Minute, Attempts: 3},
	channels.CauseFaxTraining: {Delay: 30 * time.Minute, Attempts: 2},
	channels.CauseFailed:      {},
	channels.CauseSIP480:      {},
	channels.CauseSIP404:      {},
	channels.CauseAMIDown:     {Attempts: 3},
}

// fillRetry gives every cause without a configured rule its default, and
// refuses causes and values that cannot work.
func (c *Config) fillRetry() error {
	rules := RetryRules{}
	for k, v := range DefaultRetryRules {
		rules[k] = v
	}
	for k, v := range c.Retry {
		if _, ok := DefaultRetryRules[k]; !ok {
			return fmt.Errorf("retry rule %q: no such cause (want one of %s)", k, strings.Join(channels.Causes, ", "))
		}
		if v.Delay < 0 || v.Attempts < 0 || v.Attempts > MaxRuleAttempts {
			return fmt.Errorf("retry rule %s: delay must be ≥ 0 and attempts between 0 and %d", k, MaxRuleAttempts)
		}
		rules[k] = v
	}
	c.Retry = rules
	return nil
}

// Reports says which deliveries answer a sender's request for a status report
// (app_sms srr=1): by the letter of the way that delivered or failed last.
type Reports struct {
	Letters string // e.g. "SFVT"; default all of WayLetters; "-" for none
}

// DefaultReportLetters are the letters reported on when nothing is configured.
const DefaultReportLetters = WayLetters

func (c *Config) fillReports() error {
	switch c.Reports.Letters {
	case "":
		c.Reports.Letters = DefaultReportLetters
	case "-":
		return nil
	}
	for _, l := range c.Reports.Letters {
		if !strings.ContainsRune(WayLetters, l) {
			return fmt.Errorf("reports letters %q: %q is not one of %s", c.Reports.Letters, l, WayLetters)
		}
	}
	return nil
}

func (c *Config) reportsOn(letter byte) bool {
	return c.Reports.Letters != "-" && letter != 0 && strings.IndexByte(c.Reports.Letters, letter) >= 0
}
