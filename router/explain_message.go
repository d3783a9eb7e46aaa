package router

// ExplainMessage is `smsrouter explain`: the way one message would go now, step
// by step, read from the same tables and settings the router uses, without
// sending, queueing or writing anything.

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"smsrouter/asteriskconf/smsq"
	"smsrouter/router/selfservice"
)

// Step is one decision on the way, and why it fell so.
type Step struct {
	Step   string `json:"step"`
	Result string `json:"result"`
	Why    string `json:"why,omitempty"`
}

// Explanation is the way a message would go now.
type Explanation struct {
	From      string     `json:"from"`
	To        string     `json:"to"`
	Steps     []Step     `json:"steps"`
	Outcome   State      `json:"outcome"`              // what a drain now would record: delivered, deferred (held), bounced, duplicate, dropped
	Letter    string     `json:"letter,omitempty"`     // the letter it would be delivered by
	Link      string     `json:"link,omitempty"`       // the mobile link it would be handed to
	HeldUntil *time.Time `json:"held_until,omitempty"` // when quiet hours hold it
}

// ExplainRequest is the message to explain.
type ExplainRequest struct {
	From, To, Text string
	MR             int       // the phone's message reference, or -1 (the duplicate guard needs it)
	Now            time.Time // zero: time.Now
	// Letters are the letters this configuration has channels for.
	Letters string
	// Rule, when set, says which command rule would answer (letter C).
	Rule func(from, to, text string) string
}

// ExplainMessage follows a message through the router's decisions. cfg is the
// router's configuration as New would get it; store is read only.
func ExplainMessage(ctx context.Context, cfg Config, store *Store, dir Directory, req ExplainRequest) (Explanation, error) {
	if err := cfg.fill(); err != nil {
		return Explanation{}, err
	}
	now := req.Now
	if now.IsZero() {
		now = time.Now()
	}
	for _, n := range []struct{ what, v string }{{"sender", req.From}, {"recipient", req.To}} {
		if err := CheckNumber(n.what, n.v); err != nil {
			return Explanation{}, fmt.Errorf("%w: %w", ErrNotNumber, err)
		}
	}
	x := Explanation{From: req.From, To: cfg.Plan.Normalize(req.To)}
	if cfg.Plan.On() {
		x.From = cfg.Plan.Shown(cfg.Plan.Normalize(req.From))
	}
	add := func(step, result, why string) { x.Steps = append(x.Steps, Step{step, result, why}) }
	add("numbers", x.From+" → "+x.To, "as the numbering plan reads them: "+cfg.Plan.Explain(req.To))

	// The duplicate guard comes first in a batch.
	if err := x.duplicate(ctx, cfg, store, req, now, add); err != nil || x.Outcome != "" {
		return x, err
	}
	if cfg.SelfService.Enabled && x.To == selfNumber(cfg) {
		return x, x.selfService(ctx, cfg, store, dir, req, add)
	}
	if cfg.SelfService.Number != "" && !cfg.SelfService.Enabled && x.To == selfNumber(cfg) {
		add("self-service", "off", "[selfservice] enabled = false: "+x.To+" is routed like any number")
	}

	w, err := Explain(ctx, cfg, dir, req.To)
	if err != nil {
		return x, err
	}
	switch {
	case w.Inbound != nil:
		add("mobile link number", w.Inbound.String(), w.Why)
		x.Outcome = StateDelivered
		return x, nil
	case w.Unknown:
		add("directory", "unknown", w.Why)
		return x.bounce(cfg, req, "unknown"), nil
	case w.Link != "":
		add("route", w.RouteText, w.Why)
		x.Outcome, x.Link, x.Letter = StateDelivered, w.Link, "L"
		return x, nil
	}
	e := *w.Entry
	if e.Problem != "" {
		add("directory", "unusable row", w.Why)
		return x.bounce(cfg, req, "unreachable"), nil
	}
	add("directory", fmt.Sprintf("letter %c, Extension %s", e.Letter, e.Extension), w.Why)
	if len(e.Further) > 0 {
		var list []string
		for i, fw := range e.Further {
			way := fmt.Sprintf("%d. %c on %s", i+1, fw.Letter, fw.Extension)
			if fw.Problem != "" {
				way += " (skipped: " + fw.Problem + ")"
			}
			list = append(list, way)
		}
		add("further ways", strings.Join(list, ", "), "smsrouter_number_way: tried in order when the way before fails by its own evidence")
	} else {
		add("further ways", "none", "no smsrouter_number_way rows: only the letter in PBXNumbers")
	}
	if e.Letter == 'N' {
		add("letter", "N", "messaging disabled")
		return x.bounce(cfg, req, "disabled"), nil
	}
	if !strings.ContainsRune(req.Letters, rune(e.Letter)) {
		add("channel", "none", fmt.Sprintf("letter %c has no channel in this configuration", e.Letter))
		return x.bounce(cfg, req, "noservice"), nil
	}
	x.Letter = string(e.Letter)

	p := e.pref // read with the entry, as a batch reads it
	r := &Router{cfg: cfg}
	win, loc := r.quietFor(p)
	source := "the default ([quiet] default)"
	if p.own {
		source = "the number's own (smsrouter_number_pref)"
	}
	if p.problem != "" {
		source += "; ignored in its row: " + p.problem
	}
	switch until, held := r.quietUntil(e.Letter, p, now); {
	case !strings.ContainsRune(ringing, rune(e.Letter)):
		add("quiet hours", "not held", fmt.Sprintf("letter %c does not ring a phone", e.Letter))
	case win.Off():
		add("quiet hours", "none", "no window: "+source)
	case held:
		x.HeldUntil = &until
		add("quiet hours", "held until "+until.In(loc).Format("15:04"),
			fmt.Sprintf("window %s %s, %s; now %s there", win, loc, source, now.In(loc).Format("15:04")))
		x.Outcome = StateDeferred
		return x, nil
	default:
		add("quiet hours", "not now", fmt.Sprintf("window %s %s, %s; now %s there", win, loc, source, now.In(loc).Format("15:04")))
	}
	if e.Letter == 'C' && req.Rule != nil {
		add("command rule", req.Rule(x.From, x.To, req.Text), "the first [[command.rule]] that matches the text and allows the sender")
	}
	add("deliver", letterWays[e.Letter], "")
	x.Outcome = StateDelivered
	return x, nil
}

