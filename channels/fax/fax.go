// Package fax delivers messages to fax machines (service letter F): every message
// is rendered by render/fax into one multi-page TIFF-F file (and, when enabled, a
// PDF copy beside it) in the fax folder, and a call file dials the recipient's
// Extension and runs SendFax on that TIFF, with the FAXOPT settings configured.
//
// Like every channel it writes nothing itself: the TIFF, the PDF and the call file
// are returned as artefacts in that order, so the router publishes the pages before
// the call that sends them. Old pages are removed by Cleanup (channels.Janitor).
package fax

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"smsrouter/asteriskconf/callfile"
	"smsrouter/channels"
	faxrender "smsrouter/render/fax"
)

// File names. Cleanup removes only files whose names have our prefix, a message id
// and one of our extensions, so the fax folder may be shared with anything else.
const (
	filePrefix = "smsrouter-fax-"
	tiffExt    = ".tif"
	pdfExt     = ".pdf"
	callPrefix = "smsrouter.fax."
)

// DefaultKeep is how long pages stay in the fax folder when Config.Keep is zero:
// long enough for every retry of the call and for an admin to look at a complaint.
const DefaultKeep = 7 * 24 * time.Hour

// The rates T.30 knows; FAXOPT(minrate/maxrate) refuses anything else.
var validRates = []int{2400, 4800, 7200, 9600, 12000, 14400}

// Config says how to render and send faxes.
type Config struct {
	Spool string // Asterisk spool root: outgoing/ lives there
	Dir   string // where TIFF and PDF files go; default <Spool>/fax. Must be on the spool's filesystem.

	Render faxrender.Options // layout: resolution, font, header, date format, time zone
	PDF    bool              // write a PDF copy beside every TIFF

	// Caller ID of the fax call: "<CallerIDName>" <SMSCNumber>. Default name "Fax".
	SMSCNumber, CallerIDName string

	// FAXOPT settings; zero values are left out of the call file so Asterisk's
	// res_fax defaults apply.
	LocalStationID   string // FAXOPT(localstationid), at most 20 characters
	HeaderInfo       string // FAXOPT(headerinfo), at most 50 characters
	ECM              *bool  // FAXOPT(ecm)
	MinRate, MaxRate int    // FAXOPT(minrate), FAXOPT(maxrate): 2400 … 14400

	WaitTime   int  // seconds to ring; default 45
	MaxRetries int  // further attempts when the call fails; default 3
	RetryTime  int  // seconds between attempts; default 300
	Archive    bool // Archive: yes, for delivery evidence in outgoing_done
	// OutcomeContext, when set, is the generated dialplan context the call
	// runs in (channels.Dialling.Context): it reports the fax's FAXSTATUS, FAXPAGES and FAXERROR and a busy line.
	OutcomeContext string

	Keep time.Duration // Cleanup removes our files older than this; default DefaultKeep
}

// Channel is the F delivery channel. It is safe for concurrent use: the router
// delivers several messages at once and they share one renderer (and its glyph cache).
type Channel struct {
	cfg      Config
	dir      string
	outgoing string
	r        *faxrender.Renderer
	dialling channels.Dialling
}

