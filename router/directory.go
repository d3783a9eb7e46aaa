package router

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math/bits"
	"strings"

	"smsrouter/channels"
)

// Entry is one row of PBXNumbers: a number, its service letter and where it lives.
type Entry struct {
	Number    string
	Letter    byte   // S F V C T N, upper-cased
	Extension string // e.g. PJSIP/1000
	// Problem, when not empty, says why the row cannot be used, for the admin:
	// "PBXNumbers row Account='5551001': Message is NULL". Letter and Extension
	// are then meaningless. The router bounces messages to such a number with
	// the "unreachable" notice; other numbers are not affected.
	Problem string
	// Further are the ways tried, in order, after Letter and Extension fail
	// (smsrouter_number_way); none for most numbers. See NumberWay.
	Further []NumberWay
	// pref is the number's own row in smsrouter_number_pref (quiet hours, PIN),
	// read in the lookup's query; the zero pref when it has none.
	pref pref
}

// Letters are the service letters a PBXNumbers row may hold.
const Letters = "SFVCTN"

// ErrBadEntry is wrapped by the errors of ParseEntry and SetNumber: the values
// could never work, so storing them is refused.
var ErrBadEntry = errors.New("bad directory entry")

// ParseEntry reads a directory row's Message and Extension the way the router
// uses them, and says what is wrong when they cannot work. It is the one check
// behind both the lookup and SetNumber: the letter is read without regard to
// blanks or case ("s" is S), must be one of Letters, and the Extension must be
// what that letter's channel needs (channels.CheckDestination).
func ParseEntry(number, message, extension string) (Entry, error) {
	e := Entry{Number: number}
	l := strings.TrimSpace(message)
	switch {
	case l == "":
		return e, fmt.Errorf("%w: Message is empty; it must hold a service letter (one of S F V C T N)", ErrBadEntry)
	case len(l) != 1 || !strings.Contains(Letters, strings.ToUpper(l)):
		// strings.ToUpper only after the length check: it maps "ſ" to "S".
		return e, fmt.Errorf("%w: Message %s is not a service letter (want one of S F V C T N)", ErrBadEntry, channels.QuoteShort(message))
	}
	e.Letter = strings.ToUpper(l)[0]
	// Admins edit this table by hand: tolerate stray blanks around the value.
	e.Extension = strings.TrimSpace(extension)
	if err := channels.CheckDestination(e.Letter, e.Extension); err != nil {
		return e, fmt.Errorf("%w: %w", ErrBadEntry, err)
	}
	return e, nil
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
type SQLDirectory struct {
	store   *Store
	letters bool // PBXNumbers alone; see NewSQLLetterDirectory
}

// NewSQLDirectory reads the directory from store.
func NewSQLDirectory(store *Store) *SQLDirectory { return &SQLDirectory{store: store} }

// NewSQLLetterDirectory reads the directory from store without the further ways
// and the preferences: its entries hold the letter, the Extension and Problem,
// which is all the dialplan's chaninfo answers. Its query reads PBXNumbers
// alone; the two joins of the router's lookup were half of MariaDB's work per
// number (issue 17).
func NewSQLLetterDirectory(store *Store) *SQLDirectory {
	return &SQLDirectory{store: store, letters: true}
}

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
	// Prepared statements are kept per shape (Store.query): pad the list to a
	// power of two (repeating a number changes nothing) so a few shapes serve
	// every batch.
	for n := 1 << bits.Len(uint(len(uniq)-1)); len(uniq) < n; {
		uniq = append(uniq, uniq[0])
	}
	if d.letters {
		return d.lookupLetters(ctx, uniq, out)
	}
	// The further ways and the number's preferences come in the same round
	// trip: one row per way (or one with NULLs for a number that has none),
	// each carrying the preference row's columns (NULLs when there is none).
	q := "SELECT p.Account, p.Message, p.Extension, w.Position, w.Letter, w.Extension, " +
		"n.QuietStart, n.QuietEnd, n.TimeZone, n.Pin FROM PBXNumbers p " +
		"LEFT JOIN smsrouter_number_way w ON w.Account = p.Account " +
		"LEFT JOIN smsrouter_number_pref n ON n.Account = p.Account WHERE p.Account IN (?" +
		strings.Repeat(",?", len(uniq)-1) + ")"
	rows, err := d.store.query(ctx, q, uniq...)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrDirectoryUnavailable, err)
	}
	defer rows.Close()
	ways := map[string]map[int64]wayRow{}
	var prefs map[string]pref // most numbers have no row
	for rows.Next() {
		// NullString takes whatever an adopted table holds (NULL, a number, a
		// BLOB, a date), so one odd row is that row's problem, not a failed
		// query that would defer the whole batch.
		var acc, msg, ext, wLetter, wExt, qs, qe, tz, pin sql.NullString
		var wPos sql.NullInt64
		if err := rows.Scan(&acc, &msg, &ext, &wPos, &wLetter, &wExt, &qs, &qe, &tz, &pin); err != nil {
			return nil, fmt.Errorf("%w: %v", ErrDirectoryUnavailable, err)
		}
		e := readRow(strings.TrimSpace(acc.String), msg, ext)
		if wPos.Valid {
			if ways[e.Number] == nil {
				ways[e.Number] = map[int64]wayRow{}
			}
			ways[e.Number][wPos.Int64] = wayRow{wPos.Int64, wLetter.String, wExt.String}
		}
		if qs.Valid || qe.Valid || tz.Valid || pin.Valid {
			if _, done := prefs[e.Number]; !done { // once per number, not per way
				if prefs == nil {
					prefs = map[string]pref{}
				}
				prefs[e.Number] = parsePref(qs.String, qe.String, tz.String, pin.String)
			}
		}
		keepFirstUsable(out, e)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrDirectoryUnavailable, err)
	}
	for n, byPos := range ways {
		if e := out[n]; e.Problem == "" {
			list := make([]wayRow, 0, len(byPos))
			for _, w := range byPos {
				list = append(list, w)
			}
			addWays(&e, list)
			out[n] = e
		}
	}
	for n, p := range prefs {
		e := out[n]
		e.pref = p
		out[n] = e
	}
	return out, nil
}

