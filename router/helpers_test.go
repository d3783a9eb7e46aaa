package router

import (
	"context"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"smsrouter/asteriskconf/smsq"
	"smsrouter/channels"
	"smsrouter/channels/sms"
	"smsrouter/internal/testdb"
)

// rig is a router on a temporary spool with a real database and the real S channel.
type rig struct {
	t       *testing.T
	spool   string
	store   *Store
	journal *Journal
	dir     Directory
	r       *Router
	clock   *fakeClock
}

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

func newRig(t *testing.T, dsn string, mutate func(*Config)) *rig {
	t.Helper()
	store, err := OpenStore(dsn)
	if err != nil {
		t.Fatal(err)
	}
	return rigOn(t, store, mutate)
}

// rigOn builds a rig on an open store (closed with the test).
func rigOn(t *testing.T, store *Store, mutate func(*Config)) *rig {
	t.Helper()
	t.Cleanup(func() { store.Close() })
	if _, err := store.Migrate(context.Background()); err != nil {
		t.Fatal(err)
	}
	rg := &rig{t: t, spool: t.TempDir(), store: store, journal: NewJournal(store), clock: &fakeClock{t: time.Now()}}
	rg.dir = NewSQLDirectory(store)
	cfg := Config{Spool: rg.spool, SMSCNumber: "9001", Location: time.UTC, RetryMin: time.Second, RetryMax: time.Minute}
	if mutate != nil {
		mutate(&cfg)
	}
	rg.r = rg.newRouter(cfg)
	return rg
}

func (rg *rig) newRouter(cfg Config) *Router {
	rg.t.Helper()
	ch, err := sms.New(sms.Config{Spool: cfg.Spool, SMSCNumber: cfg.SMSCNumber, Location: time.UTC})
	if err != nil {
		rg.t.Fatal(err)
	}
	r, err := New(cfg, rg.directory(), rg.journal, map[byte]channels.Channel{'S': ch}, nil)
	if err != nil {
		rg.t.Fatal(err)
	}
	r.now = rg.clock.now
	rg.t.Cleanup(func() { r.Close() })
	return r
}

// directory lets a test swap the directory behind the router.
func (rg *rig) directory() Directory { return dirFunc(func() Directory { return rg.dir }) }

type dirFunc func() Directory

func (f dirFunc) Lookup(ctx context.Context, n string) (Entry, error) { return f().Lookup(ctx, n) }
func (f dirFunc) LookupMany(ctx context.Context, ns []string) (map[string]Entry, error) {
	return f().LookupMany(ctx, ns)
}

// downDirectory is a database that cannot be reached.
type downDirectory struct{}

func (downDirectory) Lookup(context.Context, string) (Entry, error) {
	return Entry{}, ErrDirectoryUnavailable
}
func (downDirectory) LookupMany(context.Context, []string) (map[string]Entry, error) {
	return nil, ErrDirectoryUnavailable
}

func (rg *rig) set(number string, letter byte, ext string) {
	rg.t.Helper()
	if err := rg.store.Set(context.Background(), Entry{Number: number, Letter: letter, Extension: ext}); err != nil {
		rg.t.Fatal(err)
	}
}

// morx drops a file into sms/morx the way app_sms does (dot name, then rename).
func (rg *rig) morx(name, body string) {
	rg.t.Helper()
	rg.place(filepath.Join(rg.spool, "sms", "morx"), name, body)
}

// inbox queues a file as smsrouter's own ingresses do (its name is trusted).
func (rg *rig) inbox(name, body string) {
	rg.t.Helper()
	rg.place(InboxDir(filepath.Join(rg.spool, "smsrouter")), name, body)
}

func (rg *rig) place(dir, name, body string) {
	rg.t.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		rg.t.Fatal(err)
	}
	tmp := filepath.Join(dir, "."+name)
	if err := os.WriteFile(tmp, []byte(body), 0o644); err != nil {
		rg.t.Fatal(err)
	}
	if err := os.Rename(tmp, filepath.Join(dir, name)); err != nil {
		rg.t.Fatal(err)
	}
}

func (rg *rig) drain() *Summary {
	rg.t.Helper()
	sum, err := rg.r.Drain(context.Background())
	if err != nil {
		rg.t.Fatalf("drain: %v", err)
	}
	return sum
}

// delivered returns the texts waiting in sms/mttx per queue, parts joined in order.
func (rg *rig) delivered() map[string][]string {
	rg.t.Helper()
	dir := filepath.Join(rg.spool, "sms", "mttx")
	entries, _ := os.ReadDir(dir)
	type part struct {
		seq  int
		text string
	}
	byMsg := map[string][]part{}
	queueOf := map[string]string{}
	for _, e := range entries {
		data, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			rg.t.Fatal(err)
		}
		m, err := smsq.Parse(data, time.UTC)
		if err != nil {
			rg.t.Fatalf("our own mttx file %s does not parse: %v", e.Name(), err)
		}
		// <queue>.<id>-<n>
		queue, rest, _ := strings.Cut(e.Name(), ".")
		id := rest[:strings.LastIndex(rest, "-")]
		seq := 1
		if _, _, s, ok := m.Concat(); ok {
			seq = int(s)
		}
		byMsg[id] = append(byMsg[id], part{seq, m.Text})
		queueOf[id] = queue
	}
	out := map[string][]string{}
	ids := make([]string, 0, len(byMsg))
	for id := range byMsg {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	for _, id := range ids {
		ps := byMsg[id]
		sort.Slice(ps, func(i, j int) bool { return ps[i].seq < ps[j].seq })
		var b strings.Builder
		for _, p := range ps {
			b.WriteString(p.text)
		}
		out[queueOf[id]] = append(out[queueOf[id]], b.String())
	}
	return out
}

func (rg *rig) files(sub string) []string {
	entries, _ := os.ReadDir(filepath.Join(rg.spool, sub))
	var out []string
	for _, e := range entries {
		out = append(out, e.Name())
	}
	return out
}

func (rg *rig) records() []Record {
	rg.t.Helper()
	recs, err := rg.journal.List(context.Background(), Filter{})
	if err != nil {
		rg.t.Fatal(err)
	}
	return recs
}

func (rg *rig) stateOf(oa, da string) []State {
	var out []State
	for _, r := range rg.records() {
		if r.OA == oa && r.DA == da {
			out = append(out, r.State)
		}
	}
	return out
}

// assertIdle checks that nothing is left half-done in the work folders.
func (rg *rig) assertIdle() {
	rg.t.Helper()
	if f := rg.files("sms/morx"); len(f) > 0 {
		rg.t.Errorf("morx not empty: %v", f)
	}
	if f := rg.files("smsrouter/stage"); len(f) > 0 {
		rg.t.Errorf("stage not empty: %v", f)
	}
	claims, _ := filepath.Glob(filepath.Join(rg.spool, "smsrouter", "claimed", "*", "*"))
	for _, c := range claims {
		if filepath.Base(c) != ".lock" {
			rg.t.Errorf("left claimed: %s", c)
		}
	}
}

func eachDB(t *testing.T, f func(t *testing.T, dsn string)) { testdb.Each(t, f) }

func testdbSQLite(t *testing.T) string { return testdb.SQLite(t) }