// letterWays says what each channel leaves behind.
var letterWays = map[byte]string{
	'S': "an mttx file and a call file for the SMS phone (or the call already waiting for it)",
	'F': "a fax TIFF and a SendFax call file",
	'V': "a speech WAV and a Playback call file",
	'C': "the command service runs; its reply goes back to the sender",
	'T': "a SIP MESSAGE through AMI (held while the softphone is offline)",
}

func selfNumber(cfg Config) string {
	if cfg.Plan.On() {
		return cfg.Plan.Normalize(cfg.SelfService.Number)
	}
	return cfg.SelfService.Number
}

// bounce is a definite "cannot deliver": a notice to the sender, unless there
// is nobody to tell.
func (x Explanation) bounce(cfg Config, req ExplainRequest, notice string) Explanation {
	x.Outcome = StateBounced
	if cfg.SMSCNumber == "" || x.From == cfg.SMSCNumber {
		x.Outcome = StateDropped
		x.Steps = append(x.Steps, Step{"notice", "none", "nobody to tell: the sender is the SMS Centre (or none is configured)"})
		return x
	}
	x.Steps = append(x.Steps, Step{"notice", noticeKey(notice), "the sender gets the " + noticeKey(notice) + " notice from " + cfg.SMSCNumber})
	return x
}

func (x *Explanation) duplicate(ctx context.Context, cfg Config, store *Store, req ExplainRequest, now time.Time, add func(string, string, string)) error {
	switch {
	case cfg.Guards.DuplicateWindow <= 0:
		add("duplicate guard", "off", "[guards] duplicates = false")
		return nil
	case req.MR < 0:
		add("duplicate guard", "not checked", fmt.Sprintf("a phone's message with the same reference (--mr) and text within %s of an earlier one is not delivered again", cfg.Guards.DuplicateWindow))
		return nil
	}
	j := &job{item: &item{}, text: req.Text}
	j.msg = &smsq.Message{OA: x.From, DA: x.To, MR: req.MR}
	fp := fingerprint(j)
	seen, _, err := store.recentFingerprints(ctx, []string{fp}, now.Add(-cfg.Guards.DuplicateWindow))
	if err != nil {
		return err
	}
	if id, ok := seen[fp]; ok {
		add("duplicate guard", "duplicate of "+id, fmt.Sprintf("the same sender, recipient, reference %d and text within %s", req.MR, cfg.Guards.DuplicateWindow))
		x.Outcome = StateDuplicate
		return nil
	}
	add("duplicate guard", "new", fmt.Sprintf("no message with reference %d and this text within %s", req.MR, cfg.Guards.DuplicateWindow))
	return nil
}

func (x *Explanation) selfService(ctx context.Context, cfg Config, store *Store, dir Directory, req ExplainRequest, add func(string, string, string)) error {
	x.Letter = "C"
	_, err := dir.Lookup(ctx, x.From)
	switch {
	case errors.Is(err, ErrUnknownNumber):
		add("self-service", "ignored", x.From+" is not a PBX number: no change, no reply")
		x.Outcome = StateDropped
		return nil
	case err != nil:
		return err
	}
	until, _, err := store.pinLock(ctx, x.From)
	if err != nil {
		return err
	}
	now := req.Now
	if now.IsZero() {
		now = time.Now()
	}
	if now.Before(until) {
		add("self-service", "locked out", x.From+" sent too many wrong PINs: no change, no reply until "+
			until.In(cfg.Location).Format("2006-01-02 15:04")+" (smsrouter number unlock "+x.From+")")
		x.Outcome = StateDropped
		return nil
	}
	c, perr := selfservice.Parse(req.Text)
	if pe, ok := selfservice.IsError(perr); ok {
		add("self-service", "refused", "the reply says: "+pe.Reply)
	} else {
		what := string(c.Verb)
		switch c.Verb {
		case selfservice.Set:
			what += " " + commaLetters(c.Letters) + ": PBXNumbers.Message and smsrouter_number_way of " + x.From
		case selfservice.Lang:
			what += " " + c.Lang
		case selfservice.Quiet:
			what += " " + c.Window.String()
		case selfservice.Pin:
			what += ": smsrouter_number_pref.Pin of " + x.From
		}
		pin := "no PIN needed"
		if cfg.SelfService.RequirePIN {
			pin = "the number's PIN is required"
		}
		add("self-service", what, x.To+" is the self-service number; "+pin+"; a reply confirms")
	}
	x.Outcome = StateDelivered
	return nil
}
