package fax

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"image"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hhrutter/tiff"

	"smsrouter/asteriskconf/callfile"
	"smsrouter/channels"
	faxrender "smsrouter/render/fax"
)

// pdfPage matches a page object (and not the /Pages tree) in gopdf's output.
var pdfPage = regexp.MustCompile(`/Type /Page[^s]`)

var update = flag.Bool("update", false, "rewrite golden files in testdata/")

const testID = "1795241965224-0a1b2c3d4e"

var sent = time.Date(2026, 11, 21, 9, 30, 0, 0, time.UTC)

func testMessage(text string) channels.Message {
	return channels.Message{
		ID: testID, From: "+48600100200", To: "2001", Text: text, Received: sent.Add(time.Minute), Sent: sent,
		Letter: 'F', Extension: "PJSIP/fax2001", Attempt: 1,
	}
}

func newChannel(t *testing.T, mutate func(*Config)) (*Channel, string) {
	t.Helper()
	spool := t.TempDir()
	cfg := Config{Spool: spool, SMSCNumber: "9001", Render: faxrender.Options{Location: time.UTC}}
	if mutate != nil {
		mutate(&cfg)
	}
	c, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return c, spool
}

// tiffinfo runs libtiff's tiffinfo -D (which decodes every strip) and fails the
// test on any warning.
func tiffinfo(t *testing.T, data []byte) string {
	t.Helper()
	if _, err := exec.LookPath("tiffinfo"); err != nil {
		t.Fatalf("tiffinfo not found: install libtiff-tools")
	}
	p := filepath.Join(t.TempDir(), "f.tif")
	if err := os.WriteFile(p, data, 0o644); err != nil {
		t.Fatal(err)
	}
	var stdout, stderr bytes.Buffer
	cmd := exec.Command("tiffinfo", "-D", p)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil || stderr.Len() > 0 {
		t.Fatalf("tiffinfo: %v\n%s", err, stderr.String())
	}
	return stdout.String()
}

func TestDeliverArtefacts(t *testing.T) {
	tests := []struct {
		res   faxrender.Resolution
		pdf   bool
		text  string
		pages int // at least
		ydpi  int
	}{
		{faxrender.Standard, false, "Krótka wiadomość, Ελληνικά και 😀.", 1, 98},
		{faxrender.Fine, true, "Zażółć gęślą jaźń 😀", 1, 196},
		{faxrender.Superfine, true, strings.Repeat("A fax needs several pages for this. ", 300), 2, 391},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%v-pdf=%v", tt.res, tt.pdf), func(t *testing.T) {
			c, spool := newChannel(t, func(cfg *Config) { cfg.Render.Resolution = tt.res; cfg.PDF = tt.pdf })
			m := testMessage(tt.text)
			res, err := c.Deliver(context.Background(), m)
			if err != nil {
				t.Fatal(err)
			}
			faxDir := filepath.Join(spool, "fax")
			if st, err := os.Stat(faxDir); err != nil || !st.IsDir() {
				t.Fatalf("fax folder not created: %v", err)
			}
			want := []struct{ kind, dir, name string }{{"fax", faxDir, TIFFName(testID)}}
			if tt.pdf {
				want = append(want, struct{ kind, dir, name string }{"pdf", faxDir, PDFName(testID)})
			}
			want = append(want, struct{ kind, dir, name string }{"call", filepath.Join(spool, "outgoing"), CallName(testID)})
			if len(res.Artefacts) != len(want) {
				t.Fatalf("%d artefacts; want %d", len(res.Artefacts), len(want))
			}
			for i, w := range want {
				a := res.Artefacts[i]
				if a.Kind != w.kind || a.Dir != w.dir || a.Name != w.name {
					t.Errorf("artefact %d = %s %s/%s; want %s %s/%s", i, a.Kind, a.Dir, a.Name, w.kind, w.dir, w.name)
				}
			}

			tiffData := res.Artefacts[0].Data
			info := tiffinfo(t, tiffData)
			if n := strings.Count(info, "TIFF Directory at offset"); n < tt.pages {
				t.Errorf("tiffinfo lists %d pages; want at least %d", n, tt.pages)
			}
			if !strings.Contains(info, "Image Width: 1728 ") || !strings.Contains(info, fmt.Sprintf("Resolution: 204, %d pixels/inch", tt.ydpi)) {
				t.Errorf("tiffinfo shows the wrong width or resolution:\n%s", info)
			}
			if n := strings.Count(info, "Image Width: "); n != strings.Count(info, "Image Width: 1728 ") {
				t.Errorf("a page is not 1728 wide:\n%s", info)
			}

			// Page 1 is exactly what the renderer draws for this message with
			// the message id as reference.
			img, err := tiff.Decode(bytes.NewReader(tiffData))
			if err != nil {
				t.Fatalf("hhrutter/tiff: %v", err)
			}
			doc, err := faxrender.Render(faxrender.Message{From: m.From, Ref: m.ID, Sent: m.Sent, Text: m.Text},
				faxrender.Options{Resolution: tt.res, Location: time.UTC})
			if err != nil {
				t.Fatal(err)
			}
			p := doc.Pages[0]
			if img.Bounds() != image.Rect(0, 0, faxrender.Width, p.Height) {
				t.Fatalf("page 1 is %v; want 1728x%d", img.Bounds(), p.Height)
			}
			diff := 0
			for y := 0; y < p.Height; y++ {
				for x := 0; x < faxrender.Width; x++ {
					r, _, _, _ := img.At(x, y).RGBA()
					if (r < 0x8000) != p.Black(x, y) {
						diff++
					}
				}
			}
			if diff != 0 {
				t.Errorf("page 1 differs from the rendered page in %d pixels", diff)
			}
			if res.Detail["pages"] != len(doc.Pages) || res.Detail["tiff"] != filepath.Join(faxDir, TIFFName(testID)) {
				t.Errorf("detail %v", res.Detail)
			}

			if tt.pdf {
				pdf := res.Artefacts[1].Data
				if !bytes.HasPrefix(pdf, []byte("%PDF-")) || !bytes.Contains(pdf, []byte("/FontFile2")) {
					t.Errorf("PDF copy is not a PDF with an embedded font (%d bytes)", len(pdf))
				}
				if got := len(pdfPage.FindAll(pdf, -1)); got != len(doc.Pages) {
					t.Errorf("PDF has %d pages; want %d", got, len(doc.Pages))
				}
			}

			cf, err := callfile.Parse(res.Artefacts[len(res.Artefacts)-1].Data)
			if err != nil {
				t.Fatal(err)
			}
			if cf.Data != filepath.Join(faxDir, TIFFName(testID)) || !filepath.IsAbs(cf.Data) || cf.Application != "SendFax" || cf.Channel != m.Extension {
				t.Errorf("call file %+v", cf.CallFile)
			}
		})
	}
}

