package voice

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"smsrouter/asteriskconf/callfile"
	"smsrouter/channels"
	tts "smsrouter/render/voice"
)

var update = flag.Bool("update", false, "rewrite golden files in testdata/")

// fakeEngine is a TTS engine script. On success it writes its arguments, one
// per line, to args (when set) and prints a valid 16 kHz WAV.
func fakeEngine(t *testing.T, body string) (tts.Engine, string) {
	t.Helper()
	dir := t.TempDir()
	wav := filepath.Join(dir, "in.wav")
	samples := make([]int16, 1600) // 100 ms at 16 kHz
	for i := range samples {
		samples[i] = int16((i % 40) * 300)
	}
	if err := os.WriteFile(wav, tts.EncodeWAV(samples, 16000), 0o644); err != nil {
		t.Fatal(err)
	}
	args := filepath.Join(dir, "args")
	if body == "" {
		body = fmt.Sprintf("printf '%%s\\n' \"$@\" > %s\nexec cat %s", args, wav)
	}
	script := filepath.Join(dir, "fake-tts")
	if err := os.WriteFile(script, []byte("#!/bin/sh\n"+body+"\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	return tts.Engine{
		Name:    "fake",
		Argv:    []string{script, "{{if .Lang}}lang={{.Lang}}{{end}}", "{{if .Voice}}voice={{.Voice}}{{end}}", "--", "{{.Text}}"},
		TextOn:  tts.TextOnArg,
		Output:  tts.OutputStdout,
		Timeout: 2 * time.Second,
	}, args
}

func newChannel(t *testing.T, e tts.Engine, mutate func(*Config)) *Channel {
	t.Helper()
	cfg := Config{
		Spool:      t.TempDir(),
		Renderer:   &tts.Renderer{Engine: e, DefaultLang: "en", LeadSilence: 100 * time.Millisecond},
		SMSCNumber: "9001",
		Location:   time.UTC,
	}
	if mutate != nil {
		mutate(&cfg)
	}
	c, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func message() channels.Message {
	return channels.Message{
		ID: "1795240000123-8f3a2c1d0e", From: "5551234", To: "5551001", Text: "Hello there.",
		Received: time.Date(2026, 11, 21, 6, 4, 0, 0, time.UTC), Letter: 'V', Extension: "PJSIP/1001", Attempt: 1,
	}
}

func TestDeliverWritesRecordingThenCallFile(t *testing.T) {
	for _, tc := range []struct {
		name   string
		mutate func(*Config)
		golden string
	}{
		{"plain", nil, "call.golden"},
		{"repeat and tuned", func(c *Config) {
			c.Repeat, c.WaitTime, c.MaxRetries, c.RetryTime, c.Archive, c.CallerIDName = true, 25, 4, 120, true, "Voice"
		}, "call_repeat.golden"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e, _ := fakeEngine(t, "")
			c := newChannel(t, e, tc.mutate)
			res, err := c.Deliver(context.Background(), message())
			if err != nil {
				t.Fatal(err)
			}
			if len(res.Artefacts) != 2 {
				t.Fatalf("%d artefacts, want wav then call", len(res.Artefacts))
			}
			wav, call := res.Artefacts[0], res.Artefacts[1]
			if wav.Kind != "wav" || wav.Dir != filepath.Join(c.cfg.Spool, "voice") || wav.Name != "smsrouter-1795240000123-8f3a2c1d0e.wav" || wav.Mode != 0o644 {
				t.Errorf("wav artefact %+v", wav)
			}
			if call.Kind != "call" || call.Dir != filepath.Join(c.cfg.Spool, "outgoing") || call.Name != "smsrouter.voice.1795240000123-8f3a2c1d0e" {
				t.Errorf("call artefact %+v", call)
			}
			pcm, err := tts.ParseWAV(wav.Data)
			if err != nil || pcm.Rate != 8000 || pcm.Channels != 1 {
				t.Fatalf("recording: %+v %v", pcm, err)
			}
			// 100 ms lead silence + 100 ms of speech at 8 kHz.
			if len(pcm.Samples) != 1600 {
				t.Errorf("%d samples, want 1600", len(pcm.Samples))
			}

			rec, err := callfile.Parse(call.Data)
			if err != nil {
				t.Fatal(err)
			}
			noExt := filepath.Join(wav.Dir, strings.TrimSuffix(wav.Name, ".wav"))
			want := noExt
			if c.cfg.Repeat {
				want = noExt + "&" + noExt
			}
			if rec.Application != "Playback" || rec.Data != want || rec.Channel != "PJSIP/1001" {
				t.Errorf("call file Application %q Data %q Channel %q, want Playback %q PJSIP/1001", rec.Application, rec.Data, rec.Channel, want)
			}
			if strings.Contains(rec.Data, ".wav") {
				t.Errorf("Data %q names the extension: Playback would not find the file", rec.Data)
			}
			got := strings.ReplaceAll(string(call.Data), c.cfg.Spool, "/SPOOL")
			golden(t, tc.golden, got)
			if res.Detail["lang"] != "default" || res.Detail["seconds"] != 0.2 {
				t.Errorf("detail %v", res.Detail)
			}
		})
	}
}

func golden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.MkdirAll("testdata", 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run with -update to create)", err)
	}
	if got != string(want) {
		t.Errorf("%s differs:\n--- got\n%s--- want\n%s", name, got, want)
	}
}

