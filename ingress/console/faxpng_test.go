package console

import (
	"bytes"
	"image/png"
	"testing"
	"time"

	"smsrouter/render/fax"
)

// TestFaxPagesAsPNG renders a three-page fax with render/fax (Group 3 TIFF,
// as the F channel writes it), and checks that every page comes back as a PNG
// of the page's size whose pixels are the rendered ones.
func TestFaxPagesAsPNG(t *testing.T) {
	var text bytes.Buffer
	for i := 0; i < 200; i++ {
		text.WriteString("A line of a long fax, so that it needs more than one page.\n")
	}
	doc, err := fax.Render(fax.Message{From: "5550001", Ref: "test", Sent: time.Unix(1796220000, 0), Text: text.String()}, fax.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if len(doc.Pages) < 2 {
		t.Fatalf("%d pages; want several", len(doc.Pages))
	}
	var tif bytes.Buffer
	if err := fax.WriteTIFF(&tif, doc); err != nil {
		t.Fatal(err)
	}
	ifds, err := faxIFDs(tif.Bytes())
	if err != nil || len(ifds) != len(doc.Pages) {
		t.Fatalf("faxIFDs: %d pages, %v; want %d", len(ifds), err, len(doc.Pages))
	}
	for n, p := range doc.Pages {
		data, err := tiffPagePNG(tif.Bytes(), n+1)
		if err != nil {
			t.Fatalf("page %d: %v", n+1, err)
		}
		img, err := png.Decode(bytes.NewReader(data))
		if err != nil {
			t.Fatalf("page %d: not a PNG: %v", n+1, err)
		}
		if b := img.Bounds(); b.Dx() != p.Width || b.Dy() != p.Height {
			t.Fatalf("page %d is %v; want %dx%d", n+1, b, p.Width, p.Height)
		}
		diff := 0
		for y := 0; y < p.Height; y++ {
			for x := 0; x < p.Width; x++ {
				black := p.Bits[y*p.Stride+x/8]&(0x80>>(x%8)) != 0
				r, _, _, _ := img.At(x, y).RGBA()
				if black != (r < 0x8000) {
					diff++
				}
			}
		}
		if diff != 0 {
			t.Errorf("page %d: %d pixels differ from the rendered page", n+1, diff)
		}
	}
	if _, err := tiffPagePNG(tif.Bytes(), len(doc.Pages)+1); err == nil {
		t.Error("a page beyond the last was drawn")
	}
}

// FuzzFaxIFDs: any bytes give pages or an error, never a panic or a loop.
func FuzzFaxIFDs(f *testing.F) {
	doc, err := fax.Render(fax.Message{Text: "fuzz"}, fax.Options{})
	if err != nil {
		f.Fatal(err)
	}
	var tif bytes.Buffer
	if err := fax.WriteTIFF(&tif, doc); err != nil {
		f.Fatal(err)
	}
	f.Add(tif.Bytes())
	f.Add([]byte("II*\x00\x08\x00\x00\x00\x00\x00\x08\x00\x00\x00"))
	f.Add([]byte("MM\x00*\x00\x00\x00\x08\x00\x01"))
	f.Fuzz(func(t *testing.T, data []byte) {
		ifds, err := faxIFDs(data)
		if err == nil && (len(ifds) == 0 || len(ifds) > maxFaxPages) {
			t.Fatalf("%d pages without an error", len(ifds))
		}
		if err == nil {
			tiffPagePNG(data, 1) //nolint:errcheck // must not panic; errors are fine
		}
	})
}
