package agi

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"strings"
	"sync/atomic"
	"time"
)

// Defaults for SessionOptions.
const (
	DefaultEnvTimeout   = 5 * time.Second
	DefaultReplyTimeout = 10 * time.Second
)

// SessionOptions bound one connection. Zero fields take the defaults.
type SessionOptions struct {
	// EnvTimeout bounds reading the environment block.
	EnvTimeout time.Duration
	// ReplyTimeout bounds each command: writing it and reading its reply.
	ReplyTimeout time.Duration
	// MaxEnvBytes bounds the environment block (DefaultMaxEnvBytes).
	MaxEnvBytes int
	// MaxReplyBytes bounds one reply (DefaultMaxReplyBytes).
	MaxReplyBytes int
}

func (o SessionOptions) withDefaults() SessionOptions {
	if o.EnvTimeout <= 0 {
		o.EnvTimeout = DefaultEnvTimeout
	}
	if o.ReplyTimeout <= 0 {
		o.ReplyTimeout = DefaultReplyTimeout
	}
	if o.MaxEnvBytes <= 0 {
		o.MaxEnvBytes = DefaultMaxEnvBytes
	}
	if o.MaxReplyBytes <= 0 {
		o.MaxReplyBytes = DefaultMaxReplyBytes
	}
	return o
}

// Session is one FastAGI connection after its environment block. It is not
// safe for concurrent use: AGI is strictly one command, one reply.
type Session struct {
	// Env is the environment block Asterisk sent.
	Env Env
	// Script is agi_network_script without its query ("chaninfo").
	Script string
	// Query is the parsed query of agi_network_script ("var=X"); nil
	// when the script has none.
	Query url.Values

	conn net.Conn
	br   *bufio.Reader
	opts SessionOptions
	wbuf []byte
	// wbufInit is wbuf's first backing array: a SET VARIABLE line fits, so
	// a connection's commands cost no allocation (growing wbuf from nil
	// was four per chaninfo request).
	wbufInit [128]byte
	err      error // first fatal error; the stream is out of step after it
	hungup   atomic.Bool
	// wired is the Done channel of a context whose end already unblocks
	// conn: the server's per-connection ctx, whose deadline cuts every
	// deadline set here and whose cancelling at shutdown past-dates the
	// connection's, so the commands a handler sends under it need no
	// watcher of their own.
	wired <-chan struct{}
}

// aLongTimeAgo is a deadline in the past: setting it makes blocked reads and
// writes return at once.
var aLongTimeAgo = time.Unix(1, 0)

// NewSession reads the environment block from conn and splits
// agi_network_script into Script and Query. Cancelling ctx, or EnvTimeout,
// aborts the read. The caller keeps ownership of conn.
func NewSession(ctx context.Context, conn net.Conn, opts SessionOptions) (*Session, error) {
	return newSession(ctx, conn, opts, bufio.NewReaderSize(conn, readerSize), nil)
}

// readerSize is a session's read buffer: the environment block (about 600
// bytes) and every reply fit; longer lines are read in pieces.
const readerSize = 4096

// newSession is NewSession reading through br, with wired as Session.wired.
func newSession(ctx context.Context, conn net.Conn, opts SessionOptions, br *bufio.Reader, wired <-chan struct{}) (*Session, error) {
	opts = opts.withDefaults()
	s := &Session{conn: conn, br: br, opts: opts, wired: wired}
	s.wbuf = s.wbufInit[:0]
	if err := s.withDeadline(ctx, opts.EnvTimeout, func() error {
		env, err := ReadEnv(s.br, opts.MaxEnvBytes)
		s.Env = env
		return err
	}); err != nil {
		return nil, err
	}
	script, rawQuery, _ := strings.Cut(s.Env.NetworkScript(), "?")
	s.Script = script
	if rawQuery != "" {
		q, err := url.ParseQuery(rawQuery)
		if err != nil {
			return nil, fmt.Errorf("agi: query of script %.60q: %w", script, err)
		}
		s.Query = q
	}
	return s, nil
}

// RemoteAddr is the address of the Asterisk side.
func (s *Session) RemoteAddr() net.Addr { return s.conn.RemoteAddr() }

// Hungup reports whether Asterisk has sent an unprompted HANGUP so far: the
// channel is gone and only commands allowed on a dead channel (GET/SET
// VARIABLE among them) still work. A HANGUP that has arrived but was not
// yet read behind a reply is not seen until the next command.
func (s *Session) Hungup() bool { return s.hungup.Load() }

// Err returns the error that made the session unusable, or nil.
func (s *Session) Err() error { return s.err }

