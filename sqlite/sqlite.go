// Package sqlite is Cairn's embedded storage engine: one SQLite database in
// WAL mode under the data directory, written by a single connection.
//
// Every Append is one transaction that writes the event rows, their stored
// Merkle hashes (golang.org/x/mod/sumdb/tlog) and the context head together,
// and is fsynced (synchronous=FULL) before it returns, so the events and the
// tree can never diverge and an acknowledged event survives power loss.
// The search index is derived from the log in a second file, beside it
// (indexer.go).
//
// The engine never rewrites or deletes an event, a hash or a checkpoint.
package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cairn-audit/cairn"
	sqlite "modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"
)

// Config configures a Store.
type Config struct {
	// Path is the database file. Its directory is created if missing.
	Path string
	// Readers is the number of concurrent read connections (default 4).
	Readers int
	// Now stamps created/updated times (default time.Now).
	Now func() time.Time
	// Logger receives background maintenance problems (default: discard).
	Logger *slog.Logger

	indexPaused bool // tests: open with indexing paused
}

// Store is the SQLite engine. It implements cairn.Store.
type Store struct {
	cfg Config
	w   *sql.DB // one connection: every write is serialised here
	ws  *writeStmts
	r   *sql.DB // read-only connections
	wal *walCheckpointer
	ix  *indexer // nil in a read-only store

	mu       sync.RWMutex
	contexts map[ctxKey]ctxRef // name → ids; contexts are never renamed or deleted
	names    map[int64]ctxKey  // ctx id → name
	orgs     map[string]int64
	stmts    map[string]*sql.Stmt // prepared searches by SQL (read.go)
	// unprepared is the SQL searches found no statement for, to prepare
	// when they are done (read.go).
	unprepared map[string]struct{}

	frontiers frontiers    // the right edge of each context's tree (append.go)
	hashReads atomic.Int64 // stored hashes appends read from the database (tests)
}

type ctxKey struct{ org, name string }

type ctxRef struct {
	id, orgID int64
}

var _ cairn.Store = (*Store)(nil)

