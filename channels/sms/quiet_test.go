package sms

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"smsrouter/channels"
	"smsrouter/internal/quiet"
)

// quietNow is a quiet window around the present moment, in UTC.
func quietNow() quiet.Window {
	now := time.Now().UTC()
	m := now.Hour()*60 + now.Minute()
	return quiet.Window{Start: (m + 1440 - 60) % 1440, End: (m + 60) % 1440}
}

// TestFollowUpWaitsForQuietHoursToEnd: a message that came while the phone's
// call was in progress gets a follow-up call once that call ends; when that is
// inside the recipient's quiet hours, the follow-up starts when they end (its
// mtime), like a first call would, and still hands the parts over.
func TestFollowUpWaitsForQuietHoursToEnd(t *testing.T) {
	for _, tc := range []struct {
		name  string
		quiet quiet.Window
	}{{"quiet", quietNow()}, {"no quiet hours", quiet.Window{}}} {
		t.Run(tc.name, func(t *testing.T) {
			spool := t.TempDir()
			ast := newAsterisk(t, spool)
			a, b := newProc(t, spool, "a"), newProc(t, spool, "b")
			m := func() channels.Message {
				x := message("1001")
				x.Quiet, x.QuietZone = tc.quiet, time.UTC
				return x
			}
			a.batch([]channels.Message{m()}, hooks{})
			first := ast.calls()[0]
			ast.start(first) // in progress: the next message needs a follow-up
			if n := a.batchCalls([]channels.Message{m()}, hooks{}); n != 0 {
				t.Fatalf("%d calls beside one in progress", n)
			}
			ast.complete(first) // it took only the first part
			before := time.Now()
			if err := b.c.FollowUps(); err != nil {
				t.Fatal(err)
			}
			calls := ast.calls()
			if len(calls) != 1 {
				t.Fatalf("follow-up calls %v", calls)
			}
			path := filepath.Join(spool, "outgoing", calls[0])
			fi, err := os.Stat(path)
			if err != nil {
				t.Fatal(err)
			}
			data, _ := os.ReadFile(path)
			if strings.Contains(string(data), "#smsrouter") {
				t.Errorf("the hold line reached the call file:\n%s", data)
			}
			until, held := tc.quiet.Until(before, time.UTC)
			switch {
			case held && !fi.ModTime().Equal(until):
				t.Errorf("follow-up starts at %v, want the end of the quiet hours %v", fi.ModTime(), until)
			case !held && fi.ModTime().After(time.Now()):
				t.Errorf("follow-up held until %v without quiet hours", fi.ModTime())
			}
			// Held or not, it is a call that has not started: a third message
			// relies on it rather than ring beside it.
			if n := a.batchCalls([]channels.Message{m()}, hooks{}); n != 0 {
				t.Fatalf("%d calls beside the follow-up", n)
			}
			ast.runAll()
			if left := ast.mttxLeft(); len(left) != 0 {
				t.Fatalf("parts never handed over: %v", left)
			}
		})
	}
}

// TestIntentOfADeadProcessKeepsTheQuietHours: the call of a process that died
// before placing it is placed by the next one, held like a follow-up.
func TestIntentOfADeadProcessKeepsTheQuietHours(t *testing.T) {
	spool := t.TempDir()
	ast := newAsterisk(t, spool)
	a, b := newProc(t, spool, "a"), newProc(t, spool, "b")
	a.c.StartBatch()
	x := message("1001")
	x.Quiet, x.QuietZone = quietNow(), time.UTC
	res, err := a.c.Deliver(context.Background(), x)
	if err != nil {
		t.Fatal(err)
	}
	for _, art := range res.Artefacts {
		os.MkdirAll(art.Dir, 0o755)
		if err := os.WriteFile(filepath.Join(art.Dir, art.Name), art.Data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	a.c.cur.intent.Close() // the kernel drops a dead process's locks
	before := time.Now()
	if err := b.c.FollowUps(); err != nil {
		t.Fatal(err)
	}
	calls := ast.calls()
	if len(calls) != 1 {
		t.Fatalf("calls %v", calls)
	}
	fi, err := os.Stat(filepath.Join(spool, "outgoing", calls[0]))
	if err != nil {
		t.Fatal(err)
	}
	if until, _ := quietNow().Until(before, time.UTC); !fi.ModTime().Equal(until) {
		t.Errorf("dead process's call starts at %v, want %v", fi.ModTime(), until)
	}
}

func TestReleaseAtReadsOnlyItsOwnHeader(t *testing.T) {
	now := time.Date(2026, 3, 4, 23, 0, 0, 0, time.UTC)
	call := []byte("Channel: PJSIP/1001\n")
	for _, tc := range []struct {
		data string
		want time.Time
	}{
		{holdPrefix + "22:00-07:00 UTC\n" + string(call), time.Date(2026, 3, 5, 7, 0, 0, 0, time.UTC)},
		{holdPrefix + "08:00-09:00 UTC\n" + string(call), time.Time{}},
		{holdPrefix + "22:00-07:00 Nowhere/City\n" + string(call), time.Time{}},
		{holdPrefix + "garbage\n" + string(call), time.Time{}},
	} {
		got, at := releaseAt([]byte(tc.data), now)
		if string(got) != string(call) || !at.Equal(tc.want) {
			t.Errorf("%q: %q %v, want %v", tc.data, got, at, tc.want)
		}
	}
	if got, at := releaseAt(call, now); string(got) != string(call) || !at.IsZero() {
		t.Errorf("no header: %q %v", got, at)
	}
}
