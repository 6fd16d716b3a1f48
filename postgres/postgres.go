// Package postgres is Cairn's scale-out storage engine: any number of
// stateless `cairn serve` nodes share one PostgreSQL database (or one
// schema of it), and any node can serve any request.
//
// Every Append is one transaction that writes the event rows, their stored
// Merkle hashes (golang.org/x/mod/sumdb/tlog, in the event row's hashes
// column) and the context heads together, so the index and the tree can
// never diverge. Appends to one context are serialised by a row lock on the
// context head (SELECT … FOR UPDATE); different contexts append in
// parallel up to the commit-order lock of their org (see append.go for the
// locking and why). Events live in a table partitioned by month of receipt,
// with partitions created ahead of time by the engine (partitions.go).
//
// The engine never rewrites or deletes an event, a stored hash, a
// checkpoint (a note only gains cosignature lines) or a cosignature, and
// triggers refuse it to anyone else who connects (schema.go). It must never
// import another engine.
package postgres

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"log/slog"
	"regexp"
	"sync"
	"time"

	"github.com/cairn-audit/cairn"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
)

// Config configures a Store.
type Config struct {
	// DSN is a PostgreSQL connection string (URL or key=value form).
	// Required.
	DSN string
	// Schema, if set, is the schema Cairn's tables live in; it is created
	// if missing and every connection's search_path is set to it. Several
	// deployments (or tests) can share one database this way. Default: the
	// DSN's search_path (usually "public").
	Schema string
	// MaxConns bounds the connection pool (default 10).
	MaxConns int32
	// PartitionsAhead is how many monthly event partitions exist beyond
	// the current month (default 2).
	PartitionsAhead int
	// IdleInTxTimeout ends a session that sits idle inside a transaction
	// this long (PostgreSQL's idle_in_transaction_session_timeout). A node
	// that vanishes without closing its connections (power loss, network
	// partition) would otherwise hold its context heads and its org's
	// commit clock until TCP gives up, stalling every other node's appends
	// to that org. Default 30 s.
	IdleInTxTimeout time.Duration
	// MaintenanceInterval is how often partitions are created ahead and
	// planner statistics refreshed in the background (default 1 h).
	MaintenanceInterval time.Duration
	// Now stamps created/updated times and decides which partitions to
	// create (default time.Now).
	Now func() time.Time
	// Logger receives background maintenance problems (default: discard).
	Logger *slog.Logger
}

var schemaName = regexp.MustCompile(`^[a-z_][a-z0-9_]{0,62}$`)

