package router

// The self-service PIN lockout: a number that texts too many wrong PINs within
// a window is refused self-service for a while, so a PIN cannot be guessed by
// trying them all. The state lives in the database (smsrouter_pin_failure,
// smsrouter_pin_lock), so it holds across restarts and for every drain and
// serve process alike; it is kept apart from smsrouter_number_pref, which the
// delivery path reads for every batch and admins edit by hand.

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"smsrouter/router/selfservice"
)

// Lockout defaults ([selfservice] pin_tries, pin_window, pin_lockout).
const (
	DefaultPINTries   = 5
	DefaultPINWindow  = 15 * time.Minute
	DefaultPINLockout = time.Hour
)

func (s SelfService) pinTries() int {
	if s.PINTries == 0 {
		return DefaultPINTries
	}
	return s.PINTries
}

func (s SelfService) pinWindow() time.Duration {
	if s.PINWindow <= 0 {
		return DefaultPINWindow
	}
	return s.PINWindow
}

func (s SelfService) pinLockout() time.Duration {
	if s.PINLockout <= 0 {
		return DefaultPINLockout
	}
	return s.PINLockout
}

// lockoutReply is the one answer a number gets when it is locked out: the
// request that locked it. Every later request while locked gets none, so the
// lock cannot be used to make the router text someone over and over.
func lockoutReply(until, now time.Time, loc *time.Location) string {
	u := until.In(loc)
	layout := "15:04"
	if n := now.In(loc); u.YearDay() != n.YearDay() || u.Year() != n.Year() {
		layout = "2 Jan 15:04"
	}
	return "Too many wrong PINs; try again after " + u.Format(layout) + "."
}

// pinLock says until when number is locked out of self-service (zero: never)
// and which request locked it.
func (s *Store) pinLock(ctx context.Context, number string) (until time.Time, id string, err error) {
	var ms int64
	err = s.DB.QueryRowContext(ctx, `SELECT until, id FROM smsrouter_pin_lock WHERE Account = ?`, number).Scan(&ms, &id)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return time.Time{}, "", nil
	case err != nil:
		return time.Time{}, "", fmt.Errorf("%w: PIN lockout of %s: %v", ErrDirectoryUnavailable, number, err)
	}
	return time.UnixMilli(ms), id, nil
}

