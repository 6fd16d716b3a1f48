package sqlite

import (
	"context"
	"database/sql"
	"encoding/binary"
	"errors"
	"fmt"
	"math/bits"
	"slices"
)

// Posting lists: the search index's storage (index format 5).
//
// A term is a 64-bit hash of what an event can be searched by (index.go).
// A segment holds, for the events of one contiguous range of gids, every
// term with the gids of the events that carry it; segments never overlap,
// so a term's gids in the whole index are its gids in each segment, newest
// segment first. Each index transaction writes one new segment, and the
// merger (merger.go) merges mergeFanout adjacent segments of one level into
// one of the next: a tiered LSM, written in Go over a SQLite table.
//
// A segment is its entries (term, gid) in (term ascending, gid descending)
// order, cut into pages of at most pageBytes, one row of table pages each,
// keyed by (segment, last entry's term, -last entry's gid): the page that
// holds the first entry at or after (t, -g) — term t's newest gid ≤ g — is
// the first page whose key is not less than that, one seek of the key's
// index.
//
// Page format: runs of one term's gids. A run is uvarint(term − previous
// run's term, as uint64; the first run's from 0), uvarint(n), the first gid
// as a uvarint and n − 1 uvarint differences to the next (smaller) gid. A
// term's gids continue in the next page's first run when they do not fit.
//
// Why not FTS5, which held the index before: under bulk ingest its
// tokenizer, hash and segment merges — C translated to Go in modernc's
// SQLite — cost ~30 µs of CPU per event, more than the rest of the server
// together (docs/performance.md, fifth round). Terms here are hashed once,
// in Go, from the event's fields; a segment is sorted in memory and
// written as ~4 KB rows; a merge concatenates posting lists (segments hold
// disjoint gid ranges, so nothing is re-sorted).

// pageBytes bounds a page's data: with the row's key it stays within the
// largest cell SQLite keeps in an 8 KiB page of a WITHOUT ROWID table's
// B-tree (2,030 bytes), so no page spills into overflow pages.
const pageBytes = 1984

// A page is one row of table pages.
type page struct {
	term, ngid int64 // the last entry: its term and minus its gid
	data       []byte
}

// pageWriter cuts a stream of entries, in (term ascending, gid descending)
// order, into pages.
type pageWriter struct {
	pages []page
	buf   []byte // the current page
	// The current run: its term, its gids' encoding, how many, and the
	// last gid added.
	term, prevTerm int64
	open           bool
	run            []byte
	n              int
	last           int64
	hdr            int   // a bound on the run's header
	bufLast        int64 // the gid of buf's last entry
	first          bool  // buf holds no run yet
	// flush, when set, takes full pages as they are cut (a merge writes
	// them in chunks); otherwise they collect in pages.
	flush func([]page) error
	err   error
}

func newPageWriter() *pageWriter { return &pageWriter{first: true, buf: make([]byte, 0, pageBytes)} }

// add appends gid to term's posting list; calls come in entry order.
func (w *pageWriter) add(term, gid int64) {
	if w.open && term != w.term {
		w.endRun()
	}
	if !w.open {
		w.startRun(term)
	}
	v := uint64(gid)
	if w.n > 0 {
		v = uint64(w.last - gid)
	}
	if len(w.buf)+w.hdr+len(w.run)+uvarintLen(v) > pageBytes {
		// The page is full: end the run here, cut the page, and go on
		// with this term in a new run on the next page.
		w.endRun()
		w.cut()
		w.startRun(term)
		v = uint64(gid)
	}
	w.run = binary.AppendUvarint(w.run, v)
	w.n++
	w.last = gid
}

// addRun appends a run read from another page (a merge): its differences
// are copied as they are when the page has room for them.
func (w *pageWriter) addRun(r run) {
	w.add(r.term, r.gids[0])
	if len(r.gids) == 1 {
		return
	}
	if len(w.buf)+w.hdr+len(w.run)+len(r.raw) <= pageBytes {
		w.run = append(w.run, r.raw...)
		w.n += len(r.gids) - 1
		w.last = r.gids[len(r.gids)-1]
		return
	}
	for _, g := range r.gids[1:] {
		w.add(r.term, g)
	}
}

