package sqlite

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/cairn-audit/cairn"
)

var _ cairn.WitnessStore = (*Store)(nil)

// WitnessConfig implements cairn.WitnessStore.
func (s *Store) WitnessConfig(ctx context.Context, org, context string) (cairn.WitnessConfig, error) {
	var c cairn.WitnessConfig
	ref, err := s.resolve(ctx, s.r, org, context)
	if err != nil {
		return c, err
	}
	var ws string
	err = s.r.QueryRowContext(ctx, `SELECT witnesses, quorum, policy FROM witness_configs WHERE ctx_id = ?`, ref.id).
		Scan(&ws, &c.Quorum, &c.Policy)
	if errors.Is(err, sql.ErrNoRows) {
		return cairn.WitnessConfig{}, nil
	}
	if err != nil {
		return c, fmt.Errorf("witness config: %w", err)
	}
	if err := json.Unmarshal([]byte(ws), &c.Witnesses); err != nil {
		return c, fmt.Errorf("decode witnesses: %w", err)
	}
	return c, nil
}

// SetWitnessConfig implements cairn.WitnessStore.
func (s *Store) SetWitnessConfig(ctx context.Context, org, context string, c cairn.WitnessConfig) error {
	ref, err := s.resolve(ctx, s.w, org, context)
	if err != nil {
		return err
	}
	if c.Witnesses == nil {
		c.Witnesses = []cairn.Witness{}
	}
	ws, err := json.Marshal(c.Witnesses)
	if err != nil {
		return err
	}
	_, err = s.w.ExecContext(ctx, `INSERT INTO witness_configs (ctx_id, witnesses, quorum, policy, updated_at) VALUES (?, ?, ?, ?, ?)
		ON CONFLICT (ctx_id) DO UPDATE SET witnesses = excluded.witnesses, quorum = excluded.quorum,
		policy = excluded.policy, updated_at = excluded.updated_at`,
		ref.id, string(ws), c.Quorum, c.Policy, micros(s.cfg.Now()))
	return s.txErr("set witness config", err)
}