// Command sends one command, quoting each word, and returns its reply. A
// 200 reply returns a nil error whatever its result; 510, 511 and 520 return
// the reply together with ErrInvalidCommand, ErrHangup or *UsageError, and
// the session stays usable. Any other failure (I/O, timeout, ctx, garbage)
// makes the session unusable.
func (s *Session) Command(ctx context.Context, words ...string) (Reply, error) {
	if s.err != nil {
		return Reply{}, s.err
	}
	line, err := appendCommand(s.wbuf[:0], words)
	if err != nil {
		return Reply{}, err
	}
	s.wbuf = line
	if err := ctx.Err(); err != nil {
		return Reply{}, fmt.Errorf("agi: %s: %w", verb(words), err)
	}
	var reply Reply
	err = s.withDeadline(ctx, s.opts.ReplyTimeout, func() error {
		if _, err := s.conn.Write(line); err != nil {
			return fmt.Errorf("agi: %s: send: %w", verb(words), err)
		}
		r, hangups, err := ReadReply(s.br, s.opts.MaxReplyBytes)
		if hangups > 0 {
			s.hungup.Store(true)
		}
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			return fmt.Errorf("agi: %s: connection closed by Asterisk: %w (%w)", verb(words), ErrHangup, err)
		}
		if err != nil {
			return fmt.Errorf("agi: %s: reply: %w", verb(words), err)
		}
		reply = r
		return nil
	})
	if err != nil {
		s.err = err
		return Reply{}, err
	}
	switch reply.Code {
	case CodeSuccess:
		return reply, nil
	case CodeUsage:
		return reply, &UsageError{Command: verb(words), Reply: reply}
	default:
		return reply, &ReplyError{Command: verb(words), Reply: reply}
	}
}

// withDeadline runs io with a connection deadline of timeout, shortened by
// ctx's deadline, and makes cancelling ctx unblock it.
func (s *Session) withDeadline(ctx context.Context, timeout time.Duration, io func() error) error {
	deadline := time.Now().Add(timeout)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	if err := s.conn.SetDeadline(deadline); err != nil {
		return fmt.Errorf("agi: set deadline: %w", err)
	}
	done := ctx.Done()
	if done == nil {
		return io()
	}
	if done == s.wired {
		// The server past-dates the deadline when it cancels ctx, and
		// the deadline above is no later than ctx's own; had ctx ended
		// before the SetDeadline above, ctx.Err() says so now.
		err := ctx.Err()
		if err == nil {
			err = io()
		}
		if err != nil && ctx.Err() != nil {
			err = fmt.Errorf("%w (%w)", context.Cause(ctx), err)
		}
		return err
	}
	fired := make(chan struct{})
	stop := context.AfterFunc(ctx, func() {
		s.conn.SetDeadline(aLongTimeAgo)
		close(fired)
	})
	err := io()
	if !stop() {
		// Wait, so the past deadline cannot land on a later command.
		<-fired
		if err != nil {
			err = fmt.Errorf("%w (%w)", context.Cause(ctx), err)
		}
	}
	return err
}

// GetVariable returns the value of a channel variable, or of a dialplan
// function when name ends in ")" (e.g. "MESSAGE(from)"). ok is false when
// the variable is not set; an empty value that is set gives "", true.
func (s *Session) GetVariable(ctx context.Context, name string) (value string, ok bool, err error) {
	r, err := s.Command(ctx, "GET", "VARIABLE", name)
	if err != nil {
		return "", false, err
	}
	return variableValue(r)
}

// GetFullVariable evaluates expr with ${…} substitution on the channel.
func (s *Session) GetFullVariable(ctx context.Context, expr string) (value string, ok bool, err error) {
	r, err := s.Command(ctx, "GET", "FULL", "VARIABLE", expr)
	if err != nil {
		return "", false, err
	}
	return variableValue(r)
}

func variableValue(r Reply) (string, bool, error) {
	switch {
	case r.Result == 0:
		return "", false, nil
	case r.Result == 1 && r.HasData:
		return r.Data, true, nil
	}
	return "", false, fmt.Errorf("%w: unexpected variable reply result=%d", ErrProtocol, r.Result)
}

// SetVariable sets a channel variable. The value may hold spaces, quotes,
// backslashes and any UTF-8, but not CR, LF or NUL.
func (s *Session) SetVariable(ctx context.Context, name, value string) error {
	if name == "" {
		return errors.New("agi: SET VARIABLE: empty name")
	}
	r, err := s.Command(ctx, "SET", "VARIABLE", name, value)
	if err != nil {
		return err
	}
	if r.Result != 1 {
		return fmt.Errorf("agi: SET VARIABLE %s: result=%d", name, r.Result)
	}
	return nil
}

// Verbose logs msg on the Asterisk console at level (1-4).
func (s *Session) Verbose(ctx context.Context, msg string, level int) error {
	_, err := s.Command(ctx, "VERBOSE", msg, fmt.Sprint(level))
	return err
}
