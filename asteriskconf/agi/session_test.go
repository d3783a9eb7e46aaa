package agi

import (
	"bufio"
	"context"
	"errors"
	"net"
	"os"
	"testing"
	"time"
)

// loopbackSession connects over 127.0.0.1, sends env from the fake Asterisk
// side and returns the server's Session and the Asterisk end.
func loopbackSession(t testing.TB, opts SessionOptions, env string) (*Session, net.Conn, *bufio.Reader) {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	client, err := net.Dial("tcp", l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	server, err := l.Accept()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { client.Close(); server.Close() })
	if _, err := client.Write([]byte(env)); err != nil {
		t.Fatal(err)
	}
	s, err := NewSession(context.Background(), server, opts)
	if err != nil {
		t.Fatal(err)
	}
	return s, client, bufio.NewReader(client)
}

// answer reads one command on the Asterisk side and writes reply.
func answer(t testing.TB, c net.Conn, br *bufio.Reader, wantCmd, reply string) {
	t.Helper()
	line, err := br.ReadString('\n')
	if err != nil {
		t.Errorf("fake Asterisk read: %v", err)
		return
	}
	if line != wantCmd {
		t.Errorf("server sent %q, want %q", line, wantCmd)
	}
	if _, err := c.Write([]byte(reply)); err != nil {
		t.Errorf("fake Asterisk write: %v", err)
	}
}

func TestSessionHelpers(t *testing.T) {
	s, c, br := loopbackSession(t, SessionOptions{}, envBlock("chaninfo?var=X&var=Y"))
	if s.Script != "chaninfo" || !equalWords(s.Query["var"], []string{"X", "Y"}) {
		t.Errorf("Script %q Query %v", s.Script, s.Query)
	}
	ctx := context.Background()
	done := make(chan struct{})
	go func() {
		defer close(done)
		answer(t, c, br, "GET VARIABLE EXTEN\n", "200 result=1 (5551234)\n")
		answer(t, c, br, "GET VARIABLE NOPE\n", "HANGUP\n200 result=0\n")
		answer(t, c, br, "GET VARIABLE EMPTY\n", "200 result=1 ()\n")
		answer(t, c, br, "SET VARIABLE MSG_CHAN_OPT \"a \\\"b\\\"\"\n", "200 result=1\n")
		answer(t, c, br, "GET FULL VARIABLE ${EXTEN}\n", "200 result=1 (5551234)\n")
		answer(t, c, br, "SET VARIABLE X y\n", "200 result=0\n")
		answer(t, c, br, "VERBOSE \"hello there\" 1\n", "200 result=1\n")
	}()
	if v, ok, err := s.GetVariable(ctx, "EXTEN"); v != "5551234" || !ok || err != nil {
		t.Errorf("GetVariable EXTEN = %q %v %v", v, ok, err)
	}
	if s.Hungup() {
		t.Error("Hungup before any HANGUP")
	}
	if v, ok, err := s.GetVariable(ctx, "NOPE"); v != "" || ok || err != nil {
		t.Errorf("GetVariable NOPE = %q %v %v", v, ok, err)
	}
	if !s.Hungup() {
		t.Error("Hungup false after HANGUP line")
	}
	if v, ok, err := s.GetVariable(ctx, "EMPTY"); v != "" || !ok || err != nil {
		t.Errorf("GetVariable EMPTY = %q %v %v", v, ok, err)
	}
	if err := s.SetVariable(ctx, "MSG_CHAN_OPT", `a "b"`); err != nil {
		t.Errorf("SetVariable: %v", err)
	}
	if v, ok, err := s.GetFullVariable(ctx, "${EXTEN}"); v != "5551234" || !ok || err != nil {
		t.Errorf("GetFullVariable = %q %v %v", v, ok, err)
	}
	if err := s.SetVariable(ctx, "X", "y"); err == nil {
		t.Error("SetVariable with result=0 reported success")
	}
	if err := s.Verbose(ctx, "hello there", 1); err != nil {
		t.Errorf("Verbose: %v", err)
	}
	<-done
	if err := s.SetVariable(ctx, "", "x"); err == nil {
		t.Error("empty variable name accepted")
	}
	if _, err := s.Command(ctx, "SET", "VARIABLE", "X", "a\nb"); !errors.Is(err, ErrUnquotable) || s.Err() != nil {
		t.Errorf("unquotable word: err %v, session err %v (must stay usable)", err, s.Err())
	}
}

