package fax

import (
	"bytes"
	"testing"
	"time"
)

// FuzzRender: any text (and sender) lays out into valid pages without a
// panic, every page has its header and "page N/M", the text over the pages
// is the text rendered without a header, and the TIFF of them decodes back
// to the same pixels.
func FuzzRender(f *testing.F) {
	for _, s := range []string{"", "hello\nworld", polish, greek + emoji, "\xff\xfe\t\t\r\n\x00", "a\u0301\u0301\u0301", longText(600), "\u200d\ufe0f\u0300"} {
		f.Add(s, "+48")
	}
	f.Add(longText(9000), "a very long sender\nover two lines "+longText(300))
	r, err := NewRenderer(Options{Resolution: Standard, Location: time.UTC})
	if err != nil {
		f.Fatal(err)
	}
	bare := noHeader(f, r)
	f.Fuzz(func(t *testing.T, text, from string) {
		msg := Message{From: from, Ref: "f", Sent: sent, Text: text}
		doc, err := r.Render(msg)
		if err != nil {
			t.Fatal(err)
		}
		checkPagination(t, r, bare, doc, msg)
		if len(doc.Pages) == 0 {
			t.Fatal("no pages")
		}
		for i, p := range doc.Pages {
			if p.Width != Width || p.Height < 1 || p.Height > Standard.a4Lines() || len(p.Bits) != p.Stride*p.Height {
				t.Fatalf("page %d: %dx%d stride %d, %d bytes", i+1, p.Width, p.Height, p.Stride, len(p.Bits))
			}
			for _, l := range p.lines {
				if len([]rune(l.text)) == 0 {
					t.Fatalf("page %d: empty text line recorded", i+1)
				}
			}
		}
		var buf bytes.Buffer
		if err := WriteTIFF(&buf, doc); err != nil {
			t.Fatal(err)
		}
		ifds := parseTIFF(t, buf.Bytes())
		for n, ifd := range ifds {
			got, err := ccittDecode(ifd.strip(t, buf.Bytes()), Width, doc.Pages[n].Height)
			if err != nil || !bytes.Equal(got, doc.Pages[n].Bits) {
				t.Fatalf("page %d does not round-trip: %v", n+1, err)
			}
		}
	})
}