// startRun opens a run of term. Its header's length is bounded with 3
// bytes for the count: a run within a page has fewer than 2^21 gids.
func (w *pageWriter) startRun(term int64) {
	w.term, w.open, w.n, w.run = term, true, 0, w.run[:0]
	w.hdr = uvarintLen(w.termDelta()) + 3
}

// termDelta is what a run of the current term starts with.
func (w *pageWriter) termDelta() uint64 {
	if w.first {
		return uint64(w.term)
	}
	return uint64(w.term) - uint64(w.prevTerm)
}

// endRun writes the open run to the current page.
func (w *pageWriter) endRun() {
	if !w.open || w.n == 0 {
		w.open = false
		return
	}
	w.buf = binary.AppendUvarint(w.buf, w.termDelta())
	w.buf = binary.AppendUvarint(w.buf, uint64(w.n))
	w.buf = append(w.buf, w.run...)
	w.prevTerm, w.bufLast, w.first, w.open = w.term, w.last, false, false
}

// cut ends the current page.
func (w *pageWriter) cut() {
	if w.first {
		return
	}
	w.pages = append(w.pages, page{term: w.prevTerm, ngid: -w.bufLast, data: w.buf})
	w.buf, w.first = make([]byte, 0, pageBytes), true
	if w.flush != nil && len(w.pages) >= 256 && w.err == nil {
		w.err = w.flush(w.pages)
		w.pages = w.pages[:0]
	}
}

// finish ends the last run and page and returns the pages not yet flushed.
func (w *pageWriter) finish() ([]page, error) {
	w.endRun()
	w.cut()
	return w.pages, w.err
}

func uvarintLen(v uint64) int { return (bits.Len64(v|1) + 6) / 7 }

// A run is one term's gids in a page, newest first; raw is the encoding of
// gids[1:] (the differences), and last reports whether it is the page's
// last run (the term may go on in the next page).
type run struct {
	term int64
	gids []int64
	raw  []byte
	last bool
}

var errBadPage = errors.New("malformed page")

// runHeader decodes the header of a page's next run: its term (prev is
// the previous run's), how many gids, and what follows.
func runHeader(data []byte, first bool, prev int64) (term int64, count uint64, rest []byte, err error) {
	d, n := binary.Uvarint(data)
	if n <= 0 {
		return 0, 0, nil, errBadPage
	}
	data = data[n:]
	term = int64(d)
	if !first {
		term = prev + int64(d)
	}
	count, n = binary.Uvarint(data)
	if n <= 0 || count == 0 || count > uint64(len(data)) {
		return 0, 0, nil, errBadPage
	}
	return term, count, data[n:], nil
}

// appendRuns decodes a page's runs onto out, their gids onto gids (the
// runs' gids share its array).
func appendRuns(out []run, gids []int64, data []byte) ([]run, []int64, error) {
	var term int64
	for first := true; len(data) > 0; first = false {
		var count uint64
		var err error
		if term, count, data, err = runHeader(data, first, term); err != nil {
			return out, gids, err
		}
		start := len(gids)
		v, n := binary.Uvarint(data)
		if n <= 0 {
			return out, gids, errBadPage
		}
		data = data[n:]
		raw := data
		g := int64(v)
		gids = append(gids, g)
		for range count - 1 {
			v, n := binary.Uvarint(data)
			if n <= 0 {
				return out, gids, errBadPage
			}
			data = data[n:]
			g -= int64(v)
			gids = append(gids, g)
		}
		out = append(out, run{term: term, gids: gids[start:len(gids):len(gids)], raw: raw[:len(raw)-len(data)], last: len(data) == 0})
	}
	return out, gids, nil
}

// A segment is one row of table segments: a range of gids, the range of
// their event times (microseconds) and its level in the merge tiers.
type segment struct {
	id, level, lo, hi, tmin, tmax, events int64
	terms                                 int64 // distinct terms in its Bloom filter
}

// A cursor walks a posting list, or a combination of them, newest first.
// next returns its largest gid ≤ upTo, 0 when it has none; successive
// calls never raise upTo.
type cursor interface {
	next(upTo int64) (int64, error)
}

