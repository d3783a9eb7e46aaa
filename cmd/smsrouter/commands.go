package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/user"
	"sort"
	"strings"
	"sync"
	"time"

	"smsrouter/asteriskconf/smsq"
	"smsrouter/channels"
	"smsrouter/migrations"
	"smsrouter/router"
)

// system is everything a running router needs, wired from the config.
type system struct {
	cfg     Config
	store   *router.Store
	journal *router.Journal
	dir     *router.SQLDirectory
	router  *router.Router
	chans   map[byte]channels.Channel
	// closeChannels ends channels holding a connection (the T channel's AMI session).
	closeChannels func()
	// links are the mobile links this process runs (serve only), and
	// linkChans the channels the router reaches every link through (those of
	// links, or link.Elsewhere's that hand messages to serve).
	links     *mobileLinks
	linkChans map[string]channels.Channel
}

func (s *system) close() {
	if s.closeChannels != nil {
		s.closeChannels()
	}
	if s.router != nil {
		s.router.Close()
	}
	if s.store != nil {
		s.store.Close()
	}
}

// errDatabaseDown marks a database that did not answer: a passing state, not a
// mistake in the configuration, so drain exits 1 (messages wait) rather than 2.
var errDatabaseDown = errors.New("database unreachable")

// openStore opens the database and insists that the schema is in place: running
// against an unmigrated database would defer every message with a confusing error.
// Only migrate creates a database; mode says whether the command may write.
func openStore(ctx context.Context, cfg Config, mode router.OpenMode) (*router.Store, error) {
	store, err := router.OpenStoreMode(cfg.dsn(), mode)
	if err != nil {
		if router.NoDatabase(err) {
			return nil, noDatabase(cfg.dsn())
		}
		return nil, err
	}
	v, err := store.SchemaVersion(ctx)
	if err != nil {
		store.Close()
		if router.NoDatabase(err) {
			return nil, noDatabase(cfg.dsn())
		}
		if strings.Contains(err.Error(), "smsrouter_schema") {
			return nil, fmt.Errorf("database %s has no smsrouter schema: run `smsrouter migrate` first", store)
		}
		return nil, fmt.Errorf("%w: %s: %v", errDatabaseDown, store, err)
	}
	if v == 0 {
		store.Close()
		return nil, fmt.Errorf("database %s has no smsrouter schema: run `smsrouter migrate` first", store)
	}
	if latest := migrations.Latest(store.Dialect); v < latest {
		// An older schema lacks tables this version writes (every journal write would
		// fail and every message wait): say so at once.
		store.Close()
		return nil, fmt.Errorf("database %s has schema version %d; this smsrouter needs %d: run `smsrouter migrate`", store, v, latest)
	}
	return store, nil
}

// noDatabase says that the database is missing and how to make it. Nothing
// but migrate creates one, so that a command run by the wrong user (root) never
// leaves a database behind that the service cannot open.
func noDatabase(dsn string) error {
	if strings.HasPrefix(dsn, "mysql:") {
		return fmt.Errorf("database %s does not exist on the server: create it with `smsrouter migrate --create-database` (same --config/--db), or CREATE DATABASE … CHARACTER SET utf8mb4 and then `smsrouter migrate`", router.RedactDSN(dsn))
	}
	return fmt.Errorf("database %s does not exist yet: create it with `smsrouter migrate` (same --config/--db), as the user the service runs as", dsn)
}

// openSystem wires the router. With runLinks (serve) it also builds the mobile
// links, to be started with startLinks; without, messages for a link are
// handed to the serve process that runs it.
func openSystem(ctx context.Context, e *env, cfg Config, runLinks bool) (*system, error) {
	p, err := prepareRouting(cfg)
	if err != nil {
		return nil, err
	}
	store, err := openStore(ctx, cfg, router.OpenExisting)
	if err != nil {
		return nil, err
	}
	store.SetPool(dbPool(cfg, false))
	return newSystem(e, p, store, runLinks)
}

// newSystem builds the channels and the router of a prepared configuration
// over an open store, which it owns from then on (closed on error). With
// runLinks (serve) it builds the mobile links too, to be started by the caller.
func newSystem(e *env, p *plan, store *router.Store, runLinks bool) (*system, error) {
	s := &system{cfg: p.cfg, store: store, journal: router.NewJournal(store), dir: router.NewSQLDirectory(store)}
	chans, err := p.build(store)
	if err != nil {
		s.close()
		return nil, err
	}
	rc := p.rc
	rc.Observer = e.observer
	s.linkChans = elsewhereLinks(p.cfg)
	if runLinks {
		if s.links, s.linkChans, err = buildLinks(p.cfg, rc, s.journal, e.log); err != nil {
			closeChannels(chans, e.log)
			s.close()
			return nil, err
		}
	}
	rc.Links = s.linkChans
	s.router, err = router.New(rc, s.dir, s.journal, chans, e.log)
	if err != nil {
		closeChannels(chans, e.log)
		s.close()
		return nil, err
	}
	s.chans = chans
	s.closeChannels = attachChannels(chans, s.router, e.log)
	return s, nil
}

