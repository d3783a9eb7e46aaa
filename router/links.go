package router

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"time"
	"unicode"

	"smsrouter/channels"
)

// LetterLink is the journal's letter for a message handed to a mobile link: it
// has no directory row, its route chose the link.
const LetterLink = 'L'

// Route sends numbers the directory does not know to a mobile link. A route with
// neither Prefix nor Pattern matches every number: the default, written last.
type Route struct {
	Prefix  string         // the canonical number starts with it ("+48")
	Pattern *regexp.Regexp // or the whole canonical number matches it
	Link    string         // the link's name
}

// Matches reports whether the route takes the canonical number n.
func (rt Route) Matches(n string) bool {
	switch {
	case rt.Pattern != nil:
		m := rt.Pattern.FindStringIndex(n)
		return m != nil && m[0] == 0 && m[1] == len(n)
	case rt.Prefix != "":
		return strings.HasPrefix(n, rt.Prefix)
	}
	return true
}

func (rt Route) String() string {
	switch {
	case rt.Pattern != nil:
		return fmt.Sprintf("pattern %q", rt.Pattern.String())
	case rt.Prefix != "":
		return fmt.Sprintf("prefix %q", rt.Prefix)
	}
	return "default (every number)"
}

// MatchRoute returns the index of the first route that takes n.
func MatchRoute(routes []Route, n string) (int, bool) {
	for i, rt := range routes {
		if rt.Matches(n) {
			return i, true
		}
	}
	return 0, false
}

// Inbound says where messages sent to one of a link's own numbers go: a fixed
// PBX number, or the number in the text's first word ("1001 hello" → 1001,
// which then gets "hello").
type Inbound struct {
	Link      string
	To        string // fixed recipient, canonical
	FirstWord bool
	Fallback  string // FirstWord: the recipient when the first word is not a number
}

func (in Inbound) String() string {
	switch {
	case in.FirstWord && in.Fallback != "":
		return "to the PBX number in the text's first word, else to " + in.Fallback
	case in.FirstWord:
		return "to the PBX number in the text's first word"
	}
	return "to " + in.To
}

func checkRouting(routes []Route, links map[string]channels.Channel, inbound map[string]Inbound) error {
	for i, rt := range routes {
		if rt.Link == "" {
			return fmt.Errorf("route %d names no link", i+1)
		}
		if links != nil && links[rt.Link] == nil {
			return fmt.Errorf("route %d: no link named %q", i+1, rt.Link)
		}
	}
	for n, in := range inbound {
		if !ValidNumber(n) {
			return fmt.Errorf("link %s: inbound number %q is not a number", in.Link, n)
		}
		if !in.FirstWord && !ValidNumber(in.To) {
			return fmt.Errorf("link %s: inbound recipient %q is not a number", in.Link, in.To)
		}
		if in.Fallback != "" && !ValidNumber(in.Fallback) {
			return fmt.Errorf("link %s: inbound fallback %q is not a number", in.Link, in.Fallback)
		}
	}
	return nil
}

// normalize reads the recipient and the sender with the numbering plan: the
// recipient in its canonical form (what the directory and the routes compare),
// the sender as PBX phones are shown it, a form they can reply to. What was
// written is kept in the journal when it differs.
func (r *Router) normalize(j *job) {
	p := r.cfg.Plan
	if !p.On() {
		return
	}
	if da := p.Normalize(j.msg.DA); da != j.msg.DA && ValidNumber(da) {
		j.fact("to_as_written", j.msg.DA)
		j.msg.DA = da
	}
	if oa := p.Shown(p.Normalize(j.msg.OA)); oa != j.msg.OA && ValidNumber(oa) {
		j.fact("from_as_written", j.msg.OA)
		j.msg.OA = oa
	}
}

