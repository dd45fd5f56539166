package registry

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/pressly/goose/v3"
	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"
)

//go:embed migrations/*.sql
var migrations embed.FS

// DefaultBusyTimeout is how long a write waits for another connection or
// process to release the database before it fails with ErrStoreUnavailable.
const DefaultBusyTimeout = 5 * time.Second

// SQLiteStore is the embedded Store: one SQLite file in WAL mode, so reads
// never wait for a write. Writes from one process are serialized by a
// mutex; a write that finds the file locked by another process waits up to
// the busy timeout and then fails with ErrStoreUnavailable. It is safe for
// concurrent use.
type SQLiteStore struct {
	db          *sql.DB
	path        string
	busyTimeout time.Duration
	// writeMu serializes writers in this process: SQLite admits one
	// writer at a time anyway, and queueing here costs nothing while
	// queueing in SQLite's busy handler means sleeping and polling.
	writeMu sync.Mutex
}

var _ Store = (*SQLiteStore)(nil)

// Option configures OpenSQLite.
type Option func(*SQLiteStore)

// WithBusyTimeout sets how long an operation waits for a lock held by
// another connection before failing. It defaults to DefaultBusyTimeout.
func WithBusyTimeout(d time.Duration) Option {
	return func(s *SQLiteStore) { s.busyTimeout = d }
}

// OpenSQLite opens the registry database at path, creating the file with
// mode 0600 if it does not exist, and migrates its schema to the latest
// version. A file that is not a SQLite database, is corrupt, or stays
// locked by another process for the busy timeout gives an error that wraps
// ErrStoreUnavailable and names the path.
func OpenSQLite(path string, opts ...Option) (*SQLiteStore, error) {
	if path == "" {
		return nil, invalidf("registry database path is empty")
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, fmt.Errorf("resolving registry database path %q: %w", path, err)
	}
	s := &SQLiteStore{path: abs, busyTimeout: DefaultBusyTimeout}
	for _, o := range opts {
		o(s)
	}
	// SQLite would create the file with the umask's mode; it holds
	// credential hashes and certificates, so create it private first. The
	// -wal and -shm files inherit this mode.
	f, err := os.OpenFile(abs, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, &unavailableError{msg: fmt.Sprintf("cannot open registry database %q for writing", abs), err: err}
	}
	if err := f.Close(); err != nil {
		return nil, &unavailableError{msg: fmt.Sprintf("cannot open registry database %q for writing", abs), err: err}
	}

	db, err := sql.Open("sqlite", s.dsn())
	if err != nil {
		return nil, fmt.Errorf("opening registry database %q: %w", abs, err)
	}
	s.db = db
	ctx := context.Background()
	if err := db.PingContext(ctx); err != nil {
		_ = db.Close()
		return nil, fmt.Errorf("opening registry database: %w", s.explain(err))
	}
	if err := s.migrate(ctx); err != nil {
		_ = db.Close()
		return nil, err
	}
	return s, nil
}

// dsn builds the driver's data source name. busy_timeout comes first so
// that switching to WAL already waits for a lock; _txlock=immediate makes
// every write transaction take the write lock up front, so two writers
// never deadlock upgrading read locks.
func (s *SQLiteStore) dsn() string {
	q := url.Values{}
	q.Add("_pragma", fmt.Sprintf("busy_timeout(%d)", s.busyTimeout.Milliseconds()))
	q.Add("_pragma", "foreign_keys(1)")
	q.Add("_pragma", "journal_mode(WAL)")
	q.Set("_txlock", "immediate")
	u := url.URL{Scheme: "file", Path: filepath.ToSlash(s.path), RawQuery: q.Encode()}
	return u.String()
}

func (s *SQLiteStore) migrate(ctx context.Context) error {
	sub, err := fs.Sub(migrations, "migrations")
	if err != nil {
		return fmt.Errorf("reading embedded registry migrations: %w", err)
	}
	p, err := goose.NewProvider(goose.DialectSQLite3, s.db, sub, goose.WithDisableGlobalRegistry(true))
	if err != nil {
		return fmt.Errorf("preparing registry migrations: %w", err)
	}
	if _, err := p.Up(ctx); err != nil {
		return fmt.Errorf("migrating registry database schema: %w", s.explain(err))
	}
	return nil
}

