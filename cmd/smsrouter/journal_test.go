package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"smsrouter/internal/testdb"
	"smsrouter/router"
)

// runHere runs the command in-process (faster than the binary) and returns its
// output and exit code.
func runHere(t *testing.T, args ...string) (string, int) {
	t.Helper()
	var out, errOut bytes.Buffer
	code := run(context.Background(), args, &out, &errOut)
	return out.String() + errOut.String(), code
}

// seeded is a bed whose journal holds one message in each interesting state, and
// whose spool holds the deferred ones as the router leaves them.
type seeded struct {
	*bed
	delivered, deferred1, deferred2, bounced, old string
}

func seedJournal(t *testing.T, dsn string) *seeded {
	t.Helper()
	b := newBed(t, dsn, "", router.Entry{Number: "5550001", Letter: 'S', Extension: "PJSIP/5550001"},
		router.Entry{Number: "5551001", Letter: 'S', Extension: "PJSIP/1001"},
		router.Entry{Number: "5551002", Letter: 'S', Extension: "PJSIP/1002"})
	now := time.Now()
	id := func(ago time.Duration, n int) string {
		return fmt.Sprintf("%013d-%010x", now.Add(-ago).UnixMilli(), n)
	}
	s := &seeded{bed: b, delivered: id(10*time.Minute, 1), deferred1: id(5*time.Minute, 2),
		deferred2: id(4*time.Minute, 3), bounced: id(3*time.Minute, 4), old: id(3*time.Hour, 5)}
	calls := `{"source":"x","calls":[{"file":"smsrouter.mttx.5551001.a","status":"Expired","attempts":2}]}`
	recs := []router.Record{
		{ID: s.delivered, OA: "5550001", DA: "5551001", Letter: "S", State: router.StateDelivered, Detail: calls,
			LastError: "the call was not answered (2 attempts)"},
		{ID: s.deferred1, OA: "5550001", DA: "5551002", Letter: "S", State: router.StateDeferred, Attempts: 2,
			NextAttempt: now.Add(time.Hour), LastError: "database down", Detail: "{}"},
		{ID: s.deferred2, OA: "5550001", DA: "5551001", Letter: "S", State: router.StateDeferred, Attempts: 1,
			NextAttempt: now.Add(time.Hour), LastError: "database down", Detail: "{}"},
		{ID: s.bounced, OA: "5550001", DA: "5559999", State: router.StateBounced, LastError: "unknown number", Detail: "{}"},
		{ID: s.old, OA: "5550002", DA: "5551001", Letter: "S", State: router.StateDelivered, Detail: "{}"},
	}
	for i := range recs {
		var ms int64 // ids carry their receive time
		fmt.Sscanf(recs[i].ID[:13], "%d", &ms)
		recs[i].Received = time.UnixMilli(ms)
	}
	if err := router.NewJournal(b.store).Put(context.Background(), "", recs); err != nil {
		t.Fatal(err)
	}
	deferred := filepath.Join(b.work, "deferred")
	if err := os.MkdirAll(deferred, 0o770); err != nil {
		t.Fatal(err)
	}
	due := now.Add(time.Hour).UnixMilli()
	for _, d := range []struct{ id, da string }{{s.deferred1, "5551002"}, {s.deferred2, "5551001"}} {
		body := "oa=5550001\nda=" + d.da + "\nud=waiting\nscts=" + now.UTC().Format("2006-01-02T15:04:05") + "\n"
		writeFile(t, filepath.Join(deferred, fmt.Sprintf("%013d.%s.1", due, d.id)), []byte(body))
	}
	return s
}

