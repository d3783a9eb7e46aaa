package main

import (
	"errors"
	"net"
	"sync"
	"time"
)

// socket is a listening TCP socket that outlives the servers using it: serve
// hands it from one server to the next when the configuration is reloaded, so
// that a client connecting meanwhile waits in the kernel's backlog for a
// moment instead of being refused. One goroutine accepts; each server takes
// connections through a lease, and closing a lease (what a server does when it
// shuts down) leaves the socket open for the next one.
type socket struct {
	ln      net.Listener
	results chan acceptResult
	closed  chan struct{} // closed by close
	once    sync.Once
	done    chan struct{} // closed when the accepting goroutine has ended
}

type acceptResult struct {
	conn net.Conn
	err  error
}

func listenSocket(addr string) (*socket, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	s := &socket{ln: ln, results: make(chan acceptResult), closed: make(chan struct{}), done: make(chan struct{})}
	go s.accept()
	return s, nil
}

// accept hands every connection, and every error but the socket's closing, to
// whichever lease asks next. A connection accepted while no server leases the
// socket waits here until one does.
func (s *socket) accept() {
	defer close(s.done)
	var backoff time.Duration
	for {
		conn, err := s.ln.Accept()
		if errors.Is(err, net.ErrClosed) {
			return
		}
		select {
		case s.results <- acceptResult{conn, err}:
		case <-s.closed:
			if conn != nil {
				conn.Close()
			}
			return
		}
		if err == nil {
			backoff = 0
			continue
		}
		// Typically EMFILE: the server has logged it; give connections time
		// to end rather than spin.
		backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
		select {
		case <-time.After(backoff):
		case <-s.closed:
			return
		}
	}
}

// lease is a view of the socket for one server.
func (s *socket) lease() net.Listener {
	return &lease{s: s, closed: make(chan struct{})}
}

func (s *socket) addr() net.Addr { return s.ln.Addr() }

// close ends the socket for good and waits for the accepting goroutine.
func (s *socket) close() {
	s.once.Do(func() {
		close(s.closed)
		s.ln.Close()
	})
	<-s.done
}

type lease struct {
	s      *socket
	closed chan struct{}
	once   sync.Once
}

func (l *lease) Accept() (net.Conn, error) {
	select {
	case <-l.closed:
		return nil, net.ErrClosed
	default:
	}
	select {
	case r := <-l.s.results:
		return r.conn, r.err
	case <-l.closed:
		return nil, net.ErrClosed
	case <-l.s.closed:
		return nil, net.ErrClosed
	}
}

// Close ends the lease, not the socket.
func (l *lease) Close() error {
	l.once.Do(func() { close(l.closed) })
	return nil
}

func (l *lease) Addr() net.Addr { return l.s.addr() }
