package router

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"smsrouter/channels"
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
	case StateDelivered, StateBounced, StateExpired, StateRejected, StateDropped, StateDuplicate:
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
	Text        string // the message's text; "" when the writer does not know it (kept as it was)
	// Try, when not 0, says this record ends the message's Try-th try: Put also
	// writes it to the message's story (Attempts).
	Try int
	// Refs are the names another system gave the message's parts (an SMSC's
	// message ids), written with the record so a receipt can find it.
	Refs []channels.Ref
	// Parts are the ids of the other parts of a concatenated message the router
	// joined into this one: Put records them (smsrouter_part) so that each part's
	// id finds this record (PartOf).
	Parts []string
	// Fingerprint, when set, is the message's duplicate-guard fingerprint, which
	// Put records for it (replacing one older than fpStale); Pair names the two
	// numbers of a generated message, which Put counts for the loop guard.
	Fingerprint string
	fpStale     time.Time
	fpReplace   bool // a row for Fingerprint was there when the guard looked
	Pair        string
}

// Attempt is one try of a message, as Put recorded it.
type Attempt struct {
	ID     string
	N      int // 1 for the first try
	At     time.Time
	State  State
	Letter string
	Error  string
	Detail string // JSON, as the journal row's Detail at that moment
}

// Journal records every message's fate in the store's smsrouter_journal table.
type Journal struct{ store *Store }

// NewJournal keeps the journal in store.
func NewJournal(store *Store) *Journal { return &Journal{store: store} }

const journalCols = "id, received, updated, oa, da, letter, state, attempts, next_attempt, last_error, detail, parent_id, text"

// journalSelect is journalCols as read back: a row written before texts were kept
// has none.
const journalSelect = "id, received, updated, oa, da, letter, state, attempts, next_attempt, last_error, detail, parent_id, COALESCE(text, '')"

// Put writes the records of one batch in one transaction (insert or replace by id).
// It is the point at which a fate becomes durable.
//
// The transaction's first statement claims the batch id in smsrouter_batch. When Put
// returns an error the commit may still have happened (the connection died after the
// server got COMMIT) or may still happen (a stalled server resumes and applies it),
// so the caller must not act on the batch until Settle has decided it.
//
// Writes that publish nothing pass batch "" and skip the batch id.
//
// A row is only ever replaced by a newer one (by updated): a commit that lands late,
// after another process has moved the message on, cannot set it back.
func (j *Journal) Put(ctx context.Context, batch string, recs []Record) error {
	if len(recs) == 0 {
		return nil
	}
	tx, err := j.writeTx(ctx, batch, recs)
	if err != nil {
		return err
	}
	return tx.commit()
}

// PendingPut is a Put whose rows are being written, not yet committed.
type PendingPut struct {
	done chan struct{}
	tx   *journalTx
	err  error
}

// Begin starts Put's transaction and writes its rows on a goroutine of its own,
// so that the caller can make the batch's files durable meanwhile: only the
// commit has to wait for them (issue 17: the rows cost as much as the staging).
// Exactly one of Commit and Abort must follow.
func (j *Journal) Begin(ctx context.Context, batch string, recs []Record) *PendingPut {
	p := &PendingPut{done: make(chan struct{})}
	go func() {
		defer close(p.done)
		p.tx, p.err = j.writeTx(ctx, batch, recs)
	}()
	return p
}

// Commit waits for the rows and commits them. Its error means what Put's does:
// the commit may still have happened.
func (p *PendingPut) Commit() error {
	<-p.done
	if p.err != nil {
		return p.err
	}
	return p.tx.commit()
}

// Abort waits for the rows and throws them away.
func (p *PendingPut) Abort() {
	<-p.done
	if p.tx != nil {
		p.tx.rollback()
	}
}

// journalTx is Put's transaction. On SQLite it runs on a connection of its
// own, so that the log frames its commit wrote can be counted for the
// store's checkpointer.
type journalTx struct {
	*sql.Tx
	conn  *sql.Conn // SQLite only
	store *Store
}