func TestJournalVerbs(t *testing.T) {
	testdb.Each(t, func(t *testing.T, dsn string) {
		s := seedJournal(t, dsn)
		conf := s.conf

		out, code := runHere(t, "journal", "--config", conf)
		if code != 0 || strings.Count(out, "\n") != 6 || !strings.Contains(out, "Expired") || !strings.Contains(out, "LAST ERROR") {
			t.Fatalf("journal: exit %d\n%s", code, out)
		}
		for _, c := range []struct {
			args []string
			want []string
		}{
			{[]string{"--state", "deferred"}, []string{s.deferred1, s.deferred2}},
			{[]string{"--number", "5551002"}, []string{s.deferred1}},
			{[]string{"--since", "1h"}, []string{s.delivered, s.deferred1, s.deferred2, s.bounced}},
			{[]string{"--since", "1h", "--state", "bounced"}, []string{s.bounced}},
			{[]string{"--number", "5550002"}, []string{s.old}},
		} {
			out, code := runHere(t, append([]string{"journal", "--config", conf, "--json"}, c.args...)...)
			if code != 0 {
				t.Fatalf("%v: exit %d %s", c.args, code, out)
			}
			var got []string
			for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
				var e journalEntry
				if err := json.Unmarshal([]byte(line), &e); err != nil {
					t.Fatalf("%v: %q: %v", c.args, line, err)
				}
				got = append(got, e.ID)
			}
			if strings.Join(got, ",") != strings.Join(reverse(c.want), ",") {
				t.Errorf("%v: got %v, want %v (newest first)", c.args, got, reverse(c.want))
			}
		}
		if out, code := runHere(t, "journal", "--config", conf, "--state", "lost"); code != 2 || !strings.Contains(out, "want one of") {
			t.Fatalf("bad state: %d %s", code, out)
		}

		// show
		out, code = runHere(t, "journal", "show", "--config", conf, s.delivered)
		if code != 0 || !strings.Contains(out, "call:         Expired after 2 attempt(s)") || !strings.Contains(out, "5550001 → 5551001") {
			t.Fatalf("show: %d\n%s", code, out)
		}
		out, code = runHere(t, "journal", "show", "--config", conf, "--json", s.delivered)
		var e showView
		if code != 0 || json.Unmarshal([]byte(out), &e) != nil || len(e.Calls) != 1 || e.Calls[0].Status != "Expired" || len(e.Detail) == 0 {
			t.Fatalf("show --json: %d %s", code, out)
		}
		if out, code := runHere(t, "journal", "show", "--config", conf, "1795239855000-00000000ff"); code != 1 || !strings.Contains(out, "no message") {
			t.Fatalf("show unknown: %d %s", code, out)
		}

		// retry
		for _, bad := range [][]string{{"retry", "--config", conf}, {"retry", "--config", conf, "--state", "bounced"},
			{"retry", "--config", conf, "--state", "deferred", s.deferred1}} {
			if _, code := runHere(t, bad...); code != 2 {
				t.Errorf("%v: exit %d, want 2", bad, code)
			}
		}
		out, code = runHere(t, "retry", "--config", conf, s.deferred1)
		if code != 0 || !strings.Contains(out, s.deferred1+" due now") {
			t.Fatalf("retry: %d %s", code, out)
		}
		if out, code := runHere(t, "retry", "--config", conf, s.bounced); code != 1 || !strings.Contains(out, "not waiting") {
			t.Fatalf("retry bounced: %d %s", code, out)
		}
		if due := dueOf(t, s.bed, s.deferred1); due.After(time.Now()) {
			t.Fatalf("retried message due %v", due)
		}
		out, code = runHere(t, "retry", "--config", conf, "--state", "deferred")
		if code != 0 || !strings.Contains(out, s.deferred2+" due now") {
			t.Fatalf("retry --state: %d %s", code, out)
		}

		// drop: with a notice, then silently, then again (nothing left)
		out, code = runHere(t, "drop", "--config", conf, "--notify", s.deferred1)
		if code != 0 || !strings.Contains(out, "sender notified") {
			t.Fatalf("drop --notify: %d %s", code, out)
		}
		out, code = runHere(t, "drop", "--config", conf, "--reason", "spam", s.deferred2)
		if code != 0 || strings.Contains(out, "notified") {
			t.Fatalf("drop: %d %s", code, out)
		}
		if out, code := runHere(t, "drop", "--config", conf, s.deferred2); code != 1 || !strings.Contains(out, "not waiting") {
			t.Fatalf("drop twice: %d %s", code, out)
		}
		out, _ = runHere(t, "journal", "--config", conf, "--state", "dropped", "--json")
		if strings.Count(out, `"state":"dropped"`) != 2 || !strings.Contains(out, `"last_error":"spam"`) {
			t.Fatalf("dropped rows: %s", out)
		}
		// The notice is queued in morx and goes out like any message.
		out, code = runHere(t, "drain", "--config", conf)
		if code != 0 || !strings.Contains(out, "delivered 1") {
			t.Fatalf("drain of the notice: %d %s", code, out)
		}
	})
}

func reverse(s []string) []string {
	out := make([]string, len(s))
	for i, v := range s {
		out[len(s)-1-i] = v
	}
	return out
}

func dueOf(t *testing.T, b *bed, id string) time.Time {
	t.Helper()
	entries, _ := os.ReadDir(filepath.Join(b.work, "deferred"))
	for _, e := range entries {
		if strings.Contains(e.Name(), id) {
			var ms int64
			fmt.Sscanf(e.Name()[:13], "%d", &ms)
			return time.UnixMilli(ms)
		}
	}
	t.Fatalf("%s not deferred", id)
	return time.Time{}
}

func TestDrainAndEvidenceRecordCallOutcomes(t *testing.T) {
	s := seedJournal(t, "")
	done := filepath.Join(s.spool, "outgoing_done")
	if err := os.MkdirAll(done, 0o755); err != nil {
		t.Fatal(err)
	}
	expired, err := os.ReadFile(filepath.Join("..", "..", "testdata", "asterisk", "call", "spool-behaviour", "expire-1795239855.call"))
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(done, "smsrouter.mttx.5551002.x"), append([]byte("Setvar: SMSROUTER_ID="+s.bounced+"\n"), expired...))
	if out, code := runHere(t, "drain", "--config", s.conf); code != 0 {
		t.Fatalf("drain: %d %s", code, out)
	}
	out, _ := runHere(t, "journal", "show", "--config", s.conf, s.bounced)
	if !strings.Contains(out, "call:         Expired after 2 attempt(s) (smsrouter.mttx.5551002.x)") {
		t.Fatalf("drain did not record the call:\n%s", out)
	}
	out, code := runHere(t, "evidence", "--config", s.conf)
	if code != 0 || !strings.Contains(out, "0 call outcomes recorded, 1 already known") {
		t.Fatalf("evidence: %d %s", code, out)
	}
}
