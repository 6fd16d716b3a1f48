package postgres

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/cairn-audit/cairn"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"golang.org/x/mod/sumdb/tlog"
)

type rowsQuerier interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
}

// GetEvent implements cairn.Store.
func (s *Store) GetEvent(ctx context.Context, org, context, id string) (*cairn.StoredEvent, error) {
	uid, err := uuid.Parse(id)
	if err != nil {
		return nil, cairn.Errorf(cairn.ENotFound, "event %q not found", id)
	}
	ref, err := s.resolve(ctx, s.pool, org, context)
	if err != nil {
		return nil, err
	}
	e := &cairn.StoredEvent{Org: org, Context: context, ID: uid.String()}
	err = s.pool.QueryRow(ctx, `SELECT gid, seq, leaf FROM events WHERE id = $1 AND ctx_id = $2`, [16]byte(uid), ref.id).
		Scan(&e.Cursor, &e.Seq, &e.Leaf)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, cairn.Errorf(cairn.ENotFound, "event %q not found", id)
	}
	if err != nil {
		return nil, dbErr("get event", err)
	}
	e.LeafHash = tlog.RecordHash(e.Leaf)
	return e, nil
}

// MaxLimit is the largest page SearchEvents returns.
const MaxLimit = 1000

// SearchEvents implements cairn.Store.
//
// One statement, so one snapshot: every filter is a condition on the
// event's columns, the order is gid (the org's commit order, see
// append.go) newest first, and the cursor is a gid bound. The planner picks
// the B-tree whose leading columns match the most selective equality filter
// and walks it in gid order, stopping after the page; free text goes
// through the GIN index of words.
func (s *Store) SearchEvents(ctx context.Context, org string, f cairn.Filter) (*cairn.Page, error) {
	orgID, err := s.orgID(ctx, s.pool, org)
	if err != nil {
		return nil, err
	}
	if f.Limit <= 0 || f.Limit > MaxLimit {
		return nil, cairn.Errorf(cairn.EInvalid, "limit must be between 1 and %d", MaxLimit)
	}
	q, args, err := s.searchQuery(ctx, orgID, org, f)
	if err != nil || q == "" {
		return &cairn.Page{}, err
	}
	// Planned with the values every time (an unnamed statement): a
	// cached generic plan cannot see how narrow a time window or a gid
	// stretch is, and picked a bitmap scan and a sort of the whole window
	// (5 s at 10 million events) where the custom plan walks an index for
	// a millisecond.
	rows, err := s.pool.Query(ctx, q, append([]any{pgx.QueryExecModeExec}, args...)...)
	if err != nil {
		return nil, dbErr("search", err)
	}
	defer rows.Close()
	page := &cairn.Page{}
	var ctxIDs []int64 // of page.Items
	for rows.Next() {
		var e cairn.StoredEvent
		var ctxID int64
		var id [16]byte
		if err := rows.Scan(&e.Cursor, &ctxID, &e.Seq, &id, &e.Leaf); err != nil {
			return nil, dbErr("search", err)
		}
		if len(page.Items) == f.Limit {
			page.Next = page.Items[len(page.Items)-1].Cursor
			break
		}
		e.Org = org
		e.ID = uuid.UUID(id).String()
		e.LeafHash = tlog.RecordHash(e.Leaf)
		page.Items = append(page.Items, &e)
		ctxIDs = append(ctxIDs, ctxID)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, dbErr("search", err)
	}
	// Context names are looked up once the rows have given their
	// connection back: a lookup that misses the cache takes a connection
	// of its own, and searches holding every connection of the pool while
	// they wait for one would wait for ever (TestSearchWithEveryConnBusy).
	for i, e := range page.Items {
		if e.Context, err = s.contextName(ctx, ctxIDs[i]); err != nil {
			return nil, err
		}
	}
	return page, nil
}

