package fax

import (
	"fmt"
	"image"
	"io"
	"math"
	"os"
	"strings"
	"sync"
	"text/template"
	"text/template/parse"
	"time"
	"unicode"
	"unicode/utf8"

	"golang.org/x/image/font"
	"golang.org/x/image/font/gofont/gomono"
	"golang.org/x/image/font/sfnt"
	"golang.org/x/image/math/fixed"
	"golang.org/x/image/vector"
)

// tabWidth is the tab stop distance in columns.
const tabWidth = 8

// Renderer lays out messages with one set of options. It caches the
// rasterised glyphs, so reuse one for many messages; it is safe for
// concurrent use.
type Renderer struct {
	opt    Options
	res    Resolution
	header *template.Template
	// pageInHeader: the template shows the page number or count itself,
	// so no "page N/M" is added to it.
	pageInHeader bool
	fontData     []byte
	font         *sfnt.Font

	// Geometry in pixels, derived from the options.
	cellW, lineH, ascent int
	left, top, bottom    int // margins
	cols                 int
	pageH                int
	linesPerPage         int // lines of text between the top and bottom margins
	maxHead              int // most lines a page's header may take
	ruleH                int
	yScale               float64 // vertical dpi / horizontal dpi
	ppem                 fixed.Int26_6

	mu     sync.Mutex
	buf    sfnt.Buffer
	glyphs map[rune]*glyph
}

// glyph is a rasterised glyph: a packed bitmap (same layout as Page) whose
// top-left corner sits at (dx, dy) from the pen position on the baseline.
type glyph struct {
	dx, dy, w, h, stride int
	bits                 []byte
}

// Render lays out msg with opt. Use NewRenderer to render many messages
// with the same options.
func Render(msg Message, opt Options) (*Document, error) {
	r, err := NewRenderer(opt)
	if err != nil {
		return nil, err
	}
	return r.Render(msg)
}

// NewRenderer checks opt, loads the font and works out the page geometry.
func NewRenderer(opt Options) (*Renderer, error) {
	if opt.Resolution == 0 {
		opt.Resolution = Fine
	}
	if !opt.Resolution.valid() {
		return nil, fmt.Errorf("fax: invalid resolution %d", int(opt.Resolution))
	}
	if opt.FontSize == 0 {
		opt.FontSize = 10
	}
	if !(opt.FontSize >= 4 && opt.FontSize <= 72) {
		return nil, fmt.Errorf("fax: font size %g pt out of range 4–72", opt.FontSize)
	}
	if opt.Header == "" {
		opt.Header = DefaultHeader
	}
	if opt.DateFormat == "" {
		opt.DateFormat = "2006-01-02 15:04"
	}
	if opt.Location == nil {
		opt.Location = time.Local
	}
	if opt.Margins == (Margins{}) {
		opt.Margins = Margins{Top: 10, Right: 10, Bottom: 10, Left: 10}
	}
	m := opt.Margins
	if m.Top < 0 || m.Right < 0 || m.Bottom < 0 || m.Left < 0 {
		return nil, fmt.Errorf("fax: negative margin in %+v", m)
	}

	r := &Renderer{opt: opt, res: opt.Resolution, glyphs: make(map[rune]*glyph)}
	var err error
	if r.header, err = template.New("header").Option("missingkey=error").Parse(opt.Header); err != nil {
		return nil, fmt.Errorf("fax: header template: %w", err)
	}
	r.pageInHeader = mentionsPage(r.header)
	// Try the template once now, so that a field it does not know (a typo
	// in the config) is found when the renderer is made and not when the
	// first fax is due.
	sample := headerData{From: "+48600100200", Ref: "1795242066497-24cc4dcc13", Date: time.Unix(0, 0).In(opt.Location).Format(opt.DateFormat), Page: 1, Pages: 1}
	if err := r.header.Execute(io.Discard, sample); err != nil {
		return nil, fmt.Errorf("fax: header template: %w", err)
	}
	r.fontData = gomono.TTF
	if opt.FontFile != "" {
		if r.fontData, err = os.ReadFile(opt.FontFile); err != nil {
			return nil, fmt.Errorf("fax: font: %w", err)
		}
	}
	if r.font, err = sfnt.Parse(r.fontData); err != nil {
		return nil, fmt.Errorf("fax: font %s: %w", fontName(opt.FontFile), err)
	}
	if err := r.geometry(); err != nil {
		return nil, err
	}
	if r.opt.Placeholder == 0 {
		r.opt.Placeholder = '?'
		if r.has(utf8.RuneError) {
			r.opt.Placeholder = utf8.RuneError
		}
	} else if !r.has(r.opt.Placeholder) {
		return nil, fmt.Errorf("fax: placeholder %U is not in font %s", r.opt.Placeholder, fontName(opt.FontFile))
	}
	return r, nil
}

