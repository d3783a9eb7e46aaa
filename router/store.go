package router

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/go-sql-driver/mysql"
	_ "modernc.org/sqlite" // the embedded default directory

	"smsrouter/migrations"
)

// Store is the database that holds the directory (PBXNumbers) and the journal:
// MySQL/MariaDB in production, an embedded SQLite file by default.
type Store struct {
	DB      *sql.DB
	Dialect string // "mysql" or "sqlite"
	dsn     string
}

// ErrBadDSN is returned for a DSN that names no known database.
var ErrBadDSN = errors.New("bad database DSN")

// OpenStore opens "sqlite:PATH" or "mysql:USER:PASS@tcp(HOST:PORT)/DB". It does not
// touch the network; the first query does.
func OpenStore(dsn string) (*Store, error) {
	kind, rest, ok := strings.Cut(dsn, ":")
	if !ok || rest == "" {
		return nil, fmt.Errorf("%w %q: want sqlite:PATH or mysql:USER:PASS@tcp(HOST:PORT)/DB", ErrBadDSN, redact(dsn))
	}
	switch kind {
	case "sqlite":
		return openSQLite(rest)
	case "mysql":
		return openMySQL(rest)
	default:
		return nil, fmt.Errorf("%w %q: unknown kind %q", ErrBadDSN, redact(dsn), kind)
	}
}

func openSQLite(path string) (*Store, error) {
	if dir := filepath.Dir(path); dir != "" {
		if err := os.MkdirAll(dir, 0o750); err != nil {
			return nil, fmt.Errorf("sqlite directory: %w", err)
		}
	}
	// WAL lets concurrent drain processes read while one writes; busy_timeout makes
	// writers queue instead of failing with SQLITE_BUSY.
	q := url.Values{}
	q.Add("_pragma", "busy_timeout(10000)")
	q.Add("_pragma", "journal_mode(WAL)")
	q.Add("_pragma", "synchronous(NORMAL)")
	q.Add("_pragma", "foreign_keys(ON)")
	// The path goes into a file: URI, where '?', '#' and '%' would end or bend it.
	escaped := strings.NewReplacer("%", "%25", "?", "%3F", "#", "%23").Replace(path)
	db, err := sql.Open("sqlite", "file:"+escaped+"?"+q.Encode())
	if err != nil {
		return nil, fmt.Errorf("open sqlite %s: %w", path, err)
	}
	db.SetMaxOpenConns(4)
	return &Store{DB: db, Dialect: "sqlite", dsn: "sqlite:" + path}, nil
}

func openMySQL(rest string) (*Store, error) {
	cfg, err := mysql.ParseDSN(rest)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadDSN, err)
	}
	// Short timeouts: a dead database must turn into a quick temporary failure (the
	// message stays queued), not a stuck router.
	if cfg.Timeout == 0 {
		cfg.Timeout = 3 * time.Second
	}
	if cfg.ReadTimeout == 0 {
		cfg.ReadTimeout = 10 * time.Second
	}
	if cfg.WriteTimeout == 0 {
		cfg.WriteTimeout = 10 * time.Second
	}
	if !strings.Contains(rest, "charset=") {
		// Texts are UTF-8 with emoji: the server's default (often latin1 or utf8mb3)
		// would mangle them.
		if err := cfg.Apply(mysql.Charset("utf8mb4", "")); err != nil {
			return nil, fmt.Errorf("%w: %v", ErrBadDSN, err)
		}
	}
	connector, err := mysql.NewConnector(cfg)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadDSN, err)
	}
	db := sql.OpenDB(connector)
	db.SetMaxOpenConns(16)
	db.SetMaxIdleConns(16)
	db.SetConnMaxLifetime(5 * time.Minute)
	db.SetConnMaxIdleTime(time.Minute)
	return &Store{DB: db, Dialect: "mysql", dsn: "mysql:" + rest}, nil
}

// String names the store without its password.
func (s *Store) String() string { return redact(s.dsn) }

// Close releases the pool.
func (s *Store) Close() error { return s.DB.Close() }

// Migrate applies the schema (`smsrouter migrate`).
func (s *Store) Migrate(ctx context.Context) ([]string, error) {
	return migrations.Apply(ctx, s.DB, s.Dialect)
}

// SchemaVersion reports the applied schema version.
func (s *Store) SchemaVersion(ctx context.Context) (int, error) {
	return migrations.Current(ctx, s.DB)
}

// redact hides a password in a DSN for logs and errors.
func redact(dsn string) string {
	kind, rest, ok := strings.Cut(dsn, ":")
	if !ok || kind != "mysql" {
		return dsn
	}
	at := strings.LastIndex(rest, "@")
	if at < 0 {
		return dsn
	}
	user, _, hasPass := strings.Cut(rest[:at], ":")
	if !hasPass {
		return dsn
	}
	return kind + ":" + user + ":***" + rest[at:]
}