// writeTx begins Put's transaction and writes its rows, leaving the commit.
func (j *Journal) writeTx(ctx context.Context, batch string, recs []Record) (*journalTx, error) {
	tx, err := j.store.beginJournal(ctx)
	if err != nil {
		return nil, fmt.Errorf("journal: begin: %w", err)
	}
	if err := j.write(ctx, tx.Tx, batch, recs); err != nil {
		tx.rollback()
		return nil, err
	}
	return tx, nil
}

// beginJournal begins a journal transaction. On SQLite it first waits for a
// running checkpoint (see walCheckpointer).
func (s *Store) beginJournal(ctx context.Context) (*journalTx, error) {
	if s.Dialect != "sqlite" {
		tx, err := s.DB.BeginTx(ctx, nil)
		if err != nil {
			return nil, err
		}
		return &journalTx{Tx: tx, store: s}, nil
	}
	s.checkpointer.wait()
	conn, err := s.DB.Conn(ctx)
	if err != nil {
		return nil, err
	}
	tx, err := conn.BeginTx(ctx, nil)
	if err != nil {
		conn.Close()
		return nil, err
	}
	return &journalTx{Tx: tx, conn: conn, store: s}, nil
}

func (t *journalTx) commit() error {
	err := t.Commit()
	if t.conn != nil {
		if err == nil {
			t.store.checkpointer.wrote(t.store.DB, t.conn)
		}
		t.conn.Close()
	}
	if err != nil {
		return fmt.Errorf("journal: commit: %w", err)
	}
	return nil
}

func (t *journalTx) rollback() {
	t.Rollback() //nolint:errcheck // nothing was committed either way
	if t.conn != nil {
		t.conn.Close()
	}
}

// write is Put's statements inside tx.
func (j *Journal) write(ctx context.Context, tx *sql.Tx, batch string, recs []Record) error {
	if batch != "" {
		if _, err := tx.ExecContext(ctx, "INSERT INTO smsrouter_batch (id, committed, created) VALUES (?, 1, ?)",
			batch, time.Now().UnixMilli()); err != nil {
			return fmt.Errorf("journal: claim batch %s: %w", batch, err)
		}
	}
	const chunk = 200
	for start := 0; start < len(recs); start += chunk {
		end := min(start+chunk, len(recs))
		part := recs[start:end]
		var b strings.Builder
		b.WriteString("INSERT INTO smsrouter_journal (" + journalCols + ") VALUES ")
		args := make([]any, 0, len(part)*13)
		for i, r := range part {
			if i > 0 {
				b.WriteByte(',')
			}
			b.WriteString("(?,?,?,?,?,?,?,?,?,?,?,?,?)")
			upd := r.Updated
			if upd.IsZero() {
				upd = time.Now()
			}
			var next, parent, text any
			if !r.NextAttempt.IsZero() {
				next = r.NextAttempt.UnixMilli()
			}
			if r.ParentID != "" {
				parent = r.ParentID
			}
			if r.Text != "" {
				text = r.Text
			}
			args = append(args, r.ID, r.Received.UnixMilli(), upd.UnixMilli(), r.OA, r.DA, r.Letter,
				string(r.State), r.Attempts, next, r.LastError, r.Detail, parent, text)
		}
		b.WriteString(j.upsert())
		if _, err := tx.ExecContext(ctx, b.String(), args...); err != nil {
			return fmt.Errorf("journal: write %d records: %w", len(part), err)
		}
		if err := j.putAttempts(ctx, tx, part); err != nil {
			return err
		}
		if err := j.putRefs(ctx, tx, part); err != nil {
			return err
		}
		if err := j.putParts(ctx, tx, part); err != nil {
			return err
		}
		if err := j.putGuards(ctx, tx, part); err != nil {
			return err
		}
	}
	return nil
}

// upsertCols are the columns a newer record replaces.
var upsertCols = []string{"oa", "da", "letter", "state", "attempts", "next_attempt", "last_error", "detail", "parent_id"}

