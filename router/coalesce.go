package router

import (
	"context"
	"fmt"
	"runtime"
	"sync"
	"time"
)

// Coalescing is a Directory that answers concurrent Lookups with shared queries:
// while one query is on its way to the database, every Lookup that arrives waits
// for it to come back and then goes out together with the others in the next
// LookupMany. At low load a Lookup goes out at once, as before; under load (fifty
// dialplan requests at the same moment) the database sees a few IN queries instead
// of fifty, and the same number asked twice is read once. Every query still reads
// the table, so an admin's UPDATE applies to the next request (DESIGN.md promise 7).
type Coalescing struct {
	dir Directory
	max int // numbers per query

	mu      sync.Mutex
	waiting []*pendingLookup
	running bool          // a worker goroutine is taking the waiting lookups
	wake    chan struct{} // tells an idle worker that lookups wait
}

type pendingLookup struct {
	number string
	done   chan struct{} // buffered: the worker sends once per lookup
	entry  Entry
	found  bool
	err    error
}

// pendingLookups are reused, channel included: two allocations fewer per
// chaninfo request (issue 17). A lookup whose caller gave up is not put back,
// as the worker may still answer it.
var pendingLookups = sync.Pool{New: func() any { return &pendingLookup{done: make(chan struct{}, 1)} }}

// NewCoalescing wraps dir; a query asks for at most max numbers (0: 256).
func NewCoalescing(dir Directory, max int) *Coalescing {
	if max <= 0 {
		max = 256
	}
	return &Coalescing{dir: dir, max: max, wake: make(chan struct{}, 1)}
}

// coalesceQueryTimeout bounds one shared query, which runs on behalf of callers
// that may all have given up.
const coalesceQueryTimeout = 30 * time.Second

// coalesceIdle is how long a worker waits for more lookups before it ends: under a
// steady load the same goroutine (whose stack has grown to what the database driver
// needs) keeps working.
const coalesceIdle = time.Second

// Lookup implements Directory.
func (c *Coalescing) Lookup(ctx context.Context, number string) (Entry, error) {
	p := pendingLookups.Get().(*pendingLookup)
	p.number = number
	c.mu.Lock()
	c.waiting = append(c.waiting, p)
	start := !c.running
	c.running = true
	c.mu.Unlock()
	if start {
		go c.run()
	} else {
		select {
		case c.wake <- struct{}{}:
		default:
		}
	}
	select {
	case <-p.done:
	case <-ctx.Done():
		return Entry{}, fmt.Errorf("%w: %w", ErrDirectoryUnavailable, ctx.Err())
	}
	entry, found, err := p.entry, p.found, p.err
	*p = pendingLookup{done: p.done}
	pendingLookups.Put(p)
	switch {
	case err != nil:
		return Entry{}, err
	case !found:
		return Entry{}, fmt.Errorf("%s: %w", number, ErrUnknownNumber)
	}
	return entry, nil
}

// run sends the waiting lookups in queries of at most max numbers, and ends once
// none has come for coalesceIdle. It runs without the callers' contexts: a query
// that one caller gave up on still answers the others.
func (c *Coalescing) run() {
	idle := time.NewTimer(coalesceIdle)
	defer idle.Stop()
	for {
		c.mu.Lock()
		if len(c.waiting) == 0 {
			c.mu.Unlock()
			idle.Reset(coalesceIdle)
			select {
			case <-c.wake:
				continue
			case <-idle.C:
			}
			c.mu.Lock()
			if len(c.waiting) == 0 {
				c.running = false
				c.mu.Unlock()
				return
			}
		}
		if len(c.waiting) < c.max {
			// Let the requests that are ready to run ask first: under load
			// they join this query (SQLite answers one number so quickly
			// that the next request always found the worker idle: batches
			// of 1.1, now 6-7 at 50 clients, issue 17). With nothing else
			// to run, Gosched returns at once.
			c.mu.Unlock()
			runtime.Gosched()
			c.mu.Lock()
		}
		n := min(len(c.waiting), c.max)
		batch := c.waiting[:n:n]
		c.waiting = c.waiting[n:]
		c.mu.Unlock()

		numbers := make([]string, len(batch))
		for i, p := range batch {
			numbers[i] = p.number
		}
		ctx, cancel := context.WithTimeout(context.Background(), coalesceQueryTimeout)
		entries, err := c.dir.LookupMany(ctx, numbers)
		cancel()
		for _, p := range batch {
			p.entry, p.found = entries[p.number]
			p.err = err
			p.done <- struct{}{}
		}
	}
}

// LookupMany implements Directory; a caller with many numbers has its own query.
func (c *Coalescing) LookupMany(ctx context.Context, numbers []string) (map[string]Entry, error) {
	return c.dir.LookupMany(ctx, numbers)
}