func cmdDrain(ctx context.Context, e *env, c *common, quiet bool) int {
	c.quietLog = true // one line per message's fate only with -v: the summary says it
	cfg, err := c.load(e)
	if err != nil {
		return fail(e, exitUsage, err)
	}
	s, err := openSystem(ctx, e, cfg, false)
	if errors.Is(err, errDatabaseDown) {
		return fail(e, exitPartial, fmt.Errorf("%w; messages wait in the spool until it answers", err))
	}
	if err != nil {
		return fail(e, exitUsage, err)
	}
	defer s.close()
	sum, err := s.router.Drain(ctx)
	drainEvidence(ctx, e, s) // outcomes of calls that ended since the last run
	if err != nil {
		printSummary(e, sum, false, c.verbose)
		return fail(e, exitPartial, err)
	}
	printSummary(e, sum, quiet, c.verbose)
	if !sum.Clean() {
		return exitPartial
	}
	return exitOK
}

// summaryStates are the states of a drain's summary line, in the order a
// message's life goes, each with what it means for the count before it.
var summaryStates = []struct {
	state   router.State
	meaning string
}{
	{router.StateDelivered, "handed to their channel"},
	{router.StateHeld, "parts waiting for the rest of a concatenated message"},
	{router.StateDeferred, "temporary failure, will be retried"},
	{router.StateBounced, "undeliverable, the sender was told"},
	{router.StateExpired, "validity ended before delivery, the sender was told"},
	{router.StateRejected, "malformed, moved to smsrouter/rejected with a .reason file"},
	{router.StateDropped, "undeliverable, no one to tell"},
	{router.StateDuplicate, "sent again by the phone, delivered before"},
}

// printSummary prints drain's one summary line (nothing when quiet) and, when
// verbose, a line for each message that did not get through, with its reason.
func printSummary(e *env, sum *router.Summary, quiet, verbose bool) {
	if sum == nil || quiet {
		return
	}
	if sum.Total() == 0 {
		fmt.Fprintln(e.stdout, "nothing to do")
		return
	}
	fmt.Fprintln(e.stdout, summaryLine(sum))
	if !verbose {
		return
	}
	for _, o := range sum.Outcomes {
		if o.State == router.StateDeferred || o.State == router.StateRejected {
			fmt.Fprintf(e.stdout, "  %s %s %s→%s: %s\n", o.State, o.ID, o.OA, o.DA, o.Error)
		}
	}
}

// summaryLine is "N messages handled: delivered 3 (…), held 2 (…)". Notices and
// joined concatenations are messages of their own, and a part that waits for its
// siblings is counted as held, so N can exceed the files that were queued.
func summaryLine(sum *router.Summary) string {
	var parts []string
	seen := 0
	for _, s := range summaryStates {
		if n := sum.Counts[s.state]; n > 0 {
			parts = append(parts, fmt.Sprintf("%s %d (%s)", s.state, n, s.meaning))
			seen += n
		}
	}
	if seen < sum.Total() { // a state this list does not know yet
		known := map[router.State]bool{}
		for _, s := range summaryStates {
			known[s.state] = true
		}
		var others []string
		for st, n := range sum.Counts {
			if !known[st] {
				others = append(others, fmt.Sprintf("%s %d", st, n))
			}
		}
		sort.Strings(others)
		parts = append(parts, others...)
	}
	total := sum.Total()
	line := fmt.Sprintf("%d %s handled: %s", total, plural(total, "message", "messages"), strings.Join(parts, ", "))
	if !sum.Clean() {
		var why []string
		for _, st := range []router.State{router.StateDeferred, router.StateRejected} {
			if sum.Counts[st] > 0 {
				why = append(why, "smsrouter journal --state "+string(st))
			}
		}
		line += "; why: " + strings.Join(why, ", ") + " (or drain -v)"
	}
	return line
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}

