package sqlite

import (
	"bytes"
	"context"
	"database/sql"
	"database/sql/driver"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/cairn-audit/cairn"
	sqlite "modernc.org/sqlite"
)

// The search index lives in a database file of its own, written by a
// goroutine of its own.
//
// Why: SQLite has one writer per database file, and the index work of an
// append — FTS5's then: tokenising each event's index row, flushing the
// transaction's tokens as a segment, merging segments — was 55 % of that
// one writer's time under bulk ingest (docs/performance.md). In a second
// file the index
// has a write lock of its own: the indexer writes on the other core while
// the committer writes the next group into the log.
//
// The contract:
//
//   - The log database (cairn.db) is the source of truth. The index
//     (cairn.index.db) is derived from it, and rebuilt from it whenever it
//     is missing, belongs to another log database, or claims more events
//     than the log holds.
//   - The index's state row holds the watermark W: every event with gid ≤ W
//     is in the index, none above. A search reads W and the index in one read
//     transaction and finds the events above W — the tail, committed but not
//     yet indexed — by walking them with its filters' column conditions
//     (read.go). Free text has no column to check, so a text search first
//     waits until the index covers every event committed when it began.
//   - Append waits while more than maxIndexLag events are unindexed, so the
//     tail a search walks stays short and the queue's memory bounded —
//     except while the indexer works through a backlog: the events the log
//     held beyond the index when the store opened (a rebuild, a crash), and
//     then what was written meanwhile, round after round while each round
//     is shorter than the last. Writes are never refused because an index
//     is being rebuilt; searches walk the longer tail meanwhile, and events
//     committed during a backlog are read back from the log, not queued.
//   - Index commits are not fsynced (synchronous=NORMAL in WAL mode): a
//     power loss may lose the last few, the state row with them, and the
//     next start indexes them again from the log.
//
// The committer hands the indexer the events it has just committed (already
// decoded), so indexing costs no second decode; after a restart, or when the
// queue does not continue where the index stopped, the indexer reads the
// missing events from the log instead.
const (
	maxIndexLag = 16384 // unindexed events before Append waits
	indexBatch  = 4096  // events per index transaction, at most
	// The indexer lets a short tail (fewer than indexGather events) wait up
	// to indexDelay for more, unless a free-text search waits for it: each
	// index transaction writes a new segment that later merges cost again,
	// and with 64 single-event writers the indexer (then FTS5) committed a
	// transaction per group commit (~20 events), 26 % of the server's CPU.
	// The wait comes before every index transaction, not only the first
	// after a wake: a transaction indexing the first 20 ms of events was
	// followed by one for the few that arrived while it ran, and so on
	// (64 single-event writers, 20 s: 1,224 index transactions of 86
	// events on average; waiting each time, 592 of 212). Per event,
	// BenchmarkIndexer: 52 µs in transactions of 20, 34 µs of 140, 32 µs
	// of 500.
	indexGather   = 1024
	indexDelay    = 20 * time.Millisecond
	admitTimeout  = 30 * time.Second
	textWait      = 10 * time.Second
	indexRetryMin = 100 * time.Millisecond
	indexRetryMax = 5 * time.Second
)

// indexSchema is the index database's schema. Its version changes with
// anything that changes what is indexed (index.go's terms): an index of
// another version is rebuilt. 1: SHA-256 key tokens; 2: FNV-1a; 3: time
// buckets down to a hundredth of a second; 4: base-36 tokens, 50 bits for
// key and leaf-hash tokens; 5: posting lists of 64-bit terms of our own
// (postings.go) instead of FTS5; 6: pages of 2 KB in a WITHOUT ROWID
// table, in 8 KiB database pages; 7: segments carry their directory, and
// their ids are never reused; 8: and a Bloom filter of their terms; 9:
// leaf-hash terms are negative, all others not, and the filters leave them
// out.
const indexVersion = 9

