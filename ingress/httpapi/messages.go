package httpapi

import (
	"context"
	"database/sql"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"smsrouter/channels"
	"smsrouter/internal/timespec"
	"smsrouter/router"
	"smsrouter/router/dlr"
)

// MessageView is a message as GET /v1/messages/{id} shows it. Times are in the
// configured time zone, with their offset.
type MessageView struct {
	ID string `json:"id"`
	// JoinedInto is set when ID is a part of a concatenated message that the
	// router joined: everything else is that message's.
	JoinedInto string `json:"joined_into,omitempty"`
	// State is a journal state, or where the message waits when the journal has
	// no row yet: "queued" (not taken yet), "processing", "held" (a part
	// waiting for its siblings).
	State       string        `json:"state"`
	Final       bool          `json:"final"`
	Meaning     string        `json:"meaning"`
	From        string        `json:"from,omitempty"`
	To          string        `json:"to,omitempty"`
	Letter      string        `json:"letter,omitempty"`
	Text        *string       `json:"text,omitempty"`
	Received    time.Time     `json:"received"`
	Updated     *time.Time    `json:"updated,omitempty"`
	Attempts    int           `json:"attempts"`
	NextAttempt *time.Time    `json:"next_attempt,omitempty"`
	LastError   string        `json:"last_error,omitempty"`
	Tries       []TryView     `json:"tries,omitempty"`
	Files       []string      `json:"files,omitempty"`
	Calls       []CallView    `json:"calls,omitempty"`
	Ways        []WayView     `json:"ways,omitempty"`
	Related     []RelatedView `json:"related,omitempty"`
	Parts       []string      `json:"parts,omitempty"`
	Reports     []ReportView  `json:"reports,omitempty"`
}

// WayView is one of the recipient's ways tried in a delivery attempt (a number
// with further ways, see router.NumberWay).
type WayView struct {
	Way       int    `json:"way"` // 0: the PBXNumbers letter, 1…: the further ways
	Letter    string `json:"letter"`
	Extension string `json:"extension,omitempty"`
	Outcome   string `json:"outcome"`
	Cause     string `json:"cause,omitempty"`
	Reason    string `json:"reason,omitempty"`
}

// TryView is one try of a message.
type TryView struct {
	N      int       `json:"n"`
	At     time.Time `json:"at"`
	State  string    `json:"state"`
	Letter string    `json:"letter,omitempty"`
	Reason string    `json:"reason,omitempty"`
}

// CallView is the outcome of a call Asterisk made for the message.
type CallView struct {
	File     string `json:"file"`
	Status   string `json:"status"`
	Attempts int    `json:"attempts"`
	// With [dialplan] outcome: the retry rule's cause of a failed call, and
	// what the PBX saw (the fax's result and pages, busy, congestion).
	Cause string `json:"cause,omitempty"`
	Seen  string `json:"seen,omitempty"`
}

// RelatedView is a message the router made about this one: the notice to the
// sender, a command service's reply, a status report (srr=1, or an SMPP
// acknowledgement through the link the message came by).
type RelatedView struct {
	ID    string `json:"id"`
	Kind  string `json:"kind"`
	State string `json:"state,omitempty"`
	To    string `json:"to,omitempty"`
}

// ReportView is a delivery-report request and what became of it.
type ReportView struct {
	Kind    string     `json:"kind"`
	Mask    int        `json:"mask"`
	Sent    []int      `json:"sent"`
	State   string     `json:"state"`
	Tries   int        `json:"failed_tries,omitempty"`
	NextTry *time.Time `json:"next_try,omitempty"`
	Outcome string     `json:"outcome,omitempty"`
}

// Summary is a message as GET /v1/messages lists it.
type Summary struct {
	ID          string     `json:"id"`
	State       string     `json:"state"`
	From        string     `json:"from"`
	To          string     `json:"to"`
	Letter      string     `json:"letter,omitempty"`
	Text        *string    `json:"text,omitempty"`
	Received    time.Time  `json:"received"`
	Updated     time.Time  `json:"updated"`
	Attempts    int        `json:"attempts"`
	NextAttempt *time.Time `json:"next_attempt,omitempty"`
	LastError   string     `json:"last_error,omitempty"`
}

