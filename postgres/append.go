package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"time"

	"github.com/cairn-audit/cairn"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"golang.org/x/mod/sumdb/tlog"
)

// Locking in Append, and why.
//
// One Append is one transaction (group commit happens above, in ingest):
//
//  1. Lock the heads of every context it writes: SELECT … FROM contexts …
//     ORDER BY id FOR UPDATE. Appends to one context, from any node, are
//     serialised here, so each reads the size the previous one committed:
//     contiguous seqs and one tree. Other contexts are not blocked.
//  2. Without further locks, give each entry its seq and compute its leaf
//     and stored hashes (the right edge of the tree is cached per context
//     between this node's commits, so usually nothing is read).
//  3. Take the commit clock of each org written (UPDATE commit_clocks …
//     RETURNING), assign gids, COPY the rows (their search columns and
//     words are derived while COPY streams, see copySource), widen the
//     time marks, update the heads, COMMIT.
//
// Why the clock: searches page newest-first with a keyset cursor on gid, and
// a later page must never receive an event that committed after the first
// page was read (or miss one committed before). A gid from a sequence is
// drawn at insert time, so two concurrent transactions can commit in the
// opposite order of their gids: the one with the smaller gid becomes
// visible after a reader has already paged past it. Holding the org's
// clock row from the gid assignment to COMMIT makes gid order commit order
// within the org (searches never cross orgs), because PostgreSQL makes a
// transaction visible before it releases its locks.
//
// The cost: appends of one org serialise for step 3's COPY and COMMIT
// (including the WAL flush). Everything before (decoding, hashing, the
// head lock wait of other contexts) overlaps. Locks are taken in one order
// (contexts by id, then clocks by org id, then time marks in key order),
// so appends never deadlock.

// frontier is the right edge of a context's tree at size: the stored hashes
// of the complete subtrees a tree of that size decomposes into, which are
// all tlog needs to append and to compute the root. Stored hashes never
// change, so a frontier cached after a commit stays valid as long as the
// head is still at that size and root.
type frontier struct {
	size   int64
	root   tlog.Hash
	hashes map[int64]tlog.Hash
}

// frontierIndexes lists the stored hash indexes of the right edge of a tree
// of size n.
func frontierIndexes(n int64) []int64 {
	var out []int64
	for level := 0; n>>level > 0; level++ {
		if (n>>level)&1 == 1 {
			out = append(out, tlog.StoredHashIndex(level, n>>level-1))
		}
	}
	return out
}

// head is a context's tree during the transaction.
type head struct {
	ref     ctxRef
	size    int64 // size when locked
	root    tlog.Hash
	next    int64 // next seq
	pending map[int64]tlog.Hash
}

var eventColumns = []string{"org_id", "ctx_id", "seq", "gid", "id", "received_time", "event_time",
	"action", "kind", "outcome", "actor_type", "actor_id", "actor_email", "target_type", "target_id", "group_id",
	"words", "leaf", "hashes"}

