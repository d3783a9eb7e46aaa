package router

import (
	"context"
	"errors"
	"fmt"
	"math/bits"
	"strings"
)

// Entry is one row of PBXNumbers: a number, its service letter and where it lives.
type Entry struct {
	Number    string
	Letter    byte   // S F V C T N, upper-cased
	Extension string // e.g. PJSIP/1000
}

// ErrUnknownNumber is a definite answer: the directory has no such number.
var ErrUnknownNumber = errors.New("no such number")

// ErrDirectoryUnavailable wraps every failure to reach the directory. It is always
// temporary: a sick database delays a message, it never bounces it.
var ErrDirectoryUnavailable = errors.New("directory unavailable")

// Directory answers "which letter and extension does this number have?".
type Directory interface {
	Lookup(ctx context.Context, number string) (Entry, error)
	// LookupMany answers for several numbers in one round trip; numbers missing from
	// the result are unknown.
	LookupMany(ctx context.Context, numbers []string) (map[string]Entry, error)
}

// SQLDirectory reads PBXNumbers on every call, so an admin's UPDATE applies to the
// very next message.
type SQLDirectory struct{ store *Store }

// NewSQLDirectory reads the directory from store.
func NewSQLDirectory(store *Store) *SQLDirectory { return &SQLDirectory{store: store} }

// Lookup returns ErrUnknownNumber or an error wrapping ErrDirectoryUnavailable.
func (d *SQLDirectory) Lookup(ctx context.Context, number string) (Entry, error) {
	m, err := d.LookupMany(ctx, []string{number})
	if err != nil {
		return Entry{}, err
	}
	e, ok := m[number]
	if !ok {
		return Entry{}, fmt.Errorf("%s: %w", number, ErrUnknownNumber)
	}
	return e, nil
}

// LookupMany implements Directory.
func (d *SQLDirectory) LookupMany(ctx context.Context, numbers []string) (map[string]Entry, error) {
	out := make(map[string]Entry, len(numbers))
	if len(numbers) == 0 {
		return out, nil
	}
	uniq := make([]any, 0, len(numbers))
	seen := make(map[string]bool, len(numbers))
	for _, n := range numbers {
		if !seen[n] {
			seen[n] = true
			uniq = append(uniq, n)
		}
	}
	if d.store.prepare {
		// Prepared statements are kept per shape: pad the list to a power of two
		// (repeating a number changes nothing) so a few shapes serve every batch.
		for n := 1 << bits.Len(uint(len(uniq)-1)); len(uniq) < n; {
			uniq = append(uniq, uniq[0])
		}
	}
	q := "SELECT Account, Message, Extension FROM PBXNumbers WHERE Account IN (?" +
		strings.Repeat(",?", len(uniq)-1) + ")"
	rows, err := d.store.query(ctx, q, uniq...)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrDirectoryUnavailable, err)
	}
	defer rows.Close()
	for rows.Next() {
		var acc, msg, ext string
		if err := rows.Scan(&acc, &msg, &ext); err != nil {
			return nil, fmt.Errorf("%w: %v", ErrDirectoryUnavailable, err)
		}
		// Admins edit this table by hand: tolerate stray blanks and lower case.
		acc = strings.TrimSpace(acc)
		letter := strings.ToUpper(strings.TrimSpace(msg))
		var l byte
		if letter != "" {
			l = letter[0]
		}
		if _, dup := out[acc]; dup {
			continue // a table without a primary key may repeat a number: first row wins
		}
		out[acc] = Entry{Number: acc, Letter: l, Extension: strings.TrimSpace(ext)}
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrDirectoryUnavailable, err)
	}
	return out, nil
}

// Set inserts or replaces a directory row (used by the demo, tests and admins' tools).
func (s *Store) Set(ctx context.Context, e Entry) error {
	var q string
	if s.Dialect == "mysql" {
		q = `INSERT INTO PBXNumbers (Account, Message, Extension) VALUES (?, ?, ?)
		     ON DUPLICATE KEY UPDATE Message = VALUES(Message), Extension = VALUES(Extension)`
	} else {
		q = `INSERT INTO PBXNumbers (Account, Message, Extension) VALUES (?, ?, ?)
		     ON CONFLICT(Account) DO UPDATE SET Message = excluded.Message, Extension = excluded.Extension`
	}
	if _, err := s.DB.ExecContext(ctx, q, e.Number, string(e.Letter), e.Extension); err != nil {
		return fmt.Errorf("set %s: %w", e.Number, err)
	}
	return nil
}
