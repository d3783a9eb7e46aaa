package main

import (
	"errors"
	"io"
	"net"
	"testing"
	"time"
)

// TestSocketHandsConnectionsOn: a connection that arrives while one server
// has let go of the socket and the next has not taken it yet is neither
// refused nor lost: the next server gets it. Closing a lease ends only that
// server's Accept; closing the socket ends every lease's.
func TestSocketHandsConnectionsOn(t *testing.T) {
	s, err := listenSocket("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	first := s.lease()
	accepted := make(chan error, 1)
	go func() {
		c, err := first.Accept()
		if err == nil {
			c.Close()
		}
		accepted <- err
	}()
	c1, err := net.Dial("tcp", s.addr().String())
	if err != nil {
		t.Fatal(err)
	}
	c1.Close()
	if err := <-accepted; err != nil {
		t.Fatalf("first lease: %v", err)
	}
	first.Close()
	if _, err := first.Accept(); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("a closed lease accepted: %v", err)
	}

	// Between two servers: the client connects and even writes.
	c2, err := net.Dial("tcp", s.addr().String())
	if err != nil {
		t.Fatalf("refused between two servers: %v", err)
	}
	defer c2.Close()
	if _, err := c2.Write([]byte("hello")); err != nil {
		t.Fatal(err)
	}
	time.Sleep(50 * time.Millisecond)
	second := s.lease()
	conn, err := second.Accept()
	if err != nil {
		t.Fatalf("second lease: %v", err)
	}
	conn.SetDeadline(time.Now().Add(5 * time.Second))
	buf := make([]byte, 5)
	if _, err := io.ReadFull(conn, buf); err != nil || string(buf) != "hello" {
		t.Fatalf("the waiting connection: %q %v", buf, err)
	}
	conn.Close()

	blocked := make(chan error, 1)
	go func() { _, err := second.Accept(); blocked <- err }()
	s.close()
	select {
	case err := <-blocked:
		if !errors.Is(err, net.ErrClosed) {
			t.Fatalf("Accept after the socket closed: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Accept did not return when the socket closed")
	}
	if _, err := net.DialTimeout("tcp", s.addr().String(), time.Second); err == nil {
		t.Fatal("the socket still listens after close")
	}
}
