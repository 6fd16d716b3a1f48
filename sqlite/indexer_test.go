package sqlite

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/cairn-audit/cairn"
	"github.com/cairn-audit/cairn/storetest"
)

// indexCorpus is events with varied filter values, spread over a day of
// event time and two contexts.
func indexCorpus(from, n int) (app, other []cairn.Entry) {
	base := time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC)
	for i := from; i < from+n; i++ {
		e := storetest.RealisticEvent(i % 40)
		e.Actor.ID = fmt.Sprintf("user-%d", i%7)
		e.Target.ID = fmt.Sprintf("obj-%d", i%11)
		e.Group.ID = fmt.Sprintf("acme/unit-%d/team-%d", i%3, i%5)
		e.EventTime = base.Add(time.Duration(i) * 97 * time.Second)
		e.Description = []string{"alpha report", "beta ledger", "gamma memo"}[i%3]
		if i%4 == 0 {
			e.Outcome = cairn.OutcomeFailure
		}
		if i%5 == 0 {
			other = append(other, storetest.NewEntry("acme", "other", e))
		} else {
			app = append(app, storetest.NewEntry("acme", "app", e))
		}
	}
	return app, other
}

func openIndexed(t *testing.T, path string) *Store {
	t.Helper()
	s, err := Open(t.Context(), Config{Path: path})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// openCorpus opens a new store at path with the org acme and its contexts
// app and other, which indexCorpus writes to.
func openCorpus(t *testing.T, path string) *Store {
	t.Helper()
	s := openIndexed(t, path)
	if _, err := s.CreateOrg(t.Context(), "acme"); err != nil {
		t.Fatal(err)
	}
	for _, c := range []string{"app", "other"} {
		if _, err := s.CreateContext(t.Context(), &cairn.Context{Org: "acme", Name: c}); err != nil {
			t.Fatal(err)
		}
	}
	return s
}

func appendEntries(t *testing.T, s *Store, org, context string, entries []cairn.Entry) []cairn.Committed {
	t.Helper()
	res, err := s.Append(t.Context(), []*cairn.AppendRequest{{Org: org, Context: context, Entries: entries}})
	if err != nil {
		t.Fatal(err)
	}
	if res[0].Err != nil {
		t.Fatal(res[0].Err)
	}
	return res[0].Committed
}

// waitIndexed waits until the index covers every committed event, for as
// long as the indexer makes progress: under the race detector a backlog
// can take longer than a text search waits (textWait).
func waitIndexed(t *testing.T, s *Store) {
	t.Helper()
	last, _ := s.ix.watermark()
	for {
		err := s.ix.caughtUp(t.Context())
		if err == nil {
			return
		}
		indexed, _ := s.ix.watermark()
		if cairn.ErrorCode(err) != cairn.EUnavailable || indexed == last {
			t.Fatal(err)
		}
		last = indexed
	}
}

// searchAll pages through a search with small pages and returns the ids.
func searchAll(t *testing.T, s *Store, f cairn.Filter) []string {
	t.Helper()
	f.Limit = 7
	var ids []string
	for {
		p, err := s.SearchEvents(t.Context(), "acme", f)
		if err != nil {
			t.Fatalf("%+v: %v", f, err)
		}
		for _, e := range p.Items {
			ids = append(ids, e.ID)
		}
		if p.Next == 0 {
			return ids
		}
		f.Before = p.Next
	}
}

var tailFilters = []cairn.Filter{
	{Context: "app"},
	{Context: cairn.BuiltinContext},
	{Action: "document.update"},
	{ActionPrefix: "document."},
	{ActorID: "user-3"},
	{ActorEmail: "user3@example.com"},
	{TargetType: "document", TargetID: "obj-4"},
	{TargetID: "obj-4"},
	{GroupID: "acme/unit-1/team-2"},
	{GroupPrefix: "acme/unit-2"},
	{Kind: cairn.KindUpdate, Outcome: cairn.OutcomeFailure},
	{ActorID: "user-2", Kind: cairn.KindRead},
	{Since: time.Date(2026, 6, 1, 3, 0, 0, 0, time.UTC), Until: time.Date(2026, 6, 1, 9, 30, 0, 0, time.UTC)},
	{Action: "user.login", Since: time.Date(2026, 6, 1, 2, 0, 0, 0, time.UTC), Until: time.Date(2026, 6, 1, 20, 0, 0, 0, time.UTC)},
	{SkipBuiltin: true, ActorType: cairn.ActorUser},
	{Scopes: []cairn.ReadScope{{Contexts: []string{"other"}}}},
	{Scopes: []cairn.ReadScope{{GroupPrefixes: []string{"acme/unit-0"}}}, Outcome: cairn.OutcomeFailure},
}

// TestSearchUnindexedTail: events committed but not yet indexed are found
// by every filter, paged with cursors across the watermark, with the same
// results as once they are indexed; text search waits for the index.
func TestSearchUnindexedTail(t *testing.T) {
	s := openCorpus(t, filepath.Join(t.TempDir(), "cairn.db"))
	defer s.Close()
	ctx := t.Context()
	app, other := indexCorpus(0, 300)
	appendEntries(t, s, "acme", "app", app)
	appendEntries(t, s, "acme", "other", other)
	waitIndexed(t, s)

	s.ix.setPaused(true)
	app, other = indexCorpus(300, 200)
	tailApp := appendEntries(t, s, "acme", "app", app)
	appendEntries(t, s, "acme", "other", other)
	indexed, committed := s.ix.watermark()
	if committed-indexed != 200 {
		t.Fatalf("watermark %d, committed %d: want 200 events unindexed", indexed, committed)
	}
	before := make([][]string, len(tailFilters))
	spans := 0
	for i, f := range tailFilters {
		before[i] = searchAll(t, s, f)
		if len(before[i]) == 0 && f.Context != cairn.BuiltinContext {
			t.Errorf("%+v: nothing found", f)
		}
		if len(before[i]) > 7 {
			spans++
		}
	}
	if spans < len(tailFilters)/2 {
		t.Fatalf("only %d filters page across the watermark; the corpus does not test it", spans)
	}

	// Free text: only the index decides it, so the search waits for it.
	short, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
	_, err := s.SearchEvents(short, "acme", cairn.Filter{Text: "ledger", Limit: 10})
	cancel()
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("text search with the index paused: %v, want it to wait", err)
	}
	// A leaf in the tail is found by its hash.
	last := tailApp[len(tailApp)-1]
	if seq, err := s.LeafIndex(ctx, "acme", "app", last.LeafHash, last.Seq+1); err != nil || seq != last.Seq {
		t.Errorf("LeafIndex of a tail leaf: %d, %v; want %d", seq, err, last.Seq)
	}

	s.ix.setPaused(false)
	waitIndexed(t, s)
	for i, f := range tailFilters {
		if after := searchAll(t, s, f); !slices.Equal(after, before[i]) {
			t.Errorf("%+v: %d results from the tail, %d once indexed", f, len(before[i]), len(after))
		}
	}
	if got := searchAll(t, s, cairn.Filter{Text: "ledger"}); len(got) != 500/3+1 {
		t.Errorf("text search once indexed: %d results, want %d", len(got), 500/3+1)
	}
}