// Page is the answer of GET /v1/messages.
type Page struct {
	Messages []Summary `json:"messages"`
	// NextCursor, when set, gets the next page (the older messages) as
	// cursor=; absent on the last page.
	NextCursor string `json:"next_cursor,omitempty"`
}

// Meaning is a state in words, for people reading an answer.
func Meaning(state string) string {
	switch router.State(state) {
	case router.StateDelivered:
		return "handed to its channel; calls say whether the phone answered"
	case router.StateDeferred:
		return "a temporary failure; waiting to be retried at next_attempt"
	case router.StateBounced:
		return "could not be delivered; the sender was told"
	case router.StateExpired:
		return "retried until its validity ended; the sender was told"
	case router.StateRejected:
		return "malformed; quarantined with a reason"
	case router.StateDropped:
		return "ended without delivery and no one to tell"
	case router.StateHeld:
		return "a part waiting for the rest of its message"
	case router.StateDuplicate:
		return "the phone sent it again; delivered once already"
	}
	switch state {
	case "queued":
		return "in the spool; the router has not taken it yet"
	case "processing":
		return "being delivered right now"
	}
	return ""
}

func (a *API) getMessage(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	if !channels.ValidID(id) {
		a.fail(w, r, badRequest("bad_id", "%q is not a message id (they look like 1795239855123-0a1b2c3d4e)", clipRunes(id, 40)))
		return
	}
	if a.cfg.Journal == nil {
		a.fail(w, r, errUnavailable)
		return
	}
	src := Source{Journal: a.cfg.Journal, Locate: a.cfg.Locate, Reports: a.cfg.Reports, Location: a.cfg.Location, HideText: a.cfg.HideText}
	v, err := src.Describe(r.Context(), id)
	switch {
	case errors.Is(err, ErrNotFound):
		a.fail(w, r, apiErr(http.StatusNotFound, "not_found", "no message "+id+" in the journal or the spool (pruned, or never queued)"))
		return
	case err != nil:
		a.cfg.Log.Warn("http: cannot describe a message", "id", id, "err", err)
		a.fail(w, r, errUnavailable)
		return
	}
	a.observe(endpointOf(r), "ok")
	writeJSON(w, http.StatusOK, v)
}

// Source is where a message's story is read from: the journal, and for a
// message the journal does not know yet, the spool.
type Source struct {
	Journal  Journal
	Locate   func(id string) (router.Spooled, bool, error)              // nil: the journal only
	Reports  func(ctx context.Context, id string) ([]dlr.Status, error) // nil: no delivery reports shown
	Location *time.Location                                             // nil: Local
	HideText bool
}

// ErrNotFound is Describe's answer for an id neither the journal nor the spool
// knows.
var ErrNotFound = errors.New("no such message")

// Describe tells a message's story: what GET /v1/messages/{id} and `smsrouter
// journal show` print. Other errors than ErrNotFound are the database's or the
// spool's.
func (s Source) Describe(ctx context.Context, id string) (MessageView, error) {
	if s.Location == nil {
		s.Location = time.Local
	}
	v, err := s.describe(ctx, id)
	if err != nil {
		return v, err
	}
	if s.Reports != nil {
		sts, err := s.Reports(ctx, id)
		if err != nil {
			return v, err
		}
		for _, st := range sts {
			dv := ReportView{Kind: st.Kind, Mask: int(st.Mask), Sent: []int{}, State: st.State, Tries: st.Tries, Outcome: st.Outcome}
			for _, t := range st.Sent.Types() {
				dv.Sent = append(dv.Sent, int(t))
			}
			dv.NextTry = at(st.NextTry, s.Location)
			v.Reports = append(v.Reports, dv)
		}
	}
	return v, nil
}

