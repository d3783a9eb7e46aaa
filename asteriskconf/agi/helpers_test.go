package agi

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

const fixtureDir = "../../testdata/asterisk/agi"

// parseArgs splits a command line the way res_agi.c's parse_args does
// (SPEC §4): words split on space or tab, double quotes group and are
// removed, a backslash makes the next character literal (inside quotes
// too), a quote opened after white space starts a word even if it closes
// at once ("" is an empty word).
func parseArgs(line string) []string {
	var (
		words      []string
		cur        []byte
		inWord     bool
		quoted     bool
		escaped    bool
		whitespace = true
	)
	flush := func() {
		if inWord {
			words = append(words, string(cur))
		}
		cur, inWord = nil, false
	}
	for i := 0; i < len(line); i++ {
		c := line[i]
		switch {
		case c == '"' && !escaped:
			quoted = !quoted
			if quoted && whitespace {
				inWord, whitespace = true, false
			}
		case (c == ' ' || c == '\t') && !quoted && !escaped:
			flush()
			whitespace = true
		case c == '\\' && !escaped:
			escaped = true
		default:
			if whitespace {
				inWord, whitespace = true, false
			}
			cur = append(cur, c)
			escaped = false
		}
	}
	flush()
	return words
}

// step is one line of a *.raw fixture.
type step struct {
	kind byte   // 'A': Asterisk sends; 'S': server sends; 'E': server ends (EOF)
	line string // without LF
}

// loadFixture reads a *.raw fixture: "A->S line", "S->A line" or
// "S <server …>" per LF-terminated line.
func loadFixture(t testing.TB, name string) []step {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(fixtureDir, name))
	if err != nil {
		t.Fatalf("read fixture: %v", err)
	}
	var steps []step
	for l := range strings.Lines(string(data)) {
		l = strings.TrimSuffix(l, "\n")
		switch {
		case strings.HasPrefix(l, "A->S "):
			steps = append(steps, step{'A', l[5:]})
		case strings.HasPrefix(l, "S->A "):
			steps = append(steps, step{'S', l[5:]})
		case strings.HasPrefix(l, "S <server "):
			steps = append(steps, step{'E', l})
		default:
			t.Fatalf("%s: unknown fixture line %q", name, l)
		}
	}
	return steps
}

// fixtureNames lists the *.raw fixtures.
func fixtureNames(t testing.TB) []string {
	t.Helper()
	m, err := filepath.Glob(filepath.Join(fixtureDir, "*.raw"))
	if err != nil || len(m) < 5 {
		t.Fatalf("fixtures missing in %s: %v %v", fixtureDir, m, err)
	}
	for i := range m {
		m[i] = filepath.Base(m[i])
	}
	return m
}

// commandsOf returns the words of every command the server sent.
func commandsOf(steps []step) [][]string {
	var cmds [][]string
	for _, s := range steps {
		if s.kind == 'S' {
			cmds = append(cmds, parseArgs(s.line))
		}
	}
	return cmds
}

// injectHangup returns steps with an extra "HANGUP" before the n-th reply
// group (n == number of groups: after the last reply, before EOF; n == -1:
// right after the environment block, before the first command).
func injectHangup(steps []step, n int) []step {
	var out []step
	group, prevS := 0, false
	envDone := false
	for _, s := range steps {
		if s.kind == 'A' && prevS || s.kind == 'E' && group == n {
			if group == n {
				out = append(out, step{'A', "HANGUP"})
			}
			group++
		}
		prevS = s.kind == 'S' && envDone
		out = append(out, s)
		if s.kind == 'A' && s.line == "" && !envDone {
			envDone = true
			if n == -1 {
				out = append(out, step{'A', "HANGUP"})
			}
		}
	}
	return out
}

// fakeAsterisk plays the Asterisk side of steps over conn: every line it
// sends is written separately with pause between, every server line is
// checked against the fixture by parse_args equality.
type fakeAsterisk struct {
	pause  time.Duration
	chunk  int // >0: write replies in pieces of this many bytes
	merged bool
}