// New checks the configuration and loads the font.
func New(cfg Config) (*Channel, error) {
	if cfg.Spool == "" {
		return nil, errors.New("fax: no spool folder")
	}
	if cfg.Dir == "" {
		cfg.Dir = filepath.Join(cfg.Spool, "fax")
	}
	dir, err := filepath.Abs(cfg.Dir)
	if err != nil {
		return nil, fmt.Errorf("fax: folder %s: %w", cfg.Dir, err)
	}
	// SendFax splits its argument at ',' (options) and '&' (several files).
	if strings.ContainsAny(dir, ",&|;#\"' \r\n\x00") {
		return nil, fmt.Errorf("fax: folder %q: SendFax cannot take a path with blanks, quotes or any of ,&|;#", dir)
	}
	if cfg.CallerIDName == "" {
		cfg.CallerIDName = "Fax"
	}
	if strings.ContainsAny(cfg.CallerIDName, "\"<>\r\n\x00") {
		return nil, fmt.Errorf("fax: caller ID name %q may not contain quotes, <, > or line breaks", cfg.CallerIDName)
	}
	if err := checkText("localstationid", cfg.LocalStationID, 20); err != nil {
		return nil, err
	}
	if err := checkText("headerinfo", cfg.HeaderInfo, 50); err != nil {
		return nil, err
	}
	for _, r := range []struct {
		name string
		v    int
	}{{"minrate", cfg.MinRate}, {"maxrate", cfg.MaxRate}} {
		if r.v != 0 && !slices.Contains(validRates, r.v) {
			return nil, fmt.Errorf("fax: %s %d: want one of %v", r.name, r.v, validRates)
		}
	}
	if cfg.MinRate != 0 && cfg.MaxRate != 0 && cfg.MinRate > cfg.MaxRate {
		return nil, fmt.Errorf("fax: minrate %d is above maxrate %d", cfg.MinRate, cfg.MaxRate)
	}
	if cfg.WaitTime <= 0 {
		cfg.WaitTime = 45
	}
	if cfg.MaxRetries <= 0 {
		cfg.MaxRetries = 3
	}
	if cfg.RetryTime <= 0 {
		cfg.RetryTime = 300
	}
	if cfg.Keep <= 0 {
		cfg.Keep = DefaultKeep
	}
	r, err := faxrender.NewRenderer(cfg.Render)
	if err != nil {
		return nil, err
	}
	c := &Channel{cfg: cfg, dir: dir, outgoing: filepath.Join(cfg.Spool, "outgoing"), r: r, dialling: channels.Dialling{
		CallerIDName: cfg.CallerIDName, SMSCNumber: cfg.SMSCNumber, WaitTime: cfg.WaitTime,
		MaxRetries: cfg.MaxRetries, RetryTime: cfg.RetryTime, Archive: cfg.Archive, Context: cfg.OutcomeContext,
	}}
	// A setting the call file cannot carry (a '#' after a blank in headerinfo, say)
	// would fail every message: refuse it now, while the admin is looking.
	if _, err := c.callFile(channels.Message{To: "0", ID: "0000000000000-0000000000", Extension: "Local/0"}, filepath.Join(dir, TIFFName("0"))); err != nil {
		return nil, fmt.Errorf("fax: %w", err)
	}
	return c, nil
}

// Dir is the absolute folder the pages go to.
func (c *Channel) Dir() string { return c.dir }

// TIFFName is the file name of a message's pages in the fax folder.
func TIFFName(id string) string { return filePrefix + id + tiffExt }

// PDFName is the file name of a message's PDF copy in the fax folder.
func PDFName(id string) string { return filePrefix + id + pdfExt }

// CallName is the name of a message's call file in outgoing/.
func CallName(id string) string { return callPrefix + id }

// publicUnrenderable is the sender's reason for a text that cannot become a fax.
const publicUnrenderable = "The message could not be turned into a fax."

// Deliver renders m and returns the TIFF, the PDF copy (when enabled) and the call
// file, in the order they must appear.
func (c *Channel) Deliver(ctx context.Context, m channels.Message) (channels.Result, error) {
	if err := channels.CheckExtension(m); err != nil {
		return channels.Result{}, err
	}
	if !channels.ValidID(m.ID) {
		// The id becomes a file name; the router only makes valid ones.
		return channels.Result{}, channels.Permanent(fmt.Errorf("message id %q cannot name a fax file", m.ID))
	}
	sent := m.Sent
	if sent.IsZero() {
		sent = m.Received
	}
	doc, err := c.r.Render(faxrender.Message{From: m.From, Ref: m.ID, Sent: sent, Text: m.Text})
	if err != nil {
		// The same text and options would fail the same way next time.
		return channels.Result{}, channels.PermanentBecause(publicUnrenderable, fmt.Errorf("cannot render the fax: %w", err))
	}
	var tiff bytes.Buffer
	if err := faxrender.WriteTIFF(&tiff, doc); err != nil {
		return channels.Result{}, channels.PermanentBecause(publicUnrenderable, fmt.Errorf("cannot encode the fax: %w", err))
	}
	if err := ctx.Err(); err != nil {
		return channels.Result{}, err
	}
	// The router renames into this folder but does not create it; a failure here
	// is the file system's (permissions, a missing mount), so it is retried.
	if err := os.MkdirAll(c.dir, 0o755); err != nil {
		return channels.Result{}, fmt.Errorf("fax folder: %w", err)
	}
	tiffPath := filepath.Join(c.dir, TIFFName(m.ID))
	res := channels.Result{Detail: map[string]any{
		"tiff": tiffPath, "pages": len(doc.Pages), "resolution": doc.Resolution.String(), "bytes": tiff.Len(),
	}}
	res.Artefacts = append(res.Artefacts, channels.Artefact{Kind: "fax", Dir: c.dir, Name: TIFFName(m.ID), Data: tiff.Bytes(), Mode: 0o644})
	if c.cfg.PDF {
		var pdf bytes.Buffer
		if err := faxrender.WritePDF(&pdf, doc); err != nil {
			return channels.Result{}, channels.PermanentBecause(publicUnrenderable, fmt.Errorf("cannot write the PDF copy: %w", err))
		}
		res.Artefacts = append(res.Artefacts, channels.Artefact{Kind: "pdf", Dir: c.dir, Name: PDFName(m.ID), Data: pdf.Bytes(), Mode: 0o644})
		res.Detail["pdf"] = filepath.Join(c.dir, PDFName(m.ID))
	}
	call, err := c.callFile(m, tiffPath)
	if err != nil {
		return channels.Result{}, channels.PermanentBecause(channels.PublicNotSetUp, err)
	}
	res.Artefacts = append(res.Artefacts, channels.Artefact{Kind: "call", Dir: c.outgoing, Name: CallName(m.ID), Data: call, Mode: 0o664})
	res.Detail["call"] = CallName(m.ID)
	if c.dialling.Evidenced() {
		res.Detail[channels.AwaitsCall] = true
	}
	return res, nil
}

