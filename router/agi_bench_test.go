package router

import (
	"bufio"
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
)

// BenchmarkChaninfo: 50 concurrent fake Asterisk connections, each a whole
// chaninfo request as the dialplan makes it (connect, environment block,
// SET VARIABLE ×2, EOF) against the real directory, without and with the
// optional lookup cache. Reports requests/s and p50/p99 latency from dial to
// the server's EOF. Issue 3's target: ≥ 5,000 req/s, p99 ≤ 5 ms on MariaDB.
// One iteration is 2,000 requests, so `make bench` (-benchtime 1x) measures
// enough of them for a p99.
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

func benchChaninfo(b *testing.B, dsn string, cache time.Duration) {
	const conns, numbers, perIter = 50, 1000, 2000
	store, err := OpenStore(dsn)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { store.Close() })
	ctx := context.Background()
	if _, err := store.Migrate(ctx); err != nil {
		b.Fatal(err)
	}
	for i := range numbers {
		if err := store.Set(ctx, Entry{Number: fmt.Sprint(5550000 + i), Letter: 'S', Extension: fmt.Sprintf("PJSIP/%d", i)}); err != nil {
			b.Fatal(err)
		}
	}
	h, err := NewAGIHandlers(AGIConfig{Directory: NewSQLDirectory(store), Inbox: b.TempDir(), LookupCache: cache,
		Log: slog.New(slog.DiscardHandler)})
	if err != nil {
		b.Fatal(err)
	}
	srv := &agi.Server{Handlers: h.Handlers(), MaxConns: 256, Logger: slog.New(slog.DiscardHandler)}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	sctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- srv.Serve(sctx, l) }()
	defer func() { cancel(); <-done }()
	addr := l.Addr().String()
	envs := make([][]byte, numbers)
	for i := range envs {
		envs[i] = []byte(agiEnvBlock("chaninfo", fmt.Sprint(5550000+i)))
	}

	var next atomic.Int64
	lat := make([][]time.Duration, conns)
	var wg sync.WaitGroup
	var firstErr atomic.Value
	b.ResetTimer()
	start := time.Now()
	for w := range conns {
		wg.Go(func() {
			for {
				i := next.Add(1) - 1
				if i >= int64(b.N)*perIter {
					return
				}
				d, err := chaninfoOnce(addr, envs[i%numbers])
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
	b.StopTimer()
	if err, _ := firstErr.Load().(error); err != nil {
		b.Fatal(err)
	}
	all := slices.Concat(lat...)
	slices.Sort(all)
	b.ReportMetric(float64(len(all))/elapsed.Seconds(), "req/s")
	b.ReportMetric(float64(agiPercentile(all, 50).Microseconds())/1000, "p50_ms")
	b.ReportMetric(float64(agiPercentile(all, 99).Microseconds())/1000, "p99_ms")
}

var (
	benchSetReply = []byte("200 result=1\n")
	benchOpt      = []byte("SET VARIABLE MSG_CHAN_OPT S\n")
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
	return time.Since(start), nil
}

func agiPercentile(sorted []time.Duration, p int) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := (len(sorted)*p + 99) / 100
	return sorted[max(i-1, 0)]
}
