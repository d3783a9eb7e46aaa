package router

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"text/template"
	"time"

	"smsrouter/asteriskconf/smsq"
	"smsrouter/channels"
)

// Admin is the operator's handle on a spool and its journal (`smsrouter journal`,
// `retry`, `drop`, delivery evidence, metrics). Unlike Router it takes no claim
// folder, so it can run beside any number of drain and serve processes: every
// change it makes to a spool file is one atomic rename, the same way a router
// claims, so the two never act on the same file.
type Admin struct {
	cfg     Config
	l       layout
	journal *Journal
	notices map[string]*template.Template
	now     func() time.Time
}

// NewAdmin prepares an Admin over cfg's spool. It creates no folders: a spool that
// was never served simply has nothing queued.
func NewAdmin(cfg Config, journal *Journal) (*Admin, error) {
	if err := cfg.fill(); err != nil {
		return nil, err
	}
	a := &Admin{cfg: cfg, l: newLayout(cfg.Spool, cfg.WorkDir), journal: journal, now: time.Now,
		notices: map[string]*template.Template{}}
	for name, text := range map[string]string{"failed": cfg.Notices.Failed, "expired": cfg.Notices.Expired} {
		t, err := template.New(name).Option("missingkey=error").Parse(text)
		if err != nil {
			return nil, fmt.Errorf("admin: notice %s: %w", name, err)
		}
		a.notices[name] = t
	}
	return a, nil
}

// Journal is the journal the Admin records in.
func (a *Admin) Journal() *Journal { return a.journal }

// Waiting is a message that sits in the spool waiting for something: deferred (its
// next attempt) or held (a concatenated part waiting for its siblings).
type Waiting struct {
	ID       string
	State    State // StateDeferred or StateHeld
	Due      time.Time
	Attempts int
	Path     string
}

// Waiting lists the deferred and held messages, earliest due first.
func (a *Admin) Waiting() ([]Waiting, error) {
	var out []Waiting
	entries, err := os.ReadDir(a.l.deferred)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("read %s: %w", a.l.deferred, err)
	}
	for _, e := range entries {
		if due, c, ok := parseDeferredName(e.Name()); ok {
			out = append(out, Waiting{ID: c.id, State: StateDeferred, Due: due, Attempts: c.attempts,
				Path: filepath.Join(a.l.deferred, e.Name())})
		}
	}
	entries, err = os.ReadDir(a.l.parts)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("read %s: %w", a.l.parts, err)
	}
	for _, e := range entries {
		if _, _, c, ok := parsePartName(e.Name()); ok {
			info, err := e.Info()
			if err != nil {
				continue // claimed meanwhile
			}
			out = append(out, Waiting{ID: c.id, State: StateHeld, Due: info.ModTime().Add(a.cfg.ConcatTimeout),
				Attempts: c.attempts, Path: filepath.Join(a.l.parts, e.Name())})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Due.Before(out[j].Due) })
	return out, nil
}

// ErrNotWaiting is returned for an id that is neither deferred nor held in the
// spool (already delivered, never seen, or being processed right now).
var ErrNotWaiting = errors.New("not waiting in the spool")

// RetryNow makes the deferred messages with the given ids (all deferred messages
// when ids is nil) due now. A running serve sees the rename (it watches deferred/)
// and takes them at once, as does the next drain. It returns the ids it made due; an id that is not deferred is reported
// in the error, after the others were done.
func (a *Admin) RetryNow(ids []string) ([]string, error) {
	want := map[string]bool{}
	for _, id := range ids {
		want[id] = true
	}
	ws, err := a.Waiting()
	if err != nil {
		return nil, err
	}
	now := a.now()
	var done []string
	for _, w := range ws {
		if w.State != StateDeferred || (ids != nil && !want[w.ID]) {
			continue
		}
		_, c, _ := parseDeferredName(filepath.Base(w.Path))
		if w.Due.After(now) {
			if err := renameNoReplace(w.Path, filepath.Join(a.l.deferred, deferredName(now, c))); err != nil {
				continue // a drain took it meanwhile: it is being retried anyway
			}
		}
		done = append(done, w.ID)
		delete(want, w.ID)
	}
	if len(want) > 0 {
		missing := make([]string, 0, len(want))
		for id := range want {
			missing = append(missing, id)
		}
		sort.Strings(missing)
		return done, fmt.Errorf("retry %s: %w", strings.Join(missing, ", "), ErrNotWaiting)
	}
	return done, nil
}