// TestIndexRebuilt: an index that is missing, belongs to another log or is
// ahead of the log (the log restored from a backup) is rebuilt from the log.
func TestIndexRebuilt(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "cairn.db")
	s := openCorpus(t, path)
	app, other := indexCorpus(0, 150)
	appendEntries(t, s, "acme", "app", app)
	appendEntries(t, s, "acme", "other", other)
	waitIndexed(t, s)
	want := map[int][]string{}
	for i, f := range tailFilters {
		want[i] = searchAll(t, s, f)
	}
	wantText := searchAll(t, s, cairn.Filter{Text: "gamma"})
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	backup, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}

	check := func(what string, rebuilt bool) {
		t.Helper()
		var logs bytes.Buffer
		s, err := Open(t.Context(), Config{Path: path, Logger: slog.New(slog.NewTextHandler(&logs, nil))})
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		if got := strings.Contains(logs.String(), "rebuilding the search index"); got != rebuilt {
			t.Errorf("%s: rebuilt %v, want %v; log: %s", what, got, rebuilt, logs.String())
		}
		waitIndexed(t, s)
		for i, f := range tailFilters {
			if f.Context == cairn.BuiltinContext {
				continue // reads are not recorded by the engine, but be safe
			}
			if got := searchAll(t, s, f); !slices.Equal(got, want[i]) {
				t.Errorf("%s: %+v: %d results, want %d", what, f, len(got), len(want[i]))
			}
		}
		if got := searchAll(t, s, cairn.Filter{Text: "gamma"}); !slices.Equal(got, wantText) {
			t.Errorf("%s: text: %d results, want %d", what, len(got), len(wantText))
		}
	}

	// Missing.
	for _, suffix := range []string{"", "-wal", "-shm"} {
		os.Remove(indexPath(path) + suffix)
	}
	check("index deleted", false)

	// An index of an older format (other tokens).
	old, err := sql.Open("sqlite", "file:"+indexPath(path))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := old.Exec("PRAGMA user_version = 1"); err != nil {
		t.Fatal(err)
	}
	old.Close()
	check("an older index format", true)

	// Another log's index.
	otherPath := filepath.Join(t.TempDir(), "cairn.db")
	o := openCorpus(t, otherPath)
	app, _ = indexCorpus(1000, 50) // fewer events: only the identity tells
	appendEntries(t, o, "acme", "app", app)
	waitIndexed(t, o)
	o.Close()
	copyFile(t, indexPath(otherPath), indexPath(path))
	check("another log's index", true)

	// The index is ahead of the log: more events were appended and indexed,
	// then the log was restored from the backup.
	s = openIndexed(t, path)
	app, _ = indexCorpus(150, 100)
	appendEntries(t, s, "acme", "app", app)
	waitIndexed(t, s)
	s.Close()
	if err := os.WriteFile(path, backup, 0o600); err != nil {
		t.Fatal(err)
	}
	check("log restored from a backup", true)
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	b, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	for _, suffix := range []string{"-wal", "-shm"} {
		os.Remove(to + suffix)
	}
	if err := os.WriteFile(to, b, 0o600); err != nil {
		t.Fatal(err)
	}
}

