package voice

import (
	"bytes"
	"encoding/binary"
	"flag"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite golden files")

// wavBytes builds a WAV file by hand so the tests do not depend on the
// encoder they check. A format above 0xFFFE means WAVE_FORMAT_EXTENSIBLE with sub-format format-0xFFFF.
func wavBytes(format, channels, rate, bits int, riffSize, dataSize uint32, data []byte, chunksBefore ...[]byte) []byte {
	var b bytes.Buffer
	le := func(v any) { binary.Write(&b, binary.LittleEndian, v) }
	b.WriteString("RIFF")
	le(riffSize)
	b.WriteString("WAVE")
	for _, c := range chunksBefore {
		b.Write(c)
	}
	fmtBody := new(bytes.Buffer)
	binary.Write(fmtBody, binary.LittleEndian, []uint16{uint16(min(format, 0xFFFE)), uint16(channels)})
	binary.Write(fmtBody, binary.LittleEndian, []uint32{uint32(rate), uint32(rate * channels * bits / 8)})
	binary.Write(fmtBody, binary.LittleEndian, []uint16{uint16(channels * bits / 8), uint16(bits)})
	if format > 0xFFFE { // extensible with sub-format format-0xFFFF
		binary.Write(fmtBody, binary.LittleEndian, []uint16{22, uint16(bits), 0, 0, uint16(format - 0xFFFF)})
		fmtBody.Write(make([]byte, 14))
	}
	b.WriteString("fmt ")
	le(uint32(fmtBody.Len()))
	b.Write(fmtBody.Bytes())
	b.WriteString("data")
	le(dataSize)
	b.Write(data)
	return b.Bytes()
}

func le16(v ...int16) []byte {
	b := make([]byte, 2*len(v))
	for i, s := range v {
		binary.LittleEndian.PutUint16(b[2*i:], uint16(s))
	}
	return b
}

func TestParseWAV(t *testing.T) {
	mono := le16(0, 1000, -1000, 32767, -32768)
	listChunk := append([]byte("LIST\x03\x00\x00\x00abc"), 0) // odd size, padded
	f32 := func(v ...float32) []byte {
		b := make([]byte, 4*len(v))
		for i, f := range v {
			binary.LittleEndian.PutUint32(b[4*i:], math.Float32bits(f))
		}
		return b
	}
	tests := []struct {
		name     string
		in       []byte
		rate     int
		channels int
		want     []int16
	}{
		{"16-bit mono", wavBytes(1, 1, 22050, 16, 46, 10, mono), 22050, 1, []int16{0, 1000, -1000, 32767, -32768}},
		{"espeak-ng placeholder sizes", wavBytes(1, 1, 22050, 16, 0x7ffff024, 0x7ffff000, mono), 22050, 1, []int16{0, 1000, -1000, 32767, -32768}},
		{"all ones sizes", wavBytes(1, 1, 8000, 16, 0xFFFFFFFF, 0xFFFFFFFF, mono), 8000, 1, []int16{0, 1000, -1000, 32767, -32768}},
		{"zero sizes", wavBytes(1, 1, 8000, 16, 0, 0, mono), 8000, 1, []int16{0, 1000, -1000, 32767, -32768}},
		{"trailing half frame dropped", wavBytes(1, 1, 8000, 16, 0, 0, append(mono, 7)), 8000, 1, []int16{0, 1000, -1000, 32767, -32768}},
		{"data shorter than the file", wavBytes(1, 1, 8000, 16, 0, 4, append(le16(5, 6), []byte("junkjunk")...)), 8000, 1, []int16{5, 6}},
		{"odd chunk before fmt", wavBytes(1, 1, 16000, 16, 0, 4, le16(5, 6), listChunk), 16000, 1, []int16{5, 6}},
		{"stereo averaged", wavBytes(1, 2, 44100, 16, 0, 8, le16(100, 300, -32768, -32768)), 44100, 2, []int16{200, -32768}},
		{"8-bit unsigned stereo", wavBytes(1, 2, 11025, 8, 0, 4, []byte{128, 128, 255, 0}), 11025, 2, []int16{0, -128}},
		{"8-bit mono", wavBytes(1, 1, 8000, 8, 0, 3, []byte{0, 128, 255}), 8000, 1, []int16{-32768, 0, 32512}},
		{"24-bit", wavBytes(1, 1, 48000, 24, 0, 6, []byte{0xff, 0x34, 0x12, 0x00, 0x00, 0x80}), 48000, 1, []int16{0x1234, -32768}},
		{"32-bit", wavBytes(1, 1, 48000, 32, 0, 4, []byte{0xff, 0xff, 0xcd, 0xab}), 48000, 1, []int16{-0x5433}},
		{"float", wavBytes(3, 1, 16000, 32, 0, 16, f32(0.5, -1, 2, float32(math.NaN()))), 16000, 1, []int16{16384, -32768, 32767, 0}},
		{"extensible PCM", wavBytes(0xFFFF+1, 1, 16000, 16, 0, 4, le16(1, -1)), 16000, 1, []int16{1, -1}},
		{"no samples", wavBytes(1, 1, 8000, 16, 36, 0, nil), 8000, 1, []int16{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := ParseWAV(tt.in)
			if err != nil {
				t.Fatal(err)
			}
			if p.Rate != tt.rate || p.Channels != tt.channels || !slices.Equal(p.Samples, tt.want) {
				t.Errorf("got rate %d channels %d samples %v, want %d %d %v", p.Rate, p.Channels, p.Samples, tt.rate, tt.channels, tt.want)
			}
		})
	}
}

func TestParseWAVRejects(t *testing.T) {
	good := wavBytes(1, 1, 8000, 16, 0, 4, le16(1, 2))
	tests := []struct {
		name string
		in   []byte
		want string
	}{
		{"empty", nil, "not a WAV"},
		{"text", []byte("this is not audio at all"), "not a WAV"},
		{"RIFF not WAVE", append([]byte("RIFF\x00\x00\x00\x00AVI "), good[12:]...), "not a WAV"},
		{"no data", good[:36], "no data chunk"},
		{"data before fmt", []byte("RIFF\x00\x00\x00\x00WAVEdata\x02\x00\x00\x00\x01\x02"), "before fmt"},
		{"mu-law", wavBytes(7, 1, 8000, 8, 0, 2, []byte{1, 2}), "format tag 0x7"},
		{"no channels", wavBytes(1, 0, 8000, 16, 0, 2, le16(1)), "channel count 0"},
		{"9 channels", wavBytes(1, 9, 8000, 16, 0, 18, make([]byte, 18)), "channel count 9"},
		{"zero rate", wavBytes(1, 1, 0, 16, 0, 2, le16(1)), "sample rate 0"},
		{"12-bit", wavBytes(1, 1, 8000, 12, 0, 2, le16(1)), "12 bits"},
		{"float64", wavBytes(3, 1, 8000, 64, 0, 8, make([]byte, 8)), "float sample size 64"},
		{"short fmt", []byte("RIFF\x00\x00\x00\x00WAVEfmt \x04\x00\x00\x00\x01\x00\x01\x00data\x00\x00\x00\x00"), "too short"},
		{"chunk overruns", []byte("RIFF\x00\x00\x00\x00WAVELIST\xff\x00\x00\x00abc"), "overruns"},
		{"two fmt", append(good[:36], good[12:]...), "second fmt"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseWAV(tt.in)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("err = %v, want one mentioning %q", err, tt.want)
			}
		})
	}
}

