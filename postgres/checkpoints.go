package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/cairn-audit/cairn"
	"github.com/jackc/pgx/v5"
)

const checkpointColumns = `size, root, note, signed_at`

func scanCheckpoint(row pgx.Row) (*cairn.Checkpoint, error) {
	var cp cairn.Checkpoint
	var root []byte
	var signed time.Time
	if err := row.Scan(&cp.Size, &root, &cp.Note, &signed); err != nil {
		return nil, err
	}
	if len(root) != len(cp.Root) {
		return nil, cairn.Errorf(cairn.EIntegrity, "checkpoint %d has a %d-byte root", cp.Size, len(root))
	}
	copy(cp.Root[:], root)
	cp.SignedAt = signed.UTC()
	return &cp, nil
}

// LatestCheckpoint implements cairn.LogReader.
func (s *Store) LatestCheckpoint(ctx context.Context, org, context string) (*cairn.Checkpoint, error) {
	ref, err := s.resolve(ctx, s.pool, org, context)
	if err != nil {
		return nil, err
	}
	cp, err := scanCheckpoint(s.pool.QueryRow(ctx, `SELECT `+checkpointColumns+` FROM checkpoints
		WHERE ctx_id = $1 ORDER BY size DESC LIMIT 1`, ref.id))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, cairn.Errorf(cairn.ENotFound, "no checkpoint signed yet for %s/%s", org, context)
	}
	if err != nil {
		return nil, dbErr("latest checkpoint", err)
	}
	return cp, nil
}

// AddCheckpoint implements cairn.LogReader. The context's row lock (the
// head appends lock) orders concurrent recorders on every node: each sees
// the checkpoint the previous one recorded, so a smaller or different tree
// than the latest is refused even when two nodes sign at once.
func (s *Store) AddCheckpoint(ctx context.Context, org, context string, cp *cairn.Checkpoint) error {
	ref, err := s.resolve(ctx, s.pool, org, context)
	if err != nil {
		return err
	}
	return s.inTx(ctx, "add checkpoint", func(tx pgx.Tx) error {
		var signed int64
		if err := tx.QueryRow(ctx, `SELECT signed_size FROM contexts WHERE id = $1 FOR UPDATE`, ref.id).Scan(&signed); err != nil {
			return err
		}
		if signed >= 0 {
			var root []byte
			err := tx.QueryRow(ctx, `SELECT root FROM checkpoints WHERE ctx_id = $1 AND size = $2`, ref.id, signed).Scan(&root)
			if err != nil {
				return fmt.Errorf("latest checkpoint: %w", err)
			}
			switch {
			case signed > cp.Size:
				return cairn.Errorf(cairn.EConflict, "a checkpoint of size %d exists; refusing size %d", signed, cp.Size)
			case signed == cp.Size && string(root) != string(cp.Root[:]):
				return &cairn.Error{Code: cairn.EIntegrity, Message: fmt.Sprintf("a checkpoint of size %d with another root exists", signed)}
			case signed == cp.Size:
				return cairn.Errorf(cairn.EConflict, "a checkpoint of size %d exists", signed)
			}
		}
		if _, err := tx.Exec(ctx, `INSERT INTO checkpoints (ctx_id, size, root, note, signed_at) VALUES ($1, $2, $3, $4, $5)`,
			ref.id, cp.Size, cp.Root[:], cp.Note, cp.SignedAt.UTC()); err != nil {
			return fmt.Errorf("insert checkpoint: %w", err)
		}
		_, err := tx.Exec(ctx, `UPDATE contexts SET signed_size = $2 WHERE id = $1`, ref.id, cp.Size)
		return err
	})
}

// Checkpoints implements cairn.LogReader.
func (s *Store) Checkpoints(ctx context.Context, org, context string, from, to int64, limit int) ([]*cairn.Checkpoint, error) {
	if from < 0 || to < from {
		return nil, cairn.Errorf(cairn.EInvalid, "bad checkpoint size range [%d, %d]", from, to)
	}
	if limit <= 0 {
		return nil, cairn.Errorf(cairn.EInvalid, "limit must be positive")
	}
	ref, err := s.resolve(ctx, s.pool, org, context)
	if err != nil {
		return nil, err
	}
	rows, err := s.pool.Query(ctx, `SELECT `+checkpointColumns+` FROM checkpoints
		WHERE ctx_id = $1 AND size >= $2 AND size <= $3 ORDER BY size LIMIT $4`, ref.id, from, to, limit)
	if err != nil {
		return nil, dbErr("list checkpoints", err)
	}
	defer rows.Close()
	var out []*cairn.Checkpoint
	for rows.Next() {
		cp, err := scanCheckpoint(rows)
		if err != nil {
			return nil, dbErr("list checkpoints", err)
		}
		out = append(out, cp)
	}
	return out, dbErr("list checkpoints", rows.Err())
}

// UnsignedHeads implements cairn.LogReader.
func (s *Store) UnsignedHeads(ctx context.Context) ([]cairn.Head, error) {
	rows, err := s.pool.Query(ctx, `SELECT o.name, c.name, c.size, c.root FROM contexts c JOIN orgs o ON o.id = c.org_id
		WHERE c.size != c.signed_size`)
	if err != nil {
		return nil, dbErr("unsigned heads", err)
	}
	defer rows.Close()
	var out []cairn.Head
	for rows.Next() {
		var h cairn.Head
		var root []byte
		if err := rows.Scan(&h.Org, &h.Context, &h.Size, &root); err != nil {
			return nil, dbErr("unsigned heads", err)
		}
		copy(h.Root[:], root)
		out = append(out, h)
	}
	return out, dbErr("unsigned heads", rows.Err())
}

// inTx runs f in a transaction and commits it; errors are wrapped by dbErr
// unless they already are *cairn.Error.
func (s *Store) inTx(ctx context.Context, what string, f func(tx pgx.Tx) error) error {
	return dbErr(what, pgx.BeginFunc(ctx, s.pool, f))
}
