package voice

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
)

// PCM is decoded audio, already mixed down to mono.
type PCM struct {
	Rate     int     // samples per second
	Channels int     // channel count of the source file (before mixing down)
	Bits     int     // bits per sample of the source file
	Samples  []int16 // mono samples; multi-channel input is averaged
}

// WAV format tags we decode.
const (
	formatPCM        = 0x0001
	formatFloat      = 0x0003
	formatExtensible = 0xFFFE
)

// Sanity limits for headers: anything outside them is garbage, not audio.
const (
	maxChannels = 8
	maxRate     = 384000
)

var errNotWAV = errors.New("not a WAV file")

// ParseWAV decodes a RIFF/WAVE file holding integer PCM (8, 16, 24 or
// 32 bits) or 32-bit float samples, with any number of channels up to 8 and
// any sample rate. It mixes the channels down to mono by averaging.
//
// Streaming writers cannot know the final length when they write the header:
// espeak-ng --stdout puts 0x7ffff000 into both size fields, others write 0 or
// 0xFFFFFFFF. A data chunk whose size is 0, or larger than what is left, is
// therefore read to the end of the input; a trailing partial frame is
// dropped.
func ParseWAV(b []byte) (*PCM, error) {
	w, err := parseWAV(b)
	if err != nil {
		return nil, err
	}
	return &PCM{Rate: w.rate, Channels: w.channels, Bits: w.bits, Samples: w.decode()}, nil
}

// wavData is a parsed header and the data chunk's bytes, not yet decoded.
type wavData struct {
	format, channels, rate, bits, frameLen int
	data                                   []byte
}

// frames is the number of whole frames (samples per channel) in the data.
func (w *wavData) frames() int { return len(w.data) / w.frameLen }

func (w *wavData) decode() []int16 {
	return decodeSamples(w.data, w.format, w.channels, w.bits, w.frameLen)
}

// monoPCM16 reports whether the data is what every engine we ship writes:
// mono 16-bit PCM, which the resampler can read as it is.
func (w *wavData) monoPCM16() bool {
	return w.format == formatPCM && w.channels == 1 && w.bits == 16
}

func parseWAV(b []byte) (*wavData, error) {
	if len(b) < 12 || string(b[0:4]) != "RIFF" || string(b[8:12]) != "WAVE" {
		return nil, errNotWAV
	}
	var (
		haveFmt bool
		w       wavData
	)
	pos := 12
	for {
		if len(b)-pos < 8 {
			return nil, fmt.Errorf("wav: no data chunk")
		}
		id := string(b[pos : pos+4])
		size := int64(binary.LittleEndian.Uint32(b[pos+4 : pos+8]))
		pos += 8
		rest := int64(len(b) - pos)
		if id == "data" {
			if !haveFmt {
				return nil, fmt.Errorf("wav: data chunk before fmt chunk")
			}
			if size == 0 || size > rest {
				size = rest
			}
			w.data = b[pos : pos+int(size)]
			return &w, nil
		}
		if size > rest {
			return nil, fmt.Errorf("wav: %q chunk of %d bytes overruns the file (%d left)", id, size, rest)
		}
		if id == "fmt " {
			if haveFmt {
				return nil, fmt.Errorf("wav: second fmt chunk")
			}
			var err error
			w.format, w.channels, w.rate, w.bits, w.frameLen, err = parseFmt(b[pos : pos+int(size)])
			if err != nil {
				return nil, err
			}
			haveFmt = true
		}
		// Chunks are word-aligned: an odd size is followed by a pad byte.
		pos += int(size + size&1)
		if pos > len(b) {
			pos = len(b)
		}
	}
}