// TestAppendWaitsForIndex: with maxIndexLag events unindexed, appends wait
// for the indexer instead of growing the tail, and go on once it catches up.
func TestAppendWaitsForIndex(t *testing.T) {
	s := openIndexed(t, filepath.Join(t.TempDir(), "cairn.db"))
	defer s.Close()
	ctx := t.Context()
	entries := fillUnindexed(t, s)
	short, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
	_, err := s.Append(short, []*cairn.AppendRequest{{Org: "acme", Context: "app", Entries: entries[:1]}})
	cancel()
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("append with %d events unindexed: %v, want it to wait", maxIndexLag, err)
	}
	if lag := s.IndexLag(); lag != maxIndexLag {
		t.Fatalf("lag %d after a refused append, want %d", lag, maxIndexLag)
	}
	done := make(chan error, 1)
	go func() {
		_, err := s.Append(ctx, []*cairn.AppendRequest{{Org: "acme", Context: "app", Entries: entries[:1]}})
		done <- err
	}()
	time.Sleep(50 * time.Millisecond)
	s.ix.setPaused(false)
	if err := <-done; err != nil {
		t.Fatalf("append once the index caught up: %v", err)
	}
	waitIndexed(t, s)
	// Every fifth event is a document.update, and so is the last append.
	want := (maxIndexLag+4)/5 + 1
	got := countAction(t, s, "document.update")
	if got != want {
		t.Errorf("%d document.update events found, want %d", got, want)
	}
}

