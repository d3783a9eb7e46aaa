package router

// Guards between a parsed message and its channel: quiet hours (hold a delivery
// that would ring a phone until its recipient's window ends), the duplicate guard
// (a phone that lost an acknowledgement sends the same message again) and the
// loop guard (two numbers exchanging automatic messages).

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"fmt"
	"strconv"
	"strings"
	"time"

	"smsrouter/channels"
	"smsrouter/internal/quiet"
)

// QuietHours is when deliveries that ring a phone (letters S, F, V) wait.
type QuietHours struct {
	Default quiet.Window   // for numbers without a window of their own; the zero Window: none
	Zone    *time.Location // the windows' time zone unless a number names its own; default Config.Location
}

// Guards are the duplicate and loop guards' settings.
type Guards struct {
	// DuplicateWindow is how long a message a phone sent is remembered, so that
	// the same message again (same sender, recipient, reference and text) is not
	// delivered twice; default 10m, negative turns the guard off.
	DuplicateWindow time.Duration
	// PairLimit is how many generated messages (replies, notices, reports) may
	// pass between the same two numbers within PairWindow before the rest are
	// dropped; default 10 in 10m, negative turns the limit off.
	PairLimit  int
	PairWindow time.Duration
}

// StateDuplicate is a message the sender's phone had sent before (within the
// duplicate window): recorded, not delivered again.
const StateDuplicate State = "duplicate"

// ringing are the letters whose delivery rings a phone.
const ringing = "SFV"

// pref is a number's own row in smsrouter_number_pref.
type pref struct {
	window  quiet.Window
	own     bool // the row sets a window (or "off") of its own
	zone    *time.Location
	pin     string
	problem string // a value that could not be read, for the journal
}

// quietOff is what QuietStart holds for a number that turned quiet hours off
// (an empty QuietStart means the configured default).
const quietOff = "off"

// parsePref reads a row as an admin may have typed it; a value that cannot be
// read is ignored (the default applies) and named in problem.
func parsePref(qs, qe, tz, pin string) pref {
	p := pref{pin: strings.TrimSpace(pin)}
	qs, qe, tz = strings.TrimSpace(qs), strings.TrimSpace(qe), strings.TrimSpace(tz)
	switch {
	case strings.EqualFold(qs, quietOff):
		p.own = true
	case qs != "" || qe != "":
		w, err := quiet.Parse(qs + "-" + qe)
		if err != nil {
			p.problem = fmt.Sprintf("QuietStart/QuietEnd %q-%q: %v", qs, qe, err)
		} else {
			p.window, p.own = w, true
		}
	}
	if tz != "" {
		loc, err := time.LoadLocation(tz)
		if err != nil {
			p.problem = strings.TrimPrefix(p.problem+"; ", "; ") + fmt.Sprintf("TimeZone %q: not a known zone", tz)
		} else {
			p.zone = loc
		}
	}
	return p
}

// quietFor is the window and zone that apply to a number with the given row.
func (r *Router) quietFor(p pref) (quiet.Window, *time.Location) {
	w, loc := r.cfg.Quiet.Default, r.cfg.Quiet.Zone
	if p.own {
		w = p.window
	}
	if p.zone != nil {
		loc = p.zone
	}
	return w, loc
}

// quietUntil says whether a delivery by letter to a number with row p must wait
// now, and until when.
func (r *Router) quietUntil(letter byte, p pref, now time.Time) (time.Time, bool) {
	if !strings.ContainsRune(ringing, rune(letter)) {
		return time.Time{}, false
	}
	w, loc := r.quietFor(p)
	return w.Until(now, loc)
}

// holdQuiet defers a job until its recipient's quiet hours end. It is not a
// failed attempt: the attempt count stays, and the validity still ends the
// message (a hold past it makes the last look at the validity's end).
func (r *Router) holdQuiet(j *job, until time.Time, loc *time.Location) {
	j.state = StateDeferred
	j.errText = "held: quiet hours until " + until.In(loc).Format("15:04")
	j.notice, j.result = nil, channels.Result{}
	due := until
	if !j.validity.IsZero() && due.After(j.validity) {
		due = j.validity
	}
	j.dueAt = due
	j.detail = map[string]any{"next_attempt": due.UnixMilli(), "quiet_until": until.UnixMilli()}
}

