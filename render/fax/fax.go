// Package fax turns a text message into fax pages: it lays the text out in
// a monospace TrueType font on 1728-pixel-wide bilevel A4 pages at one of
// the three Group 3 resolutions, encodes the pages as a multi-page TIFF-F
// file (CCITT Group 3 1-D, the format Asterisk's SendFax reads) and can
// write a text PDF with the same layout as an archive copy.
//
// It is a pure transformation: it reads no spool, database or Asterisk
// state, and the only file it may open is the configured font.
//
//	r, err := fax.NewRenderer(fax.Options{Resolution: fax.Fine})
//	doc, err := r.Render(fax.Message{From: "+48123", Ref: "42", Sent: t, Text: text})
//	err = fax.WriteTIFF(f, doc)
package fax

import (
	"fmt"
	"image"
	"image/color"
	"strings"
	"time"
)

// Resolution is one of the Group 3 vertical resolutions; the horizontal
// resolution is always 204 dpi (1728 pixels across 215 mm).
type Resolution int

const (
	// Standard is 204×98 dpi.
	Standard Resolution = iota + 1
	// Fine is 204×196 dpi, the default.
	Fine
	// Superfine is 204×391 dpi.
	Superfine
)

// Width is the width of every fax page in pixels. spandsp refuses any
// other width (SPEC §6.1).
const Width = 1728

// xDPI is the horizontal resolution shared by all three resolutions.
const xDPI = 204

// ParseResolution accepts "standard", "fine" and "superfine" (any case)
// and the dpi forms "204x98", "204x196" and "204x391".
func ParseResolution(s string) (Resolution, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "standard", "normal", "204x98":
		return Standard, nil
	case "fine", "204x196":
		return Fine, nil
	case "superfine", "204x391":
		return Superfine, nil
	}
	return 0, fmt.Errorf("fax resolution %q: want standard, fine or superfine", s)
}

// String returns the name ParseResolution accepts.
func (r Resolution) String() string {
	switch r {
	case Standard:
		return "standard"
	case Fine:
		return "fine"
	case Superfine:
		return "superfine"
	}
	return fmt.Sprintf("Resolution(%d)", int(r))
}

// DPI returns the horizontal and vertical resolution written to the TIFF.
func (r Resolution) DPI() (x, y int) {
	switch r {
	case Standard:
		return xDPI, 98
	case Superfine:
		return xDPI, 391
	}
	return xDPI, 196
}

// a4Lines is the A4 page length in rows, the values fax software (and
// ghostscript's -g1728x2292) use: 297 mm at 3.85, 7.7 and 15.4 lines/mm,
// rounded the way the T.4 line densities are in practice.
func (r Resolution) a4Lines() int {
	switch r {
	case Standard:
		return 1146
	case Superfine:
		return 4584
	}
	return 2292
}

// valid reports whether r is one of the three named resolutions.
func (r Resolution) valid() bool { return r >= Standard && r <= Superfine }

// Margins are page margins in millimetres.
type Margins struct {
	Top, Right, Bottom, Left float64
}

// Options control the layout. The zero value gives the defaults noted on
// each field.
type Options struct {
	// Resolution defaults to Fine.
	Resolution Resolution
	// FontFile is a TrueType/OpenType file of a monospace font, for example
	// /usr/share/fonts/truetype/dejavu/DejaVuSansMono.ttf, which covers far
	// more of Unicode than the default Go Mono.
	FontFile string
	// FontSize is the text size in points; default 10 (about 92 columns).
	FontSize float64
	// Header is a text/template for the header printed at the top of every
	// page, above a rule, with the fields .From, .Ref, .Date, .Page (1, 2...)
	// and .Pages (the count). A template that uses neither .Page nor .Pages
	// gets "page N/M" right-aligned on its first line, as a fax machine's
	// transmit header has. Default DefaultHeader. A header that wraps is
	// cut (with "...") at half a page.
	Header string
	// NoHeader leaves out the header, the rule and the page numbers: every
	// page holds only text.
	NoHeader bool
	// DateFormat formats Message.Sent for .Date; default "2006-01-02 15:04".
	DateFormat string
	// Location is the time zone the date is shown in; default time.Local.
	Location *time.Location
	// Placeholder is drawn for every character the font has no glyph for.
	// It must be in the font. Default U+FFFD when the font has it, else '?'.
	Placeholder rune
	// Margins default to 10 mm on every side when all are zero.
	Margins Margins
}

// DefaultHeader is the header template used when Options.Header is empty;
// "page N/M" is added at its right.
const DefaultHeader = "Text message from {{.From}} sent {{.Date}} ({{.Ref}})"

// Message is what gets faxed.
type Message struct {
	From string    // sender, shown in the header
	Ref  string    // reference (message id), shown in the header
	Sent time.Time // shown in the header
	Text string    // the body; any bytes, invalid UTF-8 is shown as placeholders
}

// Document is a rendered fax: its pages and what a PDF copy needs to repeat
// the layout.
type Document struct {
	Pages      []*Page
	Resolution Resolution

	font     []byte  // TrueType data for the PDF copy
	fontSize float64 // points
}

// Page is one bilevel fax page. Pixels are packed eight to a byte, most
// significant bit leftmost, 1 = black, Stride bytes per row. It implements
// image.Image (black and white color.Gray) for inspection and tests.
type Page struct {
	Width, Height, Stride int
	Bits                  []byte

	lines []textLine // what was drawn, for the PDF copy
	rules []rule
}

// textLine is one line of text as drawn: its characters (placeholders
// already substituted) and pen position in pixels.
type textLine struct {
	text        string
	x, baseline int
}

// rule is a filled rectangle in pixels.
type rule struct{ x, y, w, h int }

func newPage(height int) *Page {
	stride := (Width + 7) / 8
	return &Page{Width: Width, Height: height, Stride: stride, Bits: make([]byte, stride*height)}
}

// Black reports whether the pixel at (x, y) is black; outside the page is
// white.
func (p *Page) Black(x, y int) bool {
	if x < 0 || y < 0 || x >= p.Width || y >= p.Height {
		return false
	}
	return p.Bits[y*p.Stride+x>>3]&(0x80>>uint(x&7)) != 0
}

// ColorModel implements image.Image.
func (p *Page) ColorModel() color.Model { return color.GrayModel }

// Bounds implements image.Image.
func (p *Page) Bounds() image.Rectangle { return image.Rect(0, 0, p.Width, p.Height) }

// At implements image.Image.
func (p *Page) At(x, y int) color.Color {
	if p.Black(x, y) {
		return color.Gray{Y: 0}
	}
	return color.Gray{Y: 0xFF}
}

// fillRect sets the pixels of r (clipped to the page) to black.
func (p *Page) fillRect(r rule) {
	x0, y0, x1, y1 := max(r.x, 0), max(r.y, 0), min(r.x+r.w, p.Width), min(r.y+r.h, p.Height)
	for y := y0; y < y1; y++ {
		row := p.Bits[y*p.Stride:]
		for x := x0; x < x1; x++ {
			row[x>>3] |= 0x80 >> uint(x&7)
		}
	}
}
