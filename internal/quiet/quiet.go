// Package quiet reads quiet-hours windows ("22:00-07:00", "22-07") and answers
// whether a moment falls inside one and when it ends, in a time zone, across
// midnight and daylight-saving changes. The router holds deliveries that ring a
// phone while their recipient's window is open; self-service and doctor parse
// the same notation.
package quiet

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Window is a daily span of local clock time, [Start, End) in minutes after
// midnight. Start > End crosses midnight; the zero Window (Start == End) is off.
type Window struct{ Start, End int }

// Off reports whether the window holds nothing.
func (w Window) Off() bool { return w.Start == w.End }

// ErrBadWindow wraps every parse failure.
var ErrBadWindow = errors.New("bad quiet window")

// Parse reads "HH:MM-HH:MM" or the short "HH-HH" (hours only, as a phone user
// types it). "" and "off" are the zero Window.
func Parse(s string) (Window, error) {
	s = strings.TrimSpace(s)
	if s == "" || strings.EqualFold(s, "off") {
		return Window{}, nil
	}
	a, b, ok := strings.Cut(s, "-")
	if !ok {
		return Window{}, fmt.Errorf("%w %q: want HH:MM-HH:MM", ErrBadWindow, clip(s))
	}
	start, err := ParseClock(a)
	if err != nil {
		return Window{}, err
	}
	end, err := ParseClock(b)
	if err != nil {
		return Window{}, err
	}
	if start == end {
		return Window{}, fmt.Errorf("%w %q: start and end are the same", ErrBadWindow, clip(s))
	}
	return Window{start, end}, nil
}

// ParseClock reads "HH:MM" or "HH" (0–23, 0–59) as minutes after midnight.
func ParseClock(s string) (int, error) {
	s = strings.TrimSpace(s)
	h, m, hasMin := strings.Cut(s, ":")
	hh, err := twoDigits(h, 23)
	if err != nil {
		return 0, fmt.Errorf("%w: hour in %q", ErrBadWindow, clip(s))
	}
	mm := 0
	if hasMin {
		if len(m) != 2 {
			return 0, fmt.Errorf("%w: minutes in %q", ErrBadWindow, clip(s))
		}
		if mm, err = twoDigits(m, 59); err != nil {
			return 0, fmt.Errorf("%w: minutes in %q", ErrBadWindow, clip(s))
		}
	}
	return hh*60 + mm, nil
}

func twoDigits(s string, limit int) (int, error) {
	if len(s) < 1 || len(s) > 2 {
		return 0, ErrBadWindow
	}
	for _, c := range s {
		if c < '0' || c > '9' {
			return 0, ErrBadWindow
		}
	}
	n, _ := strconv.Atoi(s)
	if n > limit {
		return 0, ErrBadWindow
	}
	return n, nil
}

func clip(s string) string {
	if len(s) > 20 {
		return s[:20] + "…"
	}
	return s
}

// Clock formats minutes after midnight as HH:MM.
func Clock(min int) string { return fmt.Sprintf("%02d:%02d", min/60, min%60) }

// String is the window as Parse reads it; "off" for the zero Window.
func (w Window) String() string {
	if w.Off() {
		return "off"
	}
	return Clock(w.Start) + "-" + Clock(w.End)
}

// Until reports whether t falls inside the window in loc and, if so, the
// moment it ends: the first instant after t at which the local clock reads End.
// A local time that a DST change skips ends the window at the first instant
// after the gap; one that occurs twice ends it the first time.
func (w Window) Until(t time.Time, loc *time.Location) (time.Time, bool) {
	if w.Off() {
		return time.Time{}, false
	}
	lt := t.In(loc)
	now := lt.Hour()*60 + lt.Minute()
	inside := false
	if w.Start < w.End {
		inside = now >= w.Start && now < w.End
	} else {
		inside = now >= w.Start || now < w.End
	}
	if !inside {
		return time.Time{}, false
	}
	day := lt
	if now >= w.End { // crosses midnight and we are before it: it ends tomorrow
		day = lt.AddDate(0, 0, 1)
	}
	end := time.Date(day.Year(), day.Month(), day.Day(), w.End/60, w.End%60, 0, 0, loc)
	if !end.After(t) {
		// time.Date may place a local time that a DST change skips before t:
		// the window is over as soon as the clock has jumped past End.
		end = t.Truncate(time.Minute).Add(time.Minute)
	}
	return end, true
}