func TestEncodeWAVGolden(t *testing.T) {
	got := EncodeWAV([]int16{0, 1, -1, 32767, -32768, 0x1234}, 8000)
	golden := filepath.Join("testdata", "encode.wav.golden")
	if *update {
		if err := os.WriteFile(golden, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("EncodeWAV:\n% x\nwant\n% x", got, want)
	}
}

func TestEncodeParseRoundTrip(t *testing.T) {
	in := tone(1000, 8000, 0.25, 30000)
	p, err := ParseWAV(EncodeWAV(in, 8000))
	if err != nil {
		t.Fatal(err)
	}
	if p.Rate != 8000 || p.Channels != 1 || p.Bits != 16 || !slices.Equal(p.Samples, in) {
		t.Errorf("round trip changed the audio: rate %d channels %d bits %d", p.Rate, p.Channels, p.Bits)
	}
}

func FuzzParseWAV(f *testing.F) {
	f.Add(wavBytes(1, 1, 22050, 16, 0x7ffff024, 0x7ffff000, le16(1, 2, 3)))
	f.Add(wavBytes(1, 2, 8000, 8, 0, 4, []byte{1, 2, 3, 4}))
	f.Add(wavBytes(3, 1, 16000, 32, 0, 4, []byte{0, 0, 0x80, 0x3f}))
	f.Add(wavBytes(0xFFFF+1, 1, 16000, 24, 0, 3, []byte{1, 2, 3}))
	f.Add([]byte("RIFF\x00\x00\x00\x00WAVELIST\x01\x00\x00\x00a\x00"))
	f.Fuzz(func(t *testing.T, b []byte) {
		p, err := ParseWAV(b)
		if err != nil {
			return
		}
		if p.Rate < 1 || p.Rate > maxRate || p.Channels < 1 || p.Channels > maxChannels {
			t.Fatalf("accepted rate %d channels %d", p.Rate, p.Channels)
		}
		if len(p.Samples)*p.Channels*p.Bits/8 > len(b) {
			t.Fatalf("%d samples from %d bytes", len(p.Samples), len(b))
		}
		// Whatever parses must survive the rest of the pipeline.
		out := Resample(p.Samples[:min(len(p.Samples), 4096)], p.Rate, Rate)
		if _, err := ParseWAV(EncodeWAV(out, Rate)); err != nil {
			t.Fatalf("re-encoded output does not parse: %v", err)
		}
	})
}
