// Package router moves messages from the morx spool to their recipients: it claims
// spool files, parses them, looks the recipient up in the directory, dispatches by
// service letter to a channel, sends notices, and journals every message's fate.
//
// The order of steps is what keeps DESIGN.md's promises: a file is claimed by an
// atomic rename into a folder locked by this process; whatever the delivery produces
// is first written to a staging folder; the fate is then committed to the journal;
// only after that are the staged files renamed to where Asterisk reads them, and the
// claimed file removed. A crash at any point leaves a state that the next process
// finishes without losing or repeating a delivery. Work overlaps only where that
// order allows: a batch's journal rows are written while its files are staged (the
// commit waits for both), and a committed batch is published while the next one is
// claimed, read and looked up (its deliveries wait for it).
package router

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"text/template"
	"time"

	"smsrouter/asteriskconf/smsq"
	"smsrouter/channels"
	"smsrouter/internal/numplan"
)

// Config is everything the router needs to know.
type Config struct {
	Spool   string // Asterisk's spool root, holding sms/ and outgoing/
	WorkDir string // smsrouter's own folders; default <Spool>/smsrouter

	// SMSCNumber is the number notices and replies come from. Messages from it are
	// never answered with a notice, which is what stops notice loops.
	SMSCNumber string
	Location   *time.Location // how scts in spool files is read; default time.Local

	DefaultValidity time.Duration // when a message carries no vp; default 24h
	RetryMin        time.Duration // first retry delay; default 30s
	RetryMax        time.Duration // longest retry delay; default 30m
	ConcatTimeout   time.Duration // how long parts wait for their siblings; default 10m
	// Settle is how long a morx file must be left unchanged before it is taken when
	// the kernel cannot say whether someone is still writing it, and how long a file
	// that does not parse is given to be finished; default 2s.
	Settle          time.Duration
	BatchSize       int           // most messages per journal transaction; default 1024 (see firstBatch)
	Parallel        int           // deliveries running at once within a batch; default 8
	DeliveryTimeout time.Duration // deadline of one delivery attempt; default 60s
	Sync            bool          // fsync staged files and folders (survive power loss, not only crashes)
	RepairUTF8      bool          // undo app_sms 22.5+'s ud= double decoding (SPEC §1.5)
	// Rescan is how often Serve looks at the spool although inotify said
	// nothing (it drops events when its queue overflows); default 10s.
	Rescan   time.Duration
	Notices  Notices
	Observer Observer // optional: told every fate (metrics)

	// Plan is the numbering plan every recipient and sender is read with before
	// anything compares it (numplan.Plan; the zero value compares as written).
	Plan numplan.Plan
	// Routes carry numbers the directory does not know to a mobile link, tried in
	// order (see links.go).
	Routes []Route
	// Links are the delivery channels of the mobile links, by name.
	Links map[string]channels.Channel
	// Inbound maps the canonical numbers the mobile links own to the PBX numbers
	// their messages go to.
	Inbound map[string]Inbound

	// Retry are the rules by failure cause (DefaultRetryRules fills the rest).
	Retry RetryRules
	// CallResultWait is how long an archived call through an outcome context
	// waits for its call result (DefaultCallResultWait).
	CallResultWait time.Duration
	// Reports are the status reports a sender may ask for.
	Reports Reports

	Quiet       QuietHours  // quiet hours for deliveries that ring a phone
	Guards      Guards      // the duplicate and loop guards
	SelfService SelfService // changing one's own entry by SMS
}

// Notices are the texts sent to a sender when a message cannot be delivered. They are
// Go templates over .To (the recipient), .From (the sender) and .Reason. .Reason is
// always a sentence written for the sender (publicReason), never an error's text:
// what is really wrong goes to the journal and the log, for the admin.
type Notices struct {
	Unknown     string `toml:"unknown"`     // the recipient is not in the directory
	Disabled    string `toml:"disabled"`    // letter N
	NoService   string `toml:"no_service"`  // the letter names a channel this router does not run
	Unreachable string `toml:"unreachable"` // the recipient's directory row cannot be used
	Failed      string `toml:"failed"`      // the channel gave a definite failure
	Expired     string `toml:"expired"`     // retried until the message's validity ended
}

