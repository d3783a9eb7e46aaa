package dlr

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"smsrouter/router"
)

// Store keeps delivery-report requests in the database's smsrouter_dlr table.
type Store struct {
	st  *router.Store
	now func() time.Time
}

// NewStore keeps requests in st.
func NewStore(st *router.Store) *Store { return &Store{st: st, now: time.Now} }

// MaxTarget bounds a request's target (a URL): far beyond any real callback
// URL, short enough that a hostile client cannot fill the table.
const MaxTarget = 4096

// Add stores a request. Call it before the message is queued (see
// router.Submission.Accepted): once Add returns, the request survives a crash.
// Then, once the message's file is in place, call Queued; until then (and if the
// process dies first) the request waits for the message's journal row, so a
// message that never made it into the spool is never reported as accepted.
func (s *Store) Add(ctx context.Context, r Request) error {
	if r.ID == "" || r.Kind == "" {
		return errors.New("dlr: a request needs a message id and a kind")
	}
	if len(r.Target) > MaxTarget {
		return fmt.Errorf("dlr: target of %d bytes, more than %d", len(r.Target), MaxTarget)
	}
	info, err := json.Marshal(r.Info)
	if err != nil {
		return fmt.Errorf("dlr: %w", err)
	}
	now := s.now().UnixMilli()
	if _, err := s.st.DB.ExecContext(ctx,
		`INSERT INTO smsrouter_dlr (id, kind, target, mask, info, created, next_try, recheck, outcome, updated) VALUES (?,?,?,?,?,?,?,0,?,?)`,
		r.ID, r.Kind, r.Target, int(r.Mask&AllTypes), string(info), now, now, "", now); err != nil {
		return fmt.Errorf("dlr: store request for %s: %w", r.ID, err)
	}
	return nil
}

// Queued says that the message of id is in the spool: its requests may report
// it accepted at once, before the router has taken it.
func (s *Store) Queued(ctx context.Context, id string) error {
	if _, err := s.st.DB.ExecContext(ctx, "UPDATE smsrouter_dlr SET recheck = 1 WHERE id = ? AND done = 0", id); err != nil {
		return fmt.Errorf("dlr: %s queued: %w", id, err)
	}
	return nil
}

// Forget removes the requests of a message that could not be queued after all.
func (s *Store) Forget(ctx context.Context, id string) error {
	if _, err := s.st.DB.ExecContext(ctx, "DELETE FROM smsrouter_dlr WHERE id = ?", id); err != nil {
		return fmt.Errorf("dlr: forget %s: %w", id, err)
	}
	return nil
}

// Status is what became of one request.
type Status struct {
	Kind    string    `json:"kind"`
	Mask    Type      `json:"mask"`
	Sent    Type      `json:"sent"`              // the types delivered so far
	State   string    `json:"state"`             // "pending", "done" or "gave_up"
	Tries   int       `json:"failed_tries"`      // failed tries of the report now being sent
	NextTry time.Time `json:"next_try,omitzero"` // pending: when it is tried again
	Outcome string    `json:"outcome,omitempty"` // the last send's result
	Created time.Time `json:"created"`
	Updated time.Time `json:"updated"`
}

// Of returns the requests made for a message id, oldest first.
func (s *Store) Of(ctx context.Context, id string) ([]Status, error) {
	rows, err := s.st.DB.QueryContext(ctx,
		`SELECT kind, mask, sent, done, tries, next_try, outcome, created, updated FROM smsrouter_dlr WHERE id = ? ORDER BY created, kind`, id)
	if err != nil {
		return nil, fmt.Errorf("dlr: requests of %s: %w", id, err)
	}
	defer rows.Close()
	var out []Status
	for rows.Next() {
		var st Status
		var done int
		var next, created, updated int64
		if err := rows.Scan(&st.Kind, &st.Mask, &st.Sent, &done, &st.Tries, &next, &st.Outcome, &created, &updated); err != nil {
			return nil, fmt.Errorf("dlr: requests of %s: %w", id, err)
		}
		st.Created, st.Updated = time.UnixMilli(created), time.UnixMilli(updated)
		switch done {
		case 0:
			st.State = "pending"
			if st.Tries > 0 {
				st.NextTry = time.UnixMilli(next)
			}
		case doneGaveUp:
			st.State = "gave_up"
		default:
			st.State = "done"
		}
		out = append(out, st)
	}
	return out, rows.Err()
}

// Pending counts the open requests and says when the oldest was made (zero when
// none): the metrics' view of the reports still owed.
func (s *Store) Pending(ctx context.Context) (int, time.Time, error) {
	var n int
	var oldest sql.NullInt64
	if err := s.st.DB.QueryRowContext(ctx, "SELECT COUNT(*), MIN(created) FROM smsrouter_dlr WHERE done = 0").Scan(&n, &oldest); err != nil {
		return 0, time.Time{}, fmt.Errorf("dlr: pending: %w", err)
	}
	if !oldest.Valid {
		return n, time.Time{}, nil
	}
	return n, time.UnixMilli(oldest.Int64), nil
}

// The values of smsrouter_dlr.done.
const (
	doneNo     = 0
	doneYes    = 1 // every report owed was sent
	doneGaveUp = 2 // closed after failing for Config.GiveUp, or for good
)
