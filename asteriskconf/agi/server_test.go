package agi

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// expectClosed reads from c until EOF or reset and fails if that takes
// longer than within.
func expectClosed(t *testing.T, c net.Conn, within time.Duration) {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(within))
	_, err := io.Copy(io.Discard, c)
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		t.Fatalf("server did not close the connection within %v", within)
	}
}

func dial(t testing.TB, addr string) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// setHandler answers every connection with one SET VARIABLE.
var setHandler = HandlerFunc(func(ctx context.Context, s *Session) error {
	return s.SetVariable(ctx, "MSG_CHAN_OPT", "S")
})

// checkServes runs one normal session against addr.
func checkServes(t *testing.T, addr string) {
	t.Helper()
	c := dial(t, addr)
	br := bufio.NewReader(c)
	c.SetDeadline(time.Now().Add(5 * time.Second))
	c.Write([]byte(envBlock("set")))
	answer(t, c, br, "SET VARIABLE MSG_CHAN_OPT S\n", "200 result=1\n")
	if _, err := br.ReadByte(); !errors.Is(err, io.EOF) {
		t.Errorf("want EOF after the session, got %v", err)
	}
}

func TestServerRoutingAndQuery(t *testing.T) {
	got := make(chan string, 1)
	srv := &Server{Handlers: map[string]Handler{
		"chaninfo": HandlerFunc(func(ctx context.Context, s *Session) error {
			got <- s.Script + " var=" + s.Query.Get("var") + " args=" + strings.Join(s.Env.Args(), "|")
			return nil
		}),
	}}
	addr, sink, _ := startServer(t, srv)
	c := dial(t, addr)
	c.Write([]byte(envBlock("chaninfo?var=SMS_DA", "SMS", "two words")))
	expectClosed(t, c, 5*time.Second)
	if g := <-got; g != "chaninfo var=SMS_DA args=SMS|two words" {
		t.Errorf("handler saw %q", g)
	}

	c = dial(t, addr)
	c.Write([]byte(envBlock("nosuch?x=1")))
	expectClosed(t, c, 5*time.Second)
	if w := sink.atLeast(slog.LevelWarn); len(w) != 1 || !strings.Contains(w[0], "no handler") || !strings.Contains(w[0], "nosuch") {
		t.Errorf("unknown script: logged %q", w)
	}
}

func TestServerHandlerPanic(t *testing.T) {
	srv := &Server{Handlers: map[string]Handler{
		"boom": HandlerFunc(func(ctx context.Context, s *Session) error { panic("kaboom") }),
		"set":  setHandler,
	}}
	addr, sink, _ := startServer(t, srv)
	c := dial(t, addr)
	c.Write([]byte(envBlock("boom")))
	expectClosed(t, c, 5*time.Second)
	errs := sink.atLeast(slog.LevelError)
	if len(errs) != 1 || !strings.Contains(errs[0], "kaboom") || !strings.Contains(errs[0], "server_test.go") {
		t.Errorf("panic not logged with its stack: %q", errs)
	}
	checkServes(t, addr)
}

func TestServerHandlerErrorLogged(t *testing.T) {
	srv := &Server{Handlers: map[string]Handler{
		"fail": HandlerFunc(func(ctx context.Context, s *Session) error { return errors.New("directory down") }),
		"hup": HandlerFunc(func(ctx context.Context, s *Session) error {
			_, err := s.Command(ctx, "STREAM", "FILE", "beep", "")
			return err
		}),
	}}
	addr, sink, _ := startServer(t, srv)
	c := dial(t, addr)
	c.Write([]byte(envBlock("fail")))
	expectClosed(t, c, 5*time.Second)
	c = dial(t, addr)
	br := bufio.NewReader(c)
	c.Write([]byte(envBlock("hup")))
	answer(t, c, br, "STREAM FILE beep \"\"\n", "HANGUP\n511 Command Not Permitted on a dead channel or intercept routine\n")
	expectClosed(t, c, 5*time.Second)
	w := sink.atLeast(slog.LevelWarn)
	if len(w) != 1 || !strings.Contains(w[0], "directory down") {
		t.Errorf("want one warning for the failing handler and none for a hang-up, got %q", w)
	}
}

