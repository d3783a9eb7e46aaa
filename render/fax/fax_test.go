package fax

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"image"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hhrutter/tiff"
	"golang.org/x/image/ccitt"
)

var update = flag.Bool("update", false, "rewrite golden files")

const dejaVuMono = "/usr/share/fonts/truetype/dejavu/DejaVuSansMono.ttf"

// fonts returns the font files to test with: Go Mono always, DejaVu Sans
// Mono when installed (fonts-dejavu-core).
func fonts(t testing.TB) []string {
	ff := []string{""}
	if _, err := os.Stat(dejaVuMono); err == nil {
		ff = append(ff, dejaVuMono)
	} else {
		t.Logf("%s not installed (fonts-dejavu-core); testing Go Mono only", dejaVuMono)
	}
	return ff
}

var sent = time.Date(2026, 11, 21, 6, 30, 0, 0, time.UTC)

const polish = "Zażółć gęślą jaźń. ZAŻÓŁĆ GĘŚLĄ JAŹŃ."
const greek = "Ξεσκεπάζω την ψυχοφθόρα βδελυγμία."
const emoji = "\U0001F600"

func longText(n int) string {
	var b strings.Builder
	words := []string{"Lorem", "ipsum", "dolor", "sit", "amet,", polish, greek, "consectetur", "adipiscing", "elit.\n", emoji, "tab\there"}
	for i := 0; b.Len() < n; i++ {
		b.WriteString(words[i%len(words)])
		b.WriteByte(' ')
	}
	return b.String()[:n]
}

func TestParseResolution(t *testing.T) {
	tests := []struct {
		in   string
		want Resolution
		ok   bool
		ydpi int
	}{
		{"standard", Standard, true, 98},
		{"Fine", Fine, true, 196},
		{" superfine ", Superfine, true, 391},
		{"204x98", Standard, true, 98},
		{"204x391", Superfine, true, 391},
		{"", 0, false, 0},
		{"300x300", 0, false, 0},
	}
	for _, tt := range tests {
		got, err := ParseResolution(tt.in)
		if (err == nil) != tt.ok || got != tt.want {
			t.Errorf("ParseResolution(%q) = %v, %v; want %v ok=%v", tt.in, got, err, tt.want, tt.ok)
			continue
		}
		if tt.ok {
			if x, y := got.DPI(); x != 204 || y != tt.ydpi {
				t.Errorf("%v.DPI() = %d, %d; want 204, %d", got, x, y, tt.ydpi)
			}
			if back, err := ParseResolution(got.String()); err != nil || back != got {
				t.Errorf("ParseResolution(%q) = %v, %v", got.String(), back, err)
			}
		}
	}
}

func TestOptionErrors(t *testing.T) {
	tests := []struct {
		name string
		opt  Options
		want string
	}{
		{"resolution", Options{Resolution: 7}, "invalid resolution"},
		{"font size", Options{FontSize: 200}, "font size"},
		{"font file", Options{FontFile: "/nonexistent/font.ttf"}, "no such file"},
		{"not a font", Options{FontFile: "fax_test.go"}, "font fax_test.go"},
		{"template", Options{Header: "{{.From"}, "header template"},
		{"unknown field", Options{Header: "{{.From}} {{.Nope}}"}, "header template"},
		{"placeholder", Options{Placeholder: '\U0001F600'}, "placeholder"},
		{"margins", Options{Margins: Margins{Left: 120, Right: 120}}, "no room"},
		{"negative margin", Options{Margins: Margins{Top: -1}}, "negative margin"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := NewRenderer(tt.opt)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("NewRenderer error = %v; want it to mention %q", err, tt.want)
			}
		})
	}
	if _, err := Render(Message{}, Options{Header: "{{.Nope}}"}); err == nil {
		t.Error("header with unknown field rendered without error")
	}
}