// dbPool is how many queries one process may have running at once, so that
// none waits for a connection while the database idles: the batch's parallel
// deliveries, the FastAGI handlers when it serves them, and a few for the
// journal, the evidence reader and the periodic jobs. MariaDB's max_connections
// must leave room for it (serve with FastAGI needs 268 with the defaults);
// connections are opened only as needed and closed after a minute idle.
func dbPool(cfg Config, withAGI bool) int {
	n := cfg.Queue.Parallel
	if n <= 0 {
		n = 8 // router.Config's default
	}
	if withAGI {
		n += agiPool
	}
	return n + 4
}

// agiPool is how many database connections the FastAGI handlers use at once. Their
// directory lookups share queries (router.Coalescing: one query out at a time),
// so what remains is the journal reads of `route` and `postsms`: a few, however
// many handlers run, which keeps the pool far below MariaDB's max_connections.
const agiPool = 8

// watchSpool runs the channels' spool watchers while serve runs. A watcher that
// fails is logged and its channel carries on without it: it stays correct, it
// only learns less.
func watchSpool(ctx context.Context, e *env, chans map[byte]channels.Channel) (wait func()) {
	var wg sync.WaitGroup
	for letter, ch := range chans {
		if w, ok := ch.(channels.SpoolWatcher); ok {
			wg.Go(func() {
				if err := w.Watch(ctx); err != nil {
					e.log.Warn("spool watch stopped", "letter", string(letter), "err", err)
				}
			})
		}
	}
	return wg.Wait
}

func cmdSend(ctx context.Context, e *env, c *common, from, to, via string, args []string) int {
	if from == "" || to == "" {
		fmt.Fprintln(e.stderr, "usage: smsrouter send --from A --to B TEXT (use - to read the text from standard input)")
		return exitUsage
	}
	text := strings.Join(args, " ")
	if text == "-" {
		in, err := textOrStdin(e, text)
		if err != nil {
			return fail(e, exitUsage, err)
		}
		text = strings.TrimSuffix(in, "\n") // echo's newline is not part of the message
	}
	cfg, err := c.load(e)
	if err != nil {
		return fail(e, exitUsage, err)
	}
	if st, err := os.Stat(cfg.Spool); err != nil || !st.IsDir() {
		return fail(e, exitUsage, fmt.Errorf("spool %s is not a folder (pass --spool)", cfg.Spool))
	}
	inbox := router.InboxDir(cfg.workDir())
	if err := os.MkdirAll(inbox, 0o770); err != nil {
		return fail(e, exitUsage, err)
	}
	if via != "" {
		return sendVia(ctx, e, c, cfg, from, to, via, text)
	}
	id, err := router.SubmitTo(inbox, from, to, text, time.Now())
	if err != nil {
		return fail(e, exitUsage, err)
	}
	fmt.Fprintln(e.stdout, id)
	return exitOK
}

// sendVia queues a message for the named mobile link, after checking that the
// link exists and the number is not a PBX number (which keeps its letter).
func sendVia(ctx context.Context, e *env, c *common, cfg Config, from, to, via, text string) int {
	rc, err := cfg.routerConfig()
	if err != nil {
		return fail(e, exitUsage, err)
	}
	known := false
	for _, l := range cfg.Links {
		known = known || l.Name == via
	}
	if !known {
		return fail(e, exitUsage, fmt.Errorf("--via %q: no [[link]] of that name (configured: %s)", via, strings.Join(sortedLinks(cfg), ", ")))
	}
	if err := router.CheckNumber("recipient", to); err != nil {
		return fail(e, exitUsage, err)
	}
	store, err := openStore(ctx, cfg, router.OpenReadOnly)
	if err != nil {
		return fail(e, exitUsage, err)
	}
	defer store.Close()
	canonical := rc.Plan.Normalize(to)
	switch _, err := router.NewSQLDirectory(store).Lookup(ctx, canonical); {
	case err == nil:
		return fail(e, exitUsage, fmt.Errorf("--via: %s is a PBX number (in PBXNumbers); it keeps its own letter", canonical))
	case !errors.Is(err, router.ErrUnknownNumber):
		return fail(e, exitPartial, err)
	}
	if _, ok := rc.Inbound[canonical]; ok {
		return fail(e, exitUsage, fmt.Errorf("--via: %s is a number of a mobile link; a message to it comes back to the PBX", canonical))
	}
	id, err := router.SubmitVia(cfg.workDir(), via, from, to, text, time.Now())
	if err != nil {
		return fail(e, exitUsage, err)
	}
	fmt.Fprintln(e.stdout, id)
	return exitOK
}

