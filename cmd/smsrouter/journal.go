package main

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"text/tabwriter"
	"time"

	"smsrouter/router"
)

// openAdmin opens the journal and the spool for the operator's verbs. It takes no
// claim folder, so it runs safely beside serve and drain.
func openAdmin(ctx context.Context, cfg Config) (*router.Admin, *router.Store, error) {
	rc, err := cfg.routerConfig()
	if err != nil {
		return nil, nil, err
	}
	store, err := openStore(ctx, cfg, router.OpenExisting)
	if err != nil {
		return nil, nil, err
	}
	a, err := router.NewAdmin(rc, router.NewJournal(store))
	if err != nil {
		store.Close()
		return nil, nil, err
	}
	return a, store, nil
}

// journalEntry is a journal row as `journal --json` prints it.
type journalEntry struct {
	ID          string               `json:"id"`
	Received    time.Time            `json:"received"`
	Updated     time.Time            `json:"updated"`
	From        string               `json:"from"`
	To          string               `json:"to"`
	Letter      string               `json:"letter,omitempty"`
	State       router.State         `json:"state"`
	Attempts    int                  `json:"attempts"`
	NextAttempt *time.Time           `json:"next_attempt,omitempty"`
	LastError   string               `json:"last_error,omitempty"`
	Calls       []router.CallOutcome `json:"calls,omitempty"`
	Link        string               `json:"link,omitempty"`
	Handset     string               `json:"handset,omitempty"` // what the mobile network's receipts said
	Parent      string               `json:"parent,omitempty"`
	Detail      json.RawMessage      `json:"detail,omitempty"`
}

func toEntry(r router.Record, withDetail bool) journalEntry {
	e := journalEntry{ID: r.ID, Received: r.Received, Updated: r.Updated, From: r.OA, To: r.DA, Letter: r.Letter,
		State: r.State, Attempts: r.Attempts, LastError: r.LastError, Calls: router.CallsOf(r), Parent: r.ParentID}
	e.Link, e.Handset = detailString(r.Detail, "link"), detailString(r.Detail, "handset")
	if !r.NextAttempt.IsZero() {
		t := r.NextAttempt
		e.NextAttempt = &t
	}
	if withDetail && json.Valid([]byte(r.Detail)) {
		e.Detail = json.RawMessage(r.Detail)
	}
	return e
}

// detailString reads one string key of a journal row's detail.
func detailString(detail, key string) string {
	var d map[string]any
	if json.Unmarshal([]byte(detail), &d) != nil {
		return ""
	}
	v, _ := d[key].(string)
	return v
}

// callSummary is the last call's outcome (or, for a message sent to the
// mobile network, what its receipts said), "-" when none is recorded.
func callSummary(r router.Record) string {
	if h := detailString(r.Detail, "handset"); h != "" {
		return h
	}
	calls := router.CallsOf(r)
	if len(calls) == 0 {
		return "-"
	}
	return calls[len(calls)-1].Status
}

// journalFlags are `smsrouter journal`'s filters (cli.go declares them).
type journalFlags struct {
	since         time.Duration
	state, number string
	limit         int
	json          bool
}

func cmdJournal(ctx context.Context, e *env, c *common, jf journalFlags) int {
	if jf.state != "" && !knownState(router.State(jf.state)) {
		return fail(e, exitUsage, fmt.Errorf("state %q: want one of %s", jf.state, strings.Join(stateNames(), ", ")))
	}
	store, err := c.loadStore(ctx, e, router.OpenReadOnly)
	if err != nil {
		return fail(e, exitUsage, err)
	}
	defer store.Close()
	f := router.Filter{State: router.State(jf.state), Number: jf.number, Limit: jf.limit}
	if jf.since > 0 {
		f.Since = time.Now().Add(-jf.since)
	}
	recs, err := router.NewJournal(store).List(ctx, f)
	if err != nil {
		return fail(e, exitPartial, err)
	}
	if jf.json {
		enc := json.NewEncoder(e.stdout)
		enc.SetEscapeHTML(false)
		for _, r := range recs {
			if err := enc.Encode(toEntry(r, false)); err != nil {
				return fail(e, exitPartial, err)
			}
		}
		return exitOK
	}
	tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "RECEIVED\tID\tSTATE\tL\tFROM\tTO\tTRIES\tCALL\tLAST ERROR")
	for _, r := range recs {
		letter := r.Letter
		if letter == "" {
			letter = "-"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%d\t%s\t%s\n", r.Received.Local().Format("2006-01-02 15:04:05"), r.ID,
			r.State, letter, r.OA, r.DA, r.Attempts, callSummary(r), oneLine(r.LastError, 80))
	}
	tw.Flush()
	if len(recs) == 0 {
		fmt.Fprintln(e.stdout, "no messages match")
	}
	return exitOK
}