// upsert is the dialect's "replace the row, unless it is newer than this one".
func (j *Journal) upsert() string {
	var b strings.Builder
	if j.store.Dialect == "mysql" {
		// MySQL has no WHERE on ON DUPLICATE KEY UPDATE: each column is guarded, and
		// updated is assigned last because later assignments see earlier ones.
		b.WriteString(" ON DUPLICATE KEY UPDATE ")
		for _, c := range upsertCols {
			fmt.Fprintf(&b, "%s = IF(VALUES(updated) >= updated, VALUES(%s), %s), ", c, c, c)
		}
		b.WriteString("text = COALESCE(VALUES(text), text), ")
		b.WriteString("updated = GREATEST(updated, VALUES(updated))")
		return b.String()
	}
	b.WriteString(" ON CONFLICT(id) DO UPDATE SET ")
	for _, c := range upsertCols {
		fmt.Fprintf(&b, "%s = excluded.%s, ", c, c)
	}
	b.WriteString("text = COALESCE(excluded.text, smsrouter_journal.text), ")
	b.WriteString("updated = excluded.updated WHERE excluded.updated >= smsrouter_journal.updated")
	return b.String()
}

// Settle decides a batch whose Put returned an error: it reports whether the batch's
// transaction committed. If it had not, it never will: Settle takes the batch id
// first. On MySQL the insert waits for a transaction still holding the id (a server
// that stalled with the COMMIT in hand), so the answer is final whichever way the
// original transaction ends. An error means "still unknown": ask again later.
func (j *Journal) Settle(ctx context.Context, batch string) (committed bool, err error) {
	ignore := "INSERT OR IGNORE"
	if j.store.Dialect == "mysql" {
		ignore = "INSERT IGNORE"
	}
	if _, err := j.store.DB.ExecContext(ctx, ignore+" INTO smsrouter_batch (id, committed, created) VALUES (?, 0, ?)",
		batch, time.Now().UnixMilli()); err != nil {
		return false, fmt.Errorf("journal: settle batch %s: %w", batch, err)
	}
	var c int
	if err := j.store.DB.QueryRowContext(ctx, "SELECT committed FROM smsrouter_batch WHERE id = ?", batch).Scan(&c); err != nil {
		return false, fmt.Errorf("journal: settle batch %s: %w", batch, err)
	}
	return c == 1, nil
}

// BatchRetention is how long batch ids are kept. Settle reads a missing id as "never
// committed", so it must outlive any batch left unsettled (a database down for longer
// than this would make a committed batch's staged files be thrown away).
const BatchRetention = 30 * 24 * time.Hour

// PruneBatches forgets batch ids older than BatchRetention.
func (j *Journal) PruneBatches(ctx context.Context, now time.Time) (int64, error) {
	res, err := j.store.DB.ExecContext(ctx, "DELETE FROM smsrouter_batch WHERE created < ?", now.Add(-BatchRetention).UnixMilli())
	if err != nil {
		return 0, fmt.Errorf("journal: prune batches: %w", err)
	}
	n, _ := res.RowsAffected()
	return n, nil
}

// putAttempts writes the tries the records end, in the batch's transaction. Like the
// journal rows, an attempt row is only replaced by a newer one.
func (j *Journal) putAttempts(ctx context.Context, tx *sql.Tx, recs []Record) error {
	var b strings.Builder
	var args []any
	for _, r := range recs {
		if r.Try <= 0 {
			continue
		}
		if len(args) > 0 {
			b.WriteByte(',')
		}
		b.WriteString("(?,?,?,?,?,?,?)")
		at := r.Updated
		if at.IsZero() {
			at = time.Now()
		}
		args = append(args, r.ID, r.Try, at.UnixMilli(), string(r.State), r.Letter, r.LastError, r.Detail)
	}
	if len(args) == 0 {
		return nil
	}
	q := "INSERT INTO smsrouter_attempt (id, n, at, state, letter, error, detail) VALUES " + b.String()
	if j.store.Dialect == "mysql" {
		q += ` ON DUPLICATE KEY UPDATE state = IF(VALUES(at) >= at, VALUES(state), state),
			letter = IF(VALUES(at) >= at, VALUES(letter), letter), error = IF(VALUES(at) >= at, VALUES(error), error),
			detail = IF(VALUES(at) >= at, VALUES(detail), detail), at = GREATEST(at, VALUES(at))`
	} else {
		q += ` ON CONFLICT(id, n) DO UPDATE SET state = excluded.state, letter = excluded.letter, error = excluded.error,
			detail = excluded.detail, at = excluded.at WHERE excluded.at >= smsrouter_attempt.at`
	}
	if _, err := tx.ExecContext(ctx, q, args...); err != nil {
		return fmt.Errorf("journal: write attempts: %w", err)
	}
	return nil
}