// Path returns the absolute path of the database file.
func (s *SQLiteStore) Path() string { return s.path }

// Close closes the database. Operations after Close fail.
func (s *SQLiteStore) Close() error {
	if err := s.db.Close(); err != nil {
		return fmt.Errorf("closing registry database %q: %w", s.path, err)
	}
	return nil
}

// explain turns the driver's failures that an operator can act on into a
// message naming the file and the likely fix; other errors pass unchanged.
func (s *SQLiteStore) explain(err error) error {
	var se *sqlite.Error
	if !errors.As(err, &se) {
		return err
	}
	var msg string
	switch se.Code() & 0xff {
	case sqlite3.SQLITE_NOTADB, sqlite3.SQLITE_CORRUPT:
		msg = fmt.Sprintf("registry database %q is not a SQLite database or is corrupt", s.path)
	case sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED:
		msg = fmt.Sprintf("registry database %q is locked by another connection or process (gave up after %s); stop the other user, such as a second gateway or a sqlite3 shell, or raise the busy timeout", s.path, s.busyTimeout)
	case sqlite3.SQLITE_CANTOPEN:
		msg = fmt.Sprintf("cannot open registry database %q: check that its directory exists and is writable", s.path)
	case sqlite3.SQLITE_READONLY:
		msg = fmt.Sprintf("registry database %q is read-only: the gateway needs write access to the file and its directory", s.path)
	case sqlite3.SQLITE_FULL:
		msg = fmt.Sprintf("registry database %q cannot grow: the disk is full", s.path)
	case sqlite3.SQLITE_IOERR:
		msg = fmt.Sprintf("I/O error on registry database %q", s.path)
	default:
		return err
	}
	return &unavailableError{msg: msg, err: err}
}

// timeLayout writes UTC times with fixed-width fractions, so stored times
// sort as text.
const timeLayout = "2006-01-02T15:04:05.000000000Z"

func formatTime(t time.Time) string { return t.UTC().Format(timeLayout) }

func parseTime(s string) (time.Time, error) { return time.Parse(timeLayout, s) }

// querier is what reads need from *sql.DB and *sql.Tx.
type querier interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// row is one stored resource before decoding.
type row struct {
	key       Key
	version   int64
	managedBy ManagedBy
	body      []byte
	created   string
	updated   string
}

const selectColumns = `kind, tenant, name, version, managed_by, body, created_at, updated_at`

type scanner interface{ Scan(dest ...any) error }

func scanRow(sc scanner) (row, error) {
	var r row
	var body string
	err := sc.Scan(&r.key.Kind, &r.key.Tenant, &r.key.Name, &r.version, &r.managedBy, &body, &r.created, &r.updated)
	r.body = []byte(body)
	return r, err
}

// getRow reads one row; found is false when it does not exist.
func getRow(ctx context.Context, q querier, k Key) (r row, found bool, err error) {
	r, err = scanRow(q.QueryRowContext(ctx,
		`SELECT `+selectColumns+` FROM resources WHERE kind = ? AND tenant = ? AND name = ?`,
		k.Kind, k.Tenant, k.Name))
	if errors.Is(err, sql.ErrNoRows) {
		return row{}, false, nil
	}
	return r, err == nil, err
}

func (r row) resource() (Resource, error) {
	obj, err := decodeStored(r.key.Kind, r.body)
	if err != nil {
		return Resource{}, fmt.Errorf("reading %s: %w", r.key, err)
	}
	created, err := parseTime(r.created)
	if err != nil {
		return Resource{}, fmt.Errorf("reading %s: created_at: %w", r.key, err)
	}
	updated, err := parseTime(r.updated)
	if err != nil {
		return Resource{}, fmt.Errorf("reading %s: updated_at: %w", r.key, err)
	}
	return Resource{Object: obj, Version: r.version, ManagedBy: r.managedBy, CreatedAt: created, UpdatedAt: updated}, nil
}