// Append implements cairn.Appender.
func (s *Store) Append(ctx context.Context, reqs []*cairn.AppendRequest) ([]cairn.AppendResult, error) {
	results := make([]cairn.AppendResult, len(reqs))
	refs := make([]ctxRef, len(reqs))
	var ctxIDs []int64
	var months []int64
	for i, req := range reqs {
		ref, err := s.resolve(ctx, s.pool, req.Org, req.Context)
		if err != nil {
			if cairn.ErrorCode(err) == cairn.ENotFound {
				results[i].Err = err
				continue
			}
			return nil, err
		}
		refs[i] = ref
		ctxIDs = append(ctxIDs, ref.id)
		for _, en := range req.Entries {
			if _, err := uuid.Parse(en.Event.ID); err != nil {
				return nil, fmt.Errorf("event id: %w", err)
			}
			months = append(months, month(receivedTime(en.Event, s.cfg.Now)))
		}
	}
	if len(ctxIDs) == 0 {
		return results, nil
	}
	slices.Sort(months)
	if err := s.ensurePartitions(ctx, slices.Compact(months)); err != nil {
		if pgCode(err) != insufficientPrivilege {
			return nil, err
		}
		// The rows go to an existing partition or the default one.
		s.cfg.Logger.LogAttrs(ctx, slog.LevelWarn, "cannot create an event partition", slog.Any("error", err))
	}
	slices.Sort(ctxIDs)
	ctxIDs = slices.Compact(ctxIDs)

	tx, err := s.pool.Begin(ctx)
	if err != nil {
		return nil, dbErr("begin append", err)
	}
	defer tx.Rollback(context.WithoutCancel(ctx))

	heads, err := s.lockHeads(ctx, tx, ctxIDs)
	if err != nil {
		return nil, err
	}
	for i := range refs {
		if h := heads[refs[i].id]; h != nil {
			h.ref = refs[i]
		}
	}

	src := &copySource{s: s}
	orgRows := map[int64][]int{} // org id → indexes into all, in order
	type idem struct {
		ctxID     int64
		key       string
		hash      []byte
		committed []cairn.Committed
	}
	var idems []idem
	for i, req := range reqs {
		if results[i].Err != nil {
			continue
		}
		h := heads[refs[i].id]
		if req.IdempotencyKey != "" {
			replayed, err := s.replay(ctx, tx, h.ref.id, req, &results[i])
			if err != nil {
				return nil, err
			}
			if replayed {
				continue
			}
			if slices.ContainsFunc(idems, func(d idem) bool { return d.ctxID == h.ref.id && d.key == req.IdempotencyKey }) {
				// The same key twice in one group: replay the first.
				for _, d := range idems {
					if d.ctxID == h.ref.id && d.key == req.IdempotencyKey {
						if string(d.hash) != string(req.RequestHash[:]) {
							results[i].Err = cairn.Errorf(cairn.EConflict, "idempotency key %q was used with a different request body", req.IdempotencyKey)
						} else {
							results[i].Committed, results[i].Replayed = slices.Clone(d.committed), true
						}
					}
				}
				continue
			}
		}
		committed := make([]cairn.Committed, len(req.Entries))
		for j := range req.Entries {
			r, c, err := s.place(ctx, tx, h, &req.Entries[j])
			if err != nil {
				return nil, err
			}
			orgRows[h.ref.orgID] = append(orgRows[h.ref.orgID], len(src.rows))
			src.rows = append(src.rows, r)
			committed[j] = c
		}
		results[i].Committed = committed
		if req.IdempotencyKey != "" {
			idems = append(idems, idem{h.ref.id, req.IdempotencyKey, req.RequestHash[:], committed})
		}
	}
	if len(src.rows) == 0 && len(idems) == 0 {
		return results, dbErr("commit append", tx.Commit(ctx))
	}

	// Step 3: commit order. Clocks are locked in org id order.
	orgIDs := make([]int64, 0, len(orgRows))
	for id := range orgRows {
		orgIDs = append(orgIDs, id)
	}
	slices.Sort(orgIDs)
	for _, org := range orgIDs {
		idx := orgRows[org]
		var next int64
		if err := tx.QueryRow(ctx, `UPDATE commit_clocks SET next_gid = next_gid + $2 WHERE org_id = $1 RETURNING next_gid`,
			org, len(idx)).Scan(&next); err != nil {
			return nil, dbErr("commit clock", err)
		}
		first := next - int64(len(idx))
		for k, r := range idx {
			src.rows[r].gid = first + int64(k)
		}
	}
	if _, err := tx.CopyFrom(ctx, pgx.Identifier{"events"}, eventColumns, src); err != nil {
		return nil, dbErr("insert events", err)
	}
	batch := &pgx.Batch{}
	queueTimeMarks(batch, src.rows)
	var newHeads []*head
	for _, id := range ctxIDs {
		h := heads[id]
		if h.next == h.size {
			continue
		}
		root, err := tlog.TreeHash(h.next, s.reader(ctx, tx, h))
		if err != nil {
			return nil, fmt.Errorf("tree hash: %w", err)
		}
		h.root = root
		batch.Queue(`UPDATE contexts SET size = $2, root = $3 WHERE id = $1`, id, h.next, root[:])
		newHeads = append(newHeads, h)
	}
	now := s.cfg.Now().UTC()
	for _, d := range idems {
		rec, err := json.Marshal(d.committed)
		if err != nil {
			return nil, err
		}
		batch.Queue(`INSERT INTO idempotency (ctx_id, key, request_hash, results, created_at) VALUES ($1, $2, $3, $4, $5)`,
			d.ctxID, d.key, d.hash, string(rec), now)
	}
	if err := tx.SendBatch(ctx, batch).Close(); err != nil {
		return nil, dbErr("update heads", err)
	}
	if err := tx.Commit(ctx); err != nil {
		return nil, dbErr("commit append", err)
	}
	s.mu.Lock()
	for _, h := range newHeads {
		f := &frontier{size: h.next, root: h.root, hashes: map[int64]tlog.Hash{}}
		for _, idx := range frontierIndexes(h.next) {
			f.hashes[idx] = h.pending[idx]
		}
		s.frontier[h.ref.id] = f
	}
	s.mu.Unlock()
	return results, nil
}

