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

	// stmts are the directory lookups' statements, prepared once per shape
	// and kept (see query).
	mu    sync.Mutex
	stmts map[string]*sql.Stmt

	checkpointer walCheckpointer // SQLite only
}

// maxStmts bounds the prepared statements a Store keeps; the lookups use a
// handful of shapes, so this only guards against a caller with unbounded ones.
const maxStmts = 64

// ErrBadDSN is returned for a DSN that names no known database.
var ErrBadDSN = errors.New("bad database DSN")

// OpenStore opens "sqlite:PATH" or "mysql:USER:PASS@tcp(HOST:PORT)/DB", creating
// a missing SQLite file and its folder (OpenCreate). It does not touch the
// network; the first query does.
func OpenStore(dsn string) (*Store, error) {
	return OpenStoreMode(dsn, OpenCreate)
}

// OpenMode says what opening a store may do to the files behind it.
type OpenMode int

const (
	// OpenCreate creates a missing SQLite file and its folder: for migrate,
	// which makes the database.
	OpenCreate OpenMode = iota
	// OpenExisting opens a database that must exist already and creates no
	// file or folder, so that a command run as root by mistake never leaves a
	// root-owned database behind that the service cannot open.
	OpenExisting
	// OpenReadOnly is OpenExisting for commands that only look: the
	// connection refuses every write (SQLite's query_only).
	OpenReadOnly
)

// ErrNoDatabase says the database does not exist: the SQLite file is missing,
// or the MySQL server has no database of that name. `smsrouter migrate`
// creates it; retrying does not help.
var ErrNoDatabase = errors.New("database does not exist")

// OpenStoreMode is OpenStore with a say in what may be created. With
// OpenExisting and OpenReadOnly a missing SQLite file is ErrNoDatabase at once;
// a missing MySQL database shows at the first query (see NoDatabase).
func OpenStoreMode(dsn string, mode OpenMode) (*Store, error) {
	kind, rest, ok := strings.Cut(dsn, ":")
	if !ok || rest == "" {
		return nil, fmt.Errorf("%w %q: want sqlite:PATH or mysql:USER:PASS@tcp(HOST:PORT)/DB", ErrBadDSN, redact(dsn))
	}
	switch kind {
	case "sqlite":
		return openSQLite(rest, mode)
	case "mysql":
		return openMySQL(rest)
	default:
		return nil, fmt.Errorf("%w %q: unknown kind %q", ErrBadDSN, redact(dsn), kind)
	}
}

// CheckDSN says whether dsn is one OpenStoreMode could open, from its text
// alone: it opens, creates and dials nothing.
func CheckDSN(dsn string) error {
	kind, rest, ok := strings.Cut(dsn, ":")
	if !ok || rest == "" {
		return fmt.Errorf("%w %q: want sqlite:PATH or mysql:USER:PASS@tcp(HOST:PORT)/DB", ErrBadDSN, redact(dsn))
	}
	switch kind {
	case "sqlite":
		return nil
	case "mysql":
		if _, err := mysql.ParseDSN(rest); err != nil {
			return fmt.Errorf("%w %q: %v", ErrBadDSN, redact(dsn), err)
		}
		return nil
	}
	return fmt.Errorf("%w %q: unknown kind %q", ErrBadDSN, redact(dsn), kind)
}

// NoDatabase reports whether err means the database itself is missing: a
// missing SQLite file, or MySQL's error 1049 (unknown database).
func NoDatabase(err error) bool {
	var me *mysql.MySQLError
	return errors.Is(err, ErrNoDatabase) || errors.As(err, &me) && me.Number == 1049
}