func TestDeliverUsesRecipientLanguage(t *testing.T) {
	for _, tc := range []struct {
		name       string
		options    Options
		defVoice   string
		wantArgs   []string
		wantPhrase string
	}{
		{"recipient language", func(_ context.Context, n string) (string, string, error) {
			if n != "5551001" {
				return "", "", fmt.Errorf("asked for %s", n)
			}
			return "pl", "", nil
		}, "", []string{"lang=pl"}, "Wiadomość od 5 5 5 1 2 3 4."},
		{"recipient language and voice", func(context.Context, string) (string, string, error) { return "de", "de+f2", nil },
			"en-us", []string{"lang=de", "voice=de+f2"}, "Nachricht von"},
		{"no row: defaults", func(context.Context, string) (string, string, error) { return "", "", nil },
			"en-us", []string{"lang=en", "voice=en-us"}, "Message from"},
		{"no lookup", nil, "", []string{"lang=en"}, "Message from"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e, argsFile := fakeEngine(t, "")
			c := newChannel(t, e, func(c *Config) { c.Options, c.DefaultVoice = tc.options, tc.defVoice })
			if _, err := c.Deliver(context.Background(), message()); err != nil {
				t.Fatal(err)
			}
			b, err := os.ReadFile(argsFile)
			if err != nil {
				t.Fatal(err)
			}
			args := strings.Split(strings.TrimSuffix(string(b), "\n"), "\n")
			want := append(append([]string{}, tc.wantArgs...), "--")
			if len(args) != len(want)+1 || strings.Join(args[:len(want)], " ") != strings.Join(want, " ") {
				t.Fatalf("engine argv %q, want %q then the text", args, want)
			}
			if text := args[len(args)-1]; !strings.HasPrefix(text, tc.wantPhrase) || !strings.HasSuffix(text, "Hello there.") {
				t.Errorf("spoken text %q, want it to start with %q", text, tc.wantPhrase)
			}
		})
	}
}

func TestDeliverTemporaryFailures(t *testing.T) {
	for _, tc := range []struct {
		name    string
		script  string
		options Options
		ext     string
		want    error
	}{
		{"engine exits non-zero", "echo 'no voice' >&2\nexit 3", nil, "", tts.ErrEngineFailed},
		{"engine hangs", "sleep 30", nil, "", tts.ErrEngineFailed},
		{"engine writes garbage", "echo 'not audio'", nil, "", tts.ErrEngineFailed},
		{"engine missing", "exec /nonexistent/espeak", nil, "", tts.ErrEngineFailed},
		{"language lookup down", "", func(context.Context, string) (string, string, error) {
			return "", "", errLookupDown
		}, "", errLookupDown},
		{"no dialable extension", "", nil, "1001", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e, _ := fakeEngine(t, tc.script)
			e.Timeout = 300 * time.Millisecond
			c := newChannel(t, e, func(c *Config) { c.Options = tc.options })
			m := message()
			if tc.ext != "" {
				m.Extension = tc.ext
			}
			start := time.Now()
			res, err := c.Deliver(context.Background(), m)
			if err == nil || channels.IsPermanent(err) {
				t.Fatalf("err %v, want a temporary error", err)
			}
			if tc.want != nil && !errors.Is(err, tc.want) {
				t.Errorf("err %v, want %v", err, tc.want)
			}
			if len(res.Artefacts) != 0 {
				t.Errorf("artefacts on failure: %d", len(res.Artefacts))
			}
			if d := time.Since(start); d > 5*time.Second {
				t.Errorf("took %s: the engine's timeout did not hold", d)
			}
		})
	}
}

