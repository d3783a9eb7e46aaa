// Package link delivers messages to the mobile network through one configured
// mobile link: an SMPP account (mobile/smpp) or a GSM modem (mobile/modem). The
// router hands it every message for a number the directory does not know whose
// route names this link (journal letter L); one Channel runs per link.
//
// # Nothing is sent twice that can be helped
//
// A submit is a side effect inside Deliver, before the router commits the
// message's fate. Each part is therefore recorded in a per-message marker file
// (see markers.go) before it goes out and again when the network accepted it,
// with the network's name for it (the SMSC's message id, the modem's message
// reference). A retry after a failed journal write or a crash sends only the
// parts not accepted yet, with the same concatenation reference, so the
// handset still joins them; a message whose parts were all accepted is
// reported delivered without sending anything.
//
// # Uncertain parts
//
// A part can go out and get no answer: no submit_sm_resp within the response
// timeout or before the connection died, or a modem that took the PDU and was
// unplugged before it said +CMGS. The network may or may not have it. Waiting
// longer settles nothing: an SMPP response belongs to its session and never
// comes on a new one, and a modem that was reset forgot the command. Like the
// T channel with an unanswered MessageSend, the link retries such a part,
// taking a possible duplicate over a possible loss. The journal says exactly
// which: the deferred try's error names the part ("part 2 of 3 uncertain:
// …"), and the delivered row's detail lists "resent_parts" with why, so an
// admin can tell a sender why the phone may show a part twice. A process
// killed after deciding to send a part and before its answer leaves the same
// trace (the marker's "sending" line without an answer).
package link

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"log/slog"
	"strings"
	"text/template"
	"time"

	"smsrouter/channels"
	"smsrouter/internal/numplan"
)

// Outgoing is one text for a Transport, with what resuming needs.
type Outgoing struct {
	From, To, Text string
	ConcatRef      int // 1..255, the same on every try of a message
	Skip           int // leading parts the network accepted on an earlier try
	Validity       time.Duration
	// Sending is called before a part goes out, Accepted when the network
	// took it, with the network's name for it.
	Sending  func(part, parts int)
	Accepted func(part, parts int, ref string)
	// Ack, when set, sends Text as the acknowledgement the request asks for
	// (From and To are its addresses then); a transport that has none
	// refuses it.
	Ack *AckRequest
}

// Transport is a connection to the mobile network. SMPP and Modem adapt the
// protocol clients.
type Transport interface {
	Kind() string // "smpp" or "modem"
	// Ready returns nil when the transport can send now, else why not (not
	// bound, not registered): nothing is sent then.
	Ready() error
	// Send sends the text. Its error is a *SendError.
	Send(ctx context.Context, o Outgoing) error
}

// SendError is a Send that did not get every part accepted.
type SendError struct {
	Part, Parts int
	Uncertain   bool   // the part went out and no answer came
	Temporary   bool   // worth retrying; true whenever Uncertain
	Public      string // for a permanent error: the sentence the sender's notice gives
	Err         error
}

func (e *SendError) Error() string {
	what := "refused"
	switch {
	case e.Uncertain:
		what = "uncertain"
	case e.Temporary:
		what = "not sent"
	}
	if e.Parts > 0 {
		return fmt.Sprintf("part %d of %d %s: %v", e.Part, e.Parts, what, e.Err)
	}
	return fmt.Sprintf("%s: %v", what, e.Err)
}

func (e *SendError) Unwrap() error { return e.Err }

// Source values: who mobile phones see as the sender.
const (
	SourceNumber = "number" // the link's own number
	SourceSender = "sender" // the PBX sender in full, through the plan's DID range
)