// fingerprint identifies a message a phone sent, for the duplicate guard: ""
// for messages that carry no message reference (smsrouter's own, generated ones).
func fingerprint(j *job) string {
	if j.msg == nil || j.msg.MR < 0 || j.claim.depth > 0 {
		return ""
	}
	h := sha256.New()
	for _, s := range []string{j.msg.OA, j.msg.DA, strconv.Itoa(j.msg.MR), j.text} {
		h.Write([]byte(s))
		h.Write([]byte{0})
	}
	return hex.EncodeToString(h.Sum(nil))
}

// pairKey names the two numbers of a generated message, in either direction.
func pairKey(a, b string) string {
	if b < a {
		a, b = b, a
	}
	return clip(a, 32) + "|" + clip(b, 32)
}

// guard applies the duplicate and loop guards to the batch's prepared jobs. A
// copy within the batch is caught here; one in an earlier batch by the
// fingerprints the journal kept. Two processes that take copies at the same
// moment both pass this check, but only one batch can commit the fingerprint
// (Journal.Put), and the other is then retried and caught here.
func (r *Router) guard(ctx context.Context, jobs []*job) {
	now := r.now()
	var fps, pairs []string
	for _, j := range jobs {
		if j.settled || j.state != "" {
			continue
		}
		if r.cfg.Guards.DuplicateWindow > 0 {
			if j.fp = fingerprint(j); j.fp != "" {
				j.fpStale = now.Add(-r.cfg.Guards.DuplicateWindow)
				fps = append(fps, j.fp)
			}
		}
		if r.cfg.Guards.PairLimit > 0 && j.claim.depth > 0 {
			j.pair = pairKey(j.msg.OA, j.msg.DA)
			pairs = append(pairs, j.pair)
		}
	}
	if len(fps) == 0 && len(pairs) == 0 {
		return
	}
	store := r.journal.store
	seen, present, err := store.recentFingerprints(ctx, fps, now.Add(-r.cfg.Guards.DuplicateWindow))
	var counts map[string]int
	if err == nil {
		counts, err = store.recentPairs(ctx, pairs, now.Add(-r.cfg.Guards.PairWindow))
	}
	if err != nil {
		for _, j := range jobs {
			if j.fp != "" || j.pair != "" {
				r.failTemporarily(j, err)
			}
		}
		return
	}
	first := map[string]string{} // fingerprint → the id that has it in this batch
	for _, j := range jobs {
		if j.fp != "" {
			orig, ok := seen[j.fp]
			if !ok || orig == j.claim.id {
				orig, ok = first[j.fp]
			}
			if ok && orig != j.claim.id {
				j.state, j.settled, j.fp = StateDuplicate, true, ""
				j.errText = "duplicate of " + orig + ": the phone sent the same message (reference " + strconv.Itoa(j.msg.MR) + ") again"
				j.detail = map[string]any{"duplicate_of": orig}
				r.log.Info("duplicate not delivered again", "id", j.claim.id, "of", orig, "from", j.msg.OA, "to", j.msg.DA)
				continue
			}
			first[j.fp] = j.claim.id
			j.fpReplace = present[j.fp]
		}
		if j.pair != "" {
			if counts[j.pair] >= r.cfg.Guards.PairLimit {
				j.state, j.settled, j.pair = StateDropped, true, ""
				j.errText = fmt.Sprintf("loop guard: %d generated messages between %s and %s within %s", r.cfg.Guards.PairLimit, j.msg.OA, j.msg.DA, r.cfg.Guards.PairWindow)
				r.log.Warn("generated message stopped by the loop guard", "id", j.claim.id, "from", j.msg.OA, "to", j.msg.DA)
				continue
			}
			counts[j.pair]++
		}
	}
}

