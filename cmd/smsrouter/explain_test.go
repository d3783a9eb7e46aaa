package main

import (
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

// TestExplainMatchesTheNextDrain: for each kind of way a message can go, explain
// says what a drain run right after it records, letter and all, and leaves the
// disk as it was (it only reads).
func TestExplainMatchesTheNextDrain(t *testing.T) {
	testdb.Each(t, func(t *testing.T, dsn string) {
		if strings.HasPrefix(dsn, "sqlite:") {
			dsn = "" // the bed's own file, inside the tree compared below
		}
		// Quiet hours that hold now, whatever the hour the test runs.
		now := time.Now().UTC()
		quiet := fmt.Sprintf("%02d:00-%02d:00", (now.Hour()+23)%24, (now.Hour()+2)%24)
		b := newBed(t, dsn, fmt.Sprintf("[quiet]\ndefault = %q\ntime_zone = \"UTC\"\n[selfservice]\nenabled = true\nnumber = \"7999\"\n", quiet),
			append(stdEntries,
				router.Entry{Number: "5552001", Letter: 'V', Extension: "PJSIP/2001"},
				router.Entry{Number: "5552002", Letter: 'N', Extension: "PJSIP/2002"},
				router.Entry{Number: "5552003", Letter: 'T', Extension: "PJSIP/2003"})...)
		ctx := context.Background()
		for _, q := range []string{
			"INSERT INTO smsrouter_number_way (Account, Position, Letter, Extension) VALUES ('5551001', 1, 'V', '')",
			"INSERT INTO smsrouter_number_pref (Account, QuietStart) VALUES ('5551001', 'off')",
			"INSERT INTO smsrouter_number_pref (Account, QuietStart) VALUES ('5550001', 'off')",
		} {
			if _, err := b.store.DB.Exec(q); err != nil {
				t.Fatal(err)
			}
		}
		for _, tc := range []struct {
			from, to, text string
			outcome        router.State
			letter         string
		}{
			{"5550001", "5551001", "to an SMS phone", router.StateDelivered, "S"},
			{"5550001", "5552001", "to a voice line in its quiet hours", router.StateDeferred, "V"},
			{"5550001", "5559999", "to nobody", router.StateBounced, ""},
			{"5550001", "5552002", "to a disabled number", router.StateBounced, "N"},
			{"5550001", "5552003", "T without [sip]", router.StateBounced, "T"},
			{"5550002", "7999", "SET F", router.StateDelivered, "C"},
		} {
			// The database itself: TestReadOnlyCommandsCreateNothing (this test
			// holds a connection of its own, whose WAL comes and goes).
			before := tree(t, b.spool)
			out, errOut, _ := b.run(ctx, "explain", "--from", tc.from, "--to", tc.to, "--text", tc.text, "--json", "--config", b.conf)
			if d := diffTrees(before, tree(t, b.spool)); len(d) > 0 && dsn != "" {
				t.Errorf("explain wrote to the disk: %v", d)
			}
			var x router.Explanation
			if err := json.Unmarshal([]byte(out), &x); err != nil {
				t.Fatalf("explain %s: %v\n%s%s", tc.to, err, out, errOut)
			}
			if x.Outcome != tc.outcome || (tc.outcome == router.StateDelivered && x.Letter != tc.letter) {
				t.Errorf("explain %s: %s by %q, want %s by %s\n%s", tc.to, x.Outcome, x.Letter, tc.outcome, tc.letter, out)
			}
			sendOut, errOut, code := b.run(ctx, "send", "--from", tc.from, "--to", tc.to, tc.text, "--config", b.conf)
			if code != 0 {
				t.Fatalf("send: %s", errOut)
			}
			id := strings.TrimSpace(sendOut)
			drained, dcode := b.drain(ctx)
			rec, err := freshJournalGet(t, b.dsn, id)
			if err != nil {
				j, je, _ := b.run(ctx, "journal", "--config", b.conf)
				t.Fatalf("%s: %v\ndrain %d: %s\n%s%s", tc.to, err, dcode, drained, j, je)
			}
			if rec.State != x.Outcome || (rec.Letter != "" && x.Letter != "" && rec.Letter != x.Letter) {
				t.Errorf("%s: explain said %s by %q, the drain recorded %s by %q (%s)", tc.to, x.Outcome, x.Letter, rec.State, rec.Letter, rec.LastError)
			}
			if x.HeldUntil != nil && !rec.NextAttempt.Equal(*x.HeldUntil) {
				t.Errorf("held until %v, the drain deferred it to %v", *x.HeldUntil, rec.NextAttempt)
			}
		}
		// The self-service request changed the sender's entry: explain now says fax.
		out, _, _ := b.run(ctx, "explain", "--from", "5550001", "--to", "5550002", "--config", b.conf)
		if !strings.Contains(out, "letter F") || !strings.Contains(out, "quiet hours:") {
			t.Errorf("after SET F:\n%s", out)
		}
		// The further way is listed.
		out, _, _ = b.run(ctx, "explain", "--from", "5550002", "--to", "5551001", "--config", b.conf)
		if !strings.Contains(out, "1. V on PJSIP/1001") {
			t.Errorf("further ways missing:\n%s", out)
		}
		// A phone's message and its resend: explain sees the duplicate the drain would.
		at := time.Now().UTC().Add(-time.Second).Format("2006-01-02T15:04:05")
		writeFile(t, filepath.Join(b.morx, "5550001.x"), []byte("oa=5550001\nda=5551003\nud=twice\nmr=9\nscts="+at+"\n"))
		b.drain(ctx)
		out, _, code := b.run(ctx, "explain", "--from", "5550001", "--to", "5551003", "--text", "twice", "--mr", "9", "--config", b.conf)
		if code != 1 || !strings.Contains(out, "duplicate of ") || !strings.Contains(out, "outcome: duplicate") {
			t.Errorf("explain of a resend: exit %d\n%s", code, out)
		}
		writeFile(t, filepath.Join(b.morx, "5550001.y"), []byte("oa=5550001\nda=5551003\nud=twice\nmr=9\nscts="+at+"\n"))
		if out, _ := b.drain(ctx); !strings.Contains(out, "duplicate") {
			t.Errorf("the drain after it: %s", out)
		}
		if _, err := os.Stat(filepath.Join(b.morx, "5550001.y")); err == nil {
			t.Errorf("resend left in morx")
		}
	})
}

// freshJournalGet reads a journal row on a connection of its own, as a new
// process would.
func freshJournalGet(t *testing.T, dsn, id string) (router.Record, error) {
	t.Helper()
	store, err := router.OpenStore(dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	return router.NewJournal(store).Get(context.Background(), id)
}