// Open opens (creating if needed) the database at cfg.Path and applies any
// pending migrations.
func Open(ctx context.Context, cfg Config) (*Store, error) {
	if cfg.Path == "" {
		return nil, errors.New("sqlite: empty path")
	}
	if cfg.Readers <= 0 {
		cfg.Readers = 4
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if err := os.MkdirAll(filepath.Dir(cfg.Path), 0o700); err != nil {
		return nil, fmt.Errorf("create data dir: %w", err)
	}
	common := []string{
		"busy_timeout(10000)",
		"foreign_keys(on)",
	}
	if err := create(ctx, cfg.Path); err != nil {
		return nil, err
	}
	w, err := sql.Open("sqlite", dsn(cfg.Path, append(common,
		"cache_size(-65536)",
		"journal_mode(WAL)",
		"synchronous(FULL)",
		"wal_autocheckpoint(0)", // see walcheckpoint.go
		"journal_size_limit(67108864)",
	), "immediate"))
	if err != nil {
		return nil, err
	}
	w.SetMaxOpenConns(1)
	w.SetMaxIdleConns(1)
	w.SetConnMaxLifetime(0)
	s := &Store{cfg: cfg, w: w,
		contexts: map[ctxKey]ctxRef{},
		names:    map[int64]ctxKey{},
		orgs:     map[string]int64{},
	}
	if err := s.migrate(ctx); err != nil {
		w.Close()
		return nil, fmt.Errorf("migrate %s: %w", cfg.Path, err)
	}
	if s.ws, err = prepareWrites(ctx, w); err != nil {
		w.Close()
		return nil, err
	}
	var logID []byte
	var maxGID int64
	if err := w.QueryRowContext(ctx, `SELECT log_id, (SELECT coalesce(max(gid), 0) FROM events) FROM identity`).Scan(&logID, &maxGID); err != nil {
		w.Close()
		return nil, fmt.Errorf("read log identity: %w", err)
	}
	ixPath := indexPath(cfg.Path)
	ixdb, opened, err := openIndex(ctx, ixPath, logID, maxGID, cfg.Logger)
	if err != nil {
		w.Close()
		return nil, err
	}
	r, err := openReaders(dsn(cfg.Path, append(common, "query_only(1)", readerCache, readerMmap), "deferred"), ixPath, cfg.Readers)
	if err != nil {
		ixdb.Close()
		w.Close()
		return nil, err
	}
	s.r = r
	if s.ix, err = newIndexer(ixPath, ixdb, r, maxGID, opened, cfg.indexPaused, cfg.Logger); err != nil {
		r.Close()
		ixdb.Close()
		w.Close()
		return nil, err
	}
	ckpt, err := sql.Open("sqlite", dsn(cfg.Path, common, "deferred"))
	if err != nil {
		s.ix.close()
		r.Close()
		w.Close()
		return nil, err
	}
	ckpt.SetMaxOpenConns(1)
	s.wal = newWALCheckpointer(ckpt, w, cfg.Logger)
	return s, nil
}

// create creates the database file if it does not exist, with 8 KiB pages:
// an event row is ~1.2 KiB, and SQLite writes the WAL and copies it back one
// page per system call (with 4 KiB pages, 15 % of the committer's time went
// to pwrite). Not 16 KiB: a page buffer must fit the 16 KiB slots of the
// driver's allocator (modernc.org/memory), or every page a reader's cache
// drops — all of them, whenever another connection has written — costs an
// madvise; at 16 KiB a search at 10 M events took 7 ms instead of 1. The
// page size is fixed once the file exists; an existing database keeps its
// own.
func create(ctx context.Context, path string) error {
	if _, err := os.Stat(path); !errors.Is(err, os.ErrNotExist) {
		return err
	}
	db, err := sql.Open("sqlite", "file:"+path)
	if err != nil {
		return err
	}
	defer db.Close()
	_, err = db.ExecContext(ctx, "PRAGMA page_size = 8192; PRAGMA journal_mode = WAL")
	return err
}

// A reader's page cache is emptied whenever another connection has written
// since its last read, and every search writes (its read record, in the
// built-in context): a large cache is refilled for nothing, and emptying it
// is costly, since the driver's allocator hands freed memory beyond its
// 4 MiB per size class back to the system a region at a time (one madvise
// each; with 64 MiB caches that was a third of a search's time at 10 M
// events). Readers keep small caches, and no memory map, which SQLite also
// drops on every change (a search at 10 M events: p50 3.2 ms with neither,
// 4.4 with the map, 4.7–5.0 with a 64 MiB cache and the map); the driver's
// build caps a map at 2 GB besides (SQLITE_MAX_MMAP_SIZE), less than a
// database of a few million events.
var (
	readerCache = "cache_size(-2048)"
	readerMmap  = "mmap_size(0)"
)

func dsn(path string, pragmas []string, txlock string) string {
	q := url.Values{}
	for _, p := range pragmas {
		q.Add("_pragma", p)
	}
	q.Set("_txlock", txlock)
	return "file:" + path + "?" + q.Encode()
}

// Close closes the database. In-flight calls must have returned.
func (s *Store) Close() error {
	var errs []error
	if s.wal != nil {
		s.wal.close()
		errs = append(errs, s.wal.db.Close())
	}
	if s.ix != nil {
		errs = append(errs, s.ix.close())
	}
	if s.r != nil {
		s.mu.Lock()
		for _, st := range s.stmts {
			errs = append(errs, st.Close())
		}
		s.stmts = nil
		s.mu.Unlock()
		errs = append(errs, s.r.Close())
	}
	if s.ws != nil {
		errs = append(errs, s.ws.close())
	}
	// A final checkpoint keeps the WAL file small for the next start.
	_, _ = s.w.Exec("PRAGMA wal_checkpoint(TRUNCATE)")
	errs = append(errs, s.w.Close())
	return errors.Join(errs...)
}

// Ping checks that the database answers reads.
func (s *Store) Ping(ctx context.Context) error {
	var n int
	return s.r.QueryRowContext(ctx, "SELECT count(*) FROM orgs").Scan(&n)
}

// DB exposes the write connection for tools (fsck) and tests that need raw
// access. Writing through it bypasses every invariant.
func (s *Store) DB() *sql.DB { return s.w }

// Optimize refreshes the query planner's statistics. Call it periodically;
// without statistics SQLite may pick the wrong index for filtered searches.
func (s *Store) Optimize(ctx context.Context) error {
	_, err := s.w.ExecContext(ctx, "PRAGMA analysis_limit=1000; PRAGMA optimize")
	return err
}

// resolve returns the ids of org/context, reading through the cache.
func (s *Store) resolve(ctx context.Context, q querier, org, name string) (ctxRef, error) {
	k := ctxKey{org, name}
	s.mu.RLock()
	ref, ok := s.contexts[k]
	s.mu.RUnlock()
	if ok {
		return ref, nil
	}
	err := q.QueryRowContext(ctx,
		`SELECT c.id, c.org_id FROM contexts c JOIN orgs o ON o.id = c.org_id WHERE o.name = ? AND c.name = ?`,
		org, name).Scan(&ref.id, &ref.orgID)
	if errors.Is(err, sql.ErrNoRows) {
		return ref, cairn.Errorf(cairn.ENotFound, "context %q not found in org %q", name, org)
	}
	if err != nil {
		return ref, fmt.Errorf("resolve context: %w", err)
	}
	s.mu.Lock()
	s.contexts[k] = ref
	s.names[ref.id] = k
	s.mu.Unlock()
	return ref, nil
}

func (s *Store) orgID(ctx context.Context, q querier, org string) (int64, error) {
	s.mu.RLock()
	id, ok := s.orgs[org]
	s.mu.RUnlock()
	if ok {
		return id, nil
	}
	err := q.QueryRowContext(ctx, `SELECT id FROM orgs WHERE name = ?`, org).Scan(&id)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, cairn.Errorf(cairn.ENotFound, "org %q not found", org)
	}
	if err != nil {
		return 0, fmt.Errorf("resolve org: %w", err)
	}
	s.mu.Lock()
	s.orgs[org] = id
	s.mu.Unlock()
	return id, nil
}