func journalShow(ctx context.Context, e *env, c *common, asJSON bool, id string) int {
	store, err := c.loadStore(ctx, e, router.OpenReadOnly)
	if err != nil {
		return fail(e, exitUsage, err)
	}
	defer store.Close()
	j := router.NewJournal(store)
	rec, err := j.Get(ctx, id)
	if errors.Is(err, sql.ErrNoRows) {
		return fail(e, exitPartial, fmt.Errorf("no message %s in the journal", id))
	}
	if err != nil {
		return fail(e, exitPartial, err)
	}
	if asJSON {
		enc := json.NewEncoder(e.stdout)
		enc.SetEscapeHTML(false)
		enc.SetIndent("", "  ")
		if err := enc.Encode(toEntry(rec, true)); err != nil {
			return fail(e, exitPartial, err)
		}
		return exitOK
	}
	w := e.stdout
	fmt.Fprintf(w, "id:           %s\n", rec.ID)
	fmt.Fprintf(w, "from → to:    %s → %s\n", rec.OA, rec.DA)
	fmt.Fprintf(w, "letter:       %s\n", orDash(rec.Letter))
	fmt.Fprintf(w, "state:        %s (%s)\n", rec.State, stateMeaning(rec.State))
	fmt.Fprintf(w, "received:     %s\n", rec.Received.Local().Format(time.RFC3339))
	fmt.Fprintf(w, "updated:      %s\n", rec.Updated.Local().Format(time.RFC3339))
	fmt.Fprintf(w, "attempts:     %d\n", rec.Attempts)
	if !rec.NextAttempt.IsZero() {
		fmt.Fprintf(w, "next attempt: %s\n", rec.NextAttempt.Local().Format(time.RFC3339))
	}
	if rec.LastError != "" {
		fmt.Fprintf(w, "last error:   %s\n", rec.LastError)
	}
	if rec.ParentID != "" {
		fmt.Fprintf(w, "about:        %s\n", rec.ParentID)
	}
	for _, call := range router.CallsOf(rec) {
		fmt.Fprintf(w, "call:         %s after %d attempt(s) (%s)\n", call.Status, call.Attempts, call.File)
	}
	if l := detailString(rec.Detail, "link"); l != "" {
		fmt.Fprintf(w, "link:         %s\n", l)
	}
	if h := detailString(rec.Detail, "handset"); h != "" {
		fmt.Fprintf(w, "handset:      %s\n", h)
	}
	if parts, err := j.Receipts(ctx, rec.ID); err == nil {
		for _, p := range parts {
			rc := "no receipt yet"
			if !p.Reported.IsZero() {
				rc = fmt.Sprintf("receipt %s at %s", p.Stat, p.Reported.Local().Format(time.RFC3339))
				if p.Err != "" {
					rc += " (error " + p.Err + ")"
				}
			}
			fmt.Fprintf(w, "part %d/%d:     message id %s, %s\n", p.Part, p.Parts, p.Ref, rc)
		}
	}
	if rec.Detail != "" {
		fmt.Fprintf(w, "detail:       %s\n", rec.Detail)
	}
	// Notices and replies about this message.
	if children, err := j.List(ctx, router.Filter{Since: rec.Received, Number: rec.OA, Limit: 50}); err == nil {
		for _, ch := range children {
			if ch.ParentID == rec.ID || strings.Contains(ch.Detail, rec.ID) && ch.ID != rec.ID {
				fmt.Fprintf(w, "related:      %s %s %s → %s\n", ch.ID, ch.State, ch.OA, ch.DA)
			}
		}
	}
	return exitOK
}