// DefaultNotices are the built-in notice texts.
var DefaultNotices = Notices{
	Unknown:     "Cannot deliver SMS to {{.To}}. Number does not exist.",
	Disabled:    "Cannot deliver SMS to {{.To}}. The recipient does not accept messages.",
	NoService:   "Cannot deliver SMS to {{.To}}. Its delivery service is not available.",
	Unreachable: "Cannot deliver SMS to {{.To}}. The number is not set up to receive messages.",
	Failed:      "Cannot deliver SMS to {{.To}}. {{.Reason}}",
	Expired:     "Cannot deliver SMS to {{.To}}. Delivery failed until the message expired.",
}

// publicReason is the .Reason a notice template sees: the sentence a channel gave
// for the sender (channels.PermanentBecause), or a fixed one per notice. The
// journal keeps the real reason; a phone never gets Go, SQL or Asterisk error text.
func publicReason(notice, said string) string {
	if said != "" {
		return said
	}
	switch notice {
	case "unknown":
		return "Number does not exist."
	case "disabled":
		return "The recipient does not accept messages."
	case "noservice":
		return "Its delivery service is not available."
	case "unreachable":
		return channels.PublicNotSetUp
	case "expired":
		return "Delivery failed until the message expired."
	}
	return "Delivery failed."
}

func (c *Config) fill() error {
	if c.Spool == "" {
		return errors.New("router: no spool folder configured")
	}
	if c.CallResultWait <= 0 {
		c.CallResultWait = DefaultCallResultWait
	}
	if c.SMSCNumber != "" && !ValidNumber(c.SMSCNumber) {
		return fmt.Errorf("router: %w", CheckNumber("SMSC number", c.SMSCNumber))
	}
	if err := c.Plan.Check(); err != nil {
		return fmt.Errorf("router: %w", err)
	}
	if err := checkRouting(c.Routes, c.Links, c.Inbound); err != nil {
		return fmt.Errorf("router: %w", err)
	}
	if err := c.fillRetry(); err != nil {
		return fmt.Errorf("router: %w", err)
	}
	if err := c.fillReports(); err != nil {
		return fmt.Errorf("router: %w", err)
	}
	if c.Location == nil {
		c.Location = time.Local
	}
	if c.DefaultValidity <= 0 {
		c.DefaultValidity = 24 * time.Hour
	}
	if c.RetryMin <= 0 {
		c.RetryMin = 30 * time.Second
	}
	if c.RetryMax < c.RetryMin {
		c.RetryMax = max(30*time.Minute, c.RetryMin)
	}
	if c.ConcatTimeout <= 0 {
		c.ConcatTimeout = 10 * time.Minute
	}
	if c.Settle <= 0 {
		c.Settle = 2 * time.Second
	}
	if c.BatchSize <= 0 {
		c.BatchSize = 1024
	}
	if c.Parallel <= 0 {
		c.Parallel = 8
	}
	if c.DeliveryTimeout <= 0 {
		c.DeliveryTimeout = 60 * time.Second
	}
	if c.Rescan <= 0 {
		c.Rescan = 10 * time.Second
	}
	if c.Quiet.Zone == nil {
		c.Quiet.Zone = c.Location
	}
	if c.Guards.DuplicateWindow == 0 {
		c.Guards.DuplicateWindow = 10 * time.Minute
	}
	if c.Guards.PairLimit == 0 {
		c.Guards.PairLimit = 10
	}
	if c.Guards.PairWindow <= 0 {
		c.Guards.PairWindow = 10 * time.Minute
	}
	if err := c.SelfService.check(); err != nil {
		return fmt.Errorf("router: %w", err)
	}
	d := DefaultNotices
	for _, p := range []struct {
		dst *string
		def string
	}{
		{&c.Notices.Unknown, d.Unknown}, {&c.Notices.Disabled, d.Disabled}, {&c.Notices.NoService, d.NoService},
		{&c.Notices.Unreachable, d.Unreachable}, {&c.Notices.Failed, d.Failed}, {&c.Notices.Expired, d.Expired},
	} {
		if *p.dst == "" {
			*p.dst = p.def
		}
	}
	return nil
}

