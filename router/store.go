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
	"sync"
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

	// prepare is set when a query with arguments would otherwise be prepared,
	// executed and closed every time (MySQL with interpolateParams=false in the
	// DSN; SQLite always): the hot lookups then keep their prepared statements.
	prepare bool
	mu      sync.Mutex
	stmts   map[string]*sql.Stmt
}

// maxStmts bounds the prepared statements a Store keeps; the lookups use a
// handful of shapes, so this only guards against a caller with unbounded ones.
const maxStmts = 64

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
	// SQLite compiles every query text it is given, which cost half of a
	// directory lookup: the hot lookups keep their compiled statements.
	return &Store{DB: db, Dialect: "sqlite", dsn: "sqlite:" + path, prepare: true}, nil
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
	_, charset := dsnParam(rest, "charset")
	_, collation := dsnParam(rest, "collation")
	if !charset && !collation {
		// Texts are UTF-8 with emoji: the server's default (often latin1 or utf8mb3)
		// would mangle them. (A collation in the DSN names its charset.)
		if err := cfg.Apply(mysql.Charset("utf8mb4", "")); err != nil {
			return nil, fmt.Errorf("%w: %v", ErrBadDSN, err)
		}
	}
	// Without interpolateParams the driver prepares, executes and closes a
	// statement for every query with arguments: three packets and two round
	// trips where one query does. The driver escapes the arguments itself (and
	// refuses collations where that is unsafe, in which case we do without).
	_, explicit := dsnParam(rest, "interpolateParams")
	if !explicit {
		cfg.InterpolateParams = true
	}
	connector, err := mysql.NewConnector(cfg)
	if err != nil && !explicit {
		cfg.InterpolateParams = false
		connector, err = mysql.NewConnector(cfg)
	}
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadDSN, err)
	}
	db := sql.OpenDB(connector)
	db.SetMaxOpenConns(defaultMySQLPool)
	db.SetMaxIdleConns(defaultMySQLPool)
	db.SetConnMaxLifetime(5 * time.Minute)
	db.SetConnMaxIdleTime(time.Minute)
	return &Store{DB: db, Dialect: "mysql", dsn: "mysql:" + rest, prepare: !cfg.InterpolateParams}, nil
}

// defaultMySQLPool is the pool until SetPool sizes it for the configuration.
const defaultMySQLPool = 16

// dsnParam finds a parameter in a go-sql-driver DSN: in the query after the
// database name, which follows the last '/' (a password may hold '?' or '&').
func dsnParam(dsn, key string) (string, bool) {
	_, query, ok := strings.Cut(dsn[strings.LastIndexByte(dsn, '/')+1:], "?")
	if !ok {
		return "", false
	}
	for kv := range strings.SplitSeq(query, "&") {
		if k, v, _ := strings.Cut(kv, "="); k == key {
			return v, true
		}
	}
	return "", false
}

// SetPool sizes the MySQL connection pool for n queries at once: the FastAGI
// connections the config allows plus the batch's parallel deliveries and a few
// for the journal and the HTTP API. Fewer, and requests queue for a connection
// while the database idles. Idle connections beyond need are closed after a
// minute. SQLite keeps its small pool: its writers take turns anyway.
func (s *Store) SetPool(n int) {
	if s.Dialect != "mysql" || n <= 0 {
		return
	}
	s.DB.SetMaxOpenConns(n)
	s.DB.SetMaxIdleConns(n)
}

// query runs a read with arguments in one round trip: interpolated by the
// driver, or on a statement prepared once and kept.
func (s *Store) query(ctx context.Context, q string, args ...any) (*sql.Rows, error) {
	if !s.prepare {
		return s.DB.QueryContext(ctx, q, args...)
	}
	st, err := s.stmt(ctx, q)
	if err != nil {
		return nil, err
	}
	if st == nil { // the cache is full: prepare, execute, close as before
		return s.DB.QueryContext(ctx, q, args...)
	}
	return st.QueryContext(ctx, args...)
}

func (s *Store) stmt(ctx context.Context, q string) (*sql.Stmt, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if st, ok := s.stmts[q]; ok {
		return st, nil
	}
	if len(s.stmts) >= maxStmts {
		return nil, nil
	}
	st, err := s.DB.PrepareContext(ctx, q)
	if err != nil {
		return nil, err
	}
	if s.stmts == nil {
		s.stmts = map[string]*sql.Stmt{}
	}
	s.stmts[q] = st
	return st, nil
}

// String names the store without its password.
func (s *Store) String() string { return redact(s.dsn) }

// Close releases the pool.
func (s *Store) Close() error {
	s.mu.Lock()
	for _, st := range s.stmts {
		st.Close()
	}
	s.stmts = nil
	s.mu.Unlock()
	return s.DB.Close()
}

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
