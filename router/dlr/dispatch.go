package dlr

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"smsrouter/router"
)

// The defaults of Config's fields.
const (
	DefaultPoll     = time.Second
	DefaultTimeout  = 10 * time.Second
	DefaultRetryMin = 5 * time.Second
	DefaultRetryMax = 10 * time.Minute
	DefaultGiveUp   = 24 * time.Hour
	// DefaultParallel is small: each request handled holds a database
	// connection beside the router's own queries.
	DefaultParallel = 4
	DefaultBatch    = 200
)

// Config tunes a Dispatcher; zero fields get the defaults.
type Config struct {
	Poll     time.Duration // how often the journal is looked at
	Timeout  time.Duration // one Send at most
	RetryMin time.Duration // the first wait after a failed Send; it doubles up to RetryMax
	RetryMax time.Duration
	GiveUp   time.Duration // a report failing this long since its first failure closes the request
	Parallel int           // requests handled at once
	Batch    int           // requests read per pass
	// Owner names this process in the leases it takes (host and pid).
	Owner string
	// Alive, when set, says whether the process named by a lease's owner still
	// runs. Run asks it at start, so that requests leased by a process that died
	// (kill -9, a crash) are taken up at once rather than when the lease runs
	// out. It must answer true when it cannot tell (another host).
	Alive   func(owner string) bool
	Senders map[string]Sender // by Request.Kind
	Log     *slog.Logger
	// Observe, when set, is told every send's outcome: "sent", "retry" (failed,
	// tried again later) or "gave_up".
	Observe func(kind string, t Type, result string)
	Now     func() time.Time
}

// Dispatcher sends the reports the journal says are owed (see the package doc).
type Dispatcher struct {
	cfg     Config
	st      *router.Store
	journal *router.Journal
	lease   time.Duration
	wake    chan struct{}
}

// NewDispatcher prepares a dispatcher over the store's requests and journal.
func NewDispatcher(st *router.Store, journal *router.Journal, cfg Config) (*Dispatcher, error) {
	if len(cfg.Senders) == 0 {
		return nil, errors.New("dlr: no senders")
	}
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&cfg.Poll, DefaultPoll)
	def(&cfg.Timeout, DefaultTimeout)
	def(&cfg.RetryMin, DefaultRetryMin)
	def(&cfg.RetryMax, DefaultRetryMax)
	def(&cfg.GiveUp, DefaultGiveUp)
	cfg.RetryMax = max(cfg.RetryMax, cfg.RetryMin)
	if cfg.Parallel <= 0 {
		cfg.Parallel = DefaultParallel
	}
	if cfg.Batch <= 0 {
		cfg.Batch = DefaultBatch
	}
	if cfg.Owner == "" {
		cfg.Owner = "dlr"
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	// A lease outlives the longest a request can take (one Send per type it
	// owes), so it never runs out while its holder still works on it.
	lease := time.Duration(len(order))*cfg.Timeout + 30*time.Second
	return &Dispatcher{cfg: cfg, st: st, journal: journal, lease: lease, wake: make(chan struct{}, 1)}, nil
}

// Nudge makes Run look at once rather than at its next poll (say, when a batch
// of fates was just committed). It never blocks.
func (d *Dispatcher) Nudge() {
	select {
	case d.wake <- struct{}{}:
	default:
	}
}

// Run makes passes until ctx ends. A failing pass (the database is down) is
// logged and tried again at the next poll: reports wait, they are not lost.
func (d *Dispatcher) Run(ctx context.Context) {
	t := time.NewTicker(d.cfg.Poll)
	defer t.Stop()
	if d.cfg.Alive != nil {
		if n, err := d.ReleaseDead(ctx, d.cfg.Alive); err != nil {
			d.cfg.Log.Warn("delivery reports: cannot look for leases of dead processes", "err", err)
		} else if n > 0 {
			d.cfg.Log.Info("delivery reports: took back requests leased by a process that died", "requests", n)
		}
	}
	failing := false
	for {
		_, err := d.Pass(ctx)
		switch {
		case err != nil && ctx.Err() == nil && !failing:
			d.cfg.Log.Warn("delivery reports: cannot read the requests; retrying", "err", err)
			failing = true
		case err == nil && failing:
			d.cfg.Log.Info("delivery reports: requests readable again")
			failing = false
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-d.wake:
		}
	}
}