func (c *Channel) callFile(m channels.Message, tiffPath string) ([]byte, error) {
	var vars []callfile.Var
	// FAXOPT must be set before SendFax runs; Setvar on the call does that.
	if c.cfg.LocalStationID != "" {
		vars = append(vars, callfile.Var{Name: "FAXOPT(localstationid)", Value: c.cfg.LocalStationID})
	}
	if c.cfg.HeaderInfo != "" {
		vars = append(vars, callfile.Var{Name: "FAXOPT(headerinfo)", Value: c.cfg.HeaderInfo})
	}
	if c.cfg.ECM != nil {
		vars = append(vars, callfile.Var{Name: "FAXOPT(ecm)", Value: yesNo(*c.cfg.ECM)})
	}
	if c.cfg.MinRate != 0 {
		vars = append(vars, callfile.Var{Name: "FAXOPT(minrate)", Value: fmt.Sprint(c.cfg.MinRate)})
	}
	if c.cfg.MaxRate != 0 {
		vars = append(vars, callfile.Var{Name: "FAXOPT(maxrate)", Value: fmt.Sprint(c.cfg.MaxRate)})
	}
	return c.dialling.CallFile(m, "SendFax", tiffPath, vars...)
}

// Cleanup removes our TIFF and PDF files older than Config.Keep from the fax
// folder. Files of a message whose call file is still in outgoing/ are kept
// whatever their age: Asterisk may yet dial and read them.
func (c *Channel) Cleanup(ctx context.Context, now time.Time) error {
	err := channels.RemoveOld(ctx, c.dir, now, c.cfg.Keep, func(name string) bool {
		id, ok := ourFile(name)
		if !ok {
			return false
		}
		_, err := os.Lstat(filepath.Join(c.outgoing, CallName(id)))
		return err != nil // a call still waiting in outgoing/ may yet read it
	})
	if err != nil {
		return fmt.Errorf("fax cleanup: %w", err)
	}
	return nil
}

// ourFile reports whether name is one of the files Deliver makes, and its id.
func ourFile(name string) (id string, ok bool) {
	rest, ok := strings.CutPrefix(name, filePrefix)
	if !ok {
		return "", false
	}
	for _, ext := range []string{tiffExt, pdfExt} {
		if id, ok := strings.CutSuffix(rest, ext); ok && channels.ValidID(id) {
			return id, true
		}
	}
	return "", false
}

// checkText keeps FAXOPT strings to what T.30 can carry: printable ASCII.
func checkText(key, v string, max int) error {
	if len(v) > max {
		return fmt.Errorf("fax: %s %q is longer than %d characters", key, v, max)
	}
	for i := 0; i < len(v); i++ {
		if v[i] < 0x20 || v[i] > 0x7e {
			return fmt.Errorf("fax: %s %q: only printable ASCII can be sent", key, v)
		}
	}
	if v != strings.TrimSpace(v) {
		return fmt.Errorf("fax: %s %q has leading or trailing blanks", key, v)
	}
	return nil
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}
