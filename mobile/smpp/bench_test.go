package smpp

import (
	"smsrouter/internal/smsctest"

	"context"
	"io"
	"log/slog"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// benchSubmits is how many texts one benchmark iteration submits: enough for
// a rate, few enough for `make bench` on a small machine.
const benchSubmits = 5000

// BenchmarkSubmit measures single-part submits per second to the node SMSC
// with a window of 10: the target is 1,000/s. BenchmarkSubmitKannel drives
// the same SMSC through Kannel for comparison.
func BenchmarkSubmit(b *testing.B) {
	s := smsctest.Start(b)
	s.Send(map[string]any{"cmd": "quiet", "on": true})
	s.Wait("quiet", nil)
	c := runClient(b, s, Config{Window: 10, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	if _, err := c.Submit(ctx, Message{From: "100", To: "200", Text: "warm up"}); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	var elapsed time.Duration
	for range b.N {
		start := time.Now()
		var next atomic.Int64
		var failed atomic.Int64
		var wg sync.WaitGroup
		for range 32 { // more submitters than slots: the window stays full
			wg.Add(1)
			go func() {
				defer wg.Done()
				for next.Add(1) <= benchSubmits {
					if _, err := c.Submit(ctx, Message{From: "100", To: "+48600111222", Text: "benchmark text"}); err != nil {
						failed.Add(1)
					}
				}
			}()
		}
		wg.Wait()
		elapsed += time.Since(start)
		if failed.Load() > 0 {
			b.Fatalf("%d submits failed", failed.Load())
		}
	}
	b.ReportMetric(float64(benchSubmits*b.N)/elapsed.Seconds(), "submits/s")
}

// BenchmarkSubmitKannel runs Debian's Kannel (bearerbox + smsbox) bound to
// the same node SMSC with max-pending-submits 10, and measures submits per
// second as the SMSC sees them, texts entering through smsbox's sendsms
// HTTP interface. It is skipped where Kannel is not installed.
func BenchmarkSubmitKannel(b *testing.B) {
	s := smsctest.Start(b)
	s.Send(map[string]any{"cmd": "quiet", "on": true})
	s.Wait("quiet", nil)
	k := smsctest.StartKannel(b, s, 10)
	send := func(text string) error { return k.Send("100", "48600111222", text) }
	s.WaitCount(1, 30*time.Second)
	b.ResetTimer()
	var elapsed time.Duration
	total := 1
	for range b.N {
		start := time.Now()
		var next atomic.Int64
		var failed atomic.Int64
		var wg sync.WaitGroup
		for range 32 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for next.Add(1) <= benchSubmits {
					if err := send("benchmark text"); err != nil {
						failed.Add(1)
					}
				}
			}()
		}
		wg.Wait()
		if failed.Load() > 0 {
			b.Fatalf("%d sendsms requests failed", failed.Load())
		}
		total += benchSubmits
		s.WaitCount(total, 2*time.Minute)
		elapsed += time.Since(start)
	}
	b.ReportMetric(float64(benchSubmits*b.N)/elapsed.Seconds(), "submits/s")
}