// TestServerHalfClose follows the real half-close transcript: after our
// half-close Asterisk sends HANGUP and closes; nothing is logged as failure.
func TestServerHalfClose(t *testing.T) {
	steps := loadFixture(t, "4-halfclose.raw")
	srv := &Server{Handlers: map[string]Handler{"halfclose": setHandler}}
	addr, sink, stop := startServer(t, srv)
	dialReplay(t, addr, fakeAsterisk{pause: time.Millisecond}, steps)
	stop()
	if w := sink.atLeast(slog.LevelWarn); len(w) > 0 {
		t.Errorf("half-close logged as failure: %q", w)
	}
}

// TestServerClosesAfterItsLastCommand: once the handler has its last reply
// the connection is closed outright, whatever the peer does next. Asterisk's
// one HANGUP after our EOF is still written without error (it goes out before
// our reset comes back, and Asterisk closes without reading), and a peer that
// never closes its side does not keep the connection open.
func TestServerClosesAfterItsLastCommand(t *testing.T) {
	srv := &Server{Handlers: map[string]Handler{"set": setHandler}}
	addr, sink, stop := startServer(t, srv)
	c := dial(t, addr)
	c.SetDeadline(time.Now().Add(10 * time.Second))
	br := bufio.NewReader(c)
	c.Write([]byte(envBlock("set")))
	answer(t, c, br, "SET VARIABLE MSG_CHAN_OPT S\n", "200 result=1\n")
	if _, err := br.ReadByte(); !errors.Is(err, io.EOF) {
		t.Fatalf("want EOF after the last command, got %v", err)
	}
	if _, err := c.Write([]byte("HANGUP\n")); err != nil {
		t.Fatalf("Asterisk's HANGUP after our EOF: %v", err)
	}
	// c stays open, as a stuck peer's would: the server must not wait for it.
	deadline := time.Now().Add(5 * time.Second)
	for srv.Stats().Open != 0 {
		if time.Now().After(deadline) {
			t.Fatalf("%d connections still open while the peer keeps its side open", srv.Stats().Open)
		}
		time.Sleep(time.Millisecond)
	}
	c.Close()
	stop()
	if w := sink.atLeast(slog.LevelWarn); len(w) > 0 {
		t.Errorf("warnings: %q", w)
	}
}

