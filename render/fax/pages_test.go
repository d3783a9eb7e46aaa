package fax

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// numberedLines returns n short, distinct lines of text, none of which wraps.
func numberedLines(n int) []string {
	words := []string{"alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf"}
	out := make([]string, n)
	for i := range out {
		out[i] = strings.TrimSpace(fmt.Sprintf("Line %03d %s %s", i+1, words[i%len(words)], strings.Repeat("x", i%13)))
	}
	return out
}

// decodePages writes doc as a TIFF and decodes every page back with
// x/image/ccitt, so that the checks below look at what the fax machine gets.
func decodePages(t *testing.T, doc *Document) []*Page {
	t.Helper()
	var buf bytes.Buffer
	if err := WriteTIFF(&buf, doc); err != nil {
		t.Fatal(err)
	}
	var out []*Page
	for n, ifd := range parseTIFF(t, buf.Bytes()) {
		h := int(ifd.tags[tagImageLength][0])
		bits, err := ccittDecode(ifd.strip(t, buf.Bytes()), Width, h)
		if err != nil {
			t.Fatalf("page %d: %v", n+1, err)
		}
		p := newPage(h)
		p.Bits = bits
		out = append(out, p)
	}
	return out
}

// alone renders text by itself, without a header, with opt: its first line
// lands where a page's first header line does, its lines on the same grid.
func alone(t *testing.T, opt Options, text string) *Page {
	t.Helper()
	opt.NoHeader = true
	doc, err := Render(Message{Text: text}, opt)
	if err != nil {
		t.Fatal(err)
	}
	if len(doc.Pages) != 1 {
		t.Fatalf("%q alone takes %d pages", text, len(doc.Pages))
	}
	return doc.Pages[0]
}

// sameRows reports the first row (counted from ay) where n rows of a from
// ay differ from n rows of b from by, or -1.
func sameRows(a *Page, ay int, b *Page, by, n int) int {
	for i := 0; i < n; i++ {
		ra, rb := ay+i, by+i
		var rowA, rowB []byte
		if ra >= 0 && ra < a.Height {
			rowA = a.Bits[ra*a.Stride : (ra+1)*a.Stride]
		}
		if rb >= 0 && rb < b.Height {
			rowB = b.Bits[rb*b.Stride : (rb+1)*b.Stride]
		}
		if !bytes.Equal(rowA, rowB) && !(allZero(rowA) && allZero(rowB)) {
			return i
		}
	}
	return -1
}

// firstDiff returns the index of the first line where a and b differ, or -1.
func firstDiff(a, b []string) int {
	for i := range max(len(a), len(b)) {
		if at(a, i) != at(b, i) || i >= len(a) || i >= len(b) {
			return i
		}
	}
	return -1
}

// at returns s[i], or "<none>" past its end.
func at(s []string, i int) string {
	if i < len(s) {
		return s[i]
	}
	return "<none>"
}

func allZero(b []byte) bool {
	for _, v := range b {
		if v != 0 {
			return false
		}
	}
	return true
}

// headerLine is the first header line as it should look: the header text
// and, right-aligned in the text width, "page N/M".
func headerLine(r *Renderer, text string, page, pages int) string {
	mark := pageMark(page, pages)
	return text + strings.Repeat(" ", r.cols-len([]rune(text))-len(mark)) + mark
}

