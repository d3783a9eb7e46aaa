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
	"time"

	"smsrouter/channels"
	"smsrouter/internal/quiet"
	"smsrouter/router/selfservice"
)

// SelfService is the [selfservice] configuration.
type SelfService struct {
	Enabled    bool
	Number     string // the number people text, e.g. "7999"
	RequirePIN bool   // every request needs the number's PIN (numbers without one cannot use it)
	// PINTries wrong PINs within PINWindow lock a number out of self-service
	// for PINLockout; defaults 5, 15m, 1h. Negative PINTries: no lockout.
	PINTries   int
	PINWindow  time.Duration
	PINLockout time.Duration
	// FirstPINBySMS lets a number without a PIN set one by SMS (PIN 1234).
	// Off by default: anyone holding the phone could lock its owner out.
	FirstPINBySMS bool
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
	replyNoPIN      = "Self-service needs a PIN for your number. Ask the administrator to set one."
	replyWrongPIN   = "Wrong or missing PIN. Send e.g. 1234 STATUS"
	replyNoFirstPIN = "Your number has no PIN, and one cannot be set by SMS here. Ask the administrator."
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
	store := r.journal.store
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
	until, lockID, err := store.pinLock(ctx, from)
	if err != nil {
		r.failTemporarily(j, err)
		return
	}
	now := r.now()
	var reply string
	switch {
	case now.Before(until) && lockID == j.claim.id:
		// The request that locked the number, retried: the same answer.
		_, loc := r.quietFor(e.pref)
		reply = lockoutReply(until, now, loc)
		detail["refused"] = "wrong PIN; locked out"
	case now.Before(until):
		// Silence while locked: the lock must not become a way to make the
		// router text a phone on someone's behalf.
		j.state = StateDropped
		j.errText = "self-service: " + from + " is locked out after too many wrong PINs until " +
			until.In(r.cfg.Location).Format("2006-01-02 15:04") + "; not executed, not answered"
		j.detail = map[string]any{"selfservice": map[string]any{"refused": "locked out"}}
		return
	default:
		if reply, err = r.selfServiceReply(ctx, j.claim.id, e, e.pref, j.text, detail); err != nil {
			r.failTemporarily(j, err)
			return
		}
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
func (r *Router) selfServiceReply(ctx context.Context, id string, e Entry, p pref, text string, detail map[string]any) (string, error) {
	c, err := selfservice.Parse(text)
	if pe, ok := selfservice.IsError(err); ok {
		detail["refused"] = pe.Reply
		return pe.Reply, nil
	}
	detail["command"] = string(c.Verb)
	store := r.journal.store
	number := e.Number
	action := func(what string) { detail["admin_action"] = what + " by " + number }
	ss := r.cfg.SelfService
	if c.Verb == selfservice.Pin {
		// This very request may have changed the PIN before a crash kept its
		// fate from the journal: its retry must not count as a wrong guess.
		done, err := store.pinChangedBy(ctx, number, id)
		if err != nil {
			return "", err
		}
		if done {
			action("PIN changed")
			return "Done: your PIN is changed. Put it first in every request from now on.", nil
		}
	}
	switch {
	case p.pin == "" && c.Verb == selfservice.Pin:
		if !ss.FirstPINBySMS || c.PINOff {
			detail["refused"] = "no PIN set; a first PIN by SMS is not allowed"
			return replyNoFirstPIN, nil
		}
		if err := store.SetPIN(ctx, number, c.NewPIN, "selfservice:"+number, pinRequest(id), r.now()); err != nil {
			return "", err
		}
		action("PIN set")
		return "Done: your PIN is set. Put it first in every request from now on.", nil
	case p.pin == "" && ss.RequirePIN:
		detail["refused"] = "no PIN set"
		return replyNoPIN, nil
	case p.pin != "" && c.PIN == "":
		detail["refused"] = "missing PIN"
		return replyWrongPIN, nil
	case p.pin != "" && subtle.ConstantTimeCompare([]byte(p.pin), []byte(c.PIN)) != 1:
		detail["refused"] = "wrong PIN"
		if ss.pinTries() < 0 {
			return replyWrongPIN, nil
		}
		now := r.now()
		until, locked, err := store.pinFailed(ctx, number, id, now, ss.pinTries(), ss.pinWindow(), ss.pinLockout())
		if err != nil {
			return "", err
		}
		if !locked {
			return replyWrongPIN, nil
		}
		detail["refused"] = "wrong PIN; locked out"
		detail["admin_action"] = "self-service locked until " + until.In(r.cfg.Location).Format("2006-01-02 15:04") +
			" after too many wrong PINs from " + number
		_, loc := r.quietFor(e.pref)
		return lockoutReply(until, now, loc), nil
	case p.pin != "":
		if err := store.pinPassed(ctx, number); err != nil {
			return "", err
		}
	}
	switch c.Verb {
	case selfservice.Pin:
		if c.PINOff {
			if ss.RequirePIN {
				detail["refused"] = "PIN required"
				return "A PIN is required here: you can change it (1234 PIN 5678) but not remove it.", nil
			}
			if err := store.SetPIN(ctx, number, "", "selfservice:"+number, pinRequest(id), r.now()); err != nil {
				return "", err
			}
			action("PIN removed")
			return "Done: your PIN is removed.", nil
		}
		if err := store.SetPIN(ctx, number, c.NewPIN, "selfservice:"+number, pinRequest(id), r.now()); err != nil {
			return "", err
		}
		action("PIN changed")
		return "Done: your PIN is changed. Put the new one first from now on.", nil
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
		further := make([]NumberWay, 0, len(c.Letters)-1)
		for _, l := range []byte(c.Letters[1:]) {
			further = append(further, NumberWay{Letter: l})
		}
		// One transaction: never the new first letter with the old further ways.
		if _, err := store.SetNumberWays(ctx, number, c.Letters[:1], e.Extension, further); err != nil {
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
