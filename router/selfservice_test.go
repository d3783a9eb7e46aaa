package router

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"
)

// breakWayWrites makes every insert into smsrouter_number_way fail, the way a
// full disk or a lost connection would, until the returned func mends it.
func breakWayWrites(t *testing.T, store *Store) (mend func()) {
	t.Helper()
	create := `CREATE TRIGGER smsrouter_test_noway BEFORE INSERT ON smsrouter_number_way
		BEGIN SELECT RAISE(ABORT, 'no room'); END`
	if store.Dialect == "mysql" {
		create = `CREATE TRIGGER smsrouter_test_noway BEFORE INSERT ON smsrouter_number_way
			FOR EACH ROW SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = 'no room'`
	}
	if _, err := store.DB.Exec(create); err != nil {
		t.Fatal(err)
	}
	return func() {
		if _, err := store.DB.Exec(`DROP TRIGGER smsrouter_test_noway`); err != nil {
			t.Fatal(err)
		}
	}
}

func TestSetNumberWaysWritesLetterAndWaysTogether(t *testing.T) {
	eachDB(t, func(t *testing.T, dsn string) {
		rg := newRig(t, dsn, nil)
		rg.set("5551001", 'S', "PJSIP/1001")
		ctx := context.Background()
		mend := breakWayWrites(t, rg.store)
		if _, err := rg.store.SetNumberWays(ctx, "5551001", "T", "PJSIP/1001", []NumberWay{{Letter: 'S'}, {Letter: 'V'}}); err == nil {
			t.Fatal("a failed way write reported success")
		}
		if e, err := rg.dir.Lookup(ctx, "5551001"); err != nil || e.Letter != 'S' || len(e.Further) != 0 {
			t.Fatalf("after a failed write: %+v %v (want S alone, as before)", e, err)
		}
		mend()
		if _, err := rg.store.SetNumberWays(ctx, "5551001", "T", "PJSIP/1001", []NumberWay{{Letter: 'S'}, {Letter: 'V'}}); err != nil {
			t.Fatal(err)
		}
		if e, err := rg.dir.Lookup(ctx, "5551001"); err != nil || e.WaysText() != "T,S,V" {
			t.Fatalf("after the write: %+v %v", e, err)
		}
		// A way that cannot work is refused before anything is written.
		_, err := rg.store.SetNumberWays(ctx, "5551001", "S", "DAHDI/g1/1001", []NumberWay{{Letter: 'T'}})
		if !errors.Is(err, ErrBadEntry) {
			t.Fatalf("T on a DAHDI line: %v", err)
		}
		if e, _ := rg.dir.Lookup(ctx, "5551001"); e.WaysText() != "T,S,V" || e.Extension != "PJSIP/1001" {
			t.Fatalf("a refused write changed %+v", e)
		}
	})
}

func TestSelfServiceSetIsOneTransaction(t *testing.T) {
	eachDB(t, func(t *testing.T, dsn string) {
		rg := newRig(t, dsn, func(c *Config) { c.SelfService = SelfService{Enabled: true, Number: "7999"} })
		rg.set("5551001", 'S', "PJSIP/1001")
		ctx := context.Background()
		mend := breakWayWrites(t, rg.store)
		id := rg.submit("5551001", "7999", "SET T,V")
		rg.drain()
		if rec := rg.record(id); rec.State != StateDeferred {
			t.Fatalf("request %s, want deferred while the database fails", rec.State)
		}
		if e, _ := rg.dir.Lookup(ctx, "5551001"); e.WaysText() != "S" {
			t.Fatalf("half a SET was written: %s", e.WaysText())
		}
		mend()
		rg.clock.advance(2 * time.Minute)
		rg.drain()
		if e, _ := rg.dir.Lookup(ctx, "5551001"); e.WaysText() != "T,V" {
			t.Fatalf("after the retry: %s", e.WaysText())
		}
		if r := rg.replies("5551001"); len(r) != 1 || r[0] != "Done: messages reach you by T,V." {
			t.Fatalf("replies %q", r)
		}
	})
}

func TestLockoutReplyNamesTheTime(t *testing.T) {
	waw, err := time.LoadLocation("Europe/Warsaw")
	if err != nil {
		t.Fatal(err)
	}
	now := time.Date(2026, 3, 4, 13, 50, 0, 0, time.UTC) // 14:50 in Warsaw
	if got := lockoutReply(now.Add(50*time.Minute), now, waw); got != "Too many wrong PINs; try again after 15:40." {
		t.Errorf("same day: %q", got)
	}
	if got := lockoutReply(now.Add(10*time.Hour), now, waw); got != "Too many wrong PINs; try again after 5 Mar 00:50." {
		t.Errorf("next day: %q", got)
	}
}

func setPIN(t *testing.T, store *Store, number, pin string) {
	t.Helper()
	if err := store.SetPIN(context.Background(), number, pin, "test", "", time.Now()); err != nil {
		t.Fatal(err)
	}
}