// searchQuery builds the SQL of a search. An empty query means nothing can
// match (an unknown context, a text query without words).
func (s *Store) searchQuery(ctx context.Context, orgID int64, org string, f cairn.Filter) (string, []any, error) {
	var where []string
	var args []any
	add := func(clause string, a any) {
		args = append(args, a)
		where = append(where, strings.ReplaceAll(clause, "?", "$"+strconv.Itoa(len(args))))
	}
	// addN adds a clause with several placeholders, numbered in order.
	addN := func(clause string, a ...any) {
		var b strings.Builder
		for _, r := range clause {
			if r == '?' {
				args = append(args, a[0])
				a = a[1:]
				b.WriteString("$" + strconv.Itoa(len(args)))
				continue
			}
			b.WriteRune(r)
		}
		where = append(where, b.String())
	}
	add("e.org_id = ?", orgID)
	if f.Context != "" {
		ref, err := s.resolve(ctx, s.pool, org, f.Context)
		if cairn.ErrorCode(err) == cairn.ENotFound {
			return "", nil, nil
		}
		if err != nil {
			return "", nil, err
		}
		add("e.ctx_id = ?", ref.id)
	}
	if f.Action != "" {
		add("e.action = ?", f.Action)
	}
	if f.ActionPrefix != "" {
		// A range the action index can use, then the exact test.
		add("e.action >= ?", f.ActionPrefix)
		add("e.action < ?", f.ActionPrefix+"\U0010FFFF")
		add("starts_with(e.action, ?)", f.ActionPrefix)
	}
	if f.Outcome == cairn.OutcomeFailure {
		// A literal: the partial index of failures applies to any plan.
		where = append(where, "e.outcome = 'failure'")
	} else if f.Outcome != "" {
		add("e.outcome = ?", f.Outcome)
	}
	for _, c := range []struct{ col, val string }{
		{"e.kind", f.Kind},
		{"e.actor_id", f.ActorID}, {"e.actor_type", f.ActorType}, {"e.actor_email", f.ActorEmail},
		{"e.target_type", f.TargetType}, {"e.target_id", f.TargetID}, {"e.group_id", f.GroupID},
	} {
		if c.val != "" {
			add(c.col+" = ?", c.val)
		}
	}
	if f.GroupPrefix != "" {
		p := strings.TrimRight(f.GroupPrefix, "/")
		if p == "" {
			return "", nil, nil
		}
		clause, a := groupClause(nil, []string{p})
		addN(clause, a...)
	}
	if f.SkipBuiltin && f.Context != cairn.BuiltinContext {
		ref, err := s.resolve(ctx, s.pool, org, cairn.BuiltinContext)
		if err != nil && cairn.ErrorCode(err) != cairn.ENotFound {
			return "", nil, err
		}
		if err == nil {
			add("e.ctx_id <> ?", ref.id)
		}
	}
	if f.Scopes != nil {
		clause, a, err := s.scopeClause(ctx, org, f.Scopes)
		if err != nil || clause == "" {
			return "", nil, err
		}
		addN(clause, a...)
	}
	if !f.Since.IsZero() {
		add("e.event_time >= ?", f.Since.UTC())
	}
	if !f.Until.IsZero() {
		add("e.event_time < ?", f.Until.UTC())
	}
	if !f.Since.IsZero() || !f.Until.IsZero() {
		if !f.Until.IsZero() && !f.Until.After(f.Since) {
			return "", nil, nil
		}
		// Every event in the window has a gid between the time marks of
		// the window's cover (timemarks.go). Both bounds come from the
		// same snapshot as the rows.
		var conds []string
		conds, args = gidBounds(args, f.Since, f.Until)
		where = append(where, conds...)
	}
	if f.Text != "" {
		tq := textQuery(f.Text)
		if tq == "" {
			return "", nil, nil
		}
		add("e.words @@ ?::tsquery", tq)
	}
	if f.Before > 0 {
		add("e.gid < ?", f.Before)
	}
	args = append(args, f.Limit+1)
	q := "SELECT e.gid, e.ctx_id, e.seq, e.id, e.leaf FROM events e WHERE " + strings.Join(where, " AND ") +
		" ORDER BY e.gid DESC LIMIT $" + strconv.Itoa(len(args))
	return q, args, nil
}