func fontName(file string) string {
	if file == "" {
		return "Go Mono"
	}
	return file
}

// geometry derives the pixel layout. The glyph outlines are scaled for
// 204 dpi across and stretched by yScale down, so that text has the same
// size on paper at every resolution.
func (r *Renderer) geometry() error {
	_, ydpi := r.res.DPI()
	r.yScale = float64(ydpi) / xDPI
	ppem := r.opt.FontSize * xDPI / 72
	r.ppem = fixed.Int26_6(math.Round(ppem * 64))

	var buf sfnt.Buffer
	met, err := r.font.Metrics(&buf, r.ppem, font.HintingNone)
	if err != nil {
		return fmt.Errorf("fax: font metrics: %w", err)
	}
	// Monospace: the advance of "0" is every character's advance. Rounding
	// it to whole pixels keeps the columns on a fixed pixel grid.
	idx, err := r.font.GlyphIndex(&buf, '0')
	if err != nil || idx == 0 {
		return fmt.Errorf("fax: font %s has no digit 0", fontName(r.opt.FontFile))
	}
	adv, err := r.font.GlyphAdvance(&buf, idx, r.ppem, font.HintingNone)
	if err != nil {
		return fmt.Errorf("fax: font advance: %w", err)
	}
	r.cellW = max(1, int(math.Round(float64(adv)/64)))
	asc := float64(met.Ascent) / 64 * r.yScale
	lineH := float64(met.Height) / 64 * r.yScale
	if met.Height <= 0 {
		lineH = float64(met.Ascent+met.Descent) / 64 * r.yScale
	}
	r.ascent = int(math.Round(asc))
	r.lineH = max(1, int(math.Round(lineH)))

	mmX := func(mm float64) int { return int(math.Round(mm / 25.4 * xDPI)) }
	mmY := func(mm float64) int { return int(math.Round(mm / 25.4 * float64(ydpi))) }
	m := r.opt.Margins
	r.left, r.top, r.bottom = mmX(m.Left), mmY(m.Top), mmY(m.Bottom)
	r.cols = (Width - r.left - mmX(m.Right)) / r.cellW
	r.pageH = r.res.a4Lines()
	r.ruleH = max(1, mmY(0.35))
	r.linesPerPage = (r.pageH - r.bottom - r.top) / r.lineH
	minLines := 1
	if !r.opt.NoHeader {
		minLines = 3 // a header line, the rule's line and a line of text
	}
	if r.cols < 1 || r.linesPerPage < minLines {
		return fmt.Errorf("fax: margins %+v leave no room for %g pt text", m, r.opt.FontSize)
	}
	// However long the header, at least half of a page is left for text.
	r.maxHead = (r.linesPerPage - 1) / 2
	return nil
}

// has reports whether the font has a glyph for c.
func (r *Renderer) has(c rune) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	idx, err := r.font.GlyphIndex(&r.buf, c)
	return err == nil && idx != 0
}

// glyph returns the rasterised glyph for c, which must be in the font.
func (r *Renderer) glyph(c rune) (*glyph, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if g, ok := r.glyphs[c]; ok {
		return g, nil
	}
	g, err := r.rasterise(c)
	if err != nil {
		return nil, fmt.Errorf("fax: glyph %U: %w", c, err)
	}
	r.glyphs[c] = g
	return g, nil
}