// Validate checks c and fills in the defaults.
func (c *Config) Validate() error {
	if c.DSN == "" {
		return cairn.Errorf(cairn.EInvalid, "postgres: no DSN")
	}
	if c.Schema != "" && !schemaName.MatchString(c.Schema) {
		return cairn.Errorf(cairn.EInvalid, "postgres: schema %q must be a lowercase identifier", c.Schema)
	}
	if c.MaxConns == 0 {
		c.MaxConns = 10
	}
	if c.MaxConns < 2 {
		return cairn.Errorf(cairn.EInvalid, "postgres: MaxConns must be at least 2")
	}
	if c.PartitionsAhead == 0 {
		c.PartitionsAhead = 2
	}
	if c.PartitionsAhead < 0 || c.PartitionsAhead > 24 {
		return cairn.Errorf(cairn.EInvalid, "postgres: PartitionsAhead must be between 1 and 24")
	}
	if c.IdleInTxTimeout == 0 {
		c.IdleInTxTimeout = 30 * time.Second
	}
	if c.IdleInTxTimeout < time.Second {
		return cairn.Errorf(cairn.EInvalid, "postgres: IdleInTxTimeout must be at least 1s")
	}
	if c.MaintenanceInterval == 0 {
		c.MaintenanceInterval = time.Hour
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return nil
}

// Store is the PostgreSQL engine. It implements cairn.Store,
// cairn.WitnessStore, cairn.ForwarderStore and retraced.State.
type Store struct {
	cfg  Config
	pool *pgxpool.Pool

	mu       sync.RWMutex
	contexts map[ctxKey]ctxRef // contexts are never renamed or deleted
	names    map[int64]ctxKey
	orgs     map[string]int64
	frontier map[int64]*frontier // ctx id → right edge of the tree after this node's last commit
	months   map[int64]bool      // partitions known to exist, by month number
	denied   time.Time           // when creating a partition was last refused for lack of privilege

	leases leaser

	stop context.CancelFunc
	done chan struct{}
}

type ctxKey struct{ org, name string }

type ctxRef struct{ id, orgID int64 }

var (
	_ cairn.Store          = (*Store)(nil)
	_ cairn.WitnessStore   = (*Store)(nil)
	_ cairn.ForwarderStore = (*Store)(nil)
)

// Open connects, applies pending migrations (one node at a time, under an
// advisory lock), creates the event partitions ahead and starts the
// background maintenance.
func Open(ctx context.Context, cfg Config) (*Store, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	pc, err := pgxpool.ParseConfig(cfg.DSN)
	if err != nil {
		return nil, cairn.Errorf(cairn.EInvalid, "postgres: bad DSN: %v", redact(err))
	}
	pc.MaxConns = cfg.MaxConns
	if cfg.Schema != "" {
		if err := createSchema(ctx, pc.ConnConfig, cfg.Schema); err != nil {
			return nil, err
		}
		pc.ConnConfig.RuntimeParams["search_path"] = cfg.Schema
	}
	// Every statement names its own time zone where it matters; UTC keeps
	// what a human reads in psql unsurprising.
	pc.ConnConfig.RuntimeParams["timezone"] = "UTC"
	pc.ConnConfig.RuntimeParams["idle_in_transaction_session_timeout"] = fmt.Sprint(cfg.IdleInTxTimeout.Milliseconds())
	pc.ConnConfig.RuntimeParams["application_name"] = "cairn"
	pool, err := pgxpool.NewWithConfig(ctx, pc)
	if err != nil {
		return nil, dbErr("connect", err)
	}
	s := &Store{cfg: cfg, pool: pool,
		contexts: map[ctxKey]ctxRef{},
		names:    map[int64]ctxKey{},
		orgs:     map[string]int64{},
		frontier: map[int64]*frontier{},
		months:   map[int64]bool{},
	}
	if err := s.migrate(ctx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("postgres: migrate: %w", err)
	}
	if err := s.ensurePartitionsAhead(ctx); err != nil {
		if pgCode(err) != insufficientPrivilege {
			pool.Close()
			return nil, fmt.Errorf("postgres: partitions: %w", err)
		}
		cfg.Logger.LogAttrs(ctx, slog.LevelWarn, "this role cannot create event partitions: have the owner role create them ahead",
			slog.Any("error", err))
	}
	bg, stop := context.WithCancel(context.WithoutCancel(ctx))
	s.stop, s.done = stop, make(chan struct{})
	go s.maintain(bg)
	return s, nil
}

// createSchema creates the schema if it is missing. Concurrent creators
// (nodes starting together) are serialised by an advisory lock.
func createSchema(ctx context.Context, cc *pgx.ConnConfig, schema string) error {
	conn, err := pgx.ConnectConfig(ctx, cc)
	if err != nil {
		return dbErr("connect", err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	tx, err := conn.Begin(ctx)
	if err != nil {
		return dbErr("create schema", err)
	}
	defer tx.Rollback(ctx)
	var exists bool
	if err := tx.QueryRow(ctx, `SELECT to_regnamespace($1) IS NOT NULL`, schema).Scan(&exists); err != nil {
		return dbErr("create schema", err)
	}
	if exists {
		return nil // a role without CREATE on the database may use an existing schema
	}
	if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, lockKey("schema", schema)); err != nil {
		return dbErr("create schema", err)
	}
	if _, err := tx.Exec(ctx, `CREATE SCHEMA IF NOT EXISTS `+pgx.Identifier{schema}.Sanitize()); err != nil {
		return dbErr("create schema", err)
	}
	return dbErr("create schema", tx.Commit(ctx))
}

// lockKey is the advisory lock key of a purpose within a schema. Advisory
// locks are database-wide, so the schema is part of the key.
func lockKey(purpose, schema string) int64 {
	h := fnv.New64a()
	h.Write([]byte("cairn\x00" + purpose + "\x00" + schema))
	return int64(h.Sum64())
}

// Close stops the background maintenance and closes the pool. In-flight
// calls must have returned.
func (s *Store) Close() error {
	if s.stop != nil {
		s.stop()
		<-s.done
	}
	s.closeLeases()
	s.pool.Close()
	return nil
}

// Ping checks that the database answers.
func (s *Store) Ping(ctx context.Context) error {
	return dbErr("ping", s.pool.Ping(ctx))
}

// Pool exposes the connection pool for tools and tests that need raw
// access. Writing through it bypasses every invariant the engine keeps.
func (s *Store) Pool() *pgxpool.Pool { return s.pool }

// Optimize refreshes the planner's statistics of the event partitions.
// Autovacuum does so too; this only makes it prompt after bulk loads.
func (s *Store) Optimize(ctx context.Context) error {
	_, err := s.pool.Exec(ctx, `ANALYZE events`)
	return dbErr("analyze", err)
}

// maintain creates partitions ahead every MaintenanceInterval.
func (s *Store) maintain(ctx context.Context) {
	defer close(s.done)
	t := time.NewTicker(s.cfg.MaintenanceInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if err := s.ensurePartitionsAhead(ctx); err != nil && ctx.Err() == nil {
				s.cfg.Logger.LogAttrs(ctx, slog.LevelWarn, "create event partitions", slog.Any("error", err))
			}
		}
	}
}

type querier interface {
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
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
	err := q.QueryRow(ctx, `SELECT c.id, c.org_id FROM contexts c JOIN orgs o ON o.id = c.org_id
		WHERE o.name = $1 AND c.name = $2`, org, name).Scan(&ref.id, &ref.orgID)
	if errors.Is(err, pgx.ErrNoRows) {
		return ref, cairn.Errorf(cairn.ENotFound, "context %q not found in org %q", name, org)
	}
	if err != nil {
		return ref, dbErr("resolve context", err)
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
	err := q.QueryRow(ctx, `SELECT id FROM orgs WHERE name = $1`, org).Scan(&id)
	if errors.Is(err, pgx.ErrNoRows) {
		return 0, cairn.Errorf(cairn.ENotFound, "org %q not found", org)
	}
	if err != nil {
		return 0, dbErr("resolve org", err)
	}
	s.mu.Lock()
	s.orgs[org] = id
	s.mu.Unlock()
	return id, nil
}

// contextName returns the name of a context id (cached).
func (s *Store) contextName(ctx context.Context, id int64) (string, error) {
	s.mu.RLock()
	k, ok := s.names[id]
	s.mu.RUnlock()
	if ok {
		return k.name, nil
	}
	var org, name string
	err := s.pool.QueryRow(ctx, `SELECT o.name, c.name FROM contexts c JOIN orgs o ON o.id = c.org_id WHERE c.id = $1`, id).
		Scan(&org, &name)
	if err != nil {
		return "", dbErr("context name", err)
	}
	s.mu.Lock()
	s.names[id] = ctxKey{org, name}
	s.mu.Unlock()
	return name, nil
}

// SQLSTATE codes the engine translates (see dbErr).
const (
	uniqueViolation       = "23505"
	foreignKeyViolation   = "23503"
	insufficientPrivilege = "42501"
)

// pgCode returns the SQLSTATE of err, or "".
func pgCode(err error) string {
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		return pe.Code
	}
	return ""
}

// dbErr wraps a driver error with what was being done, translating by
// SQLSTATE class the errors a caller may retry into EUnavailable. Callers
// translate constraint violations themselves, where they know what a
// duplicate means.
func dbErr(what string, err error) error {
	if err == nil {
		return nil
	}
	var ce *cairn.Error
	if errors.As(err, &ce) {
		return err
	}
	code := pgCode(err)
	switch {
	case code == "40001", code == "40P01", code == "55P03", code == "53300", code == "57P01",
		code == "57P02", code == "57P03", len(code) == 5 && code[:2] == "08":
		// serialization failure, deadlock, lock not available, too many
		// connections, shutdown, cannot connect now, connection exceptions
		return &cairn.Error{Code: cairn.EUnavailable, Message: "database is unavailable; retry shortly", Err: fmt.Errorf("%s: %w", what, err)}
	case code == "":
		if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
			return fmt.Errorf("%s: %w", what, err)
		}
		var ne *pgconn.ConnectError
		if errors.As(err, &ne) || pgconn.SafeToRetry(err) {
			return &cairn.Error{Code: cairn.EUnavailable, Message: "database is unavailable; retry shortly", Err: fmt.Errorf("%s: %w", what, err)}
		}
	}
	return fmt.Errorf("%s: %w", what, err)
}

// redact keeps a DSN parse error from echoing a password.
func redact(err error) string {
	var pe *pgconn.ParseConfigError
	if errors.As(err, &pe) {
		return "cannot parse the connection string"
	}
	return err.Error()
}

// ts converts a time for a nullable timestamptz column: zero is NULL.
func ts(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return t.UTC()
}

// fromTS converts a scanned nullable timestamptz back.
func fromTS(t *time.Time) time.Time {
	if t == nil || t.IsZero() {
		return time.Time{}
	}
	return t.UTC()
}
