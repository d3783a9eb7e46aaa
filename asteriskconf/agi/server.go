package agi

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"runtime/debug"
	"sync"
	"time"
)

// DefaultAddr is where Asterisk looks for FastAGI when a URL has no port
// (AGI_PORT 4573); loopback because the protocol has no authentication.
const DefaultAddr = "127.0.0.1:4573"

// Server defaults; see the Server fields.
const (
	DefaultMaxConns       = 256
	DefaultAcceptWait     = 500 * time.Millisecond
	DefaultSessionTimeout = 2 * time.Minute
	DefaultShutdownGrace  = 10 * time.Second
	// lingerTimeout bounds waiting for Asterisk's last HANGUP after we
	// half-closed; Asterisk closes at once, anything else is a stuck peer.
	lingerTimeout = time.Second
	lingerBytes   = 4096
)

// Handler answers one FastAGI connection. Returning ends the connection;
// an error is logged (at Info when it is ErrHangup: the caller went away).
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
	// MaxConns bounds connections served at once (DefaultMaxConns). When all
	// are busy the accept loop waits up to AcceptWait for one to finish,
	// then closes the new connection (logged) rather than let a queue grow:
	// a dialplan waiting on AGI holds a call, so failing fast is kinder.
	MaxConns   int
	AcceptWait time.Duration
	// EnvTimeout, ReplyTimeout, MaxEnvBytes, MaxReplyBytes: see SessionOptions.
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
	// (slog.Default when nil).
	Logger *slog.Logger
}

// ListenAndServe listens on Addr (DefaultAddr) and serves until ctx is
// cancelled; see Serve.
func (srv *Server) ListenAndServe(ctx context.Context) error {
	addr := srv.Addr
	if addr == "" {
		addr = DefaultAddr
	}
	var lc net.ListenConfig
	l, err := lc.Listen(ctx, "tcp", addr)
	if err != nil {
		return fmt.Errorf("agi: listen %s: %w", addr, err)
	}
	return srv.Serve(ctx, l)
}

// Serve accepts connections on l until ctx is cancelled, then closes l, lets
// running handlers finish for up to ShutdownGrace, cancels the contexts of
// those still running and waits for them. It returns nil after such a
// shutdown, and the listener's error if l fails otherwise. Serve owns l.
func (srv *Server) Serve(ctx context.Context, l net.Listener) error {
	log := srv.logger()
	maxConns := orDefault(srv.MaxConns, DefaultMaxConns)
	acceptWait := orDefault(srv.AcceptWait, DefaultAcceptWait)
	grace := orDefault(srv.ShutdownGrace, DefaultShutdownGrace)

	// Handlers outlive ctx by the grace period, so they get their own.
	connCtx, cancelConns := context.WithCancelCause(context.WithoutCancel(ctx))
	defer cancelConns(nil)
	stopClose := context.AfterFunc(ctx, func() { l.Close() })
	defer stopClose()

	slots := make(chan struct{}, maxConns)
	var wg sync.WaitGroup
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
		if !acquire(ctx, slots, acceptWait) {
			log.Warn("agi: connection refused: all slots busy", "remote", conn.RemoteAddr(), "max_conns", maxConns)
			conn.Close()
			continue
		}
		wg.Go(func() {
			defer func() { <-slots }()
			srv.serveConn(connCtx, conn)
		})
	}
	l.Close()

	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	t := time.NewTimer(grace)
	defer t.Stop()
	select {
	case <-done:
	case <-t.C:
		log.Warn("agi: shutdown grace over, cancelling running handlers", "grace", grace)
		cancelConns(errors.New("agi: server shut down"))
		<-done
	}
	return serveErr
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

func (srv *Server) serveConn(ctx context.Context, conn net.Conn) {
	defer conn.Close()
	log := srv.logger()
	start := time.Now()
	ctx, cancel := context.WithTimeout(ctx, orDefault(srv.SessionTimeout, DefaultSessionTimeout))
	defer cancel()

	s, err := NewSession(ctx, conn, SessionOptions{
		EnvTimeout:    srv.EnvTimeout,
		ReplyTimeout:  srv.ReplyTimeout,
		MaxEnvBytes:   srv.MaxEnvBytes,
		MaxReplyBytes: srv.MaxReplyBytes,
	})
	if err != nil {
		level := slog.LevelWarn
		if errors.Is(err, io.EOF) {
			// Connected and left without a byte: a port probe, not Asterisk.
			level = slog.LevelDebug
		}
		log.Log(ctx, level, "agi: bad environment, connection closed", "remote", conn.RemoteAddr(), "err", err)
		return
	}
	log = log.With("script", s.Script, "channel", s.Env.Channel(), "uniqueid", s.Env.UniqueID())
	h, ok := srv.Handlers[s.Script]
	if !ok {
		log.Warn("agi: no handler for script, connection closed", "request", s.Env.Request())
		linger(conn)
		return
	}
	err = runHandler(ctx, h, s)
	switch {
	case err == nil:
		log.Debug("agi: session done", "took", time.Since(start), "hungup", s.Hungup())
	case errors.As(err, new(*panicError)):
		log.Error("agi: handler panicked, connection closed", "err", err, "took", time.Since(start))
		return
	case errors.Is(err, ErrHangup):
		log.Info("agi: channel hung up during session", "err", err, "took", time.Since(start))
	default:
		log.Warn("agi: handler failed", "err", err, "took", time.Since(start), "hungup", s.Hungup())
	}
	if s.Err() == nil {
		linger(conn)
	}
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

// linger ends the session the way Asterisk expects: half-close so it sees
// EOF, then read its final "HANGUP" until it closes, so our close does not
// turn into a reset on its write. Bounded in time and bytes.
func linger(conn net.Conn) {
	cw, ok := conn.(interface{ CloseWrite() error })
	if !ok || cw.CloseWrite() != nil {
		return
	}
	conn.SetReadDeadline(time.Now().Add(lingerTimeout))
	io.CopyN(io.Discard, conn, lingerBytes)
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