// rasterise draws one glyph with anti-aliasing and thresholds it. The
// threshold is a little below half coverage so that thin strokes survive
// at standard resolution, where a horizontal stem is only about a pixel
// high.
func (r *Renderer) rasterise(c rune) (*glyph, error) {
	idx, err := r.font.GlyphIndex(&r.buf, c)
	if err != nil {
		return nil, err
	}
	segs, err := r.font.LoadGlyph(&r.buf, idx, r.ppem, nil)
	if err != nil {
		return nil, err
	}
	if len(segs) == 0 { // space and friends
		return &glyph{}, nil
	}
	pt := func(p fixed.Point26_6) (float64, float64) {
		return float64(p.X) / 64, float64(p.Y) / 64 * r.yScale
	}
	minX, minY, maxX, maxY := math.Inf(1), math.Inf(1), math.Inf(-1), math.Inf(-1)
	for _, s := range segs {
		n := 1 // points used by the segment: move and line 1, quad 2, cube 3
		switch s.Op {
		case sfnt.SegmentOpQuadTo:
			n = 2
		case sfnt.SegmentOpCubeTo:
			n = 3
		}
		for _, a := range s.Args[:n] {
			x, y := pt(a)
			minX, minY, maxX, maxY = min(minX, x), min(minY, y), max(maxX, x), max(maxY, y)
		}
	}
	ox, oy := math.Floor(minX), math.Floor(minY)
	w, h := int(math.Ceil(maxX)-ox), int(math.Ceil(maxY)-oy)
	if w <= 0 || h <= 0 {
		return &glyph{}, nil
	}
	ras := vector.NewRasterizer(w, h)
	f := func(p fixed.Point26_6) (float32, float32) {
		x, y := pt(p)
		return float32(x - ox), float32(y - oy)
	}
	for _, s := range segs {
		switch s.Op {
		case sfnt.SegmentOpMoveTo:
			ras.MoveTo(f(s.Args[0]))
		case sfnt.SegmentOpLineTo:
			ras.LineTo(f(s.Args[0]))
		case sfnt.SegmentOpQuadTo:
			x1, y1 := f(s.Args[0])
			x2, y2 := f(s.Args[1])
			ras.QuadTo(x1, y1, x2, y2)
		case sfnt.SegmentOpCubeTo:
			x1, y1 := f(s.Args[0])
			x2, y2 := f(s.Args[1])
			x3, y3 := f(s.Args[2])
			ras.CubeTo(x1, y1, x2, y2, x3, y3)
		}
	}
	ras.ClosePath()
	alpha := image.NewAlpha(image.Rect(0, 0, w, h))
	ras.Draw(alpha, alpha.Bounds(), image.Opaque, image.Point{})

	g := &glyph{dx: int(ox), dy: int(oy), w: w, h: h, stride: (w + 7) / 8}
	g.bits = make([]byte, g.stride*h)
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			if alpha.Pix[y*alpha.Stride+x] >= 0x70 {
				g.bits[y*g.stride+x>>3] |= 0x80 >> uint(x&7)
			}
		}
	}
	return g, nil
}

// draw ORs g onto p with its pen at (x, baseline), clipped to the page.
func (p *Page) draw(g *glyph, x, baseline int) {
	x0, y0 := x+g.dx, baseline+g.dy
	if x0 < 0 { // cannot happen with sane margins; keep the fast path simple
		for gy := 0; gy < g.h; gy++ {
			for gx := 0; gx < g.w; gx++ {
				if g.bits[gy*g.stride+gx>>3]&(0x80>>uint(gx&7)) != 0 && x0+gx >= 0 && x0+gx < p.Width && y0+gy >= 0 && y0+gy < p.Height {
					p.Bits[(y0+gy)*p.Stride+(x0+gx)>>3] |= 0x80 >> uint((x0+gx)&7)
				}
			}
		}
		return
	}
	shift := uint(x0 & 7)
	col := x0 >> 3
	for gy := 0; gy < g.h; gy++ {
		y := y0 + gy
		if y < 0 || y >= p.Height {
			continue
		}
		row := p.Bits[y*p.Stride : (y+1)*p.Stride]
		src := g.bits[gy*g.stride : (gy+1)*g.stride]
		for i, b := range src {
			if b == 0 {
				continue
			}
			if c := col + i; c < len(row) {
				row[c] |= b >> shift
			}
			if c := col + i + 1; shift != 0 && c < len(row) {
				row[c] |= b << (8 - shift)
			}
		}
	}
	// Bits beyond Width in the last byte would be invisible but must stay
	// 0; Width is a multiple of 8, so there are none.
}

// cell is one column of a line: a base character and any combining marks
// drawn on top of it.
type cell struct {
	r     rune
	marks []rune
}

// headerData is what the header template sees.
type headerData struct {
	From, Ref, Date string
	Page, Pages     int
}

// headLine is one line of a page's header block: text from the left edge
// and, on the first line, the page mark right-aligned at column markCol.
type headLine struct {
	cells   []cell
	mark    []cell
	markCol int
}