func TestWrap(t *testing.T) {
	tests := []struct {
		in   string
		cols int
		want []string
	}{
		{"", 10, []string{""}},
		{"hello world", 20, []string{"hello world"}},
		{"hello world", 5, []string{"hello", "world"}},
		{"hello world", 8, []string{"hello", "world"}},
		{"aaa bbb ccc ddd", 7, []string{"aaa bbb", "ccc ddd"}},
		{"abcdefghijkl", 5, []string{"abcde", "fghij", "kl"}},
		{"ab cdefghijkl", 5, []string{"ab", "cdefg", "hijkl"}},
		{"    indented text here", 12, []string{"    indented", "text here"}},
		{"        longword", 10, []string{"        lo", "ngword"}},
		{"trailing   ", 20, []string{"trailing"}},
		{"a     b", 3, []string{"a", "b"}},
	}
	for _, tt := range tests {
		var par []cell
		for _, c := range tt.in {
			par = append(par, cell{r: c})
		}
		var got []string
		for _, l := range wrap(par, tt.cols) {
			var b strings.Builder
			for _, c := range l {
				b.WriteRune(c.r)
			}
			if len(l) > tt.cols {
				t.Errorf("wrap(%q, %d): line %q longer than %d", tt.in, tt.cols, b.String(), tt.cols)
			}
			got = append(got, b.String())
		}
		if fmt.Sprint(got) != fmt.Sprint(tt.want) {
			t.Errorf("wrap(%q, %d) = %q; want %q", tt.in, tt.cols, got, tt.want)
		}
	}
}

// lineTexts returns the text lines of every page of doc.
func lineTexts(doc *Document) []string {
	var out []string
	for _, p := range doc.Pages {
		for _, l := range p.lines {
			out = append(out, l.text)
		}
	}
	return out
}

func TestTextCleanup(t *testing.T) {
	r, err := NewRenderer(Options{NoHeader: true})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, in string
		want     []string
	}{
		{"sender line breaks kept", "one\ntwo\r\nthree\rfour", []string{"one", "two", "three", "four"}},
		{"empty lines kept", "a\n\nb", []string{"a", "b"}}, // the empty line draws nothing but takes its height
		{"tabs", "a\tb\n\tc", []string{"a       b", "        c"}},
		{"controls not drawn", "a\x00b\x07c\x1bd\u0085e", []string{"abcd", "e"}},
		{"format characters not drawn", "a\u200bb\ufeffc\u200dd", []string{"abcd"}},
		{"invalid UTF-8", "a\xffb\xc3", []string{"a\ufffdb\ufffd"}},
		{"emoji with variation selector", "x\u2764\ufe0fy" + emoji, []string{"x\ufffdy\ufffd"}},
		{"Polish and Greek kept", polish + " " + greek, []string{polish + " " + greek}},
		{"nbsp is a space", "a\u00a0b", []string{"a b"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			doc, err := r.Render(Message{Text: tt.in})
			if err != nil {
				t.Fatal(err)
			}
			if got := lineTexts(doc); fmt.Sprint(got) != fmt.Sprint(tt.want) {
				t.Errorf("lines = %q; want %q", got, tt.want)
			}
		})
	}

	// An empty line between paragraphs takes a line's height.
	one, _ := r.Render(Message{Text: "a\nb"})
	two, _ := r.Render(Message{Text: "a\n\nb"})
	if d := two.Pages[0].Height - one.Pages[0].Height; d != r.lineH {
		t.Errorf("an empty line added %d rows; want the line height %d", d, r.lineH)
	}
}

// TestPlaceholderVisible checks that characters the font lacks are drawn
// as the placeholder, in their own column, and not dropped.
func TestPlaceholderVisible(t *testing.T) {
	for _, ff := range fonts(t) {
		r, err := NewRenderer(Options{FontFile: ff, NoHeader: true})
		if err != nil {
			t.Fatal(err)
		}
		withEmoji, err := r.Render(Message{Text: "a" + emoji + "b"})
		if err != nil {
			t.Fatal(err)
		}
		withPlaceholder, _ := r.Render(Message{Text: "a" + string(r.opt.Placeholder) + "b"})
		if !bytes.Equal(withEmoji.Pages[0].Bits, withPlaceholder.Pages[0].Bits) {
			t.Errorf("%s: emoji not drawn as the placeholder %U", fontName(ff), r.opt.Placeholder)
		}
		// Ink in the emoji's column (the second one), on its line.
		p := withEmoji.Pages[0]
		ink := 0
		for y := r.top; y < r.top+r.lineH; y++ {
			for x := r.left + r.cellW; x < r.left+2*r.cellW; x++ {
				if p.Black(x, y) {
					ink++
				}
			}
		}
		if ink < r.cellW*r.lineH/20 {
			t.Errorf("%s: only %d black pixels where the emoji is; the placeholder is not visible", fontName(ff), ink)
		}
		// The b after it stays in the third column: nothing was dropped.
		dropped, _ := r.Render(Message{Text: "ab"})
		if bytes.Equal(dropped.Pages[0].Bits, p.Bits) {
			t.Errorf("%s: emoji was dropped", fontName(ff))
		}
	}
}