// TestHeaderOnEveryPage renders a three-page message and checks, on the
// pixels decoded from the TIFF, that every page starts with the header line
// and its "page N/3", then the rule, then the next lines of text: each
// compared with the same lines rendered alone, so nothing is lost, doubled
// or moved at a page break.
func TestHeaderOnEveryPage(t *testing.T) {
	for _, ff := range fonts(t) {
		for _, res := range []Resolution{Standard, Fine, Superfine} {
			t.Run(fmt.Sprintf("%s/%v", filepath.Base(fontName(ff)), res), func(t *testing.T) {
				opt := Options{Resolution: res, FontFile: ff, Location: time.UTC}
				r, err := NewRenderer(opt)
				if err != nil {
					t.Fatal(err)
				}
				perPage := r.linesPerPage - 2 // the header line and the rule's line
				lines := numberedLines(2*perPage + perPage/2)
				msg := Message{From: "+48601234567", Ref: "1795242066497-24cc4dcc13", Sent: sent, Text: strings.Join(lines, "\n")}
				doc, err := r.Render(msg)
				if err != nil {
					t.Fatal(err)
				}
				if len(doc.Pages) != 3 {
					t.Fatalf("%d pages; want 3", len(doc.Pages))
				}
				pages := decodePages(t, doc)
				head := "Text message from +48601234567 sent 2026-11-21 06:30 (1795242066497-24cc4dcc13)"
				textW := r.cols * r.cellW
				for n, p := range pages {
					// The top band: the header line with its page mark as
					// rendered alone, and the rule under it; nothing else.
					// (Descenders may reach a row into the rule's line, so
					// the two are compared together.)
					line := headerLine(r, head, n+1, 3)
					want := alone(t, opt, line)
					want.fillRect(rule{x: r.left, y: r.top + r.lineH + (r.lineH-r.ruleH)/2, w: textW, h: r.ruleH})
					y0 := r.top + 2*r.lineH // where the text starts
					if d := sameRows(p, 0, want, 0, y0); d >= 0 {
						t.Errorf("page %d: header band differs from %q and its rule at row %d", n+1, line, d)
					}
					// Then this page's share of the text, exactly, and
					// nothing after it to the end of the page.
					first := n * perPage
					last := min(first+perPage, len(lines))
					body := alone(t, opt, strings.Join(lines[first:last], "\n"))
					if d := sameRows(p, y0, body, r.top, p.Height-y0); d >= 0 {
						t.Errorf("page %d: text lines %d–%d differ at row %d", n+1, first+1, last, y0+d)
					}
					// The last page ends at the bottom margin under its text.
					end := y0 + (last-first)*r.lineH
					if n == 2 && p.Height != end+r.bottom {
						t.Errorf("last page is %d rows; want the text's end %d plus the bottom margin %d", p.Height, end, r.bottom)
					}
				}
				// The PDF copy draws the same lines: the header text and the
				// page mark on every page, then the text.
				var got, wantLines []string
				for n, p := range doc.Pages {
					for _, l := range p.lines {
						got = append(got, l.text)
					}
					wantLines = append(wantLines, head, pageMark(n+1, 3))
					wantLines = append(wantLines, lines[n*perPage:min((n+1)*perPage, len(lines))]...)
				}
				if i := firstDiff(got, wantLines); i >= 0 {
					t.Errorf("recorded lines differ from line %d: got %q; want %q", i+1, at(got, i), at(wantLines, i))
				}
			})
		}
	}
}

// TestPageMarkPosition checks that the mark ends at the right edge of the
// text width and shares the first header line's baseline.
func TestPageMarkPosition(t *testing.T) {
	r, err := NewRenderer(Options{Location: time.UTC})
	if err != nil {
		t.Fatal(err)
	}
	doc, err := r.Render(Message{From: "+48", Ref: "1", Sent: sent, Text: "hello"})
	if err != nil {
		t.Fatal(err)
	}
	p := doc.Pages[0]
	if len(p.lines) != 3 {
		t.Fatalf("lines %+v; want header, mark, text", p.lines)
	}
	h, m := p.lines[0], p.lines[1]
	if m.text != "page 1/1" || m.baseline != h.baseline {
		t.Errorf("mark %+v; want \"page 1/1\" on the header's baseline %d", m, h.baseline)
	}
	if right := m.x + len(m.text)*r.cellW; right != r.left+r.cols*r.cellW {
		t.Errorf("mark ends at x=%d; want the text width's right edge %d", right, r.left+r.cols*r.cellW)
	}
}

// layout describes a document as text: every page's height, rules and
// lines with their pixel positions; for the golden file and for messages.
func layout(doc *Document) string {
	var b strings.Builder
	for n, p := range doc.Pages {
		fmt.Fprintf(&b, "page %d: %dx%d\n", n+1, p.Width, p.Height)
		for _, ru := range p.rules {
			fmt.Fprintf(&b, "  rule x=%d y=%d w=%d h=%d\n", ru.x, ru.y, ru.w, ru.h)
		}
		for _, l := range p.lines {
			fmt.Fprintf(&b, "  x=%4d y=%4d %s\n", l.x, l.baseline, l.text)
		}
	}
	return b.String()
}

// TestLayoutGolden pins the layout of a three-page message (big type at
// standard resolution, so that the file stays short). Rewrite it with
// go test -update only after looking at the new pages.
func TestLayoutGolden(t *testing.T) {
	r, err := NewRenderer(Options{Resolution: Standard, FontSize: 24, Location: time.UTC})
	if err != nil {
		t.Fatal(err)
	}
	doc, err := r.Render(Message{From: "+48601234567", Ref: "1795242066497-24cc4dcc13", Sent: sent, Text: strings.Join(numberedLines(2*(r.linesPerPage-3)+5), "\n")})
	if err != nil {
		t.Fatal(err)
	}
	got := layout(doc)
	golden := filepath.Join("testdata", "layout-3pages.golden")
	if *update {
		if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatalf("%v (run go test -update once to create it)", err)
	}
	g, w := strings.Split(got, "\n"), strings.Split(string(want), "\n")
	if i := firstDiff(g, w); i >= 0 {
		t.Errorf("layout differs from %s at line %d:\n got %q\nwant %q", golden, i+1, at(g, i), at(w, i))
	}
}