func TestSessionContextCancel(t *testing.T) {
	s, _, br := loopbackSession(t, SessionOptions{ReplyTimeout: time.Minute}, envBlock("x"))
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		br.ReadString('\n') // the command arrives; never answer it
		cancel()
	}()
	start := time.Now()
	_, err := s.Command(ctx, "GET", "VARIABLE", "X")
	if !errors.Is(err, context.Canceled) {
		t.Errorf("err = %v, want context.Canceled", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("cancel took %v", d)
	}
	// A late reply must never be taken for the next command's.
	if _, err2 := s.Command(context.Background(), "GET", "VARIABLE", "Y"); err2 == nil || s.Err() == nil {
		t.Errorf("session still usable after a cancelled command: %v", err2)
	}
	if _, err := s.Command(ctx, "GET", "VARIABLE", "Y"); err == nil {
		t.Error("cancelled context accepted")
	}
}

func TestSessionReplyTimeout(t *testing.T) {
	s, _, _ := loopbackSession(t, SessionOptions{ReplyTimeout: 100 * time.Millisecond}, envBlock("x"))
	start := time.Now()
	_, err := s.Command(context.Background(), "ANSWER")
	if !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Errorf("err = %v, want a deadline error", err)
	}
	if d := time.Since(start); d < 100*time.Millisecond || d > 3*time.Second {
		t.Errorf("timed out after %v", d)
	}
	if _, err := s.Command(context.Background(), "ANSWER"); err == nil {
		t.Error("session usable after a timeout")
	}
}

func TestSessionContextDeadlineShortens(t *testing.T) {
	s, _, _ := loopbackSession(t, SessionOptions{ReplyTimeout: time.Minute}, envBlock("x"))
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	start := time.Now()
	if _, err := s.Command(ctx, "ANSWER"); err == nil {
		t.Fatal("no error")
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("ctx deadline ignored: %v", d)
	}
}

func TestSessionPeerCloses(t *testing.T) {
	s, c, br := loopbackSession(t, SessionOptions{}, envBlock("x"))
	go func() {
		br.ReadString('\n')
		c.Write([]byte("HANGUP\n"))
		c.Close()
	}()
	_, err := s.Command(context.Background(), "ANSWER")
	if !errors.Is(err, ErrHangup) {
		t.Errorf("err = %v, want ErrHangup", err)
	}
	if !s.Hungup() {
		t.Error("HANGUP before close not recorded")
	}
}

func TestSessionGarbageBreaks(t *testing.T) {
	s, c, br := loopbackSession(t, SessionOptions{}, envBlock("x"))
	go func() {
		br.ReadString('\n')
		c.Write([]byte("hello there\n200 result=1\n"))
	}()
	if _, err := s.Command(context.Background(), "ANSWER"); !errors.Is(err, ErrProtocol) {
		t.Errorf("err = %v, want ErrProtocol", err)
	}
	if _, err := s.Command(context.Background(), "ANSWER"); !errors.Is(err, ErrProtocol) {
		t.Errorf("second command: err = %v, want the first error again", err)
	}
}

func TestNewSessionErrors(t *testing.T) {
	tests := []struct {
		name, env string
	}{
		{"bad query", "agi_network_script: x?a=%zz\n\n"},
		{"garbage", "GET / HTTP/1.0\n\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			defer l.Close()
			c, err := net.Dial("tcp", l.Addr().String())
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			srv, err := l.Accept()
			if err != nil {
				t.Fatal(err)
			}
			defer srv.Close()
			c.Write([]byte(tt.env))
			if _, err := NewSession(context.Background(), srv, SessionOptions{}); err == nil {
				t.Error("accepted")
			}
		})
	}
	t.Run("timeout", func(t *testing.T) {
		l, _ := net.Listen("tcp", "127.0.0.1:0")
		defer l.Close()
		c, _ := net.Dial("tcp", l.Addr().String())
		defer c.Close()
		srv, _ := l.Accept()
		defer srv.Close()
		c.Write([]byte("agi_network: yes")) // no LF, ever
		start := time.Now()
		_, err := NewSession(context.Background(), srv, SessionOptions{EnvTimeout: 100 * time.Millisecond})
		if !errors.Is(err, os.ErrDeadlineExceeded) || time.Since(start) > 3*time.Second {
			t.Errorf("err = %v after %v", err, time.Since(start))
		}
	})
}