func cmdRoute(ctx context.Context, e *env, c *common, numbers []string) int {
	cfg, store, err := c.openStore(ctx, e, router.OpenReadOnly)
	if err != nil {
		return fail(e, exitUsage, err)
	}
	defer store.Close()
	rc, err := cfg.routerConfig()
	if err != nil {
		return fail(e, exitUsage, err)
	}
	dir := router.NewSQLDirectory(store)
	code := exitOK
	for _, n := range numbers {
		w, err := router.Explain(ctx, rc, dir, n)
		switch {
		case errors.Is(err, router.ErrNotNumber):
			fmt.Fprintf(e.stdout, "%s: %v\n", n, err)
			code = exitPartial
			continue
		case err != nil:
			return fail(e, exitPartial, err)
		}
		head := n
		if w.Canonical != n {
			head = fmt.Sprintf("%s → %s", n, w.Canonical)
		}
		fmt.Fprintf(e.stdout, "%s\n  plan:  %s\n  way:   %s\n", head, w.Plan, w.Why)
		if w.Unknown || (w.Entry != nil && w.Entry.Problem != "") {
			code = exitPartial
		}
	}
	return code
}

func cmdLookup(ctx context.Context, e *env, c *common, numbers []string) int {
	_, store, err := c.openStore(ctx, e, router.OpenReadOnly)
	if err != nil {
		return fail(e, exitUsage, err)
	}
	defer store.Close()
	dir := router.NewSQLDirectory(store)
	code := exitOK
	for _, n := range numbers {
		if err := router.CheckNumber("number", n); err != nil {
			fmt.Fprintf(e.stdout, "%s\tinvalid\t%v\n", n, err)
			code = exitPartial
			continue
		}
		entry, err := dir.Lookup(ctx, n)
		switch {
		case errors.Is(err, router.ErrUnknownNumber):
			fmt.Fprintf(e.stdout, "%s\tunknown\n", n)
			code = exitPartial
		case err != nil:
			return fail(e, exitPartial, err)
		case entry.Problem != "":
			// What the router would bounce with the "unreachable" notice.
			fmt.Fprintf(e.stdout, "%s\tunusable\t%s\n", n, entry.Problem)
			code = exitPartial
		default:
			fmt.Fprintf(e.stdout, "%s\t%c\t%s\t%s\n", n, entry.Letter, entry.Extension, letterMeaning(entry.Letter))
		}
	}
	return code
}

func letterMeaning(l byte) string {
	switch l {
	case 'S':
		return "SMS to the phone"
	case 'F':
		return "fax"
	case 'V':
		return "voice call"
	case 'C':
		return "command service"
	case 'T':
		return "SIP message"
	case 'N':
		return "messaging disabled"
	case router.LetterLink:
		return "mobile network, through a link"
	}
	return "unknown letter"
}

// cmdNumber edits the directory; a is the verb and its arguments, noCheck
// voice's --no-check.
func cmdNumber(ctx context.Context, e *env, c *common, noCheck bool, a []string) int {
	bad := func() int {
		fmt.Fprintln(e.stderr, "usage: smsrouter number set NUMBER LETTER EXTENSION | smsrouter number delete NUMBER | smsrouter number voice [--no-check] NUMBER LANG|default [VOICE] | smsrouter number pin NUMBER PIN|off | smsrouter number unlock NUMBER")
		return exitUsage
	}
	if len(a) == 0 || !(a[0] == "set" && len(a) == 4 || a[0] == "delete" && len(a) == 2 || a[0] == "voice" && (len(a) == 3 || len(a) == 4) ||
		a[0] == "pin" && len(a) == 3 || a[0] == "unlock" && len(a) == 2) {
		return bad()
	}
	if err := router.CheckNumber("number", a[1]); err != nil {
		return fail(e, exitUsage, err)
	}
	cfg, store, err := c.openStore(ctx, e, router.OpenExisting)
	if err != nil {
		return fail(e, exitUsage, err)
	}
	defer store.Close()
	if a[0] == "voice" {
		return numberVoice(ctx, e, cfg.Voice, store, a[1:], !noCheck)
	}
	if a[0] == "pin" || a[0] == "unlock" {
		return numberPIN(ctx, e, store, a)
	}
	if a[0] == "delete" {
		if _, err := store.DB.ExecContext(ctx, "DELETE FROM PBXNumbers WHERE Account = ?", a[1]); err != nil {
			return fail(e, exitPartial, err)
		}
		return exitOK
	}
	// The router's own rules: a row this refuses is one it would bounce.
	updated, err := store.SetNumber(ctx, a[1], a[2], a[3])
	switch {
	case errors.Is(err, router.ErrBadEntry):
		return fail(e, exitUsage, err)
	case err != nil:
		return fail(e, exitPartial, err)
	case updated > 1:
		fmt.Fprintf(e.stdout, "%s: updated all %d rows of this number (PBXNumbers has no primary key and holds it %d times; consider deleting the duplicates)\n", a[1], updated, updated)
	}
	return exitOK
}

