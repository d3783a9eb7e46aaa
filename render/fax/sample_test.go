package fax

import (
	"flag"
	"os"
	"path/filepath"
	"testing"
	"time"
)

var sampleDir = flag.String("sample", "", "write sample TIFF and PDF files (Polish text with an emoji, two pages) into this directory, to look at")

func TestWriteSample(t *testing.T) {
	if *sampleDir == "" {
		t.Skip("no -sample directory")
	}
	text := "Dzień dobry! Zażółć gęślą jaźń — ZAŻÓŁĆ GĘŚLĄ JAŹŃ. Smile: " + emoji + " (no glyph, so a placeholder)\n" +
		"Ελληνικά: " + greek + "\n\tIndented with a tab.\nAVeryLongWordWithoutAnySpacesThatMustBeHardWrappedBecauseItIsLongerThanOneLineOfTheFaxPageAtTenPoints\n\n" +
		longText(7000)
	for _, ff := range fonts(t) {
		for _, res := range []Resolution{Standard, Fine, Superfine} {
			doc, err := Render(Message{From: "+48 601 234 567", Ref: "0c7f-42", Sent: time.Date(2026, 11, 21, 7, 5, 0, 0, time.UTC), Text: text}, Options{Resolution: res, FontFile: ff, Location: time.UTC})
			if err != nil {
				t.Fatal(err)
			}
			base := filepath.Join(*sampleDir, "fax-sample-"+res.String())
			if ff != "" {
				base += "-dejavu"
			}
			for ext, write := range map[string]func(*os.File) error{
				".tiff": func(f *os.File) error { return WriteTIFF(f, doc) },
				".pdf":  func(f *os.File) error { return WritePDF(f, doc) },
			} {
				f, err := os.Create(base + ext)
				if err != nil {
					t.Fatal(err)
				}
				if err := write(f); err != nil {
					t.Fatal(err)
				}
				if err := f.Close(); err != nil {
					t.Fatal(err)
				}
			}
			t.Logf("%s: %d pages", base, len(doc.Pages))
		}
	}
}
