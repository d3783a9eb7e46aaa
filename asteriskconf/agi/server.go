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
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"
)

// DefaultAddr is where Asterisk looks for FastAGI when a URL has no port
// (AGI_PORT 4573); loopback because the protocol has no authentication.
const DefaultAddr = "127.0.0.1:4573"

// Server defaults; see the Server fields.
const (
	DefaultMaxConns       = 4096
	DefaultMaxHandlers    = 256
	DefaultHandlerWait    = 2 * time.Second
	DefaultSessionTimeout = 2 * time.Minute
	DefaultShutdownGrace  = 10 * time.Second
	// warnEvery spaces the warnings about turned-away connections: a flood
	// must show in the log without becoming one.
	warnEvery = 10 * time.Second
)

// ConnEvent is something the server did to a connection that did not get a
// handler: what Server.Observe is told and Stats counts.
type ConnEvent int

const (
	// ConnRefused: MaxConns connections were already open; the new one was
	// closed at once.
	ConnRefused ConnEvent = iota
	// ConnTimeout: the environment block did not arrive within EnvTimeout.
	ConnTimeout
	// ConnBusy: MaxHandlers handlers were running and none finished within
	// HandlerWait.
	ConnBusy
)

func (e ConnEvent) String() string {
	switch e {
	case ConnRefused:
		return "refused"
	case ConnTimeout:
		return "timeout"
	case ConnBusy:
		return "busy"
	}
	return fmt.Sprintf("ConnEvent(%d)", int(e))
}

// Stats counts a server's connections since it was made.
type Stats struct {
	Open     int    // connections open now, handled or waiting for their environment
	Refused  uint64 // ConnRefused
	Timeouts uint64 // ConnTimeout
	Busy     uint64 // ConnBusy
}

// Handler answers one FastAGI connection. Returning ends the connection;
// an error is logged (at Info when it is ErrHangup: the caller went away).
// The Session must not be used after ServeAGI returns: the server reuses
// its buffer for the next connection.
type Handler interface {
	ServeAGI(ctx context.Context, s *Session) error
}

// HandlerFunc adapts a function to Handler.
type HandlerFunc func(ctx context.Context, s *Session) error

// ServeAGI calls f.
func (f HandlerFunc) ServeAGI(ctx context.Context, s *Session) error { return f(ctx, s) }

// Server is a FastAGI server. Configure the fields before Serve; do not
// change them while it runs. Zero values take the defaults.
type Server struct {
	// Addr to listen on for ListenAndServe (DefaultAddr).
	Addr string
	// Handlers by script path, without query: AGI(agi://host/chaninfo?var=X)
	// runs Handlers["chaninfo"] with Session.Query var=X. A connection for
	// an unknown script is logged and closed, which Asterisk reports as
	// AGISTATUS=FAILURE.
	Handlers map[string]Handler
	// MaxConns bounds open connections (DefaultMaxConns), whatever they are
	// doing. Every accepted connection is served by a goroutine of its own at
	// once, so idle or slow peers never delay the next accept; beyond the cap
	// a new connection is closed at once (ConnRefused), which Asterisk
	// reports as AGISTATUS=FAILURE without holding the call.
	MaxConns int
	// MaxHandlers bounds handlers running at once (DefaultMaxHandlers): the
	// work behind them (database, spool) has its own limits. A connection
	// whose environment has arrived waits up to HandlerWait
	// (DefaultHandlerWait) for one to finish, then is closed (ConnBusy).
	MaxHandlers int
	HandlerWait time.Duration
	// EnvTimeout is the deadline for a connection's first bytes, the whole
	// environment block (DefaultEnvTimeout): Asterisk sends it at once, so a
	// silent peer is closed then (ConnTimeout).
	// ReplyTimeout, MaxEnvBytes, MaxReplyBytes: see SessionOptions.
	EnvTimeout    time.Duration
	ReplyTimeout  time.Duration
	MaxEnvBytes   int
	MaxReplyBytes int
	// SessionTimeout bounds a whole connection, handler included; the
	// handler's ctx carries it (DefaultSessionTimeout).
	SessionTimeout time.Duration
	// ShutdownGrace is how long running handlers may go on after Serve's ctx
	// is cancelled before their contexts are cancelled (DefaultShutdownGrace).
	ShutdownGrace time.Duration
	// Logger receives one line per failed connection, Debug per success
	// (slog.Default when nil). Turned-away connections are summed up in one
	// warning every few seconds instead.
	Logger *slog.Logger
	// Observe, when set, is told of every connection turned away, e.g. to
	// count it in metrics. It must return quickly.
	Observe func(ConnEvent)

	open                    atomic.Int64
	live                    liveConns
	refused, timeouts, busy atomic.Uint64
	warned                  [3]atomic.Int64 // per ConnEvent: unix nanos of the last warning
}

