package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"time"
)

// OpenReadOnly opens an existing database for reading only, for tools that
// inspect a stopped server's data (cairn fsck): no migration, no write, and
// SQLite refuses any statement that would write. The schema must be the
// one this binary knows. Writes through the returned Store fail.
func OpenReadOnly(ctx context.Context, path string) (*Store, error) {
	if _, err := os.Stat(path); err != nil {
		return nil, err
	}
	pragmas := []string{"busy_timeout(10000)", "query_only(1)"}
	open := func(n int) (*sql.DB, error) {
		db, err := sql.Open("sqlite", dsn(path, pragmas, "deferred")+"&mode=ro")
		if err != nil {
			return nil, err
		}
		db.SetMaxOpenConns(n)
		return db, nil
	}
	r, err := open(2)
	if err != nil {
		return nil, err
	}
	var version int
	if err := r.QueryRowContext(ctx, "PRAGMA user_version").Scan(&version); err != nil {
		r.Close()
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	if version != len(migrations) {
		r.Close()
		return nil, fmt.Errorf("database schema version %d, this binary knows %d", version, len(migrations))
	}
	w, err := open(1)
	if err != nil {
		r.Close()
		return nil, err
	}
	return &Store{cfg: Config{Path: path, Readers: 2, Now: time.Now}, w: w, r: r,
		contexts: map[ctxKey]ctxRef{}, names: map[int64]ctxKey{}, orgs: map[string]int64{}}, nil
}
