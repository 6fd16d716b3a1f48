package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/cairn-audit/cairn"
)

// Checkpoints implements cairn.LogReader. The checkpoints table's primary
// key (ctx_id, size) serves the range in order.
func (s *Store) Checkpoints(ctx context.Context, org, context string, from, to int64, limit int) ([]*cairn.Checkpoint, error) {
	if from < 0 || to < from {
		return nil, cairn.Errorf(cairn.EInvalid, "bad checkpoint size range [%d, %d]", from, to)
	}
	if limit <= 0 {
		return nil, cairn.Errorf(cairn.EInvalid, "limit must be positive")
	}
	ref, err := s.resolve(ctx, s.r, org, context)
	if err != nil {
		return nil, err
	}
	rows, err := s.r.QueryContext(ctx, `SELECT size, root, note, signed_at FROM checkpoints
		WHERE ctx_id = ? AND size >= ? AND size <= ? ORDER BY size LIMIT ?`, ref.id, from, to, limit)
	if err != nil {
		return nil, fmt.Errorf("list checkpoints: %w", err)
	}
	defer rows.Close()
	var out []*cairn.Checkpoint
	for rows.Next() {
		var cp cairn.Checkpoint
		var root []byte
		var signed int64
		if err := rows.Scan(&cp.Size, &root, &cp.Note, &signed); err != nil {
			return nil, fmt.Errorf("list checkpoints: %w", err)
		}
		if len(root) != len(cp.Root) {
			return nil, cairn.Errorf(cairn.EIntegrity, "checkpoint %d has a %d-byte root", cp.Size, len(root))
		}
		copy(cp.Root[:], root)
		cp.SignedAt = fromMicros(signed)
		out = append(out, &cp)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list checkpoints: %w", err)
	}
	return out, nil
}

// LeafIndex implements cairn.LogReader. The search index holds a term of
// every leaf hash (index.go), which finds the candidate rows; the stored
// level-0 hash decides. Events not indexed yet (indexer.go) are walked.
func (s *Store) LeafIndex(ctx context.Context, org, context string, hash [32]byte, size int64) (int64, error) {
	if size < 0 {
		return 0, cairn.Errorf(cairn.EInvalid, "tree size %d is negative", size)
	}
	ref, err := s.resolve(ctx, s.r, org, context)
	if err != nil {
		return 0, err
	}
	tx, err := s.r.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return 0, fmt.Errorf("find leaf hash: %w", err)
	}
	defer s.prepareStmts(ctx) // after the rollback: it needs a connection
	defer tx.Rollback()
	var w int64
	if s.ix != nil {
		if err := tx.QueryRowContext(ctx, `SELECT indexed FROM ix.state WHERE id = 0`).Scan(&w); err != nil {
			return 0, fmt.Errorf("find leaf hash: read index watermark: %w", err)
		}
	}
	var seq int64
	err = sql.ErrNoRows
	if w > 0 {
		seq, err = s.indexedLeaf(ctx, tx, ref.id, hash, size, w)
	}
	if errors.Is(err, sql.ErrNoRows) {
		err = tx.QueryRowContext(ctx, `SELECT e.seq FROM events e NOT INDEXED
			WHERE e.gid > ? AND e.ctx_id = ? AND e.seq < ? AND substr(e.hashes, 1, 32) = ?
			ORDER BY e.gid LIMIT 1`, w, ref.id, size, hash[:]).Scan(&seq)
	}
	if errors.Is(err, sql.ErrNoRows) {
		return 0, cairn.Errorf(cairn.ENotFound, "no leaf with this hash in the first %d leaves", size)
	}
	if err != nil {
		return 0, fmt.Errorf("find leaf hash: %w", err)
	}
	return seq, nil
}

// indexedLeaf is the seq of the first leaf with this hash among the first
// size of context ctxID, found through the index (gids ≤ w);
// sql.ErrNoRows if none.
func (s *Store) indexedLeaf(ctx context.Context, tx *sql.Tx, ctxID int64, hash [32]byte, size, w int64) (int64, error) {
	var q termQuery
	q.and(leafHashToken(hash))
	cur, err := s.indexCursor(ctx, tx, q)
	if err != nil {
		return 0, err
	}
	// Candidates come newest first; the oldest that matches is the leaf.
	found := int64(-1)
	for upTo := w; upTo > 0; {
		g, err := cur.next(upTo)
		if err != nil {
			return 0, err
		}
		if g == 0 {
			break
		}
		upTo = g - 1
		var seq int64
		err = tx.QueryRowContext(ctx, `SELECT seq FROM events
			WHERE gid = ? AND ctx_id = ? AND seq < ? AND substr(hashes, 1, 32) = ?`, g, ctxID, size, hash[:]).Scan(&seq)
		switch {
		case err == nil:
			found = seq
		case !errors.Is(err, sql.ErrNoRows):
			return 0, err
		}
	}
	if found < 0 {
		return 0, sql.ErrNoRows
	}
	return found, nil
}
