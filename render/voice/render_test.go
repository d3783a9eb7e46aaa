package voice

import (
	"context"
	"encoding/binary"
	"errors"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

// checkTelephoneWAV verifies the exact header Asterisk's format_wav wants
// and returns the samples.
func checkTelephoneWAV(t *testing.T, b []byte) []int16 {
	t.Helper()
	if len(b) < 44 {
		t.Fatalf("WAV of %d bytes", len(b))
	}
	u16 := func(o int) int { return int(binary.LittleEndian.Uint16(b[o:])) }
	u32 := func(o int) int { return int(binary.LittleEndian.Uint32(b[o:])) }
	if string(b[0:4]) != "RIFF" || string(b[8:16]) != "WAVEfmt " || string(b[36:40]) != "data" {
		t.Fatalf("not a canonical WAV header: %q", b[:44])
	}
	for _, c := range []struct {
		what      string
		got, want int
	}{
		{"RIFF size", u32(4), len(b) - 8},
		{"fmt size", u32(16), 16},
		{"format (PCM)", u16(20), 1},
		{"channels", u16(22), 1},
		{"rate", u32(24), 8000},
		{"byte rate", u32(28), 16000},
		{"block align", u16(32), 2},
		{"bits", u16(34), 16},
		{"data size", u32(40), len(b) - 44},
	} {
		if c.got != c.want {
			t.Errorf("%s = %d, want %d", c.what, c.got, c.want)
		}
	}
	p, err := ParseWAV(b)
	if err != nil {
		t.Fatal(err)
	}
	return p.Samples
}

// soxi runs the real soxi on the file and returns its -r -c -b -s -D answers.
func soxi(t *testing.T, path string) (rate, channels, bits, samples int, seconds float64) {
	t.Helper()
	if _, err := exec.LookPath("soxi"); err != nil {
		t.Fatal("soxi not found: install sox (apt-get install sox)")
	}
	ask := func(opt string) string {
		out, err := exec.Command("soxi", opt, path).CombinedOutput()
		if err != nil {
			t.Fatalf("soxi %s %s: %v: %s", opt, path, err, out)
		}
		return strings.TrimSpace(string(out))
	}
	atoi := func(s string) int {
		n, err := strconv.Atoi(s)
		if err != nil {
			t.Fatalf("soxi answered %q", s)
		}
		return n
	}
	seconds, err := strconv.ParseFloat(ask("-D"), 64)
	if err != nil {
		t.Fatal(err)
	}
	return atoi(ask("-r")), atoi(ask("-c")), atoi(ask("-b")), atoi(ask("-s")), seconds
}

func TestRenderRealEngines(t *testing.T) {
	short := "Hello Anna."
	long := "Hello Anna, the parcel for order 4471 arrives tomorrow between nine and eleven in the morning. Please leave the side gate open, or call us back."
	tests := []struct {
		preset, bin, pkg, lang string
		optional               bool // festival: not every CI installs it
	}{
		{"espeak-ng", "espeak-ng", "espeak-ng", "en", false},
		{"espeak-ng", "espeak-ng", "espeak-ng", "pl", false},
		{"espeak-ng", "espeak-ng", "espeak-ng", "de", false},
		{"flite", "flite", "flite", "en", false},
		{"festival", "text2wave", "festival", "en", true},
	}
	for _, tt := range tests {
		t.Run(tt.preset+"/"+tt.lang, func(t *testing.T) {
			if _, err := exec.LookPath(tt.bin); err != nil && tt.optional {
				t.Skipf("%s not installed (optional engine)", tt.bin)
			}
			requireBinary(t, tt.bin, tt.pkg)
			e, err := Preset(tt.preset)
			if err != nil {
				t.Fatal(err)
			}
			r := Renderer{Engine: e}
			speech := make(map[string]float64)
			for _, text := range []string{short, long} {
				req := Request{From: "5551234", Text: text, Lang: tt.lang}
				wav, err := r.Render(context.Background(), req)
				if err != nil {
					t.Fatal(err)
				}
				s := checkTelephoneWAV(t, wav)

				// Lead silence: the first second is silent, then there is speech.
				for i, v := range s[:8000] {
					if v != 0 {
						t.Fatalf("lead silence broken at sample %d: %d", i, v)
					}
				}
				if level := rmsAll(s[8000:]); level < 300 {
					t.Errorf("speech RMS %.0f: (nearly) silent", level)
				}

				// Duration against the text: telephone speech runs at
				// roughly 8–20 characters a second; allow 5–30.
				n := utf8.RuneCountInString(Compose(req, r.phrases(tt.lang)))
				secs := float64(len(s)-8000) / 8000
				speech[text] = secs
				if cps := float64(n) / secs; cps < 5 || cps > 30 {
					t.Errorf("%d characters spoken in %.2f s (%.1f/s)", n, secs, cps)
				}

				// And soxi, an independent reader, agrees.
				path := filepath.Join(t.TempDir(), "msg.wav")
				if err := os.WriteFile(path, wav, 0o644); err != nil {
					t.Fatal(err)
				}
				rate, ch, bits, samples, _ := soxi(t, path)
				if rate != 8000 || ch != 1 || bits != 16 || samples != len(s) {
					t.Errorf("soxi: %d Hz, %d channels, %d bits, %d samples; want 8000, 1, 16, %d", rate, ch, bits, samples, len(s))
				}
			}
			// A longer text takes proportionally longer.
			lenRatio := float64(len(long)+20) / float64(len(short)+20)
			if ratio := speech[long] / speech[short]; ratio < lenRatio/2.5 || ratio > lenRatio*2.5 {
				t.Errorf("long/short duration ratio %.2f, text ratio %.2f", ratio, lenRatio)
			}
		})
	}
}

func rmsAll(s []int16) float64 {
	var sum float64
	for _, v := range s {
		sum += float64(v) * float64(v)
	}
	return math.Sqrt(sum / float64(max(len(s), 1)))
}

func TestRenderExactLength(t *testing.T) {
	requireBinary(t, "espeak-ng", "espeak-ng")
	e, _ := Preset("espeak-ng")
	req := Request{From: "12", Text: "Exact length.", Lang: "en"}
	r := Renderer{Engine: e, LeadSilence: 250 * time.Millisecond}
	raw, err := e.Speak(context.Background(), Compose(req, r.phrases("en")), "en", "")
	if err != nil {
		t.Fatal(err)
	}
	p, err := ParseWAV(raw)
	if err != nil {
		t.Fatal(err)
	}
	if p.Rate != 22050 {
		t.Fatalf("espeak-ng rate %d, this test expects 22050", p.Rate)
	}
	wav, err := r.Render(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	want := 2000 + int(math.Round(float64(len(p.Samples))*8000/22050))
	if got := len(checkTelephoneWAV(t, wav)); got != want {
		t.Errorf("%d samples, want 2000 + round(%d*8000/22050) = %d", got, len(p.Samples), want)
	}
}

func TestRenderWithFakeEngine(t *testing.T) {
	// The fake speaks 0.5 s of a constant at 16 kHz whatever it is told.
	dc := make([]int16, 8000)
	for i := range dc {
		dc[i] = 10000
	}
	src := writeFile(t, EncodeWAV(dc, 16000))
	ranFile := filepath.Join(t.TempDir(), "ran")
	e := fakeEngine(t, "touch "+ranFile+"\ncat "+src, TextOnStdin, OutputStdout)
	fadeN := int(fade * Rate / time.Second)
	tests := []struct {
		name  string
		lead  time.Duration
		leadN int
	}{
		{"default lead", 0, 8000},
		{"no lead", -1, 0},
		{"short lead", 100 * time.Millisecond, 800},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := Renderer{Engine: e, LeadSilence: tt.lead}
			wav, err := r.Render(context.Background(), Request{From: "1", Text: "x"})
			if err != nil {
				t.Fatal(err)
			}
			s := checkTelephoneWAV(t, wav)
			if len(s) != tt.leadN+4000 {
				t.Fatalf("%d samples, want %d", len(s), tt.leadN+4000)
			}
			for i := range tt.leadN {
				if s[i] != 0 {
					t.Fatalf("lead sample %d = %d", i, s[i])
				}
			}
			// The speech fades in and out instead of jumping to 10000.
			speech := s[tt.leadN:]
			if speech[0] != 0 || speech[len(speech)-1] != 0 {
				t.Errorf("speech starts at %d and ends at %d, want 0 (faded)", speech[0], speech[len(speech)-1])
			}
			for i := 1; i < len(speech); i++ {
				if d := math.Abs(float64(speech[i]) - float64(speech[i-1])); d > 10000/float64(fadeN)+2 {
					t.Fatalf("jump of %.0f at speech sample %d: a click", d, i)
				}
			}
			if speech[len(speech)/2] < 9990 || speech[len(speech)/2] > 10010 {
				t.Errorf("level %d in the middle, want 10000", speech[len(speech)/2])
			}
		})
	}

	// Unspeakable requests are refused before the engine runs.
	os.Remove(ranFile)
	for _, tt := range []struct {
		name string
		r    *Renderer
		req  Request
	}{
		{"nothing to say", &Renderer{Engine: e, Phrases: map[string]Phrases{"en": {}}}, Request{Text: " \x00 "}},
		{"too long", &Renderer{Engine: e, MaxRunes: 50}, Request{From: "1", Text: strings.Repeat("word ", 20)}},
	} {
		_, err := tt.r.Render(context.Background(), tt.req)
		if !errors.Is(err, ErrUnspeakable) || errors.Is(err, ErrEngineFailed) {
			t.Errorf("%s: err = %v, want ErrUnspeakable only", tt.name, err)
		}
	}
	if _, err := os.Stat(ranFile); err == nil {
		t.Error("the engine ran for an unspeakable request")
	}
}