// recentFingerprints maps each of fps seen since `since` to the message that
// had it, and says which of fps have a row at all (recent or not): only those
// need replacing when the batch records its own.
func (s *Store) recentFingerprints(ctx context.Context, fps []string, since time.Time) (recent map[string]string, present map[string]bool, err error) {
	recent, present = map[string]string{}, map[string]bool{}
	if len(fps) == 0 {
		return recent, present, nil
	}
	in, args := inList(fps)
	rows, err := s.DB.QueryContext(ctx, "SELECT fp, id, seen FROM smsrouter_fingerprint WHERE fp IN "+in, args...)
	if err != nil {
		return nil, nil, fmt.Errorf("duplicate guard: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var fp, id string
		var seen int64
		if err := rows.Scan(&fp, &id, &seen); err != nil {
			return nil, nil, fmt.Errorf("duplicate guard: %w", err)
		}
		present[fp] = true
		if seen >= since.UnixMilli() {
			recent[fp] = id
		}
	}
	return recent, present, rows.Err()
}

// recentPairs counts the generated messages delivered between each pair since `since`.
func (s *Store) recentPairs(ctx context.Context, pairs []string, since time.Time) (map[string]int, error) {
	out := map[string]int{}
	if len(pairs) == 0 {
		return out, nil
	}
	in, args := inList(pairs)
	rows, err := s.DB.QueryContext(ctx, "SELECT pair, COUNT(*) FROM smsrouter_generated WHERE at >= ? AND pair IN "+in+" GROUP BY pair",
		append([]any{since.UnixMilli()}, args...)...)
	if err != nil {
		return nil, fmt.Errorf("loop guard: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var p string
		var n int
		if err := rows.Scan(&p, &n); err != nil {
			return nil, fmt.Errorf("loop guard: %w", err)
		}
		out[p] = n
	}
	return out, rows.Err()
}

// putGuards writes, in the batch's transaction, the fingerprints of the
// records' messages and the generated messages they delivered: a fixed number
// of statements per chunk of records, not per message, since every phone
// message carries a fingerprint (issue 17). A fingerprint that another message
// took within the window since this batch looked makes the insert fail, and
// with it the batch: its messages are retried, and the guard then sees the
// other one.
func (j *Journal) putGuards(ctx context.Context, tx *sql.Tx, recs []Record) error {
	var fps, replace, gens []Record
	for _, r := range recs {
		if r.Fingerprint != "" {
			fps = append(fps, r)
			if r.fpReplace {
				replace = append(replace, r)
			}
		}
		if r.Pair != "" && r.State == StateDelivered {
			gens = append(gens, r)
		}
	}
	if len(replace) > 0 {
		// A record's fingerprint replaces its own earlier row (a retried
		// message) or one older than its window, where the guard found a row
		// (usually none: then no statement). The records of one batch share
		// one window's start (guard); were they to differ, the earliest would
		// apply to all, and a row it keeps fails the insert as if taken.
		keys := make([]string, len(replace))
		ids := make([]string, len(replace))
		stale := replace[0].fpStale
		for i, r := range replace {
			keys[i], ids[i] = r.Fingerprint, r.ID
			if r.fpStale.Before(stale) {
				stale = r.fpStale
			}
		}
		inFP, args := inList(keys)
		inID, idArgs := inList(ids)
		args = append(append(args, stale.UnixMilli()), idArgs...)
		if _, err := tx.ExecContext(ctx, "DELETE FROM smsrouter_fingerprint WHERE fp IN "+inFP+" AND (seen < ? OR id IN "+inID+")", args...); err != nil {
			return fmt.Errorf("journal: fingerprint: %w", err)
		}
	}
	if len(fps) > 0 {
		// A row that another message took since the guard looked fails the
		// insert, and with it the batch.
		rows := make([]any, 0, 3*len(fps))
		for _, r := range fps {
			rows = append(rows, r.Fingerprint, r.ID, r.Updated.UnixMilli())
		}
		if _, err := tx.ExecContext(ctx, "INSERT INTO smsrouter_fingerprint (fp, id, seen) VALUES "+valueRows(len(fps), 3), rows...); err != nil {
			return fmt.Errorf("journal: a fingerprint of %d messages was taken meanwhile: %w", len(fps), err)
		}
	}
	if len(gens) > 0 {
		ignore := "INSERT OR IGNORE"
		if j.store.Dialect == "mysql" {
			ignore = "INSERT IGNORE"
		}
		rows := make([]any, 0, 3*len(gens))
		for _, r := range gens {
			rows = append(rows, r.ID, r.Pair, r.Updated.UnixMilli())
		}
		if _, err := tx.ExecContext(ctx, ignore+" INTO smsrouter_generated (id, pair, at) VALUES "+valueRows(len(gens), 3), rows...); err != nil {
			return fmt.Errorf("journal: generated message: %w", err)
		}
	}
	return nil
}

// valueRows is the VALUES list of a multi-row insert of n rows of cols columns.
func valueRows(n, cols int) string {
	row := "(?" + strings.Repeat(",?", cols-1) + ")"
	return row + strings.Repeat(","+row, n-1)
}

// pruneGuards forgets fingerprints and generated messages older than keep.
func (j *Journal) pruneGuards(ctx context.Context, before time.Time) error {
	for _, t := range []string{"DELETE FROM smsrouter_fingerprint WHERE seen < ?", "DELETE FROM smsrouter_generated WHERE at < ?"} {
		if _, err := j.store.DB.ExecContext(ctx, t, before.UnixMilli()); err != nil {
			return fmt.Errorf("journal: prune guards: %w", err)
		}
	}
	return nil
}
