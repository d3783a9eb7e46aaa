package fastagi

// The FastAGI handlers: the dialplan's two questions ("which letter does this
// number have?" and "queue this message") answered by one long-running
// process instead of a Python process per call. The wire protocol lives in
// asteriskconf/agi; this file only decides what to ask and what to answer.

import (
	"context"
	"database/sql"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"smsrouter/asteriskconf/agi"
	"smsrouter/router"
)

// Channel variables the handlers set. The dialplan branches on them.
const (
	VarChanOpt = "MSG_CHAN_OPT"     // chaninfo: the letter, ChanUnknown or ChanError
	VarChanExt = "MSG_CHAN_EXT"     // chaninfo: the Extension ("" unless found)
	VarStatus  = "SMSROUTER_STATUS" // postsms/route: see the Status constants
	VarID      = "SMSROUTER_ID"     // postsms/route: the journal id ("" unless queued)
	VarReason  = "SMSROUTER_REASON" // postsms/route: why, when not QUEUED/DELIVERED
	VarFrom    = "SMSROUTER_FROM"   // postsms/route: the sender's number as parsed ("" if none)
	VarBody    = "MSG_B64"          // postsms/route read: the body, Base64 of UTF-8
	VarMsgFrom = "MESSAGE_FROM"     // postsms/route read: MESSAGE(from) as the dialplan saved it
	VarSMSOA   = "SMS_OA"           // postsms/route read with argument SMS
	VarSMSDA   = "SMS_DA"           // postsms/route read with argument SMS
	msgFromFn  = "MESSAGE(from)"    // read when MESSAGE_FROM is not set
	argSMSForm = "SMS"              // first AGI argument selecting SMS_OA/SMS_DA
	queryVar   = "var"              // chaninfo?var=NAME
	logPrefix  = "agi "             // log message prefix: "agi chaninfo" etc.
	maxShown   = 40                 // characters of a hostile value shown in a log line
	pollMin    = 10 * time.Millisecond
	pollMax    = 200 * time.Millisecond
)

// chaninfo answers besides a letter. An invalid number (not an optional + and
// at most 19 digits, e.g. "../../x" or a SIP user name) is answered ChanUnknown:
// it can never be in a routable directory entry, so for the dialplan it is
// "no such number", and a distinct value would only add a branch that does the
// same thing. The log line says it was invalid.
const (
	ChanUnknown = "U" // no such number (or not a number at all)
	ChanError   = "E" // the directory is unreachable: try later, do not tell the sender "no such number"
)

// Statuses set in SMSROUTER_STATUS. route additionally sets the journal state
// upper-cased (DELIVERED, DEFERRED, BOUNCED, EXPIRED, REJECTED, DROPPED).
const (
	StatusQueued   = "QUEUED"   // written into the spool; the router has it
	StatusRejected = "REJECTED" // bad sender, recipient or body; nothing queued; see SMSROUTER_REASON
	StatusError    = "ERROR"    // the spool could not be written (disk full…); nothing queued; try later
	StatusPending  = "PENDING"  // route: queued, but no decision within the route timeout
)

// AGI handler defaults; see Config.
const (
	DefaultRouteTimeout = 5 * time.Second
	// DefaultMaxBodyBytes bounds a decoded body: the longest text Submit
	// accepts, at four bytes per character.
	DefaultMaxBodyBytes = 4 * router.MaxSubmitText
)

// Config is what the FastAGI handlers need.
type Config struct {
	Directory router.Directory // chaninfo's answers
	Journal   *router.Journal  // route waits on it; without it route answers PENDING at once
	Inbox     string           // the folder postsms queues into (router.InboxDir, Router.Inbox)
	// Results is the folder callresult records into (router.CallResultsDir);
	// empty: no callresult handler.
	Results string
	Sync    bool // fsync what callresult records
	// RouteTimeout bounds how long route waits for the router's decision
	// (DefaultRouteTimeout). The dialplan holds a call meanwhile.
	RouteTimeout time.Duration
	// MaxBodyBytes bounds the decoded MSG_B64 (DefaultMaxBodyBytes).
	MaxBodyBytes int
	// LookupCache keeps chaninfo answers this long (0: none, every request
	// reads the directory). DESIGN.md allows "a cache of a few seconds": an
	// admin's UPDATE then shows after at most this long. Only definite
	// answers are cached, never "unreachable".
	LookupCache time.Duration
	Log         *slog.Logger     // one line per request (slog.Default when nil)
	Now         func() time.Time // time.Now when nil
}

