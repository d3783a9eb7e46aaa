package fastagi

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"smsrouter/asteriskconf/agi"
	"smsrouter/internal/testdb"
	"smsrouter/router"
)

// BenchmarkChaninfo: 50 concurrent fake Asterisk connections, each a whole
// chaninfo request as the dialplan makes it (connect, environment block,
// SET VARIABLE ×2, EOF) against the real directory, without and with the
// optional lookup cache. Beside it, in the same iteration, the same clients
// against minimalResponder, a Go AGI server that answers the same two commands
// with no directory and no framework: the floor for this machine. Reports
// req/s, minimal_req/s, pct_of_minimal and p50/p99 latency from dial to the
// server's EOF. Issue 17's target: pct_of_minimal ≥ 80 on SQLite and MariaDB.
// One iteration is 16,000 requests of each, in alternating rounds; run it with
// -benchtime 1x.
func BenchmarkChaninfo(b *testing.B) {
	for _, db := range []struct {
		name string
		dsn  func(testing.TB) string
	}{{"mariadb", testdb.MySQL}, {"sqlite", testdb.SQLite}} {
		for _, cache := range []time.Duration{0, 2 * time.Second} {
			b.Run(fmt.Sprintf("%s/cache=%v", db.name, cache), func(b *testing.B) {
				benchChaninfo(b, db.dsn(b), cache)
			})
		}
	}
}

// BenchmarkChaninfoPaced sends chaninfo requests at a steady 1,000 per second (a
// new connection every millisecond, whether or not earlier ones have finished,
// as calls arrive) for 4 s, and reports p50/p99/max latency beside the same for
// minimalResponder at the same pace. Issue 17's target: p99 ≤ 5 ms on MariaDB.
func BenchmarkChaninfoPaced(b *testing.B) {
	const perSecond, requests = 1000, 4000
	for _, db := range []struct {
		name string
		dsn  func(testing.TB) string
	}{{"mariadb", testdb.MySQL}, {"sqlite", testdb.SQLite}} {
		b.Run(db.name, func(b *testing.B) {
			addr, envs := chaninfoServer(b, db.dsn(b), 0)
			minimal := minimalResponder(b)
			b.Logf("smsrouter at %s, minimal responder at %s", addr, minimal)
			var lat, minLat []time.Duration
			for range b.N {
				minLat = append(minLat, paced(b, minimal, envs, perSecond, requests/2)...)
				lat = append(lat, paced(b, addr, envs, perSecond, requests)...)
				minLat = append(minLat, paced(b, minimal, envs, perSecond, requests/2)...)
			}
			slices.Sort(lat)
			slices.Sort(minLat)
			ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
			b.ReportMetric(float64(agiPercentile(lat, 50).Nanoseconds()), "ns/op")
			b.ReportMetric(ms(agiPercentile(lat, 50)), "p50_ms")
			b.ReportMetric(ms(agiPercentile(lat, 99)), "p99_ms")
			b.ReportMetric(ms(lat[len(lat)-1]), "max_ms")
			b.ReportMetric(ms(agiPercentile(minLat, 50)), "minimal_p50_ms")
			b.ReportMetric(ms(agiPercentile(minLat, 99)), "minimal_p99_ms")
		})
	}
}

// chaninfoServer runs smsrouter's FastAGI server over a fresh directory of
// numbers and returns its address and one environment block per number. The
// store's pool is sized as serve sizes it: parallel (8) + the FastAGI handlers'
// 8 + 4, their lookups shared (router.Coalescing).
func chaninfoServer(b *testing.B, dsn string, cache time.Duration) (string, [][]byte) {
	addr, envs, _ := chaninfoServerCounting(b, dsn, cache)
	return addr, envs
}

// queryCounter counts the queries that reach the directory and the
// numbers they ask for: how well router.Coalescing shares them.
type queryCounter struct {
	router.Directory
	queries, numbers atomic.Int64
}

func (d *queryCounter) Lookup(ctx context.Context, number string) (router.Entry, error) {
	d.queries.Add(1)
	d.numbers.Add(1)
	return d.Directory.Lookup(ctx, number)
}