const indexSchema = `
-- The segments of the index (postings.go): gids [lo, hi], their events'
-- times [tmin, tmax] in microseconds. state: 0 being written by a merge,
-- 1 live (what searches read), 2 merged away (its pages being deleted).
-- terms: how many distinct in bloom, a Bloom filter of its terms except the
-- leaf hashes'; dir: the keys of its pages (pagecache.go).
CREATE TABLE segments (
	id     INTEGER PRIMARY KEY AUTOINCREMENT,
	level  INTEGER NOT NULL,
	lo     INTEGER NOT NULL,
	hi     INTEGER NOT NULL,
	tmin   INTEGER NOT NULL,
	tmax   INTEGER NOT NULL,
	events INTEGER NOT NULL,
	terms  INTEGER NOT NULL,
	state  INTEGER NOT NULL,
	dir    BLOB NOT NULL,
	bloom  BLOB NOT NULL
);
-- A segment's pages, keyed by their last entry: its term and minus its gid.
-- Without a rowid, a probe is one seek, and a page (pageBytes) fits in its
-- B-tree cell in an 8 KiB database page.
CREATE TABLE pages (
	seg  INTEGER NOT NULL,
	term INTEGER NOT NULL,
	ngid INTEGER NOT NULL,
	data BLOB NOT NULL,
	PRIMARY KEY (seg, term, ngid)
) WITHOUT ROWID;
-- log_id: the identity of the log database this index was built from.
-- indexed: every event with gid <= indexed is in the segments, none above.
CREATE TABLE state (
	id      INTEGER PRIMARY KEY CHECK (id = 0),
	log_id  BLOB NOT NULL,
	indexed INTEGER NOT NULL
);
`

// indexPath is the index database beside the log database.
func indexPath(logPath string) string {
	if base, ok := strings.CutSuffix(logPath, ".db"); ok {
		return base + ".index.db"
	}
	return logPath + ".index"
}

// indexItem is one committed event waiting to be indexed.
type indexItem struct {
	gid, orgID, ctxID int64
	event             *cairn.Event
	leafHash          [32]byte
}

// indexer keeps the index database up to date with the log.
type indexer struct {
	db *sql.DB // the index database, one connection
	// write's statements, prepared once (as the log's, see writeStmts).
	insSeg, insPage, setState *sql.Stmt
	wal                       *walCheckpointer
	log                       *sql.DB // the log's readers, for events the queue does not hold
	logger                    *slog.Logger

	mu        sync.Mutex
	queue     []indexItem // committed events, gid ascending
	committed int64       // highest gid committed to the log
	indexed   int64       // the watermark W
	backlog   int64       // while indexed < backlog, appends do not wait (see above)
	round     int64       // the length of the current backlog round
	advanced  chan struct{}
	paused    bool // tests: leave the tail unindexed

	wake    chan struct{}
	hurry   chan struct{}  // a free-text search waits: index without delay
	next    *logRead       // the log read ahead for the next step (readAhead)
	reading sync.WaitGroup // reads ahead still running
	// readAheads counts batches taken from a read ahead (tests; written
	// by the indexer's goroutine before it takes mu).
	readAheads int
	stop       chan struct{}
	done       chan struct{}

	// Merging (merger.go).
	segMu       sync.Mutex
	segs        []segment      // live segments, lo ascending
	mergingLvl  map[int64]bool // levels a merge is running for
	mergeFailed time.Time
	merges      sync.WaitGroup
	mergeCtx    context.Context // cancelled by close
	mergeStop   context.CancelFunc
	merged      int // merges done (tests)
	build       segBuilder
	pages       *segPages // what searches keep of the segments (pagecache.go)
}

// An openedIndex is what openIndex read of an index database.
type openedIndex struct {
	indexed int64     // the watermark
	segs    []segment // the live segments, lo ascending
	pages   *segPages // their directories and Bloom filters
	dead    []int64   // segments to delete: a merge's unfinished output or merged-away sources
}

// openIndex opens (creating or rebuilding if needed) the index database of
// the log whose identity is logID and whose highest gid is maxGID, and
// returns it with what it holds.
func openIndex(ctx context.Context, path string, logID []byte, maxGID int64, logger *slog.Logger) (*sql.DB, openedIndex, error) {
	for attempt := 0; ; attempt++ {
		db, ix, err := tryOpenIndex(ctx, path, logID, maxGID)
		if err == nil {
			return db, ix, nil
		}
		var stale errStaleIndex
		if !errors.As(err, &stale) || attempt > 0 {
			return nil, openedIndex{}, fmt.Errorf("search index %s: %w", path, err)
		}
		logger.Warn("rebuilding the search index from the log", "path", path, "reason", stale.reason)
		for _, p := range []string{path, path + "-wal", path + "-shm"} {
			if err := os.Remove(p); err != nil && !errors.Is(err, os.ErrNotExist) {
				return nil, openedIndex{}, fmt.Errorf("remove stale search index: %w", err)
			}
		}
	}
}

