package main

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"smsrouter/channels/voice"
	"smsrouter/internal/testdb"
	tts "smsrouter/render/voice"
	"smsrouter/router"
)

// The example documents the defaults: the V channel built from it must equal
// the one built with no [voice] section at all.
func TestExampleVoiceSectionMatchesDefaults(t *testing.T) {
	cfg, err := loadConfig(filepath.Join("..", "..", "smsrouter.example.toml"))
	if err != nil {
		t.Fatal(err)
	}
	got, err := cfg.Voice.channelConfig(cfg, time.UTC, 0)
	if err != nil {
		t.Fatal(err)
	}
	def := defaultConfig()
	want, err := def.Voice.channelConfig(def, time.UTC, 0)
	if err != nil {
		t.Fatal(err)
	}
	// Defaults the channel and the renderer apply to zero values, spelled out.
	want.Renderer.DefaultLang = tts.DefaultLang
	want.Renderer.LeadSilence = tts.DefaultLeadSilence
	want.Renderer.Engine.Timeout = tts.DefaultTimeout
	want.CallerIDName, want.WaitTime, want.MaxRetries, want.RetryTime, want.Keep = "SMS", 30, 2, 300, 48*time.Hour
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("example [voice] differs from the defaults:\nexample  %+v %+v\ndefaults %+v %+v", got, got.Renderer.Engine, want, want.Renderer.Engine)
	}
}

