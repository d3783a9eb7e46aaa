package fastagi

// callresult: what the generated outcome contexts (`smsrouter dialplan` with
// [dialplan] outcome) report about smsrouter's own calls once they end: the
// hangup handler of an answered call sends the fax's or the playback's
// result, the failed extension of a call nobody answered sends Asterisk's
// dial result. The handler only records it (router.WriteCallResult); the
// evidence reader decides what it means. It runs on a dead channel, so it
// sends no command: everything arrives as AGI arguments.

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"smsrouter/asteriskconf/agi"
	"smsrouter/router"
)

// callResultLookup bounds the journal check of a result's id: a hangup
// handler holds an Asterisk channel while it waits.
const callResultLookup = time.Second

// maxResultError bounds the FAXERROR kept (spandsp's longest is ~60 bytes).
const maxResultError = 200

// ParseCallResultArgs reads callresult's AGI arguments as the outcome
// contexts send them: message id, attempt (AST_OUTGOING_ATTEMPT), attempts
// in all (SMSROUTER_TRIES), what ("dial", "fax", "voice", "sms"), status
// (REASON, FAXSTATUS, PLAYBACKSTATUS), then for a fax FAXPAGES and FAXERROR,
// URI-encoded; a FAXERROR that was not encoded and held commas arrives split
// into several arguments, which are joined again.
func ParseCallResultArgs(args []string, now time.Time) (router.CallResult, error) {
	if len(args) < 5 {
		return router.CallResult{}, fmt.Errorf("%d arguments, want at least 5 (id, attempt, tries, what, status)", len(args))
	}
	args = slices.Clone(args)
	for i := range min(len(args), 6) { // not the error: its pieces keep their blanks
		args[i] = strings.TrimSpace(args[i])
	}
	r := router.CallResult{ID: args[0], What: strings.ToLower(args[3]), Status: strings.ToUpper(args[4]), At: now}
	var err error
	if r.Attempt, err = strconv.Atoi(args[1]); err != nil {
		return router.CallResult{}, fmt.Errorf("attempt %q is not a number", clip(args[1]))
	}
	if args[2] != "" {
		if r.Tries, err = strconv.Atoi(args[2]); err != nil {
			return router.CallResult{}, fmt.Errorf("tries %q is not a number", clip(args[2]))
		}
	}
	if r.What == router.ResultFax {
		if len(args) > 5 && args[5] != "" {
			if r.Pages, err = strconv.Atoi(args[5]); err != nil {
				return router.CallResult{}, fmt.Errorf("pages %q is not a number", clip(args[5]))
			}
		}
		if len(args) > 6 {
			r.Error = resultText(strings.Join(args[6:], ","))
		}
	}
	if err := r.Check(); err != nil {
		return router.CallResult{}, err
	}
	return r, nil
}

// resultText decodes a URI-encoded FAXERROR and keeps it to one short line
// of valid UTF-8.
func resultText(s string) string {
	if d, err := url.PathUnescape(s); err == nil {
		s = d
	}
	s = strings.ToValidUTF8(s, "?")
	s = strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return ' '
		}
		return r
	}, s)
	for len(s) > maxResultError {
		_, n := utf8.DecodeLastRuneInString(s)
		s = s[:len(s)-n]
	}
	return strings.TrimSpace(s)
}

func clip(s string) string { return shown(s) }

// CallResult records one report of an outcome context. A request that does
// not parse, or names a message the journal does not know, is logged and
// dropped: nothing is sent to the channel either way (it is hung up).
func (h *Service) CallResult(ctx context.Context, s *agi.Session) error {
	start := time.Now()
	r, err := ParseCallResultArgs(s.Env.Args(), h.cfg.Now())
	if err != nil {
		h.log.Warn(logPrefix+"callresult refused", "uniqueid", s.Env.UniqueID(), "channel", shown(s.Env.Channel()), "err", err)
		return nil
	}
	if h.cfg.Journal != nil {
		lctx, cancel := context.WithTimeout(ctx, callResultLookup)
		_, err := h.cfg.Journal.Get(lctx, r.ID)
		cancel()
		switch {
		case errors.Is(err, sql.ErrNoRows):
			h.log.Warn(logPrefix+"callresult for an unknown message", "uniqueid", s.Env.UniqueID(), "id", r.ID, "what", r.What, "status", r.Status)
			return nil
		case err != nil:
			// A sick journal is no reason to lose what the PBX saw: the
			// evidence reader checks the id again.
			h.log.Debug(logPrefix+"callresult: journal not read", "id", r.ID, "err", err)
		}
	}
	written, err := router.WriteCallResult(h.cfg.Results, r, h.cfg.Sync)
	if err != nil {
		h.log.Error(logPrefix+"callresult not recorded", "uniqueid", s.Env.UniqueID(), "id", r.ID, "err", err)
		return nil
	}
	attrs := []any{"uniqueid", s.Env.UniqueID(), "id", r.ID, "what", r.What, "status", r.Status, "attempt", r.Attempt, "tries", r.Tries, "took", time.Since(start)}
	if r.What == router.ResultFax {
		attrs = append(attrs, "pages", r.Pages, "error", r.Error)
	}
	if !written {
		attrs = append(attrs, "kept", "a later attempt's result")
	}
	h.log.Info(logPrefix+"callresult", attrs...)
	return nil
}
