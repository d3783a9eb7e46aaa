package router

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
	"time"
)

// State is a message's fate, or where it is on the way to one.
type State string

// The states a journal row can be in. Final states end a message's life; a message
// in a final state is never delivered again, whatever is left in the spool.
const (
	StateDelivered State = "delivered" // handed to its channel (files published, message sent)
	StateDeferred  State = "deferred"  // a temporary failure; retried at next_attempt
	StateBounced   State = "bounced"   // a definite "cannot deliver"; the sender got a notice
	StateExpired   State = "expired"   // retried until its validity ended; the sender got a notice
	StateRejected  State = "rejected"  // malformed input, quarantined with a reason
	StateDropped   State = "dropped"   // undeliverable and no one to tell (e.g. a notice to an unknown number)
	StateHeld      State = "held"      // a part of a concatenated message waiting for its siblings
)

// Final reports whether the state ends the message's life.
func (s State) Final() bool {
	switch s {
	case StateDelivered, StateBounced, StateExpired, StateRejected, StateDropped:
		return true
	}
	return false
}

// Record is one journal row.
type Record struct {
	ID          string
	Received    time.Time
	Updated     time.Time
	OA, DA      string
	Letter      string
	State       State
	Attempts    int
	NextAttempt time.Time // zero when none
	LastError   string
	Detail      string // JSON: what was written or sent, the source file, …
	ParentID    string // the message a notice or reply is about
}

// Journal records every message's fate in the store's smsrouter_journal table.
type Journal struct{ store *Store }

// NewJournal keeps the journal in store.
func NewJournal(store *Store) *Journal { return &Journal{store: store} }

const journalCols = "id, received, updated, oa, da, letter, state, attempts, next_attempt, last_error, detail, parent_id"

// Put writes the records in one transaction (insert or replace by id). It is the
// point at which a fate becomes durable.
func (j *Journal) Put(ctx context.Context, recs []Record) error {
	if len(recs) == 0 {
		return nil
	}
	tx, err := j.store.DB.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("journal: begin: %w", err)
	}
	defer tx.Rollback() //nolint:errcheck // a no-op after Commit
	const chunk = 200
	for start := 0; start < len(recs); start += chunk {
		end := min(start+chunk, len(recs))
		part := recs[start:end]
		var b strings.Builder
		b.WriteString("INSERT INTO smsrouter_journal (" + journalCols + ") VALUES ")
		args := make([]any, 0, len(part)*12)
		for i, r := range part {
			if i > 0 {
				b.WriteByte(',')
			}
			b.WriteString("(?,?,?,?,?,?,?,?,?,?,?,?)")
			upd := r.Updated
			if upd.IsZero() {
				upd = time.Now()
			}
			var next, parent any
			if !r.NextAttempt.IsZero() {
				next = r.NextAttempt.UnixMilli()
			}
			if r.ParentID != "" {
				parent = r.ParentID
			}
			args = append(args, r.ID, r.Received.UnixMilli(), upd.UnixMilli(), r.OA, r.DA, r.Letter,
				string(r.State), r.Attempts, next, r.LastError, r.Detail, parent)
		}
		if j.store.Dialect == "mysql" {
			b.WriteString(` ON DUPLICATE KEY UPDATE updated=VALUES(updated), oa=VALUES(oa), da=VALUES(da),
				letter=VALUES(letter), state=VALUES(state), attempts=VALUES(attempts),
				next_attempt=VALUES(next_attempt), last_error=VALUES(last_error), detail=VALUES(detail),
				parent_id=VALUES(parent_id)`)
		} else {
			b.WriteString(` ON CONFLICT(id) DO UPDATE SET updated=excluded.updated, oa=excluded.oa, da=excluded.da,
				letter=excluded.letter, state=excluded.state, attempts=excluded.attempts,
				next_attempt=excluded.next_attempt, last_error=excluded.last_error, detail=excluded.detail,
				parent_id=excluded.parent_id`)
		}
		if _, err := tx.ExecContext(ctx, b.String(), args...); err != nil {
			return fmt.Errorf("journal: write %d records: %w", len(part), err)
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("journal: commit: %w", err)
	}
	return nil
}

