// Package timespec reads the times and lengths of time people type: "2d",
// "1w3d", "90m", "2026-12-01", "2026-12-01 14:00", RFC 3339. The journal's
// --since/--until, the HTTP API's since= and until= and the configuration's
// durations ("90d") all go through it, so an admin learns one syntax.
package timespec

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Day and Week are the units Go's time.ParseDuration lacks. A day is 24 hours:
// across a daylight-saving change "1d" is 24 hours ago, not "the same clock time
// yesterday", which is what "the last day" means to someone reading a log.
const (
	Day  = 24 * time.Hour
	Week = 7 * Day
)

// maxDuration bounds what ParseDuration returns: about 290 years, the most a
// time.Duration holds.
const maxDuration = time.Duration(1<<63 - 1)

// ParseDuration reads a length of time: a sequence of decimal numbers, each with
// a unit, as time.ParseDuration does, plus "d" (24 h) and "w" (7 d): "2d",
// "1w3d", "90m", "1h30m", "1.5d". A number without a unit is refused (is "90"
// minutes or seconds?), as is a negative length.
func ParseDuration(s string) (time.Duration, error) {
	orig := s
	s = strings.TrimSpace(s)
	if s == "" {
		return 0, errors.New("empty duration")
	}
	if s == "0" {
		return 0, nil
	}
	if strings.HasPrefix(s, "-") {
		return 0, fmt.Errorf("duration %q is negative", orig)
	}
	s = strings.TrimPrefix(s, "+")
	var total float64
	for s != "" {
		i := 0
		for i < len(s) && (s[i] >= '0' && s[i] <= '9' || s[i] == '.') {
			i++
		}
		if i == 0 {
			return 0, fmt.Errorf("duration %q: expected a number at %q (e.g. 90m, 2d, 1w3d)", orig, s)
		}
		num, err := strconv.ParseFloat(s[:i], 64)
		if err != nil {
			return 0, fmt.Errorf("duration %q: bad number %q", orig, s[:i])
		}
		s = s[i:]
		j := 0
		for j < len(s) && (s[j] < '0' || s[j] > '9') && s[j] != '.' {
			j++
		}
		unit, ok := units[s[:j]]
		if !ok {
			if j == 0 {
				return 0, fmt.Errorf("duration %q: a number needs a unit (w, d, h, m, s, ms)", orig)
			}
			return 0, fmt.Errorf("duration %q: unknown unit %q (use w, d, h, m, s, ms)", orig, s[:j])
		}
		s = s[j:]
		total += num * float64(unit)
		if total >= float64(maxDuration) {
			return 0, fmt.Errorf("duration %q is too long", orig)
		}
	}
	return time.Duration(total), nil
}

var units = map[string]time.Duration{
	"ns": time.Nanosecond, "us": time.Microsecond, "µs": time.Microsecond, "ms": time.Millisecond,
	"s": time.Second, "m": time.Minute, "h": time.Hour, "d": Day, "w": Week,
}

// FormatDuration writes d the way ParseDuration reads it, with weeks and days:
// 90 days is "12w6d", 36 hours "1d12h".
func FormatDuration(d time.Duration) string {
	if d <= 0 {
		return "0s"
	}
	var b strings.Builder
	for _, u := range []struct {
		name string
		d    time.Duration
	}{{"w", Week}, {"d", Day}, {"h", time.Hour}, {"m", time.Minute}, {"s", time.Second}} {
		if n := d / u.d; n > 0 {
			fmt.Fprintf(&b, "%d%s", n, u.name)
			d -= n * u.d
		}
	}
	if d > 0 || b.Len() == 0 {
		b.WriteString(d.String())
	}
	return b.String()
}

// Local layouts, tried in order: the date alone means its midnight.
var layouts = []string{"2006-01-02", "2006-01-02 15:04", "2006-01-02 15:04:05", "2006-01-02T15:04", "2006-01-02T15:04:05"}

// ParseTime reads a point in time: a duration (ParseDuration) means that long
// before now; a date or date and time without a zone ("2026-12-01",
// "2026-12-01 14:00", "2026-12-01 14:00:05") is in loc; RFC 3339
// ("2026-12-01T14:00:00+01:00", "…Z") carries its own zone. "now" is now.
func ParseTime(s string, now time.Time, loc *time.Location) (time.Time, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return time.Time{}, errors.New("empty time")
	}
	if loc == nil {
		loc = time.Local
	}
	if s == "now" {
		return now, nil
	}
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t, nil
	}
	for _, l := range layouts {
		if t, err := time.ParseInLocation(l, s, loc); err == nil {
			return t, nil
		}
	}
	if looksLikeDate(s) {
		return time.Time{}, fmt.Errorf("time %q: write a date as 2026-12-01, 2026-12-01 14:00 or RFC 3339 (2026-12-01T14:00:00+01:00)", s)
	}
	d, err := ParseDuration(s)
	if err != nil {
		return time.Time{}, fmt.Errorf("time %q: neither a length of time ago (2d, 1w3d, 90m) nor a date (2026-12-01, 2026-12-01 14:00, RFC 3339)", s)
	}
	return now.Add(-d), nil
}

// looksLikeDate is "starts with a year and a dash", so that a mistyped date gets
// an error about dates rather than about durations.
func looksLikeDate(s string) bool {
	if len(s) < 5 || s[4] != '-' {
		return false
	}
	for _, c := range s[:4] {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}
