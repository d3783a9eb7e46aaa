package router

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"smsrouter/channels"
)

// NewID returns a message id (see channels.NewID). The id carries the receive time
// through a crash without the database.
func NewID(now time.Time) string { return channels.NewID(now) }

// idTime recovers the receive time from an id.
func idTime(id string) (time.Time, bool) {
	ms, _, ok := strings.Cut(id, "-")
	if !ok || len(ms) != 13 {
		return time.Time{}, false
	}
	v, err := strconv.ParseInt(ms, 10, 64)
	if err != nil {
		return time.Time{}, false
	}
	return time.UnixMilli(v), true
}

// validID accepts exactly the ids NewID makes (see channels.ValidID).
func validID(id string) bool { return channels.ValidID(id) }

// MaxNumberLen is app_sms's limit: addresses of 20 characters or more are ignored.
const MaxNumberLen = 19

// ValidNumber accepts what app_sms can carry as an address: an optional leading '+'
// and 1 to 19 characters in all of digits. Everything that becomes a file name or a
// call file value passes through here first.
func ValidNumber(s string) bool {
	if len(s) == 0 || len(s) > MaxNumberLen {
		return false
	}
	digits := s
	if s[0] == '+' {
		digits = s[1:]
	}
	if digits == "" {
		return false
	}
	for i := 0; i < len(digits); i++ {
		if digits[i] < '0' || digits[i] > '9' {
			return false
		}
	}
	return true
}

// CheckNumber explains why a number is refused.
func CheckNumber(role, s string) error {
	if ValidNumber(s) {
		return nil
	}
	shown := s
	if len(shown) > 40 {
		shown = shown[:40] + "…"
	}
	if s == "" {
		return fmt.Errorf("%s is missing", role)
	}
	return fmt.Errorf("%s %q is not a phone number (want an optional + and at most %d digits)", role, shown, MaxNumberLen)
}
