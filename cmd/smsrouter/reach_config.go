package main

// [quiet], [guards] and [selfservice]: when deliveries that ring a phone wait,
// the duplicate and loop guards, and changing one's own entry by SMS.

import (
	"errors"
	"fmt"
	"time"

	"smsrouter/internal/quiet"
	"smsrouter/router"
)

// QuietConfig is [quiet]: the default quiet hours of numbers without their own.
type QuietConfig struct {
	Default  string `toml:"default"`   // "22:00-07:00"; "" = none
	TimeZone string `toml:"time_zone"` // IANA name; "" = timezone
}

// GuardsConfig is [guards].
type GuardsConfig struct {
	DuplicateWindow duration `toml:"duplicate_window"` // default 10m
	Duplicates      *bool    `toml:"duplicates"`       // default true
	PairLimit       int      `toml:"pair_limit"`       // default 10; -1 = no limit
	PairWindow      duration `toml:"pair_window"`      // default 10m
}

// SelfServiceConfig is [selfservice].
type SelfServiceConfig struct {
	Enabled       bool     `toml:"enabled"`
	Number        string   `toml:"number"`
	RequirePIN    bool     `toml:"require_pin"`
	PINTries      int      `toml:"pin_tries"`        // default 5; -1 = no lockout
	PINWindow     duration `toml:"pin_window"`       // default 15m
	PINLockout    duration `toml:"pin_lockout"`      // default 1h
	FirstPINBySMS bool     `toml:"first_pin_by_sms"` // a number without a PIN may set one by SMS
}

// The defaults the example file shows.
const (
	defaultGuardWindow       = 10 * time.Minute
	defaultPairLimit         = 10
	defaultSelfServiceNumber = "7999"
)

// reachSettings sets the router's quiet hours, guards and self-service from
// the file, checked: a window that does not parse, an unknown zone or a bad
// self-service number is a configuration error, not a silent default.
func (c Config) reachSettings(rc *router.Config, loc *time.Location) []error {
	var errs []error
	w, err := quiet.Parse(c.Quiet.Default)
	if err != nil {
		errs = append(errs, fmt.Errorf("[quiet] default: %w", err))
	}
	zone := loc
	if c.Quiet.TimeZone != "" {
		if zone, err = time.LoadLocation(c.Quiet.TimeZone); err != nil {
			errs = append(errs, fmt.Errorf("[quiet] time_zone %q: not a known time zone", c.Quiet.TimeZone))
			zone = loc
		}
	}
	rc.Quiet = router.QuietHours{Default: w, Zone: zone}

	g := c.Guards
	rc.Guards = router.Guards{DuplicateWindow: g.DuplicateWindow.Duration, PairLimit: g.PairLimit, PairWindow: g.PairWindow.Duration}
	if rc.Guards.DuplicateWindow == 0 {
		rc.Guards.DuplicateWindow = defaultGuardWindow
	}
	if rc.Guards.PairLimit == 0 {
		rc.Guards.PairLimit = defaultPairLimit
	}
	if rc.Guards.PairWindow == 0 {
		rc.Guards.PairWindow = defaultGuardWindow
	}
	if g.DuplicateWindow.Duration < 0 || g.PairWindow.Duration < 0 {
		errs = append(errs, errors.New("[guards] windows cannot be negative"))
	}
	if g.Duplicates != nil && !*g.Duplicates {
		rc.Guards.DuplicateWindow = -1
	}
	if g.PairLimit < -1 {
		errs = append(errs, fmt.Errorf("[guards] pair_limit %d: use a count, or -1 for no limit", g.PairLimit))
	}

	s := c.SelfService
	if s.Number == "" {
		s.Number = defaultSelfServiceNumber
	}
	rc.SelfService = router.SelfService{Enabled: s.Enabled, Number: s.Number, RequirePIN: s.RequirePIN,
		PINTries: s.PINTries, PINWindow: s.PINWindow.Duration, PINLockout: s.PINLockout.Duration, FirstPINBySMS: s.FirstPINBySMS}
	ss := &rc.SelfService
	if ss.PINTries == 0 {
		ss.PINTries = router.DefaultPINTries
	}
	if ss.PINWindow == 0 {
		ss.PINWindow = router.DefaultPINWindow
	}
	if ss.PINLockout == 0 {
		ss.PINLockout = router.DefaultPINLockout
	}
	if s.PINTries < -1 || s.PINWindow.Duration < 0 || s.PINLockout.Duration < 0 {
		errs = append(errs, errors.New("[selfservice] pin_tries is a count (or -1: no lockout); pin_window and pin_lockout cannot be negative"))
	}
	if s.Enabled && !router.ValidNumber(s.Number) {
		errs = append(errs, router.CheckNumber("[selfservice] number", s.Number))
	}
	if s.Enabled && s.Number == c.SMSCNumber {
		errs = append(errs, fmt.Errorf("[selfservice] number %s is the SMS Centre's own number", s.Number))
	}
	return errs
}
