package fax

import (
	"bytes"
	"testing"
	"time"
)

// BenchmarkRenderEncodePage measures layout, rasterising and MH encoding
// of full A4 pages of text (the figure the old ghostscript pipeline took
// 375 ms for), per page, with the file size per page.
func BenchmarkRenderEncodePage(b *testing.B) {
	for _, tc := range []struct {
		name string
		res  Resolution
		cold bool // a new Renderer (font parse, empty glyph cache) per message
	}{{"standard", Standard, false}, {"fine", Fine, false}, {"superfine", Superfine, false}, {"fine-cold", Fine, true}} {
		b.Run(tc.name, func(b *testing.B) {
			opt := Options{Resolution: tc.res, Location: time.UTC}
			r, err := NewRenderer(opt)
			if err != nil {
				b.Fatal(err)
			}
			msg := Message{From: "+48601234567", Ref: "bench", Sent: sent, Text: longText(20000)}
			var buf bytes.Buffer
			pages := 0
			for b.Loop() {
				if tc.cold {
					if r, err = NewRenderer(opt); err != nil {
						b.Fatal(err)
					}
				}
				doc, err := r.Render(msg)
				if err != nil {
					b.Fatal(err)
				}
				buf.Reset()
				if err := WriteTIFF(&buf, doc); err != nil {
					b.Fatal(err)
				}
				pages = len(doc.Pages)
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/1e6/float64(b.N*pages), "ms/page")
			b.ReportMetric(float64(buf.Len())/float64(pages), "bytes/page")
		})
	}
}