// pinFailed records that request id from number carried a wrong PIN. When
// that makes tries wrong PINs within window, the number is locked out until
// now+lockout (rounded up to the minute the reply names), its failures are
// forgotten, and the lockout is recorded as an admin action, all in one
// transaction. A request retried after a crash counts once (its id is the
// key). Two processes counting at the same instant on MariaDB may each miss
// the other's failure: the lock then comes one guess later, never sooner.
func (s *Store) pinFailed(ctx context.Context, number, id string, now time.Time, tries int, window, lockout time.Duration) (until time.Time, locked bool, err error) {
	wrap := func(err error) error {
		return fmt.Errorf("%w: PIN lockout of %s: %v", ErrDirectoryUnavailable, number, err)
	}
	err = s.inTx(ctx, wrap, func(tx *sql.Tx) error {
		ignore := "INSERT OR IGNORE"
		if s.Dialect == "mysql" {
			ignore = "INSERT IGNORE"
		}
		if _, err := tx.ExecContext(ctx, ignore+` INTO smsrouter_pin_failure (id, Account, at) VALUES (?, ?, ?)`,
			id, number, now.UnixMilli()); err != nil {
			return wrap(err)
		}
		var n int
		if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM smsrouter_pin_failure WHERE Account = ? AND at > ?`,
			number, now.Add(-window).UnixMilli()).Scan(&n); err != nil {
			return wrap(err)
		}
		if n >= tries {
			until = now.Add(lockout)
			if t := until.Truncate(time.Minute); !t.Equal(until) {
				until = t.Add(time.Minute)
			}
			upsert := `INSERT INTO smsrouter_pin_lock (Account, until, id) VALUES (?, ?, ?)
		           ON CONFLICT(Account) DO UPDATE SET until = excluded.until, id = excluded.id`
			if s.Dialect == "mysql" {
				upsert = `INSERT INTO smsrouter_pin_lock (Account, until, id) VALUES (?, ?, ?)
			          ON DUPLICATE KEY UPDATE until = VALUES(until), id = VALUES(id)`
			}
			if _, err := tx.ExecContext(ctx, upsert, number, until.UnixMilli(), id); err != nil {
				return wrap(err)
			}
			if _, err := tx.ExecContext(ctx, `DELETE FROM smsrouter_pin_failure WHERE Account = ?`, number); err != nil {
				return wrap(err)
			}
			detail := fmt.Sprintf("%d wrong PINs within %s; self-service refused until %s (request %s)",
				n, window, until.UTC().Format(time.RFC3339), id)
			if err := adminAction(ctx, tx, now, "selfservice", "pin lockout", number, detail); err != nil {
				return wrap(err)
			}
			locked = true
		}
		return nil
	})
	if err != nil {
		return time.Time{}, false, err
	}
	return until, locked, nil
}

// pinPassed forgets number's wrong PINs once it gives the right one: only
// guesses in a row count.
func (s *Store) pinPassed(ctx context.Context, number string) error {
	if _, err := s.DB.ExecContext(ctx, `DELETE FROM smsrouter_pin_failure WHERE Account = ?`, number); err != nil {
		return fmt.Errorf("%w: PIN of %s: %v", ErrDirectoryUnavailable, number, err)
	}
	return nil
}

// adminAction records a change in smsrouter_admin_action (the console's
// list of who changed what), by user.
func adminAction(ctx context.Context, tx *sql.Tx, at time.Time, user, action, target, detail string) error {
	_, err := tx.ExecContext(ctx, `INSERT INTO smsrouter_admin_action (at, user, action, target, detail) VALUES (?, ?, ?, ?, ?)`,
		at.UnixMilli(), user, action, target, detail)
	return err
}

// SetPIN sets the self-service PIN of a number in PBXNumbers ("" removes it)
// and ends any lockout, recording the change as an admin action by user
// (`smsrouter number pin`, or the number itself by SMS, with the request in
// detail). A PIN that is not 4 to 8 digits is refused with ErrBadEntry, an
// unknown number with ErrUnknownNumber.
func (s *Store) SetPIN(ctx context.Context, number, pin, user, detail string, now time.Time) (err error) {
	if err := CheckNumber("number", number); err != nil {
		return fmt.Errorf("%w: %w", ErrBadEntry, err)
	}
	if pin != "" && !selfservice.ValidPIN(pin) {
		return fmt.Errorf("%w: a PIN is 4 to 8 digits", ErrBadEntry)
	}
	if _, err := NewSQLDirectory(s).Lookup(ctx, number); err != nil {
		return err
	}
	upsert := `INSERT INTO smsrouter_number_pref (Account, Pin) VALUES (?, ?)
	           ON CONFLICT(Account) DO UPDATE SET Pin = excluded.Pin`
	if s.Dialect == "mysql" {
		upsert = `INSERT INTO smsrouter_number_pref (Account, Pin) VALUES (?, ?)
		          ON DUPLICATE KEY UPDATE Pin = VALUES(Pin)`
	}
	action := "pin set"
	if pin == "" {
		action = "pin removed"
	}
	return s.pinTx(ctx, number, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, upsert, number, pin); err != nil {
			return err
		}
		return adminAction(ctx, tx, now, user, action, number, detail)
	})
}

// pinChangedBy reports whether request id already set number's PIN: its
// retry after a crash finds the new PIN in place and must not count as a
// wrong guess. Only that request's own id matches, so it tells nobody else
// anything about the PIN.
func (s *Store) pinChangedBy(ctx context.Context, number, id string) (bool, error) {
	var n int
	err := s.DB.QueryRowContext(ctx, `SELECT COUNT(*) FROM smsrouter_admin_action WHERE target = ? AND action IN ('pin set', 'pin removed') AND detail = ?`,
		number, pinRequest(id)).Scan(&n)
	if err != nil {
		return false, fmt.Errorf("%w: PIN of %s: %v", ErrDirectoryUnavailable, number, err)
	}
	return n > 0, nil
}

// pinRequest is the admin action detail of a PIN changed by request id.
func pinRequest(id string) string { return "by SMS, request " + id }

// Unlock ends a number's self-service lockout and forgets its wrong PINs
// (`smsrouter number unlock`), recorded as an admin action by user.
func (s *Store) Unlock(ctx context.Context, number, user string, now time.Time) error {
	if err := CheckNumber("number", number); err != nil {
		return fmt.Errorf("%w: %w", ErrBadEntry, err)
	}
	return s.pinTx(ctx, number, func(tx *sql.Tx) error {
		return adminAction(ctx, tx, now, user, "pin unlock", number, "")
	})
}

// pinTx runs f and clears number's lockout and wrong PINs in one transaction.
func (s *Store) pinTx(ctx context.Context, number string, f func(*sql.Tx) error) (err error) {
	wrap := func(err error) error { return fmt.Errorf("%w: PIN of %s: %v", ErrDirectoryUnavailable, number, err) }
	return s.inTx(ctx, wrap, func(tx *sql.Tx) error {
		if err := f(tx); err != nil {
			return wrap(err)
		}
		for _, q := range []string{`DELETE FROM smsrouter_pin_lock WHERE Account = ?`, `DELETE FROM smsrouter_pin_failure WHERE Account = ?`} {
			if _, err := tx.ExecContext(ctx, q, number); err != nil {
				return wrap(err)
			}
		}
		return nil
	})
}
