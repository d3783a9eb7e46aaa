package fax

import (
	"errors"
	"fmt"
	"io"

	"github.com/signintech/gopdf"
)

// pdfFont is the family name the font is registered under inside the PDF.
const pdfFont = "fax"

// WritePDF writes a text PDF of doc with the same layout as the fax pages:
// same page sizes (1728 pixels at 204 dpi across, the TIFF page lengths
// down), same lines at the same places, the rule, and the font embedded.
// Every character was already replaced by one the font has when doc was
// rendered, so nothing goes missing here (gopdf would silently drop glyphs
// the font lacks).
func WritePDF(w io.Writer, doc *Document) error {
	if doc == nil || len(doc.Pages) == 0 {
		return errors.New("fax: write PDF: no pages")
	}
	_, ydpi := doc.Resolution.DPI()
	px := func(x int) float64 { return float64(x) * 72 / xDPI }
	py := func(y int) float64 { return float64(y) * 72 / float64(ydpi) }

	var pdf gopdf.GoPdf
	pdf.Start(gopdf.Config{Unit: gopdf.UnitPT, PageSize: gopdf.Rect{W: px(Width), H: py(doc.Resolution.a4Lines())}})
	if err := pdf.AddTTFFontData(pdfFont, doc.font); err != nil {
		return fmt.Errorf("fax: write PDF: embed font: %w", err)
	}
	for n, p := range doc.Pages {
		pdf.AddPageWithOption(gopdf.PageOption{PageSize: &gopdf.Rect{W: px(p.Width), H: py(p.Height)}})
		if err := pdf.SetFont(pdfFont, "", doc.fontSize); err != nil {
			return fmt.Errorf("fax: write PDF: page %d: %w", n+1, err)
		}
		pdf.SetFillColor(0, 0, 0)
		for _, r := range p.rules {
			pdf.RectFromUpperLeftWithStyle(px(r.x), py(r.y), px(r.w), py(r.h), "F")
		}
		for _, l := range p.lines {
			pdf.SetXY(px(l.x), py(l.baseline)) // Text draws on the baseline at y
			if err := pdf.Text(l.text); err != nil {
				return fmt.Errorf("fax: write PDF: page %d: %w", n+1, err)
			}
		}
	}
	if err := pdf.Write(w); err != nil {
		return fmt.Errorf("fax: write PDF: %w", err)
	}
	return nil
}