func openSQLite(path string, mode OpenMode) (*Store, error) {
	q := url.Values{}
	if mode == OpenCreate {
		if dir := filepath.Dir(path); dir != "" {
			if err := os.MkdirAll(dir, 0o750); err != nil {
				return nil, fmt.Errorf("sqlite directory: %w", err)
			}
		}
	} else {
		// Checked here for a clear message; mode=rw then makes SQLite itself
		// refuse to create the file should it vanish in between.
		if _, err := os.Stat(path); errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("sqlite:%s: %w", path, ErrNoDatabase)
		}
		q.Set("mode", "rw")
	}
	// WAL lets concurrent drain processes read while one writes; busy_timeout makes
	// writers queue instead of failing with SQLITE_BUSY. WAL is a property of the
	// file, set once when it is created (every database goes through migrate,
	// which opens with OpenCreate): setting it again on every open is a statement
	// each start of a one-shot drain would pay for. mode=ro is not used for
	// OpenReadOnly: on a WAL database it leaves -wal and -shm files behind, where
	// a read-write connection removes them when it closes; query_only refuses
	// the writes instead.
	q.Add("_pragma", "busy_timeout(10000)")
	switch mode {
	case OpenCreate:
		q.Add("_pragma", "journal_mode(WAL)")
	case OpenReadOnly:
		q.Add("_pragma", "query_only(1)")
	}
	q.Add("_pragma", "synchronous(NORMAL)")
	q.Add("_pragma", "foreign_keys(ON)")
	// A journal write is several statements in one transaction, so SQLite
	// keeps a statement journal for each that may fail halfway; in a file
	// (the default) it cost a sixth of the write in pwrite calls. It only
	// ever holds the pages one statement changed.
	q.Add("_pragma", "temp_store(MEMORY)")
	// A batch's journal write touches a page of every index for each of its
	// messages wherever the key is random (fingerprints, senders). At 100,000
	// rows that is more pages than SQLite's default 2 MB cache holds, and a
	// drain read 25 KB per message back (1.3 KB at 2,000 rows). With 16 MB it
	// read 6.5 KB, and 32 MB did no better. The memory is taken only as pages
	// are read.
	q.Add("_pragma", "cache_size(-16384)")
	// The journal checkpoints on its own, between batches (walCheckpointer).
	// SQLite's checkpoint inside a commit stays as the net for the other
	// writers, at twice the journal's threshold so that it rarely fires on a
	// batch.
	q.Add("_pragma", "wal_autocheckpoint(8000)")
	// The path goes into a file: URI, where '?', '#' and '%' would end or bend it.
	escaped := strings.NewReplacer("%", "%25", "?", "%3F", "#", "%23").Replace(path)
	db, err := sql.Open("sqlite", "file:"+escaped+"?"+q.Encode())
	if err != nil {
		return nil, fmt.Errorf("open sqlite %s: %w", path, err)
	}
	db.SetMaxOpenConns(4)
	// SQLite compiles every query text it is given, which cost half of a
	// directory lookup: the hot lookups keep their compiled statements.
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
	// trips where one query does (the directory's lookups keep statements of
	// their own instead: Store.query). The driver escapes the arguments itself (and
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
	return &Store{DB: db, Dialect: "mysql", dsn: "mysql:" + rest}, nil
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

// query runs one of the directory's lookups in one round trip, on a statement
// prepared once per shape and kept, whatever the DSN says about interpolation:
// SQLite then does not compile the query again, nor MariaDB parse it (an
// 8-number lookup cost mariadbd 61 µs of CPU instead of 92 µs interpolated,
// and its round trip 109 µs instead of 151-162 µs; issue 17).
func (s *Store) query(ctx context.Context, q string, args ...any) (*sql.Rows, error) {
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
	s.checkpointer.wait()
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

// RedactDSN is dsn with its password hidden, for logs and errors.
func RedactDSN(dsn string) string { return redact(dsn) }

// CreateDatabase creates the MySQL/MariaDB database a "mysql:" DSN names when
// the server has none of that name, with utf8mb4 as its character set (texts
// carry emoji), and returns its name; "" when it existed already. The DSN's
// user needs the CREATE privilege. A "sqlite:" DSN needs nothing here:
// OpenStore creates the file.
func CreateDatabase(ctx context.Context, dsn string) (string, error) {
	kind, rest, _ := strings.Cut(dsn, ":")
	if kind != "mysql" {
		return "", nil
	}
	cfg, err := mysql.ParseDSN(rest)
	if err != nil {
		return "", fmt.Errorf("%w: %v", ErrBadDSN, err)
	}
	name := cfg.DBName
	if name == "" {
		return "", fmt.Errorf("%w %q: it names no database (…/DBNAME at the end)", ErrBadDSN, redact(dsn))
	}
	cfg.DBName = ""
	if cfg.Timeout == 0 {
		cfg.Timeout = 3 * time.Second
	}
	connector, err := mysql.NewConnector(cfg)
	if err != nil {
		return "", fmt.Errorf("%w: %v", ErrBadDSN, err)
	}
	db := sql.OpenDB(connector)
	defer db.Close()
	var n int
	if err := db.QueryRowContext(ctx, "SELECT COUNT(*) FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = ?", name).Scan(&n); err != nil {
		return "", fmt.Errorf("create database %s: %w", name, err)
	}
	if n > 0 {
		return "", nil
	}
	quoted := "`" + strings.ReplaceAll(name, "`", "``") + "`"
	if _, err := db.ExecContext(ctx, "CREATE DATABASE IF NOT EXISTS "+quoted+" CHARACTER SET utf8mb4"); err != nil {
		return "", fmt.Errorf("create database %s: %w", name, err)
	}
	return name, nil
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

// inTx runs f in one transaction: committed when f returns nil, rolled back
// otherwise. f's error is returned as it is; wrap words a failed BEGIN or
// COMMIT, which f cannot.
func (s *Store) inTx(ctx context.Context, wrap func(error) error, f func(*sql.Tx) error) error {
	tx, err := s.DB.BeginTx(ctx, nil)
	if err != nil {
		return wrap(err)
	}
	if err := f(tx); err != nil {
		_ = tx.Rollback()
		return err
	}
	if err := tx.Commit(); err != nil {
		return wrap(err)
	}
	return nil
}
