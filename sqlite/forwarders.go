package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/cairn-audit/cairn"
)

var _ cairn.ForwarderStore = (*Store)(nil)

// CreateForwarder implements cairn.ForwarderStore.
func (s *Store) CreateForwarder(ctx context.Context, f *cairn.Forwarder) error {
	orgID, err := s.orgID(ctx, s.w, f.Org)
	if err != nil {
		return err
	}
	cfg, err := json.Marshal(f)
	if err != nil {
		return fmt.Errorf("encode forwarder: %w", err)
	}
	_, err = s.w.ExecContext(ctx, `INSERT INTO forwarders (org_id, name, config, created_at, updated_at) VALUES (?, ?, ?, ?, ?)`,
		orgID, f.Name, string(cfg), micros(f.CreatedAt), micros(f.UpdatedAt))
	if isConstraint(err) {
		return cairn.Errorf(cairn.EConflict, "forwarder %q already exists in org %q", f.Name, f.Org)
	}
	return s.txErr("insert forwarder", err)
}

const selectForwarder = `SELECT o.name, f.name, f.config, f.created_at, f.updated_at FROM forwarders f JOIN orgs o ON o.id = f.org_id`

func scanForwarder(sc interface{ Scan(...any) error }) (*cairn.Forwarder, error) {
	var org, name, cfg string
	var created, updated int64
	if err := sc.Scan(&org, &name, &cfg, &created, &updated); err != nil {
		return nil, err
	}
	var f cairn.Forwarder
	if err := json.Unmarshal([]byte(cfg), &f); err != nil {
		return nil, fmt.Errorf("decode forwarder %s/%s: %w", org, name, err)
	}
	f.Org, f.Name, f.CreatedAt, f.UpdatedAt = org, name, fromMicros(created), fromMicros(updated)
	return &f, nil
}

// GetForwarder implements cairn.ForwarderStore.
func (s *Store) GetForwarder(ctx context.Context, org, name string) (*cairn.Forwarder, error) {
	f, err := scanForwarder(s.r.QueryRowContext(ctx, selectForwarder+` WHERE o.name = ? AND f.name = ?`, org, name))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, cairn.Errorf(cairn.ENotFound, "forwarder %q not found in org %q", name, org)
	}
	if err != nil {
		return nil, fmt.Errorf("get forwarder: %w", err)
	}
	return f, nil
}

// ListForwarders implements cairn.ForwarderStore.
func (s *Store) ListForwarders(ctx context.Context, org string) ([]*cairn.Forwarder, error) {
	if _, err := s.orgID(ctx, s.r, org); err != nil {
		return nil, err
	}
	return s.forwarders(ctx, ` WHERE o.name = ? ORDER BY f.name`, org)
}

// AllForwarders implements cairn.ForwarderStore.
func (s *Store) AllForwarders(ctx context.Context) ([]*cairn.Forwarder, error) {
	return s.forwarders(ctx, ` ORDER BY o.name, f.name`)
}

func (s *Store) forwarders(ctx context.Context, where string, args ...any) ([]*cairn.Forwarder, error) {
	rows, err := s.r.QueryContext(ctx, selectForwarder+where, args...)
	if err != nil {
		return nil, fmt.Errorf("list forwarders: %w", err)
	}
	defer rows.Close()
	var out []*cairn.Forwarder
	for rows.Next() {
		f, err := scanForwarder(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, f)
	}
	return out, rows.Err()
}

// forwarderID resolves org/name to the forwarder's row id.
func (s *Store) forwarderID(ctx context.Context, q querier, org, name string) (int64, error) {
	var id int64
	err := q.QueryRowContext(ctx, `SELECT f.id FROM forwarders f JOIN orgs o ON o.id = f.org_id WHERE o.name = ? AND f.name = ?`,
		org, name).Scan(&id)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, cairn.Errorf(cairn.ENotFound, "forwarder %q not found in org %q", name, org)
	}
	if err != nil {
		return 0, fmt.Errorf("resolve forwarder: %w", err)
	}
	return id, nil
}