// Drop ends a deferred or held message for good: the journal records it as
// dropped (with reason), and with notify the sender is told with the "failed"
// notice. The spool file is taken out of reach of routers by a rename first, so a
// drain running at the same moment either delivers it or never sees it again.
func (a *Admin) Drop(ctx context.Context, id, reason string, notify bool) (Record, error) {
	if !validID(id) {
		return Record{}, fmt.Errorf("drop %q: not a message id", id)
	}
	ws, err := a.Waiting()
	if err != nil {
		return Record{}, err
	}
	var w *Waiting
	for i := range ws {
		if ws[i].ID == id {
			w = &ws[i]
			break
		}
	}
	if w == nil {
		return Record{}, fmt.Errorf("drop %s: %w", id, ErrNotWaiting)
	}
	// A dot name is one no router parses, so nobody claims it any more. A crash
	// before the journal commit leaves it here, visible, for the admin to decide.
	hidden := filepath.Join(filepath.Dir(w.Path), ".drop."+filepath.Base(w.Path))
	if err := renameNoReplace(w.Path, hidden); err != nil {
		return Record{}, fmt.Errorf("drop %s: taken by a router meanwhile: %w", id, err)
	}
	restore := func() { _ = renameNoReplace(hidden, w.Path) }
	data, _, err := readCapped(hidden, maxSpoolFile)
	if err != nil {
		restore()
		return Record{}, fmt.Errorf("drop %s: %w", id, err)
	}
	now := a.now()
	rec, err := a.journal.Get(ctx, id)
	if err != nil {
		rec = Record{ID: id, Received: now}
		if t, ok := idTime(id); ok {
			rec.Received = t
		}
	}
	m, perr := smsq.Parse(data, a.cfg.Location)
	if perr == nil {
		rec.OA, rec.DA = clip(m.OA, 32), clip(m.DA, 32)
	}
	if reason == "" {
		reason = "dropped by the administrator"
	}
	rec.State, rec.LastError, rec.Updated, rec.NextAttempt = StateDropped, reason, now, time.Time{}
	rec.Attempts = w.Attempts
	var notice *channels.Artefact
	if notify && perr == nil && m.OA != "" && m.OA != a.cfg.SMSCNumber && a.cfg.SMSCNumber != "" {
		art, nid, err := a.noticeArtefact("failed", m.OA, m.DA, reason, now)
		if err != nil {
			restore()
			return Record{}, fmt.Errorf("drop %s: %w", id, err)
		}
		notice = &art
		rec.Detail = mergeDetail(rec.Detail, map[string]any{"notice_id": nid, "dropped_from": string(w.State)})
	} else {
		rec.Detail = mergeDetail(rec.Detail, map[string]any{"dropped_from": string(w.State)})
	}
	if err := a.journal.Put(ctx, "", []Record{rec}); err != nil {
		restore()
		return Record{}, fmt.Errorf("drop %s: %w", id, err)
	}
	if notice != nil {
		if err := placeArtefact(*notice); err != nil {
			return rec, fmt.Errorf("drop %s: journal says dropped, but the notice was not queued: %w", id, err)
		}
	}
	if err := os.Remove(hidden); err != nil {
		return rec, fmt.Errorf("drop %s: %w", id, err)
	}
	return rec, nil
}