// TestPhysicalSize checks that text has the same size on paper at every
// resolution: same columns, and line heights in proportion to the
// vertical dpi.
func TestPhysicalSize(t *testing.T) {
	var fine *Renderer
	for _, res := range []Resolution{Fine, Standard, Superfine} {
		r, err := NewRenderer(Options{Resolution: res})
		if err != nil {
			t.Fatal(err)
		}
		if res == Fine {
			fine = r
			continue
		}
		_, ydpi := res.DPI()
		if r.cols != fine.cols || r.cellW != fine.cellW {
			t.Errorf("%v: %d columns of %d px; fine has %d of %d", res, r.cols, r.cellW, fine.cols, fine.cellW)
		}
		wantH := float64(fine.lineH) * float64(ydpi) / 196
		if d := float64(r.lineH) - wantH; d < -1.5 || d > 1.5 {
			t.Errorf("%v: line height %d px; want about %.1f", res, r.lineH, wantH)
		}
		// Ink height of "H" scales the same way.
		gf, _ := fine.glyph('H')
		g, _ := r.glyph('H')
		if want := float64(gf.h) * float64(ydpi) / 196; float64(g.h) < want-1.5 || float64(g.h) > want+1.5 {
			t.Errorf("%v: H is %d px high; want about %.1f", res, g.h, want)
		}
	}
}

// ccittDecode decodes one Group 3 1-D strip with golang.org/x/image/ccitt
// into packed rows (1 = black).
func ccittDecode(strip []byte, width, height int) ([]byte, error) {
	stride := (width + 7) / 8
	out := make([]byte, stride*height)
	rd := ccitt.NewReader(bytes.NewReader(strip), ccitt.MSB, ccitt.Group3, width, height, &ccitt.Options{Invert: true})
	if _, err := io.ReadFull(rd, out); err != nil {
		return nil, err
	}
	// The stream must end exactly after the RTC.
	if n, err := rd.Read(make([]byte, 1)); n != 0 || err != io.EOF {
		return nil, fmt.Errorf("data after the last row: n=%d err=%v", n, err)
	}
	return out, nil
}