// pageLayout is what goes on one page: its header block and how many body
// lines it takes.
type pageLayout struct {
	head []headLine
	body int
}

// maxLayoutTries bounds the search for a page count the headers agree
// with; only a template whose header grows with every extra page would need
// more than two or three.
const maxLayoutTries = 16

// Render lays out msg: on every page the header block (unless disabled), a
// rule and the next lines of text; the last page is cut to its content plus
// the bottom margin.
//
// Every page shows "page N/M", like a fax machine's transmit header, but M
// is known only after the layout, and the header (which may show M) decides
// how many lines a page has left for text. So the layout guesses M, lays the
// text out under the headers for that guess, and repeats with the count it
// got until the two agree.
func (r *Renderer) Render(msg Message) (*Document, error) {
	var body [][]cell
	for _, par := range r.paragraphs(msg.Text) {
		body = append(body, wrap(par, r.cols)...)
	}
	var pages []pageLayout
	if r.opt.NoHeader {
		for left := len(body); left > 0 || len(pages) == 0; left -= r.linesPerPage {
			pages = append(pages, pageLayout{body: min(left, r.linesPerPage)})
		}
	} else {
		var err error
		if pages, err = r.paginate(msg, len(body)); err != nil {
			return nil, err
		}
	}

	doc := &Document{Resolution: r.res, font: r.fontData, fontSize: r.opt.FontSize}
	textW := r.cols * r.cellW
	next := 0 // first body line not yet placed
	for n, pl := range pages {
		h := r.pageH
		if n == len(pages)-1 {
			h = min(r.pageH, r.top+r.lineH*r.usedLines(pl)+r.bottom)
		}
		p := newPage(h)
		doc.Pages = append(doc.Pages, p)
		y := r.top
		for _, hl := range pl.head {
			if err := r.drawLine(p, hl.cells, r.left, y+r.ascent); err != nil {
				return nil, err
			}
			if err := r.drawLine(p, hl.mark, r.left+hl.markCol*r.cellW, y+r.ascent); err != nil {
				return nil, err
			}
			y += r.lineH
		}
		if !r.opt.NoHeader {
			// The rule sits in the middle of a blank line's height below
			// the header.
			ru := rule{x: r.left, y: y + (r.lineH-r.ruleH)/2, w: textW, h: r.ruleH}
			p.fillRect(ru)
			p.rules = append(p.rules, ru)
			y += r.lineH
		}
		for _, ln := range body[next : next+pl.body] {
			if err := r.drawLine(p, ln, r.left, y+r.ascent); err != nil {
				return nil, err
			}
			y += r.lineH
		}
		next += pl.body
	}
	return doc, nil
}

// usedLines is the number of line heights pl fills from the top margin.
func (r *Renderer) usedLines(pl pageLayout) int {
	n := len(pl.head) + pl.body
	if !r.opt.NoHeader {
		n++ // the rule's line
	}
	return n
}

// paginate decides how many pages bodyLines lines of text take under the
// headers, and what each page's header says.
func (r *Renderer) paginate(msg Message, bodyLines int) ([]pageLayout, error) {
	d := headerData{From: msg.From, Ref: msg.Ref, Date: msg.Sent.In(r.opt.Location).Format(r.opt.DateFormat)}
	var fixed string // the header text when it does not depend on the page
	if !r.pageInHeader {
		var err error
		if fixed, err = r.execHeader(d); err != nil {
			return nil, err
		}
	}
	pages := 1
	for try := 0; try < maxLayoutTries; try++ {
		var out []pageLayout
		left := bodyLines
		for n := 1; left > 0 || n <= pages; n++ {
			d.Page, d.Pages = n, pages
			text := fixed
			if r.pageInHeader {
				var err error
				if text, err = r.execHeader(d); err != nil {
					return nil, err
				}
			}
			head := r.headLines(text, d)
			// headLines leaves room for at least one line of text.
			take := min(left, r.linesPerPage-len(head)-1)
			out = append(out, pageLayout{head: head, body: take})
			left -= take
		}
		// Fewer pages than guessed can only happen with a header that
		// shrinks as the count grows; the pages past the text then carry
		// just their header, so that "N/M" stays true.
		if len(out) == pages {
			return out, nil
		}
		pages = len(out)
	}
	return nil, fmt.Errorf("fax: header: the page count does not settle after %d layouts (a header that grows with the page count?)", maxLayoutTries)
}

