package router

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
	"time"
)

// DefaultRetention is how long the journal keeps a message after its last
// change, unless [journal] retention says otherwise.
const DefaultRetention = 90 * 24 * time.Hour

// MinRetention is the shortest retention Prune accepts: a message's row is what
// stops a message found again after a crash from being delivered twice, so it
// must outlive any process that could still be holding the message.
const MinRetention = time.Hour

// PruneResult counts what a prune removed (or, dry, would remove).
type PruneResult struct {
	Messages int64 // journal rows
	Attempts int64 // their tries (smsrouter_attempt)
	Reports  int64 // delivery-report requests (smsrouter_dlr), theirs and orphans
	Parts    int64 // joined-part links (smsrouter_part)
}

func (p PruneResult) String() string {
	return fmt.Sprintf("%d messages, %d tries, %d delivery reports, %d part links", p.Messages, p.Attempts, p.Reports, p.Parts)
}

// PruneChunk is how many messages one prune transaction removes: small enough
// that the rows it locks are released within milliseconds, so a prune of
// millions of rows never holds up the router's journal writes for long.
const PruneChunk = 500

// Prune removes the messages last changed before `before`, with their tries,
// delivery-report requests and part links, in transactions of chunk messages
// (PruneChunk when 0). A message still being retried (deferred) keeps its row
// whatever its age: it is not history yet. Delivery-report requests whose
// message never reached the journal are removed once created before `before`.
// With dryRun nothing is deleted and the counts say what would be.
//
// smsrouter_batch has its own rule (PruneBatches).
func (j *Journal) Prune(ctx context.Context, before time.Time, chunk int, dryRun bool) (PruneResult, error) {
	var res PruneResult
	if chunk <= 0 {
		chunk = PruneChunk
	}
	cut := before.UnixMilli()
	if dryRun {
		return j.pruneCount(ctx, cut)
	}
	for {
		n, err := j.pruneChunk(ctx, cut, chunk, &res)
		if err != nil {
			return res, err
		}
		if n < chunk {
			break
		}
	}
	// Orphans: a request written by an ingress whose message file never made it
	// (the write failed after the request was stored), or whose message was
	// removed from the spool by hand.
	for {
		r, err := j.store.DB.ExecContext(ctx, j.orphanDelete(chunk), cut)
		if err != nil {
			return res, fmt.Errorf("journal: prune orphan reports: %w", err)
		}
		n, _ := r.RowsAffected()
		res.Reports += n
		if n < int64(chunk) {
			break
		}
	}
	return res, nil
}

const pruneWhere = "updated < ? AND state <> 'deferred'"

const orphanWhere = `created < ? AND NOT EXISTS (SELECT 1 FROM smsrouter_journal j WHERE j.id = smsrouter_dlr.id)
	AND NOT EXISTS (SELECT 1 FROM smsrouter_part p WHERE p.id = smsrouter_dlr.id)`

func (j *Journal) orphanDelete(chunk int) string {
	if j.store.Dialect == "mysql" {
		return fmt.Sprintf("DELETE FROM smsrouter_dlr WHERE %s LIMIT %d", orphanWhere, chunk)
	}
	// SQLite's DELETE has no LIMIT unless compiled with it.
	return fmt.Sprintf("DELETE FROM smsrouter_dlr WHERE rowid IN (SELECT rowid FROM smsrouter_dlr WHERE %s LIMIT %d)", orphanWhere, chunk)
}