// numberPIN is `number pin NUMBER PIN|off` and `number unlock NUMBER`.
func numberPIN(ctx context.Context, e *env, store *router.Store, a []string) int {
	by := "cli"
	if u, err := user.Current(); err == nil {
		by += ":" + u.Username
	}
	var err error
	if a[0] == "unlock" {
		err = store.Unlock(ctx, a[1], by, time.Now())
	} else {
		pin := a[2]
		if strings.EqualFold(pin, "off") {
			pin = ""
		}
		err = store.SetPIN(ctx, a[1], pin, by, "", time.Now())
	}
	switch {
	case errors.Is(err, router.ErrBadEntry):
		return fail(e, exitUsage, err)
	case errors.Is(err, router.ErrUnknownNumber):
		return fail(e, exitUsage, fmt.Errorf("%w: add it first with smsrouter number set", err))
	case err != nil:
		return fail(e, exitPartial, err)
	}
	return exitOK
}

func cmdMigrate(ctx context.Context, e *env, c *common, createDB bool) int {
	cfg, err := c.load(e)
	if err != nil {
		return fail(e, exitUsage, err)
	}
	if createDB {
		created, err := router.CreateDatabase(ctx, cfg.dsn())
		if err != nil {
			return fail(e, exitPartial, err)
		}
		if created != "" {
			fmt.Fprintf(e.stdout, "created database %s\n", created)
		}
	}
	store, err := router.OpenStore(cfg.dsn())
	if err != nil {
		return fail(e, exitUsage, err)
	}
	defer store.Close()
	applied, err := store.Migrate(ctx)
	if router.NoDatabase(err) {
		return fail(e, exitUsage, noDatabase(cfg.dsn()))
	}
	for _, a := range applied {
		fmt.Fprintf(e.stdout, "applied %s\n", a)
	}
	if err != nil {
		return fail(e, exitPartial, err)
	}
	v, _ := store.SchemaVersion(ctx)
	fmt.Fprintf(e.stdout, "%s: schema version %d\n", store, v)
	return exitOK
}

// inspected is one spool file as `smsrouter inspect` prints it.
type inspected struct {
	File     string   `json:"file"`
	Error    string   `json:"error,omitempty"`
	OA       string   `json:"oa,omitempty"`
	DA       string   `json:"da,omitempty"`
	SCTS     string   `json:"scts,omitempty"`
	Text     string   `json:"text"`
	UDH      string   `json:"udh,omitempty"`
	DCS      *int     `json:"dcs,omitempty"`
	MR       *int     `json:"mr,omitempty"`
	VP       int      `json:"vp,omitempty"`
	SRR      bool     `json:"srr,omitempty"`
	RP       bool     `json:"rp,omitempty"`
	Concat   string   `json:"concat,omitempty"`
	Warnings []string `json:"warnings,omitempty"`
}

func cmdInspect(ctx context.Context, e *env, c *common, files []string) int {
	cfg, err := c.load(e)
	if err != nil {
		return fail(e, exitUsage, err)
	}
	loc, err := cfg.location()
	if err != nil {
		return fail(e, exitUsage, err)
	}
	enc := json.NewEncoder(e.stdout)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	code := exitOK
	for _, path := range files {
		out := inspected{File: path}
		data, err := os.ReadFile(path)
		var m *smsq.Message
		if err == nil {
			m, err = smsq.Parse(data, loc)
		}
		if err != nil {
			out.Error = err.Error()
			code = exitPartial
		} else {
			out.OA, out.DA, out.Text, out.VP, out.SRR, out.RP, out.Warnings = m.OA, m.DA, m.Text, m.VP, m.SRR, m.RP, m.Warnings
			if !m.SCTS.IsZero() {
				out.SCTS = m.SCTS.Format(time.RFC3339)
			}
			if m.HasUDH {
				out.UDH = fmt.Sprintf("%X", m.UDH)
			}
			if m.DCS >= 0 {
				out.DCS = &m.DCS
			}
			if m.MR >= 0 {
				out.MR = &m.MR
			}
			if ref, total, seq, ok := m.Concat(); ok {
				out.Concat = fmt.Sprintf("part %d of %d, reference %d", seq, total, ref)
			}
		}
		if err := enc.Encode(out); err != nil {
			return fail(e, exitPartial, err)
		}
	}
	return code
}