func parseFmt(c []byte) (format, channels, rate, bits, frameLen int, err error) {
	if len(c) < 16 {
		return 0, 0, 0, 0, 0, fmt.Errorf("wav: fmt chunk too short (%d bytes)", len(c))
	}
	format = int(binary.LittleEndian.Uint16(c[0:2]))
	channels = int(binary.LittleEndian.Uint16(c[2:4]))
	rate = int(binary.LittleEndian.Uint32(c[4:8]))
	frameLen = int(binary.LittleEndian.Uint16(c[12:14]))
	bits = int(binary.LittleEndian.Uint16(c[14:16]))
	if format == formatExtensible {
		// WAVE_FORMAT_EXTENSIBLE: the real format tag is the first two
		// bytes of the sub-format GUID.
		if len(c) < 26 {
			return 0, 0, 0, 0, 0, fmt.Errorf("wav: extensible fmt chunk too short (%d bytes)", len(c))
		}
		format = int(binary.LittleEndian.Uint16(c[24:26]))
	}
	switch {
	case format != formatPCM && format != formatFloat:
		return 0, 0, 0, 0, 0, fmt.Errorf("wav: unsupported format tag %#x (need PCM or float)", format)
	case channels < 1 || channels > maxChannels:
		return 0, 0, 0, 0, 0, fmt.Errorf("wav: unsupported channel count %d", channels)
	case rate < 1 || rate > maxRate:
		return 0, 0, 0, 0, 0, fmt.Errorf("wav: unsupported sample rate %d", rate)
	case format == formatPCM && bits != 8 && bits != 16 && bits != 24 && bits != 32:
		return 0, 0, 0, 0, 0, fmt.Errorf("wav: unsupported PCM sample size %d bits", bits)
	case format == formatFloat && bits != 32:
		return 0, 0, 0, 0, 0, fmt.Errorf("wav: unsupported float sample size %d bits", bits)
	}
	// Trust the sample size over the block-align field, which some writers
	// get wrong; only the sample size decides how bytes are decoded.
	frameLen = channels * bits / 8
	return format, channels, rate, bits, frameLen, nil
}

// decodeSamples converts interleaved frames to mono int16, averaging channels.
func decodeSamples(data []byte, format, channels, bits, frameLen int) []int16 {
	n := len(data) / frameLen
	out := make([]int16, n)
	if format == formatPCM && bits == 16 && channels == 1 {
		// What every engine we ship writes: skip the general path.
		for i := range out {
			out[i] = int16(binary.LittleEndian.Uint16(data[2*i:]))
		}
		return out
	}
	width := bits / 8
	for i := range n {
		frame := data[i*frameLen : (i+1)*frameLen]
		var sum int64
		for ch := range channels {
			sum += int64(sampleAt(frame[ch*width:(ch+1)*width], format, bits))
		}
		out[i] = int16(sum / int64(channels))
	}
	return out
}

// sampleAt decodes one sample to the int16 range.
func sampleAt(s []byte, format, bits int) int32 {
	switch {
	case format == formatFloat:
		f := float64(math.Float32frombits(binary.LittleEndian.Uint32(s)))
		if math.IsNaN(f) {
			return 0
		}
		return int32(clamp16(f * 32768))
	case bits == 8:
		return (int32(s[0]) - 128) << 8 // 8-bit WAV is unsigned
	case bits == 16:
		return int32(int16(binary.LittleEndian.Uint16(s)))
	case bits == 24:
		return int32(uint32(s[0])<<8|uint32(s[1])<<16|uint32(s[2])<<24) >> 16
	default: // 32
		return int32(binary.LittleEndian.Uint32(s)) >> 16
	}
}

func clamp16(f float64) int16 {
	switch {
	case f >= math.MaxInt16:
		return math.MaxInt16
	case f <= math.MinInt16:
		return math.MinInt16
	}
	return int16(math.Round(f))
}

// EncodeWAV writes mono 16-bit PCM samples as a canonical 44-byte-header
// RIFF/WAVE file, the layout Asterisk's format_wav reads.
func EncodeWAV(samples []int16, rate int) []byte {
	dataLen := 2 * len(samples)
	b := make([]byte, 44+dataLen)
	copy(b[0:], "RIFF")
	binary.LittleEndian.PutUint32(b[4:], uint32(36+dataLen))
	copy(b[8:], "WAVEfmt ")
	binary.LittleEndian.PutUint32(b[16:], 16)
	binary.LittleEndian.PutUint16(b[20:], formatPCM)
	binary.LittleEndian.PutUint16(b[22:], 1) // mono
	binary.LittleEndian.PutUint32(b[24:], uint32(rate))
	binary.LittleEndian.PutUint32(b[28:], uint32(rate*2)) // byte rate
	binary.LittleEndian.PutUint16(b[32:], 2)              // block align
	binary.LittleEndian.PutUint16(b[34:], 16)             // bits per sample
	copy(b[36:], "data")
	binary.LittleEndian.PutUint32(b[40:], uint32(dataLen))
	for i, s := range samples {
		binary.LittleEndian.PutUint16(b[44+2*i:], uint16(s))
	}
	return b
}