func TestServerMaxHandlers(t *testing.T) {
	release := make(chan struct{})
	var running atomic.Int32
	srv := &Server{
		MaxHandlers: 2,
		HandlerWait: 50 * time.Millisecond,
		Handlers: map[string]Handler{
			"hold": HandlerFunc(func(ctx context.Context, s *Session) error {
				running.Add(1)
				<-release
				return nil
			}),
			"set": setHandler,
		},
	}
	addr, sink, _ := startServer(t, srv)
	var held []net.Conn
	for range 2 {
		c := dial(t, addr)
		c.Write([]byte(envBlock("hold")))
		held = append(held, c)
	}
	for running.Load() < 2 {
		time.Sleep(time.Millisecond)
	}
	extra := dial(t, addr)
	extra.Write([]byte(envBlock("set")))
	expectClosed(t, extra, 5*time.Second)
	if w := sink.atLeast(slog.LevelWarn); len(w) != 1 || !strings.Contains(w[0], "all handlers busy") {
		t.Errorf("refused connection not logged: %q", w)
	}
	if st := srv.Stats(); st.Busy != 1 || st.Refused != 0 {
		t.Errorf("stats %+v, want one busy", st)
	}
	close(release)
	for _, c := range held { // as Asterisk does: EOF, then close
		expectClosed(t, c, 5*time.Second)
		c.Close()
	}
	// The slots free up a moment after the close reaches the server.
	for i := 0; ; i++ {
		c := dial(t, addr)
		c.SetDeadline(time.Now().Add(5 * time.Second))
		c.Write([]byte(envBlock("set")))
		line, err := bufio.NewReader(c).ReadString('\n')
		if err == nil {
			if line != "SET VARIABLE MSG_CHAN_OPT S\n" {
				t.Errorf("got %q", line)
			}
			break
		}
		if i == 100 {
			t.Fatalf("no slot free after the held connections ended: %v", err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestServerGracefulShutdown(t *testing.T) {
	started := make(chan struct{})
	srv := &Server{Handlers: map[string]Handler{
		"slow": HandlerFunc(func(ctx context.Context, s *Session) error {
			close(started)
			time.Sleep(200 * time.Millisecond)
			return s.SetVariable(ctx, "DONE", "1") // after shutdown began
		}),
	}}
	addr, _, stop := startServer(t, srv)
	c := dial(t, addr)
	br := bufio.NewReader(c)
	c.Write([]byte(envBlock("slow")))
	<-started
	stopped := make(chan struct{})
	go func() { stop(); close(stopped) }()
	time.Sleep(50 * time.Millisecond)
	if c2, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
		c2.Close()
		t.Error("new connection accepted during shutdown")
	}
	answer(t, c, br, "SET VARIABLE DONE 1\n", "200 result=1\n")
	expectClosed(t, c, 5*time.Second)
	c.Close()
	select {
	case <-stopped:
	case <-time.After(5 * time.Second):
		t.Fatal("Serve did not return after the handler finished")
	}
}

func TestServerShutdownGraceCancels(t *testing.T) {
	errc := make(chan error, 1)
	srv := &Server{
		ShutdownGrace: 100 * time.Millisecond,
		ReplyTimeout:  time.Minute,
		Handlers: map[string]Handler{"stuck": HandlerFunc(func(ctx context.Context, s *Session) error {
			_, err := s.Command(ctx, "ANSWER") // never answered
			errc <- err
			return err
		})},
	}
	addr, _, stop := startServer(t, srv)
	c := dial(t, addr)
	c.Write([]byte(envBlock("stuck")))
	bufio.NewReader(c).ReadString('\n')
	start := time.Now()
	stop()
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("shutdown took %v", d)
	}
	if err := <-errc; err == nil || !strings.Contains(err.Error(), "shut down") {
		t.Errorf("handler err = %v, want cancellation by shutdown", err)
	}
}

// A command Asterisk never answers ends at SessionTimeout even when
// ReplyTimeout is longer: the session's deadlines are cut to its ctx's.
func TestServerSessionTimeoutUnblocks(t *testing.T) {
	errc := make(chan error, 1)
	srv := &Server{
		SessionTimeout: 200 * time.Millisecond,
		ReplyTimeout:   time.Minute,
		Handlers: map[string]Handler{"stuck": HandlerFunc(func(ctx context.Context, s *Session) error {
			_, err := s.Command(ctx, "ANSWER") // never answered
			errc <- err
			return err
		})},
	}
	addr, _, _ := startServer(t, srv)
	c := dial(t, addr)
	c.Write([]byte(envBlock("stuck")))
	start := time.Now()
	select {
	case err := <-errc:
		if err == nil || !errors.Is(err, os.ErrDeadlineExceeded) && !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("handler err = %v, want a deadline", err)
		}
		if d := time.Since(start); d > 2*time.Second {
			t.Errorf("command ended after %v, want about the 200ms session timeout", d)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("a command outlived the session timeout")
	}
}

func TestServeListenerClosed(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	l.Close()
	srv := &Server{Logger: slog.New(&logSink{})}
	if err := srv.Serve(context.Background(), l); !errors.Is(err, net.ErrClosed) {
		t.Errorf("Serve on a closed listener = %v", err)
	}
}

func TestListenAndServe(t *testing.T) {
	srv := &Server{Addr: "127.0.0.1:0", Logger: slog.New(&logSink{})}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := srv.ListenAndServe(ctx); err != nil {
		t.Errorf("ListenAndServe with a cancelled ctx = %v", err)
	}
	srv.Addr = "256.0.0.1:1"
	if err := srv.ListenAndServe(context.Background()); err == nil {
		t.Error("bad address accepted")
	}
}

// --- hostile input -------------------------------------------------------

func TestHostileEnvTooLarge(t *testing.T) {
	srv := &Server{EnvTimeout: 5 * time.Second, Handlers: map[string]Handler{"set": setHandler}}
	addr, sink, _ := startServer(t, srv)
	for _, tc := range []struct {
		name, want string
		data       []byte
	}{
		{"1MB of lines", "too large", []byte(manyLines(60000))}, // ~1.1 MB
		{"1MB one line", "too long", []byte("agi_x: " + strings.Repeat("y", 1<<20))},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := dial(t, addr)
			go c.Write(tc.data) // fails with a reset once the server gave up
			start := time.Now()
			expectClosed(t, c, 5*time.Second)
			t.Logf("closed after %v", time.Since(start))
		})
	}
	w := strings.Join(sink.atLeast(slog.LevelWarn), "\n")
	if !strings.Contains(w, "too large") || !strings.Contains(w, "too long") {
		t.Errorf("warnings: %s", w)
	}
	checkServes(t, addr)
}