// contextName returns the name of a context id (cached), reading it with q
// on a miss: a search passes its transaction, never the pool it holds a
// connection of.
func (s *Store) contextName(ctx context.Context, q querier, id int64) (string, error) {
	s.mu.RLock()
	k, ok := s.names[id]
	s.mu.RUnlock()
	if ok {
		return k.name, nil
	}
	var org, name string
	err := q.QueryRowContext(ctx,
		`SELECT o.name, c.name FROM contexts c JOIN orgs o ON o.id = c.org_id WHERE c.id = ?`, id).Scan(&org, &name)
	if err != nil {
		return "", fmt.Errorf("context name: %w", err)
	}
	s.mu.Lock()
	s.names[id] = ctxKey{org, name}
	s.mu.Unlock()
	return name, nil
}

type querier interface {
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// isConstraint reports whether err is a SQLite constraint violation.
func isConstraint(err error) bool {
	var se *sqlite.Error
	if errors.As(err, &se) {
		return se.Code()&0xff == sqlite3.SQLITE_CONSTRAINT
	}
	return false
}

// busy reports whether err is SQLite's "database is locked/busy".
func busy(err error) bool {
	var se *sqlite.Error
	if errors.As(err, &se) {
		c := se.Code() & 0xff
		return c == sqlite3.SQLITE_BUSY || c == sqlite3.SQLITE_LOCKED
	}
	return false
}

func micros(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixMicro()
}

func fromMicros(us int64) time.Time {
	if us == 0 {
		return time.Time{}
	}
	return time.UnixMicro(us).UTC()
}
