package sqlite

import (
	"cmp"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"time"
)

// Merging the index's segments.
//
// Every index transaction writes a segment of level 0, and a search seeks
// each of its terms into every live segment whose gids it still needs and
// whose Bloom filter may hold the term. When a level holds mergeFanout
// segments, the oldest mergeFanout of them are
// merged into one segment of the next level, on a goroutine of its own, so
// that a large merge never holds up indexing (and so appends): the merge
// reads its sources through the log's readers, writes its pages in
// transactions of a few hundred, each taking the index's one write
// connection between the indexer's, and swaps the sources for the result
// in one last transaction. Searches see either the sources or the result.
// The sources' pages are deleted afterwards, a chunk per transaction.
//
// Segments of one level are always adjacent: new segments hold the newest
// gids, and a merge replaces the oldest segments of its level, which lie
// just after (newer than) the segments of the next one. So levels never
// rise from older to newer segments, and a segment of level L holds
// about mergeFanout^L index transactions' events: at 10 M events written
// in transactions of 4,096, four levels. Each level an event climbs
// rewrites it once, so 16 rather than 8 made BenchmarkIndexer 15-25 %
// faster; but bulk ingest, three interleaved pairs, was slower with 16
// (32,900-37,900 against 35,600-41,300 events/s): a merge of 16 large
// segments holds a core for seconds, while the committer waits for one
// (docs/performance.md).
const mergeFanout = 8

// mergeRetry is how long merging pauses after a failed merge.
const mergeRetry = 5 * time.Second

// segBuilder gathers an index transaction's terms. A term's gids form a
// list linked backwards through flat slices, so that gathering allocates
// nothing per term, and the list comes out newest first. Terms are found
// in an open-addressing table of their own: they are hashes already, and
// Go's map was 18 % of the indexer's time in a bulk-ingest profile.
type segBuilder struct {
	slots []int32 // table: 1 + an entry index, 0 when free
	bits  int     // len(slots) = 1 << bits
	keys  []int64 // the terms, in the order first seen
	head  []int32 // per key: its newest entry
	gid   []int64
	prev  []int32 // per entry: the term's next older entry, -1 at the oldest
	terms []int64
}

// find returns the key index of term, adding it if new.
func (b *segBuilder) find(term int64) int32 {
	mask := uint64(len(b.slots) - 1)
	for i := (uint64(term) * 0x9e3779b97f4a7c15) >> (64 - b.bits); ; i = (i + 1) & mask {
		k := b.slots[i]
		if k == 0 {
			b.keys = append(b.keys, term)
			b.head = append(b.head, -1)
			b.slots[i] = int32(len(b.keys))
			return int32(len(b.keys) - 1)
		}
		if b.keys[k-1] == term {
			return k - 1
		}
	}
}

// segment returns the segment of batch (gid ascending), its pages and the
// Bloom filter of its terms.
func (b *segBuilder) segment(batch []indexItem) (segment, []page, bloom) {
	// At most 2 events' worth of distinct terms per slot: ~100 per event.
	bits := 10
	for 1<<bits < 128*len(batch) {
		bits++
	}
	if len(b.slots) < 1<<bits {
		b.slots = make([]int32, 1<<bits)
	} else {
		b.slots = b.slots[:1<<bits]
		clear(b.slots)
	}
	b.bits = bits
	b.keys, b.head, b.gid, b.prev = b.keys[:0], b.head[:0], b.gid[:0], b.prev[:0]
	seg := segment{lo: batch[0].gid, hi: batch[len(batch)-1].gid, tmin: math.MaxInt64, tmax: math.MinInt64, events: int64(len(batch))}
	for _, it := range batch {
		t := micros(it.event.EventTime)
		seg.tmin, seg.tmax = min(seg.tmin, t), max(seg.tmax, t)
		b.terms = eventTerms(b.terms[:0], it.orgID, it.ctxID, it.event, it.leafHash)
		if len(b.keys)+len(b.terms) > len(b.slots)/2 {
			b.grow()
		}
		for _, term := range b.terms {
			k := b.find(term)
			p := b.head[k]
			if p >= 0 && b.gid[p] == it.gid {
				continue // a word the event has twice
			}
			b.head[k] = int32(len(b.gid))
			b.gid = append(b.gid, it.gid)
			b.prev = append(b.prev, p)
		}
	}
	order := make([]int32, len(b.keys))
	for i := range order {
		order[i] = int32(i)
	}
	slices.SortFunc(order, func(i, j int32) int { return cmp.Compare(b.keys[i], b.keys[j]) })
	for _, t := range b.keys {
		if t >= 0 {
			seg.terms++
		}
	}
	bl := newBloom(seg.terms)
	w := newPageWriter()
	for _, k := range order {
		t := b.keys[k]
		if t >= 0 {
			bl.add(t)
		}
		for i := b.head[k]; i >= 0; i = b.prev[i] {
			w.add(t, b.gid[i])
		}
	}
	pages, _ := w.finish()
	return seg, pages, bl
}