type errStaleIndex struct{ reason string }

func (e errStaleIndex) Error() string { return "stale search index: " + e.reason }

func tryOpenIndex(ctx context.Context, path string, logID []byte, maxGID int64) (_ *sql.DB, ix openedIndex, err error) {
	if err := create(ctx, path); err != nil { // 8 KiB pages, as the log's
		return nil, ix, err
	}
	db, err := sql.Open("sqlite", dsn(path, []string{
		"busy_timeout(10000)",
		"journal_mode(WAL)",
		"synchronous(NORMAL)",
		"wal_autocheckpoint(0)", // checkpoints (and their fsyncs) run beside the indexer
		"cache_size(-32768)",
		"journal_size_limit(67108864)",
	}, "immediate"))
	if err != nil {
		return nil, ix, err
	}
	defer func() {
		if err != nil {
			db.Close()
		}
	}()
	db.SetMaxOpenConns(1)
	db.SetMaxIdleConns(1)
	db.SetConnMaxLifetime(0)
	var version int
	if err := db.QueryRowContext(ctx, "PRAGMA user_version").Scan(&version); err != nil {
		return nil, ix, err
	}
	switch version {
	case 0:
		if _, err := db.ExecContext(ctx, indexSchema+fmt.Sprintf("PRAGMA user_version = %d;", indexVersion)); err != nil {
			return nil, ix, fmt.Errorf("create: %w", err)
		}
		if _, err := db.ExecContext(ctx, `INSERT INTO state (id, log_id, indexed) VALUES (0, ?, 0)`, logID); err != nil {
			return nil, ix, fmt.Errorf("create: %w", err)
		}
	case indexVersion:
	default:
		return nil, ix, errStaleIndex{fmt.Sprintf("it has format %d, this binary writes %d", version, indexVersion)}
	}
	var id []byte
	if err := db.QueryRowContext(ctx, `SELECT log_id, indexed FROM state WHERE id = 0`).Scan(&id, &ix.indexed); err != nil {
		return nil, ix, errStaleIndex{fmt.Sprintf("no state: %v", err)}
	}
	if !bytes.Equal(id, logID) {
		return nil, ix, errStaleIndex{"it was built from another log database"}
	}
	if ix.indexed > maxGID {
		return nil, ix, errStaleIndex{fmt.Sprintf("it holds events up to %d, the log only up to %d (restored from a backup?)", ix.indexed, maxGID)}
	}
	if err := readSegments(ctx, db, &ix); err != nil {
		return nil, ix, err
	}
	return db, ix, nil
}

// attachIndex is a connector whose connections see the index database as
// schema "ix", read-only, beside the log.
type attachIndex struct {
	driver.Connector
	uri string
}

func (a attachIndex) Connect(ctx context.Context) (driver.Conn, error) {
	c, err := a.Connector.Connect(ctx)
	if err != nil {
		return nil, err
	}
	exec := c.(driver.ExecerContext)
	if _, err := exec.ExecContext(ctx, "ATTACH DATABASE ? AS ix",
		[]driver.NamedValue{{Ordinal: 1, Value: a.uri}}); err != nil {
		c.Close()
		return nil, fmt.Errorf("attach search index: %w", err)
	}
	// Pragmas are per schema: the index gets the log's reader settings.
	if _, err := exec.ExecContext(ctx, "PRAGMA ix."+readerCache+"; PRAGMA ix."+readerMmap, nil); err != nil {
		c.Close()
		return nil, fmt.Errorf("configure search index: %w", err)
	}
	return c, nil
}

// openReaders opens the log's read connections with the index attached.
func openReaders(logDSN, indexFile string, n int) (*sql.DB, error) {
	base, err := sqlite.NewConnector(logDSN)
	if err != nil {
		return nil, err
	}
	r := sql.OpenDB(attachIndex{Connector: base, uri: "file:" + indexFile + "?mode=ro"})
	r.SetMaxOpenConns(n)
	r.SetMaxIdleConns(n)
	return r, nil
}

