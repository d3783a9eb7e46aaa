package main

import (
	"bytes"
	"context"
	"fmt"
	"time"

	faxrender "smsrouter/render/fax"
)

// renderFaxFlags are `smsrouter render fax`'s options (cli.go declares them).
type renderFaxFlags struct {
	text, from, ref, out, pdf, res string
}

// cmdRenderFax renders a text the way the F channel would fax it: the same
// layout, header and font (from --config), into a TIFF and optionally a PDF.
func cmdRenderFax(_ context.Context, e *env, c *common, f renderFaxFlags) int {
	cfg, err := c.load(e)
	if err != nil {
		return fail(e, exitUsage, err)
	}
	loc, err := cfg.location()
	if err != nil {
		return fail(e, exitUsage, err)
	}
	if f.res != "" {
		cfg.Fax.Resolution = f.res
	}
	opt, err := cfg.Fax.renderOptions(loc)
	if err != nil {
		return fail(e, exitUsage, err)
	}
	body, err := textOrStdin(e, f.text)
	if err != nil {
		return fail(e, exitUsage, err)
	}
	now := time.Now()
	if f.ref == "" {
		f.ref = faxrenderRef(now)
	}
	r, err := faxrender.NewRenderer(opt)
	if err != nil {
		return fail(e, exitUsage, err)
	}
	doc, err := r.Render(faxrender.Message{From: f.from, Ref: f.ref, Sent: now, Text: body})
	if err != nil {
		return fail(e, exitUsage, err)
	}
	var tiff bytes.Buffer
	if err := faxrender.WriteTIFF(&tiff, doc); err != nil {
		return fail(e, exitUsage, err)
	}
	if err := writeFileAtomic(f.out, tiff.Bytes()); err != nil {
		return fail(e, exitUsage, err)
	}
	fmt.Fprintf(e.stdout, "%s: %d page(s), %s, %d bytes\n", f.out, len(doc.Pages), doc.Resolution, tiff.Len())
	if f.pdf != "" {
		var b bytes.Buffer
		if err := faxrender.WritePDF(&b, doc); err != nil {
			return fail(e, exitUsage, err)
		}
		if err := writeFileAtomic(f.pdf, b.Bytes()); err != nil {
			return fail(e, exitUsage, err)
		}
		fmt.Fprintf(e.stdout, "%s: PDF copy, %d bytes\n", f.pdf, b.Len())
	}
	return exitOK
}

// faxrenderRef is the reference shown when --ref is not given: a message id as
// the channel would make, so the header looks like a real fax's.
func faxrenderRef(now time.Time) string {
	return fmt.Sprintf("%013d-render", now.UnixMilli())
}
