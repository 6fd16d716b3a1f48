package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"sync"

	"github.com/cairn-audit/cairn"
	"github.com/google/uuid"
	"golang.org/x/mod/sumdb/tlog"
)

const insertEvent = `INSERT INTO events
	(org_id, ctx_id, seq, id, event_time, action, kind, outcome,
	 actor_type, actor_id, actor_email, target_type, target_id, group_id, leaf, hashes)
	VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`

// writeStmts are the statements of every append, prepared once on the
// write connection: prepared in each transaction they were ~5 % of the
// server's CPU with 64 single-event writers, all of it on the committer,
// the one serial section of the write path.
type writeStmts struct {
	event, hash, head, setHead *sql.Stmt
}

func prepareWrites(ctx context.Context, w *sql.DB) (*writeStmts, error) {
	ws := &writeStmts{}
	for _, p := range []struct {
		st  **sql.Stmt
		sql string
	}{
		{&ws.event, insertEvent},
		{&ws.hash, selectHashes},
		{&ws.head, `SELECT size, root FROM contexts WHERE id = ?`},
		{&ws.setHead, `UPDATE contexts SET size = ?, root = ? WHERE id = ?`},
	} {
		st, err := w.PrepareContext(ctx, p.sql)
		if err != nil {
			ws.close()
			return nil, fmt.Errorf("prepare %q: %w", p.sql, err)
		}
		*p.st = st
	}
	return ws, nil
}

func (ws *writeStmts) close() error {
	var errs []error
	for _, st := range []*sql.Stmt{ws.event, ws.hash, ws.head, ws.setHead} {
		if st != nil {
			errs = append(errs, st.Close())
		}
	}
	return errors.Join(errs...)
}

// Append implements cairn.Appender. All requests commit in one transaction
// with one fsync (group commit happens above, in ingest).
func (s *Store) Append(ctx context.Context, reqs []*cairn.AppendRequest) ([]cairn.AppendResult, error) {
	results := make([]cairn.AppendResult, len(reqs))
	if err := s.ix.admit(ctx); err != nil {
		return nil, err
	}
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return nil, s.txErr("begin append", err)
	}
	defer tx.Rollback()

	a := &appender{tx: tx, event: tx.StmtContext(ctx, s.ws.event), hash: tx.StmtContext(ctx, s.ws.hash)}
	heads := map[int64]*head{}
	for i, req := range reqs {
		ref, err := s.resolve(ctx, tx, req.Org, req.Context)
		if err != nil {
			if cairn.ErrorCode(err) == cairn.ENotFound {
				results[i].Err = err
				continue
			}
			return nil, err
		}
		h := heads[ref.id]
		if h == nil {
			h = &head{ctxID: ref.id, pending: map[int64]tlog.Hash{}}
			var root []byte
			if err := tx.StmtContext(ctx, s.ws.head).QueryRowContext(ctx, ref.id).Scan(&h.size, &root); err != nil {
				return nil, fmt.Errorf("read head: %w", err)
			}
			s.frontiers.load(h)
			heads[ref.id] = h
		}
		if req.IdempotencyKey != "" {
			replayed, err := s.replay(ctx, tx, ref.id, req, &results[i])
			if err != nil {
				return nil, err
			}
			if replayed {
				continue
			}
		}
		committed := make([]cairn.Committed, len(req.Entries))
		for j := range req.Entries {
			c, err := a.appendEntry(ctx, ref, h, &req.Entries[j])
			if err != nil {
				return nil, err
			}
			committed[j] = c
		}
		results[i].Committed = committed
		if req.IdempotencyKey != "" {
			rec, _ := json.Marshal(committed)
			if _, err := tx.ExecContext(ctx,
				`INSERT INTO idempotency (ctx_id, key, request_hash, results, created_at) VALUES (?, ?, ?, ?, ?)`,
				ref.id, req.IdempotencyKey, req.RequestHash[:], rec, micros(s.cfg.Now())); err != nil {
				return nil, fmt.Errorf("record idempotency key: %w", err)
			}
		}
	}
	for _, h := range heads {
		if !h.grew {
			continue
		}
		read := a.reader(ctx, h)
		root, err := tlog.TreeHash(h.size, tlog.HashReaderFunc(func(indexes []int64) ([]tlog.Hash, error) {
			h.edge = append(h.edge, indexes...)
			return read.ReadHashes(indexes)
		}))
		if err != nil {
			return nil, fmt.Errorf("tree hash: %w", err)
		}
		if _, err := tx.StmtContext(ctx, s.ws.setHead).ExecContext(ctx, h.size, root[:], h.ctxID); err != nil {
			return nil, fmt.Errorf("update head: %w", err)
		}
	}
	if err := tx.Commit(); err != nil {
		return nil, s.txErr("commit append", err)
	}
	for _, h := range heads {
		if h.grew {
			s.frontiers.store(h)
		}
	}
	s.hashReads.Add(a.hashReads)
	s.wal.committed()
	s.ix.added(a.indexed)
	return results, nil
}