// Config is one link's delivery side.
type Config struct {
	Name      string
	Transport Transport
	// Number is the link's own number, canonical: the sender mobile phones
	// see with SourceNumber, and the one a sender outside the DID range gets.
	Number string
	// Source is SourceNumber (default), SourceSender, or a fixed address
	// ("+48221234567", or an alphanumeric name, SMPP only).
	Source string
	Plan   numplan.Plan
	// Text is a Go template over .From, .To and .Text: what the mobile phone
	// gets. Default "{{.Text}}"; "{{.From}}: {{.Text}}" lets the recipient
	// see, and reply to, the extension behind a link whose first word is
	// the extension.
	Text string
	// MarkerDir holds the per-message markers; MarkerAge is how long they
	// are kept (default 7 days: longer than any validity).
	MarkerDir string
	MarkerAge time.Duration
	Sync      bool
	// Accepted, when set, is told each part the network took (metrics).
	Accepted func(parts int)
	Logger   *slog.Logger
}

// DefaultText is the outbound text template when none is configured.
const DefaultText = "{{.Text}}"

// Channel delivers through one link. It is safe for concurrent use.
type Channel struct {
	cfg     Config
	text    *template.Template
	markers *markers
	log     *slog.Logger
}

// New checks cfg.
func New(cfg Config) (*Channel, error) {
	if cfg.Name == "" || cfg.Transport == nil {
		return nil, errors.New("link: no name or transport")
	}
	c, err := cfg.check()
	if err != nil {
		return nil, err
	}
	mk, err := newMarkers(c.cfg.MarkerDir, c.cfg.Sync)
	if err != nil {
		return nil, fmt.Errorf("link %s: %w", c.cfg.Name, err)
	}
	c.markers = mk
	return c, nil
}

// Check validates cfg as New does (the transport aside), without creating the
// marker folder: for `smsrouter doctor`, which must leave the system as it
// found it.
func Check(cfg Config) error {
	_, err := cfg.check()
	return err
}