// mapInbound readdresses a message sent to a mobile link's own number to the PBX
// number the link's configuration names. Such a message is never routed back out
// to a link: smsrouter is no relay between mobile phones.
func (r *Router) mapInbound(j *job) {
	in, ok := r.cfg.Inbound[j.msg.DA]
	if !ok {
		return
	}
	j.inbound = true
	linkNumber := j.msg.DA
	fact := map[string]any{"link": in.Link, "to": linkNumber, "rule": in.String()}
	j.fact("inbound", fact)
	if !in.FirstWord {
		j.msg.DA = in.To
		return
	}
	word, rest := firstWord(j.text)
	if n := r.cfg.Plan.Normalize(word); ValidNumber(n) {
		j.msg.DA, j.text = n, rest
		fact["first_word"] = word
		return
	}
	if in.Fallback != "" {
		j.msg.DA = in.Fallback
		return
	}
	j.public = `Start the message with the number you want to reach, for example "1001 Hello".`
	r.settleUndeliverable(j, StateBounced, "failed", fmt.Sprintf("sent to %s, whose first word is the extension, but the first word %q is not a number", linkNumber, clip(word, 24)))
}

// firstWord splits "1001: hello there" into "1001" and "hello there". Trailing
// punctuation on the word is dropped, so a reply that kept the "1001: " a link
// put before the text finds the extension again.
func firstWord(text string) (word, rest string) {
	t := strings.TrimLeftFunc(text, unicode.IsSpace)
	i := strings.IndexFunc(t, unicode.IsSpace)
	if i < 0 {
		i = len(t)
	}
	word = strings.TrimRight(t[:i], ":;,.-")
	rest = strings.TrimLeftFunc(t[i:], unicode.IsSpace)
	return word, rest
}

// deliverByRoute hands a message for a number the directory does not know to
// the mobile link that carries it: the link `smsrouter send --via` named, or
// the first route that matches. It reports false when no link takes it.
func (r *Router) deliverByRoute(ctx context.Context, j *job) bool {
	if len(r.cfg.Links) == 0 || j.inbound {
		return false
	}
	name := readVia(r.l.work, j.claim.id)
	why := "send --via " + name
	if name == "" {
		if !r.cfg.Plan.Outside(j.msg.DA) {
			return false // a local number: an unknown extension, not a mobile one
		}
		i, ok := MatchRoute(r.cfg.Routes, j.msg.DA)
		if !ok {
			return false
		}
		name, why = r.cfg.Routes[i].Link, fmt.Sprintf("route %d: %s", i+1, r.cfg.Routes[i])
	}
	j.letter = LetterLink
	j.via = name
	j.fact("link", name)
	j.fact("route", why)
	ch, ok := r.cfg.Links[name]
	if !ok {
		r.settleUndeliverable(j, StateBounced, "noservice", fmt.Sprintf("no mobile link named %q is configured", name))
		return true
	}
	m := channels.Message{
		ID: j.claim.id, From: j.msg.OA, To: j.msg.DA, Text: j.text, Received: j.received, Sent: j.msg.SCTS,
		Letter: LetterLink, Extension: name, Attempt: j.claim.attempts + 1, Validity: j.validity,
		Depth: j.claim.depth,
	}
	if j.claim.depth > 0 {
		// A status report answering the network's acknowledgement request (netack.go).
		m.Acknowledges = readAnswer(r.l.work, j.claim.id)
		j.answers = m.Acknowledges != nil
	}
	res, err := ch.Deliver(ctx, m)
	switch {
	case err == nil:
		j.state, j.result, j.detail = StateDelivered, res, res.Detail
	case channels.IsPermanent(err):
		j.public = channels.PublicReason(err)
		r.settleUndeliverable(j, StateBounced, "failed", err.Error())
	default:
		r.failTemporarily(j, err)
	}
	return true
}

// viaDir holds one file per message `smsrouter send --via LINK` queued, named by
// the message's id and holding the link's name. The spool file itself has no
// room for it, and the file outlives retries in deferred/.
func viaDir(work string) string { return filepath.Join(work, "via") }

