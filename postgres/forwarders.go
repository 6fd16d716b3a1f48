package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/cairn-audit/cairn"
	"github.com/jackc/pgx/v5"
)

// CreateForwarder implements cairn.ForwarderStore.
func (s *Store) CreateForwarder(ctx context.Context, f *cairn.Forwarder) error {
	orgID, err := s.orgID(ctx, s.pool, f.Org)
	if err != nil {
		return err
	}
	cfg, err := json.Marshal(f)
	if err != nil {
		return fmt.Errorf("encode forwarder: %w", err)
	}
	_, err = s.pool.Exec(ctx, `INSERT INTO forwarders (org_id, name, config, created_at, updated_at) VALUES ($1, $2, $3, $4, $5)`,
		orgID, f.Name, string(cfg), f.CreatedAt.UTC(), f.UpdatedAt.UTC())
	if pgCode(err) == uniqueViolation {
		return cairn.Errorf(cairn.EConflict, "forwarder %q already exists in org %q", f.Name, f.Org)
	}
	return dbErr("insert forwarder", err)
}

const selectForwarder = `SELECT o.name, f.name, f.config, f.created_at, f.updated_at FROM forwarders f JOIN orgs o ON o.id = f.org_id`

func scanForwarder(row pgx.Row) (*cairn.Forwarder, error) {
	var org, name string
	var cfg []byte
	var created, updated time.Time
	if err := row.Scan(&org, &name, &cfg, &created, &updated); err != nil {
		return nil, err
	}
	var f cairn.Forwarder
	if err := json.Unmarshal(cfg, &f); err != nil {
		return nil, fmt.Errorf("decode forwarder %s/%s: %w", org, name, err)
	}
	f.Org, f.Name, f.CreatedAt, f.UpdatedAt = org, name, created.UTC(), updated.UTC()
	return &f, nil
}

// GetForwarder implements cairn.ForwarderStore.
func (s *Store) GetForwarder(ctx context.Context, org, name string) (*cairn.Forwarder, error) {
	f, err := scanForwarder(s.pool.QueryRow(ctx, selectForwarder+` WHERE o.name = $1 AND f.name = $2`, org, name))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, cairn.Errorf(cairn.ENotFound, "forwarder %q not found in org %q", name, org)
	}
	return f, dbErr("get forwarder", err)
}

// ListForwarders implements cairn.ForwarderStore.
func (s *Store) ListForwarders(ctx context.Context, org string) ([]*cairn.Forwarder, error) {
	if _, err := s.orgID(ctx, s.pool, org); err != nil {
		return nil, err
	}
	return s.forwarders(ctx, ` WHERE o.name = $1 ORDER BY f.name`, org)
}

// AllForwarders implements cairn.ForwarderStore.
func (s *Store) AllForwarders(ctx context.Context) ([]*cairn.Forwarder, error) {
	return s.forwarders(ctx, ` ORDER BY o.name, f.name`)
}

func (s *Store) forwarders(ctx context.Context, where string, args ...any) ([]*cairn.Forwarder, error) {
	rows, err := s.pool.Query(ctx, selectForwarder+where, args...)
	if err != nil {
		return nil, dbErr("list forwarders", err)
	}
	defer rows.Close()
	var out []*cairn.Forwarder
	for rows.Next() {
		f, err := scanForwarder(rows)
		if err != nil {
			return nil, dbErr("list forwarders", err)
		}
		out = append(out, f)
	}
	return out, dbErr("list forwarders", rows.Err())
}

// forwarderID resolves org/name to the forwarder's row id; lock, if set,
// is appended to the query (a row lock).
func forwarderID(ctx context.Context, q querier, org, name, lock string) (int64, error) {
	var id int64
	err := q.QueryRow(ctx, `SELECT f.id FROM forwarders f JOIN orgs o ON o.id = f.org_id WHERE o.name = $1 AND f.name = $2`+lock,
		org, name).Scan(&id)
	if errors.Is(err, pgx.ErrNoRows) {
		return 0, cairn.Errorf(cairn.ENotFound, "forwarder %q not found in org %q", name, org)
	}
	return id, dbErr("resolve forwarder", err)
}

// UpdateForwarder implements cairn.ForwarderStore.
func (s *Store) UpdateForwarder(ctx context.Context, f *cairn.Forwarder) error {
	cfg, err := json.Marshal(f)
	if err != nil {
		return fmt.Errorf("encode forwarder: %w", err)
	}
	tag, err := s.pool.Exec(ctx, `UPDATE forwarders SET config = $1, updated_at = $2
		WHERE name = $3 AND org_id = (SELECT id FROM orgs WHERE name = $4)`, string(cfg), f.UpdatedAt.UTC(), f.Name, f.Org)
	if err != nil {
		return dbErr("update forwarder", err)
	}
	if tag.RowsAffected() == 0 {
		return cairn.Errorf(cairn.ENotFound, "forwarder %q not found in org %q", f.Name, f.Org)
	}
	return nil
}

// DeleteForwarder implements cairn.ForwarderStore. The cursors go with it
// (ON DELETE CASCADE).
func (s *Store) DeleteForwarder(ctx context.Context, org, name string) error {
	tag, err := s.pool.Exec(ctx, `DELETE FROM forwarders WHERE name = $1 AND org_id = (SELECT id FROM orgs WHERE name = $2)`, name, org)
	if err != nil {
		return dbErr("delete forwarder", err)
	}
	if tag.RowsAffected() == 0 {
		return cairn.Errorf(cairn.ENotFound, "forwarder %q not found in org %q", name, org)
	}
	return nil
}

