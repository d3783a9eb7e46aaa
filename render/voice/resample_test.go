package voice

import (
	"fmt"
	"math"
	"testing"
)

func tone(freq float64, rate int, seconds float64, amp float64) []int16 {
	n := int(float64(rate) * seconds)
	s := make([]int16, n)
	for i := range s {
		s[i] = int16(math.Round(amp * math.Sin(2*math.Pi*freq*float64(i)/float64(rate))))
	}
	return s
}

// rms measures the middle of a signal, away from the ends where the edge
// padding, not the filter's frequency response, decides the output.
func rms(s []int16) float64 {
	mid := s[len(s)/10 : len(s)-len(s)/10]
	var sum float64
	for _, v := range mid {
		sum += float64(v) * float64(v)
	}
	return math.Sqrt(sum / float64(len(mid)))
}

func gainDB(freq float64, from, to int) float64 {
	const amp = 16000
	in := tone(freq, from, 1, amp)
	out := Resample(in, from, to)
	return 20 * math.Log10(rms(out)/rms(in))
}

func TestResampleFrequencyResponse(t *testing.T) {
	// Telephone band at 8 kHz: flat to 3.4 kHz, stop band from 4 kHz (above
	// it every tone would fold back into the audible band). 3.9 kHz lies in
	// the transition band: it can be represented at 8 kHz, so it must not
	// alias, but it is allowed (and expected) to be attenuated.
	tests := []struct {
		freq     float64
		min, max float64 // dB
	}{
		{300, -0.1, 0.1},
		{1000, -0.1, 0.1},
		{3300, -1, 0.1},
		{3400, -1, 0.1},
		{3900, -60, -6},
		{4000, math.Inf(-1), -40},
		{4050, math.Inf(-1), -40},
		{4200, math.Inf(-1), -40},
		{4500, math.Inf(-1), -40},
		{6000, math.Inf(-1), -40},
		{7900, math.Inf(-1), -40},
		{10000, math.Inf(-1), -40},
	}
	for _, from := range []int{11025, 16000, 22050, 44100, 48000} {
		for _, tt := range tests {
			if tt.freq >= float64(from)/2 {
				continue
			}
			t.Run(fmt.Sprintf("%d/%g", from, tt.freq), func(t *testing.T) {
				g := gainDB(tt.freq, from, 8000)
				if g < tt.min || g > tt.max {
					t.Errorf("%g Hz at %d→8000: gain %.2f dB, want %.1f…%.1f dB", tt.freq, from, g, tt.min, tt.max)
				}
			})
		}
	}
}

func TestResampleOddRates(t *testing.T) {
	// 22051/8000 has 8000 phases: too many to tabulate, so the taps are
	// computed per output sample. The response must be the same.
	for _, tt := range []struct {
		freq     float64
		min, max float64
	}{{1000, -0.1, 0.1}, {3400, -1, 0.1}, {4500, math.Inf(-1), -40}, {6000, math.Inf(-1), -40}} {
		if g := gainDB(tt.freq, 22051, 8000); g < tt.min || g > tt.max {
			t.Errorf("%g Hz at 22051→8000: gain %.2f dB, want %.1f…%.1f dB", tt.freq, g, tt.min, tt.max)
		}
	}
}

func TestResampleUpsampling(t *testing.T) {
	// Going up must not create images above the source's Nyquist frequency:
	// a 1 kHz tone at 4 kHz → 8 kHz keeps its level.
	if g := gainDB(1000, 4000, 8000); math.Abs(g) > 0.1 {
		t.Errorf("1 kHz at 4000→8000: gain %.2f dB", g)
	}
}

func TestResampleLength(t *testing.T) {
	for _, tt := range []struct{ n, from, to, want int }{
		{22050, 22050, 8000, 8000},
		{22051, 22050, 8000, 8000}, // 8000.36 rounds down
		{22052, 22050, 8000, 8001}, // 8000.73 rounds up
		{1, 22050, 8000, 0},        // 0.36
		{2, 22050, 8000, 1},        // 0.73
		{44100 * 3, 44100, 8000, 24000},
		{16001, 16000, 8000, 8001}, // 8000.5 rounds half up
		{12345, 8000, 8000, 12345},
		{7, 4000, 8000, 14},
		{10000, 22051, 8000, 3628}, // odd rates: 3627.95
		{0, 22050, 8000, 0},
	} {
		in := tone(440, tt.from, float64(tt.n)/float64(tt.from)+1, 1000)[:tt.n]
		if got := len(Resample(in, tt.from, tt.to)); got != tt.want {
			t.Errorf("Resample(%d samples, %d→%d): %d samples, want %d", tt.n, tt.from, tt.to, got, tt.want)
		}
	}
	if Resample([]int16{1}, 0, 8000) != nil || Resample([]int16{1}, 8000, -1) != nil {
		t.Error("non-positive rates must give nil")
	}
}

func TestResampleIdentity(t *testing.T) {
	in := tone(1234, 8000, 0.5, 20000)
	out := Resample(in, 8000, 8000)
	if len(out) != len(in) {
		t.Fatalf("len %d, want %d", len(out), len(in))
	}
	for i := range in {
		if in[i] != out[i] {
			t.Fatalf("sample %d: %d, want %d", i, out[i], in[i])
		}
	}
	out[0]++
	if in[0] == out[0] {
		t.Error("identity resample must return a copy, not the input")
	}
}

func TestResampleNoClicks(t *testing.T) {
	for _, from := range []int{16000, 22050, 44100, 11025} {
		t.Run(fmt.Sprint(from), func(t *testing.T) {
			// A constant stays constant up to the last sample: the filter
			// is primed with the edge value, not with zeros.
			dc := make([]int16, from/2)
			for i := range dc {
				dc[i] = 12000
			}
			for i, v := range Resample(dc, from, 8000) {
				if v < 11998 || v > 12002 {
					t.Fatalf("DC 12000: output[%d] = %d", i, v)
				}
			}
			// A sine starting at phase 0 starts at zero and never steps
			// faster at its start than it does anywhere in the middle.
			out := Resample(tone(500, from, 0.5, 20000), from, 8000)
			// (Not exactly 0: the input's slope starts abruptly, and its
			// band-limited version begins a little early.)
			if math.Abs(float64(out[0])) > 0.05*20000 {
				t.Errorf("first sample %d, want ≈0", out[0])
			}
			maxStep := func(s []int16) float64 {
				var m float64
				for i := 1; i < len(s); i++ {
					m = max(m, math.Abs(float64(s[i])-float64(s[i-1])))
				}
				return m
			}
			head, body := maxStep(out[:80]), maxStep(out[len(out)/3:2*len(out)/3])
			if head > body*1.02 {
				t.Errorf("largest step in the first 10 ms %.0f, in the middle %.0f: a click", head, body)
			}
		})
	}
}

func BenchmarkResample(b *testing.B) {
	for _, from := range []int{22050, 16000, 44100} {
		b.Run(fmt.Sprint(from), func(b *testing.B) {
			in := tone(440, from, 10, 10000)
			b.ResetTimer()
			for b.Loop() {
				Resample(in, from, 8000)
			}
			b.ReportMetric(float64(len(in))*float64(b.N)/b.Elapsed().Seconds(), "samples/s")
		})
	}
}