func TestRenderFestivalPresetWithFake(t *testing.T) {
	// festival is optional in CI: check the preset's contract (argv, text on
	// stdin, WAV in the -o file) against a fake text2wave.
	dir := t.TempDir()
	src := writeFile(t, EncodeWAV(tone(300, 16000, 0.5, 8000), 16000))
	fake := fakeEngine(t, `for a in "$@"; do printf '%s\n' "$a"; done > `+dir+`/argv
cat > `+dir+`/stdin
cp `+src+` "$2"`, TextOnStdin, OutputFile)
	e, _ := Preset("festival")
	e.Argv[0] = fake.Argv[0]
	r := Renderer{Engine: e}
	wav, err := r.Render(context.Background(), Request{From: "12", Text: "-eval (exit)", Voice: "kal_diphone"})
	if err != nil {
		t.Fatal(err)
	}
	if got := len(checkTelephoneWAV(t, wav)); got != 8000+4000 {
		t.Errorf("%d samples, want 12000", got)
	}
	argv, _ := os.ReadFile(filepath.Join(dir, "argv"))
	lines := strings.Split(strings.TrimSpace(string(argv)), "\n")
	if len(lines) != 4 || lines[0] != "-o" || !strings.HasSuffix(lines[1], ".wav") || lines[2] != "-eval" || lines[3] != "(voice_kal_diphone)" {
		t.Errorf("argv %q", lines)
	}
	stdin, _ := os.ReadFile(filepath.Join(dir, "stdin"))
	if string(stdin) != "Message from 1 2. -eval (exit)\n" {
		t.Errorf("stdin %q", stdin)
	}
}