// noticeArtefact builds a notice from the SMS Centre to `to` about a message for
// `about`, with the named template.
func (a *Admin) noticeArtefact(name, to, about, reason string, now time.Time) (channels.Artefact, string, error) {
	var b strings.Builder
	if err := a.notices[name].Execute(&b, struct{ To, From, Reason string }{about, to, reason}); err != nil {
		return channels.Artefact{}, "", fmt.Errorf("notice %s: %w", name, err)
	}
	art, nid, err := channels.NewMessage(a.l.inbox, a.cfg.SMSCNumber, to, b.String(), 1, now.In(a.cfg.Location))
	if err != nil {
		return channels.Artefact{}, "", err
	}
	return art, nid, nil
}

// placeArtefact writes an artefact under a dot name and renames it into place, so
// no reader sees half of it (DESIGN.md promise 6).
func placeArtefact(art channels.Artefact) error {
	if err := os.MkdirAll(art.Dir, 0o770); err != nil {
		return fmt.Errorf("place %s: %w", art.Name, err)
	}
	mode := art.Mode
	if mode == 0 {
		mode = 0o640
	}
	tmp := filepath.Join(art.Dir, ".smsrouter-tmp-"+art.Name)
	if err := writeNew(tmp, art.Data, mode, false); err != nil {
		return fmt.Errorf("place %s: %w", art.Name, err)
	}
	if err := renameNoReplace(tmp, filepath.Join(art.Dir, art.Name)); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("place %s: %w", art.Name, err)
	}
	return nil
}

// QueueStats is a snapshot of what waits in the spool, by where it waits.
type QueueStats struct {
	Incoming int       // files in sms/morx and the inbox not yet claimed
	Claimed  int       // being processed now
	Deferred int       // waiting for a retry
	Held     int       // concatenated parts waiting for their siblings
	Staged   int       // batches staged for publishing: being published now, or waiting for an undecided journal write
	Rejected int       // quarantined files (rejected/, each with a .reason) waiting for an admin
	Oldest   time.Time // receive time of the oldest waiting message (not counting rejected); zero when none

	// The oldest of each place: a message's receive time (from its id, or the
	// file's time for files Asterisk wrote), a staged batch's or a quarantined
	// file's time. Zero when the place is empty.
	OldestIncoming, OldestClaimed, OldestDeferred, OldestHeld, OldestStaged, OldestRejected time.Time
}

// Place is one place of QueueStats: its name (as the metrics label it), how many
// wait there and since when the oldest.
type Place struct {
	Name   string
	Count  int
	Oldest time.Time
}

// Places lists every place, empty ones too, in the order a message meets them.
func (s QueueStats) Places() []Place {
	return []Place{
		{"incoming", s.Incoming, s.OldestIncoming}, {"claimed", s.Claimed, s.OldestClaimed},
		{"deferred", s.Deferred, s.OldestDeferred}, {"held", s.Held, s.OldestHeld},
		{"staged", s.Staged, s.OldestStaged}, {"rejected", s.Rejected, s.OldestRejected},
	}
}