// lookupLetters is LookupMany's query for NewSQLLetterDirectory: the same
// rows of PBXNumbers read the same way, without the joined tables.
func (d *SQLDirectory) lookupLetters(ctx context.Context, uniq []any, out map[string]Entry) (map[string]Entry, error) {
	q := "SELECT Account, Message, Extension FROM PBXNumbers WHERE Account IN (?" +
		strings.Repeat(",?", len(uniq)-1) + ")"
	rows, err := d.store.query(ctx, q, uniq...)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrDirectoryUnavailable, err)
	}
	defer rows.Close()
	var acc, msg, ext sql.NullString
	for rows.Next() {
		if err := rows.Scan(&acc, &msg, &ext); err != nil {
			return nil, fmt.Errorf("%w: %v", ErrDirectoryUnavailable, err)
		}
		keepFirstUsable(out, readRow(strings.TrimSpace(acc.String), msg, ext))
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrDirectoryUnavailable, err)
	}
	return out, nil
}

// keepFirstUsable adds e to out. A table without a primary key may repeat a
// number: the first usable row wins, so a broken duplicate cannot hide a good
// one.
func keepFirstUsable(out map[string]Entry, e Entry) {
	if prev, dup := out[e.Number]; dup && (prev.Problem == "" || e.Problem != "") {
		return
	}
	out[e.Number] = e
}

// ReadRow reads a PBXNumbers row exactly as the lookup does: the Entry it
// gives, with Problem saying what makes it unusable. `smsrouter doctor` lists
// the rows it would bounce with it.
func ReadRow(account string, message, extension sql.NullString) Entry {
	return readRow(strings.TrimSpace(account), message, extension)
}

