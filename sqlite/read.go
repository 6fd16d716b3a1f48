package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"

	"github.com/cairn-audit/cairn"
	"github.com/google/uuid"
	"golang.org/x/mod/sumdb/tlog"
)

// GetEvent implements cairn.Store.
func (s *Store) GetEvent(ctx context.Context, org, context, id string) (*cairn.StoredEvent, error) {
	uid, err := uuid.Parse(id)
	if err != nil {
		return nil, cairn.Errorf(cairn.ENotFound, "event %q not found", id)
	}
	ref, err := s.resolve(ctx, s.r, org, context)
	if err != nil {
		return nil, err
	}
	e := &cairn.StoredEvent{Org: org, Context: context, ID: uid.String()}
	err = s.r.QueryRowContext(ctx, `SELECT gid, seq, leaf FROM events WHERE id = ? AND ctx_id = ?`, uid[:], ref.id).
		Scan(&e.Cursor, &e.Seq, &e.Leaf)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, cairn.Errorf(cairn.ENotFound, "event %q not found", id)
	}
	if err != nil {
		return nil, fmt.Errorf("get event: %w", err)
	}
	e.LeafHash = tlog.RecordHash(e.Leaf)
	return e, nil
}

// MaxLimit is the largest page SearchEvents returns.
const MaxLimit = 1000

// SearchEvents implements cairn.Store.
func (s *Store) SearchEvents(ctx context.Context, org string, f cairn.Filter) (*cairn.Page, error) {
	orgID, err := s.orgID(ctx, s.r, org)
	if err != nil {
		return nil, err
	}
	if f.Limit <= 0 || f.Limit > MaxLimit {
		return nil, cairn.Errorf(cairn.EInvalid, "limit must be between 1 and %d", MaxLimit)
	}
	p, err := s.searchPlan(ctx, orgID, org, f)
	if err != nil || p == nil {
		return &cairn.Page{}, err
	}
	if p.text {
		if s.ix == nil {
			return nil, cairn.Errorf(cairn.EUnavailable, "free-text search needs the search index, which a read-only store does not open")
		}
		if err := s.ix.caughtUp(ctx); err != nil {
			return nil, err
		}
	}
	// One read transaction: the watermark, the tail above it and the index
	// below it are one snapshot (indexer.go).
	tx, err := s.r.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return nil, fmt.Errorf("search: %w", err)
	}
	defer s.prepareStmts(ctx) // after the rollback: it needs a connection
	defer tx.Rollback()
	var queries []searchQuery
	cut := false // the tail walk stops short of the index (a rebuild)
	var w int64  // the index's watermark; 0: not searched
	if p.terms.empty() {
		queries = []searchQuery{p.walk()}
	} else {
		if s.ix != nil {
			if err := tx.QueryRowContext(ctx, `SELECT indexed FROM ix.state WHERE id = 0`).Scan(&w); err != nil {
				return nil, fmt.Errorf("search: read index watermark: %w", err)
			}
		}
		floor := w
		if !p.text {
			floor = s.tailFloor(w, p.before)
			queries = append(queries, p.tail(floor))
		}
		// Below a cut tail lie events neither walked nor indexed: the
		// index's answers would skip them.
		if cut = floor > w; cut {
			w = 0
		}
	}
	page := &cairn.Page{}
	for _, q := range queries {
		if err := s.searchRows(ctx, tx, q, p, org, page); err != nil || page.Next != 0 {
			return page, err
		}
	}
	if w > 0 {
		if err := s.searchIndex(ctx, tx, p, w, org, page); err != nil {
			return nil, err
		}
	}
	if cut {
		if len(page.Items) < p.limit {
			return nil, cairn.Errorf(cairn.EUnavailable, "the search index is being built, and the newest %d events it does not hold yet have fewer than %d matches; narrow the search or retry as it catches up", maxTailWalk, p.limit)
		}
		// More may match below the walked events: the next page looks.
		page.Next = page.Items[len(page.Items)-1].Cursor
	}
	return page, nil
}

