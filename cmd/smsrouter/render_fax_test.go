package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"smsrouter/channels/fax"
	faxrender "smsrouter/render/fax"
)

func TestRenderFax(t *testing.T) {
	if _, err := exec.LookPath("tiffinfo"); err != nil {
		t.Fatal("tiffinfo not found: install libtiff-tools")
	}
	dir := t.TempDir()
	conf := filepath.Join(dir, "c.toml")
	if err := os.WriteFile(conf, []byte("[fax]\nresolution = \"standard\"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name     string
		args     []string // OUT and PDF are replaced by the test's file names
		stdin    string
		code     int
		ydpi     int
		pdf      bool
		minPages int
		stderr   string
	}{
		{name: "fine default with pdf", args: []string{"--text", "Zażółć gęślą jaźń 😀", "--from", "+48600", "-o", "OUT", "--pdf", "PDF"}, ydpi: 196, pdf: true, minPages: 1},
		{name: "superfine", args: []string{"--text", "x", "--from", "1", "-o", "OUT", "--resolution", "superfine"}, ydpi: 391, minPages: 1},
		{name: "stdin long", args: []string{"--text", "-", "--from", "1", "-o", "OUT"}, stdin: strings.Repeat("Długi tekst z wieloma słowami. ", 1000), ydpi: 196, minPages: 3},
		{name: "config resolution", args: []string{"--text", "x", "--from", "1", "-o", "OUT", "--config", conf}, ydpi: 98, minPages: 1},
		{name: "flag beats config", args: []string{"--text", "x", "--from", "1", "-o", "OUT", "--config", conf, "--resolution", "fine"}, ydpi: 196, minPages: 1},
		{name: "no output", args: []string{"--text", "x", "--from", "1"}, code: exitUsage, stderr: "usage"},
		{name: "no sender", args: []string{"--text", "x", "-o", "OUT"}, code: exitUsage, stderr: "usage"},
		{name: "bad resolution", args: []string{"--text", "x", "--from", "1", "-o", "OUT", "--resolution", "300x300"}, code: exitUsage, stderr: "resolution"},
		{name: "stray argument", args: []string{"--text", "x", "--from", "1", "-o", "OUT", "extra"}, code: exitUsage, stderr: "usage"},
		{name: "missing config", args: []string{"--text", "x", "--from", "1", "-o", "OUT", "--config", filepath.Join(dir, "none.toml")}, code: exitUsage, stderr: "none.toml"},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out := filepath.Join(dir, fmt.Sprintf("page%d.tiff", i))
			pdf := filepath.Join(dir, fmt.Sprintf("page%d.pdf", i))
			args := []string{"fax"}
			for _, a := range tt.args {
				switch a {
				case "OUT":
					a = out
				case "PDF":
					a = pdf
				}
				args = append(args, a)
			}
			var stdout, stderr bytes.Buffer
			e := &env{stdout: &stdout, stderr: &stderr, stdin: strings.NewReader(tt.stdin)}
			code := execute(context.Background(), e, append([]string{"render"}, args...))
			if code != tt.code {
				t.Fatalf("exit %d; want %d\n%s", code, tt.code, stderr.String())
			}
			if tt.code != 0 {
				if !strings.Contains(stderr.String(), tt.stderr) {
					t.Errorf("stderr %q; want %q", stderr.String(), tt.stderr)
				}
				if _, err := os.Stat(out); err == nil {
					t.Errorf("a failed run wrote %s", out)
				}
				return
			}
			var info, errs bytes.Buffer
			cmd := exec.Command("tiffinfo", "-D", out)
			cmd.Stdout, cmd.Stderr = &info, &errs
			if err := cmd.Run(); err != nil || errs.Len() > 0 {
				t.Fatalf("tiffinfo: %v\n%s", err, errs.String())
			}
			pages := strings.Count(info.String(), "TIFF Directory at offset")
			if pages < tt.minPages || strings.Count(info.String(), "Image Width: 1728 ") != pages {
				t.Errorf("%d pages, want at least %d, all 1728 wide:\n%s", pages, tt.minPages, info.String())
			}
			if !strings.Contains(info.String(), fmt.Sprintf("Resolution: 204, %d pixels/inch", tt.ydpi)) {
				t.Errorf("want 204x%d dpi:\n%s", tt.ydpi, info.String())
			}
			if want := fmt.Sprintf("%s: %d page(s)", out, pages); !strings.Contains(stdout.String(), want) {
				t.Errorf("stdout %q; want %q", stdout.String(), want)
			}
			b, err := os.ReadFile(pdf)
			if (err == nil) != tt.pdf || (tt.pdf && !bytes.HasPrefix(b, []byte("%PDF-"))) {
				t.Errorf("PDF: %v; want written=%v", err, tt.pdf)
			}
		})
	}
}

func TestRenderDispatch(t *testing.T) {
	for _, tt := range []struct {
		args []string
		code int
		want string
	}{
		{nil, exitUsage, "usage: smsrouter render {"},
		{[]string{"--help"}, exitOK, "fax"},
		{[]string{"telex"}, exitUsage, `unknown kind "telex"`},
	} {
		var stdout, stderr bytes.Buffer
		code := run(context.Background(), append([]string{"render"}, tt.args...), &stdout, &stderr)
		if code != tt.code || !strings.Contains(stdout.String()+stderr.String(), tt.want) {
			t.Errorf("render %v: exit %d, stderr %q; want %d and %q", tt.args, code, stderr.String(), tt.code, tt.want)
		}
	}
}

// TestFaxExampleMatchesDefaults: the [fax] section of the example configures the
// same channel as no section at all.
func TestFaxExampleMatchesDefaults(t *testing.T) {
	ex, err := loadConfig(filepath.Join("..", "..", "smsrouter.example.toml"))
	if err != nil {
		t.Fatal(err)
	}
	spool := t.TempDir()
	ex.Spool = spool
	def := defaultConfig()
	def.Spool = spool
	got, err := ex.Fax.channelConfig(ex, time.UTC)
	if err != nil {
		t.Fatal(err)
	}
	want, err := def.Fax.channelConfig(def, time.UTC)
	if err != nil {
		t.Fatal(err)
	}
	// The example spells out the defaults the channel and renderer apply to zero values.
	want.CallerIDName = "Fax"
	want.WaitTime, want.MaxRetries, want.RetryTime, want.Keep = 45, 3, 300, fax.DefaultKeep
	want.Render.Resolution, want.Render.FontSize = faxrender.Fine, 10
	want.Render.Header, want.Render.DateFormat = faxrender.DefaultHeader, "2006-01-02 15:04"
	if !reflect.DeepEqual(got, want) {
		t.Errorf("example [fax] differs from the defaults:\nexample  %+v\ndefaults %+v", got, want)
	}
	if _, err := fax.New(got); err != nil {
		t.Errorf("the example's fax channel: %v", err)
	}
}
