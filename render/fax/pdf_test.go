package fax

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// TestWritePDF checks the PDF copy with poppler: one PDF page per fax page,
// the same page sizes, the font embedded, and the text (placeholders
// included) extractable.
func TestWritePDF(t *testing.T) {
	for _, tool := range []string{"pdfinfo", "pdftotext", "pdffonts"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("%s not found: install poppler-utils (apt-get install poppler-utils)", tool)
		}
	}
	for _, ff := range fonts(t) {
		text := polish + "\n" + greek + " " + emoji + "\n" + longText(7000)
		doc, err := Render(Message{From: "+48 601", Ref: "r9", Sent: sent, Text: text}, Options{FontFile: ff})
		if err != nil {
			t.Fatal(err)
		}
		var buf bytes.Buffer
		if err := WritePDF(&buf, doc); err != nil {
			t.Fatal(err)
		}
		file := filepath.Join(t.TempDir(), "fax.pdf")
		if err := os.WriteFile(file, buf.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
		run := func(name string, args ...string) string {
			out, err := exec.Command(name, args...).CombinedOutput()
			if err != nil {
				t.Fatalf("%s %v: %v\n%s", name, args, err, out)
			}
			return string(out)
		}
		info := run("pdfinfo", "-f", "1", "-l", "99", file)
		if m := regexp.MustCompile(`Pages:\s+(\d+)`).FindStringSubmatch(info); m == nil || m[1] != strconv.Itoa(len(doc.Pages)) {
			t.Errorf("%s: pdfinfo pages %v; want %d", fontName(ff), m, len(doc.Pages))
		}
		// Page 1 is A4 long, the last one shorter, both 1728/204 inch wide.
		if !regexp.MustCompile(`Page\s+1 size:\s+609.88 x 841.96 pts`).MatchString(info) {
			t.Errorf("%s: page 1 size wrong:\n%s", fontName(ff), info)
		}
		if fonts := run("pdffonts", file); !strings.Contains(fonts, " yes ") {
			t.Errorf("%s: font not embedded:\n%s", fontName(ff), fonts)
		}
		txt := run("pdftotext", "-layout", file, "-")
		for _, want := range []string{"Text message from +48 601 sent", "(r9)", polish, greek + " \ufffd"} {
			if !strings.Contains(txt, want) {
				t.Errorf("%s: PDF text lacks %q", fontName(ff), want)
			}
		}
		// Every page repeats the header and says which page it is.
		if len(doc.Pages) < 2 {
			t.Fatalf("%s: %d pages; want several", fontName(ff), len(doc.Pages))
		}
		for n := range doc.Pages {
			k := strconv.Itoa(n + 1)
			page := run("pdftotext", "-layout", "-f", k, "-l", k, file, "-")
			head, _, _ := strings.Cut(page, "\n")
			want := "page " + k + "/" + strconv.Itoa(len(doc.Pages))
			if !strings.HasPrefix(head, "Text message from +48 601 sent") || !strings.HasSuffix(strings.TrimSpace(head), want) {
				t.Errorf("%s: PDF page %s starts %q; want the header ending in %q", fontName(ff), k, head, want)
			}
		}
		if strings.Contains(txt, emoji) {
			t.Errorf("%s: emoji reached the PDF instead of the placeholder", fontName(ff))
		}
	}
}