// Stats reports the server's connection counts; safe while it serves.
func (srv *Server) Stats() Stats {
	return Stats{Open: int(srv.open.Load()), Refused: srv.refused.Load(), Timeouts: srv.timeouts.Load(), Busy: srv.busy.Load()}
}

// turnedAway counts ev, tells Observe and logs a warning at most every
// warnEvery per kind of event.
func (srv *Server) turnedAway(ev ConnEvent, remote net.Addr) {
	var total uint64
	switch ev {
	case ConnRefused:
		total = srv.refused.Add(1)
	case ConnTimeout:
		total = srv.timeouts.Add(1)
	case ConnBusy:
		total = srv.busy.Add(1)
	}
	if srv.Observe != nil {
		srv.Observe(ev)
	}
	now := time.Now().UnixNano()
	last := srv.warned[ev].Load()
	if now-last < int64(warnEvery) || !srv.warned[ev].CompareAndSwap(last, now) {
		return
	}
	log := srv.logger()
	switch ev {
	case ConnRefused:
		log.Warn("agi: connection refused: too many open connections", "remote", remote, "max_conns", orDefault(srv.MaxConns, DefaultMaxConns), "refused_total", total)
	case ConnTimeout:
		log.Warn("agi: connection closed: no environment block in time", "remote", remote, "env_timeout", orDefault(srv.EnvTimeout, DefaultEnvTimeout), "timeouts_total", total)
	case ConnBusy:
		log.Warn("agi: connection closed: all handlers busy", "remote", remote, "max_handlers", orDefault(srv.MaxHandlers, DefaultMaxHandlers), "busy_total", total)
	}
}

// ListenAndServe listens on Addr (DefaultAddr) and serves until ctx is
// cancelled; see Serve.
func (srv *Server) ListenAndServe(ctx context.Context) error {
	addr := srv.Addr
	if addr == "" {
		addr = DefaultAddr
	}
	l, err := Listen(ctx, addr)
	if err != nil {
		return err
	}
	return srv.Serve(ctx, l)
}

// Listen opens a TCP listener for Serve whose connections have no TCP
// keepalive. A FastAGI session is bounded by SessionTimeout and every read by
// ReplyTimeout, so keepalive probes would never decide anything; switching
// them on costs four setsockopt calls per accepted connection, a tenth of the
// system calls the server makes for a chaninfo request (issue 17).
func Listen(ctx context.Context, addr string) (net.Listener, error) {
	lc := net.ListenConfig{KeepAlive: -1}
	l, err := lc.Listen(ctx, "tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("agi: listen %s: %w", addr, err)
	}
	return l, nil
}

// Serve accepts connections on l until ctx is cancelled, then closes l, lets
// running handlers finish for up to ShutdownGrace, cancels the contexts of
// those still running and waits for them. It returns nil after such a
// shutdown, and the listener's error if l fails otherwise. Serve owns l.
//
// The accept loop does nothing but accept, count and start a goroutine: the
// environment is read, and a handler slot waited for, by the connection's own
// goroutine. So thousands of idle connections cost memory within MaxConns,
// never the latency of the next request.
func (srv *Server) Serve(ctx context.Context, l net.Listener) error {
	log := srv.logger()
	maxConns := int64(orDefault(srv.MaxConns, DefaultMaxConns))
	grace := orDefault(srv.ShutdownGrace, DefaultShutdownGrace)

	// Handlers outlive ctx by the grace period, so they get their own.
	connCtx, cancelConns := context.WithCancelCause(context.WithoutCancel(ctx))
	defer cancelConns(nil)
	stopClose := context.AfterFunc(ctx, func() { l.Close() })
	defer stopClose()

	slots := make(chan struct{}, orDefault(srv.MaxHandlers, DefaultMaxHandlers))
	serve := func(conn net.Conn) {
		defer srv.open.Add(-1)
		srv.serveConn(connCtx, conn, slots)
	}
	workers := connWorkers{max: cap(slots)}
	var wg sync.WaitGroup
	stopSweep := make(chan struct{})
	wg.Go(func() {
		t := time.NewTicker(workerIdle)
		defer t.Stop()
		for {
			select {
			case <-t.C:
				workers.sweep()
			case <-stopSweep:
				return
			}
		}
	})
	var serveErr error
	backoff := time.Duration(0)
	for {
		conn, err := l.Accept()
		if err != nil {
			if ctx.Err() != nil {
				break
			}
			if errors.Is(err, net.ErrClosed) {
				serveErr = fmt.Errorf("agi: accept: %w", err)
				break
			}
			// Typically EMFILE: wait for connections to finish, as
			// net/http does, instead of spinning.
			backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
			log.Warn("agi: accept failed, retrying", "err", err, "retry_in", backoff)
			if sleepCtx(ctx, backoff) != nil {
				break
			}
			continue
		}
		backoff = 0
		if srv.open.Load() >= maxConns {
			conn.Close()
			srv.turnedAway(ConnRefused, conn.RemoteAddr())
			continue
		}
		srv.open.Add(1)
		if !workers.give(conn) {
			w := &connWorker{next: make(chan net.Conn, 1)}
			wg.Go(func() { workers.run(w, conn, serve) })
		}
	}
	l.Close()
	close(stopSweep)
	workers.stop()

	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	t := time.NewTimer(grace)
	defer t.Stop()
	select {
	case <-done:
	case <-t.C:
		log.Warn("agi: shutdown grace over, cancelling running handlers", "grace", grace)
		cancelConns(errors.New("agi: server shut down"))
		// After the cancel: a command that sets its deadline later sees
		// its ctx ended (Session.withDeadline).
		srv.live.unblockAll()
		<-done
	}
	return serveErr
}

