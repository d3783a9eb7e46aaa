package router

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"
)

// Delivery receipts. A mobile link's channel returns the name the network gave
// each part it took (an SMSC's message id, a modem's message reference) as
// channels.Ref; Journal.Put writes them to smsrouter_ref in the batch that
// records the message as delivered. The network's delivery receipt names the
// same ref: RecordReceipt stores it there, whether the message's row is
// committed yet or not (a receipt can overtake the journal write), and
// ApplyReceipts copies what the receipts say into the message's journal row
// once both are there.

// refSlack is how much earlier than the submit a receipt may seem to be (clocks
// of the SMSC and of this box): a receipt that waited for its ref longer ago
// than that belongs to an earlier message that had the same ref (a modem's
// message references wrap at 256).
const refSlack = 5 * time.Second

// putRefs writes the refs of the records, in the batch's transaction.
func (j *Journal) putRefs(ctx context.Context, tx *sql.Tx, recs []Record) error {
	var b strings.Builder
	var args []any
	for _, r := range recs {
		for _, ref := range r.Refs {
			if len(args) > 0 {
				b.WriteByte(',')
			}
			b.WriteString("(?,?,?,?,?,?)")
			at := ref.At
			if at.IsZero() {
				at = r.Updated
			}
			args = append(args, clip(ref.System, 40), clip(ref.Ref, 80), r.ID, ref.Part, ref.Parts, at.UnixMilli())
		}
	}
	if len(args) == 0 {
		return nil
	}
	// A receipt already stored for the ref is kept when it waited for this very
	// message: it names the same id, or none yet and came after the submit.
	// Otherwise it was about an older message with the same ref, and is reset.
	var q string
	receiptCols := []string{"stat", "err", "delivered", "final", "applied", "reported"}
	resetTo := map[string]string{"stat": "NULL", "err": "''", "delivered": "0", "final": "0", "applied": "0", "reported": "NULL"}
	if j.store.Dialect == "mysql" {
		keep := fmt.Sprintf("(id = VALUES(id) OR (id IS NULL AND reported >= VALUES(submitted) - %d))", refSlack.Milliseconds())
		var set []string
		// Assignments run in order and see earlier ones: reported, which keep
		// reads, is reset last, and id after it.
		for _, c := range receiptCols {
			set = append(set, fmt.Sprintf("%s = IF(%s, %s, %s)", c, keep, c, resetTo[c]))
		}
		set = append(set, "id = VALUES(id)", "part = VALUES(part)", "parts = VALUES(parts)", "submitted = VALUES(submitted)")
		q = " ON DUPLICATE KEY UPDATE " + strings.Join(set, ", ")
	} else {
		keep := fmt.Sprintf("(smsrouter_ref.id = excluded.id OR (smsrouter_ref.id IS NULL AND smsrouter_ref.reported >= excluded.submitted - %d))", refSlack.Milliseconds())
		var set []string
		for _, c := range receiptCols {
			set = append(set, fmt.Sprintf("%s = CASE WHEN %s THEN smsrouter_ref.%s ELSE %s END", c, keep, c, resetTo[c]))
		}
		set = append(set, "id = excluded.id", "part = excluded.part", "parts = excluded.parts", "submitted = excluded.submitted")
		q = " ON CONFLICT(system, ref) DO UPDATE SET " + strings.Join(set, ", ")
	}
	if _, err := tx.ExecContext(ctx, "INSERT INTO smsrouter_ref (system, ref, id, part, parts, submitted) VALUES "+b.String()+q, args...); err != nil {
		return fmt.Errorf("journal: write refs: %w", err)
	}
	return nil
}

// Receipt is what a network said about one part it took.
type Receipt struct {
	Stat      string // DELIVRD, UNDELIV, EXPIRED…, or a modem's "status 0x41"
	Err       string // the network's error code, "" when none
	Delivered bool   // the handset has it
	Final     bool   // no further receipt follows
	At        time.Time
}