func (s *Store) txErr(what string, err error) error {
	if err == nil {
		return nil
	}
	if busy(err) {
		return &cairn.Error{Code: cairn.EUnavailable, Message: "database is busy", Err: err}
	}
	return fmt.Errorf("%s: %w", what, err)
}

// replay handles a request carrying an idempotency key that was seen before.
func (s *Store) replay(ctx context.Context, tx *sql.Tx, ctxID int64, req *cairn.AppendRequest, res *cairn.AppendResult) (bool, error) {
	var hash, rec []byte
	err := tx.QueryRowContext(ctx, `SELECT request_hash, results FROM idempotency WHERE ctx_id = ? AND key = ?`,
		ctxID, req.IdempotencyKey).Scan(&hash, &rec)
	if errors.Is(err, sql.ErrNoRows) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("read idempotency key: %w", err)
	}
	if string(hash) != string(req.RequestHash[:]) {
		res.Err = cairn.Errorf(cairn.EConflict, "idempotency key %q was used with a different request body", req.IdempotencyKey)
		return true, nil
	}
	var committed []cairn.Committed
	if err := json.Unmarshal(rec, &committed); err != nil {
		return false, fmt.Errorf("decode idempotency record: %w", err)
	}
	for i := range committed {
		var leaf []byte
		if err := tx.QueryRowContext(ctx, `SELECT leaf FROM events WHERE ctx_id = ? AND seq = ?`, ctxID, committed[i].Seq).Scan(&leaf); err != nil {
			return false, fmt.Errorf("read replayed event: %w", err)
		}
		committed[i].LeafHash = tlog.RecordHash(leaf)
	}
	res.Committed = committed
	res.Replayed = true
	return true, nil
}

type appender struct {
	tx           *sql.Tx
	event, hash  *sql.Stmt // hash reads a row's stored hashes
	leaf, hashes []byte
	indexed      []indexItem // for the search index, once committed
	hashReads    int64       // stored hashes read back from the database (tests)
}

// head is a context's tree during the transaction: the committed size plus
// the hashes written so far, which tlog reads before they are committed.
type head struct {
	ctxID   int64
	size    int64
	pending map[int64]tlog.Hash // hashes written or read in this transaction
	grew    bool                // leaves were appended
	edge    []int64             // the stored hash indexes TreeHash read at the new size
}

// frontiers keeps, per context, the hashes of the maximal complete subtrees
// of its committed tree: its right edge, the only stored hashes an append
// reads (tlog.StoredHashes reads the left siblings of the new leaf,
// tlog.TreeHash the subtrees the new size splits into). Without it every
// transaction read ~2·log2(size) hashes back from the database, one query
// each: with 64 single-event writers that was a quarter of the committer's
// CPU, the serial section of the write path.
//
// An entry is used only when its size equals the size the transaction read
// from the database, and stored only after a commit succeeded, so a
// rolled-back or concurrent append can make it stale but never wrong: a
// stored hash never changes once its subtree is complete.
type frontiers struct {
	mu sync.Mutex
	m  map[int64]frontier // by context id
}