// noticeNames are the notices by the names the router uses for them.
func (c *Config) noticeNames() map[string]string {
	return map[string]string{
		"unknown": c.Notices.Unknown, "disabled": c.Notices.Disabled, "noservice": c.Notices.NoService,
		"unreachable": c.Notices.Unreachable, "failed": c.Notices.Failed, "expired": c.Notices.Expired,
	}
}

// compile fills in the defaults and parses the notices. Each notice is also
// filled in once: a template that names a field other than .To, .From and
// .Reason parses, but would fail on every message it is needed for.
func (c Config) compile() (Config, map[string]*template.Template, error) {
	if err := c.fill(); err != nil {
		return c, nil, err
	}
	notices := map[string]*template.Template{}
	for name, text := range c.noticeNames() {
		t, err := template.New(name).Option("missingkey=error").Parse(text)
		if err == nil {
			err = t.Execute(io.Discard, noticeData{"5551001", "5550001", "Delivery failed."})
		}
		if err != nil {
			return c, nil, fmt.Errorf("router: notice %s: %w", noticeKey(name), err)
		}
		notices[name] = t
	}
	return c, notices, nil
}

// noticeData is what a notice template sees.
type noticeData struct{ To, From, Reason string }

// noticeKey is the configuration key of a notice ([notices] no_service).
func noticeKey(name string) string {
	if name == "noservice" {
		return "no_service"
	}
	return name
}

// Validate checks cfg the way New does, without creating or touching anything:
// for `smsrouter doctor` and for a configuration reloaded while serving.
func (c Config) Validate() error {
	_, _, err := c.compile()
	return err
}

// Router is one process's view of the queue. Several routers (drain and serve
// processes) may work on the same spool at once.
type Router struct {
	cfg      Config
	l        layout
	dir      Directory
	journal  *Journal
	channels map[byte]channels.Channel
	log      *slog.Logger
	now      func() time.Time

	owner   string // this process's claim folder name
	myClaim string
	lock    *ownerLock
	notices map[string]*template.Template
	mu      sync.Mutex // one pass at a time; held while cfg, notices, dir, journal or channels change
	// loc is cfg.Location for Wake, which runs outside passes (a channel's
	// event) and so cannot read cfg while Reconfigure may be changing it.
	loc atomic.Pointer[time.Location]
	// pending is a configuration waiting for the gap between two batches
	// (Reconfigure); reconfMu lets one Reconfigure run at a time.
	pending     atomic.Pointer[reconfig]
	reconfMu    sync.Mutex
	batchSeq    int
	spare       *spareStage // the next batch's staging folder, made ahead by serve
	lastCleanup time.Time
	kick        chan struct{} // wakes Serve (Wake)
	// uncertain lists batches whose journal write returned an error, oldest first:
	// the journal decides them before anything else is claimed (settleUncertain).
	uncertain []*batch
	// finishing is closed when the batch finishLater started is finished.
	finishing chan struct{}
	// notBefore holds morx files that were not whole yet, and when to look again;
	// nextLook is the earliest of those times in the current pass.
	notBefore map[string]time.Time
	nextLook  time.Time
	// morxCursor reads morx on from batch to batch within one pass (eachMorx);
	// morxUnread are names it has read that no batch has looked at yet.
	morxCursor *os.File
	morxUnread []string
}

// firstBatch is the most a pass's first batch takes: a quarter of BatchSize.
// Each batch that comes back full doubles the next one's limit, up to
// BatchSize: the first messages of a burst are published as soon as with small
// batches, while a backlog goes in large ones, whose commit writes each
// touched index page once for more messages (at 100,000 queued, 1,024 a batch
// wrote 40 % fewer bytes per message than 256; issue 17).
func firstBatch(c Config) int { return max(1, c.BatchSize/4) }