func (f fakeAsterisk) run(conn net.Conn, steps []step) error {
	defer conn.Close()
	br := bufio.NewReader(conn)
	conn.SetDeadline(time.Now().Add(10 * time.Second))
	var pending []byte
	flush := func() error {
		if len(pending) == 0 {
			return nil
		}
		defer func() { pending = pending[:0] }()
		_, err := conn.Write(pending)
		return err
	}
	ended := false // the server's EOF came
	for i, s := range steps {
		switch s.kind {
		case 'A':
			line := append([]byte(s.line), '\n')
			if ended {
				// Asterisk's HANGUP after our EOF: one write whose result it
				// ignores, then close (res_agi.c run_agi). The server has
				// closed, so a second write would meet its reset.
				conn.Write(line)
				continue
			}
			if f.merged {
				pending = append(pending, line...)
				continue
			}
			for len(line) > 0 {
				n := len(line)
				if f.chunk > 0 {
					n = min(n, f.chunk)
				}
				if _, err := conn.Write(line[:n]); err != nil {
					if s.line == "HANGUP" {
						// The channel hung up as the server closed:
						// Asterisk ignores the failed write and its
						// next read ends the session. The golden
						// record tells whether the server was done.
						return nil
					}
					return err
				}
				line = line[n:]
				time.Sleep(f.pause)
			}
		case 'S':
			if err := flush(); err != nil {
				return err
			}
			got, err := br.ReadString('\n')
			if err != nil {
				return errors.Join(errors.New("step "+itoa(i)+": waiting for "+s.line), err)
			}
			if strings.Contains(got, "\r") {
				return errors.New("server sent a CR: " + got)
			}
			want := parseArgs(s.line)
			if g := parseArgs(strings.TrimSuffix(got, "\n")); !equalWords(g, want) {
				return errors.New("step " + itoa(i) + ": server sent " + got + ", want words of " + s.line)
			}
		case 'E':
			if err := flush(); err != nil {
				return err
			}
			b, err := br.ReadByte()
			if err == nil {
				rest, _ := br.ReadString('\n')
				return errors.New("step " + itoa(i) + ": want EOF, got " + string(b) + rest)
			}
			// A HANGUP the server had not read when it closed turns its
			// FIN into a reset; Asterisk's fgets loop ends on either the
			// same way ("Program terminated", res_agi.c run_agi).
			if !errors.Is(err, io.EOF) && !errors.Is(err, syscall.ECONNRESET) {
				return errors.Join(errors.New("step "+itoa(i)+": want EOF"), err)
			}
			ended = true
		}
	}
	return flush()
}

func itoa(i int) string { return strconv.Itoa(i) }

func equalWords(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// logSink collects log records for assertions.
type logSink struct {
	mu      sync.Mutex
	records []slog.Record
}

func (l *logSink) Enabled(context.Context, slog.Level) bool { return true }
func (l *logSink) Handle(_ context.Context, r slog.Record) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.records = append(l.records, r.Clone())
	return nil
}
func (l *logSink) WithAttrs([]slog.Attr) slog.Handler { return l }
func (l *logSink) WithGroup(string) slog.Handler      { return l }

// atLeast returns the messages (with attributes) logged at level or above.
func (l *logSink) atLeast(level slog.Level) []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []string
	for _, r := range l.records {
		if r.Level < level {
			continue
		}
		var b bytes.Buffer
		b.WriteString(r.Level.String() + " " + r.Message)
		r.Attrs(func(a slog.Attr) bool {
			b.WriteString(" " + a.String())
			return true
		})
		out = append(out, b.String())
	}
	return out
}

// startServer serves srv on a loopback port until the test ends.
func startServer(t testing.TB, srv *Server) (addr string, sink *logSink, stop func()) {
	t.Helper()
	sink = &logSink{}
	if srv.Logger == nil {
		srv.Logger = slog.New(sink)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, l) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			select {
			case err := <-done:
				if err != nil {
					t.Errorf("Serve: %v", err)
				}
			case <-time.After(15 * time.Second):
				t.Errorf("Serve did not return after cancel")
			}
		})
	}
	t.Cleanup(stop)
	return l.Addr().String(), sink, stop
}

// envBlock builds an Asterisk-like environment block for script.
func envBlock(script string, args ...string) string {
	var b strings.Builder
	b.WriteString("agi_network: yes\nagi_network_script: " + script + "\n")
	b.WriteString("agi_request: agi://127.0.0.1:4573/" + script + "\n")
	b.WriteString("agi_channel: Local/s@agitest-0000002b;2\nagi_language: en\nagi_type: Local\n")
	b.WriteString("agi_uniqueid: 1795239703.87\nagi_version: 22.10.1\nagi_callerid: unknown\n")
	b.WriteString("agi_context: agitest\nagi_extension: s\nagi_priority: 3\nagi_accountcode: \n")
	for i, a := range args {
		b.WriteString("agi_arg_" + strconv.Itoa(i+1) + ": " + a + "\n")
	}
	b.WriteString("\n")
	return b.String()
}