// pruneChunk removes up to chunk messages in one transaction and returns how
// many it removed.
func (j *Journal) pruneChunk(ctx context.Context, cut int64, chunk int, res *PruneResult) (int, error) {
	tx, err := j.store.DB.BeginTx(ctx, nil)
	if err != nil {
		return 0, fmt.Errorf("journal: prune: %w", err)
	}
	defer tx.Rollback() //nolint:errcheck // a no-op after Commit
	q := fmt.Sprintf("SELECT id FROM smsrouter_journal WHERE %s ORDER BY updated LIMIT %d", pruneWhere, chunk)
	if j.store.Dialect == "mysql" {
		// Locks exactly these rows until the commit: a router that writes one of
		// them meanwhile waits (milliseconds) and then writes a new row.
		q += " FOR UPDATE"
	}
	ids, err := queryStrings(ctx, tx, q, cut)
	if err != nil {
		return 0, fmt.Errorf("journal: prune: %w", err)
	}
	if len(ids) == 0 {
		return 0, nil
	}
	in, args := inList(ids)
	parts, err := queryStrings(ctx, tx, "SELECT id FROM smsrouter_part WHERE message_id IN "+in, args...)
	if err != nil {
		return 0, fmt.Errorf("journal: prune: %w", err)
	}
	del := func(q string, args []any, n *int64) error {
		r, err := tx.ExecContext(ctx, q, args...)
		if err != nil {
			return fmt.Errorf("journal: prune: %w", err)
		}
		c, _ := r.RowsAffected()
		*n += c
		return nil
	}
	if err := del("DELETE FROM smsrouter_attempt WHERE id IN "+in, args, &res.Attempts); err != nil {
		return 0, err
	}
	rin, rargs := inList(append(append([]string(nil), ids...), parts...))
	if err := del("DELETE FROM smsrouter_dlr WHERE id IN "+rin, rargs, &res.Reports); err != nil {
		return 0, err
	}
	if err := del("DELETE FROM smsrouter_part WHERE message_id IN "+in, args, &res.Parts); err != nil {
		return 0, err
	}
	if err := del("DELETE FROM smsrouter_journal WHERE id IN "+in, args, &res.Messages); err != nil {
		return 0, err
	}
	if err := tx.Commit(); err != nil {
		return 0, fmt.Errorf("journal: prune: %w", err)
	}
	return len(ids), nil
}

// pruneCount is Prune's dry run.
func (j *Journal) pruneCount(ctx context.Context, cut int64) (PruneResult, error) {
	var res PruneResult
	sub := "SELECT id FROM smsrouter_journal WHERE " + pruneWhere
	for _, c := range []struct {
		n *int64
		q string
	}{
		{&res.Messages, "SELECT COUNT(*) FROM smsrouter_journal WHERE " + pruneWhere},
		{&res.Attempts, "SELECT COUNT(*) FROM smsrouter_attempt WHERE id IN (" + sub + ")"},
		{&res.Parts, "SELECT COUNT(*) FROM smsrouter_part WHERE message_id IN (" + sub + ")"},
		{&res.Reports, "SELECT COUNT(*) FROM smsrouter_dlr WHERE id IN (" + sub + ") OR id IN (SELECT id FROM smsrouter_part WHERE message_id IN (" + sub + "))"},
	} {
		args := []any{cut}
		if strings.Count(c.q, "?") == 2 {
			args = append(args, cut)
		}
		if err := j.store.DB.QueryRowContext(ctx, c.q, args...).Scan(c.n); err != nil {
			return res, fmt.Errorf("journal: prune (dry run): %w", err)
		}
	}
	var orphans int64
	if err := j.store.DB.QueryRowContext(ctx, "SELECT COUNT(*) FROM smsrouter_dlr WHERE "+orphanWhere, cut).Scan(&orphans); err != nil {
		return res, fmt.Errorf("journal: prune (dry run): %w", err)
	}
	res.Reports += orphans
	return res, nil
}

type querier interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
}

func queryStrings(ctx context.Context, q querier, query string, args ...any) ([]string, error) {
	rows, err := q.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			return nil, err
		}
		out = append(out, s)
	}
	return out, rows.Err()
}

// inList is "(?,?,…)" for the values, with the values as arguments.
func inList(vals []string) (string, []any) {
	args := make([]any, len(vals))
	for i, v := range vals {
		args[i] = v
	}
	return "(?" + strings.Repeat(",?", len(vals)-1) + ")", args
}
