package router

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"time"

	"smsrouter/asteriskconf/callfile"
	"smsrouter/asteriskconf/smsq"
	"smsrouter/channels"
)

// WayTry is one way tried for a message, as the journal shows it (detail "tries").
type WayTry struct {
	Way       int    `json:"way"`
	Letter    string `json:"letter"`
	Extension string `json:"extension,omitempty"`
	Outcome   string `json:"outcome"` // delivered, deferred, failed, skipped, bounced…
	Cause     string `json:"cause,omitempty"`
	Reason    string `json:"reason,omitempty"`
}

// deliverWays tries the recipient's ways in order, from the one the message is
// due on (claim.way): the next way takes over when one fails by its own
// evidence (failOver). A number without further ways is delivered exactly as
// before ways existed, and its journal detail does not change.
func (r *Router) deliverWays(ctx context.Context, j *job, e Entry) {
	start := min(j.claim.way, len(e.Further))
	for k := start; k <= len(e.Further); k++ {
		w, _ := e.Way(k)
		last := k == len(e.Further)
		tries := 0
		if k == j.claim.way {
			tries = j.claim.tries
		}
		if w.Problem != "" {
			r.log.Warn("way unusable; skipped", "id", j.claim.id, "to", j.msg.DA, "way", k, "problem", w.Problem)
			j.tried(WayTry{Way: k, Letter: string(w.Letter), Outcome: "skipped", Reason: w.Problem})
			if last {
				r.settleUndeliverable(j, StateBounced, "unreachable", w.Problem)
			}
			continue
		}
		err := r.deliverOn(ctx, j, w, tries, last)
		t := WayTry{Way: k, Letter: string(w.Letter), Extension: w.Extension, Outcome: string(j.state), Cause: channels.CauseOf(err)}
		switch {
		case err != nil:
			t.Outcome, t.Reason = "failed", err.Error()
			r.log.Info("way failed; trying the next", "id", j.claim.id, "to", j.msg.DA, "way", k, "letter", string(w.Letter), "err", err)
		case j.state == StateDeferred:
			t.Reason, t.Cause = j.errText, j.cause
			if k != j.claim.way {
				j.claim.tries = 0
			}
			// Counted only as far as a rule can ask: a message held for days
			// must keep a claim name that reads back.
			j.claim.way = k
			j.claim.tries = min(j.claim.tries+1, MaxRuleAttempts+1)
		case j.state != StateDelivered:
			t.Reason = j.errText
		}
		if j.state == StateDelivered && tries > 0 {
			j.fact("way_tries", tries)
		}
		if len(e.Further) > 0 {
			j.tried(t)
			j.fact("way", k)
			j.fact("ways", e.WaysText())
		}
		if err == nil {
			r.reportOnHandoff(j)
			return
		}
	}
	r.reportOnHandoff(j)
}

// failOver reports whether a failure on a way that is not the last one hands
// the message to the next way rather than settle it on this one: a definite
// failure does, and so does a temporary one whose cause's retries on this way
// (RetryRules) are used up. A failure without a cause (a disk, a database) is
// no evidence against the way and keeps the message on it.
func (r *Router) failOver(err error, tries int) bool {
	if errors.Is(err, channels.ErrNoService) || channels.IsPermanent(err) {
		return true
	}
	cause := channels.CauseOf(err)
	if cause == "" {
		return false
	}
	return tries >= r.cfg.Retry[cause].Attempts
}

func (j *job) tried(t WayTry) {
	list, _ := j.facts["tries"].([]WayTry)
	j.fact("tries", append(list, t))
}

// wayOf reads which way a journal row's message was delivered on, how often
// that way was tried, and how many ways its recipient had.
func wayOf(detail string) (way, tries, ways int) {
	d := detailMap(detail)
	if v, ok := d["way"].(float64); ok {
		way = int(v)
	}
	if v, ok := d["way_tries"].(float64); ok {
		tries = int(v)
	}
	ways = 1
	if s, ok := d["ways"].(string); ok && s != "" {
		ways = (len(s) + 1) / 2
	}
	return way, tries, ways
}

// detailMap reads a journal row's detail; nil when it is not a JSON object.
func detailMap(detail string) map[string]any {
	var d map[string]any
	if detail != "" && json.Unmarshal([]byte(detail), &d) != nil {
		return nil
	}
	return d
}

func describeWay(letter string) string {
	switch letter {
	case "S":
		return "SMS"
	case "F":
		return "fax"
	case "V":
		return "voice call"
	case "T":
		return "SIP message"
	case "C":
		return "the command service"
	}
	return fmt.Sprintf("letter %s", letter)
}

// WaysOf returns the ways tried for a message, from its journal row: none for
// a number with only its PBXNumbers letter.
func WaysOf(rec Record) []WayTry {
	var d struct {
		Tries []WayTry `json:"tries"`
	}
	if rec.Detail == "" || json.Unmarshal([]byte(rec.Detail), &d) != nil {
		return nil
	}
	return d.Tries
}

