package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"smsrouter/ingress/httpapi"
	"smsrouter/internal/timespec"
	"smsrouter/router"
	"smsrouter/router/dlr"
)

// openAdmin loads the config and opens the journal and the spool for the
// operator's verbs. It takes no claim folder, so it runs safely beside serve
// and drain.
func (c *common) openAdmin(ctx context.Context, e *env) (Config, *router.Admin, *router.Store, error) {
	cfg, store, err := c.openStore(ctx, e, router.OpenExisting)
	if err != nil {
		return cfg, nil, nil, err
	}
	rc, err := cfg.routerConfig()
	if err != nil {
		store.Close()
		return cfg, nil, nil, err
	}
	a, err := router.NewAdmin(rc, router.NewJournal(store))
	if err != nil {
		store.Close()
		return cfg, nil, nil, err
	}
	return cfg, a, store, nil
}

// journalEntry is a journal row as `journal --json` prints it (one per line).
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
	Text        *string              `json:"text,omitempty"`
	Calls       []router.CallOutcome `json:"calls,omitempty"`
	Link        string               `json:"link,omitempty"`
	Handset     string               `json:"handset,omitempty"` // what the mobile network's receipts said
	Parent      string               `json:"parent,omitempty"`
}

func toEntry(r router.Record, loc *time.Location, withText bool) journalEntry {
	e := journalEntry{ID: r.ID, Received: r.Received.In(loc), Updated: r.Updated.In(loc), From: r.OA, To: r.DA, Letter: r.Letter,
		State: r.State, Attempts: r.Attempts, LastError: r.LastError, Calls: router.CallsOf(r), Parent: r.ParentID}
	e.Link, e.Handset = detailString(r.Detail, "link"), detailString(r.Detail, "handset")
	if !r.NextAttempt.IsZero() && r.State == router.StateDeferred {
		t := r.NextAttempt.In(loc)
		e.NextAttempt = &t
	}
	if withText {
		text := r.Text
		e.Text = &text
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

// journalFlags are `smsrouter journal`'s filters (journal_cli.go declares them).
type journalFlags struct {
	since, until  string
	state, number string
	limit         int
	json          bool
	noText        bool
	follow        bool
	poll          time.Duration // --follow's interval (tests shorten it)
}

// tableTime is how the tables print a time: the configured zone's clock with
// its offset, so a time pasted into a ticket means one moment.
const tableTime = "2006-01-02 15:04:05Z07:00"

// textExcerpt is how much of a message's text a listing shows.
const textExcerpt = 32

// journalFilter turns the flags into a filter, reading times in loc.
func journalFilter(jf journalFlags, now time.Time, loc *time.Location) (router.Filter, error) {
	f := router.Filter{State: router.State(jf.state), Number: jf.number, Limit: jf.limit}
	if jf.state != "" && !knownState(router.State(jf.state)) {
		return f, fmt.Errorf("state %q: want one of %s", jf.state, strings.Join(stateNames(), ", "))
	}
	for _, t := range []struct {
		flag, v string
		dst     *time.Time
	}{{"--since", jf.since, &f.Since}, {"--until", jf.until, &f.Until}} {
		if t.v == "" {
			continue
		}
		v, err := timespec.ParseTime(t.v, now, loc)
		if err != nil {
			return f, fmt.Errorf("%s: %w", t.flag, err)
		}
		*t.dst = v
	}
	if !f.Since.IsZero() && !f.Until.IsZero() && !f.Until.After(f.Since) {
		return f, fmt.Errorf("--until %s is not after --since %s", f.Until.In(loc).Format(tableTime), f.Since.In(loc).Format(tableTime))
	}
	if jf.limit < 0 {
		return f, errors.New("--limit must be 0 (no limit) or more")
	}
	if jf.limit == 0 {
		f.Limit = 1 << 30
	}
	return f, nil
}

// matches applies the filter to a row --follow has read.
func matches(f router.Filter, r router.Record) bool {
	return (f.State == "" || r.State == f.State) && (f.Number == "" || r.OA == f.Number || r.DA == f.Number) &&
		(f.Since.IsZero() || !r.Received.Before(f.Since)) && (f.Until.IsZero() || r.Received.Before(f.Until))
}

// journalPrinter prints rows as a table or JSON lines.
type journalPrinter struct {
	e        *env
	loc      *time.Location
	json     bool
	withText bool
	enc      *json.Encoder
}

func newJournalPrinter(e *env, loc *time.Location, asJSON, withText bool) *journalPrinter {
	p := &journalPrinter{e: e, loc: loc, json: asJSON, withText: withText}
	if asJSON {
		p.enc = json.NewEncoder(e.stdout)
		p.enc.SetEscapeHTML(false)
	}
	return p
}

func (p *journalPrinter) rows(recs []router.Record, header bool) error {
	if p.json {
		for _, r := range recs {
			if err := p.enc.Encode(toEntry(r, p.loc, p.withText)); err != nil {
				return err
			}
		}
		return nil
	}
	tw := tabwriter.NewWriter(p.e.stdout, 0, 4, 2, ' ', 0)
	if header {
		h := "RECEIVED\tID\tSTATE\tL\tFROM\tTO\tTRIES\tCALL\t"
		if p.withText {
			h += "TEXT\t"
		}
		fmt.Fprintln(tw, h+"LAST ERROR")
	}
	for _, r := range recs {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%d\t%s\t", r.Received.In(p.loc).Format(tableTime), r.ID,
			r.State, orDash(r.Letter), r.OA, r.DA, r.Attempts, callSummary(r))
		if p.withText {
			fmt.Fprintf(tw, "%s\t", orDash(oneLine(r.Text, textExcerpt)))
		}
		fmt.Fprintln(tw, orDash(oneLine(r.LastError, 80)))
	}
	return tw.Flush()
}

func cmdJournal(ctx context.Context, e *env, c *common, jf journalFlags) int {
	cfg, store, err := c.openStore(ctx, e, router.OpenReadOnly)
	if err != nil {
		return fail(e, exitUsage, err)
	}
	defer store.Close()
	loc, err := cfg.location()
	if err != nil {
		return fail(e, exitUsage, err)
	}
	f, err := journalFilter(jf, time.Now(), loc)
	if err != nil {
		return fail(e, exitUsage, err)
	}
	j := router.NewJournal(store)
	start := time.Now()
	// What was written lately counts as printed: --follow shows what happens
	// from now on, not the rows a --limit or a filter left out of the listing.
	var recent []router.Stamp
	if jf.follow {
		if recent, err = j.Stamps(ctx, start.Add(-followWindow), 1<<20); err != nil {
			return fail(e, exitPartial, err)
		}
	}
	recs, err := j.List(ctx, f)
	if err != nil {
		return fail(e, exitPartial, err)
	}
	p := newJournalPrinter(e, loc, jf.json, !jf.noText)
	if jf.follow {
		slices.Reverse(recs) // like tail -f: oldest first, the newest last
	}
	if err := p.rows(recs, true); err != nil {
		return fail(e, exitPartial, err)
	}
	if !jf.follow {
		if len(recs) == 0 && !jf.json {
			fmt.Fprintln(e.stdout, "no messages match")
		}
		return exitOK
	}
	if err := follow(ctx, j, p, f, recs, recent, start, jf.poll); err != nil && ctx.Err() == nil {
		return fail(e, exitPartial, err)
	}
	return exitOK
}

// followWindow is how far back each --follow poll looks. A row's updated time
// is stamped just before its batch commits, so a row can appear in the
// database a little after a newer one: looking back this far (and remembering
// what was printed) shows it anyway. A write stalled for longer than this (a
// frozen database) is missed by --follow; the journal still has it.
const followWindow = 15 * time.Second

// follow prints rows as they are written until ctx ends (SIGINT). Each poll
// reads only the ids and write times in the window, through the index on
// updated, and then the rows that are new or changed.
func follow(ctx context.Context, j *router.Journal, p *journalPrinter, f router.Filter, printed []router.Record, recent []router.Stamp, start time.Time, poll time.Duration) error {
	if poll <= 0 {
		poll = 500 * time.Millisecond
	}
	seen := map[string]int64{}
	for _, s := range recent {
		seen[s.ID] = s.Updated.UnixMilli()
	}
	for _, r := range printed {
		seen[r.ID] = max(seen[r.ID], r.Updated.UnixMilli())
	}
	newest := start
	t := time.NewTicker(poll)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		from := newest.Add(-followWindow)
		for {
			stamps, err := j.Stamps(ctx, from, 2000)
			if err != nil {
				if ctx.Err() != nil {
					return nil
				}
				return err
			}
			var fresh []string
			for _, s := range stamps {
				if seen[s.ID] < s.Updated.UnixMilli() {
					fresh = append(fresh, s.ID)
				}
				if s.Updated.After(newest) {
					newest = s.Updated
				}
			}
			recs, err := j.GetMany(ctx, fresh)
			if err != nil {
				if ctx.Err() != nil {
					return nil
				}
				return err
			}
			slices.SortFunc(recs, func(a, b router.Record) int {
				if c := a.Updated.Compare(b.Updated); c != 0 {
					return c
				}
				return strings.Compare(a.ID, b.ID)
			})
			var show []router.Record
			for _, r := range recs {
				seen[r.ID] = r.Updated.UnixMilli()
				if matches(f, r) {
					show = append(show, r)
				}
			}
			if err := p.rows(show, false); err != nil {
				return err
			}
			if len(stamps) < 2000 {
				break
			}
			from = stamps[len(stamps)-1].Updated
		}
		cut := newest.Add(-2 * followWindow).UnixMilli()
		for id, u := range seen {
			if u < cut {
				delete(seen, id)
			}
		}
	}
}