// checkPagination checks what must hold for any document rendered with a
// header: every page has the header (with "page N/M" unless the template
// shows the page itself) and the rule above its text, no ink runs into the
// bottom margin, and the text lines over all pages are exactly those of
// the message rendered without a header by bare (a Renderer with the same
// options and NoHeader).
func checkPagination(t testing.TB, r, bare *Renderer, doc *Document, msg Message) {
	t.Helper()
	plain, err := bare.Render(msg)
	if err != nil {
		t.Fatal(err)
	}
	want, got := lineTexts(plain), []string(nil)
	for n, p := range doc.Pages {
		if len(p.rules) != 1 {
			t.Fatalf("page %d: %d rules; want 1", n+1, len(p.rules))
		}
		ru := p.rules[0]
		mark := pageMark(n+1, len(doc.Pages))
		marked := r.pageInHeader
		for _, l := range p.lines {
			switch {
			case l.baseline > ru.y:
				got = append(got, l.text)
			case l.text == mark && l.x+len(mark)*r.cellW == r.left+r.cols*r.cellW:
				marked = true
			}
		}
		if !marked {
			t.Errorf("page %d: no %q at the right of the header", n+1, mark)
		}
		if ink := lastInkRow(p); ink >= p.Height-r.bottom {
			t.Errorf("page %d: ink at row %d runs into the bottom margin (page %d rows)", n+1, ink, p.Height)
		}
	}
	if i := firstDiff(got, want); i >= 0 {
		t.Errorf("text lines over the pages differ from the text alone from line %d: got %q; want %q", i+1, at(got, i), at(want, i))
	}
}

// noHeader returns a Renderer with r's options but no header.
func noHeader(t testing.TB, r *Renderer) *Renderer {
	t.Helper()
	opt := r.opt
	opt.NoHeader = true
	bare, err := NewRenderer(opt)
	if err != nil {
		t.Fatal(err)
	}
	return bare
}

// TestHeaderTemplates covers headers that wrap, that are far too long, that
// show the page themselves, and page counts whose digits change the header.
func TestHeaderTemplates(t *testing.T) {
	base := Options{Resolution: Standard, Location: time.UTC}
	probe, err := NewRenderer(base)
	if err != nil {
		t.Fatal(err)
	}
	perPage := probe.linesPerPage - 2
	// A header exactly as wide as the room beside "page 9/9" fits on one
	// line up to nine pages, and wraps when the mark becomes "page 10/10".
	nine := strings.Repeat("n", probe.cols-len("page 9/9")-2)
	tests := []struct {
		name      string
		header    string
		from      string
		lines     int
		wantPages int
		headLines int    // header lines on every page, mark line included
		headHas   string // in the first header line of every page; %d, %d = page, pages
		noMark    bool
	}{
		{"default one page", "", "+48", 1, 1, 1, "Text message from +48", false},
		{"wrapping header", "{{.From}} {{.From}} {{.From}}", strings.Repeat("W", 60), 2*perPage + 3, 3, 3, "WWWW", false},
		{"multi-line header", "Fax for you\nfrom {{.From}}\nref {{.Ref}}", "+48", 2*perPage + 3, 3, 3, "Fax for you", false},
		{"endless sender", "", strings.Repeat("0123456789 ", 2000), 2 * perPage, 0, probe.maxHead, "Text message from 0123456789", false},
		{"page shown by the template", "{{.From}} -- {{.Page}} of {{.Pages}}", "+48", 2*perPage + 1, 3, 1, "+48 -- %d of %d", true},
		{"page shown in a condition", "{{.From}}{{if gt .Pages 1}} ({{.Page}}/{{.Pages}}){{end}}", "+48", perPage + 1, 2, 1, "+48 (%d/%d)", true},
		{"nine pages", nine, "", 9 * perPage, 9, 1, nine, false},
		{"tenth page wraps the header", nine, "", 9*perPage + 1, 10, 2, nine[:20], false},
		{"header grows with the count", "{{range .Pages}}#{{end}}", "", 100 * perPage, 0, 0, "##", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			opt := base
			opt.Header = tt.header
			r, err := NewRenderer(opt)
			if err != nil {
				t.Fatal(err)
			}
			if r.pageInHeader != tt.noMark {
				t.Errorf("pageInHeader = %v; want %v", r.pageInHeader, tt.noMark)
			}
			msg := Message{From: tt.from, Ref: "r1", Sent: sent, Text: strings.Join(numberedLines(tt.lines), "\n")}
			doc, err := r.Render(msg)
			if err != nil {
				t.Fatal(err)
			}
			checkPagination(t, r, noHeader(t, r), doc, msg)
			if tt.wantPages != 0 && len(doc.Pages) != tt.wantPages {
				t.Errorf("%d pages; want %d", len(doc.Pages), tt.wantPages)
			}
			for n, p := range doc.Pages {
				ruY := p.rules[0].y
				var head []textLine
				for _, l := range p.lines {
					if l.baseline < ruY {
						head = append(head, l)
					}
				}
				rows := (ruY - r.top) / r.lineH // header line heights above the rule
				if tt.headLines != 0 && rows != tt.headLines {
					t.Errorf("page %d: header takes %d lines; want %d", n+1, rows, tt.headLines)
				}
				if rows > r.maxHead {
					t.Errorf("page %d: header takes %d lines, more than %d", n+1, rows, r.maxHead)
				}
				want := tt.headHas
				if strings.Contains(want, "%d") {
					want = fmt.Sprintf(want, n+1, len(doc.Pages))
				}
				if len(head) == 0 || !strings.Contains(head[0].text, want) {
					t.Errorf("page %d: first header line %+v lacks %q", n+1, head, want)
				}
			}
			if tt.name == "endless sender" {
				heads := doc.Pages[0].lines[:r.maxHead+1] // text lines and the mark
				if last := heads[len(heads)-1].text; !strings.HasSuffix(last, "...") {
					t.Errorf("cut header ends %q; want ...", last)
				}
			}
		})
	}
}