func TestHostileLineWithoutNewline(t *testing.T) {
	srv := &Server{EnvTimeout: 200 * time.Millisecond, ReplyTimeout: 200 * time.Millisecond,
		Handlers: map[string]Handler{"set": setHandler}}
	addr, sink, _ := startServer(t, srv)

	c := dial(t, addr)
	c.Write([]byte("agi_network: yes\nagi_network_script: set")) // no LF, ever
	expectClosed(t, c, 3*time.Second)

	// The same inside a reply.
	c = dial(t, addr)
	br := bufio.NewReader(c)
	c.Write([]byte(envBlock("set")))
	br.ReadString('\n')
	c.Write([]byte("200 result=1"))
	expectClosed(t, c, 3*time.Second)
	if w := sink.atLeast(slog.LevelWarn); len(w) != 2 {
		t.Errorf("want 2 warnings, got %q", w)
	}
	checkServes(t, addr)
}

// TestHostileNeverReads: the peer sends replies ahead and never reads what
// the server writes; the socket buffers fill and the write deadline, not a
// hung goroutine, ends it.
func TestHostileNeverReads(t *testing.T) {
	errc := make(chan error, 1)
	var sent atomic.Int64
	srv := &Server{
		ReplyTimeout: 300 * time.Millisecond,
		Handlers: map[string]Handler{
			"flood": HandlerFunc(func(ctx context.Context, s *Session) error {
				big := strings.Repeat("x", 8000)
				for {
					if err := s.SetVariable(ctx, "X", big); err != nil {
						errc <- err
						return err
					}
					sent.Add(1)
				}
			}),
			"set": setHandler,
		},
	}
	addr, _, _ := startServer(t, srv)
	c := dial(t, addr)
	c.(*net.TCPConn).SetReadBuffer(4096)
	c.Write([]byte(envBlock("flood")))
	go func() {
		replies := []byte(strings.Repeat("200 result=1\n", 1000))
		for range 100 {
			if _, err := c.Write(replies); err != nil {
				return
			}
		}
	}()
	select {
	case err := <-errc:
		if !errors.Is(err, os.ErrDeadlineExceeded) {
			t.Errorf("handler ended with %v, want a write deadline error", err)
		}
		t.Logf("handler stopped after %d commands: %v", sent.Load(), err)
	case <-time.After(10 * time.Second):
		t.Fatal("a peer that never reads blocked the handler")
	}
	checkServes(t, addr)
}