// termCursor walks one term's gids through the segments, newest first.
type termCursor struct {
	probe *sql.Stmt // the page at or after a key (read.go, searchProbe)
	exact *sql.Stmt // the page of a key (read.go, searchPage)
	pages *segPages // directories and cached pages; nil: probe every time
	// ctx is the search's; probes run without its cancellation (for
	// each statement with a context that can end, the driver starts a
	// goroutine to interrupt it) and look at it every 64 probes instead.
	ctx        context.Context
	segs       []segment // hi descending
	term       int64
	tmin, tmax int64 // time terms: skip segments without events in [tmin, tmax)
	i          int   // the current segment
	// The current segment's run, decoded as the cursor moves: a long
	// run (a kind's, an action's) is probed at one gid per candidate of
	// a shorter list, and decoding all of it at every probe took a
	// quarter of such a search's CPU (actor.id&kind at 10 M events).
	run  runReader
	g    int64 // the run's current gid, when has; its last, once it ended
	has  bool  // g is the run's current gid: at or below every upTo so far, not yet passed
	more bool  // the run ended with its page: the term may go on
	// floor is the term's last gid on the current page when the page
	// ends with the term (its key, from the segment's directory), else 0:
	// a probe below it goes straight to a later page instead of decoding
	// the rest of this one.
	floor  int64
	probed bool // run, g, has, more and floor are the current segment's
	probes int
	dir    segDir // the current segment's, when hasDir
	hasDir bool
}

func (c *termCursor) next(upTo int64) (int64, error) {
	for c.i < len(c.segs) {
		s := c.segs[c.i]
		if s.lo > upTo || (c.tmax > c.tmin && (s.tmax < c.tmin || s.tmin >= c.tmax)) {
			c.i, c.probed = c.i+1, false
			continue
		}
		if !c.probed {
			c.dir, c.hasDir = c.pages.dir(s.id)
			// Leaf-hash terms are in no filter.
			if c.hasDir && c.term >= 0 && !c.dir.terms.has(c.term) {
				c.i++ // the segment lacks the term
				continue
			}
		}
		if c.probed {
			if c.has && c.floor > upTo {
				c.has, c.more, c.g = false, true, c.floor
			}
			if c.has && c.g > upTo {
				if err := c.seek(upTo); err != nil {
					return 0, err
				}
			}
			if c.has {
				return c.g, nil
			}
			if !c.more {
				c.i, c.probed = c.i+1, false
				continue
			}
			upTo = min(upTo, c.g-1)
		}
		if err := c.load(s, min(upTo, s.hi)); err != nil {
			return 0, err
		}
	}
	return 0, nil
}

// load reads the page holding the term's first gid ≤ upTo in segment s.
func (c *termCursor) load(s segment, upTo int64) error {
	if c.probes++; c.probes%64 == 0 {
		if err := c.ctx.Err(); err != nil {
			return err
		}
	}
	c.probed, c.has, c.more, c.floor = true, false, false, 0
	data, key, err := c.page(s, pageKey{c.term, -upTo})
	if err != nil || data == nil {
		return err
	}
	if key.term == c.term {
		c.floor = -key.ngid
	}
	r, found, err := seekRun(data, c.term)
	if err != nil {
		return fmt.Errorf("search index: segment %d: %w", s.id, err)
	}
	if !found {
		return nil
	}
	c.run = r
	err = c.seek(upTo)
	// A run without a gid ≤ upTo does not go on: the page holds a later
	// key, so it has a later term.
	c.more = c.more && c.has
	return err
}

// seek moves the cursor to its run's first gid ≤ upTo; at the run's end
// it clears has, leaves the run's last gid in g and sets more.
func (c *termCursor) seek(upTo int64) error {
	found, err := c.run.seek(upTo)
	c.g, c.has = c.run.g, found && err == nil
	if err != nil {
		return fmt.Errorf("search index: segment %d: %w", c.segs[c.i].id, err)
	}
	if !found {
		c.more = len(c.run.data) == 0
	}
	return nil
}

