package voice

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// fakeEngine writes a shell script into a temporary directory and returns an
// engine running it with the given text/output modes.
func fakeEngine(t *testing.T, script, textOn, output string, extra ...string) Engine {
	t.Helper()
	path := filepath.Join(t.TempDir(), "fake-tts")
	if err := os.WriteFile(path, []byte("#!/bin/sh\n"+script+"\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	argv := append([]string{path}, extra...)
	if textOn == TextOnArg {
		argv = append(argv, "--", "{{.Text}}")
	}
	return Engine{Name: "fake", Argv: argv, TextOn: textOn, Output: output, Timeout: 2 * time.Second}
}

// testWAV is a tiny valid engine output: 100 ms of a tone at 16 kHz.
func testWAV() []byte { return EncodeWAV(tone(440, 16000, 0.1, 8000), 16000) }

func writeFile(t *testing.T, data []byte) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "data")
	if err := os.WriteFile(p, data, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestEngineFailuresAreTemporaryAndBounded(t *testing.T) {
	valid := writeFile(t, testWAV())
	tests := []struct {
		name    string
		script  string
		output  string
		timeout time.Duration
		wantMsg string
	}{
		{"hung", "sleep 30", OutputStdout, 300 * time.Millisecond, "timed out"},
		{"hung child keeps the pipe", "sleep 30 &\nwait", OutputStdout, 300 * time.Millisecond, "timed out"},
		{"garbage", "echo 'this is not audio'", OutputStdout, 0, "unusable WAV"},
		{"empty", "exit 0", OutputStdout, 0, "unusable WAV"},
		{"exit 3", "echo 'voice not found' >&2\nexit 3", OutputStdout, 0, "voice not found"},
		{"killed", "kill -9 $$", OutputStdout, 0, "signal: killed"},
		{"no output file", "exit 0", OutputFile, 0, "no output file"},
		{"garbage file", `head -c 5000 /dev/urandom > "$1"`, OutputFile, 0, "unusable WAV"},
		{"too much", "exec cat /dev/zero", OutputStdout, 0, "more than"},
		{"too much file", `head -c 200000 /dev/zero > "$1"`, OutputFile, 0, "more than"},
		{"header only", "printf 'RIFF\\044\\0\\0\\0WAVEfmt \\020\\0\\0\\0\\001\\0\\001\\0\\100\\037\\0\\0\\200\\076\\0\\0\\002\\0\\020\\0data\\0\\0\\0\\0'", OutputStdout, 0, "without samples"},
		{"valid then exit 1", "cat " + valid + "\nexit 1", OutputStdout, 0, "exit status 1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var extra []string
			if tt.output == OutputFile {
				extra = []string{"{{.Out}}"}
			}
			e := fakeEngine(t, tt.script, TextOnStdin, tt.output, extra...)
			e.MaxOutput = 100000
			if tt.timeout > 0 {
				e.Timeout = tt.timeout
			}
			r := Renderer{Engine: e}
			start := time.Now()
			_, err := r.Render(context.Background(), Request{From: "5551234", Text: "hello"})
			took := time.Since(start)
			if !errors.Is(err, ErrEngineFailed) {
				t.Fatalf("err = %v, want ErrEngineFailed", err)
			}
			if errors.Is(err, ErrUnspeakable) {
				t.Errorf("err = %v is also ErrUnspeakable", err)
			}
			if !strings.Contains(err.Error(), tt.wantMsg) {
				t.Errorf("err = %v, want it to mention %q", err, tt.wantMsg)
			}
			if limit := e.Timeout + waitDelay + time.Second; took > limit {
				t.Errorf("took %s, limit %s", took, limit)
			}
		})
	}
}

func TestEngineStragglerIsKilled(t *testing.T) {
	// The engine exits at once but leaves a background child holding its
	// stdout: the run ends after waitDelay and the child is killed.
	pidFile := filepath.Join(t.TempDir(), "pid")
	e := fakeEngine(t, "sleep 30 &\necho $! > "+pidFile+"\nexit 0", TextOnStdin, OutputStdout)
	start := time.Now()
	_, err := e.Speak(context.Background(), "hello", "en", "")
	if !errors.Is(err, ErrEngineFailed) {
		t.Fatalf("err = %v, want ErrEngineFailed", err)
	}
	if took := time.Since(start); took > waitDelay+time.Second {
		t.Errorf("took %s", took)
	}
	b, err := os.ReadFile(pidFile)
	if err != nil {
		t.Fatal(err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(2 * time.Second)
	for alive(pid) {
		if time.Now().After(deadline) {
			t.Fatalf("background child %d still running", pid)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// alive reports whether pid runs (a zombie waiting for its reaper is dead).
func alive(pid int) bool {
	if syscall.Kill(pid, 0) != nil {
		return false
	}
	stat, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	_, after, _ := strings.Cut(string(stat), ") ")
	return !strings.HasPrefix(after, "Z")
}

func TestEngineCallerCancel(t *testing.T) {
	e := fakeEngine(t, "sleep 30", TextOnStdin, OutputStdout)
	e.Timeout = time.Minute
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := e.Speak(ctx, "hello", "en", "")
	if !errors.Is(err, ErrEngineFailed) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v, want ErrEngineFailed and DeadlineExceeded", err)
	}
	if took := time.Since(start); took > 2*time.Second {
		t.Errorf("took %s", took)
	}
}

func TestEngineTextPassing(t *testing.T) {
	// The fake writes its argv (one per line) and stdin into files, then a
	// valid WAV: we check exactly what the engine received.
	hostile := "-v xx --help $(touch /tmp/pwned) `id`; rm -rf / \"'"
	tests := []struct {
		name      string
		textOn    string
		wantArgv  []string
		wantStdin string
	}{
		{"arg", TextOnArg, []string{"-x", "--", hostile}, ""},
		{"stdin", TextOnStdin, []string{"-x"}, hostile + "\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			script := `for a in "$@"; do printf '%s\n' "$a"; done > ` + dir + `/argv
cat > ` + dir + `/stdin
cat ` + writeFile(t, testWAV())
			e := fakeEngine(t, script, tt.textOn, OutputStdout, "-x")
			out, err := e.Speak(context.Background(), hostile, "en", "")
			if err != nil {
				t.Fatal(err)
			}
			if _, err := ParseWAV(out); err != nil {
				t.Fatal(err)
			}
			argv, _ := os.ReadFile(filepath.Join(dir, "argv"))
			if got, want := string(argv), strings.Join(tt.wantArgv, "\n")+"\n"; got != want {
				t.Errorf("argv:\n%q\nwant\n%q", got, want)
			}
			stdin, _ := os.ReadFile(filepath.Join(dir, "stdin"))
			if string(stdin) != tt.wantStdin {
				t.Errorf("stdin %q, want %q", stdin, tt.wantStdin)
			}
		})
	}
	if _, err := os.Stat("/tmp/pwned"); err == nil {
		t.Error("the text reached a shell")
	}
}

func TestEngineTemplates(t *testing.T) {
	dir := t.TempDir()
	script := `for a in "$@"; do printf '%s\n' "$a"; done > ` + dir + `/argv
cat ` + writeFile(t, testWAV()) + ` > "$2"`
	e := fakeEngine(t, script, TextOnStdin, OutputFile,
		"-o", "{{.Out}}", "{{if .Voice}}-voice{{end}}", "{{.Voice}}", "-l", "{{.Lang}}", "{{or .Voice .Lang}}")
	for _, tt := range []struct{ lang, voice, want string }{
		{"pl", "", "-o\nOUT\n-l\npl\npl\n"},
		{"de", "de+f3", "-o\nOUT\n-voice\nde+f3\n-l\nde\nde+f3\n"},
	} {
		if _, err := e.Speak(context.Background(), "x", tt.lang, tt.voice); err != nil {
			t.Fatal(err)
		}
		b, _ := os.ReadFile(filepath.Join(dir, "argv"))
		lines := strings.Split(string(b), "\n")
		if !strings.HasSuffix(lines[1], "/out.wav") {
			t.Errorf("out path %q", lines[1])
		}
		lines[1] = "OUT"
		if got := strings.Join(lines, "\n"); got != tt.want {
			t.Errorf("lang %q voice %q: argv %q, want %q", tt.lang, tt.voice, got, tt.want)
		}
		// The output file's directory is removed after the run.
		if _, err := os.Stat(filepath.Dir(strings.Split(string(b), "\n")[1])); !os.IsNotExist(err) {
			t.Errorf("temporary output directory left behind: %v", err)
		}
	}
}

func TestEngineValidate(t *testing.T) {
	tests := []struct {
		name string
		e    Engine
		want string // "" means valid
	}{
		{"ok stdin", Engine{Argv: []string{"x"}, TextOn: TextOnStdin, Output: OutputStdout}, ""},
		{"ok arg", Engine{Argv: []string{"x", "--", "{{.Text}}"}, TextOn: TextOnArg, Output: OutputStdout}, ""},
		{"empty", Engine{TextOn: TextOnStdin, Output: OutputStdout}, "empty argv"},
		{"templated program", Engine{Argv: []string{"{{.Voice}}"}, TextOn: TextOnStdin, Output: OutputStdout}, "program name"},
		{"bad text on", Engine{Argv: []string{"x"}, TextOn: "pipe", Output: OutputStdout}, "TextOn"},
		{"bad output", Engine{Argv: []string{"x"}, TextOn: TextOnStdin, Output: "fd3"}, "Output"},
		{"spliced text", Engine{Argv: []string{"x", "-t{{.Text}}"}, TextOn: TextOnArg, Output: OutputStdout}, "element of its own"},
		{"text twice", Engine{Argv: []string{"x", "{{.Text}}", "{{.Text}}"}, TextOn: TextOnArg, Output: OutputStdout}, "exactly once"},
		{"arg without text", Engine{Argv: []string{"x"}, TextOn: TextOnArg, Output: OutputStdout}, "exactly once"},
		{"stdin with text", Engine{Argv: []string{"x", "{{.Text}}"}, TextOn: TextOnStdin, Output: OutputStdout}, "must not"},
		{"file without out", Engine{Argv: []string{"x"}, TextOn: TextOnStdin, Output: OutputFile}, "{{.Out}}"},
		{"bad template", Engine{Argv: []string{"x", "{{.Voice"}, TextOn: TextOnStdin, Output: OutputStdout}, "argv[1]"},
		{"unknown field", Engine{Argv: []string{"x", "{{.Speed}}"}, TextOn: TextOnStdin, Output: OutputStdout}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.e.Validate()
			switch {
			case tt.want == "" && err != nil:
				t.Errorf("Validate: %v", err)
			case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
				t.Errorf("Validate = %v, want an error mentioning %q", err, tt.want)
			}
		})
	}
	// An unknown field parses but fails when run, before anything starts.
	e := Engine{Name: "t", Argv: []string{"true", "{{.Speed}}"}, TextOn: TextOnStdin, Output: OutputStdout}
	if _, err := e.Speak(context.Background(), "x", "en", ""); err == nil || errors.Is(err, ErrEngineFailed) {
		t.Errorf("unknown template field: err = %v, want a configuration error", err)
	}
}

func TestEngineRejectsBadNames(t *testing.T) {
	e := fakeEngine(t, "cat "+writeFile(t, testWAV()), TextOnStdin, OutputStdout)
	for _, tt := range []struct{ lang, voice string }{
		{"-x", ""}, {"en", "--help"}, {"../x", ""}, {"en", "kal)(system \"id\")"}, {"en", "a b"},
		{strings.Repeat("a", 65), ""},
	} {
		if _, err := e.Speak(context.Background(), "x", tt.lang, tt.voice); err == nil {
			t.Errorf("lang %q voice %q accepted", tt.lang, tt.voice)
		}
	}
	for _, tt := range []struct{ lang, voice string }{{"pl", ""}, {"en-us", "en-us+f3"}, {"de", "kal_diphone"}, {"", ""}} {
		if _, err := e.Speak(context.Background(), "x", tt.lang, tt.voice); err != nil {
			t.Errorf("lang %q voice %q: %v", tt.lang, tt.voice, err)
		}
	}
}

func TestPresets(t *testing.T) {
	for _, name := range []string{"", "espeak-ng", "flite", "festival", "text2wave"} {
		e, err := Preset(name)
		if err != nil {
			t.Fatalf("Preset(%q): %v", name, err)
		}
		if err := e.Validate(); err != nil {
			t.Errorf("Preset(%q) invalid: %v", name, err)
		}
	}
	if _, err := Preset("say"); err == nil {
		t.Error("unknown preset accepted")
	}
}

// requireBinary fails (never skips) when an engine the CI installs is missing.
func requireBinary(t *testing.T, name, pkg string) {
	t.Helper()
	if _, err := exec.LookPath(name); err != nil {
		t.Fatalf("%s not found: install %s (apt-get install %s)", name, pkg, pkg)
	}
}

func TestRealEngineDashText(t *testing.T) {
	// A text that looks like options must be spoken, not obeyed: espeak-ng
	// would print its help (no WAV) for --help, flite would treat -voice.
	for _, tt := range []struct{ preset, bin string }{{"espeak-ng", "espeak-ng"}, {"flite", "flite"}} {
		t.Run(tt.preset, func(t *testing.T) {
			requireBinary(t, tt.bin, tt.bin)
			e, _ := Preset(tt.preset)
			out, err := e.Speak(context.Background(), "--help -v xx -voice slt", "en", "")
			if err != nil {
				t.Fatal(err)
			}
			pcm, err := ParseWAV(out)
			if err != nil {
				t.Fatalf("%s output: %v", tt.preset, err)
			}
			if secs := float64(len(pcm.Samples)) / float64(pcm.Rate); secs < 1 {
				t.Errorf("%s spoke %.2f s for a six-word text", tt.preset, secs)
			}
		})
	}
}

func TestEngineStderrCapped(t *testing.T) {
	e := fakeEngine(t, "head -c 100000 /dev/zero | tr '\\0' x >&2\nexit 1", TextOnStdin, OutputStdout)
	_, err := e.Speak(context.Background(), "hello", "en", "")
	if !errors.Is(err, ErrEngineFailed) {
		t.Fatalf("err = %v", err)
	}
	if msg := err.Error(); len(msg) > maxStderr+200 || !strings.Contains(msg, "xxxx") || !strings.HasSuffix(msg, "…") {
		t.Errorf("error of %d bytes, want the first %d bytes of stderr and an ellipsis", len(msg), maxStderr)
	}
}

func TestEspeakPresetWithoutLanguage(t *testing.T) {
	// With neither language nor voice espeak-ng must use its default voice,
	// not take "--stdout" for a voice name.
	requireBinary(t, "espeak-ng", "espeak-ng")
	e, _ := Preset("espeak-ng")
	out, err := e.Speak(context.Background(), "hello", "", "")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ParseWAV(out); err != nil {
		t.Fatal(err)
	}
}

func TestCappedKeepsExactlyTheFirstMaxBytes(t *testing.T) {
	data := make([]byte, 300<<10)
	for i := range data {
		data[i] = byte(i * 7)
	}
	for _, tc := range []struct {
		name   string
		max    int64
		pieces []int // sizes of successive writes
	}{
		{"nothing", 1 << 20, nil},
		{"one small write", 1 << 20, []int{10}},
		{"pipe-sized writes", 1 << 20, []int{32 << 10, 32 << 10, 32 << 10, 7}},
		{"odd writes across chunks", 1 << 20, []int{1, 65535, 2, 70000, 3, 100000}},
		{"one write larger than a chunk", 1 << 20, []int{200 << 10}},
		{"cap inside a write", 100000, []int{60000, 60000, 5}},
		{"cap exactly at a write's end", 65536, []int{65536, 1}},
		{"tiny cap", 5, []int{3, 3, 3}},
		{"zero cap", 0, []int{10, 10}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			overs := 0
			c := &capped{max: tc.max, onOver: func() { overs++ }}
			off := 0
			for _, n := range tc.pieces {
				got, err := c.Write(data[off : off+n])
				if got != n || err != nil {
					t.Fatalf("Write(%d bytes) = %d, %v: a capped writer must swallow everything", n, got, err)
				}
				off += n
			}
			want := data[:min(int64(off), tc.max)]
			if got := c.bytes(); !bytes.Equal(got, want) {
				t.Fatalf("kept %d bytes, want the first %d", len(got), len(want))
			}
			wantOver := int64(off) > tc.max
			if c.over != wantOver || (wantOver && overs != 1) || (!wantOver && overs != 0) {
				t.Fatalf("over=%v after %d bytes of %d allowed, onOver called %d times", c.over, off, tc.max, overs)
			}
		})
	}
}