func (s Source) describe(ctx context.Context, id string) (MessageView, error) {
	j := s.Journal
	msgID := id
	rec, err := j.Get(ctx, id)
	if errors.Is(err, sql.ErrNoRows) {
		if joined, perr := j.PartOf(ctx, id); perr == nil {
			msgID = joined
			rec, err = j.Get(ctx, joined)
		}
	}
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return s.spoolView(id)
	case err != nil:
		return MessageView{}, err
	}
	loc := s.Location
	v := MessageView{ID: id, State: string(rec.State), Final: rec.State.Final(), Meaning: Meaning(string(rec.State)),
		From: rec.OA, To: rec.DA, Letter: rec.Letter, Received: rec.Received.In(loc), Updated: at(rec.Updated, loc),
		Attempts: rec.Attempts, LastError: rec.LastError}
	if msgID != id {
		v.JoinedInto = msgID
	}
	if !s.HideText {
		v.Text = &rec.Text
	}
	if rec.State == router.StateDeferred {
		v.NextAttempt = at(rec.NextAttempt, loc)
	}
	tries, err := j.Attempts(ctx, msgID)
	if err != nil {
		return MessageView{}, err
	}
	for _, t := range tries {
		v.Tries = append(v.Tries, TryView{N: t.N, At: t.At.In(loc), State: string(t.State), Letter: t.Letter, Reason: t.Error})
	}
	for _, c := range router.CallsOf(rec) {
		v.Calls = append(v.Calls, CallView{File: c.File, Status: c.Status, Attempts: c.Attempts, Cause: c.Cause, Seen: c.Seen()})
	}
	for _, w := range router.WaysOf(rec) {
		v.Ways = append(v.Ways, WayView(w))
	}
	var detail map[string]any
	if json.Unmarshal([]byte(rec.Detail), &detail) == nil {
		if files, ok := detail["files"].([]any); ok {
			for _, f := range files {
				if s, ok := f.(string); ok {
					v.Files = append(v.Files, s)
				}
			}
		}
		var rel []RelatedView
		for _, k := range []struct{ key, kind string }{{"notice_id", "notice"}, {"evidence_notice_id", "notice"}, {"reply_id", "reply"}, {"report_id", "report"}} {
			if s, ok := detail[k.key].(string); ok && channels.ValidID(s) {
				rel = append(rel, RelatedView{ID: s, Kind: k.kind})
			}
		}
		// A joined text acknowledged to the network per part: the reports after the first.
		if ids, ok := detail["report_ids"].([]any); ok {
			for _, x := range ids[min(1, len(ids)):] {
				if s, ok := x.(string); ok && channels.ValidID(s) {
					rel = append(rel, RelatedView{ID: s, Kind: "report"})
				}
			}
		}
		if len(rel) > 0 {
			ids := make([]string, len(rel))
			for i, x := range rel {
				ids[i] = x.ID
			}
			recs, err := j.GetMany(ctx, ids)
			if err != nil {
				return MessageView{}, err
			}
			for i := range rel {
				for _, rr := range recs {
					if rr.ID == rel[i].ID {
						rel[i].State, rel[i].To = string(rr.State), rr.DA
					}
				}
				if rel[i].State == "" && s.Locate != nil {
					// Made, but not taken by the router yet.
					if sp, ok, err := s.Locate(rel[i].ID); err == nil && ok {
						rel[i].State = sp.Where
					}
				}
			}
			v.Related = rel
		}
	}
	parts, err := j.Parts(ctx, msgID)
	if err != nil {
		return MessageView{}, err
	}
	if len(parts) > 0 {
		v.Parts = append([]string{msgID}, parts...)
	}
	return v, nil
}

// spoolView is a message the journal does not know (yet): where it waits.
func (s Source) spoolView(id string) (MessageView, error) {
	if s.Locate == nil {
		return MessageView{}, ErrNotFound
	}
	sp, ok, err := s.Locate(id)
	if err != nil {
		return MessageView{}, err
	}
	if !ok {
		return MessageView{}, ErrNotFound
	}
	v := MessageView{ID: id, State: sp.Where, Meaning: Meaning(sp.Where)}
	if ms, err := strconv.ParseInt(id[:13], 10, 64); err == nil {
		v.Received = time.UnixMilli(ms).In(s.Location)
	}
	v.NextAttempt = at(sp.Due, s.Location)
	return v, nil
}

func at(t time.Time, loc *time.Location) *time.Time {
	if t.IsZero() {
		return nil
	}
	t = t.In(loc)
	return &t
}

// listParams are GET /v1/messages's query parameters.
var listParams = []string{"since", "until", "state", "number", "limit", "cursor"}

// MaxPage bounds limit=.
const MaxPage = 1000