// Attempts returns a message's tries, first first.
func (j *Journal) Attempts(ctx context.Context, id string) ([]Attempt, error) {
	rows, err := j.store.DB.QueryContext(ctx,
		"SELECT id, n, at, state, letter, error, detail FROM smsrouter_attempt WHERE id = ? ORDER BY n", id)
	if err != nil {
		return nil, fmt.Errorf("journal: attempts of %s: %w", id, err)
	}
	defer rows.Close()
	var out []Attempt
	for rows.Next() {
		var a Attempt
		var at int64
		var st string
		if err := rows.Scan(&a.ID, &a.N, &at, &st, &a.Letter, &a.Error, &a.Detail); err != nil {
			return nil, fmt.Errorf("journal: attempts of %s: %w", id, err)
		}
		a.At, a.State = time.UnixMilli(at), State(st)
		out = append(out, a)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("journal: attempts of %s: %w", id, err)
	}
	return out, nil
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
	Since  time.Time // received at or after
	Until  time.Time // received before
	State  State
	Number string // matches oa or da
	Letter string // the service letter, or LetterLink for the mobile links
	Link   string // the mobile link that carried the message (its detail's "link")
	Limit  int    // 0 means 1000
	// After, when not nil, continues a listing: only records that come after it
	// in List's order (older, or as old with a smaller id).
	After *Cursor
}

// Cursor is a position in List's order (newest first): where a page ended.
type Cursor struct {
	Received time.Time
	ID       string
}

// CursorOf is the position of r, for the next page after it.
func CursorOf(r Record) Cursor { return Cursor{Received: r.Received, ID: r.ID} }