// readRow turns one scanned row into an Entry, a bad one naming the row and what
// is wrong with it.
func readRow(acc string, msg, ext sql.NullString) Entry {
	bad := func(what string) Entry {
		return Entry{Number: acc, Problem: fmt.Sprintf("PBXNumbers row Account=%s: %s", sqlQuote(acc), what)}
	}
	if !msg.Valid {
		return bad("Message is NULL; it must hold a service letter (one of S F V C T N)")
	}
	e, err := ParseEntry(acc, msg.String, ext.String)
	if err != nil {
		if !ext.Valid && e.Letter != 0 {
			return bad(fmt.Sprintf("Extension is NULL, but letter %c needs one (e.g. PJSIP/1001)", e.Letter))
		}
		return bad(strings.TrimPrefix(err.Error(), ErrBadEntry.Error()+": "))
	}
	return e
}

// sqlQuote shows a value as SQL would write it, so an admin can paste it into a
// WHERE clause; anything beyond plain characters is shown Go-quoted instead.
func sqlQuote(s string) string {
	for _, c := range s {
		if c < 0x20 || c == 0x7f || c == '\'' || c == '\\' || c > 0x7e {
			return channels.QuoteShort(s)
		}
	}
	if len(s) > 40 {
		return channels.QuoteShort(s)
	}
	return "'" + s + "'"
}

// SetNumber is `smsrouter number set`: it checks number, letter and Extension
// with the lookup's own rules (ParseEntry, CheckNumber) and refuses what could
// never work with an error wrapping ErrBadEntry; then it writes the row like Set.
// It returns how many existing rows it updated: 0 when it inserted one, more
// than 1 when an adopted table without a key holds the number several times.
func (s *Store) SetNumber(ctx context.Context, number, letter, extension string) (updated int, err error) {
	if err := CheckNumber("number", number); err != nil {
		return 0, fmt.Errorf("%w: %w", ErrBadEntry, err)
	}
	e, err := ParseEntry(number, letter, extension)
	if err != nil {
		return 0, fmt.Errorf("number %s: %w", number, err)
	}
	return s.put(ctx, e)
}

// Set writes a directory row without checking it (the demo and tests use it to
// store rows as an admin's SQL might): see SetNumber.
func (s *Store) Set(ctx context.Context, e Entry) error {
	_, err := s.put(ctx, e)
	return err
}

// put updates every row of the number, or inserts one when there is none, in one
// transaction. This works on an adopted PBXNumbers without a primary key, where
// INSERT … ON CONFLICT fails (SQLite needs a unique index for it) and INSERT …
// ON DUPLICATE KEY adds a second row that lookups never see. Rows are counted
// after the UPDATE rather than taken from RowsAffected, which MySQL reports as
// rows changed, not found: setting a row to what it already holds would insert
// a duplicate. The UPDATE takes the write lock first (SQLite's writer lock,
// InnoDB's row and gap locks), so two concurrent calls cannot both insert.
func (s *Store) put(ctx context.Context, e Entry) (updated int, err error) {
	err = s.inTx(ctx, func(err error) error { return fmt.Errorf("set %s: %w", e.Number, err) }, func(tx *sql.Tx) (err error) {
		updated, err = putTx(ctx, tx, e)
		return err
	})
	if err != nil {
		return 0, err
	}
	return updated, nil
}

// putTx is put's work inside the caller's transaction.
func putTx(ctx context.Context, tx *sql.Tx, e Entry) (updated int, err error) {
	if _, err = tx.ExecContext(ctx, `UPDATE PBXNumbers SET Message = ?, Extension = ? WHERE Account = ?`,
		string(e.Letter), e.Extension, e.Number); err != nil {
		return 0, fmt.Errorf("set %s: %w", e.Number, err)
	}
	if err = tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM PBXNumbers WHERE Account = ?`, e.Number).Scan(&updated); err != nil {
		return 0, fmt.Errorf("set %s: %w", e.Number, err)
	}
	if updated == 0 {
		if _, err = tx.ExecContext(ctx, `INSERT INTO PBXNumbers (Account, Message, Extension) VALUES (?, ?, ?)`,
			e.Number, string(e.Letter), e.Extension); err != nil {
			return 0, fmt.Errorf("set %s: %w", e.Number, err)
		}
	}
	return updated, nil
}
