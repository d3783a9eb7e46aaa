package quiet

import (
	"testing"
	"time"
)

func TestParse(t *testing.T) {
	for in, want := range map[string]Window{
		"22:00-07:00": {22 * 60, 7 * 60}, "22-07": {22 * 60, 7 * 60}, " 9-17 ": {9 * 60, 17 * 60},
		"23:30-00:15": {23*60 + 30, 15}, "": {}, "OFF": {},
	} {
		got, err := Parse(in)
		if err != nil || got != want {
			t.Errorf("Parse(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, bad := range []string{"22", "24-07", "22:60-07", "22:0-07", "7-7", "a-b", "-07", "22-", "1:2:3-4", "+1-2", "022-07"} {
		if w, err := Parse(bad); err == nil {
			t.Errorf("Parse(%q) = %v, want an error", bad, w)
		}
	}
}

func TestUntil(t *testing.T) {
	waw, err := time.LoadLocation("Europe/Warsaw")
	if err != nil {
		t.Skip("no tzdata:", err)
	}
	night := Window{22 * 60, 7 * 60}
	day := Window{9 * 60, 17 * 60}
	at := func(s string) time.Time {
		tm, err := time.ParseInLocation("2006-01-02 15:04", s, waw)
		if err != nil {
			t.Fatal(err)
		}
		return tm
	}
	for _, tc := range []struct {
		w      Window
		now    string
		inside bool
		end    string
	}{
		{night, "2026-12-02 23:10", true, "2026-12-03 07:00"},
		{night, "2026-12-03 06:59", true, "2026-12-03 07:00"},
		{night, "2026-12-03 07:00", false, ""},
		{night, "2026-12-02 21:59", false, ""},
		{night, "2026-12-02 22:00", true, "2026-12-03 07:00"},
		{day, "2026-12-02 12:00", true, "2026-12-02 17:00"},
		{day, "2026-12-02 17:00", false, ""},
		// The night the clocks go forward (29 March 2026, 02:00 → 03:00) is an
		// hour shorter: 07:00 local is still 07:00 local.
		{night, "2026-03-28 23:00", true, "2026-03-29 07:00"},
		// and the night they go back (25 October 2026) an hour longer.
		{night, "2026-10-24 23:00", true, "2026-10-25 07:00"},
		{Window{}, "2026-12-02 23:00", false, ""},
	} {
		end, inside := tc.w.Until(at(tc.now), waw)
		if inside != tc.inside || (inside && !end.Equal(at(tc.end))) {
			t.Errorf("%v at %s: %v %v; want %v %s", tc.w, tc.now, end, inside, tc.inside, tc.end)
		}
	}
	// Across a DST change the hold is a different number of real hours.
	end, _ := night.Until(at("2026-03-28 23:00"), waw)
	if d := end.Sub(at("2026-03-28 23:00")); d != 7*time.Hour {
		t.Errorf("spring-forward night lasts %v, want 7h", d)
	}
	// A window ending inside the skipped hour ends once the clock jumped.
	gap := Window{22 * 60, 2*60 + 30}
	now := at("2026-03-29 01:59")
	end, inside := gap.Until(now, waw)
	if !inside || !end.After(now) || end.Sub(now) > time.Hour {
		t.Errorf("window ending in the DST gap: %v %v", end, inside)
	}
}

func FuzzParse(f *testing.F) {
	for _, s := range []string{"22:00-07:00", "22-07", "off", "", "9-17", "24-1", "1:2-3", "\x00-\xff"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		w, err := Parse(s)
		if err != nil {
			return
		}
		if w.Start < 0 || w.Start >= 24*60 || w.End < 0 || w.End >= 24*60 {
			t.Fatalf("Parse(%q) = %v out of range", s, w)
		}
		back, err := Parse(w.String())
		if err != nil || back != w {
			t.Fatalf("Parse(%q) = %v does not round-trip: %v %v", s, w, back, err)
		}
		if !w.Off() {
			now := time.Date(2026, 3, 29, 1, 30, 0, 0, time.UTC)
			if end, in := w.Until(now, time.UTC); in && !end.After(now) {
				t.Fatalf("%v: end %v not after %v", w, end, now)
			}
		}
	})
}