func (a *API) listMessages(w http.ResponseWriter, r *http.Request) {
	if a.cfg.Journal == nil {
		a.fail(w, r, errUnavailable)
		return
	}
	q := r.URL.Query()
	for k := range q {
		if !slices.Contains(listParams, k) {
			a.fail(w, r, badRequest("unknown_parameter", "unknown parameter %q; the parameters are %s", clipRunes(k, 40), strings.Join(listParams, ", ")))
			return
		}
	}
	now := a.cfg.Now()
	f := router.Filter{Limit: 100}
	for _, p := range []struct {
		name string
		dst  *time.Time
	}{{"since", &f.Since}, {"until", &f.Until}} {
		if v := q.Get(p.name); v != "" {
			t, err := timespec.ParseTime(v, now, a.cfg.Location)
			if err != nil {
				a.fail(w, r, badRequest("bad_time", "%s: %s", p.name, err.Error()))
				return
			}
			*p.dst = t
		}
	}
	if !f.Since.IsZero() && !f.Until.IsZero() && !f.Until.After(f.Since) {
		a.fail(w, r, badRequest("bad_time", "until must be after since"))
		return
	}
	if v := q.Get("state"); v != "" {
		if !slices.Contains(JournalStates, v) {
			a.fail(w, r, badRequest("bad_state", "state %q: want one of %s", clipRunes(v, 20), strings.Join(JournalStates, ", ")))
			return
		}
		f.State = router.State(v)
	}
	if v := q.Get("number"); v != "" {
		if err := router.CheckNumber("number", v); err != nil {
			a.fail(w, r, badRequest("bad_number", "%s", err.Error()))
			return
		}
		f.Number = v
	}
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > MaxPage {
			a.fail(w, r, badRequest("bad_limit", "limit must be a number from 1 to %d", MaxPage))
			return
		}
		f.Limit = n
	}
	if v := q.Get("cursor"); v != "" {
		c, err := parseCursor(v)
		if err != nil {
			a.fail(w, r, badRequest("bad_cursor", "cursor is not one this API gave out: pass next_cursor back unchanged"))
			return
		}
		f.After = &c
	}
	pageSize := f.Limit
	f.Limit++ // one more says whether there is a next page
	recs, err := a.cfg.Journal.List(r.Context(), f)
	if err != nil {
		a.cfg.Log.Warn("http: cannot read the journal", "err", err)
		a.fail(w, r, errUnavailable)
		return
	}
	page := Page{Messages: []Summary{}}
	if len(recs) > pageSize {
		recs = recs[:pageSize]
		page.NextCursor = formatCursor(router.CursorOf(recs[len(recs)-1]))
	}
	for _, rec := range recs {
		s := Summary{ID: rec.ID, State: string(rec.State), From: rec.OA, To: rec.DA, Letter: rec.Letter,
			Received: rec.Received.In(a.cfg.Location), Updated: rec.Updated.In(a.cfg.Location), Attempts: rec.Attempts, LastError: rec.LastError}
		if !a.cfg.HideText {
			text := rec.Text
			s.Text = &text
		}
		if rec.State == router.StateDeferred {
			s.NextAttempt = at(rec.NextAttempt, a.cfg.Location)
		}
		page.Messages = append(page.Messages, s)
	}
	a.observe(endpointOf(r), "ok")
	writeJSON(w, http.StatusOK, page)
}

// JournalStates are the states a journal row can be in (state= values).
var JournalStates = []string{string(router.StateDelivered), string(router.StateDeferred), string(router.StateBounced),
	string(router.StateExpired), string(router.StateRejected), string(router.StateDropped), string(router.StateDuplicate)}

// A cursor is the last row's received time and id, base64url: opaque to
// clients, and checked when it comes back.
func formatCursor(c router.Cursor) string {
	return base64.RawURLEncoding.EncodeToString(fmt.Appendf(nil, "%d.%s", c.Received.UnixMilli(), c.ID))
}

func parseCursor(s string) (router.Cursor, error) {
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		return router.Cursor{}, err
	}
	ms, id, ok := strings.Cut(string(b), ".")
	n, err := strconv.ParseInt(ms, 10, 64)
	if !ok || err != nil || !channels.ValidID(id) {
		return router.Cursor{}, errors.New("bad cursor")
	}
	return router.Cursor{Received: time.UnixMilli(n), ID: id}, nil
}

func clipRunes(s string, n int) string {
	if r := []rune(s); len(r) > n {
		return string(r[:n]) + "…"
	}
	return s
}
