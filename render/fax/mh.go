package fax

import "math/bits"

// Modified Huffman (ITU-T T.4 one-dimensional coding), the line coding
// every Group 3 fax understands. The tables below are transcribed from
// T.4 (07/2003) tables 1/T.4, 2/T.4 and 3/T.4: terminating codes for run
// lengths 0–63, make-up codes for multiples of 64 up to 1728 (one table per
// colour) and the extended make-up codes 1792–2560 shared by both colours.

// mhCode is one code word: the low n bits of bits, sent most significant
// bit first.
type mhCode struct {
	bits uint16
	n    uint8
}

// eol is the end-of-line code, eleven 0 bits and a 1.
var eol = mhCode{0b000000000001, 12}

var whiteTerm = [64]mhCode{
	{0b00110101, 8}, {0b000111, 6}, {0b0111, 4}, {0b1000, 4}, // 0–3
	{0b1011, 4}, {0b1100, 4}, {0b1110, 4}, {0b1111, 4}, // 4–7
	{0b10011, 5}, {0b10100, 5}, {0b00111, 5}, {0b01000, 5}, // 8–11
	{0b001000, 6}, {0b000011, 6}, {0b110100, 6}, {0b110101, 6}, // 12–15
	{0b101010, 6}, {0b101011, 6}, {0b0100111, 7}, {0b0001100, 7}, // 16–19
	{0b0001000, 7}, {0b0010111, 7}, {0b0000011, 7}, {0b0000100, 7}, // 20–23
	{0b0101000, 7}, {0b0101011, 7}, {0b0010011, 7}, {0b0100100, 7}, // 24–27
	{0b0011000, 7}, {0b00000010, 8}, {0b00000011, 8}, {0b00011010, 8}, // 28–31
	{0b00011011, 8}, {0b00010010, 8}, {0b00010011, 8}, {0b00010100, 8}, // 32–35
	{0b00010101, 8}, {0b00010110, 8}, {0b00010111, 8}, {0b00101000, 8}, // 36–39
	{0b00101001, 8}, {0b00101010, 8}, {0b00101011, 8}, {0b00101100, 8}, // 40–43
	{0b00101101, 8}, {0b00000100, 8}, {0b00000101, 8}, {0b00001010, 8}, // 44–47
	{0b00001011, 8}, {0b01010010, 8}, {0b01010011, 8}, {0b01010100, 8}, // 48–51
	{0b01010101, 8}, {0b00100100, 8}, {0b00100101, 8}, {0b01011000, 8}, // 52–55
	{0b01011001, 8}, {0b01011010, 8}, {0b01011011, 8}, {0b01001010, 8}, // 56–59
	{0b01001011, 8}, {0b00110010, 8}, {0b00110011, 8}, {0b00110100, 8}, // 60–63
}

var blackTerm = [64]mhCode{
	{0b0000110111, 10}, {0b010, 3}, {0b11, 2}, {0b10, 2}, // 0–3
	{0b011, 3}, {0b0011, 4}, {0b0010, 4}, {0b00011, 5}, // 4–7
	{0b000101, 6}, {0b000100, 6}, {0b0000100, 7}, {0b0000101, 7}, // 8–11
	{0b0000111, 7}, {0b00000100, 8}, {0b00000111, 8}, {0b000011000, 9}, // 12–15
	{0b0000010111, 10}, {0b0000011000, 10}, {0b0000001000, 10}, {0b00001100111, 11}, // 16–19
	{0b00001101000, 11}, {0b00001101100, 11}, {0b00000110111, 11}, {0b00000101000, 11}, // 20–23
	{0b00000010111, 11}, {0b00000011000, 11}, {0b000011001010, 12}, {0b000011001011, 12}, // 24–27
	{0b000011001100, 12}, {0b000011001101, 12}, {0b000001101000, 12}, {0b000001101001, 12}, // 28–31
	{0b000001101010, 12}, {0b000001101011, 12}, {0b000011010010, 12}, {0b000011010011, 12}, // 32–35
	{0b000011010100, 12}, {0b000011010101, 12}, {0b000011010110, 12}, {0b000011010111, 12}, // 36–39
	{0b000001101100, 12}, {0b000001101101, 12}, {0b000011011010, 12}, {0b000011011011, 12}, // 40–43
	{0b000001010100, 12}, {0b000001010101, 12}, {0b000001010110, 12}, {0b000001010111, 12}, // 44–47
	{0b000001100100, 12}, {0b000001100101, 12}, {0b000001010010, 12}, {0b000001010011, 12}, // 48–51
	{0b000000100100, 12}, {0b000000110111, 12}, {0b000000111000, 12}, {0b000000100111, 12}, // 52–55
	{0b000000101000, 12}, {0b000001011000, 12}, {0b000001011001, 12}, {0b000000101011, 12}, // 56–59
	{0b000000101100, 12}, {0b000001011010, 12}, {0b000001100110, 12}, {0b000001100111, 12}, // 60–63
}

// whiteMakeup[i] and blackMakeup[i] code a run of (i+1)*64 pixels.
var whiteMakeup = [27]mhCode{
	{0b11011, 5}, {0b10010, 5}, {0b010111, 6}, {0b0110111, 7}, // 64–256
	{0b00110110, 8}, {0b00110111, 8}, {0b01100100, 8}, {0b01100101, 8}, // 320–512
	{0b01101000, 8}, {0b01100111, 8}, {0b011001100, 9}, {0b011001101, 9}, // 576–768
	{0b011010010, 9}, {0b011010011, 9}, {0b011010100, 9}, {0b011010101, 9}, // 832–1024
	{0b011010110, 9}, {0b011010111, 9}, {0b011011000, 9}, {0b011011001, 9}, // 1088–1280
	{0b011011010, 9}, {0b011011011, 9}, {0b010011000, 9}, {0b010011001, 9}, // 1344–1536
	{0b010011010, 9}, {0b011000, 6}, {0b010011011, 9}, // 1600–1728
}