// TestCallFileGolden checks the call file with every FAXOPT set, and with none.
func TestCallFileGolden(t *testing.T) {
	yes := true
	tests := []struct {
		name string
		edit func(*Config)
	}{
		{"defaults", nil},
		{"all_options", func(c *Config) {
			c.LocalStationID, c.HeaderInfo, c.ECM = "+48 22 100 200", "ACME sp. z o.o.", &yes
			c.MinRate, c.MaxRate = 4800, 9600
			c.WaitTime, c.MaxRetries, c.RetryTime, c.Archive = 30, 5, 600, true
			c.CallerIDName = "Fax centre"
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, spool := newChannel(t, tt.edit)
			res, err := c.Deliver(context.Background(), testMessage("hello"))
			if err != nil {
				t.Fatal(err)
			}
			got := bytes.ReplaceAll(res.Artefacts[len(res.Artefacts)-1].Data, []byte(spool), []byte("/SPOOL"))
			golden := filepath.Join("testdata", tt.name+".call")
			if *update {
				if err := os.WriteFile(golden, got, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run with -update to create)", err)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("call file =\n%s\nwant\n%s", got, want)
			}
		})
	}
}

func TestNewRefuses(t *testing.T) {
	tests := []struct {
		name string
		edit func(*Config)
		want string
	}{
		{"no spool", func(c *Config) { c.Spool = "" }, "no spool"},
		{"comma in dir", func(c *Config) { c.Dir = "/var/spool/fax,d" }, "SendFax"},
		{"ampersand in dir", func(c *Config) { c.Dir = "/var/spool/a&b" }, "SendFax"},
		{"bad rate", func(c *Config) { c.MaxRate = 10000 }, "maxrate"},
		{"min above max", func(c *Config) { c.MinRate, c.MaxRate = 14400, 9600 }, "above"},
		{"long station id", func(c *Config) { c.LocalStationID = strings.Repeat("1", 21) }, "localstationid"},
		{"non-ASCII headerinfo", func(c *Config) { c.HeaderInfo = "Zażółć" }, "headerinfo"},
		{"newline in headerinfo", func(c *Config) { c.HeaderInfo = "a\nApplication: System" }, "headerinfo"},
		{"hash in headerinfo", func(c *Config) { c.HeaderInfo = "ACME #1" }, "Setvar"},
		{"quote in caller id", func(c *Config) { c.CallerIDName = `a"b` }, "caller ID"},
		{"bad font size", func(c *Config) { c.Render.FontSize = 1000 }, "font size"},
		{"missing font", func(c *Config) { c.Render.FontFile = "/nonexistent.ttf" }, "font"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := Config{Spool: t.TempDir()}
			tt.edit(&cfg)
			_, err := New(cfg)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("New: %v; want an error with %q", err, tt.want)
			}
		})
	}
}

