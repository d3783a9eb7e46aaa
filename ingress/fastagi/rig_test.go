package fastagi

import (
	"context"
	"sync"
	"testing"
	"time"

	"smsrouter/channels"
	"smsrouter/channels/sms"
	"smsrouter/internal/testdb"
	"smsrouter/router"
)

// rig is a real router on a real spool and database, for the handlers that queue
// messages and wait for their fate.
type rig struct {
	t       *testing.T
	store   *router.Store
	dir     router.Directory
	journal *router.Journal
	r       *router.Router
}

func newRig(t *testing.T, dsn string) *rig {
	t.Helper()
	store, err := router.OpenStore(dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	if _, err := store.Migrate(context.Background()); err != nil {
		t.Fatal(err)
	}
	spool := t.TempDir()
	ch, err := sms.New(sms.Config{Spool: spool, SMSCNumber: "9001", Location: time.UTC})
	if err != nil {
		t.Fatal(err)
	}
	rg := &rig{t: t, store: store, dir: router.NewSQLDirectory(store), journal: router.NewJournal(store)}
	rg.r, err = router.New(router.Config{Spool: spool, SMSCNumber: "9001", Location: time.UTC},
		rg.dir, rg.journal, map[byte]channels.Channel{'S': ch}, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { rg.r.Close() })
	return rg
}

func (rg *rig) set(number string, letter byte, ext string) {
	rg.t.Helper()
	if err := rg.store.Set(context.Background(), router.Entry{Number: number, Letter: letter, Extension: ext}); err != nil {
		rg.t.Fatal(err)
	}
}

func (rg *rig) drain() {
	rg.t.Helper()
	if _, err := rg.r.Drain(context.Background()); err != nil {
		rg.t.Fatal(err)
	}
}

// stateOf lists the journal states of the messages from oa to da.
func (rg *rig) stateOf(oa, da string) []router.State {
	rg.t.Helper()
	recs, err := rg.journal.List(context.Background(), router.Filter{Number: oa})
	if err != nil {
		rg.t.Fatal(err)
	}
	var out []router.State
	for _, r := range recs {
		if r.OA == oa && r.DA == da {
			out = append(out, r.State)
		}
	}
	return out
}

// downDirectory is a database that cannot be reached.
type downDirectory struct{}

func (downDirectory) Lookup(context.Context, string) (router.Entry, error) {
	return router.Entry{}, router.ErrDirectoryUnavailable
}

func (downDirectory) LookupMany(context.Context, []string) (map[string]router.Entry, error) {
	return nil, router.ErrDirectoryUnavailable
}

func eachDB(t *testing.T, f func(t *testing.T, dsn string)) { testdb.Each(t, f) }

func testdbSQLite(t *testing.T) string { return testdb.SQLite(t) }

// fakeClock is a clock the test moves by hand.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}
