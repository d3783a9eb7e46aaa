package fax

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// TIFF tag numbers and types used by the TIFF-F writer.
const (
	tagNewSubfileType  = 254
	tagImageWidth      = 256
	tagImageLength     = 257
	tagBitsPerSample   = 258
	tagCompression     = 259
	tagPhotometric     = 262
	tagFillOrder       = 266
	tagStripOffsets    = 273
	tagSamplesPerPixel = 277
	tagRowsPerStrip    = 278
	tagStripByteCounts = 279
	tagXResolution     = 282
	tagYResolution     = 283
	tagPlanarConfig    = 284
	tagT4Options       = 292
	tagResolutionUnit  = 296
	tagPageNumber      = 297
	tagSoftware        = 305

	typeASCII    = 2
	typeShort    = 3
	typeLong     = 4
	typeRational = 5
)

// software is written into the Software tag of every page.
const software = "smsrouter"

// ifdEntry is one directory entry. Values of up to four bytes live in the
// entry itself; longer ones (the rationals and the Software string) are
// written after the directory and the entry holds their offset.
type ifdEntry struct {
	tag, typ uint16
	count    uint32
	value    []byte
}

// WriteTIFF writes doc as one TIFF-F file (RFC 2306 profile S): little
// endian, one directory per page chained in order, each page one strip of
// CCITT Group 3 1-D data, MSB-first, min-is-white. See encodeMH for why
// the rows carry EOLs without fill bits (T4Options 0).
func WriteTIFF(w io.Writer, doc *Document) error {
	if doc == nil || len(doc.Pages) == 0 {
		return errors.New("fax: write TIFF: no pages")
	}
	if len(doc.Pages) > 0xFFFF {
		return fmt.Errorf("fax: write TIFF: %d pages is more than a TIFF page number holds", len(doc.Pages))
	}
	xdpi, ydpi := doc.Resolution.DPI()
	le := binary.LittleEndian
	out := []byte{'I', 'I', 42, 0, 0, 0, 0, 0} // offset of the first IFD patched below
	next := 4                                  // where the pointer to the next IFD goes
	for n, p := range doc.Pages {
		if p.Width != Width || p.Height < 1 || len(p.Bits) != p.Stride*p.Height {
			return fmt.Errorf("fax: write TIFF: page %d is %dx%d, want width %d", n+1, p.Width, p.Height, Width)
		}
		stripOff := len(out)
		out = encodeMH(out, p.Bits, p.Width, p.Height, p.Stride)
		stripLen := len(out) - stripOff
		if len(out)%2 == 1 { // directories start on a word boundary
			out = append(out, 0)
		}

		short := func(v ...uint16) []byte {
			b := make([]byte, 2*len(v))
			for i, x := range v {
				le.PutUint16(b[2*i:], x)
			}
			return b
		}
		long := func(v uint32) []byte { return le.AppendUint32(nil, v) }
		rational := func(num uint32) []byte { return le.AppendUint32(le.AppendUint32(nil, num), 1) }
		entries := []ifdEntry{ // sorted by tag, as TIFF requires
			{tagNewSubfileType, typeLong, 1, long(2)}, // a page of a multi-page document
			{tagImageWidth, typeLong, 1, long(uint32(p.Width))},
			{tagImageLength, typeLong, 1, long(uint32(p.Height))},
			{tagBitsPerSample, typeShort, 1, short(1)},
			{tagCompression, typeShort, 1, short(3)}, // CCITT T.4
			{tagPhotometric, typeShort, 1, short(0)}, // min-is-white
			{tagFillOrder, typeShort, 1, short(1)},   // MSB first
			{tagStripOffsets, typeLong, 1, long(uint32(stripOff))},
			{tagSamplesPerPixel, typeShort, 1, short(1)},
			{tagRowsPerStrip, typeLong, 1, long(uint32(p.Height))},
			{tagStripByteCounts, typeLong, 1, long(uint32(stripLen))},
			{tagXResolution, typeRational, 1, rational(uint32(xdpi))},
			{tagYResolution, typeRational, 1, rational(uint32(ydpi))},
			{tagPlanarConfig, typeShort, 1, short(1)},
			{tagT4Options, typeLong, 1, long(0)},        // 1-D, EOLs not byte-aligned
			{tagResolutionUnit, typeShort, 1, short(2)}, // inch
			{tagPageNumber, typeShort, 2, short(uint16(n), uint16(len(doc.Pages)))},
			{tagSoftware, typeASCII, uint32(len(software) + 1), append([]byte(software), 0)},
		}

		ifdOff := len(out)
		le.PutUint32(out[next:], uint32(ifdOff))
		extra := ifdOff + 2 + 12*len(entries) + 4 // values that do not fit in an entry
		var tail []byte
		out = le.AppendUint16(out, uint16(len(entries)))
		for _, e := range entries {
			out = le.AppendUint16(out, e.tag)
			out = le.AppendUint16(out, e.typ)
			out = le.AppendUint32(out, e.count)
			if len(e.value) <= 4 {
				var v [4]byte
				copy(v[:], e.value)
				out = append(out, v[:]...)
				continue
			}
			out = le.AppendUint32(out, uint32(extra+len(tail)))
			tail = append(tail, e.value...)
			if len(tail)%2 == 1 {
				tail = append(tail, 0)
			}
		}
		next = len(out)
		out = append(out, 0, 0, 0, 0) // next IFD; 0 ends the chain
		out = append(out, tail...)
		if uint64(len(out)) > 0xFFFFFFFF {
			return errors.New("fax: write TIFF: file larger than 4 GiB")
		}
	}
	if _, err := w.Write(out); err != nil {
		return fmt.Errorf("fax: write TIFF: %w", err)
	}
	return nil
}