// maxTailWalk is the most events of the unindexed tail a search walks.
// Appends keep the tail below maxIndexLag, so only an index working
// through a backlog (a rebuild) has a longer one: walking all of it for a
// rare filter took minutes at 10 M events, holding a reader and slowing
// the rebuild. A search walks the newest maxTailWalk and is answered if
// they fill its page (a listing without filters, a common action), and
// refused until the index is closer if not; a variable for tests.
var maxTailWalk int64 = 4 * maxIndexLag

// tailFloor is the gid above which a search walks the unindexed tail:
// the index's watermark w, or, when the tail below the cursor is longer
// than maxTailWalk, the gid maxTailWalk below its top.
func (s *Store) tailFloor(w, before int64) int64 {
	if s.ix == nil {
		return w
	}
	_, top := s.ix.watermark()
	if before > 0 {
		top = min(top, before-1)
	}
	return max(w, top-maxTailWalk)
}

// maxSearchStmts bounds the prepared search statements kept: one per SQL
// shape (which filters a search has; values are parameters), so a few dozen
// in practice; shapes past the bound are prepared per search.
const maxSearchStmts = 256

// searchStmt returns the prepared statement of a search's SQL, or nil if
// it has none yet (or is past maxSearchStmts): the search then prepares the
// SQL on its own transaction, and prepareStmts prepares it for the searches
// after. Preparing on the pool takes a connection of its own, and a search
// waiting for one while it holds another waits for ever once searches hold
// them all (TestSearchWithEveryReaderBusy). Preparing was ~8 % of a
// search's CPU at 10 M events; database/sql keeps each statement prepared
// on every read connection that has run it.
func (s *Store) searchStmt(query string) *sql.Stmt {
	s.mu.RLock()
	st, ok := s.stmts[query]
	s.mu.RUnlock()
	if ok {
		return st
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if st, ok := s.stmts[query]; ok {
		return st
	}
	if len(s.stmts)+len(s.unprepared) < maxSearchStmts {
		if s.unprepared == nil {
			s.unprepared = map[string]struct{}{}
		}
		s.unprepared[query] = struct{}{}
	}
	return nil
}

// prepareStmts prepares the statements searches asked searchStmt for and
// did not find. Its caller holds no read connection. A statement that
// does not prepare is left to the next search, which prepares it on its
// own transaction and reports the error.
func (s *Store) prepareStmts(ctx context.Context) {
	s.mu.RLock()
	none := len(s.unprepared) == 0
	s.mu.RUnlock()
	if none {
		return
	}
	s.mu.Lock()
	queries := slices.Collect(maps.Keys(s.unprepared))
	clear(s.unprepared)
	s.mu.Unlock()
	for _, q := range queries {
		st, err := s.r.PrepareContext(ctx, q)
		if err != nil {
			continue
		}
		s.mu.Lock()
		if _, ok := s.stmts[q]; ok || len(s.stmts) >= maxSearchStmts {
			st.Close()
		} else {
			if s.stmts == nil {
				s.stmts = map[string]*sql.Stmt{}
			}
			s.stmts[q] = st
		}
		s.mu.Unlock()
	}
}

// searchRows runs one query of a search, adding its rows to page; when the
// page is full and another row exists, it sets page.Next.
func (s *Store) searchRows(ctx context.Context, tx *sql.Tx, q searchQuery, p *searchPlan, org string, page *cairn.Page) error {
	args := append(q.args, p.limit+1-len(page.Items))
	var rows *sql.Rows
	var err error
	if st := s.searchStmt(q.sql); st != nil {
		rows, err = tx.StmtContext(ctx, st).QueryContext(ctx, args...)
	} else {
		rows, err = tx.QueryContext(ctx, q.sql, args...)
	}
	if err != nil {
		return fmt.Errorf("search: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var e cairn.StoredEvent
		var ctxID int64
		var id []byte
		if err := rows.Scan(&e.Cursor, &ctxID, &e.Seq, &id, &e.Leaf); err != nil {
			return err
		}
		if len(page.Items) == p.limit {
			page.Next = page.Items[len(page.Items)-1].Cursor
			return nil
		}
		e.Org = org
		if e.Context, err = s.contextName(ctx, tx, ctxID); err != nil {
			return err
		}
		u, err := uuid.FromBytes(id)
		if err != nil {
			return fmt.Errorf("stored event id: %w", err)
		}
		e.ID = u.String()
		e.LeafHash = tlog.RecordHash(e.Leaf)
		page.Items = append(page.Items, &e)
	}
	return rows.Err()
}

// A searchPlan is a search as SQL conditions on the event's columns plus,
// when any filter has index terms (see index.go), the terms.
type searchPlan struct {
	where  []string // conditions on events e, every filter
	args   []any
	terms  termQuery // the index's terms; empty: no filter has any
	text   bool      // free text, which only the index can decide
	before int64     // the cursor: gids below it
	limit  int
}

const searchColumns = "SELECT e.gid, e.ctx_id, e.seq, e.id, e.leaf FROM "

// A searchQuery is one SQL query of a search; its last parameter is the
// number of rows to read.
type searchQuery struct {
	sql  string
	args []any
}

// query is the SQL of a search; order is its ORDER BY, newest first.
func (p *searchPlan) query(from string, extra []string, extraArgs []any, order string) searchQuery {
	where := append(slices.Clip(p.where), extra...)
	return searchQuery{
		sql:  searchColumns + from + " WHERE " + strings.Join(where, " AND ") + " ORDER BY " + order + " LIMIT ?",
		args: append(slices.Clip(p.args), extraArgs...),
	}
}

// walk walks the table backwards by gid, filtering on the columns.
func (p *searchPlan) walk() searchQuery {
	var extra []string
	var args []any
	if p.before > 0 {
		extra, args = append(extra, "e.gid < ?"), append(args, p.before)
	}
	return p.query("events e NOT INDEXED", extra, args, "e.gid DESC")
}

// tail walks the events above the index watermark w, newest first.
func (p *searchPlan) tail(w int64) searchQuery {
	extra, args := []string{"e.gid > ?"}, []any{w}
	if p.before > 0 {
		extra, args = append(extra, "e.gid < ?"), append(args, p.before)
	}
	return p.query("events e NOT INDEXED", extra, args, "e.gid DESC")
}

// searchPlan builds the plan of a search; nil means nothing can match (an
// unknown context, a text query without words).
//
// Every filter is a condition on the event's columns, so the table walk and
// the tail need nothing else; the index's terms only find candidates
// faster (hashed terms can collide). Free text is the exception: it has no
// column, and only the index decides it. Nothing is sorted: every query
// walks gids newest first.
func (s *Store) searchPlan(ctx context.Context, orgID int64, org string, f cairn.Filter) (*searchPlan, error) {
	p := &searchPlan{before: f.Before, limit: f.Limit}
	add := func(clause string, a ...any) {
		p.where = append(p.where, clause)
		p.args = append(p.args, a...)
	}
	var match termQuery
	// selective: a term whose posting list is short (one actor, target,
	// group, or words of text), see the built-in context below.
	selective := false
	key := func(field byte, v string) {
		match.and(token(orgID, field, v))
		switch field {
		case tokActorID, tokActorEmail, tokTargetID, tokTarget, tokGroup:
			selective = true
		}
	}
	add("e.org_id = ?", orgID)
	if f.Context != "" {
		ref, err := s.resolve(ctx, s.r, org, f.Context)
		if cairn.ErrorCode(err) == cairn.ENotFound {
			return nil, nil
		}
		if err != nil {
			return nil, err
		}
		add("e.ctx_id = ?", ref.id)
		key(tokContext, strconv.FormatInt(ref.id, 10))
	}
	if f.Action != "" {
		add("e.action = ?", f.Action)
		key(tokAction, f.Action)
	}
	if f.ActionPrefix != "" {
		// A range instead of LIKE, which would need escaping.
		add("e.action >= ? AND e.action < ?", f.ActionPrefix, f.ActionPrefix+"\U0010FFFF")
		if prefixBoundary(f.ActionPrefix) {
			key(tokActionPrefix, f.ActionPrefix)
		}
	}
	for _, c := range []struct {
		col   string
		field byte
		val   string
	}{
		{"e.kind", tokKind, f.Kind}, {"e.outcome", tokOutcome, f.Outcome},
		{"e.actor_id", tokActorID, f.ActorID}, {"e.actor_type", tokActorType, f.ActorType},
		{"e.actor_email", tokActorEmail, f.ActorEmail},
		{"e.target_type", tokTargetType, f.TargetType}, {"e.target_id", tokTargetID, f.TargetID},
		{"e.group_id", tokGroup, f.GroupID},
	} {
		if c.val == "" {
			continue
		}
		add(c.col+" = ?", c.val)
		if (c.field == tokTargetType || c.field == tokTargetID) && f.TargetType != "" && f.TargetID != "" {
			continue // the target term below implies both
		}
		key(c.field, c.val)
	}
	if f.TargetType != "" && f.TargetID != "" {
		// One term, not three: ANDed with a type's posting list (a fifth
		// of the log) the index walked that list to intersect it.
		key(tokTarget, f.TargetType+"\x00"+f.TargetID)
	}
	if f.GroupPrefix != "" {
		p := strings.TrimRight(f.GroupPrefix, "/")
		if p == "" {
			return nil, nil
		}
		clause, a := groupClause(nil, []string{p})
		add(clause, a...)
		match.anyOf(refs(groupTokens(orgID, nil, []string{p})))
		selective = true
	}
	if f.SkipBuiltin && f.Context != cairn.BuiltinContext {
		ref, err := s.resolve(ctx, s.r, org, cairn.BuiltinContext)
		if err != nil && cairn.ErrorCode(err) != cairn.ENotFound {
			return nil, err
		}
		if err == nil {
			add("e.ctx_id != ?", ref.id)
		}
	}
	if f.Scopes != nil {
		clause, a, toks, err := s.scopeClause(ctx, orgID, org, f.Scopes)
		if err != nil || clause == "" {
			return nil, err
		}
		add(clause, a...)
		if len(toks) > 0 {
			match.anyOf(refs(toks))
		}
	}
	if !f.Since.IsZero() {
		add("e.event_time >= ?", micros(f.Since))
	}
	if !f.Until.IsZero() {
		add("e.event_time < ?", micros(f.Until))
	}
	if !f.Since.IsZero() && !f.Until.IsZero() {
		if toks := windowTokens(orgID, f.Since, f.Until); toks != nil {
			match.anyOf(toks)
		}
	}
	if f.Text != "" {
		words := textTerms(orgID, f.Text)
		if len(words) == 0 {
			return nil, nil
		}
		for _, w := range words {
			match.and(w)
		}
		p.text = true
		selective = true
	}
	// Leaving the built-in context out is a column condition, so without
	// this term the index would yield its events and each would be read and
	// rejected. They are the newest of all (every read is recorded there),
	// and they share kind, outcome and action values with the rest: at 10 M
	// events, kind=read&outcome=success walked 40,000 read records, 120–270
	// ms. The term lists nearly every event, so ANDing it with a short list
	// costs more than it saves (a trail: 3.4 → 11.5 ms); only searches
	// without a selective term get it.
	if f.SkipBuiltin && f.Context == "" && !selective {
		match.and(token(orgID, tokNotBuiltin, "1"))
	}
	p.terms = match
	return p, nil
}

// groupClause is the SQL condition that an event's group id is one of ids
// or lies under one of prefixes (at '/' boundaries: '0' is the byte after
// '/').
func groupClause(ids, prefixes []string) (string, []any) {
	var ors []string
	var args []any
	if len(ids) > 0 {
		ors = append(ors, "e.group_id IN ("+strings.TrimSuffix(strings.Repeat("?,", len(ids)), ",")+")")
		for _, g := range ids {
			args = append(args, g)
		}
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
		return "0", nil
	}
	return "(" + strings.Join(ors, " OR ") + ")", args
}

// scopeClause is the SQL condition that at least one of scopes admits an
// event, and, when that can be said with index terms (one scope), the
// terms of which the event must carry one. An empty clause means nothing
// is admitted.
func (s *Store) scopeClause(ctx context.Context, orgID int64, org string, scopes []cairn.ReadScope) (string, []any, []int64, error) {
	var ors []string
	var args []any
	var toks []int64
	for _, sc := range scopes {
		var parts []string
		var ids []string
		if len(sc.Contexts) > 0 {
			for _, name := range sc.Contexts {
				ref, err := s.resolve(ctx, s.r, org, name)
				if cairn.ErrorCode(err) == cairn.ENotFound {
					continue
				}
				if err != nil {
					return "", nil, nil, err
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
			parts = append(parts, "1")
		}
		ors = append(ors, "("+strings.Join(parts, " AND ")+")")
		if len(scopes) == 1 {
			if sc.Grouped() {
				toks = groupTokens(orgID, sc.Groups, sc.GroupPrefixes)
			} else {
				for _, id := range ids {
					toks = append(toks, token(orgID, tokContext, id))
				}
			}
		}
	}
	if len(ors) == 0 {
		return "", nil, nil, nil
	}
	return "(" + strings.Join(ors, " OR ") + ")", args, toks, nil
}

// ReadHashes implements cairn.LogReader.
func (s *Store) ReadHashes(ctx context.Context, org, context string, indexes []int64) ([][32]byte, error) {
	ref, err := s.resolve(ctx, s.r, org, context)
	if err != nil {
		return nil, err
	}
	// Each stored hash lives in the row of the leaf that completed it (see
	// events.hashes). A tile or a proof asks for up to hundreds of them:
	// fetch their rows with a few IN queries instead of one query each.
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
	rows := make(map[int64][]byte, len(seqs))
	for chunk := range slices.Chunk(seqs, 500) {
		if err := s.readHashRows(ctx, ref.id, chunk, rows); err != nil {
			return nil, err
		}
	}
	out := make([][32]byte, len(indexes))
	for i, l := range locs {
		b, ok := rows[l.seq]
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

// readHashRows reads the hashes column of the rows with the given seqs.
func (s *Store) readHashRows(ctx context.Context, ctxID int64, seqs []int64, into map[int64][]byte) error {
	args := make([]any, 0, len(seqs)+1)
	args = append(args, ctxID)
	for _, q := range seqs {
		args = append(args, q)
	}
	q := `SELECT seq, hashes FROM events WHERE ctx_id = ? AND seq IN (?` + strings.Repeat(`, ?`, len(seqs)-1) + `)`
	rows, err := s.r.QueryContext(ctx, q, args...)
	if err != nil {
		return fmt.Errorf("read hashes: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var seq int64
		var b []byte
		if err := rows.Scan(&seq, &b); err != nil {
			return fmt.Errorf("read hashes: %w", err)
		}
		into[seq] = b
	}
	return rows.Err()
}

const selectHashes = `SELECT hashes FROM events WHERE ctx_id = ? AND seq = ?`

// readHash reads stored hash index idx from the row of the record that
// wrote it (see the events.hashes column). ENotFound past the end of the log.
func readHash(ctx context.Context, stmt *sql.Stmt, ctxID, idx int64) (tlog.Hash, error) {
	var h tlog.Hash
	if idx < 0 {
		return h, cairn.Errorf(cairn.ENotFound, "hash %d not found", idx)
	}
	level, n := tlog.SplitStoredHashIndex(idx)
	seq := (n+1)<<level - 1
	var b []byte
	err := stmt.QueryRowContext(ctx, ctxID, seq).Scan(&b)
	if errors.Is(err, sql.ErrNoRows) {
		return h, cairn.Errorf(cairn.ENotFound, "hash %d not found", idx)
	}
	if err != nil {
		return h, fmt.Errorf("read hash %d: %w", idx, err)
	}
	if len(b) < (level+1)*32 {
		return h, &cairn.Error{Code: cairn.EIntegrity, Message: fmt.Sprintf("stored hashes of leaf %d are truncated", seq)}
	}
	copy(h[:], b[level*32:])
	return h, nil
}

// ReadLeaves implements cairn.LogReader.
func (s *Store) ReadLeaves(ctx context.Context, org, context string, start, end int64) ([][]byte, error) {
	ref, err := s.resolve(ctx, s.r, org, context)
	if err != nil {
		return nil, err
	}
	if start < 0 || end < start {
		return nil, cairn.Errorf(cairn.EInvalid, "bad range [%d, %d)", start, end)
	}
	rows, err := s.r.QueryContext(ctx, `SELECT seq, leaf FROM events WHERE ctx_id = ? AND seq >= ? AND seq < ? ORDER BY seq`,
		ref.id, start, end)
	if err != nil {
		return nil, fmt.Errorf("read leaves: %w", err)
	}
	defer rows.Close()
	out := make([][]byte, 0, end-start)
	for rows.Next() {
		var seq int64
		var leaf []byte
		if err := rows.Scan(&seq, &leaf); err != nil {
			return nil, err
		}
		if seq != start+int64(len(out)) {
			return nil, &cairn.Error{Code: cairn.EIntegrity, Message: fmt.Sprintf("leaf %d is missing", start+int64(len(out)))}
		}
		out = append(out, leaf)
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	if int64(len(out)) != end-start {
		return nil, cairn.Errorf(cairn.ENotFound, "leaves [%d, %d) not found (log has %d)", start, end, start+int64(len(out)))
	}
	return out, nil
}

// LatestCheckpoint implements cairn.LogReader.
func (s *Store) LatestCheckpoint(ctx context.Context, org, context string) (*cairn.Checkpoint, error) {
	ref, err := s.resolve(ctx, s.r, org, context)
	if err != nil {
		return nil, err
	}
	var cp cairn.Checkpoint
	var root []byte
	var signed int64
	err = s.r.QueryRowContext(ctx, `SELECT size, root, note, signed_at FROM checkpoints WHERE ctx_id = ? ORDER BY size DESC LIMIT 1`, ref.id).
		Scan(&cp.Size, &root, &cp.Note, &signed)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, cairn.Errorf(cairn.ENotFound, "no checkpoint signed yet for %s/%s", org, context)
	}
	if err != nil {
		return nil, fmt.Errorf("latest checkpoint: %w", err)
	}
	copy(cp.Root[:], root)
	cp.SignedAt = fromMicros(signed)
	return &cp, nil
}

// AddCheckpoint implements cairn.LogReader.
func (s *Store) AddCheckpoint(ctx context.Context, org, context string, cp *cairn.Checkpoint) error {
	ref, err := s.resolve(ctx, s.r, org, context)
	if err != nil {
		return err
	}
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return s.txErr("begin", err)
	}
	defer tx.Rollback()
	var latest int64
	var root []byte
	err = tx.QueryRowContext(ctx, `SELECT size, root FROM checkpoints WHERE ctx_id = ? ORDER BY size DESC LIMIT 1`, ref.id).Scan(&latest, &root)
	switch {
	case errors.Is(err, sql.ErrNoRows):
	case err != nil:
		return fmt.Errorf("latest checkpoint: %w", err)
	case latest > cp.Size:
		return cairn.Errorf(cairn.EConflict, "a checkpoint of size %d exists; refusing size %d", latest, cp.Size)
	case latest == cp.Size && string(root) != string(cp.Root[:]):
		return &cairn.Error{Code: cairn.EIntegrity, Message: fmt.Sprintf("a checkpoint of size %d with another root exists", latest)}
	case latest == cp.Size:
		return cairn.Errorf(cairn.EConflict, "a checkpoint of size %d exists", latest)
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO checkpoints (ctx_id, size, root, note, signed_at) VALUES (?, ?, ?, ?, ?)`,
		ref.id, cp.Size, cp.Root[:], cp.Note, micros(cp.SignedAt)); err != nil {
		return fmt.Errorf("insert checkpoint: %w", err)
	}
	if _, err := tx.ExecContext(ctx, `UPDATE contexts SET signed_size = ? WHERE id = ?`, cp.Size, ref.id); err != nil {
		return fmt.Errorf("update signed size: %w", err)
	}
	return s.txErr("commit checkpoint", tx.Commit())
}

// UnsignedHeads implements cairn.LogReader.
func (s *Store) UnsignedHeads(ctx context.Context) ([]cairn.Head, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT o.name, c.name, c.size, c.root FROM contexts c JOIN orgs o ON o.id = c.org_id
		WHERE c.size != c.signed_size`)
	if err != nil {
		return nil, fmt.Errorf("unsigned heads: %w", err)
	}
	defer rows.Close()
	var out []cairn.Head
	for rows.Next() {
		var h cairn.Head
		var root []byte
		if err := rows.Scan(&h.Org, &h.Context, &h.Size, &root); err != nil {
			return nil, err
		}
		copy(h.Root[:], root)
		out = append(out, h)
	}
	return out, rows.Err()
}