// RecordReceipt stores a receipt for the part system called ref. It returns
// once the receipt is durable, so the network can then be told so. A non-final
// receipt never replaces a final one (they can arrive out of order).
func (j *Journal) RecordReceipt(ctx context.Context, system, ref string, rc Receipt) error {
	if system == "" || ref == "" {
		return errors.New("journal: receipt without a system or ref")
	}
	at := rc.At
	if at.IsZero() {
		at = time.Now()
	}
	b := func(v bool) int {
		if v {
			return 1
		}
		return 0
	}
	args := []any{clip(system, 40), clip(ref, 80), clip(rc.Stat, 16), clip(rc.Err, 16), b(rc.Delivered), b(rc.Final), at.UnixMilli()}
	var q string
	if j.store.Dialect == "mysql" {
		// final is assigned last: the others read the old value.
		keep := "(final = 1 AND VALUES(final) = 0)"
		q = "INSERT INTO smsrouter_ref (system, ref, stat, err, delivered, final, reported) VALUES (?,?,?,?,?,?,?)" +
			" ON DUPLICATE KEY UPDATE stat = IF(" + keep + ", stat, VALUES(stat)), err = IF(" + keep + ", err, VALUES(err))," +
			" delivered = IF(" + keep + ", delivered, VALUES(delivered)), reported = IF(" + keep + ", reported, VALUES(reported))," +
			" applied = IF(" + keep + ", applied, 0), final = IF(" + keep + ", final, VALUES(final))"
	} else {
		keep := "(smsrouter_ref.final = 1 AND excluded.final = 0)"
		set := []string{}
		for _, c := range []string{"stat", "err", "delivered", "reported", "final"} {
			set = append(set, fmt.Sprintf("%s = CASE WHEN %s THEN smsrouter_ref.%s ELSE excluded.%s END", c, keep, c, c))
		}
		set = append(set, "applied = CASE WHEN "+keep+" THEN smsrouter_ref.applied ELSE 0 END")
		q = "INSERT INTO smsrouter_ref (system, ref, stat, err, delivered, final, reported) VALUES (?,?,?,?,?,?,?)" +
			" ON CONFLICT(system, ref) DO UPDATE SET " + strings.Join(set, ", ")
	}
	if _, err := j.store.DB.ExecContext(ctx, q, args...); err != nil {
		return fmt.Errorf("journal: record receipt %s %s: %w", system, ref, err)
	}
	return nil
}

// PartReceipt is one part's ref and receipt, as `journal show` prints them.
type PartReceipt struct {
	System    string    `json:"system"`
	Ref       string    `json:"ref"`
	Part      int       `json:"part"`
	Parts     int       `json:"parts"`
	Submitted time.Time `json:"submitted,omitzero"`
	Stat      string    `json:"stat,omitempty"`
	Err       string    `json:"err,omitempty"`
	Delivered bool      `json:"delivered,omitempty"`
	Final     bool      `json:"final,omitempty"`
	Reported  time.Time `json:"reported,omitzero"`
}

// Receipts returns the refs and receipts of a message, part by part.
func (j *Journal) Receipts(ctx context.Context, id string) ([]PartReceipt, error) {
	rows, err := j.store.DB.QueryContext(ctx,
		"SELECT system, ref, part, parts, submitted, COALESCE(stat, ''), err, delivered, final, reported FROM smsrouter_ref WHERE id = ?", id)
	if err != nil {
		return nil, fmt.Errorf("journal: receipts of %s: %w", id, err)
	}
	defer rows.Close()
	var out []PartReceipt
	for rows.Next() {
		var p PartReceipt
		var sub, rep sql.NullInt64
		var delivered, final int
		if err := rows.Scan(&p.System, &p.Ref, &p.Part, &p.Parts, &sub, &p.Stat, &p.Err, &delivered, &final, &rep); err != nil {
			return nil, fmt.Errorf("journal: receipts of %s: %w", id, err)
		}
		p.Delivered, p.Final = delivered == 1, final == 1
		if sub.Valid {
			p.Submitted = time.UnixMilli(sub.Int64)
		}
		if rep.Valid {
			p.Reported = time.UnixMilli(rep.Int64)
		}
		out = append(out, p)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("journal: receipts of %s: %w", id, err)
	}
	sort.Slice(out, func(a, b int) bool { return out[a].Part < out[b].Part })
	return out, nil
}

// HandsetState sums up the receipts of a message's parts: "delivered to
// handset" once every part's receipt says so, "failed: <stat>" as soon as one
// part failed for good, "" while nothing final is known.
func HandsetState(parts []PartReceipt) (state string, failed bool) {
	if len(parts) == 0 {
		return "", false
	}
	total := max(parts[0].Parts, len(parts))
	delivered := 0
	for _, p := range parts {
		if p.Final && !p.Delivered {
			s := "failed: " + p.Stat
			if p.Err != "" && p.Err != "000" {
				s += " (error " + p.Err + ")"
			}
			if total > 1 {
				s += fmt.Sprintf(" (part %d of %d)", p.Part, total)
			}
			return s, true
		}
		if p.Delivered {
			delivered++
		}
	}
	if delivered == total {
		return "delivered to handset", false
	}
	return "", false
}

// ReceiptSummary counts what ApplyReceipts did.
type ReceiptSummary struct {
	Applied int      // journal rows updated
	Waiting int      // receipts whose message is not recorded as delivered yet
	Notices []string // ids of notices queued to senders
}

// receiptRetention is how long a receipt waits for its message's journal row
// (or a ref for a receipt) before it is forgotten.
const receiptRetention = 30 * 24 * time.Hour