func TestDeliverErrors(t *testing.T) {
	t.Run("no extension is temporary", func(t *testing.T) {
		c, _ := newChannel(t, nil)
		m := testMessage("x")
		m.Extension = "2001"
		_, err := c.Deliver(context.Background(), m)
		if err == nil || channels.IsPermanent(err) {
			t.Fatalf("err %v; want a temporary error", err)
		}
	})
	t.Run("hostile id is permanent", func(t *testing.T) {
		c, _ := newChannel(t, nil)
		m := testMessage("x")
		m.ID = "../../etc/passwd"
		_, err := c.Deliver(context.Background(), m)
		if !channels.IsPermanent(err) {
			t.Fatalf("err %v; want a permanent error", err)
		}
	})
	t.Run("unwritable fax folder is temporary", func(t *testing.T) {
		spool := t.TempDir()
		// A file where the folder should be: MkdirAll fails whoever runs the test.
		blocker := filepath.Join(spool, "fax")
		if err := os.WriteFile(blocker, nil, 0o644); err != nil {
			t.Fatal(err)
		}
		c, err := New(Config{Spool: spool})
		if err != nil {
			t.Fatal(err)
		}
		_, err = c.Deliver(context.Background(), testMessage("x"))
		if err == nil || channels.IsPermanent(err) {
			t.Fatalf("err %v; want a temporary error", err)
		}
	})
	t.Run("no header and no text still faxes a page", func(t *testing.T) {
		c, _ := newChannel(t, func(cfg *Config) { cfg.Render.NoHeader = true })
		res, err := c.Deliver(context.Background(), testMessage(""))
		if err != nil || res.Detail["pages"] != 1 {
			t.Fatalf("err %v, detail %v; want one blank page", err, res.Detail)
		}
	})
}

// TestDeliverHostileText: whatever the text, the renderer substitutes and the
// delivery succeeds.
func TestDeliverHostileText(t *testing.T) {
	c, _ := newChannel(t, nil)
	for _, text := range []string{
		"\x00\x01\x1b[2J\r\n\t", "\u202e\u200b\ufeff", strings.Repeat("😀", 500), strings.Repeat("x", 20000),
		"Setvar: X=1\nApplication: System", "\xff\xfe invalid",
	} {
		if _, err := c.Deliver(context.Background(), testMessage(text)); err != nil {
			t.Errorf("Deliver(%q…): %v", text[:min(len(text), 20)], err)
		}
	}
}

// TestDeliverConcurrent shares one renderer between parallel deliveries, as the
// router does.
func TestDeliverConcurrent(t *testing.T) {
	c, _ := newChannel(t, nil)
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for i := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			m := testMessage(strings.Repeat(fmt.Sprintf("message %d ", i), 50))
			m.ID = fmt.Sprintf("1795241965224-00000000%02d", i)
			if _, err := c.Deliver(context.Background(), m); err != nil {
				errs <- err
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

func TestCleanup(t *testing.T) {
	now := time.Now()
	c, spool := newChannel(t, func(cfg *Config) { cfg.Keep = 48 * time.Hour })
	dir := filepath.Join(spool, "fax")
	out := filepath.Join(spool, "outgoing")
	for _, d := range []string{dir, out} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	old, fresh := now.Add(-72*time.Hour), now.Add(-time.Hour)
	files := []struct {
		name    string
		mtime   time.Time
		removed bool
	}{
		{TIFFName("1795241965224-0000000001"), old, true},
		{PDFName("1795241965224-0000000001"), old, true},
		{TIFFName("1795241965224-0000000002"), fresh, false},
		{TIFFName("1795241965224-0000000003"), old, false}, // its call is still in outgoing/
		{"smsrouter-fax-1795241965224-0000000004.tiff", old, false},
		{"smsrouter-fax-notanid.tif", old, false},
		{"received-from-someone.tif", old, false},
		{"smsrouter-fax-1795241965224-0000000005.tif.bak", old, false},
		{".smsrouter-fax-1795241965224-0000000006.tif", old, false},
	}
	for _, f := range files {
		p := filepath.Join(dir, f.name)
		if err := os.WriteFile(p, []byte("x"), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Chtimes(p, f.mtime, f.mtime); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(out, CallName("1795241965224-0000000003")), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	// An old folder with our name pattern is not a file we made.
	if err := os.Mkdir(filepath.Join(dir, TIFFName("1795241965224-0000000007")), 0o755); err != nil {
		t.Fatal(err)
	}
	os.Chtimes(filepath.Join(dir, TIFFName("1795241965224-0000000007")), old, old)

	var _ channels.Janitor = c
	if err := c.Cleanup(context.Background(), now); err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		_, err := os.Stat(filepath.Join(dir, f.name))
		if gone := errors.Is(err, os.ErrNotExist); gone != f.removed {
			t.Errorf("%s: removed=%v; want %v", f.name, gone, f.removed)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, TIFFName("1795241965224-0000000007"))); err != nil {
		t.Errorf("folder removed: %v", err)
	}

	// No fax folder yet is not an error.
	c2, _ := newChannel(t, nil)
	if err := c2.Cleanup(context.Background(), now); err != nil {
		t.Errorf("Cleanup without a folder: %v", err)
	}
}