// groupClause is the SQL condition that an event's group id is one of ids
// or lies under one of prefixes at '/' boundaries: equal to the prefix, or
// in the range [p+"/", p+"0") ('0' is the byte after '/'), which the
// events_group index (COLLATE "C", byte order) can walk. "false" if there
// is neither.
func groupClause(ids, prefixes []string) (string, []any) {
	var ors []string
	var args []any
	if len(ids) > 0 {
		ors = append(ors, "e.group_id = ANY(?::text[])")
		args = append(args, ids)
	}
	for _, p := range prefixes {
		p = strings.TrimRight(p, "/")
		if p == "" {
			continue
		}
		ors = append(ors, "(e.group_id = ? OR (e.group_id >= ? AND e.group_id < ?))")
		args = append(args, p, p+"/", p+"0")
	}
	if len(ors) == 0 {
		return "false", nil
	}
	return "(" + strings.Join(ors, " OR ") + ")", args
}

// scopeClause is the SQL condition that at least one of scopes admits an
// event. An empty clause means nothing is admitted (no scopes, or only
// scopes of unknown contexts).
func (s *Store) scopeClause(ctx context.Context, org string, scopes []cairn.ReadScope) (string, []any, error) {
	var ors []string
	var args []any
	for _, sc := range scopes {
		var parts []string
		if len(sc.Contexts) > 0 {
			var ids []string
			for _, name := range sc.Contexts {
				ref, err := s.resolve(ctx, s.pool, org, name)
				if cairn.ErrorCode(err) == cairn.ENotFound {
					continue
				}
				if err != nil {
					return "", nil, err
				}
				ids = append(ids, strconv.FormatInt(ref.id, 10))
			}
			if len(ids) == 0 {
				continue
			}
			parts = append(parts, "e.ctx_id IN ("+strings.Join(ids, ",")+")")
		}
		if sc.Grouped() {
			clause, a := groupClause(sc.Groups, sc.GroupPrefixes)
			parts = append(parts, clause)
			args = append(args, a...)
		}
		if len(parts) == 0 {
			parts = append(parts, "true")
		}
		ors = append(ors, "("+strings.Join(parts, " AND ")+")")
	}
	if len(ors) == 0 {
		return "", nil, nil
	}
	return "(" + strings.Join(ors, " OR ") + ")", args, nil
}

// ReadHashes implements cairn.LogReader.
func (s *Store) ReadHashes(ctx context.Context, org, context string, indexes []int64) ([][32]byte, error) {
	ref, err := s.resolve(ctx, s.pool, org, context)
	if err != nil {
		return nil, err
	}
	hs, err := readHashes(ctx, s.pool, ref.id, indexes)
	if err != nil {
		return nil, err
	}
	out := make([][32]byte, len(hs))
	for i, h := range hs {
		out[i] = h
	}
	return out, nil
}