// ApplyReceipts records the receipts not applied yet in their messages'
// journal rows: detail "handset" ("delivered to handset" / "failed: UNDELIV"),
// "receipts" (each part's), and last_error on failure. The state stays
// delivered: the message was handed to its channel, as with call evidence.
// notify(system) says whether a failure is told to the sender (the link's
// notify_failed); the notice is queued once per message.
func (a *Admin) ApplyReceipts(ctx context.Context, notify func(system string) bool) (ReceiptSummary, error) {
	var sum ReceiptSummary
	j := a.journal
	rows, err := j.store.DB.QueryContext(ctx,
		"SELECT DISTINCT id FROM smsrouter_ref WHERE applied = 0 AND reported IS NOT NULL AND id IS NOT NULL LIMIT 500")
	if err != nil {
		return sum, fmt.Errorf("receipts: %w", err)
	}
	var ids []string
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			rows.Close()
			return sum, fmt.Errorf("receipts: %w", err)
		}
		ids = append(ids, id)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return sum, fmt.Errorf("receipts: %w", err)
	}
	sort.Strings(ids)
	for _, id := range ids {
		if err := ctx.Err(); err != nil {
			return sum, err
		}
		applied, notice, err := a.applyReceipts(ctx, id, notify)
		if err != nil {
			return sum, err
		}
		if applied {
			sum.Applied++
		} else {
			sum.Waiting++
		}
		if notice != "" {
			sum.Notices = append(sum.Notices, notice)
		}
	}
	// Receipts nobody will ever claim (a ref the network made up, a message
	// long gone) are forgotten after a while.
	cut := a.now().Add(-receiptRetention).UnixMilli()
	if _, err := j.store.DB.ExecContext(ctx, "DELETE FROM smsrouter_ref WHERE (reported IS NOT NULL AND reported < ?) OR (reported IS NULL AND submitted < ?)", cut, cut); err != nil {
		return sum, fmt.Errorf("receipts: prune: %w", err)
	}
	return sum, nil
}

func (a *Admin) applyReceipts(ctx context.Context, id string, notify func(string) bool) (applied bool, noticeID string, err error) {
	j := a.journal
	rec, err := j.Get(ctx, id)
	if errors.Is(err, sql.ErrNoRows) {
		return false, "", nil // the batch that delivered it is not committed yet
	}
	if err != nil {
		return false, "", fmt.Errorf("receipts %s: %w", id, err)
	}
	if rec.State != StateDelivered {
		return false, "", nil // sent in part and retried: the final delivery records all refs
	}
	parts, err := j.Receipts(ctx, id)
	if err != nil {
		return false, "", err
	}
	state, failed := HandsetState(parts)
	var list []map[string]any
	system := ""
	for _, p := range parts {
		system = p.System
		if p.Reported.IsZero() {
			continue
		}
		e := map[string]any{"part": p.Part, "ref": p.Ref, "stat": p.Stat, "at": p.Reported.UnixMilli()}
		if p.Err != "" {
			e["err"] = p.Err
		}
		list = append(list, e)
	}
	add := map[string]any{"receipts": list}
	if state != "" {
		add["handset"] = state
	}
	if failed {
		rec.LastError = state
	}
	var place func() error
	if failed && notify != nil && notify(system) && !detailHas(rec.Detail, "receipt_notice_id") &&
		rec.OA != "" && rec.OA != a.cfg.SMSCNumber && a.cfg.SMSCNumber != "" {
		n, nid, err := a.noticeArtefact("failed", rec.OA, rec.DA, "The mobile network could not deliver it.", a.now())
		if err != nil {
			return false, "", fmt.Errorf("receipts %s: %w", id, err)
		}
		add["receipt_notice_id"] = nid
		noticeID = nid
		place = func() error { return placeArtefact(n) }
	}
	rec.Detail = mergeDetail(rec.Detail, add)
	rec.Updated = a.now()
	rec.Try = 0
	// Journal first: a crash after it loses at most a notice, never sends two.
	if err := j.Put(ctx, "", []Record{rec}); err != nil {
		return false, "", fmt.Errorf("receipts %s: %w", id, err)
	}
	if place != nil {
		if err := place(); err != nil {
			return false, "", fmt.Errorf("receipts %s: notice: %w", id, err)
		}
	}
	// Exactly the receipts read above: one that came meanwhile is applied next time.
	for _, p := range parts {
		if p.Reported.IsZero() {
			continue
		}
		if _, err := j.store.DB.ExecContext(ctx, "UPDATE smsrouter_ref SET applied = 1 WHERE system = ? AND ref = ? AND reported = ?",
			p.System, p.Ref, p.Reported.UnixMilli()); err != nil {
			return false, "", fmt.Errorf("receipts %s: %w", id, err)
		}
	}
	return true, noticeID, nil
}

func detailHas(detail, key string) bool {
	return strings.Contains(detail, `"`+key+`"`)
}