// TestAppendsDuringIndexBacklog: an index far behind the log (rebuilt, or
// after a crash) does not stop writes while it catches up; what is written
// meanwhile is indexed from the log, not held in memory; and once caught
// up, appends wait for the index again.
func TestAppendsDuringIndexBacklog(t *testing.T) {
	path := filepath.Join(t.TempDir(), "cairn.db")
	s := openIndexed(t, path)
	ctx := t.Context()
	entries := fillUnindexed(t, s)
	s.Close()

	s, err := Open(ctx, Config{Path: path, indexPaused: true})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	// Two more rounds' worth: the first round (the backlog at open) ends
	// with a second as long as itself, so the rounds do not shrink. An
	// append that waited for the (paused) indexer would fail with
	// unavailable after admitTimeout. (No shorter deadline: under the race
	// detector each append takes seconds.)
	for range 2 {
		if _, err := s.Append(ctx, []*cairn.AppendRequest{{Org: "acme", Context: "app", Entries: entries[:maxIndexLag/2]}}); err != nil {
			t.Fatalf("append during the backlog: %v", err)
		}
	}
	s.ix.mu.Lock()
	queued := len(s.ix.queue)
	s.ix.mu.Unlock()
	if queued != 0 {
		t.Errorf("%d events queued in memory during the backlog", queued)
	}
	if lag := s.IndexLag(); lag != 2*maxIndexLag {
		t.Errorf("lag %d, want %d", lag, 2*maxIndexLag)
	}
	// A search walks the newest maxTailWalk events of the tail, not all of
	// it: answered when they fill its page, refused when they do not.
	defer func(m int64) { maxTailWalk = m }(maxTailWalk)
	maxTailWalk = maxIndexLag
	top := int64(2 * maxIndexLag)
	for _, c := range []struct {
		f     cairn.Filter
		first int64
	}{
		{cairn.Filter{Limit: 10, SkipBuiltin: true}, top},
		{cairn.Filter{Action: "document.update", Limit: 10}, top - 1}, // every fifth event
	} {
		p, err := s.SearchEvents(ctx, "acme", c.f)
		if err != nil || len(p.Items) != 10 || p.Next == 0 || p.Items[0].Cursor != c.first {
			t.Fatalf("search %+v over a %d-event tail: %+v, %v", c.f, top, p, err)
		}
	}
	// A page filled by exactly the walked events gets a cursor: more may
	// match below them.
	maxTailWalk = 100
	p, err := s.SearchEvents(ctx, "acme", cairn.Filter{Limit: 100, SkipBuiltin: true})
	if err != nil || len(p.Items) != 100 || p.Next != top-99 {
		t.Fatalf("a page of the walked events: %d items, next %d, %v", len(p.Items), p.Next, err)
	}
	maxTailWalk = maxIndexLag
	_, err = s.SearchEvents(ctx, "acme", cairn.Filter{Action: "no.such", Limit: 10})
	if cairn.ErrorCode(err) != cairn.EUnavailable {
		t.Errorf("search for what the tail's newest %d events do not hold: %v, want %s", maxTailWalk, err, cairn.EUnavailable)
	}
	// Below the cursor, the tail is short enough to walk whole.
	p, err = s.SearchEvents(ctx, "acme", cairn.Filter{Action: "no.such", Limit: 10, Before: maxIndexLag / 2})
	if err != nil || len(p.Items) != 0 {
		t.Errorf("search with a cursor below the long tail: %d items, %v", len(p.Items), err)
	}
	s.ix.setPaused(false)
	waitIndexed(t, s)
	// Every fifth event is a document.update.
	if n, want := countAction(t, s, "document.update"), (maxIndexLag+4)/5+2*((maxIndexLag/2+4)/5); n != want {
		t.Errorf("%d document.update events found after the backlog, want %d", n, want)
	}
	s.ix.mu.Lock()
	backlog := s.ix.backlog
	s.ix.mu.Unlock()
	if backlog != 0 {
		t.Fatalf("backlog %d after catching up", backlog)
	}
	// Caught up: a new tail of maxIndexLag holds appends back again.
	s.ix.setPaused(true)
	appendEntries(t, s, "acme", "app", entries)
	wait, cancel2 := context.WithTimeout(ctx, 300*time.Millisecond)
	defer cancel2()
	if _, err := s.Append(wait, []*cairn.AppendRequest{{Org: "acme", Context: "app", Entries: entries[:1]}}); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("append with %d events unindexed after the backlog: %v, want it to wait", maxIndexLag, err)
	}
	s.ix.setPaused(false)
}