func (r *Renderer) execHeader(d headerData) (string, error) {
	var b strings.Builder
	if err := r.header.Execute(&b, d); err != nil {
		return "", fmt.Errorf("fax: header: %w", err)
	}
	return b.String(), nil
}

// pageMark is what a header that does not show the page number itself gets
// at its right end.
func pageMark(page, pages int) string { return fmt.Sprintf("page %d/%d", page, pages) }

// minHeaderCols is the narrowest the header text is wrapped to beside the
// page mark; with less room the mark gets a line of its own.
const minHeaderCols = 20

// headLines wraps the header text of one page and, unless the template shows
// the page itself, puts "page N/M" right-aligned on its first line. The room
// kept for the mark is that of the widest mark in the document, so the text
// wraps the same on every page. A header longer than maxHead lines is cut,
// with "..." at the end, so that text always fits on the page.
func (r *Renderer) headLines(text string, d headerData) []headLine {
	mark := ""
	if !r.pageInHeader {
		mark = pageMark(d.Page, d.Pages)
	}
	first := r.cols // room on the first line
	reserve := len(pageMark(d.Pages, d.Pages)) + 2
	beside := mark != "" && r.cols-reserve >= minHeaderCols
	if beside {
		first = r.cols - reserve
	}
	var lines []headLine
	for _, par := range r.paragraphs(text) {
		for _, ln := range wrapFirst(par, first, r.cols) {
			lines = append(lines, headLine{cells: ln})
		}
		first = r.cols
	}
	if mark != "" {
		mc := make([]cell, 0, len(mark))
		for _, c := range mark {
			mc = append(mc, cell{r: c})
		}
		switch {
		case beside:
			lines[0].mark, lines[0].markCol = mc, r.cols-len(mc)
		case len(mc) <= r.cols:
			lines = append(lines, headLine{mark: mc, markCol: r.cols - len(mc)})
		default: // a page narrower than the mark: wrap it like text
			for _, ln := range wrap(mc, r.cols) {
				lines = append(lines, headLine{cells: ln})
			}
		}
	}
	if len(lines) > r.maxHead {
		lines = lines[:r.maxHead]
		last := &lines[len(lines)-1]
		room := r.cols
		if last.mark != nil {
			room = r.cols - reserve
		}
		keep := min(len(last.cells), max(0, room-3))
		last.cells = append(trimSpace(last.cells[:keep:keep]), cell{r: '.'}, cell{r: '.'}, cell{r: '.'})
	}
	return lines
}

// drawLine draws cells from x on baseline and records the line for the PDF
// copy.
func (r *Renderer) drawLine(p *Page, cells []cell, x0, baseline int) error {
	var sb strings.Builder
	for col, c := range cells {
		x := x0 + col*r.cellW
		if err := r.drawRune(p, &sb, c.r, x, baseline); err != nil {
			return err
		}
		for _, m := range c.marks { // combining marks share their base's cell
			if err := r.drawRune(p, &sb, m, x, baseline); err != nil {
				return err
			}
		}
	}
	if sb.Len() > 0 {
		p.lines = append(p.lines, textLine{text: sb.String(), x: x0, baseline: baseline})
	}
	return nil
}

// drawRune draws c with its pen at (x, baseline) and records it for the
// PDF line.
func (r *Renderer) drawRune(p *Page, sb *strings.Builder, c rune, x, baseline int) error {
	sb.WriteRune(c)
	g, err := r.glyph(c)
	if err != nil {
		return err
	}
	p.draw(g, x, baseline)
	return nil
}

