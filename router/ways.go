package router

import (
	"context"
	"database/sql"
	"fmt"
	"sort"
	"strings"

	"smsrouter/channels"
)

// NumberWay is one way to reach a number: a service letter and the Extension it uses.
// Way 0 is the PBXNumbers row itself; further ways come from
// smsrouter_number_way and are tried, in Position order, when the one before
// fails by its own evidence (an unregistered softphone, a call that was not
// answered, a fax that did not go through).
type NumberWay struct {
	Letter    byte
	Extension string
	// Problem, when not empty, says why this way cannot be used; the router
	// skips it (and says so in the journal) rather than bounce the message.
	Problem string
}

// WayLetters are the letters a further way may hold: the ones that deliver the
// text to the person. C (a command rule) and N (refuse) end a search, they are
// not a way to reach anyone.
const WayLetters = "SFVT"

// Way returns the i-th way to reach the entry's number: 0 is the PBXNumbers
// row, 1… the further ways.
func (e Entry) Way(i int) (NumberWay, bool) {
	if i == 0 {
		return NumberWay{Letter: e.Letter, Extension: e.Extension}, true
	}
	if i < 0 || i > len(e.Further) {
		return NumberWay{}, false
	}
	return e.Further[i-1], true
}

// WaysText writes the ways as the CLI takes them: "T,S,V".
func (e Entry) WaysText() string {
	var b strings.Builder
	for i := 0; ; i++ {
		w, ok := e.Way(i)
		if !ok {
			return b.String()
		}
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteByte(w.Letter)
	}
}

// ParseWay checks a further way the way the lookup uses it: the letter one of
// WayLetters (blanks and case ignored), the Extension ("" = the number's own
// Extension, main) what that letter's channel needs.
func ParseWay(letter, extension, main string) (NumberWay, error) {
	l := strings.ToUpper(strings.TrimSpace(letter))
	if len(l) != 1 || !strings.Contains(WayLetters, l) {
		return NumberWay{}, fmt.Errorf("%w: way %s is not one of %s", ErrBadEntry, channels.QuoteShort(letter), strings.Join(strings.Split(WayLetters, ""), " "))
	}
	w := NumberWay{Letter: l[0], Extension: strings.TrimSpace(extension)}
	ext := w.Extension
	if ext == "" {
		ext = main
	}
	if err := channels.CheckDestination(w.Letter, ext); err != nil {
		return w, fmt.Errorf("%w: way %c: %w", ErrBadEntry, w.Letter, err)
	}
	w.Extension = ext
	return w, nil
}

// wayRow is one smsrouter_number_way row as the lookup scanned it.
type wayRow struct {
	pos       int64
	letter    string
	extension string
}

// MaxFurtherWays bounds the further ways of one number: more are never tried
// (doctor lists them).
const MaxFurtherWays = 9

// addWays turns the scanned further ways of one number into e.Further, in
// Position order; a row that cannot work becomes a NumberWay with a Problem.
func addWays(e *Entry, rows []wayRow) {
	sort.Slice(rows, func(i, j int) bool { return rows[i].pos < rows[j].pos })
	e.Further = e.Further[:0]
	for _, r := range rows[:min(len(rows), MaxFurtherWays)] {
		w, err := ParseWay(r.letter, r.extension, e.Extension)
		if err != nil {
			w.Problem = fmt.Sprintf("smsrouter_number_way row Account=%s Position=%d: %s", sqlQuote(e.Number), r.pos,
				strings.TrimPrefix(err.Error(), ErrBadEntry.Error()+": "))
		}
		e.Further = append(e.Further, w)
	}
}

// Ways returns the further ways stored for number (not the PBXNumbers row).
func (s *Store) Ways(ctx context.Context, number string) ([]NumberWay, error) {
	e, err := NewSQLDirectory(s).Lookup(ctx, number)
	if err != nil {
		return nil, err
	}
	return e.Further, nil
}

// SetWays is `smsrouter number ways`: it replaces the further ways of a number
// that is in PBXNumbers, after checking each with ParseWay against the number's
// own Extension; an empty list clears them. It refuses what could never work
// with an error wrapping ErrBadEntry, and an unknown number with
// ErrUnknownNumber.
func (s *Store) SetWays(ctx context.Context, number string, ways []NumberWay) (err error) {
	if err := CheckNumber("number", number); err != nil {
		return fmt.Errorf("%w: %w", ErrBadEntry, err)
	}
	e, err := NewSQLDirectory(s).Lookup(ctx, number)
	if err != nil {
		return err
	}
	if err := checkWays(number, ways, e.Extension); err != nil {
		return err
	}
	return s.inTx(ctx, func(err error) error { return fmt.Errorf("ways %s: %w", number, err) }, func(tx *sql.Tx) error {
		return writeWaysTx(ctx, tx, number, ways)
	})
}

