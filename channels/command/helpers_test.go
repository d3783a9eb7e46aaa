package command

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"smsrouter/asteriskconf/smsq"
	"smsrouter/channels"
)

// fixedNow is the clock of every test channel.
var fixedNow = time.Date(2026, 3, 14, 15, 9, 26, 0, time.UTC)

func newTestChannel(t *testing.T, cfg Config, mutate ...func(*Env)) *Channel {
	t.Helper()
	env := Env{Inbox: t.TempDir(), WorkDir: t.TempDir(), Location: time.UTC, Now: func() time.Time { return fixedNow }}
	for _, f := range mutate {
		f(&env)
	}
	c, err := New(cfg, env)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return c
}

func msg(from, to, text string) channels.Message {
	return channels.Message{ID: "1773500966000-0102030405", From: from, To: to, Text: text, Letter: 'C', Attempt: 1}
}

// deliver runs one message and returns the reply text ("" for none) and the result.
func deliver(t *testing.T, c *Channel, m channels.Message) (string, channels.Result) {
	t.Helper()
	res, err := c.Deliver(context.Background(), m)
	if err != nil {
		t.Fatalf("Deliver(%q): %v", m.Text, err)
	}
	return replyOf(t, res, m), res
}

// replyOf finds the reply artefact: from the service number to the sender, one
// generation deeper.
func replyOf(t *testing.T, res channels.Result, m channels.Message) string {
	t.Helper()
	var replies []string
	for _, a := range res.Artefacts {
		if a.Kind != "reply" {
			continue
		}
		got := parseArtefact(t, a)
		if got.OA != m.To || got.DA != m.From {
			t.Fatalf("reply goes %s→%s, want %s→%s", got.OA, got.DA, m.To, m.From)
		}
		if _, depth, ok := channels.ParseSpoolName(a.Name); !ok || depth != m.Depth+1 || !strings.HasPrefix(a.Name, m.From+".") {
			t.Fatalf("reply file name %q: want %s.smsrouter-…~%d", a.Name, m.From, m.Depth+1)
		}
		replies = append(replies, got.Text)
	}
	if len(replies) > 1 {
		t.Fatalf("%d replies, want at most one: %q", len(replies), replies)
	}
	return strings.Join(replies, "")
}

func parseArtefact(t *testing.T, a channels.Artefact) *smsq.Message {
	t.Helper()
	m, err := smsq.Parse(a.Data, time.UTC)
	if err != nil {
		t.Fatalf("artefact %s: %v", a.Name, err)
	}
	return m
}

// sharedDir is a temporary folder the programs can use: when the tests run as
// root, exec rules run as nobody, who cannot enter t.TempDir().
func sharedDir(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "smsrouter-command-test-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o777); err != nil {
		t.Fatal(err)
	}
	return dir
}

// writeScript writes an executable /bin/sh script into dir. The scripts only ever
// see message text as "$@" or stdin data, never as code.
func writeScript(t *testing.T, dir, name, body string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte("#!/bin/sh\n"+body), 0o755); err != nil {
		t.Fatal(err)
	}
	return p
}