// TestListenCheck renders the sample sentence in Polish and English
// with espeak-ng for a human to listen to; run with -v to see where.
func TestListenCheck(t *testing.T) {
	requireBinary(t, "espeak-ng", "espeak-ng")
	dir := t.TempDir()
	if d := os.Getenv("VOICE_LISTEN_DIR"); d != "" {
		dir = d
	}
	for _, lang := range []string{"pl", "en"} {
		wav, err := (&Renderer{}).Render(context.Background(), Request{From: "5551234", Text: "Zażółć gęślą jaźń", Lang: lang})
		if err != nil {
			t.Fatal(err)
		}
		path := filepath.Join(dir, "listen-"+lang+".wav")
		if err := os.WriteFile(path, wav, 0o644); err != nil {
			t.Fatal(err)
		}
		rate, ch, bits, samples, secs := soxi(t, path)
		t.Logf("%s: %d Hz, %d ch, %d bit, %d samples, %.2f s", path, rate, ch, bits, samples, secs)
		if secs < 3 || secs > 12 {
			t.Errorf("%s: %.2f s", lang, secs)
		}
	}
}

func TestRenderRateChangesAndConcurrency(t *testing.T) {
	// One Renderer, engines at different rates, used from several
	// goroutines: the cached filter must follow the rate.
	engines := map[int]Engine{}
	for _, rate := range []int{16000, 22050, 11025} {
		src := writeFile(t, EncodeWAV(tone(1000, rate, 0.5, 10000), rate))
		engines[rate] = fakeEngine(t, "cat "+src, TextOnStdin, OutputStdout)
	}
	r := &Renderer{LeadSilence: -1}
	for _, rate := range []int{16000, 22050, 16000, 11025} {
		r.Engine = engines[rate]
		errs := make(chan error, 4)
		for range 4 {
			go func() {
				wav, err := r.Render(context.Background(), Request{From: "1", Text: "x"})
				if err == nil {
					var p *PCM
					if p, err = ParseWAV(wav); err == nil && len(p.Samples) != 4000 {
						err = errors.New("wrong length " + strconv.Itoa(len(p.Samples)))
					}
					if err == nil && math.Abs(20*math.Log10(rms(p.Samples)/(10000/math.Sqrt2))) > 0.2 {
						err = errors.New("wrong level")
					}
				}
				errs <- err
			}()
		}
		for range 4 {
			if err := <-errs; err != nil {
				t.Errorf("rate %d: %v", rate, err)
			}
		}
	}
}