func adminActions(t *testing.T, store *Store, action, target string) []string {
	t.Helper()
	rows, err := store.DB.Query(`SELECT user, detail FROM smsrouter_admin_action WHERE action = ? AND target = ? ORDER BY seq`, action, target)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var user, detail string
		if err := rows.Scan(&user, &detail); err != nil {
			t.Fatal(err)
		}
		out = append(out, user+": "+detail)
	}
	return out
}

func TestSelfServiceLocksOutPINGuessing(t *testing.T) {
	eachDB(t, func(t *testing.T, dsn string) {
		cfg := func(c *Config) { c.SelfService = SelfService{Enabled: true, Number: "7999"} }
		rg := newRig(t, dsn, cfg)
		rg.set("5551001", 'S', "PJSIP/1001")
		setPIN(t, rg.store, "5551001", "4321")
		ctx := context.Background()
		ask := func(text string) string {
			t.Helper()
			id := rg.submit("5551001", "7999", text)
			rg.drain()
			rg.clock.advance(time.Second)
			return id
		}
		// Wrong PINs spread wider than the window do not lock, nor does a
		// missing one, and the right PIN starts the count again.
		for range 4 {
			ask("1111 STATUS")
		}
		rg.clock.advance(DefaultPINWindow)
		ask("2222 STATUS")
		ask("STATUS")
		for range 3 {
			ask("3333 STATUS")
		}
		ask("4321 STATUS")
		for range 4 {
			ask("4444 STATUS")
		}
		for _, r := range rg.replies("5551001") {
			if strings.HasPrefix(r, "Too many") {
				t.Fatalf("locked too soon: %q", rg.replies("5551001"))
			}
		}
		// The fifth wrong PIN in a row locks the number; the reply says until when.
		at := rg.clock.now()
		lockID := ask("5555 STATUS")
		until := at.Add(DefaultPINLockout).Truncate(time.Minute).Add(time.Minute)
		replies := rg.replies("5551001")
		if last := replies[0]; last != lockoutReply(until, at, time.UTC) || !strings.Contains(last, until.Format("15:04")) {
			t.Fatalf("lockout reply %q, want one naming %s", last, until.Format("15:04"))
		}
		if rec := rg.record(lockID); !strings.Contains(rec.Detail, "locked out") || !strings.Contains(rec.Detail, "admin_action") {
			t.Errorf("lockout journal detail %s", rec.Detail)
		}
		if a := adminActions(t, rg.store, "pin lockout", "5551001"); len(a) != 1 || !strings.HasPrefix(a[0], "selfservice: 5 wrong PINs") {
			t.Errorf("admin actions %q", a)
		}
		// While locked, even the right PIN is refused, without a reply, also
		// by a new process (the lock is in the database).
		n := len(rg.replies("5551001"))
		id := ask("4321 SET F")
		rg.r = rg.newRouter(rg.r.cfg)
		id2 := ask("4321 SET F")
		for _, x := range []string{id, id2} {
			if rec := rg.record(x); rec.State != StateDropped || !strings.Contains(rec.LastError, "locked out") {
				t.Errorf("request while locked: %s %q", rec.State, rec.LastError)
			}
		}
		if e, _ := rg.dir.Lookup(ctx, "5551001"); e.Letter != 'S' {
			t.Errorf("a locked number changed its letter to %c", e.Letter)
		}
		if got := len(rg.replies("5551001")); got != n {
			t.Errorf("%d replies while locked, want none", got-n)
		}
		x, err := ExplainMessage(ctx, rg.r.cfg, rg.store, rg.dir, ExplainRequest{From: "5551001", To: "7999", Text: "4321 STATUS", MR: -1, Now: rg.clock.now()})
		if err != nil || x.Outcome != StateDropped || !strings.Contains(fmt.Sprint(x.Steps), "locked out") {
			t.Errorf("explain while locked: %+v %v", x, err)
		}
		// Once the lockout ends, the right PIN works again.
		rg.clock.t = until.Add(time.Second)
		ask("4321 SET F")
		if e, _ := rg.dir.Lookup(ctx, "5551001"); e.Letter != 'F' {
			t.Errorf("after the lockout: letter %c", e.Letter)
		}
	})
}

func TestPINFailureCountsEachRequestOnce(t *testing.T) {
	eachDB(t, func(t *testing.T, dsn string) {
		rg := newRig(t, dsn, nil)
		rg.set("5551001", 'S', "PJSIP/1001")
		ctx := context.Background()
		now := time.Now()
		for i := range 5 { // one request, retried after crashes
			if _, locked, err := rg.store.pinFailed(ctx, "5551001", "req-1", now.Add(time.Duration(i)*time.Second), 2, time.Hour, time.Hour); err != nil || locked {
				t.Fatalf("try %d: locked %v, %v", i, locked, err)
			}
		}
		if _, locked, err := rg.store.pinFailed(ctx, "5551001", "req-2", now, 2, time.Hour, time.Hour); err != nil || !locked {
			t.Fatalf("second request: locked %v, %v", locked, err)
		}
		if until, id, err := rg.store.pinLock(ctx, "5551001"); err != nil || id != "req-2" || !until.After(now) {
			t.Fatalf("lock %v %q %v", until, id, err)
		}
		// An admin unlocks (or sets a PIN): the lock and the count are gone.
		if err := rg.store.Unlock(ctx, "5551001", "admin", now); err != nil {
			t.Fatal(err)
		}
		if until, _, err := rg.store.pinLock(ctx, "5551001"); err != nil || !until.IsZero() {
			t.Fatalf("after unlock: %v %v", until, err)
		}
	})
}