type frontier struct {
	size   int64
	hashes map[int64]tlog.Hash // stored hash index → hash
}

// maxFrontiers bounds the cache; past it, it starts over (a context's first
// append after that reads its edge from the database once).
const maxFrontiers = 4096

// load copies the cached edge of h's tree into h.pending when it is the
// edge of h.size.
func (f *frontiers) load(h *head) {
	f.mu.Lock()
	defer f.mu.Unlock()
	e, ok := f.m[h.ctxID]
	if !ok || e.size != h.size {
		return
	}
	for idx, hash := range e.hashes {
		h.pending[idx] = hash
	}
}

// store records the edge of h's new size, after its transaction committed.
func (f *frontiers) store(h *head) {
	edge := make(map[int64]tlog.Hash, len(h.edge))
	for _, idx := range h.edge {
		edge[idx] = h.pending[idx] // TreeHash read each through h.pending
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if e, ok := f.m[h.ctxID]; ok && e.size > h.size {
		return // a later append already stored a newer edge
	}
	if f.m == nil || len(f.m) >= maxFrontiers {
		f.m = make(map[int64]frontier)
	}
	f.m[h.ctxID] = frontier{size: h.size, hashes: edge}
}

func (a *appender) appendEntry(ctx context.Context, ref ctxRef, h *head, en *cairn.Entry) (cairn.Committed, error) {
	e := en.Event
	seq := h.size
	a.leaf = en.Leaf.AppendBytes(a.leaf[:0], seq)
	hashes, err := tlog.StoredHashes(seq, a.leaf, a.reader(ctx, h))
	if err != nil {
		return cairn.Committed{}, fmt.Errorf("stored hashes: %w", err)
	}
	id, err := uuid.Parse(e.ID)
	if err != nil {
		return cairn.Committed{}, fmt.Errorf("event id: %w", err)
	}
	var actorType, actorID, actorEmail, targetType, targetID, groupID any
	if e.Actor != nil {
		actorType, actorID, actorEmail = nullable(e.Actor.Type), nullable(e.Actor.ID), nullable(e.Actor.Email)
	}
	if e.Target != nil {
		targetType, targetID = nullable(e.Target.Type), nullable(e.Target.ID)
	}
	if e.Group != nil {
		groupID = nullable(e.Group.ID)
	}
	base := tlog.StoredHashIndex(0, seq)
	a.hashes = a.hashes[:0]
	for k, hash := range hashes {
		h.pending[base+int64(k)] = hash
		a.hashes = append(a.hashes, hash[:]...)
	}
	res, err := a.event.ExecContext(ctx, ref.orgID, ref.id, seq, id[:], micros(e.EventTime),
		e.Action, e.Kind, e.Outcome, actorType, actorID, actorEmail, targetType, targetID, groupID, a.leaf, a.hashes)
	if err != nil {
		return cairn.Committed{}, fmt.Errorf("insert event: %w", err)
	}
	gid, err := res.LastInsertId()
	if err != nil {
		return cairn.Committed{}, err
	}
	a.indexed = append(a.indexed, indexItem{gid: gid, orgID: ref.orgID, ctxID: ref.id, event: e, leafHash: hashes[0]})
	h.size = seq + 1
	h.grew = true
	return cairn.Committed{ID: e.ID, Seq: seq, LeafHash: hashes[0]}, nil
}

// reader reads stored hashes through the transaction, seeing this
// transaction's own writes first.
func (a *appender) reader(ctx context.Context, h *head) tlog.HashReader {
	return tlog.HashReaderFunc(func(indexes []int64) ([]tlog.Hash, error) {
		out := make([]tlog.Hash, len(indexes))
		for i, idx := range indexes {
			if hash, ok := h.pending[idx]; ok {
				out[i] = hash
				continue
			}
			hash, err := readHash(ctx, a.hash, h.ctxID, idx)
			if err != nil {
				return nil, err
			}
			a.hashReads++
			out[i] = hash
			h.pending[idx] = hash
		}
		return out, nil
	})
}

func nullable(s string) any {
	if s == "" {
		return nil
	}
	return s
}