// showView is `journal show --json`: the API's view of the message, and the
// raw detail for whoever debugs.
type showView struct {
	httpapi.MessageView
	Detail json.RawMessage `json:"detail,omitempty"`
}

func journalShow(ctx context.Context, e *env, c *common, asJSON, noText bool, id string) int {
	cfg, store, err := c.openStore(ctx, e, router.OpenReadOnly)
	if err != nil {
		return fail(e, exitUsage, err)
	}
	defer store.Close()
	loc, err := cfg.location()
	if err != nil {
		return fail(e, exitUsage, err)
	}
	j := router.NewJournal(store)
	src := httpapi.Source{Journal: j, Reports: dlr.NewStore(store).Of, Location: loc, HideText: noText}
	if rc, err := cfg.routerConfig(); err == nil {
		if a, err := router.NewAdmin(rc, j); err == nil {
			src.Locate = a.Locate
		}
	}
	v, err := src.Describe(ctx, id)
	if errors.Is(err, httpapi.ErrNotFound) {
		return fail(e, exitPartial, fmt.Errorf("no message %s in the journal or the spool", id))
	}
	if err != nil {
		return fail(e, exitPartial, err)
	}
	if asJSON {
		out := showView{MessageView: v}
		msgID := v.ID
		if v.JoinedInto != "" {
			msgID = v.JoinedInto
		}
		if rec, err := j.Get(ctx, msgID); err == nil && json.Valid([]byte(rec.Detail)) {
			out.Detail = json.RawMessage(rec.Detail)
		}
		enc := json.NewEncoder(e.stdout)
		enc.SetEscapeHTML(false)
		enc.SetIndent("", "  ")
		if err := enc.Encode(out); err != nil {
			return fail(e, exitPartial, err)
		}
		return exitOK
	}
	printView(e, v, loc)
	msgID := v.ID
	if v.JoinedInto != "" {
		msgID = v.JoinedInto
	}
	printLinkFacts(ctx, e, j, msgID, loc)
	return exitOK
}

