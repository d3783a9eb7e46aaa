package main

import "smsrouter/router"

// RetryRuleConfig is one [retry.<cause>] table: how a failure of that cause
// is retried on the same way before the next way is tried (router.RetryRule).
// A key left out keeps the cause's default.
type RetryRuleConfig struct {
	Delay    *duration `toml:"delay"`
	Attempts *int      `toml:"attempts"`
}

// StatusReportsConfig is [reports]: which letters answer a sender's srr=1.
type StatusReportsConfig struct {
	Letters string `toml:"letters"` // default "SFVT"; "-" for none
}

// retryRules turns [retry.*] into the router's rules; causes the router does
// not know are passed on for it to refuse with their name.
func (c Config) retryRules() router.RetryRules {
	if len(c.Retry) == 0 {
		return nil
	}
	out := router.RetryRules{}
	for cause, rc := range c.Retry {
		r := router.DefaultRetryRules[cause]
		if rc.Delay != nil {
			r.Delay = rc.Delay.Duration
		}
		if rc.Attempts != nil {
			r.Attempts = *rc.Attempts
		}
		out[cause] = r
	}
	return out
}