func (d *queryCounter) LookupMany(ctx context.Context, numbers []string) (map[string]router.Entry, error) {
	d.queries.Add(1)
	d.numbers.Add(int64(len(numbers)))
	return d.Directory.LookupMany(ctx, numbers)
}

// chaninfoServerCounting is chaninfoServer that also returns the directory's
// query counts.
func chaninfoServerCounting(b *testing.B, dsn string, cache time.Duration) (string, [][]byte, *queryCounter) {
	const numbers = 1000
	store, err := router.OpenStore(dsn)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { store.Close() })
	store.SetPool(8 + 8 + 4)
	ctx := context.Background()
	if _, err := store.Migrate(ctx); err != nil {
		b.Fatal(err)
	}
	for i := range numbers {
		if err := store.Set(ctx, router.Entry{Number: fmt.Sprint(5550000 + i), Letter: 'S', Extension: fmt.Sprintf("PJSIP/%d", i)}); err != nil {
			b.Fatal(err)
		}
	}
	counted := &queryCounter{Directory: router.NewSQLLetterDirectory(store)} // as serve gives chaninfo
	h, err := New(Config{Directory: router.NewCoalescing(counted, 0), Inbox: b.TempDir(), LookupCache: cache,
		Log: slog.New(slog.DiscardHandler)})
	if err != nil {
		b.Fatal(err)
	}
	srv := &agi.Server{Handlers: h.Handlers(), MaxConns: 256, Logger: slog.New(slog.DiscardHandler)}
	l, err := agi.Listen(ctx, "127.0.0.1:0") // as serve listens
	if err != nil {
		b.Fatal(err)
	}
	sctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- srv.Serve(sctx, l) }()
	b.Cleanup(func() { cancel(); <-done })
	envs := make([][]byte, numbers)
	for i := range envs {
		envs[i] = []byte(agiEnvBlock("chaninfo", fmt.Sprint(5550000+i)))
	}
	return l.Addr().String(), envs, counted
}

func benchChaninfo(b *testing.B, dsn string, cache time.Duration) {
	// rounds of perRound requests each way: one run of 4,000 against 4,000 of
	// the floor scattered pct_of_minimal by ±15 points on an idle machine, as
	// its speed drifted within the second either side took.
	const conns, rounds, perRound = 50, 8, 2000
	addr, envs, counted := chaninfoServerCounting(b, dsn, cache)
	minimal := minimalResponder(b)
	var all []time.Duration
	var elapsed, minElapsed time.Duration
	b.ResetTimer()
	counted.queries.Store(0)
	counted.numbers.Store(0)
	for range b.N {
		for r := range rounds {
			// The floor goes first in every other round and last in the
			// rest, so neither side always follows the other's leftovers.
			if r%2 == 0 {
				_, d := hammerAGI(b, minimal, envs, conns, perRound)
				minElapsed += d
			}
			lat, d := hammerAGI(b, addr, envs, conns, perRound)
			all, elapsed = append(all, lat...), elapsed+d
			if r%2 == 1 {
				_, d := hammerAGI(b, minimal, envs, conns, perRound)
				minElapsed += d
			}
		}
	}
	b.StopTimer()
	slices.Sort(all)
	reqs := float64(b.N * rounds * perRound)
	b.ReportMetric(reqs/elapsed.Seconds(), "req/s")
	b.ReportMetric(reqs/minElapsed.Seconds(), "minimal_req/s")
	b.ReportMetric(100*minElapsed.Seconds()/elapsed.Seconds(), "pct_of_minimal")
	b.ReportMetric(float64(agiPercentile(all, 50).Microseconds())/1000, "p50_ms")
	b.ReportMetric(float64(agiPercentile(all, 99).Microseconds())/1000, "p99_ms")
	if q := counted.queries.Load(); q > 0 {
		b.ReportMetric(float64(counted.numbers.Load())/float64(q), "numbers/query")
	}
}

