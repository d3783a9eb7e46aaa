package router

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// slowDirectory answers LookupMany after a pause, counting its queries.
type slowDirectory struct {
	entries map[string]Entry
	pause   time.Duration
	fail    atomic.Bool
	queries atomic.Int32
	asked   atomic.Int32
	block   chan struct{} // when set, every query waits for it
}

func (d *slowDirectory) Lookup(ctx context.Context, n string) (Entry, error) {
	return Entry{}, errors.New("not used")
}

func (d *slowDirectory) LookupMany(ctx context.Context, ns []string) (map[string]Entry, error) {
	d.queries.Add(1)
	d.asked.Add(int32(len(ns)))
	if d.block != nil {
		<-d.block
	}
	time.Sleep(d.pause)
	if d.fail.Load() {
		return nil, fmt.Errorf("%w: test", ErrDirectoryUnavailable)
	}
	out := map[string]Entry{}
	for _, n := range ns {
		if e, ok := d.entries[n]; ok {
			out[n] = e
		}
	}
	return out, nil
}

func TestCoalescingSharesQueries(t *testing.T) {
	d := &slowDirectory{entries: map[string]Entry{}, pause: 5 * time.Millisecond}
	for i := range 100 {
		n := fmt.Sprintf("555%04d", i)
		d.entries[n] = Entry{Number: n, Letter: 'S', Extension: "PJSIP/" + n}
	}
	c := NewCoalescing(d, 0)
	var wg sync.WaitGroup
	errs := make(chan error, 200)
	for i := range 200 {
		wg.Go(func() {
			n := fmt.Sprintf("555%04d", i) // 100..199 are unknown
			e, err := c.Lookup(context.Background(), n)
			switch {
			case i < 100 && (err != nil || e.Number != n):
				errs <- fmt.Errorf("%s: %+v %v", n, e, err)
			case i >= 100 && !errors.Is(err, ErrUnknownNumber):
				errs <- fmt.Errorf("%s: want unknown, got %+v %v", n, e, err)
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if q := d.queries.Load(); q >= 200 || d.asked.Load() != 200 {
		t.Errorf("%d queries asking %d numbers for 200 lookups: they should share queries", q, d.asked.Load())
	}
	t.Logf("200 concurrent lookups took %d queries", d.queries.Load())
}

func TestCoalescingErrorsAndCancel(t *testing.T) {
	d := &slowDirectory{entries: map[string]Entry{"1": {Number: "1", Letter: 'S'}}}
	c := NewCoalescing(d, 0)
	d.fail.Store(true)
	if _, err := c.Lookup(context.Background(), "1"); !errors.Is(err, ErrDirectoryUnavailable) {
		t.Fatalf("a failed query must read as unavailable, never unknown: %v", err)
	}
	d.fail.Store(false)
	d.block = make(chan struct{})
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if _, err := c.Lookup(ctx, "1"); !errors.Is(err, ErrDirectoryUnavailable) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("a caller whose context ends must not wait for a stuck query: %v", err)
	}
	close(d.block)
	if e, err := c.Lookup(context.Background(), "1"); err != nil || e.Letter != 'S' {
		t.Fatalf("after the stuck query: %+v %v", e, err)
	}
}