// ReleaseDead ends the leases held by owners that alive says are gone, and
// returns how many requests it freed.
func (d *Dispatcher) ReleaseDead(ctx context.Context, alive func(owner string) bool) (int64, error) {
	owners, err := d.st.DB.QueryContext(ctx, "SELECT DISTINCT lease_owner FROM smsrouter_dlr WHERE done = 0 AND lease_until >= ?", d.cfg.Now().UnixMilli())
	if err != nil {
		return 0, fmt.Errorf("dlr: read leases: %w", err)
	}
	var dead []string
	for owners.Next() {
		var o string
		if err := owners.Scan(&o); err != nil {
			owners.Close()
			return 0, fmt.Errorf("dlr: read leases: %w", err)
		}
		if o != d.cfg.Owner && !alive(o) {
			dead = append(dead, o)
		}
	}
	err = owners.Err()
	owners.Close()
	if err != nil {
		return 0, fmt.Errorf("dlr: read leases: %w", err)
	}
	var n int64
	for _, o := range dead {
		res, err := d.st.DB.ExecContext(ctx, "UPDATE smsrouter_dlr SET lease_until = 0 WHERE done = 0 AND lease_owner = ?", o)
		if err != nil {
			return n, fmt.Errorf("dlr: release %s: %w", o, err)
		}
		c, _ := res.RowsAffected()
		n += c
	}
	return n, nil
}

// row is a request as a pass reads it.
type row struct {
	Request
	sent         Type
	tries        int
	failingSince int64
	journalID    string // the message whose journal row decides: the newest retry of a failed call that has one, a joined part's message, else ID
	updated      int64  // that row's updated, 0 when there is none
}

// Pass looks once at every open request whose message changed (or whose retry
// is due), sends what is owed and returns how many reports it sent.
func (d *Dispatcher) Pass(ctx context.Context) (int, error) {
	now := d.cfg.Now().UnixMilli()
	rows, err := d.st.DB.QueryContext(ctx, fmt.Sprintf(`
		SELECT d.id, d.kind, d.target, d.mask, d.info, d.sent, d.tries, d.failing_since,
		       COALESCE(j.id, p.message_id, d.id), COALESCE(j.updated, 0)
		FROM smsrouter_dlr d
		LEFT JOIN smsrouter_part p ON p.id = d.id
		LEFT JOIN smsrouter_journal j ON j.id = COALESCE(
			(SELECT r.id FROM smsrouter_retry r JOIN smsrouter_journal rj ON rj.id = r.id
			 WHERE r.origin = COALESCE(p.message_id, d.id) ORDER BY r.hop DESC LIMIT 1),
			p.message_id, d.id)
		WHERE d.done = 0 AND d.next_try <= ? AND d.lease_until < ? AND (d.recheck = 1 OR j.updated > d.seen)
		ORDER BY d.next_try LIMIT %d`, d.cfg.Batch), now, now)
	if err != nil {
		return 0, fmt.Errorf("dlr: read requests: %w", err)
	}
	var todo []row
	for rows.Next() {
		var r row
		var info string
		if err := rows.Scan(&r.ID, &r.Kind, &r.Target, &r.Mask, &info, &r.sent, &r.tries, &r.failingSince, &r.journalID, &r.updated); err != nil {
			rows.Close()
			return 0, fmt.Errorf("dlr: read requests: %w", err)
		}
		if err := json.Unmarshal([]byte(info), &r.Info); err != nil {
			r.Info = nil // the request still gets its reports, with less to say
		}
		todo = append(todo, r)
	}
	err = rows.Err()
	rows.Close()
	if err != nil {
		return 0, fmt.Errorf("dlr: read requests: %w", err)
	}
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		sent int
		errs []error
	)
	sem := make(chan struct{}, d.cfg.Parallel)
	for _, r := range todo {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			n, err := d.handle(ctx, r)
			mu.Lock()
			sent += n
			if err != nil {
				errs = append(errs, err)
			}
			mu.Unlock()
		})
	}
	wg.Wait()
	return sent, errors.Join(errs...)
}

