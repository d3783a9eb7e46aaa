package dlr

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"sync"
	"testing"
	"time"

	"smsrouter/internal/testdb"
	"smsrouter/router"
)

func TestDueMapsStatesToTypes(t *testing.T) {
	rec := func(st router.State, attempts int) *router.Record {
		return &router.Record{State: st, Attempts: attempts}
	}
	all := AllTypes
	for _, c := range []struct {
		name       string
		mask, sent Type
		rec        *router.Record
		due        []Type
		done       bool
	}{
		{"queued, everything asked", all, 0, nil, []Type{Accepted}, false},
		{"queued, only finals asked", Delivered | Failed, 0, nil, nil, false},
		{"queued, only accepted asked and sent", Accepted, Accepted, nil, nil, true},
		{"deferred", all, Accepted, rec(router.StateDeferred, 1), []Type{Buffered}, false},
		{"deferred, buffered sent", all, Accepted | Buffered, rec(router.StateDeferred, 2), nil, false},
		{"delivered first time", all, 0, rec(router.StateDelivered, 0), []Type{Accepted, Delivered}, false},
		{"delivered after a deferral", all, Accepted, rec(router.StateDelivered, 1), []Type{Buffered, Delivered}, false},
		{"delivered, all sent", all, Accepted | Delivered, rec(router.StateDelivered, 0), nil, true},
		{"bounced", Delivered | Failed, 0, rec(router.StateBounced, 0), []Type{Failed}, false},
		{"expired", Delivered | Failed, 0, rec(router.StateExpired, 3), []Type{Failed}, false},
		{"dropped", Failed, 0, rec(router.StateDropped, 0), []Type{Failed}, false},
		{"rejected, 16 asked", all, Accepted, rec(router.StateRejected, 0), []Type{Rejected}, false},
		{"rejected, 16 not asked", Delivered | Failed, 0, rec(router.StateRejected, 0), []Type{Failed}, false},
		{"delivered, only failure asked", Failed, 0, rec(router.StateDelivered, 0), nil, true},
		{"bits beyond 31 ignored", 64 | Delivered, 0, rec(router.StateDelivered, 0), []Type{Delivered}, false},
	} {
		due, _ := Due(c.mask, c.sent, c.rec)
		if !reflect.DeepEqual(due, c.due) {
			t.Errorf("%s: due %v, want %v", c.name, due, c.due)
		}
		// done is what remains once the due ones are sent.
		sent := c.sent
		for _, d := range due {
			sent |= d
		}
		if _, done := Due(c.mask, sent, c.rec); done != (c.done || (c.rec != nil && c.rec.State.Final())) {
			t.Errorf("%s: done %v after sending", c.name, done)
		}
	}
}

func TestParseMask(t *testing.T) {
	for _, c := range []struct {
		in   string
		want Type
		ok   bool
	}{{"31", 31, true}, {"3", 3, true}, {"0", 0, true}, {"32", 0, false}, {"-1", 0, false}, {"x", 0, false}, {"3x", 0, false}, {"", 0, false}} {
		got, err := ParseMask(c.in)
		if (err == nil) != c.ok || got != c.want {
			t.Errorf("ParseMask(%q) = %v, %v", c.in, got, err)
		}
	}
}

// recorder is a Sender that keeps what it got and fails as told.
type recorder struct {
	mu    sync.Mutex
	got   []Report
	fails map[string]int // id → failures still to come
	err   error          // what a failure returns
}

func (r *recorder) Send(ctx context.Context, rep Report) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.fails[rep.ID] > 0 {
		r.fails[rep.ID]--
		return r.err
	}
	r.got = append(r.got, rep)
	return nil
}

func (r *recorder) types(id string) []Type {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []Type
	for _, g := range r.got {
		if g.ID == id {
			out = append(out, g.Type)
		}
	}
	return out
}

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time          { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) advance(d time.Duration) { c.mu.Lock(); c.t = c.t.Add(d); c.mu.Unlock() }

type bed struct {
	t       *testing.T
	store   *router.Store
	journal *router.Journal
	reqs    *Store
	clock   *clock
}

