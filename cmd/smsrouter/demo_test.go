package main

import (
	"strings"
	"testing"
	"time"
)

// TestDemo runs `smsrouter demo`, the README's first command, through the
// binary: every sample takes the way its recipient chose, whatever the date.
// (Its samples were captured on 2026-11-21; with their own times they had all
// expired a week later.)
func TestDemo(t *testing.T) {
	out, errOut, code := runEnv(t, nil, "demo")
	if code != exitOK {
		t.Fatalf("demo: exit %d\n%s\n%s", code, out, errOut)
	}
	for _, want := range []string{"delivered 7 ", "bounced 2 ", "held 2 ", "rejected 1 ", "letter F", "sms/mttx/"} {
		if !strings.Contains(out, want) {
			t.Errorf("demo output lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "expired") {
		t.Errorf("demo messages expired:\n%s", out)
	}
}

func TestDemoNowMovesEveryTimeAlike(t *testing.T) {
	now := time.Date(2031, 3, 30, 2, 30, 0, 0, time.UTC)
	got := demoNow("5550001.2026-11-21T05:39:34-0 scts=2026-11-21T05:41:20\nud=at 05:00", now)
	want := "5550001.2031-03-30T02:28:14-0 scts=2031-03-30T02:30:00\nud=at 05:00"
	if got != want {
		t.Errorf("demoNow = %q, want %q", got, want)
	}
}
