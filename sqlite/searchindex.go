package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"strconv"

	"github.com/cairn-audit/cairn"
)

// Searching the index (postings.go): from a plan's terms to the events
// that match, through cursors over the live segments of a read snapshot.

// searchIndex adds to page the indexed events (gid ≤ w) that match p,
// newest first: the index's cursor yields candidates, and a query reads
// those that pass every filter's column condition, in batches that grow
// from a page's worth.
func (s *Store) searchIndex(ctx context.Context, tx *sql.Tx, p *searchPlan, w int64, org string, page *cairn.Page) error {
	cur, err := s.indexCursor(ctx, tx, p.terms)
	if err != nil {
		return err
	}
	upTo := w
	if p.before > 0 {
		upTo = min(w, p.before-1)
	}
	n := p.limit + 1
	var gids []int64
	for page.Next == 0 && upTo > 0 {
		if err := ctx.Err(); err != nil {
			return err
		}
		gids = gids[:0]
		for len(gids) < n && upTo > 0 {
			g, err := cur.next(upTo)
			if err != nil {
				return err
			}
			if g == 0 {
				upTo = 0
				break
			}
			gids = append(gids, g)
			upTo = g - 1
		}
		if len(gids) == 0 {
			break
		}
		if err := s.searchRows(ctx, tx, p.candidates(gids), p, org, page); err != nil {
			return err
		}
		n = min(2*n, maxCandidates)
	}
	return nil
}

// maxCandidates bounds the gids one query of searchIndex checks.
const maxCandidates = 4096

// candidates is the query of the events among gids (descending) that pass
// every filter.
func (p *searchPlan) candidates(gids []int64) searchQuery {
	b := make([]byte, 0, 12*len(gids))
	b = append(b, '[')
	for i, g := range gids {
		if i > 0 {
			b = append(b, ',')
		}
		b = strconv.AppendInt(b, g, 10)
	}
	b = append(b, ']')
	return p.query("events e NOT INDEXED", []string{"e.gid IN (SELECT value FROM json_each(?))"}, []any{string(b)}, "e.gid DESC")
}

// searchProbe reads the page of a segment that holds the first entry at or
// after a key (postings.go).
const searchProbe = `SELECT data FROM ix.pages WHERE seg = ? AND (term, ngid) >= (?, ?) ORDER BY term, ngid LIMIT 1`

// searchPage reads the page of a key.
const searchPage = `SELECT data FROM ix.pages WHERE seg = ? AND term = ? AND ngid = ?`

// indexCursor is the cursor of q over the live segments in tx's snapshot.
func (s *Store) indexCursor(ctx context.Context, tx *sql.Tx, q termQuery) (cursor, error) {
	rows, err := tx.QueryContext(ctx, `SELECT id, lo, hi, tmin, tmax FROM ix.segments WHERE state = 1 ORDER BY hi DESC`)
	if err != nil {
		return nil, fmt.Errorf("search: read index segments: %w", err)
	}
	var segs []segment
	for rows.Next() {
		var sg segment
		if err := rows.Scan(&sg.id, &sg.lo, &sg.hi, &sg.tmin, &sg.tmax); err != nil {
			rows.Close()
			return nil, fmt.Errorf("search: read index segments: %w", err)
		}
		segs = append(segs, sg)
	}
	err = rows.Err()
	rows.Close()
	if err != nil {
		return nil, fmt.Errorf("search: read index segments: %w", err)
	}
	var stmts [2]*sql.Stmt
	for i, q := range []string{searchProbe, searchPage} {
		if st := s.searchStmt(q); st != nil {
			stmts[i] = tx.StmtContext(ctx, st)
		} else if stmts[i], err = tx.PrepareContext(ctx, q); err != nil {
			return nil, fmt.Errorf("search: %w", err)
		}
	}
	var pages *segPages
	if s.ix != nil {
		pages = s.ix.pages
	}
	and := make(andCursor, 0, len(q.all))
	for _, any := range q.all {
		ors := make([]cursor, len(any))
		for i, t := range any {
			ors[i] = &termCursor{probe: stmts[0], exact: stmts[1], pages: pages, ctx: ctx, segs: segs, term: t.term, tmin: t.tmin, tmax: t.tmax}
		}
		if len(ors) == 1 {
			and = append(and, ors[0])
		} else {
			and = append(and, newOrCursor(ors))
		}
	}
	if len(and) == 1 {
		return and[0], nil
	}
	return and, nil
}