// States returns the recorded state of each id that has a row.
func (j *Journal) States(ctx context.Context, ids []string) (map[string]State, error) {
	out := make(map[string]State, len(ids))
	const chunk = 500
	for start := 0; start < len(ids); start += chunk {
		part := ids[start:min(start+chunk, len(ids))]
		args := make([]any, len(part))
		for i, id := range part {
			args[i] = id
		}
		rows, err := j.store.DB.QueryContext(ctx,
			"SELECT id, state FROM smsrouter_journal WHERE id IN (?"+strings.Repeat(",?", len(part)-1)+")", args...)
		if err != nil {
			return nil, fmt.Errorf("journal: read states: %w", err)
		}
		for rows.Next() {
			var id, st string
			if err := rows.Scan(&id, &st); err != nil {
				rows.Close()
				return nil, fmt.Errorf("journal: read states: %w", err)
			}
			out[id] = State(st)
		}
		err = rows.Err()
		rows.Close()
		if err != nil {
			return nil, fmt.Errorf("journal: read states: %w", err)
		}
	}
	return out, nil
}

// Get returns one record, sql.ErrNoRows when there is none.
func (j *Journal) Get(ctx context.Context, id string) (Record, error) {
	recs, err := j.query(ctx, "WHERE id = ?", []any{id}, 1)
	if err != nil {
		return Record{}, err
	}
	if len(recs) == 0 {
		return Record{}, fmt.Errorf("journal: %s: %w", id, sql.ErrNoRows)
	}
	return recs[0], nil
}

// Filter selects journal records; zero fields match everything.
type Filter struct {
	Since  time.Time
	State  State
	Number string // matches oa or da
	Limit  int
}

// List returns matching records, newest first.
func (j *Journal) List(ctx context.Context, f Filter) ([]Record, error) {
	var where []string
	var args []any
	if !f.Since.IsZero() {
		where = append(where, "received >= ?")
		args = append(args, f.Since.UnixMilli())
	}
	if f.State != "" {
		where = append(where, "state = ?")
		args = append(args, string(f.State))
	}
	if f.Number != "" {
		where = append(where, "(oa = ? OR da = ?)")
		args = append(args, f.Number, f.Number)
	}
	clause := ""
	if len(where) > 0 {
		clause = "WHERE " + strings.Join(where, " AND ")
	}
	limit := f.Limit
	if limit <= 0 {
		limit = 1000
	}
	return j.query(ctx, clause+" ORDER BY received DESC, id DESC", args, limit)
}

func (j *Journal) query(ctx context.Context, clause string, args []any, limit int) ([]Record, error) {
	rows, err := j.store.DB.QueryContext(ctx,
		fmt.Sprintf("SELECT %s FROM smsrouter_journal %s LIMIT %d", journalCols, clause, limit), args...)
	if err != nil {
		return nil, fmt.Errorf("journal: query: %w", err)
	}
	defer rows.Close()
	var out []Record
	for rows.Next() {
		var r Record
		var received, updated int64
		var next sql.NullInt64
		var parent sql.NullString
		var state string
		if err := rows.Scan(&r.ID, &received, &updated, &r.OA, &r.DA, &r.Letter, &state, &r.Attempts,
			&next, &r.LastError, &r.Detail, &parent); err != nil {
			return nil, fmt.Errorf("journal: scan: %w", err)
		}
		r.Received = time.UnixMilli(received)
		r.Updated = time.UnixMilli(updated)
		if next.Valid {
			r.NextAttempt = time.UnixMilli(next.Int64)
		}
		r.ParentID = parent.String
		r.State = State(state)
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("journal: query: %w", err)
	}
	return out, nil
}