// Service answers the dialplan's FastAGI requests; see Handlers.
type Service struct {
	cfg   Config
	log   *slog.Logger
	cache *lookupCache
}

// New checks cfg and fills in the defaults.
func New(cfg Config) (*Service, error) {
	if cfg.Directory == nil {
		return nil, errors.New("agi handlers: no directory")
	}
	if cfg.Inbox == "" {
		return nil, errors.New("agi handlers: no inbox folder")
	}
	if cfg.RouteTimeout <= 0 {
		cfg.RouteTimeout = DefaultRouteTimeout
	}
	if cfg.MaxBodyBytes <= 0 {
		cfg.MaxBodyBytes = DefaultMaxBodyBytes
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	h := &Service{cfg: cfg, log: cfg.Log}
	if h.log == nil {
		h.log = slog.Default()
	}
	if cfg.LookupCache > 0 {
		h.cache = &lookupCache{ttl: cfg.LookupCache, now: cfg.Now, m: map[string]cacheEntry{}}
	}
	return h, nil
}

// Handlers maps script names to handlers, for agi.Server.Handlers:
// chaninfo, postsms and route, and callresult with a Results folder.
func (h *Service) Handlers() map[string]agi.Handler {
	m := map[string]agi.Handler{
		"chaninfo": agi.HandlerFunc(h.Chaninfo),
		"postsms":  agi.HandlerFunc(h.PostSMS),
		"route":    agi.HandlerFunc(h.Route),
	}
	if h.cfg.Results != "" {
		m["callresult"] = agi.HandlerFunc(h.CallResult)
	}
	return m
}

// Chaninfo sets MSG_CHAN_OPT and MSG_CHAN_EXT for a number: by default
// ${EXTEN}; with ?var=NAME, or with a first AGI argument NAME (as the old
// agiGetChanInfo.py took it), the value of channel variable NAME.
func (h *Service) Chaninfo(ctx context.Context, s *agi.Session) error {
	start := time.Now()
	number, source := s.Env.Extension(), "EXTEN"
	name := s.Query.Get(queryVar)
	if name == "" {
		if arg, ok := s.Env.Arg(1); ok {
			name = strings.TrimSpace(arg)
		}
	}
	if name != "" {
		source = name
		v, _, err := s.GetVariable(ctx, name)
		if err != nil {
			h.logFailure("chaninfo", s, start, err)
			return err
		}
		number = v
	}
	opt, ext, why := h.lookup(ctx, number)
	if err := s.SetVariable(ctx, VarChanOpt, opt); err != nil {
		h.logFailure("chaninfo", s, start, err)
		return err
	}
	if err := s.SetVariable(ctx, VarChanExt, ext); err != nil {
		h.logFailure("chaninfo", s, start, err)
		return err
	}
	level := slog.LevelInfo
	if opt == ChanError {
		level = slog.LevelWarn
	}
	if !h.log.Enabled(ctx, level) {
		return nil // the attributes below cost a dozen allocations
	}
	attrs := []any{"uniqueid", s.Env.UniqueID(), "source", source, "number", shown(number), "letter", opt, "extension", ext, "took", time.Since(start)}
	if why != "" {
		attrs = append(attrs, "reason", why)
	}
	h.log.Log(ctx, level, logPrefix+"chaninfo", attrs...)
	return nil
}

// lookup returns chaninfo's answer for number and, when not a letter, why.
func (h *Service) lookup(ctx context.Context, number string) (opt, ext, why string) {
	if err := router.CheckNumber("number", number); err != nil {
		return ChanUnknown, "", err.Error()
	}
	if e, ok := h.cache.get(number); ok {
		return e.opt, e.ext, e.why
	}
	e, err := h.cfg.Directory.Lookup(ctx, number)
	var ce cacheEntry
	switch {
	case err == nil && e.Problem == "":
		ce = cacheEntry{opt: string(e.Letter), ext: e.Extension}
	case err == nil:
		// A row the router would bounce (NULL, no letter, an Extension that
		// cannot work): the dialplan must not dial it either.
		ce = cacheEntry{opt: ChanUnknown, why: e.Problem}
	case errors.Is(err, router.ErrUnknownNumber):
		ce = cacheEntry{opt: ChanUnknown, why: "unknown number"}
	default:
		// Unreachable (router.ErrDirectoryUnavailable) or anything unforeseen: never
		// claim "no such number" without a definite answer.
		return ChanError, "", err.Error()
	}
	h.cache.put(number, ce)
	return ce.opt, ce.ext, ce.why
}

// PostSMS queues a message into the spool and sets SMSROUTER_STATUS to QUEUED
// (with SMSROUTER_ID), REJECTED (with SMSROUTER_REASON) or ERROR. The sender
// and recipient come from MESSAGE_FROM (a SIP From value such as
// `"Handset 1000" <sip:1000@127.0.0.1>`, or MESSAGE(from) when unset) and
// ${EXTEN}, or from SMS_OA and SMS_DA when the first AGI argument is SMS; the
// body from MSG_B64 (Base64 of UTF-8; line breaks are kept, CRLF becomes LF).
func (h *Service) PostSMS(ctx context.Context, s *agi.Session) error {
	start := time.Now()
	sub, err := h.queue(ctx, s)
	if err != nil {
		h.logFailure("postsms", s, start, err)
		return err
	}
	if err := h.setResult(ctx, s, sub.status, sub.id, sub.reason, sub.from); err != nil {
		h.logFailure("postsms", s, start, err)
		return err
	}
	h.logSubmission(ctx, "postsms", s, sub, sub.status, start)
	return nil
}

// Route queues like PostSMS, then waits up to the route timeout for the
// router's decision and sets SMSROUTER_STATUS to the journal state upper-cased
// (DELIVERED, DEFERRED, BOUNCED with the reason in SMSROUTER_REASON, …), or
// PENDING when none came in time. The message stays queued either way.
func (h *Service) Route(ctx context.Context, s *agi.Session) error {
	start := time.Now()
	sub, err := h.queue(ctx, s)
	if err != nil {
		h.logFailure("route", s, start, err)
		return err
	}
	status, reason := sub.status, sub.reason
	if status == StatusQueued {
		status, reason = h.await(ctx, sub.id)
	}
	if err := h.setResult(ctx, s, status, sub.id, reason, sub.from); err != nil {
		h.logFailure("route", s, start, err)
		return err
	}
	sub.reason = reason
	h.logSubmission(ctx, "route", s, sub, status, start)
	return nil
}

// submission is what queue did.
type submission struct {
	status, id, reason string
	from, to           string
	chars              int
}

// queue reads the message from the channel and writes it into the spool. The
// error is the session's (the channel is gone); a bad message is a status.
func (h *Service) queue(ctx context.Context, s *agi.Session) (submission, error) {
	var sub submission
	var rawFrom, rawTo string
	if args := s.Env.Args(); len(args) > 0 && strings.EqualFold(strings.TrimSpace(args[0]), argSMSForm) {
		var err error
		if rawFrom, _, err = s.GetVariable(ctx, VarSMSOA); err != nil {
			return sub, err
		}
		if rawTo, _, err = s.GetVariable(ctx, VarSMSDA); err != nil {
			return sub, err
		}
	} else {
		v, ok, err := s.GetVariable(ctx, VarMsgFrom)
		if err != nil {
			return sub, err
		}
		if !ok {
			if v, _, err = s.GetVariable(ctx, msgFromFn); err != nil {
				return sub, err
			}
		}
		rawFrom, rawTo = v, s.Env.Extension()
	}
	b64, _, err := s.GetVariable(ctx, VarBody)
	if err != nil {
		return sub, err
	}
	sub.from, sub.to = AddressNumber(rawFrom), strings.TrimSpace(rawTo)
	if e := router.CheckNumber("sender", sub.from); e != nil {
		sub.from = ""
		return rejected(sub, e.Error()), nil
	}
	if e := router.CheckNumber("recipient", sub.to); e != nil {
		return rejected(sub, e.Error()), nil
	}
	text, reason := h.decodeBody(b64)
	if reason != "" {
		return rejected(sub, reason), nil
	}
	sub.chars = utf8.RuneCountInString(text)
	if sub.chars > router.MaxSubmitText {
		return rejected(sub, fmt.Sprintf("text has %d characters; at most %d fit in one concatenated SMS", sub.chars, router.MaxSubmitText)), nil
	}
	// Everything router.SubmitTo checks has been checked, so its errors are the
	// spool's: a temporary failure, not the sender's fault.
	id, err := router.SubmitTo(h.cfg.Inbox, sub.from, sub.to, text, h.cfg.Now())
	if err != nil {
		sub.status, sub.reason = StatusError, "the message could not be queued; try again later"
		h.log.Error(logPrefix+"spool write failed", "uniqueid", s.Env.UniqueID(), "err", err)
		return sub, nil
	}
	sub.status, sub.id = StatusQueued, id
	return sub, nil
}

func rejected(sub submission, reason string) submission {
	sub.status, sub.reason = StatusRejected, reason
	return sub
}

// decodeBody turns MSG_B64 into text, or says why it cannot.
func (h *Service) decodeBody(b64 string) (text, reason string) {
	b64 = strings.TrimSpace(b64)
	if b64 == "" {
		return "", "the message is empty (MSG_B64 not set)"
	}
	if len(b64) > base64.StdEncoding.EncodedLen(h.cfg.MaxBodyBytes) {
		return "", fmt.Sprintf("the message is longer than %d bytes", h.cfg.MaxBodyBytes)
	}
	data, err := base64.StdEncoding.DecodeString(b64)
	if err != nil {
		// Tolerate a sender that left the padding off.
		var err2 error
		if data, err2 = base64.RawStdEncoding.DecodeString(strings.TrimRight(b64, "=")); err2 != nil {
			return "", "MSG_B64 is not valid Base64"
		}
	}
	if len(data) > h.cfg.MaxBodyBytes {
		return "", fmt.Sprintf("the message is longer than %d bytes", h.cfg.MaxBodyBytes)
	}
	if !utf8.Valid(data) {
		return "", "the message is not valid UTF-8"
	}
	// SIP clients send CRLF; a phone shows the CR as a stray character.
	text = strings.ReplaceAll(string(data), "\r\n", "\n")
	if strings.ContainsRune(text, 0) {
		return "", "the message contains a NUL character"
	}
	if strings.TrimSpace(text) == "" {
		return "", "the message is empty"
	}
	return text, ""
}

// AddressNumber extracts the number from a SIP From value or URI:
// `"Handset 1000" <sip:1000@127.0.0.1>`, `sip:1000@host;tag=x`, `tel:+4812`,
// `pjsip:1000@host` or a bare `1000` all give "1000" (or "+4812"). The result
// is not validated; pass it to router.CheckNumber.
func AddressNumber(s string) string {
	s = strings.TrimSpace(s)
	// The URI is inside <…> when a display name (which may itself hold '<',
	// '@' or ':') comes first: take the last bracket pair.
	if i := strings.LastIndexByte(s, '<'); i >= 0 {
		if j := strings.IndexByte(s[i:], '>'); j > 0 {
			s = s[i+1 : i+j]
		}
	}
	if i := strings.IndexByte(s, ':'); i >= 0 && isScheme(s[:i]) {
		s = s[i+1:]
	}
	if i := strings.IndexAny(s, "@;?"); i >= 0 {
		s = s[:i]
	}
	if strings.IndexByte(s, '%') >= 0 {
		if u, err := url.PathUnescape(s); err == nil {
			s = u
		}
	}
	return strings.TrimSpace(s)
}

func isScheme(s string) bool {
	switch strings.ToLower(s) {
	case "sip", "sips", "tel", "pjsip":
		return true
	}
	return false
}

// await polls the journal until the message has a deferred or final state.
func (h *Service) await(ctx context.Context, id string) (status, reason string) {
	if h.cfg.Journal == nil {
		return StatusPending, ""
	}
	ctx, cancel := context.WithTimeout(ctx, h.cfg.RouteTimeout)
	defer cancel()
	wait := pollMin
	for {
		rec, err := h.cfg.Journal.Get(ctx, id)
		switch {
		case err == nil && (rec.State.Final() || rec.State == router.StateDeferred):
			st := strings.ToUpper(string(rec.State))
			if rec.State == router.StateDelivered {
				return st, ""
			}
			return st, rec.LastError
		case err != nil && !errors.Is(err, sql.ErrNoRows) && ctx.Err() == nil:
			// The journal is the router's database: when it is sick the
			// answer is simply not known yet.
			h.log.Debug(logPrefix+"route: journal read failed", "id", id, "err", err)
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return StatusPending, "no decision yet; the message stays queued"
		case <-t.C:
		}
		wait = min(2*wait, pollMax)
	}
}

// setResult sets the status variables; all of them, so no value of an
// earlier request on the same channel survives.
func (h *Service) setResult(ctx context.Context, s *agi.Session, status, id, reason, from string) error {
	for _, kv := range [][2]string{{VarStatus, status}, {VarID, id}, {VarReason, oneLine(reason)}, {VarFrom, from}} {
		if err := s.SetVariable(ctx, kv[0], kv[1]); err != nil {
			return err
		}
	}
	return nil
}

// oneLine makes a reason safe for SET VARIABLE, which cannot carry CR or LF.
func oneLine(s string) string {
	if !strings.ContainsAny(s, "\r\n\x00") {
		return s
	}
	return strings.NewReplacer("\r", " ", "\n", " ", "\x00", " ").Replace(s)
}

func (h *Service) logSubmission(ctx context.Context, script string, s *agi.Session, sub submission, status string, start time.Time) {
	attrs := []any{"uniqueid", s.Env.UniqueID(), "status", status, "id", sub.id, "from", shown(sub.from), "to", shown(sub.to), "chars", sub.chars, "took", time.Since(start)}
	if sub.reason != "" {
		attrs = append(attrs, "reason", sub.reason)
	}
	level := slog.LevelInfo
	if status == StatusRejected || status == StatusError {
		level = slog.LevelWarn
	}
	h.log.Log(ctx, level, logPrefix+script, attrs...)
}

// logFailure logs a request that ended because the session failed, usually
// a channel that went away; the server logs the error once more at Debug.
func (h *Service) logFailure(script string, s *agi.Session, start time.Time, err error) {
	h.log.Info(logPrefix+script+" aborted", "uniqueid", s.Env.UniqueID(), "hungup", s.Hungup(), "err", err, "took", time.Since(start))
}

// shown quotes a value for a log line, clipped.
func shown(s string) string {
	if len(s) > maxShown {
		s = s[:maxShown] + "…"
	}
	return s
}

// lookupCache is the optional short cache of definite chaninfo answers.
type lookupCache struct {
	ttl time.Duration
	now func() time.Time
	mu  sync.Mutex
	m   map[string]cacheEntry
}

type cacheEntry struct {
	opt, ext, why string
	until         time.Time
}

// maxCacheEntries bounds the cache; when full it is simply emptied, which a
// directory of a few thousand numbers never reaches within a few seconds.
const maxCacheEntries = 65536

func (c *lookupCache) get(number string) (cacheEntry, bool) {
	if c == nil {
		return cacheEntry{}, false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.m[number]
	if !ok || !c.now().Before(e.until) {
		return cacheEntry{}, false
	}
	return e, true
}

func (c *lookupCache) put(number string, e cacheEntry) {
	if c == nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.m) >= maxCacheEntries {
		clear(c.m)
	}
	e.until = c.now().Add(c.ttl)
	c.m[number] = e
}
