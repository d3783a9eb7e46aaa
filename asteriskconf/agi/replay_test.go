package agi

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

var update = flag.Bool("update", false, "rewrite golden files")

// replayHandler runs the commands of a fixture and records, per session,
// the environment and every reply as text for the golden files.
type replayHandler struct {
	cmds [][]string

	mu      sync.Mutex
	records map[string]string // by agi_uniqueid
}

func (h *replayHandler) ServeAGI(ctx context.Context, s *Session) error {
	var b strings.Builder
	fmt.Fprintf(&b, "script %q\n", s.Script)
	keys := slices.Sorted(func(yield func(string) bool) {
		for k := range s.Query {
			if !yield(k) {
				return
			}
		}
	})
	for _, k := range keys {
		fmt.Fprintf(&b, "query %q = %q\n", k, s.Query[k])
	}
	for _, f := range s.Env.Fields() {
		fmt.Fprintf(&b, "env %s = %q\n", f.Key, f.Value)
	}
	fmt.Fprintf(&b, "args %q\n", s.Env.Args())
	fmt.Fprintf(&b, "helpers request=%q channel=%q type=%q uniqueid=%q context=%q extension=%q callerid=%q\n",
		s.Env.Request(), s.Env.Channel(), s.Env.Type(), s.Env.UniqueID(), s.Env.Context(), s.Env.Extension(), s.Env.CallerID())
	var err error
	for _, words := range h.cmds {
		var r Reply
		r, err = s.Command(ctx, words...)
		fmt.Fprintf(&b, "> %q\n< %s\n", words, describe(r, err))
		if s.Err() != nil {
			break
		}
	}
	b.WriteString("end\n")
	h.mu.Lock()
	h.records[s.Env.UniqueID()] = b.String()
	h.mu.Unlock()
	if s.Err() != nil {
		return err
	}
	return nil
}

func (h *replayHandler) record(id string) string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.records[id]
}

// describe renders a reply and its error in one stable line.
func describe(r Reply, err error) string {
	var b strings.Builder
	fmt.Fprintf(&b, "code=%d result=%d", r.Code, r.Result)
	if r.HasData {
		fmt.Fprintf(&b, " data=%q", r.Data)
	}
	if r.Extra != nil {
		fmt.Fprintf(&b, " extra=%v", r.Extra)
	}
	if r.Text != "" {
		fmt.Fprintf(&b, " text=%q", r.Text)
	}
	if r.Usage != nil {
		fmt.Fprintf(&b, " usage=%q", r.Usage)
	}
	var ue *UsageError
	switch {
	case err == nil:
	case errors.Is(err, ErrHangup):
		b.WriteString(" err=ErrHangup")
	case errors.Is(err, ErrInvalidCommand):
		b.WriteString(" err=ErrInvalidCommand")
	case errors.As(err, &ue):
		b.WriteString(" err=UsageError")
	default:
		fmt.Fprintf(&b, " err=%v", err)
	}
	return b.String()
}

func uniqueIDOf(steps []step) string {
	for _, s := range steps {
		if v, ok := strings.CutPrefix(s.line, "agi_uniqueid: "); ok && s.kind == 'A' {
			return v
		}
	}
	return ""
}

func scriptOf(steps []step) string {
	for _, s := range steps {
		if v, ok := strings.CutPrefix(s.line, "agi_network_script: "); ok {
			script, _, _ := strings.Cut(v, "?")
			return script
		}
	}
	return ""
}

// replayServer starts a server with a replay handler for the fixture.
func replayServer(t *testing.T, steps []step) (string, *replayHandler, *logSink) {
	h := &replayHandler{cmds: commandsOf(steps), records: map[string]string{}}
	srv := &Server{Handlers: map[string]Handler{scriptOf(steps): h}, ReplyTimeout: 5 * time.Second}
	addr, sink, _ := startServer(t, srv)
	return addr, h, sink
}

func dialReplay(t *testing.T, addr string, fa fakeAsterisk, steps []step) {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	if err := fa.run(conn, steps); err != nil {
		t.Fatalf("fake Asterisk: %v", err)
	}
}