// connWorkers are the goroutines that serve connections. One that has
// finished a connection waits for the next instead of ending, up to max of
// them: a new goroutine per connection grew its stack (growStack) every time,
// which copying and walking its frames made 8 % of the instructions of a
// chaninfo request (issue 17, callgrind). The accept loop never waits for one:
// with none idle it starts another, so every connection is still served at
// once.
type connWorkers struct {
	mu      sync.Mutex
	idle    []*connWorker // the most recently idle last
	low     int           // the fewest idle since the last sweep
	max     int
	stopped bool
}

// workerIdle is how often idle workers are swept: one idle for a whole
// period ends, so after a burst the goroutines go within two.
const workerIdle = time.Second

type connWorker struct {
	next chan net.Conn // buffered: give never blocks
}

// give hands conn to an idle worker, if there is one.
func (p *connWorkers) give(conn net.Conn) bool {
	p.mu.Lock()
	n := len(p.idle)
	if n == 0 {
		p.mu.Unlock()
		return false
	}
	w := p.idle[n-1]
	p.idle[n-1] = nil
	p.idle = p.idle[:n-1]
	p.low = min(p.low, n-1)
	p.mu.Unlock()
	w.next <- conn
	return true
}

// run serves conn, then the connections given to w, until stop or a full
// idle list ends it.
func (p *connWorkers) run(w *connWorker, conn net.Conn, serve func(net.Conn)) {
	for {
		serve(conn)
		if !p.park(w) {
			return
		}
		var ok bool
		if conn, ok = <-w.next; !ok {
			return
		}
	}
}

func (p *connWorkers) park(w *connWorker) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.stopped || len(p.idle) >= p.max {
		return false
	}
	p.idle = append(p.idle, w)
	return true
}

// sweep ends the workers that stayed idle since the last sweep: the bottom
// of the idle list, which give never reached.
func (p *connWorkers) sweep() {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := p.low
	for _, w := range p.idle[:n] {
		close(w.next)
	}
	rest := copy(p.idle, p.idle[n:])
	clear(p.idle[rest:])
	p.idle = p.idle[:rest]
	p.low = rest
}

// stop ends the idle workers, and each busy one when its connection is done.
func (p *connWorkers) stop() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.stopped = true
	for _, w := range p.idle {
		close(w.next)
	}
	p.idle = nil
}