// Stats counts the spool's waiting messages (for metrics and doctor). Message ids
// carry their receive time, so the oldest one is known without the database.
func (a *Admin) Stats() (QueueStats, error) {
	var s QueueStats
	older := func(oldest *time.Time, t time.Time) {
		if !t.IsZero() && (oldest.IsZero() || t.Before(*oldest)) {
			*oldest = t
		}
	}
	for _, dir := range []string{a.l.morx, a.l.inbox} {
		entries, err := os.ReadDir(dir)
		if err != nil && !errors.Is(err, os.ErrNotExist) {
			return s, fmt.Errorf("read %s: %w", dir, err)
		}
		for _, e := range entries {
			if strings.HasPrefix(e.Name(), ".") {
				continue
			}
			s.Incoming++
			if id, _, ok := channels.ParseSpoolName(e.Name()); ok && dir == a.l.inbox {
				if t, ok := idTime(id); ok {
					older(&s.OldestIncoming, t)
					continue
				}
			}
			if info, err := e.Info(); err == nil {
				older(&s.OldestIncoming, info.ModTime())
			}
		}
	}
	ws, err := a.Waiting()
	if err != nil {
		return s, err
	}
	for _, w := range ws {
		t, _ := idTime(w.ID)
		if w.State == StateDeferred {
			s.Deferred++
			older(&s.OldestDeferred, t)
		} else {
			s.Held++
			older(&s.OldestHeld, t)
		}
	}
	owners, err := os.ReadDir(a.l.claimed)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return s, fmt.Errorf("read %s: %w", a.l.claimed, err)
	}
	for _, o := range owners {
		files, _ := os.ReadDir(filepath.Join(a.l.claimed, o.Name()))
		for _, f := range files {
			if c, ok := parseClaimName(f.Name()); ok {
				s.Claimed++
				if t, ok := idTime(c.id); ok {
					older(&s.OldestClaimed, t)
				}
			}
		}
	}
	staged, err := os.ReadDir(a.l.stage)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return s, fmt.Errorf("read %s: %w", a.l.stage, err)
	}
	for _, e := range staged {
		if !e.IsDir() {
			continue
		}
		if fi, err := os.Stat(filepath.Join(a.l.stage, e.Name(), manifestName)); err == nil && fi.Size() == 0 {
			continue // a running serve's spare (makeSpareStage): no batch yet
		}
		s.Staged++
		if info, err := e.Info(); err == nil {
			older(&s.OldestStaged, info.ModTime())
		}
	}
	rejected, err := os.ReadDir(a.l.rejected)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return s, fmt.Errorf("read %s: %w", a.l.rejected, err)
	}
	for _, e := range rejected {
		if strings.HasSuffix(e.Name(), ".reason") || strings.HasPrefix(e.Name(), ".") {
			continue
		}
		s.Rejected++
		if info, err := e.Info(); err == nil {
			older(&s.OldestRejected, info.ModTime())
		}
	}
	for _, t := range []time.Time{s.OldestIncoming, s.OldestClaimed, s.OldestDeferred, s.OldestHeld, s.OldestStaged} {
		older(&s.Oldest, t)
	}
	return s, nil
}

// Spooled is where a message waits in the spool: what Locate finds for a
// message the journal may not know yet.
type Spooled struct {
	ID    string
	Where string    // "queued" (incoming, not taken yet), "processing" (claimed), "deferred", "held"
	Due   time.Time // deferred: the next attempt; held: when the parts are routed alone
}

// Locate finds a message's file in the spool by its id; ok is false when no
// file carries the id (delivered and gone, never queued, or in morx under a
// name Asterisk chose). It reads folder listings only.
func (a *Admin) Locate(id string) (Spooled, bool, error) {
	if !validID(id) {
		return Spooled{}, false, nil
	}
	entries, err := os.ReadDir(a.l.inbox)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return Spooled{}, false, fmt.Errorf("read %s: %w", a.l.inbox, err)
	}
	for _, e := range entries {
		if got, _, ok := channels.ParseSpoolName(e.Name()); ok && got == id && !strings.HasPrefix(e.Name(), ".") {
			return Spooled{ID: id, Where: "queued"}, true, nil
		}
	}
	owners, err := os.ReadDir(a.l.claimed)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return Spooled{}, false, fmt.Errorf("read %s: %w", a.l.claimed, err)
	}
	for _, o := range owners {
		files, _ := os.ReadDir(filepath.Join(a.l.claimed, o.Name()))
		for _, f := range files {
			if c, ok := parseClaimName(f.Name()); ok && c.id == id {
				return Spooled{ID: id, Where: "processing"}, true, nil
			}
		}
	}
	ws, err := a.Waiting()
	if err != nil {
		return Spooled{}, false, err
	}
	for _, w := range ws {
		if w.ID == id {
			return Spooled{ID: id, Where: string(w.State), Due: w.Due}, true, nil
		}
	}
	return Spooled{}, false, nil
}
