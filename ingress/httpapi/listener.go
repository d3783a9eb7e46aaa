package httpapi

import (
	"io"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// Defaults for the server the API runs in (cmd's [http] section).
const (
	// DefaultMaxConns bounds the HTTP server's open connections: far above
	// what scripts and monitoring need, far below what exhausts the process.
	DefaultMaxConns = 4096
	// DefaultHeaderTimeout is the deadline for a connection's first bytes,
	// the request line and headers.
	DefaultHeaderTimeout = 5 * time.Second
)

// How a connection over the cap is turned away; see CapListener.
const (
	maxRejecters  = 32
	rejectTimeout = time.Second
	rejectDrain   = 4096
)

// rejectResponse is what a client over the cap reads before the close.
const rejectResponse = "HTTP/1.1 503 Service Unavailable\r\n" +
	"Content-Type: text/plain; charset=utf-8\r\nRetry-After: 1\r\nConnection: close\r\nContent-Length: 33\r\n\r\n" +
	"too many connections; try again\n"

// CapListener keeps at most a fixed number of accepted connections open. Past
// the cap, Accept turns each new connection away at once and goes on
// accepting, so the HTTP server never sees it.
//
// Why refuse rather than block like golang.org/x/net/netutil.LimitListener: a
// listener that stops calling accept does not stop clients from connecting.
// The kernel completes their handshakes into the backlog, so each client sends
// its request and then waits, unanswered, for its whole timeout (a script's
// POST, a monitoring check); once the backlog is full, new SYNs are dropped and
// clients stall in retransmits. A prompt "503 Service Unavailable" with
// Retry-After tells a client at once to come back, and keeps the accept loop
// draining the backlog, which is what lets a real request through again as
// soon as the flood's connections time out.
//
// The 503 is written, and the client's request read away so the close is a
// FIN rather than a reset that could discard the answer, by at most a few
// goroutines at a time; beyond that a connection is simply closed, so a flood
// costs no more than the cap.
type CapListener struct {
	net.Listener
	max      int64
	open     atomic.Int64
	refused  atomic.Uint64
	onRefuse func()
	reject   chan struct{} // slots for polite rejections
}

// LimitListener wraps l so that at most max connections are open (max <= 0:
// DefaultMaxConns). onRefuse, when not nil, is called for every connection
// turned away (metrics); it must return quickly.
func LimitListener(l net.Listener, max int, onRefuse func()) *CapListener {
	if max <= 0 {
		max = DefaultMaxConns
	}
	return &CapListener{Listener: l, max: int64(max), onRefuse: onRefuse, reject: make(chan struct{}, maxRejecters)}
}

// Accept returns the next connection within the cap.
func (c *CapListener) Accept() (net.Conn, error) {
	for {
		conn, err := c.Listener.Accept()
		if err != nil {
			return nil, err
		}
		if c.open.Add(1) <= c.max {
			return &cappedConn{Conn: conn, l: c}, nil
		}
		c.open.Add(-1)
		c.refused.Add(1)
		if c.onRefuse != nil {
			c.onRefuse()
		}
		select {
		case c.reject <- struct{}{}:
			go func() {
				defer func() { <-c.reject }()
				turnAway(conn)
			}()
		default:
			conn.Close()
		}
	}
}

// Open is the number of connections open now.
func (c *CapListener) Open() int { return int(c.open.Load()) }

// Refused is the number of connections turned away so far.
func (c *CapListener) Refused() uint64 { return c.refused.Load() }

// turnAway answers 503 and closes gracefully, all within rejectTimeout.
func turnAway(conn net.Conn) {
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(rejectTimeout))
	if _, err := io.WriteString(conn, rejectResponse); err != nil {
		return
	}
	if cw, ok := conn.(interface{ CloseWrite() error }); ok && cw.CloseWrite() == nil {
		io.CopyN(io.Discard, conn, rejectDrain)
	}
}

// cappedConn gives its slot back exactly once, however often it is closed.
type cappedConn struct {
	net.Conn
	l    *CapListener
	once sync.Once
}

func (c *cappedConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(func() { c.l.open.Add(-1) })
	return err
}

// CloseWrite keeps the half-close net/http uses before closing a connection.
func (c *cappedConn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return nil
}

// FirstBytesTimeouts returns an http.Server ConnState hook that calls onTimeout
// for every connection closed without a single request after at least timeout
// (the server's ReadHeaderTimeout): a client that connected and said nothing,
// or too slowly. net/http closes such connections itself but does not say so.
// A client that leaves sooner of its own accord is not counted.
func FirstBytesTimeouts(timeout time.Duration, onTimeout func()) func(net.Conn, http.ConnState) {
	var mu sync.Mutex
	born := map[net.Conn]time.Time{}
	return func(c net.Conn, st http.ConnState) {
		switch st {
		case http.StateNew:
			mu.Lock()
			born[c] = time.Now()
			mu.Unlock()
		case http.StateActive:
			mu.Lock()
			delete(born, c)
			mu.Unlock()
		case http.StateClosed, http.StateHijacked:
			mu.Lock()
			t, silent := born[c]
			delete(born, c)
			mu.Unlock()
			if silent && time.Since(t) >= timeout {
				onTimeout()
			}
		}
	}
}
