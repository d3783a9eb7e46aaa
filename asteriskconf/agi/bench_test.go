package agi

import (
	"bufio"
	"context"
	"io"
	"log/slog"
	"net"
	"slices"
	"sync"
	"testing"
	"time"
)

// BenchmarkSessionRoundTrip: one GET VARIABLE and one SET VARIABLE over
// loopback against a fake Asterisk that answers each line at once.
func BenchmarkSessionRoundTrip(b *testing.B) {
	s, c, br := loopbackSession(b, SessionOptions{}, envBlock("bench"))
	go func() {
		for {
			line, err := br.ReadSlice('\n')
			if err != nil {
				return
			}
			reply := "200 result=1\n"
			if line[0] == 'G' {
				reply = "200 result=1 (5551234)\n"
			}
			if _, err := io.WriteString(c, reply); err != nil {
				return
			}
		}
	}()
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if _, ok, err := s.GetVariable(ctx, "EXTEN"); err != nil || !ok {
			b.Fatal(err)
		}
		if err := s.SetVariable(ctx, "MSG_CHAN_OPT", "S"); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkServer50Conns: 50 concurrent fake Asterisk clients, each
// connection an environment block and two commands against a trivial
// handler, as the chaninfo handler will do. Reports connections/s and the
// per-connection latency from dial to the server's EOF.
func BenchmarkServer50Conns(b *testing.B) {
	srv := &Server{
		MaxConns: 256,
		Logger:   slog.New(slog.DiscardHandler),
		Handlers: map[string]Handler{"chaninfo": HandlerFunc(func(ctx context.Context, s *Session) error {
			if _, _, err := s.GetVariable(ctx, "EXTEN"); err != nil {
				return err
			}
			return s.SetVariable(ctx, "MSG_CHAN_OPT", "S")
		})},
	}
	addr, _, stop := startServer(b, srv)
	env := []byte(envBlock("chaninfo", "arg1"))
	getReply := []byte("200 result=1 (5551234)\n")
	setReply := []byte("200 result=1\n")
	hangup := []byte("HANGUP\n")

	one := func() (time.Duration, error) {
		start := time.Now()
		c, err := net.Dial("tcp", addr)
		if err != nil {
			return 0, err
		}
		defer c.Close()
		br := bufio.NewReaderSize(c, 512)
		if _, err := c.Write(env); err != nil {
			return 0, err
		}
		for _, reply := range [][]byte{getReply, setReply} {
			if _, err := br.ReadSlice('\n'); err != nil {
				return 0, err
			}
			if _, err := c.Write(reply); err != nil {
				return 0, err
			}
		}
		if _, err := br.ReadByte(); err != io.EOF {
			return 0, err
		}
		d := time.Since(start)
		c.Write(hangup) // what Asterisk does on our EOF
		return d, nil
	}

	const clients = 50
	var (
		mu   sync.Mutex
		lats = make([]time.Duration, 0, b.N)
		next = make(chan struct{}, clients)
		wg   sync.WaitGroup
	)
	b.ResetTimer()
	start := time.Now()
	go func() {
		for range b.N {
			next <- struct{}{}
		}
		close(next)
	}()
	for range clients {
		wg.Go(func() {
			var local []time.Duration
			for range next {
				d, err := one()
				if err != nil {
					b.Error(err)
					return
				}
				local = append(local, d)
			}
			mu.Lock()
			lats = append(lats, local...)
			mu.Unlock()
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	b.StopTimer()
	stop()
	if len(lats) == 0 {
		return
	}
	slices.Sort(lats)
	pct := func(p float64) float64 {
		return float64(lats[min(len(lats)-1, int(p*float64(len(lats))))].Microseconds())
	}
	b.ReportMetric(float64(len(lats))/elapsed.Seconds(), "req/s")
	b.ReportMetric(pct(0.50), "p50-µs")
	b.ReportMetric(pct(0.99), "p99-µs")
}
