// Package testdb gives tests a database of their own: a fresh MariaDB database that
// is dropped afterwards, or a fresh SQLite file. Tests that need MariaDB fail (never
// skip) when it is unreachable, because CI always provides one.
package testdb

import (
	"crypto/rand"
	"database/sql"
	"encoding/hex"

	"os"
	"path/filepath"
	"testing"

	"github.com/go-sql-driver/mysql"
)

// ServerDSN is the go-sql-driver DSN of the MariaDB server used by tests, without a
// database name. SMSROUTER_TEST_MYSQL overrides the default root@127.0.0.1:3306.
func ServerDSN() string {
	if v := os.Getenv("SMSROUTER_TEST_MYSQL"); v != "" {
		return v
	}
	return "root@tcp(127.0.0.1:3306)/"
}

// MySQL creates an empty database and returns its smsrouter DSN ("mysql:…"). The
// database is dropped when the test ends.
func MySQL(tb testing.TB) string {
	tb.Helper()
	cfg, err := mysql.ParseDSN(ServerDSN())
	if err != nil {
		tb.Fatalf("testdb: bad SMSROUTER_TEST_MYSQL: %v", err)
	}
	admin, err := sql.Open("mysql", cfg.FormatDSN())
	if err != nil {
		tb.Fatalf("testdb: %v", err)
	}
	defer admin.Close()
	if err := admin.Ping(); err != nil {
		tb.Fatalf("testdb: MariaDB at %s is not reachable (start it: start-stop-daemon --start --oknodo --background --exec /usr/sbin/mariadbd): %v", cfg.Addr, err)
	}
	var b [6]byte
	_, _ = rand.Read(b[:])
	name := "smsrouter_test_" + hex.EncodeToString(b[:])
	if _, err := admin.Exec("CREATE DATABASE " + name + " CHARACTER SET utf8mb4"); err != nil {
		tb.Fatalf("testdb: create database: %v", err)
	}
	tb.Cleanup(func() {
		db, err := sql.Open("mysql", cfg.FormatDSN())
		if err != nil {
			return
		}
		defer db.Close()
		_, _ = db.Exec("DROP DATABASE IF EXISTS " + name)
	})
	cfg.DBName = name
	return "mysql:" + cfg.FormatDSN()
}

// MissingMySQL returns the smsrouter DSN ("mysql:…") of a database that does
// not exist on the test server, for tests of what happens then; it is dropped
// when the test ends, should the test have created it.
func MissingMySQL(tb testing.TB) string {
	tb.Helper()
	cfg, err := mysql.ParseDSN(ServerDSN())
	if err != nil {
		tb.Fatalf("testdb: bad SMSROUTER_TEST_MYSQL: %v", err)
	}
	var b [6]byte
	_, _ = rand.Read(b[:])
	name := "smsrouter_test_missing_" + hex.EncodeToString(b[:])
	tb.Cleanup(func() {
		db, err := sql.Open("mysql", cfg.FormatDSN())
		if err != nil {
			return
		}
		defer db.Close()
		_, _ = db.Exec("DROP DATABASE IF EXISTS " + name)
	})
	cfg.DBName = name
	return "mysql:" + cfg.FormatDSN()
}

// SQLite returns the smsrouter DSN of a new SQLite file in the test's temp dir.
func SQLite(tb testing.TB) string {
	tb.Helper()
	return "sqlite:" + filepath.Join(tb.TempDir(), "smsrouter.db")
}

// Each runs f once for every dialect with a fresh database.
func Each(t *testing.T, f func(t *testing.T, dsn string)) {
	t.Helper()
	t.Run("sqlite", func(t *testing.T) { f(t, SQLite(t)) })
	t.Run("mariadb", func(t *testing.T) { f(t, MySQL(t)) })
}