// grow doubles the table (events with more terms than the bound above).
func (b *segBuilder) grow() {
	b.bits++
	b.slots = make([]int32, 1<<b.bits)
	mask := uint64(len(b.slots) - 1)
	for k, term := range b.keys {
		i := (uint64(term) * 0x9e3779b97f4a7c15) >> (64 - b.bits)
		for b.slots[i] != 0 {
			i = (i + 1) & mask
		}
		b.slots[i] = int32(k + 1)
	}
}

// readSegments reads an index's segments at open into ix: the live ones
// with their directories and Bloom filters, and the rest, left by a merge
// that did not finish or whose sources were not all deleted yet, to be
// deleted. A live segment that does not decode makes the index stale, so
// that it is rebuilt rather than keeping the server from starting.
func readSegments(ctx context.Context, db *sql.DB, ix *openedIndex) error {
	rows, err := db.QueryContext(ctx, `SELECT id, level, lo, hi, tmin, tmax, events, terms, state, dir, bloom FROM segments ORDER BY lo, id`)
	if err != nil {
		return fmt.Errorf("read segments: %w", err)
	}
	defer rows.Close()
	ix.pages = newSegPages()
	for rows.Next() {
		var s segment
		var state int
		var dir, bl []byte
		if err := rows.Scan(&s.id, &s.level, &s.lo, &s.hi, &s.tmin, &s.tmax, &s.events, &s.terms, &state, &dir, &bl); err != nil {
			return fmt.Errorf("read segments: %w", err)
		}
		if state != 1 {
			ix.dead = append(ix.dead, s.id)
			continue
		}
		keys, err := decodeDir(dir)
		if err != nil {
			return errStaleIndex{fmt.Sprintf("segment %d: %v", s.id, err)}
		}
		terms, err := decodeBloom(bl)
		if err != nil {
			return errStaleIndex{fmt.Sprintf("segment %d: %v", s.id, err)}
		}
		ix.pages.setDir(s.id, segDir{keys, terms})
		ix.segs = append(ix.segs, s)
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("read segments: %w", err)
	}
	return nil
}

// addSegment records a segment the indexer has written, and starts the
// merges that are due.
func (x *indexer) addSegment(s segment) {
	x.segMu.Lock()
	x.segs = append(x.segs, s)
	x.segMu.Unlock()
	x.maybeMerge()
}

// maybeMerge starts a merge for each level that holds mergeFanout segments
// not being merged, unless one runs for that level already.
func (x *indexer) maybeMerge() {
	x.segMu.Lock()
	defer x.segMu.Unlock()
	if x.mergeCtx.Err() != nil || time.Since(x.mergeFailed) < mergeRetry {
		return
	}
	if x.mergingLvl == nil {
		x.mergingLvl = map[int64]bool{}
	}
	// x.segs is oldest first, so each level's oldest segments come first.
	for i := 0; i < len(x.segs); {
		level := x.segs[i].level
		j := i
		for j < len(x.segs) && x.segs[j].level == level {
			j++
		}
		if !x.mergingLvl[level] && j-i >= mergeFanout {
			srcs := slices.Clone(x.segs[i : i+mergeFanout])
			x.mergingLvl[level] = true
			x.merges.Add(1)
			go x.merge(srcs)
		}
		i = j
	}
}

// merge merges srcs (adjacent, oldest first, one level) into one segment.
func (x *indexer) merge(srcs []segment) {
	defer x.merges.Done()
	err := x.runMerge(x.mergeCtx, srcs)
	x.segMu.Lock()
	delete(x.mergingLvl, srcs[0].level)
	if err != nil {
		x.mergeFailed = time.Now()
	}
	x.segMu.Unlock()
	if err != nil {
		if x.mergeCtx.Err() == nil {
			x.logger.Error("search index: merging segments failed; retrying later", "err", err, "retry_in", mergeRetry)
		}
		return
	}
	x.maybeMerge()
}