// readHashes reads stored hashes from the rows of the leaves that
// completed them (see the events.hashes column), one query per 1000 rows.
// ENotFound past the end of the log.
func readHashes(ctx context.Context, q rowsQuerier, ctxID int64, indexes []int64) ([]tlog.Hash, error) {
	type loc struct {
		seq   int64
		level int
	}
	locs := make([]loc, len(indexes))
	seqs := make([]int64, 0, len(indexes))
	for i, idx := range indexes {
		if idx < 0 {
			return nil, cairn.Errorf(cairn.ENotFound, "hash %d not found", idx)
		}
		level, n := tlog.SplitStoredHashIndex(idx)
		locs[i] = loc{seq: (n+1)<<level - 1, level: level}
		seqs = append(seqs, locs[i].seq)
	}
	slices.Sort(seqs)
	seqs = slices.Compact(seqs)
	got := make(map[int64][]byte, len(seqs))
	for chunk := range slices.Chunk(seqs, 1000) {
		rows, err := q.Query(ctx, `SELECT seq, hashes FROM events WHERE ctx_id = $1 AND seq = ANY($2)`, ctxID, chunk)
		if err != nil {
			return nil, dbErr("read hashes", err)
		}
		for rows.Next() {
			var seq int64
			var b []byte
			if err := rows.Scan(&seq, &b); err != nil {
				rows.Close()
				return nil, dbErr("read hashes", err)
			}
			got[seq] = b
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return nil, dbErr("read hashes", err)
		}
	}
	out := make([]tlog.Hash, len(indexes))
	for i, l := range locs {
		b, ok := got[l.seq]
		if !ok {
			return nil, cairn.Errorf(cairn.ENotFound, "hash %d not found", indexes[i])
		}
		if len(b) < (l.level+1)*32 {
			return nil, &cairn.Error{Code: cairn.EIntegrity, Message: fmt.Sprintf("stored hashes of leaf %d are truncated", l.seq)}
		}
		copy(out[i][:], b[l.level*32:])
	}
	return out, nil
}

// ReadLeaves implements cairn.LogReader.
func (s *Store) ReadLeaves(ctx context.Context, org, context string, start, end int64) ([][]byte, error) {
	ref, err := s.resolve(ctx, s.pool, org, context)
	if err != nil {
		return nil, err
	}
	if start < 0 || end < start {
		return nil, cairn.Errorf(cairn.EInvalid, "bad range [%d, %d)", start, end)
	}
	rows, err := s.pool.Query(ctx, `SELECT seq, leaf FROM events WHERE ctx_id = $1 AND seq >= $2 AND seq < $3 ORDER BY seq`,
		ref.id, start, end)
	if err != nil {
		return nil, dbErr("read leaves", err)
	}
	defer rows.Close()
	out := make([][]byte, 0, min(end-start, 1<<16))
	for rows.Next() {
		var seq int64
		var leaf []byte
		if err := rows.Scan(&seq, &leaf); err != nil {
			return nil, dbErr("read leaves", err)
		}
		if seq != start+int64(len(out)) {
			return nil, &cairn.Error{Code: cairn.EIntegrity, Message: fmt.Sprintf("leaf %d is missing", start+int64(len(out)))}
		}
		out = append(out, leaf)
	}
	if err := rows.Err(); err != nil {
		return nil, dbErr("read leaves", err)
	}
	if int64(len(out)) != end-start {
		return nil, cairn.Errorf(cairn.ENotFound, "leaves [%d, %d) not found (log has %d)", start, end, start+int64(len(out)))
	}
	return out, nil
}

// LeafIndex implements cairn.LogReader. The schema keeps no index of leaf
// hashes, so this walks the context's rows in sequence order comparing the
// level-0 stored hash: linear in size, as the contract allows.
func (s *Store) LeafIndex(ctx context.Context, org, context string, hash [32]byte, size int64) (int64, error) {
	if size < 0 {
		return 0, cairn.Errorf(cairn.EInvalid, "tree size %d is negative", size)
	}
	ref, err := s.resolve(ctx, s.pool, org, context)
	if err != nil {
		return 0, err
	}
	var seq int64
	err = s.pool.QueryRow(ctx, `SELECT seq FROM events WHERE ctx_id = $1 AND seq < $2 AND substring(hashes FROM 1 FOR 32) = $3
		ORDER BY seq LIMIT 1`, ref.id, size, hash[:]).Scan(&seq)
	if errors.Is(err, pgx.ErrNoRows) {
		return 0, cairn.Errorf(cairn.ENotFound, "no leaf with this hash in the first %d leaves", size)
	}
	if err != nil {
		return 0, dbErr("find leaf hash", err)
	}
	return seq, nil
}