func readVia(work, id string) string {
	b, err := os.ReadFile(filepath.Join(viaDir(work), id))
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(b))
}

// forgetVia removes a finished message's via file.
func forgetVia(work, id string) {
	os.Remove(filepath.Join(viaDir(work), id))
}

// SubmitVia queues a message like SubmitTo, to go out through the named mobile
// link whatever the routes say (`smsrouter send --via`). The via file is written
// first: a crash in between leaves a stray file, never a message without it.
func SubmitVia(work, link, from, to, text string, now time.Time) (string, error) {
	if !channels.ValidLinkName(link) {
		return "", fmt.Errorf("link name %q: use a-z, 0-9, - and _", link)
	}
	dir := viaDir(work)
	if err := os.MkdirAll(dir, 0o770); err != nil {
		return "", fmt.Errorf("queue message: %w", err)
	}
	return SubmitMessage(InboxDir(work), Submission{From: from, To: to, Text: text, Accepted: func(id string) error {
		if err := writeNew(filepath.Join(dir, id), []byte(link+"\n"), 0o640, false); err != nil {
			return fmt.Errorf("queue message: %w", err)
		}
		return nil
	}}, now)
}

// Way is how a message to one number would go now, for `smsrouter route`.
type Way struct {
	Number    string // as asked
	Canonical string // after the numbering plan
	Plan      string // how the plan read it
	Entry     *Entry // the directory's row, when there is one
	Inbound   *Inbound
	Route     int // 1-based index of the matching route, 0 when none
	RouteText string
	Link      string
	Unknown   bool // nothing takes it: the sender would get the unknown notice
	Why       string
}

// ErrNotNumber is returned by Explain for something that is not a number.
var ErrNotNumber = errors.New("not a phone number")

// Explain says which way a message to number would go now and why, without
// sending anything: the numbering plan, the directory, a link's own number, the
// routes.
func Explain(ctx context.Context, cfg Config, dir Directory, number string) (Way, error) {
	if err := CheckNumber("number", number); err != nil {
		return Way{}, fmt.Errorf("%w: %w", ErrNotNumber, err)
	}
	w := Way{Number: number, Canonical: cfg.Plan.Normalize(number), Plan: cfg.Plan.Explain(number)}
	if in, ok := cfg.Inbound[w.Canonical]; ok {
		w.Inbound = &in
		w.Why = fmt.Sprintf("%s is a number of the mobile link %s: messages to it go %s", w.Canonical, in.Link, in)
		return w, nil
	}
	e, err := dir.Lookup(ctx, w.Canonical)
	switch {
	case err == nil:
		w.Entry = &e
		if e.Problem != "" {
			w.Why = "in PBXNumbers, but the row cannot be used (" + e.Problem + "): the sender would get the unreachable notice"
		} else {
			w.Why = fmt.Sprintf("in PBXNumbers with letter %c: %s", e.Letter, e.Extension)
		}
		return w, nil
	case !errors.Is(err, ErrUnknownNumber):
		return w, err
	}
	switch {
	case !cfg.Plan.Outside(w.Canonical):
		w.Unknown = true
		w.Why = "not in PBXNumbers, and a local number (not in international form) is never routed to a mobile link: the sender would get the unknown notice"
		return w, nil
	case len(cfg.Routes) == 0:
		w.Unknown = true
		w.Why = "not in PBXNumbers and no [[route]] is configured: the sender would get the unknown notice"
		return w, nil
	}
	i, ok := MatchRoute(cfg.Routes, w.Canonical)
	if !ok {
		w.Unknown = true
		w.Why = "not in PBXNumbers and no route matches: the sender would get the unknown notice"
		return w, nil
	}
	w.Route, w.RouteText, w.Link = i+1, cfg.Routes[i].String(), cfg.Routes[i].Link
	w.Why = fmt.Sprintf("not in PBXNumbers; route %d (%s) sends it through the mobile link %s", i+1, cfg.Routes[i], cfg.Routes[i].Link)
	return w, nil
}
