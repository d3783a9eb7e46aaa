package router

// Self-service by SMS: a person texts the self-service number and changes their
// own directory entry (router/selfservice parses the request). The sender's
// number is the key: nobody changes another number's entry. Changes use the
// same checks as `smsrouter number set`, and the journal row of the request
// records what changed, as an admin action by that number.

import (
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"strings"

	"smsrouter/channels"
	"smsrouter/internal/quiet"
	"smsrouter/router/selfservice"
)

// SelfService is the [selfservice] configuration.
type SelfService struct {
	Enabled    bool
	Number     string // the number people text, e.g. "7999"
	RequirePIN bool   // every request needs the number's PIN (numbers without one cannot use it)
}

func (s SelfService) check() error {
	if s.Enabled && !ValidNumber(s.Number) {
		return CheckNumber("[selfservice] number", s.Number)
	}
	return nil
}

// isSelfService reports whether a message to da is a self-service request.
func (r *Router) isSelfService(da string) bool {
	return r.cfg.SelfService.Enabled && da == r.selfServiceNumber()
}

// selfServiceNumber is the configured number in its canonical form.
func (r *Router) selfServiceNumber() string {
	n := r.cfg.SelfService.Number
	if r.cfg.Plan.On() {
		n = r.cfg.Plan.Normalize(n)
	}
	return n
}

// Short answers; a phone never sees Go or SQL text.
const (
	replyNoPIN    = "Self-service needs a PIN for your number. Ask the administrator to set one."
	replyWrongPIN = "Wrong or missing PIN. Send e.g. 1234 STATUS"
)

// selfService carries out one request and queues the reply. A database that
// cannot be reached defers the request (the change and the reply come later);
// every change is one the request can repeat without harm, so a retry after a
// crash does no damage.
func (r *Router) selfService(ctx context.Context, j *job) {
	j.letter = 'C'
	from := j.msg.OA
	if j.claim.depth > 0 {
		// A reply or notice to the service: answering could loop.
		j.state, j.detail = StateDelivered, map[string]any{"selfservice": "not executed: generated message"}
		return
	}
	e, err := r.dir.Lookup(ctx, from)
	if errors.Is(err, ErrUnknownNumber) {
		j.state, j.errText = StateDropped, "self-service: the sender "+from+" is not a PBX number"
		return
	}
	if err != nil {
		r.failTemporarily(j, err)
		return
	}
	detail := map[string]any{}
	reply, err := r.selfServiceReply(ctx, e, e.pref, j.text, detail)
	if err != nil {
		r.failTemporarily(j, err)
		return
	}
	art, id, err := channels.NewMessage(r.l.inbox, j.msg.DA, from, reply, j.claim.depth+1, r.now().In(r.cfg.Location))
	if err != nil {
		r.failTemporarily(j, err)
		return
	}
	art.Kind = "reply"
	detail["reply_id"] = id
	j.state = StateDelivered
	j.result = channels.Result{Artefacts: []channels.Artefact{art}}
	j.detail = map[string]any{"selfservice": detail}
}