// waitRecord waits for the handler's record: the client sees EOF when the
// handler returned, so it is there at once or very soon.
func waitRecord(t *testing.T, h *replayHandler, id string) string {
	t.Helper()
	for range 200 {
		if r := h.record(id); r != "" {
			return r
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Fatalf("no record for %s", id)
	return ""
}

// TestReplayFixtures replays every real connection line by line over
// loopback and compares what the handler saw with a golden file.
func TestReplayFixtures(t *testing.T) {
	for _, name := range fixtureNames(t) {
		t.Run(name, func(t *testing.T) {
			steps := loadFixture(t, name)
			addr, h, sink := replayServer(t, steps)
			dialReplay(t, addr, fakeAsterisk{pause: 200 * time.Microsecond}, steps)
			got := waitRecord(t, h, uniqueIDOf(steps))
			golden := filepath.Join("testdata", "replay", strings.TrimSuffix(name, ".raw")+".golden")
			if *update {
				os.MkdirAll(filepath.Dir(golden), 0o755)
				if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("golden: %v (run with -update)", err)
			}
			if got != string(want) {
				t.Errorf("replay differs from %s:\n--- got\n%s--- want\n%s", golden, got, want)
			}
			if warns := sink.atLeast(slog.LevelWarn); len(warns) > 0 {
				t.Errorf("warnings logged for a normal session: %q", warns)
			}
		})
	}
}

// TestReplayHangupAnywhere inserts an unprompted HANGUP before every reply
// of every fixture, and after the last: the replies seen by the handler
// must be exactly those of the undisturbed replay (never shifted).
func TestReplayHangupAnywhere(t *testing.T) {
	for _, name := range fixtureNames(t) {
		base := loadFixture(t, name)
		groups := len(commandsOf(base))
		want, err := os.ReadFile(filepath.Join("testdata", "replay", strings.TrimSuffix(name, ".raw")+".golden"))
		if err != nil {
			t.Fatalf("golden: %v", err)
		}
		addr, h, sink := replayServer(t, base)
		for n := -1; n <= groups; n++ {
			for _, fa := range []fakeAsterisk{{}, {chunk: 3}, {merged: true}} {
				t.Run(fmt.Sprintf("%s/at%d/chunk%d/merged%v", name, n, fa.chunk, fa.merged), func(t *testing.T) {
					steps := injectHangup(base, n)
					if len(steps) != len(base)+1 {
						t.Fatalf("injection %d produced %d steps from %d", n, len(steps), len(base))
					}
					id := fmt.Sprintf("inject-%d-%d-%v", n, fa.chunk, fa.merged)
					for i := range steps {
						if strings.HasPrefix(steps[i].line, "agi_uniqueid: ") {
							steps[i].line = "agi_uniqueid: " + id
						}
					}
					dialReplay(t, addr, fa, steps)
					got := waitRecord(t, h, id)
					norm := strings.ReplaceAll(got, id, uniqueIDOf(base))
					if norm != string(want) {
						t.Errorf("HANGUP at %d changed the replies:\n--- got\n%s--- want\n%s", n, norm, want)
					}
				})
			}
		}
		if warns := sink.atLeast(slog.LevelWarn); len(warns) > 0 {
			t.Errorf("%s: warnings logged: %q", name, warns)
		}
	}
}

// TestHungupReported checks Session.Hungup against the real hang-up
// transcript: false before the HANGUP line, true from the reply after it.
func TestHungupReported(t *testing.T) {
	steps := loadFixture(t, "2-hanguptest.raw")
	type obs struct {
		cmd    string
		hungup bool
	}
	var (
		mu   sync.Mutex
		seen []obs
	)
	srv := &Server{Handlers: map[string]Handler{"hanguptest": HandlerFunc(func(ctx context.Context, s *Session) error {
		for _, words := range commandsOf(steps) {
			_, err := s.Command(ctx, words...)
			mu.Lock()
			seen = append(seen, obs{strings.Join(words, " "), s.Hungup()})
			mu.Unlock()
			if err != nil && !errors.Is(err, ErrHangup) {
				return err
			}
		}
		return nil
	})}}
	addr, sink, stop := startServer(t, srv)
	dialReplay(t, addr, fakeAsterisk{pause: 200 * time.Microsecond}, steps)
	stop()
	want := []obs{
		{"ANSWER", false},
		{"SET VARIABLE MSG_CHAN_OPT S", false},
		{"GET VARIABLE MSG_CHAN_OPT", true},
		{"STREAM FILE beep ", true},
		{"SET VARIABLE AFTER_HANGUP 1", true},
	}
	if !slices.Equal(seen, want) {
		t.Errorf("hungup per command = %v, want %v", seen, want)
	}
	if warns := sink.atLeast(slog.LevelWarn); len(warns) > 0 {
		t.Errorf("warnings logged: %q", warns)
	}
}
