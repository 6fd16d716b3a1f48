package postgres

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/cairn-audit/cairn"
	"github.com/jackc/pgx/v5"
)

// WitnessConfig implements cairn.WitnessStore.
func (s *Store) WitnessConfig(ctx context.Context, org, context string) (cairn.WitnessConfig, error) {
	var c cairn.WitnessConfig
	ref, err := s.resolve(ctx, s.pool, org, context)
	if err != nil {
		return c, err
	}
	var ws []byte
	err = s.pool.QueryRow(ctx, `SELECT witnesses, quorum, policy FROM witness_configs WHERE ctx_id = $1`, ref.id).
		Scan(&ws, &c.Quorum, &c.Policy)
	if errors.Is(err, pgx.ErrNoRows) {
		return cairn.WitnessConfig{}, nil
	}
	if err != nil {
		return c, dbErr("witness config", err)
	}
	if err := json.Unmarshal(ws, &c.Witnesses); err != nil {
		return c, fmt.Errorf("decode witnesses: %w", err)
	}
	return c, nil
}

// SetWitnessConfig implements cairn.WitnessStore.
func (s *Store) SetWitnessConfig(ctx context.Context, org, context string, c cairn.WitnessConfig) error {
	ref, err := s.resolve(ctx, s.pool, org, context)
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
	_, err = s.pool.Exec(ctx, `INSERT INTO witness_configs (ctx_id, witnesses, quorum, policy, updated_at) VALUES ($1, $2, $3, $4, $5)
		ON CONFLICT (ctx_id) DO UPDATE SET witnesses = excluded.witnesses, quorum = excluded.quorum,
		policy = excluded.policy, updated_at = excluded.updated_at`,
		ref.id, string(ws), c.Quorum, c.Policy, s.cfg.Now().UTC())
	return dbErr("set witness config", err)
}

// WitnessedContexts implements cairn.WitnessStore.
func (s *Store) WitnessedContexts(ctx context.Context) ([]cairn.ContextRef, error) {
	rows, err := s.pool.Query(ctx, `SELECT o.name, c.name FROM witness_configs w
		JOIN contexts c ON c.id = w.ctx_id JOIN orgs o ON o.id = c.org_id
		WHERE jsonb_array_length(w.witnesses) > 0 ORDER BY o.name, c.name`)
	if err != nil {
		return nil, dbErr("witnessed contexts", err)
	}
	defer rows.Close()
	var out []cairn.ContextRef
	for rows.Next() {
		var r cairn.ContextRef
		if err := rows.Scan(&r.Org, &r.Context); err != nil {
			return nil, dbErr("witnessed contexts", err)
		}
		out = append(out, r)
	}
	return out, dbErr("witnessed contexts", rows.Err())
}

// AddCosignatures implements cairn.WitnessStore. The checkpoint row is
// locked while its note grows, so two nodes adding cosignatures at once
// both end up in the note.
func (s *Store) AddCosignatures(ctx context.Context, org, context string, size int64, cs []cairn.Cosignature) error {
	ref, err := s.resolve(ctx, s.pool, org, context)
	if err != nil {
		return err
	}
	for _, c := range cs {
		if len(c.Line) == 0 || c.Line[len(c.Line)-1] != '\n' || bytes.Count(c.Line, []byte("\n")) != 1 {
			return cairn.Errorf(cairn.EInvalid, "a cosignature must be one signature line")
		}
	}
	return s.inTx(ctx, "add cosignatures", func(tx pgx.Tx) error {
		var note []byte
		err := tx.QueryRow(ctx, `SELECT note FROM checkpoints WHERE ctx_id = $1 AND size = $2 FOR UPDATE`, ref.id, size).Scan(&note)
		if errors.Is(err, pgx.ErrNoRows) {
			return cairn.Errorf(cairn.ENotFound, "no checkpoint of size %d for %s/%s", size, org, context)
		}
		if err != nil {
			return fmt.Errorf("read checkpoint: %w", err)
		}
		now := s.cfg.Now().UTC()
		grown := bytes.Clone(note)
		for _, c := range cs {
			tag, err := tx.Exec(ctx, `INSERT INTO cosignatures (ctx_id, size, witness, line, cosigned_at, added_at)
				VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING`, ref.id, size, c.Witness, c.Line, c.Time.UTC(), now)
			if err != nil {
				return fmt.Errorf("insert cosignature: %w", err)
			}
			if tag.RowsAffected() == 0 {
				continue // this witness already cosigned this checkpoint
			}
			grown = append(grown, c.Line...)
		}
		if len(grown) != len(note) {
			if _, err := tx.Exec(ctx, `UPDATE checkpoints SET note = $3 WHERE ctx_id = $1 AND size = $2`, ref.id, size, grown); err != nil {
				return fmt.Errorf("append cosignatures: %w", err)
			}
		}
		return nil
	})
}

// Cosigners implements cairn.WitnessStore.
func (s *Store) Cosigners(ctx context.Context, org, context string, size int64) ([]string, error) {
	ref, err := s.resolve(ctx, s.pool, org, context)
	if err != nil {
		return nil, err
	}
	rows, err := s.pool.Query(ctx, `SELECT witness FROM cosignatures WHERE ctx_id = $1 AND size = $2 ORDER BY ord`, ref.id, size)
	if err != nil {
		return nil, dbErr("cosigners", err)
	}
	out, err := pgx.CollectRows(rows, pgx.RowTo[string])
	return out, dbErr("cosigners", err)
}