// TestHostileManyConnections opens and drops 10,000 connections in several
// ways; afterwards the goroutine count is back near its baseline, memory is
// bounded and the server still answers.
func TestHostileManyConnections(t *testing.T) {
	srv := &Server{
		MaxHandlers:  64,
		HandlerWait:  time.Second,
		EnvTimeout:   time.Second,
		ReplyTimeout: time.Second,
		Handlers:     map[string]Handler{"set": setHandler},
		Logger:       slog.New(slog.DiscardHandler),
	}
	addr, _, _ := startServer(t, srv)
	checkServes(t, addr)
	runtime.GC()
	baseGo := runtime.NumGoroutine()
	var before runtime.MemStats
	runtime.ReadMemStats(&before)

	const total, workers = 10000, 16
	env := envBlock("set")
	var wg sync.WaitGroup
	var dialErrs atomic.Int64
	for w := range workers {
		wg.Go(func() {
			for i := w; i < total; i += workers {
				c, err := net.Dial("tcp", addr)
				if err != nil {
					dialErrs.Add(1)
					continue
				}
				switch i % 4 {
				case 0: // connect and leave
				case 1: // half an environment
					c.Write([]byte(env[:len(env)/2]))
				case 2: // whole environment, gone before the reply
					c.Write([]byte(env))
				case 3: // garbage
					c.Write([]byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n"))
				}
				c.Close()
			}
		})
	}
	wg.Wait()
	if n := dialErrs.Load(); n > total/100 {
		t.Errorf("%d of %d dials failed", n, total)
	}
	// The kernel backlog may still hold closed connections for a while,
	// so the count must stay low, not just touch it.
	waitGoroutines(t, baseGo+5, 20*time.Second)
	runtime.GC()
	var after runtime.MemStats
	runtime.ReadMemStats(&after)
	if grow := int64(after.HeapInuse) - int64(before.HeapInuse); grow > 16<<20 {
		t.Errorf("heap grew by %d bytes", grow)
	}
	checkServes(t, addr)
	waitGoroutines(t, baseGo+5, 5*time.Second)
	t.Logf("goroutines %d→%d, heap in use %d→%d", baseGo, runtime.NumGoroutine(), before.HeapInuse, after.HeapInuse)
}

// waitGoroutines waits until the goroutine count stays at or below max for
// 300 ms, and fails with a dump if it does not within d.
func waitGoroutines(t *testing.T, max int, d time.Duration) {
	t.Helper()
	deadline := time.Now().Add(d)
	low := 0
	for time.Now().Before(deadline) {
		if runtime.NumGoroutine() <= max {
			low++
			if low == 15 {
				return
			}
		} else {
			low = 0
		}
		time.Sleep(20 * time.Millisecond)
	}
	buf := make([]byte, 1<<20)
	buf = buf[:runtime.Stack(buf, true)]
	t.Errorf("goroutines: %d, want at most %d; dump:\n%s", runtime.NumGoroutine(), max, buf[:min(len(buf), 8000)])
}

func ExampleServer() {
	srv := &Server{
		Handlers: map[string]Handler{
			// AGI(agi://127.0.0.1/chaninfo?var=SMS_DA)
			"chaninfo": HandlerFunc(func(ctx context.Context, s *Session) error {
				name := s.Query.Get("var")
				if name == "" {
					name = "EXTEN"
				}
				number, ok, err := s.GetVariable(ctx, name)
				if err != nil {
					return fmt.Errorf("chaninfo: %w", err)
				}
				letter := "U"
				if ok && number == "5551234" {
					letter = "S"
				}
				return s.SetVariable(ctx, "MSG_CHAN_OPT", letter)
			}),
		},
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel() // a real caller cancels on SIGTERM
	fmt.Println(srv.ListenAndServe(ctx))
	// Output: <nil>
}