func (x *indexer) runMerge(ctx context.Context, srcs []segment) (err error) {
	out := segment{level: srcs[0].level + 1, lo: srcs[0].lo, hi: srcs[len(srcs)-1].hi, tmin: math.MaxInt64, tmax: math.MinInt64}
	var terms int64 // at least the result's
	for _, s := range srcs {
		out.tmin, out.tmax, out.events = min(out.tmin, s.tmin), max(out.tmax, s.tmax), out.events+s.events
		terms += s.terms
	}
	bl := newBloom(terms)
	res, err := x.db.ExecContext(ctx, `INSERT INTO segments (level, lo, hi, tmin, tmax, events, terms, state, dir, bloom) VALUES (?, ?, ?, ?, ?, ?, 0, 0, x'', x'')`,
		out.level, out.lo, out.hi, out.tmin, out.tmax, out.events)
	if err != nil {
		return fmt.Errorf("merge: add segment: %w", err)
	}
	if out.id, err = res.LastInsertId(); err != nil {
		return err
	}
	defer func() {
		if err != nil && ctx.Err() == nil {
			x.dropSegments(ctx, []int64{out.id}) // or at the next start
		}
	}()
	// Segments hold disjoint gid ranges: a term's merged list is its lists
	// in the sources, newest source first.
	streams := make([]*pageStream, len(srcs))
	for i, s := range srcs {
		streams[len(srcs)-1-i] = &pageStream{db: x.log, seg: s.id, order: len(srcs) - 1 - i, term: math.MinInt64, ngid: math.MinInt64}
	}
	w := newPageWriter()
	var keys []pageKey
	w.flush = func(ps []page) error {
		keys = append(keys, pageKeys(ps)...)
		return x.writePages(ctx, out.id, ps)
	}
	// A heap of the streams by their next run's term, ties to the newest.
	var h streamHeap
	for _, st := range streams {
		if _, ok, err := st.peek(ctx); err != nil {
			return err
		} else if ok {
			h = append(h, st)
		}
	}
	for i := len(h)/2 - 1; i >= 0; i-- {
		h.down(i)
	}
	for len(h) > 0 {
		st := h[0]
		if t := st.runs[0].term; t >= 0 && (out.terms == 0 || t != w.term) {
			bl.add(t)
			out.terms++
		}
		w.addRun(st.runs[0])
		st.runs = st.runs[1:]
		if _, ok, err := st.peek(ctx); err != nil {
			return err
		} else if !ok {
			h[0] = h[len(h)-1]
			h = h[:len(h)-1]
		}
		h.down(0)
		if w.err != nil {
			return w.err
		}
	}
	pages, err := w.finish()
	if err != nil {
		return err
	}
	if err := x.writePages(ctx, out.id, pages); err != nil {
		return err
	}
	keys = append(keys, pageKeys(pages)...)
	ids := make([]int64, len(srcs))
	for i, s := range srcs {
		ids[i] = s.id
	}
	if err := x.swapSegments(ctx, out, segDir{keys, bl}, ids); err != nil {
		return err
	}
	return x.dropSegments(ctx, ids)
}