func receivedTime(e *cairn.Event, now func() time.Time) time.Time {
	if e.ReceivedTime.IsZero() {
		return now()
	}
	return e.ReceivedTime
}

// lockHeads locks the heads of ctxIDs (sorted) and seeds each with the
// frontier: from this node's cache when the head is where this node left
// it, else read from the stored hashes.
func (s *Store) lockHeads(ctx context.Context, tx pgx.Tx, ctxIDs []int64) (map[int64]*head, error) {
	rows, err := tx.Query(ctx, `SELECT id, size, root FROM contexts WHERE id = ANY($1) ORDER BY id FOR UPDATE`, ctxIDs)
	if err != nil {
		return nil, dbErr("lock heads", err)
	}
	heads := map[int64]*head{}
	for rows.Next() {
		h := &head{}
		var root []byte
		if err := rows.Scan(&h.ref.id, &h.size, &root); err != nil {
			rows.Close()
			return nil, dbErr("lock heads", err)
		}
		copy(h.root[:], root)
		h.next = h.size
		heads[h.ref.id] = h
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, dbErr("lock heads", err)
	}
	for _, id := range ctxIDs {
		h := heads[id]
		if h == nil {
			return nil, fmt.Errorf("lock heads: context %d vanished", id)
		}
		s.mu.RLock()
		f := s.frontier[id]
		s.mu.RUnlock()
		h.pending = make(map[int64]tlog.Hash)
		if f != nil && f.size == h.size && f.root == h.root {
			for k, v := range f.hashes {
				h.pending[k] = v
			}
			continue
		}
		idx := frontierIndexes(h.size)
		if len(idx) == 0 {
			continue
		}
		got, err := readHashes(ctx, tx, id, idx)
		if err != nil {
			return nil, err
		}
		for i, x := range idx {
			h.pending[x] = got[i]
		}
	}
	return heads, nil
}

// reader reads stored hashes for tlog during the transaction, this
// transaction's own (and the frontier's) first.
func (s *Store) reader(ctx context.Context, tx pgx.Tx, h *head) tlog.HashReader {
	return tlog.HashReaderFunc(func(indexes []int64) ([]tlog.Hash, error) {
		out := make([]tlog.Hash, len(indexes))
		var missing []int64
		for i, idx := range indexes {
			if hash, ok := h.pending[idx]; ok {
				out[i] = hash
			} else {
				missing = append(missing, idx)
			}
		}
		if len(missing) == 0 {
			return out, nil
		}
		got, err := readHashes(ctx, tx, h.ref.id, missing)
		if err != nil {
			return nil, err
		}
		for i, idx := range missing {
			h.pending[idx] = got[i]
		}
		for i, idx := range indexes {
			out[i] = h.pending[idx]
		}
		return out, nil
	})
}

// placed is an entry with its place in the log, before its gid is known.
type placed struct {
	ref    ctxRef
	event  *cairn.Event
	seq    int64
	gid    int64
	leaf   []byte
	hashes []byte
}

// place gives an entry the next seq of its context and computes its leaf
// and stored hashes.
func (s *Store) place(ctx context.Context, tx pgx.Tx, h *head, en *cairn.Entry) (placed, cairn.Committed, error) {
	seq := h.next
	leaf := en.Leaf.Bytes(seq)
	hashes, err := tlog.StoredHashes(seq, leaf, s.reader(ctx, tx, h))
	if err != nil {
		return placed{}, cairn.Committed{}, fmt.Errorf("stored hashes: %w", err)
	}
	base := tlog.StoredHashIndex(0, seq)
	hb := make([]byte, 0, 32*len(hashes))
	for k, hash := range hashes {
		h.pending[base+int64(k)] = hash
		hb = append(hb, hash[:]...)
	}
	h.next = seq + 1
	return placed{ref: h.ref, event: en.Event, seq: seq, leaf: leaf, hashes: hb},
		cairn.Committed{ID: en.Event.ID, Seq: seq, LeafHash: hashes[0]}, nil
}