// New prepares the spool folders and takes this process's claim folder.
func New(cfg Config, dir Directory, journal *Journal, chans map[byte]channels.Channel, log *slog.Logger) (*Router, error) {
	cfg, notices, err := cfg.compile()
	if err != nil {
		return nil, err
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	r := &Router{
		cfg: cfg, l: newLayout(cfg.Spool, cfg.WorkDir), dir: dir, journal: journal,
		channels: chans, log: log, now: time.Now, notices: notices,
		kick: make(chan struct{}, 1), notBefore: map[string]time.Time{},
	}
	r.loc.Store(cfg.Location)
	if err := r.l.create(); err != nil {
		return nil, err
	}
	host, _ := os.Hostname()
	r.owner = fmt.Sprintf("%s-%d-%s", safeName(host), os.Getpid(), NewID(time.Now())[14:])
	r.myClaim = filepath.Join(r.l.claimed, r.owner)
	lk, err := newClaimFolder(r.myClaim)
	if err != nil {
		return nil, fmt.Errorf("router: claim folder: %w", err)
	}
	r.lock = lk
	return r, nil
}

// Close gives up the claim folder. Files still in it (there are none after a
// finished pass) would be adopted by the next process.
func (r *Router) Close() error {
	// First, while the claim folder still says this process owns it.
	r.mu.Lock()
	r.dropSpareStage()
	r.mu.Unlock()
	entries, _ := os.ReadDir(r.myClaim)
	// With uncertain batches left, keep the folder: the next process adopts it and
	// settles them (recoverStages).
	empty := len(r.uncertain) == 0
	for _, e := range entries {
		if e.Name() != ".lock" {
			empty = false
		}
	}
	if empty {
		os.Remove(filepath.Join(r.myClaim, ".lock"))
		os.Remove(r.myClaim)
	}
	r.lock.release()
	return nil
}

// Inbox is where smsrouter's own ingresses queue messages (Submit, SubmitTo).
func (r *Router) Inbox() string { return r.l.inbox }

// Outcome is what happened to one message in a pass.
type Outcome struct {
	ID, OA, DA string
	Letter     string
	State      State
	Error      string
	Files      []string // artefacts published
	Source     string
}

// Summary counts a pass's outcomes. Outcomes lists the first listedOutcomes of
// them and, past those, only the messages that did not get through (deferred or
// rejected, the ones drain -v names).
type Summary struct {
	Outcomes []Outcome
	Counts   map[State]int
}

// Total is how many messages the pass handled, listed or not.
func (s *Summary) Total() int {
	n := 0
	for _, c := range s.Counts {
		n += c
	}
	return n
}

// listedOutcomes bounds what a Summary keeps of the messages that got through:
// kept all, a pass over a backlog of 100,000 held some 40 MB of outcomes until
// it ended, which the garbage collector walked on every cycle (issue 17).
const listedOutcomes = 1000

func (s *Summary) add(o Outcome) {
	if s.Counts == nil {
		s.Counts = map[State]int{}
	}
	s.Counts[o.State]++
	// Until the bound every outcome is listed, so the list's length counts them.
	if len(s.Outcomes) < listedOutcomes || o.State == StateDeferred || o.State == StateRejected {
		s.Outcomes = append(s.Outcomes, o)
	}
}

// Clean reports whether every message of the pass reached a final, non-rejected
// state (drain's exit code 0).
func (s *Summary) Clean() bool {
	return s.Counts[StateDeferred] == 0 && s.Counts[StateRejected] == 0
}

// Drain processes everything that is due now — new spool files, deferred messages
// whose time has come, complete or timed-out concatenations — and returns when
// nothing is left to do.
func (r *Router) Drain(ctx context.Context) (*Summary, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	sum := &Summary{}
	r.nextLook = time.Time{}
	r.forgetOldLooks()
	r.closeMorxCursor() // every pass reads morx from the start
	defer r.closeMorxCursor()
	defer r.awaitFinish() // no batch outlives its pass
	if err := r.adoptOrphans(ctx, sum); err != nil {
		return sum, err
	}
	limit := firstBatch(r.cfg) // how many the pass's next batch may take
	for {
		if err := ctx.Err(); err != nil {
			r.reportUncertain(sum)
			return sum, err
		}
		// An undecided batch first: running its messages again, or anything else
		// while the journal cannot answer, could deliver twice.
		if err := r.settleUncertain(ctx, sum); err != nil {
			r.log.Warn("journal unreachable; waiting for it before anything else is tried", "batches", len(r.uncertain), "err", err)
			r.reportUncertain(sum)
			return sum, nil
		}
		// Between two batches, and with nothing undecided in the way, is where
		// a reloaded configuration takes over (Reconfigure).
		if r.pending.Load() != nil {
			r.awaitFinish()
			r.applyPending()
		}
		limit = min(limit, r.cfg.BatchSize) // a reload may have lowered it
		items, err := r.claimBatch(limit)
		if err != nil {
			return sum, err
		}
		if len(items) >= limit {
			limit = min(2*limit, r.cfg.BatchSize)
		}
		if len(items) == 0 {
			if r.finishing != nil {
				// What it publishes may be work for this pass (a reply in the
				// inbox): look once more when it is done.
				r.awaitFinish()
				continue
			}
			r.cleanup(ctx)
			return sum, nil
		}
		r.processBatch(ctx, items, sum)
	}
}

// forgetOldLooks drops remembered morx files that have long been due: they were
// taken, or removed, by someone else.
func (r *Router) forgetOldLooks() {
	cut := r.now().Add(-time.Minute)
	for name, t := range r.notBefore {
		if t.Before(cut) {
			delete(r.notBefore, name)
		}
	}
}

// settleRetry is how soon Serve asks the journal again about undecided batches.
const settleRetry = 2 * time.Second

// NextDue reports when the earliest deferred message or waiting concatenation is
// due, an undecided batch should be settled, or a morx file that was still being
// written should be looked at again; the zero time when there is nothing.
func (r *Router) NextDue() time.Time {
	r.mu.Lock()
	defer r.mu.Unlock()
	next := r.nextLook
	if len(r.uncertain) > 0 {
		if t := r.now().Add(settleRetry); next.IsZero() || t.Before(next) {
			next = t
		}
	}
	if entries, err := os.ReadDir(r.l.deferred); err == nil {
		for _, e := range entries {
			if due, _, ok := parseDeferredName(e.Name()); ok && (next.IsZero() || due.Before(next)) {
				next = due
			}
		}
	}
	if groups, err := r.scanParts(); err == nil {
		for _, g := range groups {
			due := g.oldest.Add(r.cfg.ConcatTimeout)
			if next.IsZero() || due.Before(next) {
				next = due
			}
		}
	}
	return next
}

// cleanupEvery is how often channels that leave files behind may tidy up.
const cleanupEvery = 5 * time.Minute

func (r *Router) cleanup(ctx context.Context) {
	now := r.now()
	if now.Sub(r.lastCleanup) < cleanupEvery {
		return
	}
	r.lastCleanup = now
	keep := max(r.cfg.Guards.DuplicateWindow, r.cfg.Guards.PairWindow)
	if err := r.journal.pruneGuards(ctx, now.Add(-keep)); err != nil {
		r.log.Warn("cleanup failed", "err", err)
	}
	for letter, ch := range r.channels {
		if j, ok := ch.(channels.Janitor); ok {
			if err := j.Cleanup(ctx, now); err != nil {
				r.log.Warn("cleanup failed", "letter", string(letter), "err", err)
			}
		}
	}
	for name, ch := range r.cfg.Links {
		if j, ok := ch.(channels.Janitor); ok {
			if err := j.Cleanup(ctx, now); err != nil {
				r.log.Warn("cleanup failed", "link", name, "err", err)
			}
		}
	}
}

// Wake makes every deferred message for recipient da due now and wakes Serve. A
// channel calls it when it learns that the recipient can take messages again (a
// softphone registered), so held messages go out at once instead of at their next
// backoff slot. It returns how many messages it woke.
func (r *Router) Wake(da string) (int, error) {
	entries, err := os.ReadDir(r.l.deferred)
	if err != nil {
		return 0, fmt.Errorf("wake %s: %w", da, err)
	}
	now := r.now()
	woken := 0
	for _, e := range entries {
		due, c, ok := parseDeferredName(e.Name())
		if !ok || !due.After(now) {
			continue
		}
		src := filepath.Join(r.l.deferred, e.Name())
		data, _, err := readCapped(src, maxSpoolFile)
		if err != nil {
			continue // taken by a drain meanwhile
		}
		if m, err := smsq.Parse(data, r.loc.Load()); err != nil || m.DA != da {
			continue
		}
		if err := renameNoReplace(src, filepath.Join(r.l.deferred, deferredName(now, c))); err == nil {
			woken++
		}
	}
	if woken > 0 {
		select {
		case r.kick <- struct{}{}:
		default:
		}
	}
	return woken, nil
}
