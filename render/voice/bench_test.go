package voice

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"syscall"
	"testing"
	"time"
	"unicode/utf8"
)

// ownText is a 139-character message, the size issue 17 measured.
const ownText = "Hi Anna, the delivery for order 4471 arrives tomorrow between 9 and 11. " +
	"Please leave the side gate open or call us back. Thanks a lot, Tom!"

// recorded has espeak-ng speak the composed request once and returns the WAV's
// path: from then on the engine's output is fixed, and what varies is ours.
func recorded(b *testing.B, req Request) string {
	b.Helper()
	if utf8.RuneCountInString(ownText) != 139 {
		b.Fatalf("ownText has %d characters, want 139", utf8.RuneCountInString(ownText))
	}
	if _, err := exec.LookPath("espeak-ng"); err != nil {
		b.Fatal("espeak-ng not found: install espeak-ng")
	}
	var r Renderer
	e, _ := Preset("espeak-ng")
	raw, err := e.Speak(context.Background(), Compose(req, r.phrases("en")), "en", "")
	if err != nil {
		b.Fatal(err)
	}
	path := filepath.Join(b.TempDir(), "engine.wav")
	if err := os.WriteFile(path, raw, 0o644); err != nil {
		b.Fatal(err)
	}
	return path
}

func medianMS(d []time.Duration) float64 {
	s := slices.Clone(d)
	slices.Sort(s)
	return float64(s[len(s)/2].Microseconds()) / 1000
}

// BenchmarkRenderOwnTime renders a 139-character message through the whole
// Renderer, with an engine that replays espeak-ng's recorded output (cat), and
// beside it, in every iteration, runs that same cat alone (its output to
// /dev/null): the engine's share. own_ms, the median of the differences, is
// smsrouter's own time around the engine: collecting the output, decoding,
// resampling to 8 kHz, fading, encoding. Issue 17's target: ≤ 10 ms.
func BenchmarkRenderOwnTime(b *testing.B) {
	req := Request{From: "5551234", Lang: "en", Text: ownText}
	wav := recorded(b, req)
	r := &Renderer{Engine: Engine{Name: "recorded", Argv: []string{"cat", wav}, TextOn: TextOnStdin, Output: OutputStdout}}
	ctx := context.Background()
	if _, err := r.Render(ctx, req); err != nil { // designs the filter once, as a running router has
		b.Fatal(err)
	}
	var render, engine, own []time.Duration
	var cpu time.Duration
	for b.Loop() {
		c0 := processCPU(b)
		t0 := time.Now()
		if _, err := r.Render(ctx, req); err != nil {
			b.Fatal(err)
		}
		t1 := time.Now()
		cpu += processCPU(b) - c0
		if err := exec.Command("cat", wav).Run(); err != nil {
			b.Fatal(err)
		}
		t2 := time.Now()
		render, engine = append(render, t1.Sub(t0)), append(engine, t2.Sub(t1))
		own = append(own, t1.Sub(t0)-t2.Sub(t1))
	}
	b.ReportMetric(medianMS(render), "render_ms")
	b.ReportMetric(medianMS(engine), "engine_ms")
	b.ReportMetric(medianMS(own), "own_ms")
	// The same from the operating system's accounting: this process's CPU time
	// during Render (the engine's is its child's), which waiting for a busy
	// machine does not inflate.
	b.ReportMetric(float64(cpu.Microseconds())/1000/float64(len(own)), "own_cpu_ms")
}

// processCPU is the user and system time this process has used so far.
func processCPU(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkRenderPipeline is the in-process part of BenchmarkRenderOwnTime
// without any process: the recorded WAV written into the engine's output buffer
// in pipe-sized pieces, decoded, resampled, faded and encoded.
func BenchmarkRenderPipeline(b *testing.B) {
	req := Request{From: "5551234", Lang: "en", Text: ownText}
	raw, err := os.ReadFile(recorded(b, req))
	if err != nil {
		b.Fatal(err)
	}
	r := &Renderer{}
	p := r.phrases("en")
	for b.Loop() {
		_ = Compose(req, p)
		out := &capped{max: DefaultMaxOutput}
		for rest := raw; len(rest) > 0; {
			n := min(len(rest), 64<<10) // a pipe's capacity
			out.Write(rest[:n])
			rest = rest[n:]
		}
		w, err := parseWAV(out.bytes())
		if err != nil {
			b.Fatal(err)
		}
		_ = r.finish(w)
	}
	b.ReportMetric(float64(len(raw)), "wav_bytes")
}