// UpdateForwarder implements cairn.ForwarderStore.
func (s *Store) UpdateForwarder(ctx context.Context, f *cairn.Forwarder) error {
	cfg, err := json.Marshal(f)
	if err != nil {
		return fmt.Errorf("encode forwarder: %w", err)
	}
	res, err := s.w.ExecContext(ctx, `UPDATE forwarders SET config = ?, updated_at = ?
		WHERE name = ? AND org_id = (SELECT id FROM orgs WHERE name = ?)`, string(cfg), micros(f.UpdatedAt), f.Name, f.Org)
	if err != nil {
		return s.txErr("update forwarder", err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return cairn.Errorf(cairn.ENotFound, "forwarder %q not found in org %q", f.Name, f.Org)
	}
	return nil
}

// DeleteForwarder implements cairn.ForwarderStore. The cursors go with it
// (ON DELETE CASCADE).
func (s *Store) DeleteForwarder(ctx context.Context, org, name string) error {
	res, err := s.w.ExecContext(ctx, `DELETE FROM forwarders WHERE name = ? AND org_id = (SELECT id FROM orgs WHERE name = ?)`, name, org)
	if err != nil {
		return s.txErr("delete forwarder", err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return cairn.Errorf(cairn.ENotFound, "forwarder %q not found in org %q", name, org)
	}
	return nil
}

// ForwarderState implements cairn.ForwarderStore.
func (s *Store) ForwarderState(ctx context.Context, org, name string) (cairn.ForwarderState, error) {
	var st cairn.ForwarderState
	var parked, ok, failed int64
	err := s.r.QueryRowContext(ctx, `SELECT f.parked, f.attempts, f.last_success_at, f.last_error_at, f.last_error_code, f.last_error
		FROM forwarders f JOIN orgs o ON o.id = f.org_id WHERE o.name = ? AND f.name = ?`, org, name).
		Scan(&parked, &st.Attempts, &ok, &failed, &st.LastErrorCode, &st.LastError)
	if errors.Is(err, sql.ErrNoRows) {
		return st, cairn.Errorf(cairn.ENotFound, "forwarder %q not found in org %q", name, org)
	}
	if err != nil {
		return st, fmt.Errorf("forwarder state: %w", err)
	}
	st.Parked, st.LastSuccess, st.LastErrorAt = parked != 0, fromMicros(ok), fromMicros(failed)
	return st, nil
}

// SetForwarderState implements cairn.ForwarderStore.
func (s *Store) SetForwarderState(ctx context.Context, org, name string, st cairn.ForwarderState) error {
	res, err := s.w.ExecContext(ctx, `UPDATE forwarders SET parked = ?, attempts = ?, last_success_at = ?, last_error_at = ?,
		last_error_code = ?, last_error = ? WHERE name = ? AND org_id = (SELECT id FROM orgs WHERE name = ?)`,
		st.Parked, st.Attempts, micros(st.LastSuccess), micros(st.LastErrorAt), st.LastErrorCode, st.LastError, name, org)
	if err != nil {
		return s.txErr("set forwarder state", err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return cairn.Errorf(cairn.ENotFound, "forwarder %q not found in org %q", name, org)
	}
	return nil
}

// Cursors implements cairn.ForwarderStore.
func (s *Store) Cursors(ctx context.Context, org, name string) ([]cairn.ForwarderCursor, error) {
	id, err := s.forwarderID(ctx, s.r, org, name)
	if err != nil {
		return nil, err
	}
	rows, err := s.r.QueryContext(ctx, `SELECT c.name, k.next_seq FROM forwarder_cursors k JOIN contexts c ON c.id = k.ctx_id
		WHERE k.fwd_id = ? ORDER BY c.name`, id)
	if err != nil {
		return nil, fmt.Errorf("cursors: %w", err)
	}
	defer rows.Close()
	var out []cairn.ForwarderCursor
	for rows.Next() {
		var c cairn.ForwarderCursor
		if err := rows.Scan(&c.Context, &c.Next); err != nil {
			return nil, err
		}
		out = append(out, c)
	}
	return out, rows.Err()
}

// AdvanceCursor implements cairn.ForwarderStore: one transaction moves the
// cursor (if it still is `from`) and records the success.
func (s *Store) AdvanceCursor(ctx context.Context, org, name, context string, from, to int64, at time.Time) error {
	if to < from || from < 0 {
		return cairn.Errorf(cairn.EInvalid, "cursor cannot move from %d to %d", from, to)
	}
	ref, err := s.resolve(ctx, s.r, org, context)
	if err != nil {
		return err
	}
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return s.txErr("begin", err)
	}
	defer tx.Rollback()
	id, err := s.forwarderID(ctx, tx, org, name)
	if err != nil {
		return err
	}
	cur := int64(0)
	err = tx.QueryRowContext(ctx, `SELECT next_seq FROM forwarder_cursors WHERE fwd_id = ? AND ctx_id = ?`, id, ref.id).Scan(&cur)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return fmt.Errorf("read cursor: %w", err)
	}
	if cur != from {
		return cairn.Errorf(cairn.EConflict, "cursor of %s on %s is at %d, not %d", name, context, cur, from)
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO forwarder_cursors (fwd_id, ctx_id, next_seq) VALUES (?, ?, ?)
		ON CONFLICT (fwd_id, ctx_id) DO UPDATE SET next_seq = excluded.next_seq`, id, ref.id, to); err != nil {
		return fmt.Errorf("advance cursor: %w", err)
	}
	if _, err := tx.ExecContext(ctx, `UPDATE forwarders SET attempts = 0, last_success_at = ? WHERE id = ?`, micros(at), id); err != nil {
		return fmt.Errorf("record success: %w", err)
	}
	return s.txErr("commit cursor", tx.Commit())
}

// SetCursor implements cairn.ForwarderStore.
func (s *Store) SetCursor(ctx context.Context, org, name, context string, next int64) error {
	if next < 0 {
		return cairn.Errorf(cairn.EInvalid, "cursor cannot be negative")
	}
	ref, err := s.resolve(ctx, s.r, org, context)
	if err != nil {
		return err
	}
	id, err := s.forwarderID(ctx, s.r, org, name)
	if err != nil {
		return err
	}
	_, err = s.w.ExecContext(ctx, `INSERT INTO forwarder_cursors (fwd_id, ctx_id, next_seq) VALUES (?, ?, ?)
		ON CONFLICT (fwd_id, ctx_id) DO UPDATE SET next_seq = excluded.next_seq`, id, ref.id, next)
	if isConstraint(err) {
		// The forwarder was deleted between the lookup and the insert.
		return cairn.Errorf(cairn.ENotFound, "forwarder %q not found in org %q", name, org)
	}
	return s.txErr("set cursor", err)
}
