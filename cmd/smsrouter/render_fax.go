package main

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"time"

	faxrender "smsrouter/render/fax"
)

// cmdRenderFax renders a text the way the F channel would fax it: the same
// layout, header and font (from --config), into a TIFF and optionally a PDF.
func cmdRenderFax(_ context.Context, e *env, args []string) int {
	fs := flag.NewFlagSet("render fax", flag.ContinueOnError)
	var c common
	c.register(fs, false)
	text := fs.String("text", "", "message text, or - to read it from stdin")
	from := fs.String("from", "", "sender number shown in the header")
	ref := fs.String("ref", "", "reference shown in the header (the F channel uses the message id; default a new id)")
	out := fs.String("o", "", "TIFF file to write (required)")
	pdf := fs.String("pdf", "", "also write a PDF copy to this file")
	res := fs.String("resolution", "", "standard, fine or superfine (default from the config: fine)")
	fs.Usage = func() {
		fmt.Fprintf(e.stderr, "usage: smsrouter render fax --text TEXT|- --from NUMBER -o page.tiff [--pdf page.pdf] [--resolution fine] [--config FILE]\n")
		fs.PrintDefaults()
	}
	if !parseFlags(fs, e, args) {
		return exitUsage
	}
	if fs.NArg() > 0 || *out == "" || *from == "" {
		fs.Usage()
		return exitUsage
	}
	cfg, err := c.load(e)
	if err != nil {
		return fail(e, exitUsage, err)
	}
	loc, err := cfg.location()
	if err != nil {
		return fail(e, exitUsage, err)
	}
	if *res != "" {
		cfg.Fax.Resolution = *res
	}
	opt, err := cfg.Fax.renderOptions(loc)
	if err != nil {
		return fail(e, exitUsage, err)
	}
	body, err := textOrStdin(e, *text)
	if err != nil {
		return fail(e, exitUsage, err)
	}
	now := time.Now()
	if *ref == "" {
		*ref = faxrenderRef(now)
	}
	r, err := faxrender.NewRenderer(opt)
	if err != nil {
		return fail(e, exitUsage, err)
	}
	doc, err := r.Render(faxrender.Message{From: *from, Ref: *ref, Sent: now, Text: body})
	if err != nil {
		return fail(e, exitUsage, err)
	}
	var tiff bytes.Buffer
	if err := faxrender.WriteTIFF(&tiff, doc); err != nil {
		return fail(e, exitUsage, err)
	}
	if err := writeFileAtomic(*out, tiff.Bytes()); err != nil {
		return fail(e, exitUsage, err)
	}
	fmt.Fprintf(e.stdout, "%s: %d page(s), %s, %d bytes\n", *out, len(doc.Pages), doc.Resolution, tiff.Len())
	if *pdf != "" {
		var b bytes.Buffer
		if err := faxrender.WritePDF(&b, doc); err != nil {
			return fail(e, exitUsage, err)
		}
		if err := writeFileAtomic(*pdf, b.Bytes()); err != nil {
			return fail(e, exitUsage, err)
		}
		fmt.Fprintf(e.stdout, "%s: PDF copy, %d bytes\n", *pdf, b.Len())
	}
	return exitOK
}

// faxrenderRef is the reference shown when --ref is not given: a message id as
// the channel would make, so the header looks like a real fax's.
func faxrenderRef(now time.Time) string {
	return fmt.Sprintf("%013d-render", now.UnixMilli())
}