func cmdRetry(ctx context.Context, e *env, c *common, state string, args []string) int {
	if state != "" && state != string(router.StateDeferred) {
		return fail(e, exitUsage, fmt.Errorf("only deferred messages can be retried, not %q", state))
	}
	cfg, err := c.load(e)
	if err != nil {
		return fail(e, exitUsage, err)
	}
	a, store, err := openAdmin(ctx, cfg)
	if err != nil {
		return fail(e, exitUsage, err)
	}
	defer store.Close()
	var ids []string
	if len(args) > 0 {
		ids = args
	}
	done, err := a.RetryNow(ids)
	for _, id := range done {
		fmt.Fprintf(e.stdout, "%s due now\n", id)
	}
	if err != nil {
		return fail(e, exitPartial, err)
	}
	if len(done) == 0 {
		fmt.Fprintln(e.stdout, "nothing deferred")
	} else {
		fmt.Fprintln(e.stdout, "a running serve takes them at its next rescan; or run `smsrouter drain`")
	}
	return exitOK
}

func cmdDrop(ctx context.Context, e *env, c *common, notify bool, reason string, ids []string) int {
	cfg, err := c.load(e)
	if err != nil {
		return fail(e, exitUsage, err)
	}
	a, store, err := openAdmin(ctx, cfg)
	if err != nil {
		return fail(e, exitUsage, err)
	}
	defer store.Close()
	code := exitOK
	for _, id := range ids {
		rec, err := a.Drop(ctx, id, reason, notify)
		if err != nil {
			fmt.Fprintf(e.stderr, "smsrouter: %v\n", err)
			code = exitPartial
			continue
		}
		told := ""
		if strings.Contains(rec.Detail, "notice_id") {
			told = ", sender notified"
		}
		fmt.Fprintf(e.stdout, "%s dropped (%s → %s)%s\n", id, rec.OA, rec.DA, told)
	}
	return code
}

func cmdEvidence(ctx context.Context, e *env, c *common, notify bool) int {
	cfg, err := c.load(e)
	if err != nil {
		return fail(e, exitUsage, err)
	}
	a, store, err := openAdmin(ctx, cfg)
	if err != nil {
		return fail(e, exitUsage, err)
	}
	defer store.Close()
	sum, err := a.RecordEvidence(ctx, notify || cfg.Evidence.Notify)
	fmt.Fprintf(e.stdout, "%d call outcomes recorded, %d already known, %d not in the journal, %d notices queued\n",
		sum.Recorded, sum.Known, sum.Orphans, len(sum.Notices))
	if err != nil {
		return fail(e, exitPartial, err)
	}
	return exitOK
}

func knownState(s router.State) bool {
	for _, n := range stateNames() {
		if string(s) == n {
			return true
		}
	}
	return false
}

func stateNames() []string {
	return []string{string(router.StateDelivered), string(router.StateDeferred), string(router.StateBounced),
		string(router.StateExpired), string(router.StateRejected), string(router.StateDropped), string(router.StateHeld)}
}

func stateMeaning(s router.State) string {
	switch s {
	case router.StateDelivered:
		return "handed to its channel; see call for whether the phone answered"
	case router.StateDeferred:
		return "waiting to be retried"
	case router.StateBounced:
		return "could not be delivered; the sender was told"
	case router.StateExpired:
		return "retried until its validity ended; the sender was told"
	case router.StateRejected:
		return "malformed; quarantined in smsrouter/rejected with a reason"
	case router.StateDropped:
		return "ended without delivery"
	case router.StateHeld:
		return "a part waiting for the rest of its message"
	}
	return "unknown state"
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// oneLine keeps a table row on one line.
func oneLine(s string, n int) string {
	s = strings.Join(strings.Fields(s), " ")
	if r := []rune(s); len(r) > n {
		return string(r[:n-1]) + "…"
	}
	return s
}