func newIndexer(path string, db, log *sql.DB, committed int64, ix openedIndex, paused bool, logger *slog.Logger) (*indexer, error) {
	indexed, dead := ix.indexed, ix.dead
	x := &indexer{db: db, log: log, logger: logger, committed: committed, indexed: indexed,
		advanced: make(chan struct{}), wake: make(chan struct{}, 1), hurry: make(chan struct{}, 1),
		stop: make(chan struct{}), done: make(chan struct{}), paused: paused, segs: ix.segs, pages: ix.pages}
	// The index's WAL is copied back by a checkpointer of its own, as the
	// log's is (walcheckpoint.go): a checkpoint fsyncs, and inside the
	// indexer's commits the fsyncs stalled indexing, and so appends, on a
	// busy disk.
	ckpt, err := sql.Open("sqlite", dsn(path, []string{"busy_timeout(10000)"}, "deferred"))
	if err != nil {
		return nil, err
	}
	ckpt.SetMaxOpenConns(1)
	if err := x.prepare(); err != nil {
		ckpt.Close()
		return nil, err
	}
	x.wal = newWALCheckpointer(ckpt, db, logger)
	x.mergeCtx, x.mergeStop = context.WithCancel(context.Background())
	if committed-indexed >= maxIndexLag {
		x.backlog, x.round = committed, committed-indexed
		logger.Info("search index: indexing the events the index lacks; writes go on meanwhile",
			"events", committed-indexed)
	}
	go x.run()
	x.poke()
	if len(dead) > 0 {
		x.merges.Add(1)
		go func() {
			defer x.merges.Done()
			if err := x.dropSegments(x.mergeCtx, dead); err != nil && x.mergeCtx.Err() == nil {
				x.logger.Error("search index: deleting unused segments failed", "err", err)
			}
		}()
	}
	x.maybeMerge()
	return x, nil
}

// prepare prepares write's statements on x.db.
func (x *indexer) prepare() error {
	var stmts [3]*sql.Stmt
	for i, q := range []string{
		`INSERT INTO segments (level, lo, hi, tmin, tmax, events, terms, state, dir, bloom) VALUES (?, ?, ?, ?, ?, ?, ?, 1, ?, ?)`,
		`INSERT INTO pages (seg, term, ngid, data) VALUES (?, ?, ?, ?)`,
		`UPDATE state SET indexed = ? WHERE id = 0`,
	} {
		st, err := x.db.Prepare(q)
		if err != nil {
			for _, st := range stmts[:i] {
				st.Close()
			}
			return err
		}
		stmts[i] = st
	}
	x.insSeg, x.insPage, x.setState = stmts[0], stmts[1], stmts[2]
	return nil
}

func (x *indexer) poke() {
	select {
	case x.wake <- struct{}{}:
	default:
	}
}

// close stops the indexer; what it has not indexed yet is indexed from the
// log at the next start.
func (x *indexer) close() error {
	close(x.stop)
	<-x.done
	x.mergeStop()
	x.merges.Wait()
	x.reading.Wait() // reads ahead of the log end before the log closes
	x.wal.close()
	return errors.Join(x.insSeg.Close(), x.insPage.Close(), x.setState.Close(), x.wal.db.Close(), x.db.Close())
}

// added records events the log has just committed (gid ascending).
func (x *indexer) added(items []indexItem) {
	if x == nil || len(items) == 0 {
		return
	}
	x.mu.Lock()
	if x.indexed >= x.backlog {
		x.queue = append(x.queue, items...)
	} // else: read back from the log when the backlog reaches them
	x.committed = items[len(items)-1].gid
	x.mu.Unlock()
	x.poke()
}

// watermark returns W and the highest committed gid.
func (x *indexer) watermark() (indexed, committed int64) {
	x.mu.Lock()
	defer x.mu.Unlock()
	return x.indexed, x.committed
}

// wait waits until cond (called under the lock) holds.
func (x *indexer) wait(ctx context.Context, timeout time.Duration, cond func() bool) bool {
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	for {
		x.mu.Lock()
		ok, ch := cond(), x.advanced
		x.mu.Unlock()
		if ok {
			return true
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return false
		case <-timer.C:
			return false
		}
	}
}

