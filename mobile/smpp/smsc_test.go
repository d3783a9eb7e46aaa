package smpp

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

// smsc is the npm smpp SMSC of testdata/smsc.js, run as a real process.
type smsc struct {
	t      testing.TB
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	Port   int
	mu     sync.Mutex
	events []map[string]any
	notify chan struct{}
}

// startSMSC runs the node SMSC; extra are its arguments (--tls KEY CERT).
// Tests skip when node or the npm package is missing: .ci/run installs both.
func startSMSC(t testing.TB, extra ...string) *smsc {
	t.Helper()
	node, err := exec.LookPath("node")
	if err != nil {
		t.Skip("node not installed (.ci/run installs nodejs)")
	}
	if _, err := os.Stat(filepath.Join("testdata", "node_modules", "smpp")); err != nil {
		t.Skip("npm smpp not installed: run npm ci in mobile/smpp/testdata (.ci/run does)")
	}
	s := &smsc{t: t, notify: make(chan struct{}, 1)}
	s.cmd = exec.Command(node, append([]string{filepath.Join("testdata", "smsc.js"), "--port", "0"}, extra...)...)
	s.cmd.Stderr = os.Stderr
	s.stdin, _ = s.cmd.StdinPipe()
	out, _ := s.cmd.StdoutPipe()
	if err := s.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		s.stdin.Close()
		done := make(chan struct{})
		go func() { s.cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			s.cmd.Process.Kill()
			<-done
		}
	})
	go func() {
		sc := bufio.NewScanner(out)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			var ev map[string]any
			if err := json.Unmarshal(sc.Bytes(), &ev); err != nil {
				continue
			}
			s.mu.Lock()
			s.events = append(s.events, ev)
			s.mu.Unlock()
			select {
			case s.notify <- struct{}{}:
			default:
			}
		}
	}()
	ev := s.wait("listening", nil)
	s.Port = int(ev["port"].(float64))
	return s
}

func (s *smsc) Addr() string { return fmt.Sprintf("127.0.0.1:%d", s.Port) }

func (s *smsc) send(cmd map[string]any) {
	b, _ := json.Marshal(cmd)
	if _, err := s.stdin.Write(append(b, '\n')); err != nil {
		s.t.Fatalf("smsc command: %v", err)
	}
}

// wait returns the first event named ev that match accepts and that no
// earlier wait returned, failing the test after 10 s.
func (s *smsc) wait(ev string, match func(map[string]any) bool) map[string]any {
	s.t.Helper()
	deadline := time.After(10 * time.Second)
	for {
		s.mu.Lock()
		for i, e := range s.events {
			if e["ev"] == ev && e["_taken"] == nil && (match == nil || match(e)) {
				s.events[i]["_taken"] = true
				s.mu.Unlock()
				return e
			}
		}
		s.mu.Unlock()
		select {
		case <-s.notify:
		case <-time.After(20 * time.Millisecond):
		case <-deadline:
			s.t.Fatalf("no %q event from the SMSC in 10s", ev)
		}
	}
}

// all returns every event named ev so far.
func (s *smsc) all(ev string) []map[string]any {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []map[string]any
	for _, e := range s.events {
		if e["ev"] == ev {
			out = append(out, e)
		}
	}
	return out
}

func testLogger(t testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(string(p[:len(p)-1]))
	return len(p), nil
}

// runClient makes a client for s with cfg's non-zero fields and runs it
// until the test ends.
func runClient(t testing.TB, s *smsc, cfg Config) *Client {
	t.Helper()
	cfg.Addr = s.Addr()
	if cfg.SystemID == "" {
		cfg.SystemID, cfg.Password = "smsrouter", "secret"
	}
	if cfg.Handler == nil && cfg.Bind != Transmitter {
		cfg.Handler = func(d *Delivery) { d.Ack(nil) }
	}
	if cfg.ReconnectMin == 0 {
		cfg.ReconnectMin, cfg.ReconnectMax = 50*time.Millisecond, 500*time.Millisecond
	}
	if cfg.Logger == nil {
		cfg.Logger = testLogger(t)
	}
	c, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { c.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	return c
}