// selfServiceReply runs the request and says what the sender is told; an
// error is a temporary failure (the database), never shown to the sender.
func (r *Router) selfServiceReply(ctx context.Context, e Entry, p pref, text string, detail map[string]any) (string, error) {
	c, err := selfservice.Parse(text)
	if pe, ok := selfservice.IsError(err); ok {
		detail["refused"] = pe.Reply
		return pe.Reply, nil
	}
	detail["command"] = string(c.Verb)
	switch {
	case p.pin == "" && r.cfg.SelfService.RequirePIN:
		detail["refused"] = "no PIN set"
		return replyNoPIN, nil
	case p.pin != "" && subtle.ConstantTimeCompare([]byte(p.pin), []byte(c.PIN)) != 1:
		detail["refused"] = "wrong PIN"
		return replyWrongPIN, nil
	}
	store := r.journal.store
	number := e.Number
	action := func(what string) { detail["admin_action"] = what + " by " + number }
	switch c.Verb {
	case selfservice.Help:
		return selfservice.Usage, nil
	case selfservice.Status:
		return r.statusText(ctx, e, p)
	case selfservice.Set:
		for _, l := range c.Letters {
			if _, err := ParseEntry(number, string(l), e.Extension); err != nil {
				detail["refused"] = err.Error()
				return fmt.Sprintf("Cannot set %c: your line is not set up for it. Ask the administrator.", l), nil
			}
		}
		if _, err := store.SetNumber(ctx, number, c.Letters[:1], e.Extension); err != nil {
			return "", fmt.Errorf("%w: self-service SET: %v", ErrDirectoryUnavailable, err)
		}
		further := make([]NumberWay, 0, len(c.Letters)-1)
		for _, l := range []byte(c.Letters[1:]) {
			further = append(further, NumberWay{Letter: l})
		}
		if err := store.SetWays(ctx, number, further); err != nil {
			return "", fmt.Errorf("%w: self-service SET: %v", ErrDirectoryUnavailable, err)
		}
		action("number set " + commaLetters(c.Letters))
		return "Done: messages reach you by " + commaLetters(c.Letters) + ".", nil
	case selfservice.Lang:
		_, voice, err := store.VoiceOptions(ctx, number)
		if err != nil {
			return "", err
		}
		if err := store.SetVoiceOptions(ctx, number, c.Lang, voice); err != nil {
			return "", fmt.Errorf("%w: self-service LANG: %v", ErrDirectoryUnavailable, err)
		}
		if c.Lang == "" {
			action("voice language default")
			return "Done: messages are read out in the default language.", nil
		}
		action("voice language " + c.Lang)
		return "Done: messages are read out in " + c.Lang + ".", nil
	case selfservice.Quiet:
		start, end := quiet.Clock(c.Window.Start), quiet.Clock(c.Window.End)
		msg := "Done: quiet hours " + start + "-" + end + "."
		switch {
		case c.Default:
			start, end, msg = "", "", "Done: the usual quiet hours apply ("+r.cfg.Quiet.Default.String()+")."
		case c.Window.Off():
			start, end, msg = quietOff, "", "Done: no quiet hours."
		}
		if err := store.setQuiet(ctx, number, start, end); err != nil {
			return "", err
		}
		action("quiet hours " + strings.TrimSuffix(strings.TrimPrefix(msg, "Done: "), "."))
		return msg, nil
	}
	return selfservice.Usage, nil
}

// statusText is what STATUS answers: the ways, language and quiet hours.
func (r *Router) statusText(ctx context.Context, e Entry, p pref) (string, error) {
	store := r.journal.store
	lang, _, err := store.VoiceOptions(ctx, e.Number)
	if err != nil {
		return "", err
	}
	if lang == "" {
		lang = "default"
	}
	letters := string(e.Letter)
	for _, w := range e.Further {
		letters += string(w.Letter)
	}
	if e.Problem != "" {
		letters = "not set up"
	}
	w, loc := r.quietFor(p)
	q := w.String()
	if !w.Off() {
		q += " " + loc.String()
	}
	return fmt.Sprintf("%s: SET %s, LANG %s, QUIET %s", e.Number, commaLetters(letters), lang, q), nil
}

func commaLetters(s string) string { return strings.Join(strings.Split(s, ""), ",") }

// setQuiet stores a number's own quiet window ("", "" = the default; "off").
func (s *Store) setQuiet(ctx context.Context, number, start, end string) error {
	q := `INSERT INTO smsrouter_number_pref (Account, QuietStart, QuietEnd) VALUES (?, ?, ?)
	      ON CONFLICT(Account) DO UPDATE SET QuietStart = excluded.QuietStart, QuietEnd = excluded.QuietEnd`
	if s.Dialect == "mysql" {
		q = `INSERT INTO smsrouter_number_pref (Account, QuietStart, QuietEnd) VALUES (?, ?, ?)
		     ON DUPLICATE KEY UPDATE QuietStart = VALUES(QuietStart), QuietEnd = VALUES(QuietEnd)`
	}
	if _, err := s.DB.ExecContext(ctx, q, number, start, end); err != nil {
		return fmt.Errorf("%w: quiet hours of %s: %v", ErrDirectoryUnavailable, number, err)
	}
	return nil
}