// WitnessedContexts implements cairn.WitnessStore.
func (s *Store) WitnessedContexts(ctx context.Context) ([]cairn.ContextRef, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT o.name, c.name FROM witness_configs w
		JOIN contexts c ON c.id = w.ctx_id JOIN orgs o ON o.id = c.org_id
		WHERE w.witnesses != '[]' ORDER BY o.name, c.name`)
	if err != nil {
		return nil, fmt.Errorf("witnessed contexts: %w", err)
	}
	defer rows.Close()
	var out []cairn.ContextRef
	for rows.Next() {
		var r cairn.ContextRef
		if err := rows.Scan(&r.Org, &r.Context); err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	return out, rows.Err()
}

// AddCosignatures implements cairn.WitnessStore.
func (s *Store) AddCosignatures(ctx context.Context, org, context string, size int64, cs []cairn.Cosignature) error {
	ref, err := s.resolve(ctx, s.r, org, context)
	if err != nil {
		return err
	}
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return s.txErr("begin", err)
	}
	defer tx.Rollback()
	var note []byte
	err = tx.QueryRowContext(ctx, `SELECT note FROM checkpoints WHERE ctx_id = ? AND size = ?`, ref.id, size).Scan(&note)
	if errors.Is(err, sql.ErrNoRows) {
		return cairn.Errorf(cairn.ENotFound, "no checkpoint of size %d for %s/%s", size, org, context)
	}
	if err != nil {
		return fmt.Errorf("read checkpoint: %w", err)
	}
	now := micros(s.cfg.Now())
	grown := bytes.Clone(note)
	for _, c := range cs {
		if len(c.Line) == 0 || c.Line[len(c.Line)-1] != '\n' || bytes.Count(c.Line, []byte("\n")) != 1 {
			return cairn.Errorf(cairn.EInvalid, "a cosignature must be one signature line")
		}
		res, err := tx.ExecContext(ctx, `INSERT INTO cosignatures (ctx_id, size, witness, line, cosigned_at, added_at)
			VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING`, ref.id, size, c.Witness, c.Line, c.Time.Unix(), now)
		if err != nil {
			return fmt.Errorf("insert cosignature: %w", err)
		}
		if n, _ := res.RowsAffected(); n == 0 {
			continue // this witness already cosigned this checkpoint
		}
		grown = append(grown, c.Line...)
	}
	if len(grown) != len(note) {
		if _, err := tx.ExecContext(ctx, `UPDATE checkpoints SET note = ? WHERE ctx_id = ? AND size = ?`, grown, ref.id, size); err != nil {
			return fmt.Errorf("append cosignatures: %w", err)
		}
	}
	return s.txErr("commit cosignatures", tx.Commit())
}

// Cosigners implements cairn.WitnessStore.
func (s *Store) Cosigners(ctx context.Context, org, context string, size int64) ([]string, error) {
	ref, err := s.resolve(ctx, s.r, org, context)
	if err != nil {
		return nil, err
	}
	rows, err := s.r.QueryContext(ctx, `SELECT witness FROM cosignatures WHERE ctx_id = ? AND size = ? ORDER BY added_at, witness`, ref.id, size)
	if err != nil {
		return nil, fmt.Errorf("cosigners: %w", err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var w string
		if err := rows.Scan(&w); err != nil {
			return nil, err
		}
		out = append(out, w)
	}
	return out, rows.Err()
}

// LatestCosignedCheckpoint implements cairn.WitnessStore.
func (s *Store) LatestCosignedCheckpoint(ctx context.Context, org, context string, witnesses []string, quorum int) (*cairn.Checkpoint, error) {
	if quorum <= 0 {
		return s.LatestCheckpoint(ctx, org, context)
	}
	ref, err := s.resolve(ctx, s.r, org, context)
	if err != nil {
		return nil, err
	}
	if len(witnesses) < quorum {
		return nil, cairn.Errorf(cairn.ENotFound, "no checkpoint of %s/%s reached its witness quorum", org, context)
	}
	args := []any{ref.id, ref.id}
	for _, w := range witnesses {
		args = append(args, w)
	}
	args = append(args, quorum)
	var cp cairn.Checkpoint
	var root []byte
	var signed int64
	err = s.r.QueryRowContext(ctx, `SELECT size, root, note, signed_at FROM checkpoints WHERE ctx_id = ? AND size = (
		SELECT size FROM cosignatures WHERE ctx_id = ? AND witness IN (?`+strings.Repeat(", ?", len(witnesses)-1)+`)
		GROUP BY size HAVING count(*) >= ? ORDER BY size DESC LIMIT 1)`, args...).
		Scan(&cp.Size, &root, &cp.Note, &signed)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, cairn.Errorf(cairn.ENotFound, "no checkpoint of %s/%s reached its witness quorum", org, context)
	}
	if err != nil {
		return nil, fmt.Errorf("latest cosigned checkpoint: %w", err)
	}
	copy(cp.Root[:], root)
	cp.SignedAt = fromMicros(signed)
	return &cp, nil
}

// SetWitnessStatus implements cairn.WitnessStore.
func (s *Store) SetWitnessStatus(ctx context.Context, org, context string, st cairn.WitnessStatus) error {
	ref, err := s.resolve(ctx, s.w, org, context)
	if err != nil {
		return err
	}
	_, err = s.w.ExecContext(ctx, `INSERT INTO witness_status (ctx_id, witness, size, last_success_at, last_error_at, last_error_code, last_error)
		VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (ctx_id, witness) DO UPDATE SET size = excluded.size,
		last_success_at = excluded.last_success_at, last_error_at = excluded.last_error_at,
		last_error_code = excluded.last_error_code, last_error = excluded.last_error`,
		ref.id, st.Witness, st.Size, micros(st.LastSuccess), micros(st.LastErrorAt), st.LastErrorCode, st.LastError)
	return s.txErr("set witness status", err)
}

// WitnessStatuses implements cairn.WitnessStore.
func (s *Store) WitnessStatuses(ctx context.Context, org, context string) ([]cairn.WitnessStatus, error) {
	ref, err := s.resolve(ctx, s.r, org, context)
	if err != nil {
		return nil, err
	}
	rows, err := s.r.QueryContext(ctx, `SELECT witness, size, last_success_at, last_error_at, last_error_code, last_error
		FROM witness_status WHERE ctx_id = ? ORDER BY witness`, ref.id)
	if err != nil {
		return nil, fmt.Errorf("witness status: %w", err)
	}
	defer rows.Close()
	var out []cairn.WitnessStatus
	for rows.Next() {
		var st cairn.WitnessStatus
		var ok, failed int64
		if err := rows.Scan(&st.Witness, &st.Size, &ok, &failed, &st.LastErrorCode, &st.LastError); err != nil {
			return nil, err
		}
		st.LastSuccess, st.LastErrorAt = fromMicros(ok), fromMicros(failed)
		out = append(out, st)
	}
	return out, rows.Err()
}

// SyncSigningKeys implements cairn.WitnessStore.
func (s *Store) SyncSigningKeys(ctx context.Context, publicKeys [][]byte, now time.Time) ([]cairn.SigningKey, error) {
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return nil, s.txErr("begin", err)
	}
	defer tx.Rollback()
	inUse, err := signingKeys(ctx, tx, `WHERE retired_at = 0`)
	if err != nil {
		return nil, err
	}
	listed := func(pub []byte) bool {
		for _, p := range publicKeys {
			if bytes.Equal(p, pub) {
				return true
			}
		}
		return false
	}
	for _, k := range inUse {
		if !listed(k.PublicKey) {
			if _, err := tx.ExecContext(ctx, `UPDATE signing_keys SET retired_at = ? WHERE public_key = ? AND retired_at = 0`,
				micros(now), k.PublicKey); err != nil {
				return nil, fmt.Errorf("retire signing key: %w", err)
			}
		}
	}
	for _, p := range publicKeys {
		if _, err := tx.ExecContext(ctx, `INSERT INTO signing_keys (public_key, added_at) VALUES (?, ?)
			ON CONFLICT (public_key) WHERE retired_at = 0 DO NOTHING`, p, micros(now)); err != nil {
			return nil, fmt.Errorf("add signing key: %w", err)
		}
	}
	out, err := signingKeys(ctx, tx, "")
	if err != nil {
		return nil, err
	}
	return out, s.txErr("commit signing keys", tx.Commit())
}

// SigningKeys implements cairn.WitnessStore.
func (s *Store) SigningKeys(ctx context.Context) ([]cairn.SigningKey, error) {
	return signingKeys(ctx, s.r, "")
}

type rowsQuerier interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
}

func signingKeys(ctx context.Context, q rowsQuerier, where string) ([]cairn.SigningKey, error) {
	rows, err := q.QueryContext(ctx, `SELECT public_key, added_at, retired_at FROM signing_keys `+where+` ORDER BY id`)
	if err != nil {
		return nil, fmt.Errorf("signing keys: %w", err)
	}
	defer rows.Close()
	var out []cairn.SigningKey
	for rows.Next() {
		var k cairn.SigningKey
		var added, retired int64
		if err := rows.Scan(&k.PublicKey, &added, &retired); err != nil {
			return nil, err
		}
		k.AddedAt, k.RetiredAt = fromMicros(added), fromMicros(retired)
		out = append(out, k)
	}
	return out, rows.Err()
}
