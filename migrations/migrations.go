// Package migrations holds smsrouter's SQL schema, one folder per dialect, and applies
// it on request (`smsrouter migrate`), never implicitly.
//
// Files are named NNNN_name.sql and applied in order; the versions applied are kept
// in smsrouter_schema so that a second run is a no-op. The first file adopts an
// existing PBXNumbers table as the old suite's admins created it, without touching it.
package migrations

import (
	"context"
	"database/sql"
	"embed"
	"fmt"
	"io/fs"
	"sort"
	"strconv"
	"strings"
	"time"
)

//go:embed mysql/*.sql sqlite/*.sql
var files embed.FS

// Migration is one schema step.
type Migration struct {
	Version int
	Name    string
	SQL     string
}

// List returns the migrations of a dialect ("mysql" or "sqlite") in order.
func List(dialect string) ([]Migration, error) {
	if dialect != "mysql" && dialect != "sqlite" {
		return nil, fmt.Errorf("migrations: unknown dialect %q", dialect)
	}
	entries, err := fs.ReadDir(files, dialect)
	if err != nil {
		return nil, fmt.Errorf("migrations: %w", err)
	}
	var out []Migration
	for _, e := range entries {
		name := e.Name()
		num, rest, ok := strings.Cut(name, "_")
		if !ok || !strings.HasSuffix(name, ".sql") {
			return nil, fmt.Errorf("migrations: badly named file %s/%s", dialect, name)
		}
		v, err := strconv.Atoi(num)
		if err != nil {
			return nil, fmt.Errorf("migrations: badly numbered file %s/%s", dialect, name)
		}
		body, err := fs.ReadFile(files, dialect+"/"+name)
		if err != nil {
			return nil, fmt.Errorf("migrations: %w", err)
		}
		out = append(out, Migration{Version: v, Name: strings.TrimSuffix(rest, ".sql"), SQL: string(body)})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Version < out[j].Version })
	return out, nil
}

// Latest is the newest schema version of a dialect.
func Latest(dialect string) int {
	ms, err := List(dialect)
	if err != nil || len(ms) == 0 {
		return 0
	}
	return ms[len(ms)-1].Version
}

const schemaTable = `CREATE TABLE IF NOT EXISTS smsrouter_schema (
  version INTEGER NOT NULL PRIMARY KEY,
  name    VARCHAR(200) NOT NULL,
  applied BIGINT NOT NULL
)`

// Current reports the newest version recorded as applied, 0 when none is.
func Current(ctx context.Context, db *sql.DB) (int, error) {
	var v sql.NullInt64
	err := db.QueryRowContext(ctx, `SELECT MAX(version) FROM smsrouter_schema`).Scan(&v)
	if err != nil {
		return 0, fmt.Errorf("read schema version: %w", err)
	}
	return int(v.Int64), nil
}

// Apply brings the schema up to date and returns the names of the steps it applied.
func Apply(ctx context.Context, db *sql.DB, dialect string) ([]string, error) {
	ms, err := List(dialect)
	if err != nil {
		return nil, err
	}
	if _, err := db.ExecContext(ctx, schemaTable); err != nil {
		return nil, fmt.Errorf("create smsrouter_schema: %w", err)
	}
	done := map[int]bool{}
	rows, err := db.QueryContext(ctx, `SELECT version FROM smsrouter_schema`)
	if err != nil {
		return nil, fmt.Errorf("read smsrouter_schema: %w", err)
	}
	for rows.Next() {
		var v int
		if err := rows.Scan(&v); err != nil {
			rows.Close()
			return nil, fmt.Errorf("read smsrouter_schema: %w", err)
		}
		done[v] = true
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read smsrouter_schema: %w", err)
	}
	var applied []string
	for _, m := range ms {
		if done[m.Version] {
			continue
		}
		if err := apply(ctx, db, dialect, m); err != nil {
			return applied, err
		}
		applied = append(applied, fmt.Sprintf("%04d_%s", m.Version, m.Name))
	}
	return applied, nil
}

// apply runs one migration and records it. SQLite runs DDL in a transaction, so a
// step is all or nothing there (its ALTER TABLE ADD COLUMN cannot be repeated).
// MySQL cannot roll DDL back, so every statement is written to be repeatable (IF NOT
// EXISTS) and the version is recorded only after all of them ran.
func apply(ctx context.Context, db *sql.DB, dialect string, m Migration) error {
	type execer interface {
		ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	}
	var ex execer = db
	var tx *sql.Tx
	if dialect == "sqlite" {
		var err error
		if tx, err = db.BeginTx(ctx, nil); err != nil {
			return fmt.Errorf("migration %04d_%s: %w", m.Version, m.Name, err)
		}
		defer tx.Rollback() //nolint:errcheck // a no-op after Commit
		ex = tx
	}
	for _, stmt := range statements(m.SQL) {
		if _, err := ex.ExecContext(ctx, stmt); err != nil {
			return fmt.Errorf("migration %04d_%s: %w", m.Version, m.Name, err)
		}
	}
	if _, err := ex.ExecContext(ctx, `INSERT INTO smsrouter_schema (version, name, applied) VALUES (?, ?, ?)`,
		m.Version, m.Name, time.Now().UnixMilli()); err != nil {
		return fmt.Errorf("record migration %04d_%s: %w", m.Version, m.Name, err)
	}
	if tx != nil {
		if err := tx.Commit(); err != nil {
			return fmt.Errorf("migration %04d_%s: %w", m.Version, m.Name, err)
		}
	}
	return nil
}

// statements splits a file at semicolons that end a line; comment lines are dropped.
// Our DDL has no semicolons inside string literals, which keeps this split honest.
func statements(src string) []string {
	var out []string
	var cur strings.Builder
	for _, line := range strings.Split(src, "\n") {
		trimmed := strings.TrimSpace(line)
		if trimmed == "" || strings.HasPrefix(trimmed, "--") {
			continue
		}
		cur.WriteString(line)
		cur.WriteByte('\n')
		if strings.HasSuffix(trimmed, ";") {
			s := strings.TrimSuffix(strings.TrimSpace(cur.String()), ";")
			out = append(out, s)
			cur.Reset()
		}
	}
	if s := strings.TrimSpace(cur.String()); s != "" {
		out = append(out, s)
	}
	return out
}
