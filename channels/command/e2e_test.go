package command_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"smsrouter/asteriskconf/smsq"
	"smsrouter/channels"
	"smsrouter/channels/command"
	"smsrouter/channels/sms"
	"smsrouter/internal/testdb"
	"smsrouter/router"
)

// TestThroughTheRouter runs the real router with the S and C channels on a
// temporary spool: a phone asks service 1000 for HELP and gets the list back as an
// SMS from 1000; a service (2000) whose reply reaches another service is not
// executed again, so two services cannot ping-pong.
func TestThroughTheRouter(t *testing.T) {
	testdb.Each(t, func(t *testing.T, dsn string) {
		ctx := context.Background()
		store, err := router.OpenStore(dsn)
		if err != nil {
			t.Fatal(err)
		}
		defer store.Close()
		if _, err := store.Migrate(ctx); err != nil {
			t.Fatal(err)
		}
		for _, e := range []router.Entry{
			{Number: "5551001", Letter: 'S', Extension: "PJSIP/1001"},
			{Number: "1000", Letter: 'C'},
			{Number: "2000", Letter: 'C'},
		} {
			if err := store.Set(ctx, e); err != nil {
				t.Fatal(err)
			}
		}
		spool := t.TempDir()
		smsCh, err := sms.New(sms.Config{Spool: spool, SMSCNumber: "9001", Location: time.UTC})
		if err != nil {
			t.Fatal(err)
		}
		cmdCh, err := command.New(command.Config{Rules: []command.Rule{
			{Numbers: []string{"1000"}, Keyword: "HELP", Description: "this list", Action: "help", Reply: "Commands:\n{{.Output}}"},
			{Numbers: []string{"1000"}, Keyword: "ECHO", Description: "your text back", Action: "echo"},
			// 2000 answers everything: were replies executed, 1000 and 2000 would
			// answer each other until MaxDepth.
			{Numbers: []string{"2000"}, Action: "reply", Reply: "2000 got: {{.Text}}"},
		}}, command.Env{Inbox: router.InboxDir(filepath.Join(spool, "smsrouter")), WorkDir: filepath.Join(spool, "smsrouter"), Location: time.UTC})
		if err != nil {
			t.Fatal(err)
		}
		journal := router.NewJournal(store)
		r, err := router.New(router.Config{Spool: spool, SMSCNumber: "9001", Location: time.UTC},
			router.NewSQLDirectory(store), journal, map[byte]channels.Channel{'S': smsCh, 'C': cmdCh}, nil)
		if err != nil {
			t.Fatal(err)
		}
		defer r.Close()

		helpID, err := r.Submit("5551001", "1000", "help")
		if err != nil {
			t.Fatal(err)
		}
		loopID, err := r.Submit("2000", "1000", "HELP")
		if err != nil {
			t.Fatal(err)
		}
		sum, err := r.Drain(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if !sum.Clean() {
			t.Fatalf("drain not clean: %+v", sum.Outcomes)
		}

		// The phone's queue holds the reply, from the service number.
		mttx := filepath.Join(spool, "sms", "mttx")
		entries, _ := os.ReadDir(mttx)
		if len(entries) != 1 || !strings.HasPrefix(entries[0].Name(), "5551001.") {
			t.Fatalf("mttx holds %v, want one file for 5551001", entries)
		}
		data, _ := os.ReadFile(filepath.Join(mttx, entries[0].Name()))
		got, err := smsq.Parse(data, time.UTC)
		if err != nil {
			t.Fatal(err)
		}
		if got.OA != "1000" || got.Text != "Commands:\nHELP - this list\nECHO - your text back" {
			t.Fatalf("reply from %s: %q", got.OA, got.Text)
		}
		if calls, _ := filepath.Glob(filepath.Join(spool, "outgoing", "smsrouter.mttx.5551001.*")); len(calls) != 1 {
			t.Fatalf("call files %v", calls)
		}

		// Four messages in all: the two asks, 1000's reply to the phone, 1000's
		// reply to 2000 — which 2000 received but did not execute.
		if len(sum.Outcomes) != 4 {
			t.Fatalf("%d outcomes, want 4: %+v", len(sum.Outcomes), sum.Outcomes)
		}
		var replyTo2000 *router.Outcome
		for i, o := range sum.Outcomes {
			if o.State != router.StateDelivered {
				t.Errorf("%s→%s: %s %s", o.OA, o.DA, o.State, o.Error)
			}
			if o.OA == "1000" && o.DA == "2000" {
				replyTo2000 = &sum.Outcomes[i]
			}
		}
		if replyTo2000 == nil {
			t.Fatalf("no reply to 2000 among %+v", sum.Outcomes)
		}
		if len(replyTo2000.Files) != 0 {
			t.Fatalf("the reply to service 2000 was executed: %v", replyTo2000.Files)
		}
		rec, err := journal.Get(ctx, replyTo2000.ID)
		if err != nil {
			t.Fatal(err)
		}
		if rec.Letter != "C" || !strings.Contains(rec.Detail, "not executed") {
			t.Fatalf("journal of the reply to 2000: %+v", rec)
		}
		for _, id := range []string{helpID, loopID} {
			rec, err := journal.Get(ctx, id)
			if err != nil {
				t.Fatal(err)
			}
			if rec.State != router.StateDelivered || !strings.Contains(rec.Detail, "reply_id") {
				t.Errorf("journal of %s: %+v", id, rec)
			}
		}
		if left, _ := os.ReadDir(filepath.Join(spool, "sms", "morx")); len(left) != 0 {
			t.Fatalf("morx not empty: %v", left)
		}
	})
}

// TestNumberNoRuleServesIsBounced: a message to a C number that no rule serves
// is bounced with the no_service notice instead of being reported delivered
// to nobody.
func TestNumberNoRuleServesIsBounced(t *testing.T) {
	ctx := context.Background()
	store, err := router.OpenStore(testdb.SQLite(t))
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	if _, err := store.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	for _, e := range []router.Entry{{Number: "5551001", Letter: 'S', Extension: "PJSIP/1001"}, {Number: "3000", Letter: 'C'}} {
		if err := store.Set(ctx, e); err != nil {
			t.Fatal(err)
		}
	}
	spool := t.TempDir()
	smsCh, err := sms.New(sms.Config{Spool: spool, SMSCNumber: "9001", Location: time.UTC})
	if err != nil {
		t.Fatal(err)
	}
	cmdCh, err := command.New(command.Config{Rules: []command.Rule{{Numbers: []string{"1000"}, Action: "echo"}}},
		command.Env{Inbox: router.InboxDir(filepath.Join(spool, "smsrouter")), Location: time.UTC})
	if err != nil {
		t.Fatal(err)
	}
	journal := router.NewJournal(store)
	r, err := router.New(router.Config{Spool: spool, SMSCNumber: "9001", Location: time.UTC},
		router.NewSQLDirectory(store), journal, map[byte]channels.Channel{'S': smsCh, 'C': cmdCh}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	id, err := r.Submit("5551001", "3000", "hello?")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.Drain(ctx); err != nil {
		t.Fatal(err)
	}
	rec, err := journal.Get(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if rec.State != router.StateBounced || !strings.Contains(rec.LastError, "no [[command.rule]] serves number 3000") {
		t.Fatalf("journal: %s %q, want bounced saying no rule serves 3000", rec.State, rec.LastError)
	}
	entries, _ := os.ReadDir(filepath.Join(spool, "sms", "mttx"))
	if len(entries) != 1 {
		t.Fatalf("mttx holds %v, want the notice to 5551001", entries)
	}
	data, _ := os.ReadFile(filepath.Join(spool, "sms", "mttx", entries[0].Name()))
	got, err := smsq.Parse(data, time.UTC)
	if err != nil {
		t.Fatal(err)
	}
	if got.OA != "9001" || got.Text != "Cannot deliver SMS to 3000. Its delivery service is not available." {
		t.Fatalf("notice from %s: %q, want the no_service notice", got.OA, got.Text)
	}
}