var errLookupDown = errors.New("directory unavailable")

func TestDeliverUnspeakableIsPermanent(t *testing.T) {
	e, _ := fakeEngine(t, "")
	c := newChannel(t, e, func(c *Config) { c.Renderer.MaxRunes = 40 })
	m := message()
	m.Text = strings.Repeat("very long message ", 10)
	_, err := c.Deliver(context.Background(), m)
	if !channels.IsPermanent(err) || !errors.Is(err, tts.ErrUnspeakable) {
		t.Fatalf("err %v, want permanent ErrUnspeakable", err)
	}
	// The sender reads this in the "failed" notice.
	if got := err.Error(); !strings.HasPrefix(got, "message cannot be read out: ") || strings.Contains(got, tts.ErrUnspeakable.Error()) {
		t.Errorf("reason %q", got)
	}
}

func TestDeliverConcurrently(t *testing.T) {
	e, _ := fakeEngine(t, "")
	c := newChannel(t, e, func(c *Config) {
		c.Options = func(_ context.Context, n string) (string, string, error) { return "pl", "", nil }
	})
	var wg sync.WaitGroup
	names := make([]string, 8)
	errs := make([]error, 8)
	for i := range 8 {
		wg.Go(func() {
			m := message()
			m.ID = fmt.Sprintf("1795240000123-00000000%02d", i)
			res, err := c.Deliver(context.Background(), m)
			errs[i] = err
			if err == nil {
				names[i] = res.Artefacts[0].Name
			}
		})
	}
	wg.Wait()
	seen := map[string]bool{}
	for i := range 8 {
		if errs[i] != nil {
			t.Fatal(errs[i])
		}
		if seen[names[i]] {
			t.Fatalf("duplicate recording name %s", names[i])
		}
		seen[names[i]] = true
	}
}

func TestCleanupRemovesOnlyOurOldRecordings(t *testing.T) {
	e, _ := fakeEngine(t, "")
	c := newChannel(t, e, func(c *Config) { c.Keep = 24 * time.Hour })
	now := time.Now()
	files := []struct {
		name     string
		age      time.Duration
		wantKept bool
	}{
		{"smsrouter-old.wav", 25 * time.Hour, false},
		{"smsrouter-new.wav", time.Hour, true},
		{"greeting.wav", 100 * time.Hour, true},        // not ours
		{"smsrouter-notes.txt", 100 * time.Hour, true}, // not a recording
	}
	for _, f := range files {
		p := filepath.Join(c.Dir(), f.name)
		if err := os.WriteFile(p, []byte("x"), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Chtimes(p, now.Add(-f.age), now.Add(-f.age)); err != nil {
			t.Fatal(err)
		}
	}
	if err := c.Cleanup(context.Background(), now); err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		_, err := os.Stat(filepath.Join(c.Dir(), f.name))
		if kept := err == nil; kept != f.wantKept {
			t.Errorf("%s: kept %v, want %v", f.name, kept, f.wantKept)
		}
	}
	var _ channels.Janitor = c
}

func TestNewRejectsBadConfig(t *testing.T) {
	spool := t.TempDir()
	for _, tc := range []struct {
		name string
		cfg  Config
		want string
	}{
		{"no spool", Config{}, "no spool"},
		{"relative folder", Config{Spool: spool, Dir: "voice"}, "not absolute"},
		{"comma in folder", Config{Spool: spool, Dir: spool + "/a,b"}, "may not contain"},
		{"ampersand in folder", Config{Spool: spool, Dir: spool + "/a&b"}, "may not contain"},
		{"keep shorter than the retries", Config{Spool: spool, Keep: time.Hour, MaxRetries: 10, RetryTime: 600}, "shorter than"},
		{"option-like default language", Config{Spool: spool, Renderer: &tts.Renderer{DefaultLang: "-x"}}, "default language"},
		{"bad voice", Config{Spool: spool, DefaultVoice: "a b"}, "default voice"},
		{"quote in caller ID", Config{Spool: spool, CallerIDName: `a"b`}, "caller ID"},
		{"bad engine", Config{Spool: spool, Renderer: &tts.Renderer{Engine: tts.Engine{Argv: []string{"x", "{{.Nope}}"}}}}, "voice:"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := New(tc.cfg)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err %v, want %q", err, tc.want)
			}
		})
	}
}
