package router

import (
	"context"
	"errors"
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