// checkTIFF decodes file with the tests' TIFF parser, x/image/ccitt and
// hhrutter/tiff and compares every page with doc, pixel for pixel, and
// checks the tags a TIFF-F page must have.
func checkTIFF(t *testing.T, file []byte, doc *Document) {
	t.Helper()
	ifds := parseTIFF(t, file)
	if len(ifds) != len(doc.Pages) {
		t.Fatalf("TIFF has %d pages; document has %d", len(ifds), len(doc.Pages))
	}
	xdpi, ydpi := doc.Resolution.DPI()
	for n, ifd := range ifds {
		p := doc.Pages[n]
		want := map[uint16][]uint32{
			tagNewSubfileType: {2}, tagImageWidth: {1728}, tagImageLength: {uint32(p.Height)},
			tagBitsPerSample: {1}, tagCompression: {3}, tagPhotometric: {0}, tagFillOrder: {1},
			tagSamplesPerPixel: {1}, tagRowsPerStrip: {uint32(p.Height)},
			tagXResolution: {uint32(xdpi), 1}, tagYResolution: {uint32(ydpi), 1}, tagResolutionUnit: {2},
			tagT4Options: {0}, tagPageNumber: {uint32(n), uint32(len(ifds))}, tagPlanarConfig: {1},
		}
		for tag, v := range want {
			if fmt.Sprint(ifd.tags[tag]) != fmt.Sprint(v) {
				t.Errorf("page %d tag %d = %v; want %v", n+1, tag, ifd.tags[tag], v)
			}
		}
		if ifd.ascii[tagSoftware] != "smsrouter" {
			t.Errorf("page %d Software = %q", n+1, ifd.ascii[tagSoftware])
		}

		got, err := ccittDecode(ifd.strip(t, file), Width, p.Height)
		if err != nil {
			t.Fatalf("page %d: x/image/ccitt: %v", n+1, err)
		}
		if !bytes.Equal(got, p.Bits) {
			t.Errorf("page %d: x/image/ccitt decodes different pixels", n+1)
		}

		img, err := tiff.DecodeAt(bytes.NewReader(file), int64(ifd.offset))
		if err != nil {
			t.Fatalf("page %d: hhrutter/tiff: %v", n+1, err)
		}
		if img.Bounds() != image.Rect(0, 0, Width, p.Height) {
			t.Fatalf("page %d: hhrutter/tiff bounds %v; want %dx%d", n+1, img.Bounds(), Width, p.Height)
		}
		gray, ok := img.(*image.Gray)
		if !ok {
			t.Fatalf("page %d: hhrutter/tiff returned %T; want *image.Gray", n+1, img)
		}
		diff := 0
		for y := 0; y < p.Height; y++ {
			row := gray.Pix[y*gray.Stride : y*gray.Stride+Width]
			for x, v := range row {
				if (v < 0x80) != p.Black(x, y) {
					diff++
				}
			}
		}
		if diff != 0 {
			t.Errorf("page %d: hhrutter/tiff decodes %d pixels differently", n+1, diff)
		}
	}
}

// TestRenderTIFF renders texts at all resolutions and fonts and decodes
// the TIFFs back.
func TestRenderTIFF(t *testing.T) {
	texts := []struct {
		name      string
		text      string
		minPages  int
		lastShort bool // the last page is cut shorter than A4
	}{
		{"short", "Hello, fax.", 1, true},
		{"empty", "", 1, true},
		{"polish greek emoji", polish + "\n" + greek + "\n" + emoji + " " + emoji + "\n", 1, true},
		{"20000 chars", longText(20000), 3, false},
	}
	for _, ff := range fonts(t) {
		for _, res := range []Resolution{Standard, Fine, Superfine} {
			r, err := NewRenderer(Options{Resolution: res, FontFile: ff, Location: time.UTC})
			if err != nil {
				t.Fatal(err)
			}
			for _, tt := range texts {
				t.Run(fmt.Sprintf("%s/%v/%s", filepath.Base(fontName(ff)), res, tt.name), func(t *testing.T) {
					doc, err := r.Render(Message{From: "+48601234567", Ref: "r1", Sent: sent, Text: tt.text})
					if err != nil {
						t.Fatal(err)
					}
					if len(doc.Pages) < tt.minPages {
						t.Errorf("%d pages; want at least %d", len(doc.Pages), tt.minPages)
					}
					for i, p := range doc.Pages {
						last := i == len(doc.Pages)-1
						if p.Width != Width || p.Height > res.a4Lines() || (!last && p.Height != res.a4Lines()) {
							t.Errorf("page %d is %dx%d", i+1, p.Width, p.Height)
						}
						if last && tt.lastShort && p.Height >= res.a4Lines()/2 {
							t.Errorf("last page is %d rows; want it cut to its content", p.Height)
						}
						if last && lastInkRow(p) > p.Height-r.bottom {
							t.Errorf("last page: ink at row %d runs into the %d-row bottom margin of %d", lastInkRow(p), r.bottom, p.Height)
						}
					}
					var buf bytes.Buffer
					if err := WriteTIFF(&buf, doc); err != nil {
						t.Fatal(err)
					}
					checkTIFF(t, buf.Bytes(), doc)
				})
			}
		}
	}
}

func lastInkRow(p *Page) int {
	for y := p.Height - 1; y >= 0; y-- {
		for _, b := range p.Bits[y*p.Stride : (y+1)*p.Stride] {
			if b != 0 {
				return y
			}
		}
	}
	return -1
}