// swapSegments makes out live and its sources merged away, in one
// transaction, and in x.segs.
func (x *indexer) swapSegments(ctx context.Context, out segment, dir segDir, srcs []int64) error {
	tx, err := x.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	if _, err := tx.ExecContext(ctx, `UPDATE segments SET state = 1, terms = ?, dir = ?, bloom = ? WHERE id = ?`,
		out.terms, encodeDir(dir.keys), dir.terms.encode(), out.id); err != nil {
		return fmt.Errorf("merge: %w", err)
	}
	if _, err := tx.ExecContext(ctx, `UPDATE segments SET state = 2 WHERE id IN (`+placeholders(len(srcs))+`)`, int64sAny(srcs)...); err != nil {
		return fmt.Errorf("merge: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("merge: %w", err)
	}
	x.walCommitted()
	x.pages.setDir(out.id, dir)
	x.pages.drop(srcs)
	x.segMu.Lock()
	defer x.segMu.Unlock()
	i := slices.IndexFunc(x.segs, func(s segment) bool { return s.id == srcs[0] })
	x.segs = slices.Replace(x.segs, i, i+len(srcs), out)
	x.merged++
	return nil
}

// writePages adds pages to segment seg in one transaction.
func (x *indexer) writePages(ctx context.Context, seg int64, pages []page) error {
	if len(pages) == 0 {
		return nil
	}
	tx, err := x.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	ins := tx.StmtContext(ctx, x.insPage)
	for _, p := range pages {
		if _, err := ins.ExecContext(ctx, seg, p.term, p.ngid, p.data); err != nil {
			return fmt.Errorf("merge: add page: %w", err)
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("merge: %w", err)
	}
	x.walCommitted()
	return nil
}

// dropSegments deletes segments that are not live, a chunk of pages per
// transaction so that the indexer is never held up for long.
func (x *indexer) dropSegments(ctx context.Context, ids []int64) error {
	for _, id := range ids {
		for {
			var term, ngid int64
			err := x.db.QueryRowContext(ctx, `SELECT term, ngid FROM pages WHERE seg = ? ORDER BY term, ngid LIMIT 1 OFFSET 1023`, id).Scan(&term, &ngid)
			last := errors.Is(err, sql.ErrNoRows)
			if err != nil && !last {
				return fmt.Errorf("delete merged segment: %w", err)
			}
			if last {
				_, err = x.db.ExecContext(ctx, `DELETE FROM pages WHERE seg = ?`, id)
			} else {
				_, err = x.db.ExecContext(ctx, `DELETE FROM pages WHERE seg = ? AND (term, ngid) <= (?, ?)`, id, term, ngid)
			}
			if err != nil {
				return fmt.Errorf("delete merged segment: %w", err)
			}
			x.walCommitted()
			if last {
				break
			}
		}
		if _, err := x.db.ExecContext(ctx, `DELETE FROM segments WHERE id = ? AND state != 1`, id); err != nil {
			return fmt.Errorf("delete merged segment: %w", err)
		}
	}
	return nil
}

// A pageStream reads one segment's runs in order, a few pages at a time,
// through the log's readers (which see the index attached).
type pageStream struct {
	db         *sql.DB
	seg        int64
	order      int   // 0 for the newest source
	term, ngid int64 // the key of the last page read
	runs       []run
	gids       []int64 // the runs' gids
	done       bool
}

// peek returns the stream's next run; false at its end.
func (s *pageStream) peek(ctx context.Context) (run, bool, error) {
	for len(s.runs) == 0 && !s.done {
		s.runs, s.gids = s.runs[:0], s.gids[:0]
		rows, err := s.db.QueryContext(ctx, `SELECT term, ngid, data FROM ix.pages
			WHERE seg = ? AND (term, ngid) > (?, ?) ORDER BY term, ngid LIMIT 64`, s.seg, s.term, s.ngid)
		if err != nil {
			return run{}, false, fmt.Errorf("merge: read segment %d: %w", s.seg, err)
		}
		n := 0
		for rows.Next() {
			var data []byte
			if err := rows.Scan(&s.term, &s.ngid, &data); err != nil {
				rows.Close()
				return run{}, false, fmt.Errorf("merge: read segment %d: %w", s.seg, err)
			}
			n++
			if s.runs, s.gids, err = appendRuns(s.runs, s.gids, data); err != nil {
				rows.Close()
				return run{}, false, fmt.Errorf("merge: segment %d: %w", s.seg, err)
			}
		}
		err = rows.Err()
		rows.Close()
		if err != nil {
			return run{}, false, fmt.Errorf("merge: read segment %d: %w", s.seg, err)
		}
		s.done = n == 0
	}
	if len(s.runs) == 0 {
		return run{}, false, nil
	}
	return s.runs[0], true, nil
}

// walCommitted tells the WAL checkpointer of a commit.
func (x *indexer) walCommitted() {
	if x.wal != nil {
		x.wal.committed()
	}
}

// streamHeap orders streams with runs left by (next run's term, order).
type streamHeap []*pageStream

func (h streamHeap) less(i, j int) bool {
	a, b := h[i].runs[0].term, h[j].runs[0].term
	return a < b || a == b && h[i].order < h[j].order
}

func (h streamHeap) down(i int) {
	for {
		l := 2*i + 1
		if l >= len(h) {
			return
		}
		m := l
		if r := l + 1; r < len(h) && h.less(r, l) {
			m = r
		}
		if !h.less(m, i) {
			return
		}
		h[i], h[m] = h[m], h[i]
		i = m
	}
}

func placeholders(n int) string { return strings.TrimSuffix(strings.Repeat("?,", n), ",") }

func int64sAny(v []int64) []any {
	out := make([]any, len(v))
	for i, x := range v {
		out[i] = x
	}
	return out
}