// LatestCosignedCheckpoint implements cairn.WitnessStore.
func (s *Store) LatestCosignedCheckpoint(ctx context.Context, org, context string, witnesses []string, quorum int) (*cairn.Checkpoint, error) {
	if quorum <= 0 {
		return s.LatestCheckpoint(ctx, org, context)
	}
	ref, err := s.resolve(ctx, s.pool, org, context)
	if err != nil {
		return nil, err
	}
	if len(witnesses) < quorum {
		return nil, cairn.Errorf(cairn.ENotFound, "no checkpoint of %s/%s reached its witness quorum", org, context)
	}
	cp, err := scanCheckpoint(s.pool.QueryRow(ctx, `SELECT `+checkpointColumns+` FROM checkpoints WHERE ctx_id = $1 AND size = (
		SELECT size FROM cosignatures WHERE ctx_id = $1 AND witness = ANY($2)
		GROUP BY size HAVING count(*) >= $3 ORDER BY size DESC LIMIT 1)`, ref.id, witnesses, quorum))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, cairn.Errorf(cairn.ENotFound, "no checkpoint of %s/%s reached its witness quorum", org, context)
	}
	if err != nil {
		return nil, dbErr("latest cosigned checkpoint", err)
	}
	return cp, nil
}

// SetWitnessStatus implements cairn.WitnessStore.
func (s *Store) SetWitnessStatus(ctx context.Context, org, context string, st cairn.WitnessStatus) error {
	ref, err := s.resolve(ctx, s.pool, org, context)
	if err != nil {
		return err
	}
	_, err = s.pool.Exec(ctx, `INSERT INTO witness_status (ctx_id, witness, size, last_success_at, last_error_at, last_error_code, last_error)
		VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (ctx_id, witness) DO UPDATE SET size = excluded.size,
		last_success_at = excluded.last_success_at, last_error_at = excluded.last_error_at,
		last_error_code = excluded.last_error_code, last_error = excluded.last_error`,
		ref.id, st.Witness, st.Size, ts(st.LastSuccess), ts(st.LastErrorAt), st.LastErrorCode, st.LastError)
	return dbErr("set witness status", err)
}

// WitnessStatuses implements cairn.WitnessStore.
func (s *Store) WitnessStatuses(ctx context.Context, org, context string) ([]cairn.WitnessStatus, error) {
	ref, err := s.resolve(ctx, s.pool, org, context)
	if err != nil {
		return nil, err
	}
	rows, err := s.pool.Query(ctx, `SELECT witness, size, last_success_at, last_error_at, last_error_code, last_error
		FROM witness_status WHERE ctx_id = $1 ORDER BY witness`, ref.id)
	if err != nil {
		return nil, dbErr("witness status", err)
	}
	defer rows.Close()
	var out []cairn.WitnessStatus
	for rows.Next() {
		var st cairn.WitnessStatus
		var ok, failed *time.Time
		if err := rows.Scan(&st.Witness, &st.Size, &ok, &failed, &st.LastErrorCode, &st.LastError); err != nil {
			return nil, dbErr("witness status", err)
		}
		st.LastSuccess, st.LastErrorAt = fromTS(ok), fromTS(failed)
		out = append(out, st)
	}
	return out, dbErr("witness status", rows.Err())
}

// SyncSigningKeys implements cairn.WitnessStore. Nodes starting at once
// with the same keys are serialised by an advisory lock, so each key gets
// one history entry.
func (s *Store) SyncSigningKeys(ctx context.Context, publicKeys [][]byte, now time.Time) ([]cairn.SigningKey, error) {
	var out []cairn.SigningKey
	err := s.inTx(ctx, "sync signing keys", func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, lockKey("signing-keys", s.cfg.Schema)); err != nil {
			return err
		}
		inUse, err := signingKeys(ctx, tx, `WHERE retired_at IS NULL`)
		if err != nil {
			return err
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
				if _, err := tx.Exec(ctx, `UPDATE signing_keys SET retired_at = $1 WHERE public_key = $2 AND retired_at IS NULL`,
					now.UTC(), k.PublicKey); err != nil {
					return fmt.Errorf("retire signing key: %w", err)
				}
			}
		}
		for _, p := range publicKeys {
			if _, err := tx.Exec(ctx, `INSERT INTO signing_keys (public_key, added_at) VALUES ($1, $2)
				ON CONFLICT (public_key) WHERE retired_at IS NULL DO NOTHING`, p, now.UTC()); err != nil {
				return fmt.Errorf("add signing key: %w", err)
			}
		}
		out, err = signingKeys(ctx, tx, "")
		return err
	})
	return out, err
}

// SigningKeys implements cairn.WitnessStore.
func (s *Store) SigningKeys(ctx context.Context) ([]cairn.SigningKey, error) {
	return signingKeys(ctx, s.pool, "")
}

func signingKeys(ctx context.Context, q rowsQuerier, where string) ([]cairn.SigningKey, error) {
	rows, err := q.Query(ctx, `SELECT public_key, added_at, retired_at FROM signing_keys `+where+` ORDER BY id`)
	if err != nil {
		return nil, dbErr("signing keys", err)
	}
	defer rows.Close()
	var out []cairn.SigningKey
	for rows.Next() {
		var k cairn.SigningKey
		var retired *time.Time
		if err := rows.Scan(&k.PublicKey, &k.AddedAt, &retired); err != nil {
			return nil, dbErr("signing keys", err)
		}
		k.AddedAt, k.RetiredAt = k.AddedAt.UTC(), fromTS(retired)
		out = append(out, k)
	}
	return out, dbErr("signing keys", rows.Err())
}
