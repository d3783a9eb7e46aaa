package fax

import (
	"fmt"
	"image"
	"math"
	"os"
	"strings"
	"sync"
	"text/template"
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
	opt      Options
	res      Resolution
	header   *template.Template
	fontData []byte
	font     *sfnt.Font

	// Geometry in pixels, derived from the options.
	cellW, lineH, ascent int
	left, top, bottom    int // margins
	cols                 int
	pageH                int
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
	if r.cols < 1 || r.top+r.lineH+r.bottom > r.pageH {
		return fmt.Errorf("fax: margins %+v leave no room for %g pt text", m, r.opt.FontSize)
	}
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

// Render lays out msg: the header (unless disabled), a rule, and the text,
// on as many pages as needed; the last page is cut to its content plus the
// bottom margin.
func (r *Renderer) Render(msg Message) (*Document, error) {
	var lines [][]cell
	headerLines := 0
	if !r.opt.NoHeader {
		var hb strings.Builder
		data := struct{ From, Ref, Date string }{msg.From, msg.Ref, msg.Sent.In(r.opt.Location).Format(r.opt.DateFormat)}
		if err := r.header.Execute(&hb, data); err != nil {
			return nil, fmt.Errorf("fax: header: %w", err)
		}
		for _, par := range r.paragraphs(hb.String()) {
			lines = append(lines, wrap(par, r.cols)...)
		}
		headerLines = len(lines)
	}
	for _, par := range r.paragraphs(msg.Text) {
		lines = append(lines, wrap(par, r.cols)...)
	}

	doc := &Document{Resolution: r.res, font: r.fontData, fontSize: r.opt.FontSize}
	type placed struct {
		page, baseline int
		cells          []cell
	}
	var out []placed
	var rules []struct{ page, y int }
	page, y := 0, r.top
	usable := r.pageH - r.bottom
	for i, ln := range lines {
		if y+r.lineH > usable {
			page, y = page+1, r.top
		}
		out = append(out, placed{page, y + r.ascent, ln})
		y += r.lineH
		if i == headerLines-1 {
			// The rule sits in the middle of a blank line's height below
			// the header.
			gap := (r.lineH - r.ruleH) / 2
			if y+r.lineH > usable {
				page, y = page+1, r.top
			}
			rules = append(rules, struct{ page, y int }{page, y + gap})
			y += r.lineH
		}
	}
	pages := page + 1
	lastH := min(r.pageH, y+r.bottom)
	for i := 0; i < pages; i++ {
		h := r.pageH
		if i == pages-1 {
			h = lastH
		}
		doc.Pages = append(doc.Pages, newPage(h))
	}
	textW := r.cols * r.cellW
	for _, rl := range rules {
		p := doc.Pages[rl.page]
		ru := rule{x: r.left, y: rl.y, w: textW, h: r.ruleH}
		p.fillRect(ru)
		p.rules = append(p.rules, ru)
	}
	for _, pl := range out {
		p := doc.Pages[pl.page]
		var sb strings.Builder
		for col, c := range pl.cells {
			x := r.left + col*r.cellW
			if err := r.drawRune(p, &sb, c.r, x, pl.baseline); err != nil {
				return nil, err
			}
			for _, m := range c.marks { // combining marks share their base's cell
				if err := r.drawRune(p, &sb, m, x, pl.baseline); err != nil {
					return nil, err
				}
			}
		}
		if sb.Len() > 0 {
			p.lines = append(p.lines, textLine{text: sb.String(), x: r.left, baseline: pl.baseline})
		}
	}
	return doc, nil
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
func wrap(par []cell, cols int) [][]cell {
	var out [][]cell
	for len(par) > cols {
		cut := cols
		if par[cols].r != ' ' {
			for j := cols - 1; j > 0; j-- {
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