// page returns the page of segment s that holds the first entry at or
// after key, nil if none does, and the page's own key (its last entry)
// when the segment's directory gives it; else a zero key.
func (c *termCursor) page(s segment, key pageKey) ([]byte, pageKey, error) {
	ctx := context.WithoutCancel(c.ctx)
	var data []byte
	if c.hasDir {
		dir := c.dir.keys
		i, _ := slices.BinarySearchFunc(dir, key, pageKey.compare)
		if i == len(dir) {
			return nil, pageKey{}, nil
		}
		ref := pageRef{s.id, i}
		if data, ok := c.pages.get(ref); ok {
			return data, dir[i], nil
		}
		err := c.exact.QueryRowContext(ctx, s.id, dir[i].term, dir[i].ngid).Scan(&data)
		if err != nil {
			return nil, pageKey{}, fmt.Errorf("search index: read page: %w", err)
		}
		c.pages.put(ref, data)
		return data, dir[i], nil
	}
	err := c.probe.QueryRowContext(ctx, s.id, key.term, key.ngid).Scan(&data)
	if err == sql.ErrNoRows {
		return nil, pageKey{}, nil
	}
	if err != nil {
		return nil, pageKey{}, fmt.Errorf("search index: read page: %w", err)
	}
	return data, pageKey{}, nil
}

// seekRun returns a reader of the run of term in a page, skipping the
// runs before it without decoding their gids.
func seekRun(data []byte, term int64) (runReader, bool, error) {
	var t int64
	for first := true; len(data) > 0; first = false {
		var count uint64
		var err error
		if t, count, data, err = runHeader(data, first, t); err != nil {
			return runReader{}, false, err
		}
		if t > term {
			return runReader{}, false, nil
		}
		if t < term {
			// Skip count varints: count bytes without the high bit.
			for ; count > 0 && len(data) > 0; data = data[1:] {
				if data[0] < 0x80 {
					count--
				}
			}
			if count > 0 {
				return runReader{}, false, errBadPage
			}
			continue
		}
		return runReader{data: data, left: count}, true, nil
	}
	return runReader{}, false, nil
}

// A runReader decodes a run's gids one at a time, newest first: the
// first is stored whole, each next as its distance below the one before.
type runReader struct {
	data    []byte // from the next gid's varint on; the rest of the page once the run ended
	left    uint64 // gids not yet decoded
	g       int64  // the last gid decoded
	started bool
}

// seek decodes the run's gids up to the first ≤ upTo, which it leaves in
// g; false if the run ends first, g then its last gid. A probe of a long
// run decodes part of a page, so this loop is the probe's cost: one-byte
// distances, the common case, are decoded in line.
func (r *runReader) seek(upTo int64) (bool, error) {
	data, left, g := r.data, r.left, r.g
	found := false
	for left > 0 && !found {
		if len(data) == 0 {
			return false, errBadPage
		}
		var v uint64
		if b := data[0]; b < 0x80 {
			v, data = uint64(b), data[1:]
		} else {
			var n int
			if v, n = binary.Uvarint(data); n <= 0 {
				return false, errBadPage
			}
			data = data[n:]
		}
		left--
		if r.started {
			g -= int64(v)
		} else {
			g, r.started = int64(v), true
		}
		found = g <= upTo
	}
	r.data, r.left, r.g = data, left, g
	return found, nil
}

// andCursor yields the gids every one of its cursors has.
type andCursor []cursor

func (a andCursor) next(upTo int64) (int64, error) {
	x := upTo
	for {
		agreed := true
		for _, c := range a {
			v, err := c.next(x)
			if err != nil || v == 0 {
				return 0, err
			}
			if v < x {
				x, agreed = v, false
			}
		}
		if agreed {
			return x, nil
		}
	}
}

// orCursor yields the gids any of its cursors has. Each one's last answer
// is kept: it stays the answer while upTo does not fall below it.
type orCursor struct {
	cs   []cursor
	last []int64 // -1: not asked yet
}

func newOrCursor(cs []cursor) *orCursor {
	last := make([]int64, len(cs))
	for i := range last {
		last[i] = -1
	}
	return &orCursor{cs: cs, last: last}
}

func (o *orCursor) next(upTo int64) (int64, error) {
	var best int64
	for i, c := range o.cs {
		v := o.last[i]
		if v < 0 || v > upTo {
			var err error
			if v, err = c.next(upTo); err != nil {
				return 0, err
			}
			o.last[i] = v
		}
		best = max(best, v)
	}
	return best, nil
}