func TestVoiceConfig(t *testing.T) {
	for _, tc := range []struct {
		name, body, want string
		check            func(t *testing.T, r *tts.Renderer)
	}{
		{name: "phrases override one key, keep the rest", body: "[voice.phrases.pl]\nmessage_from = \"SMS od\"\n[voice.phrases.fr]\nmessage_from = \"Message de\"\n",
			check: func(t *testing.T, r *tts.Renderer) {
				if p := r.Phrases["pl"]; p.MessageFrom != "SMS od" || p.Sent != "Wysłano" {
					t.Errorf("pl %+v", p)
				}
				if p := r.Phrases["fr"]; p.MessageFrom != "Message de" || p.Sent != "Sent" {
					t.Errorf("fr %+v", p)
				}
				if p := r.Phrases["de"]; p.MessageFrom != "Nachricht von" {
					t.Errorf("de lost: %+v", p)
				}
			}},
		{name: "no lead silence", body: "[voice]\nlead_silence = \"0s\"\n",
			check: func(t *testing.T, r *tts.Renderer) {
				if r.LeadSilence >= 0 {
					t.Errorf("lead %s, want negative (none)", r.LeadSilence)
				}
			}},
		{name: "custom argv", body: "[voice]\nargv = [\"my-tts\", \"-o\", \"{{.Out}}\"]\ntext_on = \"stdin\"\noutput = \"file\"\n",
			check: func(t *testing.T, r *tts.Renderer) {
				if r.Engine.Name != "custom" || r.Engine.Argv[0] != "my-tts" || r.Engine.TextOn != "stdin" {
					t.Errorf("engine %+v", r.Engine)
				}
			}},
		{name: "unknown preset", body: "[voice]\nengine = \"say\"\n", want: "unknown tts engine"},
		{name: "text spliced into argv", body: "[voice]\nargv = [\"x\", \"-t{{.Text}}\"]\ntext_on = \"arg\"\n", want: "element of its own"},
		{name: "text_on without argv", body: "[voice]\ntext_on = \"stdin\"\n", want: "only apply with argv"},
		{name: "eleven months", body: "[voice.phrases.pl]\nmonths = [\"a\",\"b\",\"c\",\"d\",\"e\",\"f\",\"g\",\"h\",\"i\",\"j\",\"k\"]\n", want: "want 12"},
		{name: "engine timeout not below delivery timeout", body: "[queue]\ndelivery_timeout = \"20s\"\n", want: "shorter than [queue] delivery_timeout"},
		{name: "unknown key", body: "[voice]\nrepeats = true\n", want: "unknown keys: voice.repeats"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := filepath.Join(t.TempDir(), "c.toml")
			if err := os.WriteFile(p, []byte(tc.body), 0o644); err != nil {
				t.Fatal(err)
			}
			var r *tts.Renderer
			cfg, err := loadConfig(p)
			if err == nil {
				cfg.Spool = t.TempDir()
				var vc voice.Config
				vc, err = cfg.Voice.channelConfig(cfg, time.UTC, cfg.Queue.DeliveryTimeout.Duration)
				r = vc.Renderer
			}
			if tc.want != "" {
				if err == nil || !strings.Contains(err.Error(), tc.want) {
					t.Fatalf("err %v, want %q", err, tc.want)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			tc.check(t, r)
		})
	}
}

func TestRenderVoiceCommand(t *testing.T) {
	if _, err := exec.LookPath("espeak-ng"); err != nil {
		t.Fatal("espeak-ng not found: apt-get install espeak-ng")
	}
	out := filepath.Join(t.TempDir(), "msg.wav")
	var stdout, stderr bytes.Buffer
	code := run(context.Background(), []string{"render", "voice", "--text", "Zażółć gęślą jaźń", "--from", "5551234", "--lang", "pl", "-o", out}, &stdout, &stderr)
	if code != exitOK {
		t.Fatalf("exit %d: %s", code, stderr.String())
	}
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	pcm, err := tts.ParseWAV(b)
	if err != nil || pcm.Rate != 8000 || pcm.Channels != 1 {
		t.Fatalf("%+v %v", pcm, err)
	}
	// Lead silence, "Wiadomość od 5 5 5 1 2 3 4.", the text: several seconds.
	if secs := float64(len(pcm.Samples)) / 8000; secs < 3 || secs > 15 {
		t.Errorf("%.1f s of audio", secs)
	}
	if !strings.Contains(stdout.String(), "8000 Hz mono 16-bit") {
		t.Errorf("stdout %q", stdout.String())
	}

	for _, args := range [][]string{
		{"render", "voice", "--text", "x", "--from", "1"},                                       // no -o
		{"render", "voice", "--text", "x", "-o", out, "--lang", "-evil"},                        // option-like language
		{"render", "voice", "--text", "x", "-o", filepath.Join(t.TempDir(), "no", "such", "x")}, // folder missing
	} {
		stderr.Reset()
		if code := run(context.Background(), args, &stdout, &stderr); code == exitOK {
			t.Errorf("%q: exit 0", args)
		}
	}
}

func TestNumberVoiceCommand(t *testing.T) {
	testdb.Each(t, func(t *testing.T, dsn string) {
		ctx := context.Background()
		spool := t.TempDir()
		base := []string{"--spool", spool, "--db", dsn}
		var stdout, stderr bytes.Buffer
		do := func(args ...string) int {
			stderr.Reset()
			return run(ctx, append(append([]string{args[0]}, base...), args[1:]...), &stdout, &stderr)
		}
		if code := do("migrate"); code != exitOK {
			t.Fatalf("migrate: %s", stderr.String())
		}
		store, err := router.OpenStore(dsn)
		if err != nil {
			t.Fatal(err)
		}
		defer store.Close()
		steps := []struct {
			args        []string
			code        int
			lang, voice string
		}{
			{[]string{"number", "voice", "5551001", "pl"}, exitOK, "pl", ""},
			{[]string{"number", "voice", "5551001", "en-gb", "en-gb+f3"}, exitOK, "en-gb", "en-gb+f3"},
			{[]string{"number", "voice", "5551001", "--x"}, exitUsage, "en-gb", "en-gb+f3"},
			{[]string{"number", "voice", "../x", "pl"}, exitUsage, "en-gb", "en-gb+f3"},
			{[]string{"number", "voice", "5551001"}, exitUsage, "en-gb", "en-gb+f3"},
			{[]string{"number", "voice", "5551001", "default"}, exitOK, "", ""},
		}
		for _, s := range steps {
			if code := do(s.args...); code != s.code {
				t.Fatalf("%q: exit %d, want %d (%s)", s.args, code, s.code, stderr.String())
			}
			l, v, err := store.VoiceOptions(ctx, "5551001")
			if err != nil || l != s.lang || v != s.voice {
				t.Fatalf("%q: stored %q %q %v, want %q %q", s.args, l, v, err, s.lang, s.voice)
			}
		}
	})
}