// hammerAGI makes n chaninfo requests from conns clients at once, each on a new
// connection as Asterisk's AGI() does, and returns their latencies and the wall
// time of the whole burst.
func hammerAGI(b *testing.B, addr string, envs [][]byte, conns, n int) ([]time.Duration, time.Duration) {
	var next atomic.Int64
	lat := make([][]time.Duration, conns)
	var wg sync.WaitGroup
	var firstErr atomic.Value
	start := time.Now()
	for w := range conns {
		wg.Go(func() {
			for {
				i := next.Add(1) - 1
				if i >= int64(n) {
					return
				}
				d, err := chaninfoOnce(addr, envs[i%int64(len(envs))])
				if err != nil {
					firstErr.CompareAndSwap(nil, err)
					return
				}
				lat[w] = append(lat[w], d)
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	if err, _ := firstErr.Load().(error); err != nil {
		b.Fatal(err)
	}
	return slices.Concat(lat...), elapsed
}

// paced starts one request every 1/perSecond, each on its own goroutine, and
// returns the latencies.
func paced(b *testing.B, addr string, envs [][]byte, perSecond, n int) []time.Duration {
	lat := make([]time.Duration, n)
	var wg sync.WaitGroup
	var firstErr atomic.Value
	interval := time.Second / time.Duration(perSecond)
	start := time.Now()
	for i := range n {
		if d := time.Until(start.Add(time.Duration(i) * interval)); d > 0 {
			time.Sleep(d)
		}
		wg.Go(func() {
			d, err := chaninfoOnce(addr, envs[i%len(envs)])
			if err != nil {
				firstErr.CompareAndSwap(nil, fmt.Errorf("request %d to %s: %w", i, addr, err))
			}
			lat[i] = d
		})
	}
	wg.Wait()
	if err, _ := firstErr.Load().(error); err != nil {
		b.Fatal(err)
	}
	return lat
}

// minimalResponder is the least a Go FastAGI server can do for chaninfo and
// still be correct: read the environment block and find the number in it
// (agi_extension), send the same two SET VARIABLE commands, check that each
// was answered 200, close. No directory, no logging, no limits.
func minimalResponder(b *testing.B) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				br := bufio.NewReaderSize(c, 1024)
				number := false
				for {
					line, err := br.ReadSlice('\n')
					if err != nil {
						return
					}
					if len(line) == 1 {
						break
					}
					number = number || bytes.HasPrefix(line, []byte("agi_extension: 555"))
				}
				if !number {
					return
				}
				for _, cmd := range [][]byte{benchOpt, []byte("SET VARIABLE MSG_CHAN_EXT PJSIP/1000\n")} {
					if _, err := c.Write(cmd); err != nil {
						return
					}
					if reply, err := br.ReadSlice('\n'); err != nil || !bytes.HasPrefix(reply, []byte("200 ")) {
						return
					}
				}
			}()
		}
	}()
	return l.Addr().String()
}

var (
	benchSetReply = []byte("200 result=1\n")
	benchOpt      = []byte("SET VARIABLE MSG_CHAN_OPT S\n")
	benchHangup   = []byte("HANGUP\n")
)

// chaninfoOnce is one dialplan AGI() call: Asterisk's side of it.
func chaninfoOnce(addr string, env []byte) (time.Duration, error) {
	start := time.Now()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		return 0, err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(30 * time.Second))
	if _, err := c.Write(env); err != nil {
		return 0, err
	}
	br := bufio.NewReaderSize(c, 256)
	for n := range 2 {
		line, err := br.ReadSlice('\n')
		if err != nil {
			return 0, fmt.Errorf("command %d: %w", n+1, err)
		}
		if n == 0 && string(line) != string(benchOpt) {
			return 0, fmt.Errorf("unexpected command %q", line)
		}
		if _, err := c.Write(benchSetReply); err != nil {
			return 0, err
		}
	}
	if _, err := br.ReadByte(); !errors.Is(err, io.EOF) {
		return 0, fmt.Errorf("want EOF, got %v", err)
	}
	d := time.Since(start)
	// What Asterisk does on the server's EOF (SPEC 4): one more HANGUP, then
	// close. A server that has closed already answers it with a reset, which
	// Asterisk ignores, so the error is too.
	c.Write(benchHangup)
	return d, nil
}

func agiPercentile(sorted []time.Duration, p int) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := (len(sorted)*p + 99) / 100
	return sorted[max(i-1, 0)]
}
