package fax

import (
	"bytes"
	"fmt"
	"strings"
	"testing"
)

// bitString renders a code as the 0/1 string T.4 prints.
func (c mhCode) String() string { return fmt.Sprintf("%0*b", c.n, c.bits) }

// TestCodesPrefixFree checks each colour's code set (terminating, make-up,
// extended make-up and EOL) is prefix-free and that no code has stray high
// bits, which catches most transcription slips in the tables.
func TestCodesPrefixFree(t *testing.T) {
	for _, colour := range []struct {
		name   string
		term   []mhCode
		makeup []mhCode
	}{{"white", whiteTerm[:], whiteMakeup[:]}, {"black", blackTerm[:], blackMakeup[:]}} {
		var all []mhCode
		all = append(append(append(append(all, colour.term...), colour.makeup...), extMakeup[:]...), eol)
		seen := map[string]bool{}
		for _, c := range all {
			if c.n == 0 || c.n > 13 || c.bits>>c.n != 0 {
				t.Errorf("%s: code %b has length %d", colour.name, c.bits, c.n)
			}
			seen[c.String()] = true
		}
		if len(seen) != len(all) {
			t.Errorf("%s: %d distinct codes among %d", colour.name, len(seen), len(all))
		}
		for a := range seen {
			for b := range seen {
				if a != b && strings.HasPrefix(b, a) {
					t.Errorf("%s: %s is a prefix of %s", colour.name, a, b)
				}
			}
		}
	}
}

// pack builds a packed row from runs, starting with white.
func pack(width int, runs ...int) []byte {
	row := make([]byte, (width+7)/8)
	x, black := 0, false
	for _, n := range runs {
		for i := 0; i < n && x < width; i, x = i+1, x+1 {
			if black {
				row[x>>3] |= 0x80 >> uint(x&7)
			}
		}
		black = !black
	}
	return row
}

func roundTrip(t testing.TB, pix []byte, width, height int) {
	t.Helper()
	stride := (width + 7) / 8
	enc := encodeMH(nil, pix, width, height, stride)
	got, err := ccittDecode(enc, width, height)
	if err != nil {
		t.Fatalf("%dx%d: decode: %v", width, height, err)
	}
	if !bytes.Equal(got, pix) {
		for y := 0; y < height; y++ {
			if !bytes.Equal(got[y*stride:(y+1)*stride], pix[y*stride:(y+1)*stride]) {
				t.Fatalf("%dx%d: row %d differs:\n got % x\nwant % x", width, height, y, got[y*stride:(y+1)*stride], pix[y*stride:(y+1)*stride])
			}
		}
	}
}

// TestEveryRunLength codes every white and black run length a fax row can
// hold (0–1728), so every terminating and make-up code is exercised, and
// decodes them with golang.org/x/image/ccitt.
func TestEveryRunLength(t *testing.T) {
	var rows [][]byte
	for n := 0; n <= Width; n++ {
		rows = append(rows,
			pack(Width, n, Width-n),    // white run n, then black
			pack(Width, 0, n, Width-n), // black run n first
		)
	}
	roundTrip(t, bytes.Join(rows, nil), Width, len(rows))
}

// TestLongRuns covers rows wider than the largest make-up code, which need
// the 2560 code repeated.
func TestLongRuns(t *testing.T) {
	for _, width := range []int{2560, 2561, 2623, 2624, 5120, 5185, 9000} {
		rows := [][]byte{
			pack(width, width),
			pack(width, 0, width),
			pack(width, 1, width-2, 1),
			pack(width, width-2560-65, 2560+65),
		}
		roundTrip(t, bytes.Join(rows, nil), width, len(rows))
	}
}

func TestPatterns(t *testing.T) {
	alt := bytes.Repeat([]byte{0xAA}, Width/8)
	alt2 := bytes.Repeat([]byte{0x55}, Width/8)
	black := bytes.Repeat([]byte{0xFF}, Width/8)
	white := make([]byte, Width/8)
	for _, width := range []int{1, 7, 8, 9, 1727} {
		row := pack(width, 0, 1, width) // odd widths: padding bits must not leak
		roundTrip(t, append(row, pack(width, width/2, 1)...), width, 2)
	}
	roundTrip(t, bytes.Join([][]byte{alt, alt2, black, white, black}, nil), Width, 5)
	roundTrip(t, nil, Width, 0)
}

// FuzzEncodeMH: any bitmap encodes to a stream x/image/ccitt decodes back
// to the same bitmap.
func FuzzEncodeMH(f *testing.F) {
	f.Add(uint16(1728), []byte{0xAA, 0x00, 0xFF, 0x0F})
	f.Add(uint16(13), []byte{0x80, 0x01})
	f.Add(uint16(3000), []byte{0xFF})
	f.Fuzz(func(t *testing.T, w uint16, data []byte) {
		width := int(w)%4000 + 1
		stride := (width + 7) / 8
		height := min(len(data)/stride, 64)
		pix := make([]byte, stride*height)
		copy(pix, data)
		if width%8 != 0 { // the decoder pads rows with 0 bits
			mask := byte(0xFF << uint(8-width%8))
			for y := 0; y < height; y++ {
				pix[y*stride+stride-1] &= mask
			}
		}
		roundTrip(t, pix, width, height)
	})
}

func BenchmarkEncodePage(b *testing.B) {
	doc, err := Render(Message{Text: longText(4000)}, Options{})
	if err != nil {
		b.Fatal(err)
	}
	p := doc.Pages[0]
	var buf []byte
	for b.Loop() {
		buf = encodeMH(buf[:0], p.Bits, p.Width, p.Height, p.Stride)
	}
	b.ReportMetric(float64(len(buf)), "bytes/page")
}