// admit waits, before an append, until the unindexed tail is short enough.
func (x *indexer) admit(ctx context.Context) error {
	if x == nil { // read-only store
		return nil
	}
	if x.wait(ctx, admitTimeout, func() bool { return x.indexed < x.backlog || x.committed-x.indexed < maxIndexLag }) {
		return nil
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	indexed, committed := x.watermark()
	return cairn.Errorf(cairn.EUnavailable, "the search index is %d events behind the log; writes wait for it", committed-indexed)
}

// caughtUp waits until every event committed now is indexed (text searches).
func (x *indexer) caughtUp(ctx context.Context) error {
	indexed, target := x.watermark()
	if indexed >= target {
		return nil
	}
	select {
	case x.hurry <- struct{}{}:
	default:
	}
	if x.wait(ctx, textWait, func() bool { return x.indexed >= target }) {
		return nil
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	indexed, _ = x.watermark()
	return cairn.Errorf(cairn.EUnavailable, "the search index is %d events behind the log; free-text search is unavailable until it catches up", target-indexed)
}

// setPaused stops or resumes indexing (tests).
func (x *indexer) setPaused(p bool) {
	x.mu.Lock()
	x.paused = p
	x.mu.Unlock()
	x.poke()
}

func (x *indexer) run() {
	defer close(x.done)
	retry := indexRetryMin
	for {
		select {
		case <-x.stop:
			return
		case <-x.wake:
		}
		for {
			if !x.gather() {
				return
			}
			n, err := x.step(context.Background())
			if err != nil {
				x.logger.Error("search index: indexing failed; retrying", "err", err, "retry_in", retry)
				select {
				case <-x.stop:
					return
				case <-time.After(retry):
				}
				retry = min(2*retry, indexRetryMax)
				continue
			}
			retry = indexRetryMin
			if n == 0 {
				break
			}
			select {
			case <-x.stop:
				return
			default:
			}
		}
	}
}

// gather waits up to indexDelay for a short tail to grow; false when the
// indexer is stopping.
func (x *indexer) gather() bool {
	indexed, committed := x.watermark()
	if committed == indexed || committed-indexed >= indexGather {
		return true
	}
	t := time.NewTimer(indexDelay)
	defer t.Stop()
	select {
	case <-x.stop:
		return false
	case <-x.hurry:
	case <-t.C:
	}
	return true
}

// step indexes the next batch: from the queue when it continues at W,
// otherwise from the log. It returns how many events it indexed.
func (x *indexer) step(ctx context.Context) (int, error) {
	x.mu.Lock()
	if x.paused {
		x.mu.Unlock()
		return 0, nil
	}
	w := x.indexed
	x.dropIndexed()
	var batch []indexItem
	var upto int64
	if len(x.queue) > 0 && x.queue[0].gid == w+1 {
		batch = append(batch, x.queue[:min(len(x.queue), indexBatch)]...)
		upto = batch[len(batch)-1].gid
	} else {
		upto = x.logEnd(w)
	}
	x.mu.Unlock()
	if upto <= w {
		return 0, nil
	}
	if batch == nil {
		var err error
		if batch, upto, err = x.readAhead(ctx, w, upto); err != nil {
			return 0, err
		}
	}
	if err := x.write(ctx, batch, upto); err != nil {
		return 0, err
	}
	x.mu.Lock()
	x.indexed = upto
	x.dropIndexed()
	if x.backlog > 0 && x.indexed >= x.backlog {
		// The round is done. What was written meanwhile is the next one,
		// as long as the rounds shrink; otherwise writes outpace the
		// indexer, and from here on they wait for it.
		if lag := x.committed - x.indexed; lag >= maxIndexLag && lag < x.round {
			x.backlog, x.round = x.committed, lag
		} else {
			x.backlog, x.round = 0, 0
			x.logger.Info("search index: caught up with the log", "unindexed", lag)
		}
	}
	close(x.advanced)
	x.advanced = make(chan struct{})
	x.mu.Unlock()
	return max(len(batch), 1), nil
}

// dropIndexed removes indexed events from the queue (under the lock).
func (x *indexer) dropIndexed() {
	i := 0
	for i < len(x.queue) && x.queue[i].gid <= x.indexed {
		x.queue[i] = indexItem{} // release the event
		i++
	}
	x.queue = x.queue[i:]
	if len(x.queue) == 0 {
		x.queue = nil
	}
}

// logEnd is where the next range (after, end] of events to read from the
// log ends: at most a batch on, at the last event committed (every event up
// to it is in the log), and before the queue's first event (the queue
// supplies it and those after). The caller holds mu.
func (x *indexer) logEnd(after int64) int64 {
	end := min(after+indexBatch, x.committed)
	if len(x.queue) > 0 {
		end = min(end, x.queue[0].gid-1)
	}
	return end
}

// logRead is a read of the log's events (after, upto] that the indexer
// started before it needed them.
type logRead struct {
	after, upto int64
	done        chan struct{} // closed when batch and err are set
	batch       []indexItem
	err         error
}

// readAhead returns the events (after, upto] from the log, or the events
// (after, u] for a u <= upto read ahead of time, with the upper bound it
// returns. Then it starts reading the next batch's events, so that reading
// and decoding them (a third of the indexer's time when it works through a
// backlog, such as a rebuild) runs on the other core while this batch is
// written. Only the indexer's goroutine calls it.
func (x *indexer) readAhead(ctx context.Context, after, upto int64) ([]indexItem, int64, error) {
	var batch []indexItem
	var err error
	if r := x.next; r != nil && r.after == after && r.upto <= upto {
		<-r.done
		batch, upto, err = r.batch, r.upto, r.err
		x.readAheads++
	} else {
		// (A read ahead of another range is left to finish on its own.)
		batch, err = x.readLog(ctx, after, upto)
	}
	x.next = nil
	if err != nil {
		return nil, 0, err
	}
	// The next range ends where step's next call may end it.
	x.mu.Lock()
	next := x.logEnd(upto)
	x.mu.Unlock()
	if next > upto {
		r := &logRead{after: upto, upto: next, done: make(chan struct{})}
		x.next = r
		x.reading.Add(1)
		go func() {
			defer x.reading.Done()
			defer close(r.done)
			r.batch, r.err = x.readLog(context.WithoutCancel(ctx), r.after, r.upto)
		}()
	}
	return batch, upto, nil
}

// readLog reads the events with gid in (after, upto] from the log.
func (x *indexer) readLog(ctx context.Context, after, upto int64) ([]indexItem, error) {
	rows, err := x.log.QueryContext(ctx, `SELECT gid, org_id, ctx_id, leaf, substr(hashes, 1, 32) FROM events
		WHERE gid > ? AND gid <= ? ORDER BY gid`, after, upto)
	if err != nil {
		return nil, fmt.Errorf("read events to index: %w", err)
	}
	defer rows.Close()
	var out []indexItem
	for rows.Next() {
		var it indexItem
		var leaf, hash []byte
		if err := rows.Scan(&it.gid, &it.orgID, &it.ctxID, &leaf, &hash); err != nil {
			return nil, fmt.Errorf("read events to index: %w", err)
		}
		it.event = new(cairn.Event)
		if err := json.Unmarshal(leaf, it.event); err != nil {
			return nil, fmt.Errorf("event %d: decode leaf: %w", it.gid, err)
		}
		copy(it.leafHash[:], hash)
		out = append(out, it)
	}
	return out, rows.Err()
}

// write adds batch to the index as a new segment and moves the watermark
// to upto, in one transaction.
func (x *indexer) write(ctx context.Context, batch []indexItem, upto int64) error {
	var seg segment
	var pages []page
	var bl bloom
	var keys []pageKey
	if len(batch) > 0 {
		seg, pages, bl = x.build.segment(batch)
		keys = pageKeys(pages)
	}
	tx, err := x.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	if pages != nil {
		res, err := tx.StmtContext(ctx, x.insSeg).ExecContext(ctx, seg.level, seg.lo, seg.hi, seg.tmin, seg.tmax, seg.events, seg.terms,
			encodeDir(keys), bl.encode())
		if err != nil {
			return fmt.Errorf("index: add segment: %w", err)
		}
		if seg.id, err = res.LastInsertId(); err != nil {
			return err
		}
		ins := tx.StmtContext(ctx, x.insPage)
		for _, p := range pages {
			if _, err := ins.ExecContext(ctx, seg.id, p.term, p.ngid, p.data); err != nil {
				return fmt.Errorf("index: add page: %w", err)
			}
		}
	}
	if _, err := tx.StmtContext(ctx, x.setState).ExecContext(ctx, upto); err != nil {
		return err
	}
	if err := tx.Commit(); err != nil {
		return err
	}
	x.walCommitted()
	if pages != nil {
		x.pages.setDir(seg.id, segDir{keys, bl})
		x.addSegment(seg)
	}
	return nil
}

// IndexLag is how many committed events the search index does not hold yet
// (the tail searches walk; 0 for a read-only store).
func (s *Store) IndexLag() int64 {
	if s.ix == nil {
		return 0
	}
	indexed, committed := s.ix.watermark()
	return committed - indexed
}