func TestSelfServicePINBySMS(t *testing.T) {
	eachDB(t, func(t *testing.T, dsn string) {
		rg := newRig(t, dsn, func(c *Config) { c.SelfService = SelfService{Enabled: true, Number: "7999"} })
		rg.set("5551001", 'S', "PJSIP/1001")
		ctx := context.Background()
		pin := func() string {
			t.Helper()
			e, err := rg.directory().Lookup(ctx, "5551001")
			if err != nil {
				t.Fatal(err)
			}
			return e.pref.pin
		}
		ask := func(text string) string {
			t.Helper()
			rg.submit("5551001", "7999", text)
			rg.drain()
			rg.clock.advance(time.Second)
			return rg.replies("5551001")[0] // the journal lists the newest first
		}
		// A first PIN by SMS only where the admin allows it.
		if r := ask("PIN 5678"); r != replyNoFirstPIN || pin() != "" {
			t.Fatalf("first PIN not allowed: %q, pin %q", r, pin())
		}
		cfg := rg.r.cfg
		cfg.SelfService.FirstPINBySMS = true
		rg.r = rg.newRouter(cfg)
		if r := ask("PIN 5678"); !strings.HasPrefix(r, "Done: your PIN is set") || pin() != "5678" {
			t.Fatalf("first PIN: %q, pin %q", r, pin())
		}
		if r := ask("PIN 1111"); r != replyWrongPIN || pin() != "5678" {
			t.Fatalf("PIN without the old one: %q, pin %q", r, pin())
		}
		if r := ask("5678 PIN 2468"); !strings.HasPrefix(r, "Done: your PIN is changed") || pin() != "2468" {
			t.Fatalf("change: %q, pin %q", r, pin())
		}
		if r := ask("2468 STATUS"); !strings.HasPrefix(r, "5551001: SET S") {
			t.Fatalf("status with the new PIN: %q", r)
		}
		for _, r := range rg.replies("5551001") {
			if strings.Contains(r, "2468") || strings.Contains(r, "5678") {
				t.Errorf("a reply shows the PIN: %q", r)
			}
		}
		cfg.SelfService.RequirePIN = true
		rg.r = rg.newRouter(cfg)
		if r := ask("2468 PIN OFF"); !strings.HasPrefix(r, "A PIN is required") || pin() != "2468" {
			t.Fatalf("PIN OFF where one is required: %q, pin %q", r, pin())
		}
		cfg.SelfService.RequirePIN = false
		rg.r = rg.newRouter(cfg)
		if r := ask("2468 PIN OFF"); r != "Done: your PIN is removed." || pin() != "" {
			t.Fatalf("PIN OFF: %q, pin %q", r, pin())
		}
		if a := adminActions(t, rg.store, "pin set", "5551001"); len(a) != 2 || !strings.HasPrefix(a[0], "selfservice:5551001: by SMS, request ") {
			t.Errorf("admin actions %q", a)
		}
		if a := adminActions(t, rg.store, "pin removed", "5551001"); len(a) != 1 {
			t.Errorf("admin actions %q", a)
		}
	})
}

// A PIN change retried after a crash (the PIN is already the new one) is
// answered as done, not counted as a wrong guess; another request with the
// same text is a wrong guess.
func TestPINChangeRetriedAfterACrash(t *testing.T) {
	eachDB(t, func(t *testing.T, dsn string) {
		rg := newRig(t, dsn, func(c *Config) { c.SelfService = SelfService{Enabled: true, Number: "7999"} })
		rg.set("5551001", 'S', "PJSIP/1001")
		setPIN(t, rg.store, "5551001", "5678")
		ctx := context.Background()
		ask := func(id string) string {
			t.Helper()
			e, err := rg.directory().Lookup(ctx, "5551001")
			if err != nil {
				t.Fatal(err)
			}
			reply, err := rg.r.selfServiceReply(ctx, id, e, e.pref, "5678 PIN 2468", map[string]any{})
			if err != nil {
				t.Fatal(err)
			}
			return reply
		}
		first, again, other := ask("req-1"), ask("req-1"), ask("req-2")
		if !strings.HasPrefix(first, "Done: your PIN is changed") || !strings.HasPrefix(again, "Done: your PIN is changed") {
			t.Fatalf("change %q, its retry %q", first, again)
		}
		if other != replyWrongPIN {
			t.Fatalf("another request with the old PIN: %q", other)
		}
		var n int
		if err := rg.store.DB.QueryRow(`SELECT COUNT(*) FROM smsrouter_pin_failure WHERE Account = '5551001'`).Scan(&n); err != nil || n != 1 {
			t.Fatalf("wrong PINs counted: %d %v, want 1 (req-2 only)", n, err)
		}
	})
}