// fillUnindexed creates acme/app, pauses the indexer and appends
// maxIndexLag realistic events, which it returns.
func fillUnindexed(t *testing.T, s *Store) []cairn.Entry {
	t.Helper()
	if _, err := s.CreateOrg(t.Context(), "acme"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.CreateContext(t.Context(), &cairn.Context{Org: "acme", Name: "app"}); err != nil {
		t.Fatal(err)
	}
	s.ix.setPaused(true)
	entries := make([]cairn.Entry, 0, maxIndexLag)
	for i := range maxIndexLag {
		entries = append(entries, storetest.NewEntry("acme", "app", storetest.RealisticEvent(i)))
	}
	appendEntries(t, s, "acme", "app", entries)
	return entries
}

// TestIndexReadsAhead: a backlog of several batches is indexed whole, each
// batch after the first read from the log while the one before it was
// written.
func TestIndexReadsAhead(t *testing.T) {
	path := filepath.Join(t.TempDir(), "cairn.db")
	s := openIndexed(t, path)
	fillUnindexed(t, s) // maxIndexLag events: four batches
	s.Close()

	s = openIndexed(t, path)
	defer s.Close()
	waitIndexed(t, s)
	if n, want := countAction(t, s, "document.update"), (maxIndexLag+4)/5; n != want {
		t.Errorf("%d document.update events found after the backlog, want %d", n, want)
	}
	s.ix.mu.Lock()
	used := s.ix.readAheads
	s.ix.mu.Unlock()
	if want := maxIndexLag/indexBatch - 1; used != want {
		t.Errorf("%d batches came from a read ahead, want %d", used, want)
	}
}

// countAction counts an org's events with action a, through the index.
func countAction(t *testing.T, s *Store, a string) int {
	t.Helper()
	got := 0
	f := cairn.Filter{Action: a, Limit: 1000}
	for {
		p, err := s.SearchEvents(t.Context(), "acme", f)
		if err != nil {
			t.Fatal(err)
		}
		got += len(p.Items)
		if p.Next == 0 {
			return got
		}
		f.Before = p.Next
	}
}

// settleMerges waits until no merge runs and none is due.
func settleMerges(t *testing.T, s *Store) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		s.ix.segMu.Lock()
		busy := len(s.ix.mergingLvl) > 0
		s.ix.segMu.Unlock()
		s.ix.maybeMerge()
		if !busy {
			s.ix.segMu.Lock()
			busy = len(s.ix.mergingLvl) > 0
			s.ix.segMu.Unlock()
			if !busy {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatal("merges do not settle")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// liveSegments reads the live segments, oldest first, and checks that
// they hold disjoint gid ranges with levels that never rise towards the
// newest.
func liveSegments(t *testing.T, s *Store) []segment {
	t.Helper()
	rows, err := s.r.QueryContext(t.Context(), `SELECT id, level, lo, hi, events FROM ix.segments WHERE state = 1 ORDER BY lo`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var segs []segment
	for rows.Next() {
		var sg segment
		if err := rows.Scan(&sg.id, &sg.level, &sg.lo, &sg.hi, &sg.events); err != nil {
			t.Fatal(err)
		}
		if n := len(segs); n > 0 && (segs[n-1].hi >= sg.lo || segs[n-1].level < sg.level) {
			t.Fatalf("segment %+v after %+v", sg, segs[n-1])
		}
		segs = append(segs, sg)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return segs
}

// TestIndexMerges: every index transaction writes a segment; mergeFanout
// segments of a level merge into one of the next, the merged-away
// segments' pages are deleted, and the index finds the same events before
// and after, and after a restart.
func TestIndexMerges(t *testing.T) {
	path := filepath.Join(t.TempDir(), "cairn.db")
	s := openCorpus(t, path)
	ctx := t.Context()
	app, other := indexCorpus(0, 1100)
	var committed []cairn.Committed
	for i := 0; len(app) > 0; i++ {
		// Index transactions of 1-4 events: ~350 segments before merging,
		// more than mergeFanout^2.
		n := min(len(app), 1+i%4)
		committed = append(committed, appendEntries(t, s, "acme", "app", app[:n])...)
		app = app[n:]
		if len(other) > 0 {
			appendEntries(t, s, "acme", "other", other[:1])
			other = other[1:]
		}
		waitIndexed(t, s)
	}
	settleMerges(t, s)
	segs := liveSegments(t, s)
	levels := map[int64]int{}
	for _, sg := range segs {
		levels[sg.level]++
	}
	for l, n := range levels {
		if n >= mergeFanout {
			t.Errorf("level %d holds %d segments after merging", l, n)
		}
	}
	if levels[2] == 0 {
		t.Errorf("no segment of level 2: %v", levels)
	}
	s.ix.segMu.Lock()
	merged := s.ix.merged
	s.ix.segMu.Unlock()
	t.Logf("%d live segments, levels %v, %d merges", len(segs), levels, merged)
	var orphans int
	if err := s.r.QueryRowContext(ctx, `SELECT count(*) FROM ix.pages WHERE seg NOT IN (SELECT id FROM ix.segments WHERE state = 1)`).Scan(&orphans); err != nil {
		t.Fatal(err)
	}
	if orphans > 0 {
		t.Errorf("%d pages of merged-away segments are left", orphans)
	}
	want := map[int][]string{}
	for i, f := range tailFilters {
		want[i] = searchLikeWalk(t, s, f)
	}
	if got := len(searchAll(t, s, cairn.Filter{ActionPrefix: "document."})); got == 0 {
		t.Fatal("the corpus has no document events")
	}
	// Leaves are found by their hash in merged segments (their terms are
	// in no Bloom filter).
	for _, c := range []cairn.Committed{committed[0], committed[len(committed)/2], committed[len(committed)-1]} {
		if seq, err := s.LeafIndex(ctx, "acme", "app", c.LeafHash, c.Seq+1); err != nil || seq != c.Seq {
			t.Errorf("LeafIndex of leaf %d: %d, %v", c.Seq, seq, err)
		}
	}
	if _, err := s.LeafIndex(ctx, "acme", "app", [32]byte{1}, int64(len(committed))); cairn.ErrorCode(err) != cairn.ENotFound {
		t.Errorf("LeafIndex of an unknown hash: %v", err)
	}
	// Without the segments' directories in memory (a segment a search
	// sees before its directory is published), probes go through SQL.
	s.ix.pages.mu.Lock()
	if len(s.ix.pages.dirs) != len(segs) || len(s.ix.pages.pages) == 0 {
		t.Errorf("%d directories and %d cached pages for %d segments", len(s.ix.pages.dirs), len(s.ix.pages.pages), len(segs))
	}
	clear(s.ix.pages.dirs)
	s.ix.pages.mu.Unlock()
	for i, f := range tailFilters {
		if got := searchAll(t, s, f); !slices.Equal(got, want[i]) {
			t.Errorf("%+v: %d events without directories, %d with", f, len(got), len(want[i]))
		}
	}
	s.Close()

	s = openIndexed(t, path)
	defer s.Close()
	if got := liveSegments(t, s); len(got) != len(segs) {
		t.Errorf("%d live segments after a restart, %d before", len(got), len(segs))
	}
	for i, f := range tailFilters {
		if got := searchAll(t, s, f); !slices.Equal(got, want[i]) {
			t.Errorf("%+v: %d events after a restart, %d before", f, len(got), len(want[i]))
		}
	}
}

// walkAll is searchAll answered by walking the table with the filters'
// column conditions, without the index.
func walkAll(t *testing.T, s *Store, f cairn.Filter) []string {
	t.Helper()
	f.Limit = MaxLimit
	p, err := s.searchPlan(t.Context(), 1, "acme", f)
	if err != nil {
		t.Fatal(err)
	}
	if p == nil {
		return nil
	}
	var ids []string
	for {
		tx, err := s.r.BeginTx(t.Context(), &sql.TxOptions{ReadOnly: true})
		if err != nil {
			t.Fatal(err)
		}
		page := &cairn.Page{}
		err = s.searchRows(t.Context(), tx, p.walk(), p, "acme", page)
		tx.Rollback()
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range page.Items {
			ids = append(ids, e.ID)
		}
		if page.Next == 0 {
			return ids
		}
		p.before = page.Next
	}
}

// indexFifty writes 50 events to acme/app in a new store at path, waits
// until they are indexed, closes the store and returns their ids as a
// search of the context finds them.
func indexFifty(t *testing.T, path string) []string {
	t.Helper()
	s := openIndexed(t, path)
	defer s.Close()
	ctx := t.Context()
	if _, err := s.CreateOrg(ctx, "acme"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.CreateContext(ctx, &cairn.Context{Org: "acme", Name: "app"}); err != nil {
		t.Fatal(err)
	}
	app, _ := indexCorpus(0, 50)
	appendEntries(t, s, "acme", "app", app)
	waitIndexed(t, s)
	ids := searchAll(t, s, cairn.Filter{Context: "app"})
	if len(ids) != len(app) {
		t.Fatalf("%d events found, %d written", len(ids), len(app))
	}
	return ids
}

// TestUnfinishedMergeCleared: a segment a merge was still writing when the
// server stopped (state 0), with its pages, is deleted at the next start,
// and searches never see it.
func TestUnfinishedMergeCleared(t *testing.T) {
	path := filepath.Join(t.TempDir(), "cairn.db")
	want := indexFifty(t, path)
	ctx := t.Context()

	// A merge's output, half written: a segment row in state 0 and a
	// page claiming the same events.
	db, err := sql.Open("sqlite", "file:"+indexPath(path))
	if err != nil {
		t.Fatal(err)
	}
	w := newPageWriter()
	w.add(token(1, tokContext, "2"), 1)
	pages, _ := w.finish()
	res, err := db.Exec(`INSERT INTO segments (level, lo, hi, tmin, tmax, events, terms, state, dir, bloom) VALUES (5, 1, 1000, 0, 0, 1, 1, 0, x'', x'')`)
	if err != nil {
		t.Fatal(err)
	}
	id, _ := res.LastInsertId()
	if _, err := db.Exec(`INSERT INTO pages (seg, term, ngid, data) VALUES (?, ?, ?, ?)`, id, pages[0].term, pages[0].ngid, pages[0].data); err != nil {
		t.Fatal(err)
	}
	db.Close()

	s := openIndexed(t, path)
	defer s.Close()
	if got := searchAll(t, s, cairn.Filter{Context: "app"}); !slices.Equal(got, want) {
		t.Fatalf("%d events found with an unfinished merge's segment in the file, %d before", len(got), len(want))
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		var n int
		if err := s.r.QueryRowContext(ctx, `SELECT (SELECT count(*) FROM ix.segments WHERE id = ?) + (SELECT count(*) FROM ix.pages WHERE seg = ?)`, id, id).Scan(&n); err != nil {
			t.Fatal(err)
		}
		if n == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the unfinished merge's segment is still there")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestDamagedSegmentRebuilt: a live segment whose directory does not
// decode makes the index stale: it is rebuilt from the log at start, and
// the server starts.
func TestDamagedSegmentRebuilt(t *testing.T) {
	path := filepath.Join(t.TempDir(), "cairn.db")
	want := indexFifty(t, path)

	db, err := sql.Open("sqlite", "file:"+indexPath(path))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(`UPDATE segments SET dir = x'0102' WHERE state = 1`); err != nil {
		t.Fatal(err)
	}
	db.Close()

	s := openIndexed(t, path)
	defer s.Close()
	waitIndexed(t, s)
	if got := searchAll(t, s, cairn.Filter{Context: "app"}); !slices.Equal(got, want) {
		t.Fatalf("%d events found after the rebuild, %d before", len(got), len(want))
	}
}

// TestSearchWithEveryReaderBusy: a search holds a read connection for its
// transaction and must not need a second one — for a context's name or a
// statement not prepared yet, as right after a start — or searches that
// arrive together, one per connection, wait on each other for ever. With
// a single reader connection, one search is such a crowd.
func TestSearchWithEveryReaderBusy(t *testing.T) {
	path := filepath.Join(t.TempDir(), "cairn.db")
	want := indexFifty(t, path)
	open := func() *Store {
		s, err := Open(t.Context(), Config{Path: path, Readers: 1})
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	var found *cairn.StoredEvent
	for _, f := range []cairn.Filter{
		{Context: "app"},                     // the table walk
		{Context: "app", ActorID: "user-3"},  // the index and its candidates
		{Context: "app", Text: "alpha"},      // free text: the index alone
		{Context: "app", Outcome: "failure"}, // another shape
	} {
		s := open() // nothing cached: every shape's first search
		ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
		f.Limit = 1000
		page, err := s.SearchEvents(ctx, "acme", f)
		cancel()
		if err != nil {
			t.Fatalf("%+v: %v", f, err)
		}
		all := f.ActorID == "" && f.Text == "" && f.Outcome == ""
		if len(page.Items) == 0 || all && len(page.Items) != len(want) {
			t.Fatalf("%+v: %d events (%d in the context)", f, len(page.Items), len(want))
		}
		found = page.Items[0]
		// The statements the search prepared on its transaction are
		// prepared on the pool once it is done, for the searches after.
		s.mu.RLock()
		n := len(s.stmts)
		s.mu.RUnlock()
		if n == 0 {
			t.Errorf("%+v: no statement prepared for later searches", f)
		}
		s.Close()
	}
	// A proof's leaf lookup reads the index the same way.
	s := open()
	defer s.Close()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	seq, err := s.LeafIndex(ctx, "acme", "app", found.LeafHash, int64(len(want)))
	if err != nil {
		t.Fatal(err)
	}
	if seq != found.Seq {
		t.Errorf("leaf at %d, want %d", seq, found.Seq)
	}
}

// TestLongRunsAcrossPages: a term's run longer than a page, probed by the
// candidates of a shorter list (an AND), is decoded as the cursor moves and
// continued on the next page; the index finds what a walk of the table
// finds.
func TestLongRunsAcrossPages(t *testing.T) {
	s := openCorpus(t, filepath.Join(t.TempDir(), "cairn.db"))
	defer s.Close()
	ctx := t.Context()
	app, other := indexCorpus(0, 12000)
	for len(app) > 0 {
		n := min(len(app), 1000)
		appendEntries(t, s, "acme", "app", app[:n])
		app = app[n:]
		n = min(len(other), 250)
		appendEntries(t, s, "acme", "other", other[:n])
		other = other[n:]
		waitIndexed(t, s)
	}
	settleMerges(t, s)
	ref, err := s.resolve(ctx, s.r, "acme", "app")
	if err != nil {
		t.Fatal(err)
	}
	// A page is keyed by its last entry, so a run over k pages ends k-1
	// of them.
	var ending int
	if err := s.r.QueryRowContext(ctx, `SELECT count(*) FROM ix.pages WHERE term = ?`,
		token(ref.orgID, tokContext, strconv.FormatInt(ref.id, 10))).Scan(&ending); err != nil {
		t.Fatal(err)
	}
	if ending < 3 {
		t.Fatalf("the context's run ends %d pages: the corpus has no run over several pages", ending)
	}
	for _, f := range tailFilters {
		searchLikeWalk(t, s, f)
	}
	for _, f := range []cairn.Filter{
		{Context: "app", ActorID: "user-5"},
		{Context: "app", Kind: cairn.KindRead, ActorID: "user-1"}, // kind update is every fifth event, all in other
		{Context: "app", Outcome: cairn.OutcomeFailure, GroupID: "acme/unit-1/team-2"},
	} {
		if len(searchLikeWalk(t, s, f)) == 0 {
			t.Errorf("%+v: nothing found, so nothing compared", f)
		}
	}
}

// searchLikeWalk returns the ids a search by f finds, paged, and reports
// an error unless a walk of the table finds the same.
func searchLikeWalk(t *testing.T, s *Store, f cairn.Filter) []string {
	t.Helper()
	found, walked := searchAll(t, s, f), walkAll(t, s, f)
	if !slices.Equal(found, walked) {
		t.Errorf("%+v: the index finds %d events, a walk of the table %d", f, len(found), len(walked))
	}
	return found
}