// printLinkFacts adds, for a message sent to the mobile network, its link,
// what the receipts said, and each part's message id and receipt.
func printLinkFacts(ctx context.Context, e *env, j *router.Journal, id string, loc *time.Location) {
	rec, err := j.Get(ctx, id)
	if err != nil {
		return
	}
	line := func(label, format string, args ...any) {
		fmt.Fprintf(e.stdout, "%-13s %s\n", label+":", fmt.Sprintf(format, args...))
	}
	if l := detailString(rec.Detail, "link"); l != "" {
		line("link", "%s", l)
	}
	if h := detailString(rec.Detail, "handset"); h != "" {
		line("handset", "%s", h)
	}
	parts, err := j.Receipts(ctx, rec.ID)
	if err != nil {
		return
	}
	for _, p := range parts {
		rc := "no receipt yet"
		if !p.Reported.IsZero() {
			rc = fmt.Sprintf("receipt %s at %s", p.Stat, p.Reported.In(loc).Format(tableTime))
			if p.Err != "" {
				rc += " (error " + p.Err + ")"
			}
		}
		line(fmt.Sprintf("part %d/%d", p.Part, p.Parts), "message id %s, %s", p.Ref, rc)
	}
}

// printView writes a message's story for a person, one fact a line.
func printView(e *env, v httpapi.MessageView, loc *time.Location) {
	w := e.stdout
	line := func(label, format string, args ...any) {
		fmt.Fprintf(w, "%-13s %s\n", label+":", fmt.Sprintf(format, args...))
	}
	line("id", "%s", v.ID)
	if v.JoinedInto != "" {
		line("joined into", "%s (a part of a concatenated message; what follows is the whole message's)", v.JoinedInto)
	}
	if v.From != "" || v.To != "" {
		line("from → to", "%s → %s", v.From, v.To)
	}
	line("letter", "%s", orDash(v.Letter))
	line("state", "%s (%s)", v.State, v.Meaning)
	line("received", "%s", v.Received.In(loc).Format(tableTime))
	if v.Updated != nil {
		line("updated", "%s", v.Updated.In(loc).Format(tableTime))
	}
	line("attempts", "%d", v.Attempts)
	if v.NextAttempt != nil {
		line("next attempt", "%s", v.NextAttempt.In(loc).Format(tableTime))
	}
	if v.LastError != "" {
		line("last error", "%s", v.LastError)
	}
	if v.Text != nil {
		line("text", "%s", *v.Text)
	}
	for _, t := range v.Tries {
		reason := ""
		if t.Reason != "" {
			reason = ": " + t.Reason
		}
		line("try "+strconv.Itoa(t.N), "%s %s%s", t.At.In(loc).Format(tableTime), t.State, reason)
	}
	for _, f := range v.Files {
		line("file", "%s", f)
	}
	for _, call := range v.Calls {
		line("call", "%s after %d attempt(s) (%s)%s", call.Status, call.Attempts, call.File, prefixed("; ", call.Seen))
	}
	for _, w := range v.Ways {
		why := w.Reason
		if w.Cause != "" {
			why = w.Cause + ": " + why
		}
		if why != "" {
			why = " (" + why + ")"
		}
		line("way "+strconv.Itoa(w.Way+1), "%s %s %s%s", w.Letter, orDash(w.Extension), w.Outcome, why)
	}
	if len(v.Parts) > 0 {
		line("parts", "%s", strings.Join(v.Parts, ", "))
	}
	for _, r := range v.Related {
		line("related", "%s %s %s to %s", r.Kind, r.ID, orDash(r.State), orDash(r.To))
	}
	for _, r := range v.Reports {
		sent := make([]string, len(r.Sent))
		for i, s := range r.Sent {
			sent[i] = strconv.Itoa(s)
		}
		outcome := ""
		if r.Outcome != "" {
			outcome = "; " + r.Outcome
		}
		line("report", "%s mask %d, sent [%s], %s%s", r.Kind, r.Mask, strings.Join(sent, " "), r.State, outcome)
	}
}