// ForwarderState implements cairn.ForwarderStore.
func (s *Store) ForwarderState(ctx context.Context, org, name string) (cairn.ForwarderState, error) {
	var st cairn.ForwarderState
	var ok, failed *time.Time
	err := s.pool.QueryRow(ctx, `SELECT f.parked, f.attempts, f.last_success_at, f.last_error_at, f.last_error_code, f.last_error
		FROM forwarders f JOIN orgs o ON o.id = f.org_id WHERE o.name = $1 AND f.name = $2`, org, name).
		Scan(&st.Parked, &st.Attempts, &ok, &failed, &st.LastErrorCode, &st.LastError)
	if errors.Is(err, pgx.ErrNoRows) {
		return st, cairn.Errorf(cairn.ENotFound, "forwarder %q not found in org %q", name, org)
	}
	if err != nil {
		return st, dbErr("forwarder state", err)
	}
	st.LastSuccess, st.LastErrorAt = fromTS(ok), fromTS(failed)
	return st, nil
}

// SetForwarderState implements cairn.ForwarderStore.
func (s *Store) SetForwarderState(ctx context.Context, org, name string, st cairn.ForwarderState) error {
	tag, err := s.pool.Exec(ctx, `UPDATE forwarders SET parked = $1, attempts = $2, last_success_at = $3, last_error_at = $4,
		last_error_code = $5, last_error = $6 WHERE name = $7 AND org_id = (SELECT id FROM orgs WHERE name = $8)`,
		st.Parked, st.Attempts, ts(st.LastSuccess), ts(st.LastErrorAt), st.LastErrorCode, st.LastError, name, org)
	if err != nil {
		return dbErr("set forwarder state", err)
	}
	if tag.RowsAffected() == 0 {
		return cairn.Errorf(cairn.ENotFound, "forwarder %q not found in org %q", name, org)
	}
	return nil
}

// Cursors implements cairn.ForwarderStore.
func (s *Store) Cursors(ctx context.Context, org, name string) ([]cairn.ForwarderCursor, error) {
	id, err := forwarderID(ctx, s.pool, org, name, "")
	if err != nil {
		return nil, err
	}
	rows, err := s.pool.Query(ctx, `SELECT c.name, k.next_seq FROM forwarder_cursors k JOIN contexts c ON c.id = k.ctx_id
		WHERE k.fwd_id = $1 ORDER BY c.name`, id)
	if err != nil {
		return nil, dbErr("cursors", err)
	}
	defer rows.Close()
	var out []cairn.ForwarderCursor
	for rows.Next() {
		var c cairn.ForwarderCursor
		if err := rows.Scan(&c.Context, &c.Next); err != nil {
			return nil, dbErr("cursors", err)
		}
		out = append(out, c)
	}
	return out, dbErr("cursors", rows.Err())
}

// AdvanceCursor implements cairn.ForwarderStore: one transaction moves the
// cursor (if it still is `from`) and records the success. The forwarder's
// row lock makes the compare-and-set hold across nodes.
func (s *Store) AdvanceCursor(ctx context.Context, org, name, context string, from, to int64, at time.Time) error {
	if to < from || from < 0 {
		return cairn.Errorf(cairn.EInvalid, "cursor cannot move from %d to %d", from, to)
	}
	ref, err := s.resolve(ctx, s.pool, org, context)
	if err != nil {
		return err
	}
	return s.inTx(ctx, "advance cursor", func(tx pgx.Tx) error {
		id, err := forwarderID(ctx, tx, org, name, " FOR UPDATE OF f")
		if err != nil {
			return err
		}
		cur := int64(0)
		err = tx.QueryRow(ctx, `SELECT next_seq FROM forwarder_cursors WHERE fwd_id = $1 AND ctx_id = $2`, id, ref.id).Scan(&cur)
		if err != nil && !errors.Is(err, pgx.ErrNoRows) {
			return fmt.Errorf("read cursor: %w", err)
		}
		if cur != from {
			return cairn.Errorf(cairn.EConflict, "cursor of %s on %s is at %d, not %d", name, context, cur, from)
		}
		if _, err := tx.Exec(ctx, `INSERT INTO forwarder_cursors (fwd_id, ctx_id, next_seq) VALUES ($1, $2, $3)
			ON CONFLICT (fwd_id, ctx_id) DO UPDATE SET next_seq = excluded.next_seq`, id, ref.id, to); err != nil {
			return fmt.Errorf("advance cursor: %w", err)
		}
		if _, err := tx.Exec(ctx, `UPDATE forwarders SET attempts = 0, last_success_at = $2 WHERE id = $1`, id, at.UTC()); err != nil {
			return fmt.Errorf("record success: %w", err)
		}
		return nil
	})
}

// SetCursor implements cairn.ForwarderStore.
func (s *Store) SetCursor(ctx context.Context, org, name, context string, next int64) error {
	if next < 0 {
		return cairn.Errorf(cairn.EInvalid, "cursor cannot be negative")
	}
	ref, err := s.resolve(ctx, s.pool, org, context)
	if err != nil {
		return err
	}
	id, err := forwarderID(ctx, s.pool, org, name, "")
	if err != nil {
		return err
	}
	_, err = s.pool.Exec(ctx, `INSERT INTO forwarder_cursors (fwd_id, ctx_id, next_seq) VALUES ($1, $2, $3)
		ON CONFLICT (fwd_id, ctx_id) DO UPDATE SET next_seq = excluded.next_seq`, id, ref.id, next)
	if pgCode(err) == foreignKeyViolation {
		// The forwarder was deleted between the lookup and the insert.
		return cairn.Errorf(cairn.ENotFound, "forwarder %q not found in org %q", name, org)
	}
	return dbErr("set cursor", err)
}