// paragraphs splits text at the sender's line breaks and turns each
// paragraph into cells: tabs expanded, controls and invisible format
// characters left out, and every character the font lacks (including
// invalid UTF-8) replaced by the placeholder.
func (r *Renderer) paragraphs(text string) [][]cell {
	var pars [][]cell
	var cur []cell
	for i := 0; i < len(text); {
		c, size := utf8.DecodeRuneInString(text[i:])
		i += size
		switch {
		case c == '\r':
			if i < len(text) && text[i] == '\n' {
				i++
			}
			fallthrough
		case c == '\n', c == '\v', c == '\f', c == '\u0085', c == '\u2028', c == '\u2029':
			pars = append(pars, cur)
			cur = nil
		case c == '\t':
			for n := tabWidth - len(cur)%tabWidth; n > 0; n-- {
				cur = append(cur, cell{r: ' '})
			}
		case c == utf8.RuneError && size == 1:
			cur = append(cur, cell{r: r.opt.Placeholder})
		case unicode.Is(unicode.Variation_Selector, c) || unicode.Is(unicode.Cf, c) || unicode.IsControl(c):
			// Not drawn: C0/C1 controls, and format characters such as
			// zero-width spaces, joiners and the emoji presentation
			// selector, which have no ink of their own.
		case unicode.In(c, unicode.Mn, unicode.Me) && len(cur) > 0 && cur[len(cur)-1].r != ' ' && r.has(c):
			last := &cur[len(cur)-1]
			last.marks = append(last.marks, c)
		case unicode.IsSpace(c):
			cur = append(cur, cell{r: ' '})
		case r.has(c):
			cur = append(cur, cell{r: c})
		default:
			cur = append(cur, cell{r: r.opt.Placeholder})
		}
	}
	return append(pars, cur)
}

// wrap breaks one paragraph into lines of at most cols cells, at spaces
// where possible and inside a word only when the word alone is longer than
// a line. Spaces at a break are dropped; leading indentation is kept.
func wrap(par []cell, cols int) [][]cell { return wrapFirst(par, cols, cols) }

// wrapFirst is wrap with a first line of at most first cells (the header's
// first line, which shares its row with the page mark).
func wrapFirst(par []cell, first, cols int) [][]cell {
	var out [][]cell
	for w := first; len(par) > w; w = cols {
		cut := w
		if par[w].r != ' ' {
			for j := w - 1; j > 0; j-- {
				if par[j].r == ' ' && !allSpace(par[:j]) {
					cut = j
					break
				}
			}
		}
		out = append(out, trimSpace(par[:cut]))
		par = par[cut:]
		for len(par) > 0 && par[0].r == ' ' {
			par = par[1:]
		}
	}
	return append(out, trimSpace(par))
}

func allSpace(cs []cell) bool {
	for _, c := range cs {
		if c.r != ' ' {
			return false
		}
	}
	return true
}

func trimSpace(cs []cell) []cell {
	for len(cs) > 0 && cs[len(cs)-1].r == ' ' {
		cs = cs[:len(cs)-1]
	}
	return cs
}

// mentionsPage reports whether the template (or one it defines) uses the
// field Page or Pages anywhere: printed, tested or passed to a function.
func mentionsPage(t *template.Template) bool {
	for _, tt := range t.Templates() {
		if tt.Tree != nil && nodeMentionsPage(tt.Tree.Root) {
			return true
		}
	}
	return false
}

func nodeMentionsPage(n parse.Node) bool {
	isPage := func(idents []string) bool {
		for _, id := range idents {
			if id == "Page" || id == "Pages" {
				return true
			}
		}
		return false
	}
	anyOf := func(ns ...parse.Node) bool {
		for _, c := range ns {
			if c != nil && !isNilNode(c) && nodeMentionsPage(c) {
				return true
			}
		}
		return false
	}
	switch n := n.(type) {
	case *parse.ListNode:
		return anyOf(n.Nodes...)
	case *parse.ActionNode:
		return anyOf(n.Pipe)
	case *parse.PipeNode:
		for _, c := range n.Cmds {
			if anyOf(c) {
				return true
			}
		}
	case *parse.CommandNode:
		return anyOf(n.Args...)
	case *parse.FieldNode:
		return isPage(n.Ident)
	case *parse.VariableNode:
		return isPage(n.Ident)
	case *parse.ChainNode:
		return isPage(n.Field) || anyOf(n.Node)
	case *parse.IfNode:
		return anyOf(n.Pipe, n.List, n.ElseList)
	case *parse.RangeNode:
		return anyOf(n.Pipe, n.List, n.ElseList)
	case *parse.WithNode:
		return anyOf(n.Pipe, n.List, n.ElseList)
	case *parse.TemplateNode:
		return anyOf(n.Pipe)
	}
	return false
}

// isNilNode reports whether n is a typed nil pointer, as an empty ElseList
// or a template call without a pipeline is.
func isNilNode(n parse.Node) bool {
	switch n := n.(type) {
	case *parse.ListNode:
		return n == nil
	case *parse.PipeNode:
		return n == nil
	}
	return false
}