// TestLayoutHeader checks the header text, that it is followed by a rule
// across the text width, and that nothing else lands on the rule's rows.
func TestLayoutHeader(t *testing.T) {
	r, err := NewRenderer(Options{Location: time.UTC, Header: "Fax from {{.From}} at {{.Date}} [{{.Ref}}]", DateFormat: "02.01.2006 15:04"})
	if err != nil {
		t.Fatal(err)
	}
	doc, err := r.Render(Message{From: "+48 601", Ref: "x7", Sent: sent, Text: "body"})
	if err != nil {
		t.Fatal(err)
	}
	got := lineTexts(doc)
	if want := []string{"Fax from +48 601 at 21.11.2026 06:30 [x7]", "page 1/1", "body"}; fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("lines %q; want %q", got, want)
	}
	p := doc.Pages[0]
	if len(p.rules) != 1 {
		t.Fatalf("%d rules; want 1", len(p.rules))
	}
	ru := p.rules[0]
	if ru.y <= p.lines[0].baseline || ru.y+ru.h >= p.lines[2].baseline-r.ascent {
		t.Errorf("rule rows %d–%d not between header baseline %d and body top %d", ru.y, ru.y+ru.h, p.lines[0].baseline, p.lines[2].baseline-r.ascent)
	}
	for y := ru.y; y < ru.y+ru.h; y++ {
		for x := 0; x < Width; x++ {
			inRule := x >= ru.x && x < ru.x+ru.w
			if p.Black(x, y) != inRule {
				t.Fatalf("pixel (%d,%d) black=%v; rule covers x %d–%d", x, y, p.Black(x, y), ru.x, ru.x+ru.w)
			}
		}
	}
	// The rule is the only ink in the margins' band of its rows, and no
	// text ink crosses the left margin.
	for y := 0; y < p.Height; y++ {
		for x := 0; x < r.left-r.cellW/2; x++ {
			if p.Black(x, y) {
				t.Fatalf("ink in the left margin at (%d,%d)", x, y)
			}
		}
	}
	noHeader, _ := Render(Message{Text: "body"}, Options{NoHeader: true})
	if len(noHeader.Pages[0].rules) != 0 || len(lineTexts(noHeader)) != 1 {
		t.Errorf("NoHeader still draws a header or rule")
	}
}

// TestLibtiff runs libtiff's own tools over a multi-page file: tiffinfo -D
// decodes every strip and tiffcp re-encodes it; either complaining on
// stderr fails the test.
func TestLibtiff(t *testing.T) {
	for _, tool := range []string{"tiffinfo", "tiffcp"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("%s not found: install libtiff-tools (apt-get install libtiff-tools)", tool)
		}
	}
	dir := t.TempDir()
	for _, res := range []Resolution{Standard, Fine, Superfine} {
		doc, err := Render(Message{From: "+48", Ref: "1", Sent: sent, Text: longText(9000)}, Options{Resolution: res})
		if err != nil {
			t.Fatal(err)
		}
		if len(doc.Pages) < 2 {
			t.Fatalf("%v: want a multi-page document, got %d pages", res, len(doc.Pages))
		}
		in := filepath.Join(dir, res.String()+".tiff")
		var buf bytes.Buffer
		if err := WriteTIFF(&buf, doc); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(in, buf.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
		runQuiet := func(name string, args ...string) string {
			var stdout, stderr bytes.Buffer
			cmd := exec.Command(name, args...)
			cmd.Stdout, cmd.Stderr = &stdout, &stderr
			if err := cmd.Run(); err != nil || stderr.Len() > 0 {
				t.Errorf("%s %v: %v\n%s", name, args, err, stderr.String())
			}
			return stdout.String()
		}
		info := runQuiet("tiffinfo", "-D", in)
		if got := strings.Count(info, "TIFF Directory at offset"); got != len(doc.Pages) {
			t.Errorf("%v: tiffinfo lists %d directories; want %d", res, got, len(doc.Pages))
		}
		_, ydpi := res.DPI()
		if !strings.Contains(info, fmt.Sprintf("Resolution: 204, %d pixels/inch", ydpi)) {
			t.Errorf("%v: tiffinfo shows no 204x%d resolution:\n%s", res, ydpi, info)
		}
		// Decompressing through libtiff must give back exactly our pixels:
		// proof that libtiff decoded the rows as we meant them.
		out := filepath.Join(dir, res.String()+"-raw.tiff")
		runQuiet("tiffcp", "-c", "none", in, out)
		raw, err := os.ReadFile(out)
		if err != nil {
			t.Fatal(err)
		}
		ifds := parseTIFF(t, raw)
		if len(ifds) != len(doc.Pages) {
			t.Fatalf("%v: tiffcp wrote %d pages; want %d", res, len(ifds), len(doc.Pages))
		}
		for n, ifd := range ifds {
			if c := ifd.tags[tagCompression]; fmt.Sprint(c) != "[1]" || fmt.Sprint(ifd.tags[tagPhotometric]) != "[0]" {
				t.Fatalf("tiffcp output compression %v photometric %v", c, ifd.tags[tagPhotometric])
			}
			if !bytes.Equal(ifd.strips(t, raw), doc.Pages[n].Bits) {
				t.Errorf("%v page %d: libtiff decodes different pixels", res, n+1)
			}
		}
	}
}