// handle takes one request's lease, sends what it owes and records the outcome.
// An error is the database's: the request is looked at again next pass.
func (d *Dispatcher) handle(ctx context.Context, r row) (int, error) {
	now := d.cfg.Now()
	res, err := d.st.DB.ExecContext(ctx,
		"UPDATE smsrouter_dlr SET lease_until = ?, lease_owner = ? WHERE id = ? AND kind = ? AND done = 0 AND lease_until < ?",
		now.Add(d.lease).UnixMilli(), d.cfg.Owner, r.ID, r.Kind, now.UnixMilli())
	if err != nil {
		return 0, fmt.Errorf("dlr: lease %s: %w", r.ID, err)
	}
	if n, _ := res.RowsAffected(); n != 1 {
		return 0, nil // another process has it
	}
	// The lease is ours: re-read what was sent, in case another process sent
	// something between our read and our lease.
	var sent Type
	if err := d.st.DB.QueryRowContext(ctx, "SELECT sent FROM smsrouter_dlr WHERE id = ? AND kind = ?", r.ID, r.Kind).Scan(&sent); err != nil {
		d.release(r)
		return 0, fmt.Errorf("dlr: read %s: %w", r.ID, err)
	}
	r.sent = sent
	var rec *router.Record
	if r.updated > 0 {
		got, err := d.journal.Get(ctx, r.journalID)
		switch {
		case err == nil:
			rec = &got
		case errors.Is(err, sql.ErrNoRows):
		default:
			d.release(r)
			return 0, err
		}
	}
	due, done := Due(r.Mask, r.sent, rec)
	sender := d.cfg.Senders[r.Kind]
	if sender == nil {
		return 0, d.close(ctx, r, doneGaveUp, fmt.Sprintf("no sender for reports of kind %q", r.Kind))
	}
	n := 0
	for _, t := range due {
		rep := Report{Request: r.Request, Type: t, Record: rec, At: d.cfg.Now()}
		sctx, cancel := context.WithTimeout(ctx, d.cfg.Timeout)
		err := sender.Send(sctx, rep)
		cancel()
		if err != nil {
			return n, d.failed(ctx, r, t, err)
		}
		n++
		r.sent |= t
		r.tries, r.failingSince = 0, 0
		if d.cfg.Observe != nil {
			d.cfg.Observe(r.Kind, t, "sent")
		}
		d.cfg.Log.Info("delivery report sent", "id", r.ID, "kind", r.Kind, "type", int(t), "meaning", t.String())
		// Recorded before anything else is sent: a crash now must not send it again.
		if _, err := d.st.DB.ExecContext(context.WithoutCancel(ctx),
			"UPDATE smsrouter_dlr SET sent = ?, tries = 0, failing_since = 0, outcome = ?, updated = ? WHERE id = ? AND kind = ?",
			int(r.sent), fmt.Sprintf("sent %d (%s)", int(t), t), d.cfg.Now().UnixMilli(), r.ID, r.Kind); err != nil {
			d.release(r)
			return n, fmt.Errorf("dlr: record %s: %w", r.ID, err)
		}
	}
	_, done = Due(r.Mask, r.sent, rec)
	state := doneNo
	if done {
		state = doneYes
	}
	if _, err := d.st.DB.ExecContext(context.WithoutCancel(ctx),
		"UPDATE smsrouter_dlr SET done = ?, recheck = 0, seen = ?, lease_until = 0, updated = ? WHERE id = ? AND kind = ?",
		state, r.updated, d.cfg.Now().UnixMilli(), r.ID, r.Kind); err != nil {
		return n, fmt.Errorf("dlr: record %s: %w", r.ID, err)
	}
	return n, nil
}

// failed records a failed send: retried after a backoff, or the request closed
// when the failure is permanent or has lasted GiveUp.
func (d *Dispatcher) failed(ctx context.Context, r row, t Type, sendErr error) error {
	now := d.cfg.Now()
	since := r.failingSince
	if since == 0 {
		since = now.UnixMilli()
	}
	tries := r.tries + 1
	if IsPermanent(sendErr) || now.Sub(time.UnixMilli(since)) >= d.cfg.GiveUp {
		if d.cfg.Observe != nil {
			d.cfg.Observe(r.Kind, t, "gave_up")
		}
		d.cfg.Log.Warn("delivery report given up", "id", r.ID, "kind", r.Kind, "type", int(t), "tries", tries, "err", sendErr)
		return d.close(ctx, r, doneGaveUp, fmt.Sprintf("gave up on %d (%s) after %d tries: %v", int(t), t, tries, sendErr))
	}
	wait := d.cfg.RetryMin
	for i := 1; i < tries && wait < d.cfg.RetryMax; i++ {
		wait *= 2
	}
	wait = min(wait, d.cfg.RetryMax)
	if d.cfg.Observe != nil {
		d.cfg.Observe(r.Kind, t, "retry")
	}
	d.cfg.Log.Info("delivery report failed; retrying", "id", r.ID, "kind", r.Kind, "type", int(t), "tries", tries, "in", wait, "err", sendErr)
	if _, err := d.st.DB.ExecContext(context.WithoutCancel(ctx),
		`UPDATE smsrouter_dlr SET tries = ?, failing_since = ?, next_try = ?, recheck = 1, lease_until = 0, outcome = ?, updated = ?
		 WHERE id = ? AND kind = ?`,
		tries, since, now.Add(wait).UnixMilli(), fmt.Sprintf("%d (%s) failed: %v", int(t), t, sendErr), now.UnixMilli(), r.ID, r.Kind); err != nil {
		return fmt.Errorf("dlr: record %s: %w", r.ID, err)
	}
	return nil
}

// close ends a request for good, with the reason.
func (d *Dispatcher) close(ctx context.Context, r row, state int, outcome string) error {
	if _, err := d.st.DB.ExecContext(context.WithoutCancel(ctx),
		"UPDATE smsrouter_dlr SET done = ?, lease_until = 0, outcome = ?, updated = ? WHERE id = ? AND kind = ?",
		state, outcome, d.cfg.Now().UnixMilli(), r.ID, r.Kind); err != nil {
		return fmt.Errorf("dlr: record %s: %w", r.ID, err)
	}
	return nil
}

// release gives a lease back after a database error, best effort: if it fails
// too, the lease simply runs out.
func (d *Dispatcher) release(r row) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, _ = d.st.DB.ExecContext(ctx, "UPDATE smsrouter_dlr SET lease_until = 0 WHERE id = ? AND kind = ? AND lease_owner = ?", r.ID, r.Kind, d.cfg.Owner)
}