var blackMakeup = [27]mhCode{
	{0b0000001111, 10}, {0b000011001000, 12}, {0b000011001001, 12}, {0b000001011011, 12}, // 64–256
	{0b000000110011, 12}, {0b000000110100, 12}, {0b000000110101, 12}, {0b0000001101100, 13}, // 320–512
	{0b0000001101101, 13}, {0b0000001001010, 13}, {0b0000001001011, 13}, {0b0000001001100, 13}, // 576–768
	{0b0000001001101, 13}, {0b0000001110010, 13}, {0b0000001110011, 13}, {0b0000001110100, 13}, // 832–1024
	{0b0000001110101, 13}, {0b0000001110110, 13}, {0b0000001110111, 13}, {0b0000001010010, 13}, // 1088–1280
	{0b0000001010011, 13}, {0b0000001010100, 13}, {0b0000001010101, 13}, {0b0000001011010, 13}, // 1344–1536
	{0b0000001011011, 13}, {0b0000001100100, 13}, {0b0000001100101, 13}, // 1600–1728
}

// extMakeup[i] codes a run of 1792+i*64 pixels of either colour.
var extMakeup = [13]mhCode{
	{0b00000001000, 11}, {0b00000001100, 11}, {0b00000001101, 11}, // 1792–1920
	{0b000000010010, 12}, {0b000000010011, 12}, {0b000000010100, 12}, {0b000000010101, 12}, // 1984–2176
	{0b000000010110, 12}, {0b000000010111, 12}, {0b000000011100, 12}, {0b000000011101, 12}, // 2240–2432
	{0b000000011110, 12}, {0b000000011111, 12}, // 2496–2560
}

// bitWriter packs code words most significant bit first (TIFF FillOrder 1).
type bitWriter struct {
	buf  []byte
	acc  uint64 // pending bits, right-aligned
	nacc uint   // number of pending bits (< 8 between calls)
}

func (w *bitWriter) put(c mhCode) {
	w.acc = w.acc<<c.n | uint64(c.bits)
	w.nacc += uint(c.n)
	for w.nacc >= 8 {
		w.nacc -= 8
		w.buf = append(w.buf, byte(w.acc>>w.nacc))
	}
}

// flush pads the last byte with 0 bits.
func (w *bitWriter) flush() {
	if w.nacc > 0 {
		w.buf = append(w.buf, byte(w.acc<<(8-w.nacc)))
		w.nacc = 0
	}
	w.acc = 0
}

// putRun codes one run: make-up codes for the multiples of 64 (repeating
// the 2560 code for runs longer than that, as T.4 allows), then the
// terminating code for the remainder, which is always present.
func (w *bitWriter) putRun(n int, black bool) {
	for n > 2560 {
		w.put(extMakeup[len(extMakeup)-1])
		n -= 2560
	}
	if n >= 64 {
		m := n / 64
		switch {
		case m >= 28:
			w.put(extMakeup[m-28])
		case black:
			w.put(blackMakeup[m-1])
		default:
			w.put(whiteMakeup[m-1])
		}
		n -= m * 64
	}
	if black {
		w.put(blackTerm[n])
	} else {
		w.put(whiteTerm[n])
	}
}

// encodeMH codes a packed bilevel bitmap (1 = black, most significant bit
// leftmost, stride bytes per row) as a Group 3 1-D stream: an EOL before
// every row and RTC (six EOLs) after the last one, with no fill bits.
//
// Why EOLs without fill bits (TIFF T4Options 0): libtiff, and therefore
// spandsp, reads MH with or without EOLs and with or without fill.
// golang.org/x/image/ccitt (used by github.com/hhrutter/tiff) needs the
// leading EOL and an EOL after each row, and rejects zero bits in front of
// an EOL, so byte-aligned EOLs (T4Options bit 2) would make files that Go
// cannot read back, and EOL-less rows would fail there too. This layout is
// the one every decoder agrees on.
func encodeMH(dst []byte, pix []byte, width, height, stride int) []byte {
	w := bitWriter{buf: dst}
	for y := 0; y < height; y++ {
		w.put(eol)
		encodeRow(&w, pix[y*stride:y*stride+stride], width)
	}
	for i := 0; i < 6; i++ {
		w.put(eol)
	}
	w.flush()
	return w.buf
}

// encodeRow codes one row. A row always starts with a white run, possibly
// of length 0 when the first pixel is black.
func encodeRow(w *bitWriter, row []byte, width int) {
	x := 0
	black := false
	for x < width {
		end := nextChange(row, x, width, black)
		w.putRun(end-x, black)
		x = end
		black = !black
	}
}

// nextChange returns the first x' >= x whose pixel is not of colour black
// (or width if there is none). It skips whole bytes of one colour, which is
// what keeps encoding cheap on mostly-white fax pages.
func nextChange(row []byte, x, width int, black bool) int {
	var want byte // byte value that continues the run
	if black {
		want = 0xFF
	}
	for x < width {
		b := row[x>>3] ^ want // 1 bits mark pixels that end the run
		if x&7 == 0 && b == 0 {
			x += 8
			continue
		}
		b <<= uint(x & 7)
		if b != 0 {
			x += bits.LeadingZeros8(b)
			break
		}
		x = (x | 7) + 1
	}
	if x > width {
		x = width
	}
	return x
}