// check fills in the defaults, parses and tries the text template; it
// touches nothing.
func (cfg Config) check() (*Channel, error) {
	if cfg.Name == "" {
		return nil, errors.New("link: no name")
	}
	if cfg.MarkerDir == "" {
		return nil, fmt.Errorf("link %s: no marker folder", cfg.Name)
	}
	if cfg.Source == "" {
		cfg.Source = SourceNumber
	}
	if cfg.Text == "" {
		cfg.Text = DefaultText
	}
	if cfg.MarkerAge <= 0 {
		cfg.MarkerAge = 7 * 24 * time.Hour
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	t, err := template.New("text").Option("missingkey=error").Parse(cfg.Text)
	if err != nil {
		return nil, fmt.Errorf("link %s: text template: %w", cfg.Name, err)
	}
	c := &Channel{cfg: cfg, text: t, log: cfg.Logger.With("link", cfg.Name)}
	if _, err := c.render(channels.Message{From: "1001", To: "+48600111222", Text: "x"}); err != nil {
		return nil, err
	}
	return c, nil
}

// System is the name receipts of this link are recorded under.
func System(link string) string { return "link:" + link }

func (c *Channel) render(m channels.Message) (string, error) {
	var b strings.Builder
	if err := c.text.Execute(&b, struct{ From, To, Text string }{m.From, m.To, m.Text}); err != nil {
		return "", fmt.Errorf("link %s: text template: %w", c.cfg.Name, err)
	}
	return b.String(), nil
}

// source is the sender address the network is given for a PBX sender.
func (c *Channel) source(from string) string {
	switch c.cfg.Source {
	case SourceNumber:
		return c.cfg.Number
	case SourceSender:
		if p := c.cfg.Plan.Presented(from); strings.HasPrefix(p, "+") {
			return p
		}
		return c.cfg.Number
	}
	return c.cfg.Source
}

// concatRef is the message's concatenation reference: the same on every try,
// so parts sent on different tries still join on the handset.
func concatRef(id string) int {
	h := fnv.New32a()
	h.Write([]byte(id))
	return int(h.Sum32()%255) + 1
}

// publicRefused is the sender's reason when the network refused the message
// for a reason about the message or the account.
const publicRefused = "The mobile network refused the message."

// Deliver sends m through the link, resuming after the parts an earlier try
// got accepted.
func (c *Channel) Deliver(ctx context.Context, m channels.Message) (channels.Result, error) {
	var ack *AckRequest
	text, err := m.Text, error(nil)
	if m.Acknowledges != nil {
		// A status report answering the network: its own text, not the
		// link's template, and the addresses of the message it answers.
		req, err := ParseAckRequest(m.Acknowledges)
		switch {
		case err != nil:
		case req.Link != c.cfg.Name:
			err = fmt.Errorf("acknowledgement request of link %q", req.Link)
		case c.cfg.Transport.Kind() != "smpp":
			err = fmt.Errorf("a %s link sends no acknowledgement", c.cfg.Transport.Kind())
		}
		if err != nil {
			return channels.Result{}, channels.Permanent(fmt.Errorf("link %s: %w", c.cfg.Name, err))
		}
		ack = &req
	} else if text, err = c.render(m); err != nil {
		return channels.Result{}, channels.Permanent(err)
	}
	st, err := c.markers.load(m.ID)
	if err != nil {
		return channels.Result{}, fmt.Errorf("link %s: %w", c.cfg.Name, err)
	}
	detail := map[string]any{"link": c.cfg.Name, "kind": c.cfg.Transport.Kind(), "to": m.To}
	if ack != nil {
		detail["acknowledgement"] = ack.Kind
	}
	if st.complete() {
		// Sent before a crash or a failed journal write: only the commit was missing.
		detail["already_sent"] = true
		return c.result(m, st, detail), nil
	}
	if err := c.cfg.Transport.Ready(); err != nil {
		return channels.Result{}, fmt.Errorf("link %s: %w", c.cfg.Name, err)
	}
	w, err := c.markers.open(m.ID)
	if err != nil {
		return channels.Result{}, fmt.Errorf("link %s: %w", c.cfg.Name, err)
	}
	defer func() {
		if err := w.close(); err != nil {
			c.log.Error("markers not flushed to disk", "id", m.ID, "err", err)
		}
	}()
	var validity time.Duration
	if !m.Validity.IsZero() {
		validity = time.Until(m.Validity)
		if validity < time.Minute {
			validity = time.Minute // SMSCs refuse a validity in the past; the router expires it
		}
	}
	o := Outgoing{
		From: c.source(m.From), To: m.To, Text: text, ConcatRef: concatRef(m.ID), Skip: st.skip(),
		Validity: validity, Ack: ack,
		Sending: func(part, parts int) {
			if err := w.sending(part, parts); err != nil {
				c.log.Error("cannot record a part before sending it; a crash now would leave no trace of it", "id", m.ID, "part", part, "err", err)
			}
		},
		Accepted: func(part, parts int, ref string) {
			st.accept(part, parts, ref, time.Now())
			if err := w.accepted(part, parts, ref); err != nil {
				c.log.Error("part accepted but not recorded; a retry may send it again", "id", m.ID, "part", part, "err", err)
			}
			if c.cfg.Accepted != nil {
				c.cfg.Accepted(1)
			}
		},
	}
	if ack != nil {
		o.From, o.To = ack.To.Addr, ack.From.Addr
	}
	err = c.cfg.Transport.Send(ctx, o)
	if err == nil {
		if !st.complete() {
			// The transport said yes without naming every part: nothing to match
			// receipts with, but the network has the text.
			return channels.Result{Detail: detail}, nil
		}
		return c.result(m, st, detail), nil
	}
	var se *SendError
	if !errors.As(err, &se) {
		se = &SendError{Temporary: true, Err: err}
	}
	switch {
	case se.Uncertain:
		why := se.Err.Error()
		if werr := w.uncertain(se.Part, se.Parts, why); werr != nil {
			c.log.Error("cannot record an uncertain part", "id", m.ID, "part", se.Part, "err", werr)
		}
		c.log.Warn("part sent and unanswered: it may have reached the network; the retry may deliver it twice",
			"id", m.ID, "part", se.Part, "parts", se.Parts, "err", se.Err)
		return channels.Result{}, fmt.Errorf("link %s: part %d of %d uncertain (sent, no answer: %s); it is sent again on the retry and may arrive twice",
			c.cfg.Name, se.Part, se.Parts, why)
	case se.Temporary:
		if se.Parts > 0 {
			if werr := w.notSent(se.Part, se.Parts); werr != nil {
				c.log.Error("cannot record a part as not sent", "id", m.ID, "part", se.Part, "err", werr)
			}
		}
		return channels.Result{}, fmt.Errorf("link %s: %w", c.cfg.Name, se)
	}
	if se.Parts > 0 {
		w.notSent(se.Part, se.Parts)
	}
	public := se.Public
	if public == "" {
		public = publicRefused
	}
	if accepted := st.accepted(); accepted > 0 {
		return channels.Result{}, channels.PermanentBecause(public, fmt.Errorf("link %s: %w (parts accepted before it: %d)", c.cfg.Name, se, accepted))
	}
	return channels.Result{}, channels.PermanentBecause(public, fmt.Errorf("link %s: %w", c.cfg.Name, se))
}

// result reports a message whose parts were all accepted.
func (c *Channel) result(m channels.Message, st *sendState, detail map[string]any) channels.Result {
	ids := make([]string, st.parts)
	refs := make([]channels.Ref, 0, st.parts)
	for p := 1; p <= st.parts; p++ {
		a := st.acc[p]
		ids[p-1] = a.ref
		refs = append(refs, channels.Ref{System: System(c.cfg.Name), Ref: c.refName(m.To, a.ref), Part: p, Parts: st.parts, At: a.at})
	}
	detail["parts"] = st.parts
	detail["message_ids"] = ids
	id := m.ID
	if resent := st.resent(); len(resent) > 0 {
		detail["resent_parts"] = resent
		detail["note"] = "a part was sent again after an earlier send got no answer: the phone may show it twice"
	}
	return channels.Result{Detail: detail, Refs: refs, AfterPublish: func(context.Context) error {
		// The journal has the fate now: no retry can come for it.
		return c.markers.forget(id)
	}}
}

// refName is how a part's receipt will name it: an SMSC's message id is
// unique; a modem's message reference (0-255) only with the recipient.
func (c *Channel) refName(to, ref string) string {
	if c.cfg.Transport.Kind() == "modem" {
		return ModemRef(to, ref)
	}
	return SMPPRef(ref)
}

// SMPPRef is how an SMSC's message id is recorded: without regard to case,
// as SMSCs change it between submit_sm_resp and the receipt.
func SMPPRef(id string) string { return strings.ToLower(id) }

// ModemRef is the ref of a part a modem sent: the recipient and the TP-MR.
func ModemRef(to, mr string) string { return to + "/" + mr }

// Cleanup removes markers older than MarkerAge (channels.Janitor).
func (c *Channel) Cleanup(ctx context.Context, now time.Time) error {
	return c.markers.cleanup(ctx, now.Add(-c.cfg.MarkerAge))
}

// Elsewhere is the channel of a link in a process that does not run it (a
// one-shot drain: links run in serve). It hands the message back for a try a
// moment later, which the serve process watching deferred/ picks up.
type Elsewhere struct{ Name string }

// ElsewhereDelay is how soon a message for a link another process runs is
// tried again.
const ElsewhereDelay = 2 * time.Second

// Deliver defers m to the process that runs the link.
func (e Elsewhere) Deliver(context.Context, channels.Message) (channels.Result, error) {
	return channels.Result{}, channels.RetryAfter(ElsewhereDelay,
		fmt.Errorf("link %s runs in smsrouter serve; handed over to it", e.Name))
}