// pendingReport says whether a journal row's sender asked for a status report
// that waits for the call's outcome (reportOnHandoff).
func pendingReport(rec Record) bool { return detailMap(rec.Detail)["report"] == "pending" }

// callCause is what an archived call file alone says about why the call
// failed. Asterisk writes only its Status there (SPEC §3): Expired covers
// every way a call can go unanswered (no answer, busy, congestion alike),
// Failed a call file it could not use. A call through an outcome context
// says more (CallOutcome.Cause, from its call result).
func callCause(status string) string {
	switch status {
	case callfile.StatusExpired:
		return channels.CauseNoAnswer
	case callfile.StatusFailed:
		return channels.CauseFailed
	}
	return ""
}

// afterCall decides what a failed call leads to, by its cause's retry rule:
// the same way again after the rule's delay while its attempts last, then the
// recipient's next way at once. It queues that as a new message (its id is
// returned, and kept in the row's detail as "retry_id") carrying the same text
// from the same sender; "" means the failure is final and the usual notice
// follows. The new message's id is derived from the call file, and it is
// queued before the journal records the outcome: a crash in between finds it
// already queued on the next run instead of queuing it twice.
func (a *Admin) afterCall(ctx context.Context, rec Record, o CallOutcome, add map[string]any) (string, error) {
	cause := o.cause()
	if !o.Failed() || cause == "" || rec.Text == "" || rec.OA == "" {
		return "", nil
	}
	way, tries, ways := wayOf(rec.Detail)
	rule := a.cfg.Retry[cause]
	due := a.now()
	switch {
	case tries < rule.Attempts:
		tries++
		due = due.Add(rule.Delay)
	case way+1 < ways:
		way, tries = way+1, 0
	default:
		return "", nil
	}
	sum := sha256.Sum256([]byte(rec.ID + "|" + o.File))
	id := fmt.Sprintf("%013d-%s", rec.Received.UnixMilli(), hex.EncodeToString(sum[:5]))
	d := detailMap(rec.Detail)
	depth, _ := d["depth"].(float64)
	c := claimName{id: id, attempts: rec.Attempts, depth: int(depth), way: way, tries: tries}
	// The retry keeps the original's validity: its vp, counted from the
	// original's scts (the retry's id keeps the receipt time, so prepare
	// takes the validity from that scts exactly as it did for the original).
	sent := rec.Received
	if ms, ok := d["scts"].(float64); ok && int64(ms) < rec.Received.UnixMilli() {
		sent = time.UnixMilli(int64(ms))
	}
	vp, _ := d["vp"].(float64)
	if validity := validUntil(sent, int(vp), a.cfg.DefaultValidity); due.After(validity) {
		due = validity // not kept past its end: then it expires and the sender is told
	}
	msg := &smsq.Message{OA: rec.OA, DA: rec.DA, SCTS: sent.In(a.cfg.Location), DCS: -1, MR: -1, Text: rec.Text,
		SRR: pendingReport(rec), VP: int(vp)}
	data, err := msg.Marshal()
	if err != nil {
		return "", fmt.Errorf("retry of %s: %w", rec.ID, err)
	}
	if err := a.chainRetry(ctx, rec.ID, id); err != nil {
		return "", err
	}
	if matches, _ := filepath.Glob(filepath.Join(a.l.deferred, "*."+id+".*")); len(matches) == 0 {
		if _, err := a.journal.Get(ctx, id); err == nil {
			return id, nil // queued and taken before a crash kept the outcome from the journal
		}
		if err := a.carryNetworkAck(rec, id); err != nil {
			return "", err
		}
		art := channels.Artefact{Kind: "message", Dir: a.l.deferred, Name: deferredName(due, c), Data: data, Mode: 0o640}
		if err := placeArtefact(art); err != nil {
			return "", err
		}
	}
	add["retry_id"] = id
	add["retry"] = map[string]any{"cause": cause, "way": way, "tries": tries, "due": due.UnixMilli()}
	return id, nil
}

// chainRetry records that retry carries on message from (smsrouter_retry),
// under from's own origin, one hop deeper. Writing it again is harmless.
func (a *Admin) chainRetry(ctx context.Context, from, retry string) error {
	db := a.journal.store
	origin, hop := from, 0
	err := db.DB.QueryRowContext(ctx, `SELECT origin, hop FROM smsrouter_retry WHERE id = ?`, from).Scan(&origin, &hop)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return fmt.Errorf("retry chain of %s: %w", from, err)
	}
	ignore := "INSERT OR IGNORE"
	if db.Dialect == "mysql" {
		ignore = "INSERT IGNORE"
	}
	if _, err := db.DB.ExecContext(ctx, ignore+` INTO smsrouter_retry (id, origin, hop) VALUES (?, ?, ?)`, retry, origin, hop+1); err != nil {
		return fmt.Errorf("retry chain of %s: %w", from, err)
	}
	return nil
}