// copySource feeds the rows to COPY. The search columns and free-text
// words are derived from each event here, as pgx asks for the row: pgx
// encodes on one goroutine while the connection streams what is already
// encoded, so this work overlaps with PostgreSQL's inserting.
type copySource struct {
	s    *Store
	rows []placed
	i    int
	row  []any
	err  error
}

func (c *copySource) Next() bool {
	if c.i >= len(c.rows) || c.err != nil {
		return false
	}
	p := &c.rows[c.i]
	c.i++
	e := p.event
	id, err := uuid.Parse(e.ID)
	if err != nil {
		c.err = fmt.Errorf("event id: %w", err)
		return false
	}
	var actorType, actorID, actorEmail, targetType, targetID, groupID any
	if a := e.Actor; a != nil {
		actorType, actorID, actorEmail = nullable(a.Type), nullable(a.ID), nullable(a.Email)
	}
	if t := e.Target; t != nil {
		targetType, targetID = nullable(t.Type), nullable(t.ID)
	}
	if g := e.Group; g != nil {
		groupID = nullable(g.ID)
	}
	c.row = append(c.row[:0], p.ref.orgID, p.ref.id, p.seq, p.gid, [16]byte(id), receivedTime(e, c.s.cfg.Now).UTC(),
		e.EventTime.UTC(), e.Action, e.Kind, e.Outcome, actorType, actorID, actorEmail, targetType, targetID, groupID,
		words(e), p.leaf, p.hashes)
	return true
}

func (c *copySource) Values() ([]any, error) { return c.row, nil }

func (c *copySource) Err() error { return c.err }

// replay handles a request carrying an idempotency key that was seen before
// (the head lock, held, orders it after any append that recorded the key).
func (s *Store) replay(ctx context.Context, tx pgx.Tx, ctxID int64, req *cairn.AppendRequest, res *cairn.AppendResult) (bool, error) {
	var hash, rec []byte
	err := tx.QueryRow(ctx, `SELECT request_hash, results FROM idempotency WHERE ctx_id = $1 AND key = $2`,
		ctxID, req.IdempotencyKey).Scan(&hash, &rec)
	if errors.Is(err, pgx.ErrNoRows) {
		return false, nil
	}
	if err != nil {
		return false, dbErr("read idempotency key", err)
	}
	if string(hash) != string(req.RequestHash[:]) {
		res.Err = cairn.Errorf(cairn.EConflict, "idempotency key %q was used with a different request body", req.IdempotencyKey)
		return true, nil
	}
	var committed []cairn.Committed
	if err := json.Unmarshal(rec, &committed); err != nil {
		return false, fmt.Errorf("decode idempotency record: %w", err)
	}
	if len(committed) > 0 {
		seqs := make([]int64, len(committed))
		for i, c := range committed {
			seqs[i] = c.Seq
		}
		leaves, err := readLeafMap(ctx, tx, ctxID, seqs)
		if err != nil {
			return false, err
		}
		for i := range committed {
			leaf, ok := leaves[committed[i].Seq]
			if !ok {
				return false, &cairn.Error{Code: cairn.EIntegrity, Message: fmt.Sprintf("replayed event %d is missing", committed[i].Seq)}
			}
			committed[i].LeafHash = tlog.RecordHash(leaf)
		}
	}
	res.Committed = committed
	res.Replayed = true
	return true, nil
}

func readLeafMap(ctx context.Context, q rowsQuerier, ctxID int64, seqs []int64) (map[int64][]byte, error) {
	rows, err := q.Query(ctx, `SELECT seq, leaf FROM events WHERE ctx_id = $1 AND seq = ANY($2)`, ctxID, seqs)
	if err != nil {
		return nil, dbErr("read leaves", err)
	}
	defer rows.Close()
	out := make(map[int64][]byte, len(seqs))
	for rows.Next() {
		var seq int64
		var leaf []byte
		if err := rows.Scan(&seq, &leaf); err != nil {
			return nil, dbErr("read leaves", err)
		}
		out[seq] = leaf
	}
	return out, dbErr("read leaves", rows.Err())
}

func nullable(s string) any {
	if s == "" {
		return nil
	}
	return s
}