// acquire takes a slot, waiting up to wait.
func acquire(ctx context.Context, slots chan struct{}, wait time.Duration) bool {
	select {
	case slots <- struct{}{}:
		return true
	default:
	}
	t := time.NewTimer(wait)
	defer t.Stop()
	select {
	case slots <- struct{}{}:
		return true
	case <-t.C:
	case <-ctx.Done():
	}
	return false
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// readers are the sessions' read buffers, reused: a fresh one per
// connection was a third of the bytes a request allocated.
var readers = sync.Pool{New: func() any { return bufio.NewReaderSize(nil, readerSize) }}

func (srv *Server) serveConn(ctx context.Context, conn net.Conn, slots chan struct{}) {
	growStack(0)
	defer conn.Close()
	log := srv.logger()
	start := time.Now()
	ctx, cancel := context.WithTimeout(ctx, orDefault(srv.SessionTimeout, DefaultSessionTimeout))
	defer cancel()
	// When ctx ends, blocked I/O returns at once, without a watcher per
	// connection (an AfterFunc was three allocations and two registrations
	// per request, issue 17): every deadline the session sets is cut to
	// ctx's, and Serve past-dates the live connections' deadlines when it
	// cancels them at shutdown.
	srv.live.add(conn)
	defer srv.live.remove(conn)
	br := readers.Get().(*bufio.Reader)
	br.Reset(conn)
	defer func() {
		br.Reset(nil)
		readers.Put(br)
	}()

	s, err := newSession(ctx, conn, SessionOptions{
		EnvTimeout:    srv.EnvTimeout,
		ReplyTimeout:  srv.ReplyTimeout,
		MaxEnvBytes:   srv.MaxEnvBytes,
		MaxReplyBytes: srv.MaxReplyBytes,
	}, br, ctx.Done())
	if err != nil {
		switch {
		case errors.Is(err, io.EOF):
			// Connected and left without a byte: a port probe, not Asterisk.
			log.Debug("agi: connection closed before its environment", "remote", conn.RemoteAddr())
		case errors.Is(err, os.ErrDeadlineExceeded) && ctx.Err() == nil:
			srv.turnedAway(ConnTimeout, conn.RemoteAddr())
			log.Debug("agi: no environment in time, connection closed", "remote", conn.RemoteAddr(), "err", err)
		default:
			log.Warn("agi: bad environment, connection closed", "remote", conn.RemoteAddr(), "err", err)
		}
		return
	}
	h, ok := srv.Handlers[s.Script]
	if !ok {
		sessionLog(log, s).Warn("agi: no handler for script, connection closed", "request", s.Env.Request())
		return
	}
	if !acquire(ctx, slots, orDefault(srv.HandlerWait, DefaultHandlerWait)) {
		srv.turnedAway(ConnBusy, conn.RemoteAddr())
		return
	}
	defer func() { <-slots }()
	err = runHandler(ctx, h, s)
	switch {
	case err == nil:
		if log.Enabled(ctx, slog.LevelDebug) {
			sessionLog(log, s).Debug("agi: session done", "took", time.Since(start), "hungup", s.Hungup())
		}
	case errors.As(err, new(*panicError)):
		sessionLog(log, s).Error("agi: handler panicked, connection closed", "err", err, "took", time.Since(start))
		return
	case errors.Is(err, ErrHangup):
		sessionLog(log, s).Info("agi: channel hung up during session", "err", err, "took", time.Since(start))
	default:
		sessionLog(log, s).Warn("agi: handler failed", "err", err, "took", time.Since(start), "hungup", s.Hungup())
	}
	// The deferred Close ends the session. Asterisk answers our EOF with one
	// last HANGUP and closes without reading again (res_agi.c run_agi), so
	// the reset our closed socket sends back reaches a socket it is closing
	// and nothing is logged on either side. Half-closing and reading until
	// its EOF, as this server did, cost a tenth of a chaninfo request's CPU
	// and held a goroutine for a peer that never closed (issue 17).
}

// liveConns are the connections being served, for Serve to unblock at
// shutdown.
type liveConns struct {
	mu sync.Mutex
	m  map[net.Conn]struct{}
}

func (l *liveConns) add(c net.Conn) {
	l.mu.Lock()
	if l.m == nil {
		l.m = map[net.Conn]struct{}{}
	}
	l.m[c] = struct{}{}
	l.mu.Unlock()
}

func (l *liveConns) remove(c net.Conn) {
	l.mu.Lock()
	delete(l.m, c)
	l.mu.Unlock()
}

// unblockAll makes every blocked read or write of a live connection return.
func (l *liveConns) unblockAll() {
	l.mu.Lock()
	defer l.mu.Unlock()
	for c := range l.m {
		c.SetDeadline(aLongTimeAgo)
	}
}

// growStack makes the connection's goroutine grow its stack now, from the
// 2 KiB every goroutine starts with to the 8 KiB a session needs, while only
// two frames are on it (a connWorker's stack has grown already, unless the
// GC has shrunk it while it waited). Grown on demand deep in the read path
// instead, the stack was copied twice with every frame on it adjusted: a
// quarter of the instructions the server spent per connection (issue 17,
// callgrind).
//
//go:noinline
func growStack(i int) byte {
	var pad [3 << 10]byte
	return pad[i]
}

// sessionLog is log with the session's script, channel and unique id: made
// only when there is something to log.
func sessionLog(log *slog.Logger, s *Session) *slog.Logger {
	return log.With("script", s.Script, "channel", s.Env.Channel(), "uniqueid", s.Env.UniqueID())
}

// runHandler runs h, turning a panic into an error so one bad call cannot
// take the server down.
func runHandler(ctx context.Context, h Handler, s *Session) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = &panicError{value: p, stack: debug.Stack()}
		}
	}()
	return h.ServeAGI(ctx, s)
}

// panicError is a recovered handler panic with its stack.
type panicError struct {
	value any
	stack []byte
}

func (e *panicError) Error() string {
	return fmt.Sprintf("agi: handler panic: %v\n%s", e.value, e.stack)
}

func (srv *Server) logger() *slog.Logger {
	if srv.Logger != nil {
		return srv.Logger
	}
	return slog.Default()
}

func orDefault[T int | time.Duration](v, def T) T {
	if v <= 0 {
		return def
	}
	return v
}