// TestHeaderShrinksWithCount: a header that is long for one page and short
// for several makes the first guess too pessimistic; the pages past the text
// keep their header so that "N/M" stays true.
func TestHeaderShrinksWithCount(t *testing.T) {
	r, err := NewRenderer(Options{Resolution: Standard, Location: time.UTC,
		Header: "{{if lt .Pages 3}}{{range 20}}long header line\n{{end}}{{end}}{{.Page}}/{{.Pages}}"})
	if err != nil {
		t.Fatal(err)
	}
	if r.maxHead < 21 {
		t.Fatalf("page holds only %d header lines", r.maxHead)
	}
	short := r.linesPerPage - 2
	long := r.linesPerPage - 1 - 21
	// With the long header the text takes three pages; with the short one
	// two would do.
	n := 2*long + 1
	if n > 2*short {
		t.Fatalf("test text of %d lines does not fit two short-header pages of %d", n, short)
	}
	msg := Message{Sent: sent, Text: strings.Join(numberedLines(n), "\n")}
	doc, err := r.Render(msg)
	if err != nil {
		t.Fatal(err)
	}
	checkPagination(t, r, noHeader(t, r), doc, msg)
	if len(doc.Pages) != 3 {
		t.Fatalf("%d pages; want 3", len(doc.Pages))
	}
	last := doc.Pages[2]
	if len(last.lines) != 1 || last.lines[0].text != "3/3" {
		t.Errorf("last page lines %+v; want just the header 3/3", last.lines)
	}
}

func TestMentionsPage(t *testing.T) {
	tests := []struct {
		tmpl string
		want bool
	}{
		{DefaultHeader, false},
		{"Page {{.From}} Pages", false},
		{"{{.Page}}", true},
		{"{{.Pages}}", true},
		{"{{printf \"%03d\" .Page}}", true},
		{"{{if gt .Pages 1}}more{{end}}", true},
		{"{{if .From}}{{else}}{{.Page}}{{end}}", true},
		{"{{with $.Pages}}{{.}}{{end}}", true},
		{"{{range $i := .Pages}}{{$i}}{{end}}", true},
		{"{{$p := .Page}}{{.From}}", true},
		{"{{define \"p\"}}{{.Page}}{{end}}{{.From}} {{template \"p\" .}}", true},
		{"{{define \"p\"}}x{{end}}{{.From}} {{template \"p\" .}}", false},
		{"{{/* .Page */}}{{.Ref}}", false},
	}
	for _, tt := range tests {
		r, err := NewRenderer(Options{Header: tt.tmpl})
		if err != nil {
			t.Errorf("%q: %v", tt.tmpl, err)
			continue
		}
		if r.pageInHeader != tt.want {
			t.Errorf("%q: shows the page = %v; want %v", tt.tmpl, r.pageInHeader, tt.want)
		}
	}
}

// TestNoRoomForHeader: margins that leave room for two lines are enough
// for text alone but not for a header, its rule and text.
func TestNoRoomForHeader(t *testing.T) {
	r, err := NewRenderer(Options{})
	if err != nil {
		t.Fatal(err)
	}
	lineMM := float64(r.lineH) / 196 * 25.4
	m := (297 - 2.5*lineMM) / 2
	opt := Options{Margins: Margins{Top: m, Bottom: m, Left: 10, Right: 10}}
	if _, err := NewRenderer(opt); err == nil || !strings.Contains(err.Error(), "no room") {
		t.Errorf("header on a page of 2 lines: %v; want no room", err)
	}
	opt.NoHeader = true
	if _, err := NewRenderer(opt); err != nil {
		t.Errorf("text alone on a page of 2 lines: %v", err)
	}
}