func newBed(t *testing.T, dsn string) *bed {
	t.Helper()
	st, err := router.OpenStore(dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	if _, err := st.Migrate(context.Background()); err != nil {
		t.Fatal(err)
	}
	c := &clock{t: time.Now().Truncate(time.Millisecond)}
	reqs := NewStore(st)
	reqs.now = c.now
	return &bed{t: t, store: st, journal: router.NewJournal(st), reqs: reqs, clock: c}
}

func (b *bed) dispatcher(s Sender, mutate func(*Config)) *Dispatcher {
	b.t.Helper()
	cfg := Config{Senders: map[string]Sender{"test": s}, RetryMin: time.Second, RetryMax: 4 * time.Second, GiveUp: time.Hour, Now: b.clock.now}
	if mutate != nil {
		mutate(&cfg)
	}
	d, err := NewDispatcher(b.store, b.journal, cfg)
	if err != nil {
		b.t.Fatal(err)
	}
	return d
}

func (b *bed) request(id string, mask Type, queued bool) {
	b.t.Helper()
	ctx := context.Background()
	if err := b.reqs.Add(ctx, Request{ID: id, Kind: "test", Target: "x", Mask: mask, Info: map[string]string{"from": "5550001"}}); err != nil {
		b.t.Fatal(err)
	}
	if queued {
		if err := b.reqs.Queued(ctx, id); err != nil {
			b.t.Fatal(err)
		}
	}
}

func (b *bed) put(id string, st router.State, attempts int, parts ...string) {
	b.t.Helper()
	b.clock.advance(time.Millisecond) // every write is newer than the last
	rec := router.Record{ID: id, Received: b.clock.now(), Updated: b.clock.now(), OA: "5550001", DA: "5551001", State: st,
		Attempts: attempts, Detail: "{}", Parts: parts}
	if err := b.journal.Put(context.Background(), "", []router.Record{rec}); err != nil {
		b.t.Fatal(err)
	}
}

func (b *bed) pass(d *Dispatcher) int {
	b.t.Helper()
	n, err := d.Pass(context.Background())
	if err != nil {
		b.t.Fatal(err)
	}
	return n
}

func (b *bed) status(id string) Status {
	b.t.Helper()
	sts, err := b.reqs.Of(context.Background(), id)
	if err != nil || len(sts) != 1 {
		b.t.Fatalf("status of %s: %v %v", id, sts, err)
	}
	return sts[0]
}

func TestDispatcherFollowsTheJournal(t *testing.T) {
	testdb.Each(t, func(t *testing.T, dsn string) {
		b := newBed(t, dsn)
		rec := &recorder{}
		d := b.dispatcher(rec, nil)
		id := router.NewID(b.clock.now())

		// Stored but not yet queued: nothing may be said, not even "accepted".
		b.request(id, AllTypes, false)
		if n := b.pass(d); n != 0 {
			t.Fatalf("a request whose message is not queued sent %d reports", n)
		}
		if err := b.reqs.Queued(context.Background(), id); err != nil {
			t.Fatal(err)
		}
		b.pass(d)
		b.put(id, router.StateDeferred, 1)
		b.pass(d)
		b.pass(d) // nothing changed: nothing more
		b.put(id, router.StateDeferred, 2)
		b.pass(d) // deferred again: 4 only once
		b.put(id, router.StateDelivered, 2)
		b.pass(d)
		b.pass(d)
		if got, want := rec.types(id), []Type{Accepted, Buffered, Delivered}; !reflect.DeepEqual(got, want) {
			t.Fatalf("sent %v, want %v", got, want)
		}
		st := b.status(id)
		if st.State != "done" || st.Sent != Accepted|Buffered|Delivered {
			t.Fatalf("status %+v", st)
		}
		if last := rec.got[len(rec.got)-1]; last.Record == nil || last.Record.State != router.StateDelivered || last.Info["from"] != "5550001" {
			t.Fatalf("the final report lacks its record or info: %+v", last)
		}
	})
}

func TestDispatcherUnqueuedRequestWaitsForTheJournal(t *testing.T) {
	// The process died between storing the request and queueing the file, but
	// the file did make it: the journal row, when it comes, proves it.
	b := newBed(t, testdb.SQLite(t))
	rec := &recorder{}
	d := b.dispatcher(rec, nil)
	id := router.NewID(b.clock.now())
	b.request(id, AllTypes, false)
	b.pass(d)
	b.put(id, router.StateBounced, 0)
	b.pass(d)
	if got, want := rec.types(id), []Type{Accepted, Failed}; !reflect.DeepEqual(got, want) {
		t.Fatalf("sent %v, want %v", got, want)
	}
}

func TestDispatcherRetriesThenGivesUp(t *testing.T) {
	testdb.Each(t, func(t *testing.T, dsn string) {
		b := newBed(t, dsn)
		rec := &recorder{fails: map[string]int{}, err: errors.New("connection refused")}
		var observed []string
		var mu sync.Mutex
		d := b.dispatcher(rec, func(c *Config) {
			c.Observe = func(kind string, typ Type, result string) {
				mu.Lock()
				observed = append(observed, fmt.Sprintf("%d %s", typ, result))
				mu.Unlock()
			}
		})

		// Fails twice, then gets through: backoff between, never sent twice.
		ok := router.NewID(b.clock.now())
		rec.fails[ok] = 2
		b.request(ok, Delivered|Failed, true)
		b.put(ok, router.StateDelivered, 0)
		b.pass(d)
		st := b.status(ok)
		if st.State != "pending" || st.Tries != 1 || st.NextTry.Sub(b.clock.now()) != time.Second {
			t.Fatalf("after one failure: %+v", st)
		}
		b.pass(d) // not due yet
		if st2 := b.status(ok); st2.Tries != 1 {
			t.Fatalf("retried before its time: %+v", st2)
		}
		b.clock.advance(time.Second)
		b.pass(d)
		if st := b.status(ok); st.Tries != 2 || st.NextTry.Sub(b.clock.now()) != 2*time.Second {
			t.Fatalf("after two failures: %+v", st)
		}
		b.clock.advance(2 * time.Second)
		b.pass(d)
		b.clock.advance(time.Minute)
		b.pass(d)
		if got := rec.types(ok); !reflect.DeepEqual(got, []Type{Delivered}) {
			t.Fatalf("sent %v", got)
		}
		if st := b.status(ok); st.State != "done" || st.Tries != 0 {
			t.Fatalf("after success: %+v", st)
		}
		mu.Lock()
		if want := []string{"1 retry", "1 retry", "1 sent"}; !reflect.DeepEqual(observed, want) {
			t.Errorf("observed %v, want %v", observed, want)
		}
		mu.Unlock()

		// Fails for longer than GiveUp: closed with the reason.
		bad := router.NewID(b.clock.now())
		rec.fails[bad] = 1 << 30
		b.request(bad, Delivered|Failed, true)
		b.put(bad, router.StateExpired, 3)
		for range 40 {
			b.pass(d)
			b.clock.advance(5 * time.Minute)
		}
		st = b.status(bad)
		if st.State != "gave_up" || st.Outcome == "" {
			t.Fatalf("not given up: %+v", st)
		}
		t.Logf("outcome: %s", st.Outcome)

		// A permanent error closes it at once.
		perm := router.NewID(b.clock.now())
		rec.fails[perm] = 1
		rec.err = Permanent(errors.New("redirect to another host refused"))
		b.request(perm, Delivered, true)
		b.put(perm, router.StateDelivered, 0)
		b.pass(d)
		if st := b.status(perm); st.State != "gave_up" {
			t.Fatalf("permanent error not final: %+v", st)
		}
	})
}

func TestDispatchersShareWithoutSendingTwice(t *testing.T) {
	testdb.Each(t, func(t *testing.T, dsn string) {
		b := newBed(t, dsn)
		rec := &recorder{}
		var ids []string
		for i := range 60 {
			id := fmt.Sprintf("%013d-%010x", b.clock.now().UnixMilli(), i)
			ids = append(ids, id)
			b.request(id, AllTypes, true)
			b.put(id, router.StateDelivered, 0)
		}
		// Two dispatchers (two serve processes) on the same requests at once.
		d1 := b.dispatcher(rec, func(c *Config) { c.Owner = "one"; c.Parallel = 4 })
		d2 := b.dispatcher(rec, func(c *Config) { c.Owner = "two"; c.Parallel = 4 })
		for range 3 {
			var wg sync.WaitGroup
			for _, d := range []*Dispatcher{d1, d2} {
				wg.Go(func() {
					if _, err := d.Pass(context.Background()); err != nil {
						t.Error(err)
					}
				})
			}
			wg.Wait()
		}
		for _, id := range ids {
			if got := rec.types(id); !reflect.DeepEqual(got, []Type{Accepted, Delivered}) {
				t.Fatalf("%s: sent %v", id, got)
			}
		}
	})
}

func TestDispatcherFindsJoinedParts(t *testing.T) {
	testdb.Each(t, func(t *testing.T, dsn string) {
		b := newBed(t, dsn)
		rec := &recorder{}
		d := b.dispatcher(rec, nil)
		first := router.NewID(b.clock.now())
		second := router.NewID(b.clock.now())
		b.request(first, Delivered, true)
		b.request(second, Delivered, true)
		b.pass(d)
		// The router joined the two parts into the first one's message.
		b.put(first, router.StateDelivered, 0, second)
		b.pass(d)
		for _, id := range []string{first, second} {
			if got := rec.types(id); !reflect.DeepEqual(got, []Type{Delivered}) {
				t.Fatalf("%s: sent %v", id, got)
			}
		}
		if m, err := b.journal.PartOf(context.Background(), second); err != nil || m != first {
			t.Fatalf("PartOf = %q, %v", m, err)
		}
	})
}

func TestPendingAndForget(t *testing.T) {
	b := newBed(t, testdb.SQLite(t))
	id := router.NewID(b.clock.now())
	b.request(id, AllTypes, true)
	n, oldest, err := b.reqs.Pending(context.Background())
	if err != nil || n != 1 || oldest.IsZero() {
		t.Fatalf("pending %d %v %v", n, oldest, err)
	}
	if err := b.reqs.Forget(context.Background(), id); err != nil {
		t.Fatal(err)
	}
	if n, _, _ := b.reqs.Pending(context.Background()); n != 0 {
		t.Fatalf("pending after forget: %d", n)
	}
	if err := b.reqs.Add(context.Background(), Request{ID: id, Kind: "test", Target: string(make([]byte, MaxTarget+1))}); err == nil {
		t.Fatal("an oversized target was stored")
	}
}

func TestLeaseOfADeadProcessIsTakenBack(t *testing.T) {
	b := newBed(t, testdb.SQLite(t))
	rec := &recorder{}
	id := router.NewID(b.clock.now())
	b.request(id, Delivered, true)
	b.put(id, router.StateDelivered, 0)
	// A process that died holding the lease, minutes before it would run out.
	if _, err := b.store.DB.Exec("UPDATE smsrouter_dlr SET lease_until = ?, lease_owner = 'host/4242' WHERE id = ?",
		b.clock.now().Add(5*time.Minute).UnixMilli(), id); err != nil {
		t.Fatal(err)
	}
	d := b.dispatcher(rec, func(c *Config) { c.Owner = "host/1" })
	if n := b.pass(d); n != 0 {
		t.Fatalf("a leased request was sent: %d", n)
	}
	alive := func(o string) bool { return o != "host/4242" }
	if n, err := d.ReleaseDead(context.Background(), func(string) bool { return true }); err != nil || n != 0 {
		t.Fatalf("released a live lease: %d %v", n, err)
	}
	if n, err := d.ReleaseDead(context.Background(), alive); err != nil || n != 1 {
		t.Fatalf("released %d, %v", n, err)
	}
	if n := b.pass(d); n != 1 || !reflect.DeepEqual(rec.types(id), []Type{Delivered}) {
		t.Fatalf("after release: %d %v", n, rec.types(id))
	}
}

func TestDatabaseDownDelaysReports(t *testing.T) {
	b := newBed(t, testdb.SQLite(t))
	rec := &recorder{}
	id := router.NewID(b.clock.now())
	b.request(id, Delivered, true)
	b.put(id, router.StateDelivered, 0)
	d := b.dispatcher(rec, nil)
	b.store.DB.Close() // the database is gone
	if _, err := d.Pass(context.Background()); err == nil {
		t.Fatal("a pass without a database reported no error")
	}
	if len(rec.types(id)) != 0 {
		t.Fatal("a report was sent without its request being readable")
	}
}