// List returns matching records, newest first (by received, then id).
func (j *Journal) List(ctx context.Context, f Filter) ([]Record, error) {
	var where []string
	var args []any
	if !f.Since.IsZero() {
		where = append(where, "received >= ?")
		args = append(args, f.Since.UnixMilli())
	}
	if !f.Until.IsZero() {
		where = append(where, "received < ?")
		args = append(args, f.Until.UnixMilli())
	}
	if f.State != "" {
		where = append(where, "state = ?")
		args = append(args, string(f.State))
	}
	if f.Number != "" {
		where = append(where, "(oa = ? OR da = ?)")
		args = append(args, f.Number, f.Number)
	}
	if f.Letter != "" {
		where = append(where, "letter = ?")
		args = append(args, f.Letter)
	}
	if f.Link != "" {
		// The detail is JSON written by encoding/json: the fact reads exactly so.
		where = append(where, "detail LIKE ? ESCAPE '!'")
		link, _ := json.Marshal(map[string]string{"link": f.Link})
		args = append(args, "%"+likeEscape(strings.Trim(string(link), "{}"))+"%")
	}
	if f.After != nil {
		ms := f.After.Received.UnixMilli()
		where = append(where, "(received < ? OR (received = ? AND id < ?))")
		args = append(args, ms, ms, f.After.ID)
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

// Stamp is a journal row's id and when it was last written.
type Stamp struct {
	ID      string
	Updated time.Time
}

// Stamps returns the ids and write times of the rows written at or after since,
// oldest write first, at most limit of them. It reads only the index on updated,
// so a tail of the journal (journal --follow) costs what changed, not the table.
func (j *Journal) Stamps(ctx context.Context, since time.Time, limit int) ([]Stamp, error) {
	if limit <= 0 {
		limit = 1000
	}
	rows, err := j.store.DB.QueryContext(ctx,
		fmt.Sprintf("SELECT id, updated FROM smsrouter_journal WHERE updated >= ? ORDER BY updated, id LIMIT %d", limit),
		since.UnixMilli())
	if err != nil {
		return nil, fmt.Errorf("journal: changes: %w", err)
	}
	defer rows.Close()
	var out []Stamp
	for rows.Next() {
		var s Stamp
		var ms int64
		if err := rows.Scan(&s.ID, &ms); err != nil {
			return nil, fmt.Errorf("journal: changes: %w", err)
		}
		s.Updated = time.UnixMilli(ms)
		out = append(out, s)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("journal: changes: %w", err)
	}
	return out, nil
}

// GetMany returns the records of the ids that have one, in no particular order.
func (j *Journal) GetMany(ctx context.Context, ids []string) ([]Record, error) {
	var out []Record
	const chunk = 500
	for start := 0; start < len(ids); start += chunk {
		part := ids[start:min(start+chunk, len(ids))]
		args := make([]any, len(part))
		for i, id := range part {
			args[i] = id
		}
		recs, err := j.query(ctx, "WHERE id IN (?"+strings.Repeat(",?", len(part)-1)+")", args, len(part))
		if err != nil {
			return nil, err
		}
		out = append(out, recs...)
	}
	return out, nil
}

// putParts records which message each joined part went into.
func (j *Journal) putParts(ctx context.Context, tx *sql.Tx, recs []Record) error {
	var b strings.Builder
	var args []any
	for _, r := range recs {
		for _, p := range r.Parts {
			if len(args) > 0 {
				b.WriteByte(',')
			}
			b.WriteString("(?,?)")
			args = append(args, p, r.ID)
		}
	}
	if len(args) == 0 {
		return nil
	}
	ignore := "INSERT OR IGNORE"
	if j.store.Dialect == "mysql" {
		ignore = "INSERT IGNORE"
	}
	if _, err := tx.ExecContext(ctx, ignore+" INTO smsrouter_part (id, message_id) VALUES "+b.String(), args...); err != nil {
		return fmt.Errorf("journal: write parts: %w", err)
	}
	return nil
}

// PartOf returns the id of the message a joined part went into; sql.ErrNoRows
// when id is not a joined part.
func (j *Journal) PartOf(ctx context.Context, id string) (string, error) {
	var m string
	err := j.store.DB.QueryRowContext(ctx, "SELECT message_id FROM smsrouter_part WHERE id = ?", id).Scan(&m)
	if err != nil {
		return "", fmt.Errorf("journal: part %s: %w", id, err)
	}
	return m, nil
}

// Parts returns the ids of the parts joined into a message (part 1's id is the
// message's own and is not listed).
func (j *Journal) Parts(ctx context.Context, id string) ([]string, error) {
	rows, err := j.store.DB.QueryContext(ctx, "SELECT id FROM smsrouter_part WHERE message_id = ? ORDER BY id", id)
	if err != nil {
		return nil, fmt.Errorf("journal: parts of %s: %w", id, err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var p string
		if err := rows.Scan(&p); err != nil {
			return nil, fmt.Errorf("journal: parts of %s: %w", id, err)
		}
		out = append(out, p)
	}
	return out, rows.Err()
}

func (j *Journal) query(ctx context.Context, clause string, args []any, limit int) ([]Record, error) {
	rows, err := j.store.DB.QueryContext(ctx,
		fmt.Sprintf("SELECT %s FROM smsrouter_journal %s LIMIT %d", journalSelect, clause, limit), args...)
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
			&next, &r.LastError, &r.Detail, &parent, &r.Text); err != nil {
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

// likeEscape makes s match itself literally in a LIKE pattern with ESCAPE '!'
// (link names may hold _, which LIKE reads as any character).
func likeEscape(s string) string {
	return strings.NewReplacer("!", "!!", "%", "!%", "_", "!_").Replace(s)
}
