package postgres_test

import (
	"context"
	"crypto/sha256"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/cairn-audit/cairn"
	"github.com/cairn-audit/cairn/postgres"
	"github.com/cairn-audit/cairn/storetest"
	"github.com/transparency-dev/merkle/compact"
	"github.com/transparency-dev/merkle/rfc6962"
)

// nodes opens n Stores on one fresh schema, as n `cairn serve` processes
// would, all at once (the migrations must cope).
func nodes(t *testing.T, n int) []*postgres.Store {
	t.Helper()
	dsn, schema := newSchema(t)
	out := make([]*postgres.Store, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			out[i], errs[i] = postgres.Open(t.Context(), postgres.Config{DSN: dsn, Schema: schema, MaxConns: 4})
		})
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("node %d: %v", i, err)
		}
		s := out[i]
		t.Cleanup(func() { s.Close() })
	}
	return out
}

func TestConcurrentStartMigratesOnce(t *testing.T) {
	t.Parallel()
	ns := nodes(t, 4)
	const want = 5 // migrations in schema.go
	for i, s := range ns {
		v, err := s.SchemaVersion(t.Context())
		if err != nil || v != want {
			t.Fatalf("node %d: schema version %d, %v", i, v, err)
		}
	}
	var n int
	if err := ns[0].Pool().QueryRow(t.Context(), `SELECT count(*) FROM cairn_migrations`).Scan(&n); err != nil || n != want {
		t.Fatalf("cairn_migrations has %d rows (%v), want %d", n, err, want)
	}
	parts, err := ns[0].Partitions(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now().UTC()
	for k := range 3 {
		m := time.Date(now.Year(), now.Month()+time.Month(k), 1, 0, 0, 0, 0, time.UTC)
		if name := fmt.Sprintf("events_y%04dm%02d", m.Year(), m.Month()); !slices.Contains(parts, name) {
			t.Fatalf("partition %s missing: %v", name, parts)
		}
	}
}

func entries(org, context string, n int, mk func(i int) cairn.Event) []cairn.Entry {
	out := make([]cairn.Entry, n)
	for i := range out {
		e := cairn.Event{Action: "node.write"}
		if mk != nil {
			e = mk(i)
		}
		out[i] = storetest.NewEntry(org, context, e)
	}
	return out
}

func appendTo(t *testing.T, s *postgres.Store, org, context string, es []cairn.Entry) []cairn.Committed {
	t.Helper()
	res, err := s.Append(t.Context(), []*cairn.AppendRequest{{Org: org, Context: context, Entries: es}})
	if err == nil {
		err = res[0].Err
	}
	if err != nil {
		t.Fatalf("append: %v", err)
	}
	return res[0].Committed
}

func root(t *testing.T, leaves [][]byte) [32]byte {
	t.Helper()
	rf := compact.RangeFactory{Hash: rfc6962.DefaultHasher.HashChildren}
	r := rf.NewEmptyRange(0)
	for _, l := range leaves {
		if err := r.Append(rfc6962.DefaultHasher.HashLeaf(l), nil); err != nil {
			t.Fatal(err)
		}
	}
	h, err := r.GetRootHash(nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(leaves) == 0 {
		h = rfc6962.DefaultHasher.EmptyRoot()
	}
	return [32]byte(h)
}

// TestNodesShareOneTree: three Stores (nodes) append to one context and to
// their own contexts at once; seqs are contiguous, the root is the
// independent one, and each node's cached tree edge survives the others'
// appends in between.
func TestNodesShareOneTree(t *testing.T) {
	t.Parallel()
	ns := nodes(t, 3)
	ctx := t.Context()
	if _, err := ns[0].CreateOrg(ctx, "acme"); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"shared", "n0", "n1", "n2"} {
		if _, err := ns[1].CreateContext(ctx, &cairn.Context{Org: "acme", Name: name}); err != nil {
			t.Fatal(err)
		}
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	seqs := map[string][]int64{}
	for w := range 12 {
		wg.Go(func() {
			s := ns[w%3]
			name := "shared"
			if w%2 == 1 {
				name = fmt.Sprintf("n%d", w%3)
			}
			for i := range 15 {
				res, err := s.Append(ctx, []*cairn.AppendRequest{{Org: "acme", Context: name, Entries: entries("acme", name, 1+(w+i)%7, nil)}})
				if err == nil {
					err = res[0].Err
				}
				if err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				for _, c := range res[0].Committed {
					seqs[name] = append(seqs[name], c.Seq)
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	for name, got := range seqs {
		slices.Sort(got)
		for i, s := range got {
			if s != int64(i) {
				t.Fatalf("%s: seq %d at position %d: not contiguous", name, s, i)
			}
		}
		for i, s := range ns {
			c, err := s.GetContext(ctx, "acme", name)
			if err != nil {
				t.Fatal(err)
			}
			leaves, err := s.ReadLeaves(ctx, "acme", name, 0, c.Size)
			if err != nil {
				t.Fatal(err)
			}
			if c.Size != int64(len(got)) || root(t, leaves) != c.Root {
				t.Fatalf("node %d, %s: size %d root %x; want %d and the independent root", i, name, c.Size, c.Root, len(got))
			}
		}
	}
}

// TestCommitOrder: while nodes append to different contexts of one org, the
// set of events at or below any gid a reader has seen never changes: a gid
// is never handed to a transaction that commits after a larger one did.
// With gids from a sequence this fails within a few rounds.
func TestCommitOrder(t *testing.T) {
	t.Parallel()
	ns := nodes(t, 2)
	ctx := t.Context()
	if _, err := ns[0].CreateOrg(ctx, "acme"); err != nil {
		t.Fatal(err)
	}
	for i := range 6 {
		if _, err := ns[0].CreateContext(ctx, &cairn.Context{Org: "acme", Name: fmt.Sprint("c", i)}); err != nil {
			t.Fatal(err)
		}
	}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for w := range 6 {
		wg.Go(func() {
			name := fmt.Sprint("c", w)
			for {
				select {
				case <-stop:
					return
				default:
				}
				if _, err := ns[w%2].Append(ctx, []*cairn.AppendRequest{{Org: "acme", Context: name, Entries: entries("acme", name, 3, nil)}}); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	type seen struct {
		below int64
		ids   []string
	}
	var history []seen
	deadline := time.Now().Add(3 * time.Second)
	for time.Now().Before(deadline) {
		p, err := ns[1].SearchEvents(ctx, "acme", cairn.Filter{Limit: 50})
		if err != nil {
			t.Fatal(err)
		}
		if len(p.Items) > 0 {
			var ids []string
			for _, e := range p.Items {
				ids = append(ids, e.ID)
			}
			history = append(history, seen{p.Items[0].Cursor + 1, ids})
		}
	}
	close(stop)
	wg.Wait()
	if len(history) < 10 {
		t.Fatalf("only %d reads", len(history))
	}
	for _, h := range history {
		p, err := ns[0].SearchEvents(ctx, "acme", cairn.Filter{Limit: 50, Before: h.below})
		if err != nil {
			t.Fatal(err)
		}
		var ids []string
		for _, e := range p.Items {
			ids = append(ids, e.ID)
		}
		if !slices.Equal(ids, h.ids) {
			t.Fatalf("below gid %d: first read %d events, now %d (%d in common): an event committed later took a smaller gid",
				h.below, len(h.ids), len(ids), len(slices.DeleteFunc(slices.Clone(ids), func(id string) bool { return !slices.Contains(h.ids, id) })))
		}
	}
}

// TestCheckpointRace: nodes record checkpoints of growing sizes at once;
// none is ever recorded after a larger one, and the context's signed size
// is the largest recorded.
func TestCheckpointRace(t *testing.T) {
	t.Parallel()
	ns := nodes(t, 2)
	ctx := t.Context()
	if _, err := ns[0].CreateOrg(ctx, "acme"); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	var added []int64
	for w := range 8 {
		wg.Go(func() {
			for size := int64(w % 4); size < 200; size += 4 {
				cp := &cairn.Checkpoint{Size: size, Root: sha256.Sum256(fmt.Append(nil, size)), Note: []byte("n\n"), SignedAt: time.Now()}
				err := ns[w%2].AddCheckpoint(ctx, "acme", cairn.BuiltinContext, cp)
				switch cairn.ErrorCode(err) {
				case "":
					mu.Lock()
					added = append(added, size)
					mu.Unlock()
				case cairn.EConflict:
				default:
					t.Errorf("size %d: %v", size, err)
					return
				}
			}
		})
	}
	wg.Wait()
	// Had a smaller checkpoint been recorded after a larger one, the
	// signed size (set by every add) would be below the largest.
	var signed, maxSize, n int64
	if err := ns[0].Pool().QueryRow(ctx, `SELECT c.signed_size, max(k.size), count(*) FROM contexts c
		JOIN checkpoints k ON k.ctx_id = c.id WHERE c.name = 'cairn' GROUP BY c.signed_size`).Scan(&signed, &maxSize, &n); err != nil {
		t.Fatal(err)
	}
	if signed != maxSize || n != int64(len(added)) {
		t.Fatalf("signed size %d, largest checkpoint %d, %d rows for %d successful adds", signed, maxSize, n, len(added))
	}
	latest, err := ns[1].LatestCheckpoint(ctx, "acme", cairn.BuiltinContext)
	if err != nil || latest.Size != maxSize {
		t.Fatalf("latest checkpoint %+v, %v; want size %d", latest, err, maxSize)
	}
}

// TestAppendOnly: triggers refuse to change or remove events, checkpoints
// and cosignatures, whoever connects; a checkpoint note may only gain
// lines.
func TestAppendOnly(t *testing.T) {
	t.Parallel()
	s := open(t)
	ctx := t.Context()
	if _, err := s.CreateOrg(ctx, "acme"); err != nil {
		t.Fatal(err)
	}
	appendTo(t, s, "acme", cairn.BuiltinContext, entries("acme", cairn.BuiltinContext, 3, nil))
	if err := s.AddCheckpoint(ctx, "acme", cairn.BuiltinContext, &cairn.Checkpoint{Size: 3, Note: []byte("a\n\n— a b\n"), SignedAt: time.Now()}); err != nil {
		t.Fatal(err)
	}
	if err := s.AddCosignatures(ctx, "acme", cairn.BuiltinContext, 3, []cairn.Cosignature{{Witness: "w", Line: []byte("— w c\n"), Time: time.Now()}}); err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{
		`UPDATE events SET action = 'x'`,
		`UPDATE events SET leaf = leaf || '\x00'::bytea`,
		`DELETE FROM events`,
		`TRUNCATE events`,
		`UPDATE checkpoints SET note = '\x00'::bytea`,
		`UPDATE checkpoints SET size = 5`,
		`UPDATE checkpoints SET note = note || '\x00'::bytea, root = '\x01'::bytea`,
		`DELETE FROM checkpoints`,
		`TRUNCATE checkpoints CASCADE`,
		`UPDATE cosignatures SET line = '\x00'::bytea`,
		`DELETE FROM cosignatures`,
		`TRUNCATE cosignatures`,
	} {
		if _, err := s.Pool().Exec(ctx, q); err == nil {
			t.Errorf("%s: allowed", q)
		}
	}
	if _, err := s.Pool().Exec(ctx, `UPDATE checkpoints SET note = note || convert_to(E'— w2 d\n', 'UTF8')`); err != nil {
		t.Errorf("appending a line: %v", err)
	}
	c, err := s.GetContext(ctx, "acme", cairn.BuiltinContext)
	if err != nil || c.Size != 3 {
		t.Fatalf("context after the attempts: %+v, %v", c, err)
	}
}

// TestPartitions: an event received in a month without a partition gets
// one (not the default partition); searches and leaves span partitions.
func TestPartitions(t *testing.T) {
	t.Parallel()
	s := open(t)
	ctx := t.Context()
	if _, err := s.CreateOrg(ctx, "acme"); err != nil {
		t.Fatal(err)
	}
	old := time.Date(2024, 2, 29, 23, 59, 59, 0, time.UTC)
	appendTo(t, s, "acme", cairn.BuiltinContext, entries("acme", cairn.BuiltinContext, 2, func(i int) cairn.Event {
		return cairn.Event{Action: "old.write", ReceivedTime: old.Add(time.Duration(i) * time.Second)}
	}))
	appendTo(t, s, "acme", cairn.BuiltinContext, entries("acme", cairn.BuiltinContext, 2, nil))
	parts, err := s.Partitions(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"events_y2024m02", "events_y2024m03"} {
		if !slices.Contains(parts, want) {
			t.Fatalf("partition %s missing: %v", want, parts)
		}
	}
	var inDefault int
	if err := s.Pool().QueryRow(ctx, `SELECT count(*) FROM events_default`).Scan(&inDefault); err != nil || inDefault != 0 {
		t.Fatalf("%d rows in the default partition (%v)", inDefault, err)
	}
	leaves, err := s.ReadLeaves(ctx, "acme", cairn.BuiltinContext, 0, 4)
	if err != nil || len(leaves) != 4 {
		t.Fatalf("leaves across partitions: %d, %v", len(leaves), err)
	}
	p, err := s.SearchEvents(ctx, "acme", cairn.Filter{Limit: 3})
	if err != nil || len(p.Items) != 3 || p.Items[0].Seq != 3 || p.Items[2].Seq != 1 || p.Next == 0 {
		t.Fatalf("search across partitions: %+v, %v", p, err)
	}
}

// TestLeases: a lease is held by one node at a time, released by Release
// and by the holder's death (its session ends).
func TestLeases(t *testing.T) {
	t.Parallel()
	ns := nodes(t, 2)
	ctx := t.Context()
	a, err := ns[0].TryLease(ctx, "fwd")
	if err != nil || a == nil {
		t.Fatalf("first lease: %v, %v", a, err)
	}
	if b, err := ns[1].TryLease(ctx, "fwd"); err != nil || b != nil {
		t.Fatalf("second node got a held lease: %v, %v", b, err)
	}
	if other, err := ns[1].TryLease(ctx, "other"); err != nil || other == nil {
		t.Fatalf("another lease: %v, %v", other, err)
	}
	a.Release()
	b, err := ns[1].TryLease(ctx, "fwd")
	if err != nil || b == nil {
		t.Fatalf("lease after release: %v, %v", b, err)
	}
	if a, err := ns[0].TryLease(ctx, "fwd"); err != nil || a != nil {
		t.Fatalf("first node took a lease held by the second: %v, %v", a, err)
	}
	ns[1].Close() // the holder dies
	select {
	case <-b.Lost():
	default:
		t.Fatal("a closed store's lease is not reported lost")
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		a, err := ns[0].TryLease(ctx, "fwd")
		if err != nil {
			t.Fatal(err)
		}
		if a != nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the lease of a dead node was never freed")
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestTimeWindowsOutOfOrder: events whose event_time runs backwards and
// forwards across commits (backdated, clock skew) are found by every time
// window exactly as a scan would find them; the time marks only narrow the
// walk.
func TestTimeWindowsOutOfOrder(t *testing.T) {
	t.Parallel()
	s := open(t)
	ctx := t.Context()
	if _, err := s.CreateOrg(ctx, "acme"); err != nil {
		t.Fatal(err)
	}
	base := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	r := rand.New(rand.NewPCG(3, 4))
	var times []time.Time
	var ids []string
	for range 20 {
		cs := appendTo(t, s, "acme", cairn.BuiltinContext, entries("acme", cairn.BuiltinContext, 10, func(int) cairn.Event {
			at := base.Add(time.Duration(r.Int64N(int64(72 * time.Hour))))
			times = append(times, at)
			return cairn.Event{Action: "w.x", EventTime: at}
		}))
		for _, c := range cs {
			ids = append(ids, c.ID)
		}
	}
	for range 200 {
		since := base.Add(time.Duration(r.Int64N(int64(80*time.Hour))) - 4*time.Hour)
		until := since.Add(time.Duration(r.Int64N(int64([]time.Duration{time.Second, time.Minute, time.Hour, 30 * time.Hour}[r.IntN(4)]))))
		f := cairn.Filter{Since: since, Until: until, Limit: 7}
		switch r.IntN(4) {
		case 0:
			f.Since = time.Time{}
		case 1:
			f.Until = time.Time{}
		}
		var want []string
		for i := len(ids) - 1; i >= 0; i-- {
			if (f.Since.IsZero() || !times[i].Before(f.Since)) && (f.Until.IsZero() || times[i].Before(f.Until)) {
				want = append(want, ids[i])
			}
		}
		var got []string
		for {
			p, err := s.SearchEvents(ctx, "acme", f)
			if err != nil {
				t.Fatal(err)
			}
			for _, e := range p.Items {
				got = append(got, e.ID)
			}
			if p.Next == 0 {
				break
			}
			f.Before = p.Next
		}
		if !slices.Equal(got, want) {
			t.Fatalf("window [%v, %v): got %d events, want %d", f.Since, f.Until, len(got), len(want))
		}
	}
}

// TestSearchWithEveryConnBusy: a search whose page names a context the
// node has not cached yet must not need a second connection while its rows
// hold one. Here the pool has two, the test holds one, and the search must
// still answer.
func TestSearchWithEveryConnBusy(t *testing.T) {
	t.Parallel()
	dsn, schema := newSchema(t)
	ctx := t.Context()
	open := func() *postgres.Store {
		s, err := postgres.Open(ctx, postgres.Config{DSN: dsn, Schema: schema, MaxConns: 2})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		return s
	}
	writer := open()
	if _, err := writer.CreateOrg(ctx, "acme"); err != nil {
		t.Fatal(err)
	}
	if _, err := writer.CreateContext(ctx, &cairn.Context{Org: "acme", Name: "app"}); err != nil {
		t.Fatal(err)
	}
	want := appendTo(t, writer, "acme", "app", entries("acme", "app", 3, nil))

	reader := open() // a fresh node: no context names cached
	conn, err := reader.Pool().Acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Release()
	sctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	page, err := reader.SearchEvents(sctx, "acme", cairn.Filter{Limit: 50})
	if err != nil {
		t.Fatalf("search with one free connection: %v", err)
	}
	if len(page.Items) != len(want) {
		t.Fatalf("search found %d events, want %d", len(page.Items), len(want))
	}
	for i, e := range page.Items {
		if e.Context != "app" || e.Org != "acme" || e.ID != want[len(want)-1-i].ID {
			t.Fatalf("item %d: %s/%s %s, want acme/app %s", i, e.Org, e.Context, e.ID, want[len(want)-1-i].ID)
		}
	}
}
