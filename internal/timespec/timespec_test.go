package timespec

import (
	"strings"
	"testing"
	"time"
)

func TestParseDuration(t *testing.T) {
	for _, c := range []struct {
		in   string
		want time.Duration
		err  string
	}{
		{"2d", 48 * time.Hour, ""},
		{"1w3d", 10 * Day, ""},
		{"90m", 90 * time.Minute, ""},
		{"1h30m", 90 * time.Minute, ""},
		{"1.5d", 36 * time.Hour, ""},
		{"90d", 90 * Day, ""},
		{"  12h ", 12 * time.Hour, ""},
		{"0", 0, ""},
		{"500ms", 500 * time.Millisecond, ""},
		{"+2h", 2 * time.Hour, ""},
		{"", 0, "empty"},
		{"90", 0, "needs a unit"},
		{"-2d", 0, "negative"},
		{"2y", 0, "unknown unit"},
		{"d", 0, "expected a number"},
		{"2d3", 0, "needs a unit"},
		{"1..2d", 0, "bad number"},
		{"999999999w", 0, "too long"},
	} {
		got, err := ParseDuration(c.in)
		if c.err != "" {
			if err == nil || !strings.Contains(err.Error(), c.err) {
				t.Errorf("ParseDuration(%q) = %v, %v; want error with %q", c.in, got, err, c.err)
			}
			continue
		}
		if err != nil || got != c.want {
			t.Errorf("ParseDuration(%q) = %v, %v; want %v", c.in, got, err, c.want)
		}
	}
}

func TestFormatDurationRoundTrips(t *testing.T) {
	for _, d := range []time.Duration{90 * Day, 36 * time.Hour, 90 * time.Minute, time.Second, 10*Day + 3*time.Hour + 4*time.Minute + 5*time.Second} {
		s := FormatDuration(d)
		back, err := ParseDuration(s)
		if err != nil || back != d {
			t.Errorf("%v → %q → %v, %v", d, s, back, err)
		}
	}
	if s := FormatDuration(90 * Day); s != "12w6d" {
		t.Errorf("90 days = %q", s)
	}
}

func TestParseTime(t *testing.T) {
	warsaw, err := time.LoadLocation("Europe/Warsaw")
	if err != nil {
		t.Fatal(err)
	}
	now := time.Date(2026, 12, 3, 10, 0, 0, 0, time.UTC)
	for _, c := range []struct {
		in   string
		want time.Time
		err  string
	}{
		{"2d", now.Add(-48 * time.Hour), ""},
		{"1w3d", now.Add(-10 * Day), ""},
		{"90m", now.Add(-90 * time.Minute), ""},
		{"now", now, ""},
		{"2026-12-01", time.Date(2026, 12, 1, 0, 0, 0, 0, warsaw), ""},
		{"2026-12-01 14:00", time.Date(2026, 12, 1, 14, 0, 0, 0, warsaw), ""},
		{"2026-12-01 14:00:30", time.Date(2026, 12, 1, 14, 0, 30, 0, warsaw), ""},
		{"2026-12-01T14:00", time.Date(2026, 12, 1, 14, 0, 0, 0, warsaw), ""},
		{"2026-07-01 14:00", time.Date(2026, 7, 1, 14, 0, 0, 0, warsaw), ""}, // summer time: +02:00
		{"2026-12-01T14:00:00Z", time.Date(2026, 12, 1, 14, 0, 0, 0, time.UTC), ""},
		{"2026-12-01T14:00:00+05:30", time.Date(2026, 12, 1, 8, 30, 0, 0, time.UTC), ""},
		{"2026-12-01T14:00:00.250+01:00", time.Date(2026, 12, 1, 13, 0, 0, 250e6, time.UTC), ""},
		{"2026-13-01", time.Time{}, "write a date as"},
		{"2026-12-01 25:00", time.Time{}, "write a date as"},
		{"01/12/2026", time.Time{}, "neither"},
		{"yesterday", time.Time{}, "neither"},
		{"", time.Time{}, "empty"},
		{"2", time.Time{}, "neither"},
	} {
		got, err := ParseTime(c.in, now, warsaw)
		if c.err != "" {
			if err == nil || !strings.Contains(err.Error(), c.err) {
				t.Errorf("ParseTime(%q) = %v, %v; want error with %q", c.in, got, err, c.err)
			}
			continue
		}
		if err != nil || !got.Equal(c.want) {
			t.Errorf("ParseTime(%q) = %v, %v; want %v", c.in, got, err, c.want)
		}
	}
	// The summer date is read at +02:00, the winter one at +01:00.
	s, _ := ParseTime("2026-07-01 14:00", now, warsaw)
	if _, off := s.Zone(); off != 2*3600 {
		t.Errorf("summer offset %d", off)
	}
}

func FuzzParseTime(f *testing.F) {
	for _, s := range []string{"2d", "1w3d", "90m", "2026-12-01", "2026-12-01 14:00", "2026-12-01T14:00:00Z", "1.5d", "-", "9999999999999w", ".d", "1e9h"} {
		f.Add(s)
	}
	now := time.Date(2026, 12, 3, 10, 0, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, s string) {
		d, err := ParseDuration(s)
		if err == nil && d < 0 {
			t.Fatalf("negative duration %v from %q", d, s)
		}
		tm, err := ParseTime(s, now, time.UTC)
		if err == nil && tm.IsZero() && s != "" {
			// A parsed time is a real time; the zero time would mean "no filter".
			if !strings.HasPrefix(strings.TrimSpace(s), "0001-01-01") {
				t.Fatalf("zero time from %q", s)
			}
		}
	})
}