// TestTagsGolden pins the complete directory structure of a two-page file
// built from fixed bitmaps (independent of font rasterising).
func TestTagsGolden(t *testing.T) {
	p1, p2 := newPage(2292), newPage(100)
	p1.fillRect(rule{x: 100, y: 100, w: 1528, h: 3})
	p2.fillRect(rule{x: 0, y: 0, w: Width, h: 100})
	var buf bytes.Buffer
	if err := WriteTIFF(&buf, &Document{Pages: []*Page{p1, p2}, Resolution: Fine}); err != nil {
		t.Fatal(err)
	}
	got := dump(parseTIFF(t, buf.Bytes()))
	golden := filepath.Join("testdata", "tags.golden")
	if *update {
		if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatalf("%v (run go test -update once to create it)", err)
	}
	if got != string(want) {
		t.Errorf("tags differ from %s:\n--- got\n%s--- want\n%s", golden, got, want)
	}
}

func TestWriteTIFFErrors(t *testing.T) {
	tests := []struct {
		name string
		doc  *Document
	}{
		{"nil", nil},
		{"no pages", &Document{Resolution: Fine}},
		{"wrong width", &Document{Resolution: Fine, Pages: []*Page{{Width: 1700, Height: 1, Stride: 213, Bits: make([]byte, 213)}}}},
		{"short bits", &Document{Resolution: Fine, Pages: []*Page{{Width: Width, Height: 2, Stride: 216, Bits: make([]byte, 216)}}}},
	}
	for _, tt := range tests {
		if err := WriteTIFF(io.Discard, tt.doc); err == nil {
			t.Errorf("%s: WriteTIFF succeeded", tt.name)
		}
	}
	if err := WriteTIFF(failWriter{}, &Document{Resolution: Fine, Pages: []*Page{newPage(1)}}); err == nil || !strings.Contains(err.Error(), "disk full") {
		t.Errorf("write error not passed on: %v", err)
	}
}

type failWriter struct{}

func (failWriter) Write([]byte) (int, error) { return 0, errors.New("disk full") }

// TestRendererConcurrent shares one Renderer (and its glyph cache) between
// goroutines; run with -race.
func TestRendererConcurrent(t *testing.T) {
	r, err := NewRenderer(Options{Resolution: Standard, Location: time.UTC})
	if err != nil {
		t.Fatal(err)
	}
	want, err := r.Render(Message{From: "+48", Sent: sent, Text: longText(3000)})
	if err != nil {
		t.Fatal(err)
	}
	fresh, _ := NewRenderer(Options{Resolution: Standard, Location: time.UTC})
	errs := make(chan error, 4)
	for i := 0; i < 4; i++ {
		go func() {
			doc, err := fresh.Render(Message{From: "+48", Sent: sent, Text: longText(3000)})
			if err == nil && (len(doc.Pages) != len(want.Pages) || !bytes.Equal(doc.Pages[0].Bits, want.Pages[0].Bits)) {
				err = errors.New("concurrent render differs")
			}
			errs <- err
		}()
	}
	for i := 0; i < 4; i++ {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}
}
