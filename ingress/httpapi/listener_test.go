package httpapi

import (
	"bufio"
	"net"
	"net/http"
	"sync/atomic"
	"testing"
	"time"
)

func TestCapListener(t *testing.T) {
	raw, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var refused atomic.Int32
	l := LimitListener(raw, 2, func() { refused.Add(1) })
	defer l.Close()
	accepted := make(chan net.Conn, 10)
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				close(accepted)
				return
			}
			accepted <- c
		}
	}()
	dial := func() net.Conn {
		c, err := net.Dial("tcp", raw.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		return c
	}
	dial()
	dial()
	a, b := <-accepted, <-accepted
	if l.Open() != 2 {
		t.Fatalf("open %d, want 2", l.Open())
	}
	over := dial()
	over.SetDeadline(time.Now().Add(5 * time.Second))
	over.Write([]byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n"))
	resp, err := http.ReadResponse(bufio.NewReader(over), nil)
	if err != nil || resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") != "1" {
		t.Fatalf("over the cap: %v %v", resp, err)
	}
	if refused.Load() != 1 || l.Refused() != 1 {
		t.Fatalf("refused %d/%d, want 1", refused.Load(), l.Refused())
	}
	a.Close()
	a.Close() // a second close must not free a second place
	if l.Open() != 1 {
		t.Fatalf("open %d after one close, want 1", l.Open())
	}
	dial()
	select {
	case c := <-accepted:
		c.Close()
	case <-time.After(5 * time.Second):
		t.Fatal("the freed place was not given to the next connection")
	}
	b.Close()
	if l.Open() != 0 {
		t.Fatalf("open %d, want 0", l.Open())
	}
}