// cmdPrune is `journal prune`.
func cmdPrune(ctx context.Context, e *env, c *common, olderThan string, dryRun bool) int {
	mode := router.OpenExisting
	if dryRun {
		mode = router.OpenReadOnly
	}
	cfg, store, err := c.openStore(ctx, e, mode)
	if err != nil {
		return fail(e, exitUsage, err)
	}
	defer store.Close()
	loc, err := cfg.location()
	if err != nil {
		return fail(e, exitUsage, err)
	}
	age, err := cfg.Journal.retention()
	if err != nil {
		return fail(e, exitUsage, err)
	}
	if olderThan != "" {
		if age, err = timespec.ParseDuration(olderThan); err != nil {
			return fail(e, exitUsage, fmt.Errorf("--older-than: %w", err))
		}
		if age < router.MinRetention {
			return fail(e, exitUsage, fmt.Errorf("--older-than %s is shorter than %s: a message's row must outlive any process still holding the message", olderThan, router.MinRetention))
		}
	}
	j := router.NewJournal(store)
	now := time.Now()
	cut := now.Add(-age)
	res, err := j.Prune(ctx, cut, 0, dryRun)
	verb := "pruned"
	if dryRun {
		verb = "would prune"
	}
	fmt.Fprintf(e.stdout, "%s %s last changed before %s (%s ago); messages still being retried are kept\n",
		verb, res, cut.In(loc).Format(tableTime), timespec.FormatDuration(age))
	if err != nil {
		return fail(e, exitPartial, err)
	}
	if !dryRun {
		n, err := j.PruneBatches(ctx, now)
		if err != nil {
			return fail(e, exitPartial, err)
		}
		if n > 0 {
			fmt.Fprintf(e.stdout, "forgot %d batch ids older than %s\n", n, timespec.FormatDuration(router.BatchRetention))
		}
	}
	return exitOK
}

func cmdRetry(ctx context.Context, e *env, c *common, state string, args []string) int {
	if state != "" && state != string(router.StateDeferred) {
		return fail(e, exitUsage, fmt.Errorf("only deferred messages can be retried, not %q", state))
	}
	_, a, store, err := c.openAdmin(ctx, e)
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
	_, a, store, err := c.openAdmin(ctx, e)
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
	cfg, a, store, err := c.openAdmin(ctx, e)
	if err != nil {
		return fail(e, exitUsage, err)
	}
	defer store.Close()
	sum, err := a.RecordEvidence(ctx, notify || cfg.Evidence.Notify)
	fmt.Fprintf(e.stdout, "%d call outcomes recorded, %d already known, %d not in the journal, %d notices queued, %d status reports queued, %d failed calls carried on, %d waiting for the dialplan's call result\n",
		sum.Recorded, sum.Known, sum.Orphans, len(sum.Notices), len(sum.Reports), len(sum.Retried), sum.Waiting)
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
		string(router.StateExpired), string(router.StateRejected), string(router.StateDropped), string(router.StateHeld),
		string(router.StateDuplicate)}
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
	case router.StateDuplicate:
		return "the phone sent it again; delivered once already"
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

func prefixed(p, s string) string {
	if s == "" {
		return ""
	}
	return p + s
}