// SetNumberWays is `number ways NUMBER LETTERS` and self-service SET: the
// first way (the PBXNumbers row, as SetNumber writes it) and the further ways
// (as SetWays, checked against the new Extension) in one transaction, so that a
// crash or a failed write never leaves the new first letter with the old
// further ways. Nothing is written when any way is refused (ErrBadEntry).
func (s *Store) SetNumberWays(ctx context.Context, number, letter, extension string, further []NumberWay) (updated int, err error) {
	if err := CheckNumber("number", number); err != nil {
		return 0, fmt.Errorf("%w: %w", ErrBadEntry, err)
	}
	e, err := ParseEntry(number, letter, extension)
	if err != nil {
		return 0, fmt.Errorf("number %s: %w", number, err)
	}
	further = append([]NumberWay(nil), further...)
	if err := checkWays(number, further, e.Extension); err != nil {
		return 0, err
	}
	err = s.inTx(ctx, func(err error) error { return fmt.Errorf("set %s: %w", number, err) }, func(tx *sql.Tx) (err error) {
		if updated, err = putTx(ctx, tx, e); err != nil {
			return err
		}
		return writeWaysTx(ctx, tx, number, further)
	})
	if err != nil {
		return 0, err
	}
	return updated, nil
}

// checkWays checks each further way against the number's Extension main and
// turns an Extension equal to it into "" (stored as "the number's own", so a
// later change of it carries over).
func checkWays(number string, ways []NumberWay, main string) error {
	if len(ways) > MaxFurtherWays {
		return fmt.Errorf("%w: number %s: at most %d further ways", ErrBadEntry, number, MaxFurtherWays)
	}
	for i, w := range ways {
		ext := w.Extension
		if ext == main {
			ext = ""
		}
		if _, err := ParseWay(string(w.Letter), ext, main); err != nil {
			return fmt.Errorf("number %s: %w", number, err)
		}
		ways[i].Extension = ext
	}
	return nil
}

// writeWaysTx replaces the further ways of number inside the caller's transaction.
func writeWaysTx(ctx context.Context, tx *sql.Tx, number string, ways []NumberWay) error {
	if _, err := tx.ExecContext(ctx, `DELETE FROM smsrouter_number_way WHERE Account = ?`, number); err != nil {
		return fmt.Errorf("ways %s: %w", number, err)
	}
	for i, w := range ways {
		if _, err := tx.ExecContext(ctx, `INSERT INTO smsrouter_number_way (Account, Position, Letter, Extension) VALUES (?, ?, ?, ?)`,
			number, i+1, string(w.Letter), w.Extension); err != nil {
			return fmt.Errorf("ways %s: %w", number, err)
		}
	}
	return nil
}

// BadWays lists the further ways that cannot work, for `smsrouter doctor`:
// a letter that is not a way, an Extension its channel cannot dial, a way for
// a number that is not in PBXNumbers.
func (s *Store) BadWays(ctx context.Context) ([]string, error) {
	rows, err := s.DB.QueryContext(ctx, `SELECT w.Account, w.Position, w.Letter, w.Extension, p.Extension
		FROM smsrouter_number_way w LEFT JOIN PBXNumbers p ON p.Account = w.Account ORDER BY w.Account, w.Position`)
	if err != nil {
		return nil, fmt.Errorf("read smsrouter_number_way: %w", err)
	}
	defer rows.Close()
	var out []string
	count := map[string]int{}
	for rows.Next() {
		var acc, letter, ext string
		var pos int64
		var main sql.NullString
		if err := rows.Scan(&acc, &pos, &letter, &ext, &main); err != nil {
			return nil, fmt.Errorf("read smsrouter_number_way: %w", err)
		}
		where := fmt.Sprintf("smsrouter_number_way row Account=%s Position=%d", sqlQuote(acc), pos)
		count[acc]++
		switch {
		case !main.Valid:
			out = append(out, where+": the number is not in PBXNumbers")
			continue
		case count[acc] > MaxFurtherWays:
			out = append(out, fmt.Sprintf("%s: beyond the %d further ways the router tries", where, MaxFurtherWays))
			continue
		}
		if _, err := ParseWay(letter, ext, strings.TrimSpace(main.String)); err != nil {
			out = append(out, where+": "+strings.TrimPrefix(err.Error(), ErrBadEntry.Error()+": "))
		}
	}
	return out, rows.Err()
}
