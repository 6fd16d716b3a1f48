package merkle

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cairn-audit/cairn"
	"github.com/google/go-cmp/cmp"
	"github.com/transparency-dev/merkle/proof"
	"github.com/transparency-dev/merkle/rfc6962"
)

// syncBuffer collects log output written from the Run goroutine.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

// records returns the JSON log records at level (all if "").
func (b *syncBuffer) records(t *testing.T, level string) []map[string]any {
	t.Helper()
	b.mu.Lock()
	defer b.mu.Unlock()
	var out []map[string]any
	for line := range strings.Lines(b.buf.String()) {
		var r map[string]any
		if err := json.Unmarshal([]byte(line), &r); err != nil {
			t.Fatalf("log line %q: %v", line, err)
		}
		if level == "" || r["level"] == level {
			out = append(out, r)
		}
	}
	return out
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

type fixture struct {
	store  *memLog
	signer *Signer
	cp     *Checkpointer
	logs   *syncBuffer
	now    time.Time
}

func newFixture(t *testing.T, cfg Config) *fixture {
	t.Helper()
	f := &fixture{
		store:  newMemLog(),
		signer: testSigner(t),
		logs:   &syncBuffer{},
		now:    time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC),
	}
	cfg.Store = f.store
	cfg.Signer = f.signer
	cfg.Logger = slog.New(slog.NewJSONHandler(f.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	cfg.Now = func() time.Time { return f.now }
	cp, err := NewCheckpointer(cfg)
	if err != nil {
		t.Fatal(err)
	}
	f.cp = cp
	t.Cleanup(func() {
		// No key material in any log line, whatever happened.
		seed := base64.StdEncoding.EncodeToString(testKey().Seed())
		if logs := f.logs.String(); strings.Contains(logs, seed[:12]) || strings.Contains(logs, "PRIVATE") {
			t.Error("logs reveal the signing key")
		}
	})
	return f
}

// run starts Run and stops it when the test ends.
func (f *fixture) run(t *testing.T) {
	t.Helper()
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- f.cp.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run returned %v after cancellation, want nil", err)
		}
	})
}

// verifyAll checks every stored checkpoint of a context: each verifies with
// the independent parsers, and each is consistent with all earlier ones
// (proofs from the store, checked with transparency-dev/merkle).
func (f *fixture) verifyAll(t *testing.T, org, name string) []*cairn.Checkpoint {
	t.Helper()
	cps := f.store.checkpoints(org, name)
	origin := Origin(testHost, org, name)
	v := checkpointVerifier(t, f.signer, origin)
	for i, cp := range cps {
		for j, err := range verifyCheckpoint(cp.Note, origin, v, cp.Size, cp.Root) {
			if err != nil {
				t.Errorf("checkpoint %d (size %d): verifier %d: %v", i, cp.Size, j, err)
			}
		}
		for _, old := range cps[:i] {
			p, err := ProveConsistency(t.Context(), f.store, org, name, old.Size, cp.Size)
			if err != nil {
				t.Fatalf("ProveConsistency(%d, %d): %v", old.Size, cp.Size, err)
			}
			if err := proof.VerifyConsistency(rfc6962.DefaultHasher, uint64(old.Size), uint64(cp.Size),
				byteSlices(p), old.Root[:], cp.Root[:]); err != nil {
				t.Errorf("checkpoints %d and %d are inconsistent: %v", old.Size, cp.Size, err)
			}
		}
	}
	return cps
}

func TestConfigValidate(t *testing.T) {
	m, s := newMemLog(), testSigner(t)
	for _, c := range []struct {
		name string
		cfg  Config
	}{
		{"no store", Config{Signer: s}},
		{"no signer", Config{Store: m}},
		{"negative interval", Config{Store: m, Signer: s, Interval: -time.Millisecond}},
		{"interval above the 1 s contract", Config{Store: m, Signer: s, Interval: 2 * time.Second}},
		{"poll below interval", Config{Store: m, Signer: s, Interval: 500 * time.Millisecond, Poll: 100 * time.Millisecond}},
	} {
		t.Run(c.name, func(t *testing.T) {
			if _, err := NewCheckpointer(c.cfg); cairn.ErrorCode(err) != cairn.EInvalid {
				t.Errorf("error code %q, want %q", cairn.ErrorCode(err), cairn.EInvalid)
			}
		})
	}
	cfg := Config{Store: m, Signer: s}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	if cfg.Interval != DefaultInterval || cfg.Poll != DefaultPoll || cfg.Logger == nil || cfg.Now == nil {
		t.Errorf("defaults not applied: %+v", cfg)
	}
}

func TestSignHead(t *testing.T) {
	const org, name = "acme", "payments"
	f := newFixture(t, Config{})
	ctx := t.Context()

	// A new, empty context gets an empty checkpoint; the engine may report
	// its root as zero or as the empty root.
	empty := f.store.appendLeaves(t, org, name)
	cp, err := f.cp.SignHead(ctx, cairn.Head{Org: org, Context: name})
	if err != nil {
		t.Fatalf("SignHead(empty): %v", err)
	}
	if cp.Size != 0 || cp.Root != EmptyRoot() || empty.Root != EmptyRoot() {
		t.Errorf("empty checkpoint = %d %x, want 0 and the empty root", cp.Size, cp.Root)
	}
	if !cp.SignedAt.Equal(f.now) {
		t.Errorf("SignedAt = %v, want the injected clock's %v", cp.SignedAt, f.now)
	}

	var last cairn.Head
	for _, n := range []int{1, 1, 2, 5, 100, 200} {
		last = f.store.appendLeaves(t, org, name, testLeaves(n)...)
		cp, err := f.cp.SignHead(ctx, last)
		if err != nil {
			t.Fatalf("SignHead(size %d): %v", last.Size, err)
		}
		if cp.Size != last.Size || cp.Root != last.Root {
			t.Errorf("checkpoint %d %x, want %d %x", cp.Size, cp.Root, last.Size, last.Root)
		}
	}

	// Signing the same head again records nothing new.
	before := len(f.store.checkpoints(org, name))
	again, err := f.cp.SignHead(ctx, last)
	if err != nil || again.Size != last.Size {
		t.Errorf("SignHead(same head) = %v, %v; want the existing checkpoint", again, err)
	}
	if got := len(f.store.checkpoints(org, name)); got != before {
		t.Errorf("re-signing the same head stored %d checkpoints, want %d", got, before)
	}

	cps := f.verifyAll(t, org, name)
	var sizes []int64
	for _, cp := range cps {
		sizes = append(sizes, cp.Size)
	}
	if diff := cmp.Diff([]int64{0, 1, 2, 4, 9, 109, 309}, sizes); diff != "" {
		t.Errorf("checkpoint sizes (-want +got):\n%s", diff)
	}
}

// TestSignHeadRefuses covers every head the signer must not sign. Each
// subtest starts from a context signed at size 10.
func TestSignHeadRefuses(t *testing.T) {
	const org, name = "acme", "payments"
	other := func(n int) [][]byte {
		leaves := testLeaves(n)
		for i := range leaves {
			leaves[i] = append([]byte("forked "), leaves[i]...)
		}
		return leaves
	}
	for _, c := range []struct {
		name string
		// mutate changes the store after size 10 was signed and returns
		// the head to sign.
		mutate func(t *testing.T, m *memLog) cairn.Head
	}{
		{"smaller: rolled back", func(t *testing.T, m *memLog) cairn.Head {
			return m.truncate(t, org, name, 5)
		}},
		{"smaller: rolled back to empty", func(t *testing.T, m *memLog) cairn.Head {
			return m.truncate(t, org, name, 0)
		}},
		{"same size, different root", func(t *testing.T, m *memLog) cairn.Head {
			m.truncate(t, org, name, 6)
			return m.appendLeaves(t, org, name, other(4)...)
		}},
		{"larger but forked", func(t *testing.T, m *memLog) cairn.Head {
			m.truncate(t, org, name, 6)
			return m.appendLeaves(t, org, name, other(30)...)
		}},
		{"larger but forked at the first leaf", func(t *testing.T, m *memLog) cairn.Head {
			m.truncate(t, org, name, 0)
			return m.appendLeaves(t, org, name, other(16)...)
		}},
		{"smaller, store rewritten past the signed size", func(t *testing.T, m *memLog) cairn.Head {
			m.truncate(t, org, name, 3)
			m.appendLeaves(t, org, name, other(9)...) // 12 leaves, 10 of them not the signed ones
			root, err := TreeHash(t.Context(), m, org, name, 8)
			if err != nil {
				t.Fatal(err)
			}
			return cairn.Head{Org: org, Context: name, Size: 8, Root: root}
		}},
		{"head root not the stored hashes' root", func(t *testing.T, m *memLog) cairn.Head {
			h := m.appendLeaves(t, org, name, testLeaves(5)...)
			h.Root = flipped(h.Root, 100)
			return h
		}},
		{"head larger than the stored log", func(t *testing.T, m *memLog) cairn.Head {
			h := m.head(t, org, name)
			h.Size += 5
			return h
		}},
	} {
		t.Run(c.name, func(t *testing.T) {
			f := newFixture(t, Config{})
			head := f.store.appendLeaves(t, org, name, testLeaves(10)...)
			if _, err := f.cp.SignHead(t.Context(), head); err != nil {
				t.Fatal(err)
			}
			bad := c.mutate(t, f.store)
			cp, err := f.cp.SignHead(t.Context(), bad)
			want := cairn.EIntegrity
			if c.name == "head larger than the stored log" {
				want = cairn.ENotFound // a store error, not a verdict
			}
			if got := cairn.ErrorCode(err); got != want {
				t.Fatalf("SignHead(size %d) = %v, %v; want error code %q", bad.Size, cp, err, want)
			}
			if cps := f.store.checkpoints(org, name); len(cps) != 1 {
				t.Errorf("%d checkpoints stored, want only the first", len(cps))
			}
		})
	}
}

// A head read before another node signed a larger tree is stale, not a
// rollback: the larger checkpoint covers it.
func TestSignHeadStale(t *testing.T) {
	const org, name = "acme", "payments"
	f := newFixture(t, Config{})
	stale := f.store.appendLeaves(t, org, name, testLeaves(10)...)
	staleEmpty := cairn.Head{Org: org, Context: name}
	head := f.store.appendLeaves(t, org, name, testLeaves(7)...)
	if _, err := f.cp.SignHead(t.Context(), head); err != nil {
		t.Fatal(err)
	}
	for _, h := range []cairn.Head{stale, staleEmpty} {
		cp, err := f.cp.SignHead(t.Context(), h)
		if err != nil || cp.Size != head.Size {
			t.Errorf("SignHead(stale size %d) = %v, %v; want the size-%d checkpoint", h.Size, cp, err, head.Size)
		}
	}
	// A stale head with a wrong root is not covered.
	stale.Root = flipped(stale.Root, 1)
	if _, err := f.cp.SignHead(t.Context(), stale); cairn.ErrorCode(err) != cairn.EIntegrity {
		t.Errorf("stale head with a wrong root: error code %q, want %q", cairn.ErrorCode(err), cairn.EIntegrity)
	}
	if n := len(f.store.checkpoints(org, name)); n != 1 {
		t.Errorf("%d checkpoints stored, want 1", n)
	}
}

func TestSignHeadInvalid(t *testing.T) {
	f := newFixture(t, Config{})
	for _, h := range []cairn.Head{
		{Org: "a/b", Context: "c"},
		{Org: "a", Context: "b c"},
		{Org: "a", Context: "c", Size: -1},
	} {
		if _, err := f.cp.SignHead(t.Context(), h); cairn.ErrorCode(err) != cairn.EInvalid {
			t.Errorf("SignHead(%+v): error code %q, want %q", h, cairn.ErrorCode(err), cairn.EInvalid)
		}
	}
}

// TestSignHeadConflict: AddCheckpoint reports EConflict because another
// node recorded a checkpoint between the check and the insert.
func TestSignHeadConflict(t *testing.T) {
	const org, name = "acme", "payments"
	t.Run("same tree", func(t *testing.T) {
		f := newFixture(t, Config{})
		head := f.store.appendLeaves(t, org, name, testLeaves(10)...)
		nodeB, _ := NewCheckpointer(Config{Store: f.store, Signer: f.signer, Now: func() time.Time { return f.now.Add(-time.Second) }})
		f.store.beforeAdd = func(string, string) {
			f.store.beforeAdd = nil
			if _, err := nodeB.SignHead(t.Context(), head); err != nil {
				t.Errorf("node B: %v", err)
			}
		}
		// The contract leaves a duplicate (same size and root) open: the
		// fake accepts it silently, an engine may return EConflict. Either
		// way SignHead succeeds and one checkpoint is stored.
		cp, err := f.cp.SignHead(t.Context(), head)
		if err != nil || cp.Size != 10 || cp.Root != head.Root {
			t.Errorf("SignHead = %+v, %v; want a size-10 checkpoint", cp, err)
		}
		if n := len(f.store.checkpoints(org, name)); n != 1 {
			t.Errorf("%d checkpoints stored, want 1", n)
		}
	})
	t.Run("same tree, duplicate is a conflict", func(t *testing.T) {
		f := newFixture(t, Config{})
		head := f.store.appendLeaves(t, org, name, testLeaves(10)...)
		nodeB, _ := NewCheckpointer(Config{Store: conflictOnDuplicate{f.store}, Signer: f.signer,
			Now: func() time.Time { return f.now.Add(-time.Second) }})
		if _, err := nodeB.SignHead(t.Context(), head); err != nil {
			t.Fatal(err)
		}
		// Make this node's check pass as if it read before node B's insert.
		f.cp.store = &staleLatest{conflictOnDuplicate: conflictOnDuplicate{f.store}}
		cp, err := f.cp.SignHead(t.Context(), head)
		if err != nil || cp.Size != 10 || !cp.SignedAt.Equal(f.now.Add(-time.Second)) {
			t.Errorf("SignHead = %+v, %v; want node B's checkpoint", cp, err)
		}
	})
	t.Run("larger tree", func(t *testing.T) {
		f := newFixture(t, Config{})
		head := f.store.appendLeaves(t, org, name, testLeaves(10)...)
		nodeB, _ := NewCheckpointer(Config{Store: f.store, Signer: f.signer})
		f.store.beforeAdd = func(string, string) {
			f.store.beforeAdd = nil
			if _, err := nodeB.SignHead(t.Context(), f.store.appendLeaves(t, org, name, testLeaves(5)...)); err != nil {
				t.Errorf("node B: %v", err)
			}
		}
		cp, err := f.cp.SignHead(t.Context(), head)
		if err != nil || cp.Size != 15 {
			t.Errorf("SignHead = %+v, %v; want node B's size-15 checkpoint", cp, err)
		}
		f.verifyAll(t, org, name)
	})
	t.Run("forged checkpoint", func(t *testing.T) {
		f := newFixture(t, Config{})
		head := f.store.appendLeaves(t, org, name, testLeaves(10)...)
		f.store.beforeAdd = func(string, string) {
			f.store.beforeAdd = nil
			forged := &cairn.Checkpoint{Size: 10, Root: flipped(head.Root, 5)}
			if err := f.store.AddCheckpoint(t.Context(), org, name, forged); err != nil {
				t.Error(err)
			}
		}
		if _, err := f.cp.SignHead(t.Context(), head); cairn.ErrorCode(err) != cairn.EIntegrity {
			t.Errorf("error code %q, want %q", cairn.ErrorCode(err), cairn.EIntegrity)
		}
	})
}

// waitCheckpoint waits up to limit for a checkpoint of at least size.
func waitCheckpoint(t *testing.T, cp *Checkpointer, org, name string, size int64, limit time.Duration) (*cairn.Checkpoint, time.Duration) {
	t.Helper()
	start := time.Now()
	ctx, cancel := context.WithTimeout(t.Context(), limit)
	defer cancel()
	got, err := cp.WaitFor(ctx, org, name, size)
	if err != nil {
		t.Fatalf("no checkpoint of size ≥ %d for %s/%s within %v: %v", size, org, name, limit, err)
	}
	return got, time.Since(start)
}

func TestCheckpointerNotify(t *testing.T) {
	const org, name = "acme", "payments"
	const interval = 100 * time.Millisecond
	f := newFixture(t, Config{Interval: interval, Poll: time.Hour})
	f.store.appendLeaves(t, org, name, testLeaves(3)...) // committed before start
	f.run(t)

	// Startup signs what was committed before.
	waitCheckpoint(t, f.cp, org, name, 3, time.Second)

	// A notified commit is signed within Interval (plus scheduling slack).
	head := f.store.appendLeaves(t, org, name, testLeaves(4)...)
	f.cp.Notify()
	cp, took := waitCheckpoint(t, f.cp, org, name, head.Size, time.Second)
	if took > interval+50*time.Millisecond {
		t.Errorf("checkpoint signed %v after Notify, want within %v", took, interval)
	}
	if cp.Size != head.Size || cp.Root != head.Root {
		t.Errorf("checkpoint %d %x, want %d %x", cp.Size, cp.Root, head.Size, head.Root)
	}

	// After an idle period, a Notify starts a round at once.
	time.Sleep(interval + 20*time.Millisecond)
	head = f.store.appendLeaves(t, org, name, testLeaves(1)...)
	f.cp.Notify()
	if _, took := waitCheckpoint(t, f.cp, org, name, head.Size, time.Second); took >= interval {
		t.Errorf("idle Notify signed after %v, want at once (< %v)", took, interval)
	}

	// A burst of commits coalesces into few checkpoints: at most one per
	// Interval, plus the one started at once.
	before := len(f.store.checkpoints(org, name))
	start := time.Now()
	for range 50 {
		head = f.store.appendLeaves(t, org, name, testLeaves(1)...)
		f.cp.Notify()
		time.Sleep(2 * time.Millisecond)
	}
	waitCheckpoint(t, f.cp, org, name, head.Size, time.Second)
	rounds := int(time.Since(start)/interval) + 2
	if got := len(f.store.checkpoints(org, name)) - before; got > rounds {
		t.Errorf("a burst of 50 commits produced %d checkpoints, want at most %d", got, rounds)
	}
	f.verifyAll(t, org, name)
}

// Without Notify, commits (e.g. by another process) are signed every Poll.
func TestCheckpointerPoll(t *testing.T) {
	f := newFixture(t, Config{Interval: 20 * time.Millisecond, Poll: 50 * time.Millisecond})
	f.run(t)
	head := f.store.appendLeaves(t, "acme", "payments", testLeaves(9)...)
	waitCheckpoint(t, f.cp, "acme", "payments", head.Size, time.Second)
}

// TestCheckpointerRefusalKeepsSigning: a forked context is refused and
// reported once at error level; the others keep being signed.
func TestCheckpointerRefusalKeepsSigning(t *testing.T) {
	f := newFixture(t, Config{Interval: 10 * time.Millisecond, Poll: 20 * time.Millisecond})
	ctx := t.Context()
	for _, name := range []string{"a", "b", "c"} {
		h := f.store.appendLeaves(t, "acme", name, testLeaves(10)...)
		if _, err := f.cp.SignHead(ctx, h); err != nil {
			t.Fatal(err)
		}
	}
	// Fork "b": restore an old backup, then keep writing.
	f.store.truncate(t, "acme", "b", 4)
	forked := f.store.appendLeaves(t, "acme", "b", [][]byte{[]byte("x"), []byte("y"), []byte("z"), []byte("w"), []byte("v"), []byte("u"), []byte("t"), []byte("s")}...)
	f.run(t)

	for i := range 5 {
		ha := f.store.appendLeaves(t, "acme", "a", testLeaves(i+1)...)
		hc := f.store.appendLeaves(t, "acme", "c", testLeaves(i+1)...)
		f.cp.Notify()
		waitCheckpoint(t, f.cp, "acme", "a", ha.Size, time.Second)
		waitCheckpoint(t, f.cp, "acme", "c", hc.Size, time.Second)
	}
	time.Sleep(100 * time.Millisecond) // several more rounds see the fork

	if cps := f.store.checkpoints("acme", "b"); len(cps) != 1 || cps[0].Size != 10 {
		t.Errorf("forked context has checkpoints %v, want only the size-10 one", cps)
	}
	errs := f.logs.records(t, "ERROR")
	if len(errs) != 1 {
		t.Fatalf("%d error records, want one refusal reported once:\n%s", len(errs), f.logs)
	}
	want := map[string]any{"org": "acme", "context": "b", "size": float64(forked.Size)}
	for k, v := range want {
		if errs[0][k] != v {
			t.Errorf("refusal record %s = %v, want %v", k, errs[0][k], v)
		}
	}
	for _, name := range []string{"a", "c"} {
		f.verifyAll(t, "acme", name)
	}

	// The fork growing further is a new head: reported again.
	f.store.appendLeaves(t, "acme", "b", []byte("r"))
	deadline := time.Now().Add(time.Second)
	for len(f.logs.records(t, "ERROR")) < 2 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if n := len(f.logs.records(t, "ERROR")); n != 2 {
		t.Errorf("%d error records after the fork grew, want 2", n)
	}
}

// A failing store is logged at warn level and retried; Run keeps going.
func TestCheckpointerStoreFailure(t *testing.T) {
	f := newFixture(t, Config{Interval: 10 * time.Millisecond, Poll: time.Hour})
	f.store.failUnsigned = cairn.Errorf(cairn.EUnavailable, "database is down")
	f.run(t)
	head := f.store.appendLeaves(t, "acme", "payments", testLeaves(2)...)
	time.Sleep(50 * time.Millisecond)
	if len(f.logs.records(t, "WARN")) == 0 {
		t.Error("no warning for a failing store")
	}
	f.store.mu.Lock()
	f.store.failUnsigned = nil
	f.store.mu.Unlock()
	// Retried after Interval, without a Notify (Poll is an hour).
	waitCheckpoint(t, f.cp, "acme", "payments", head.Size, time.Second)
}

func TestWaitFor(t *testing.T) {
	f := newFixture(t, Config{})
	// Nothing signed and no Run: times out with the context's error.
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Millisecond)
	defer cancel()
	if _, err := f.cp.WaitFor(ctx, "acme", "payments", 1); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("WaitFor with nothing signed = %v, want context.DeadlineExceeded", err)
	}

	// A checkpoint recorded by another node is found in the store.
	head := f.store.appendLeaves(t, "acme", "payments", testLeaves(3)...)
	nodeB, _ := NewCheckpointer(Config{Store: f.store, Signer: f.signer})
	if _, err := nodeB.SignHead(t.Context(), head); err != nil {
		t.Fatal(err)
	}
	if cp, _ := waitCheckpoint(t, f.cp, "acme", "payments", 2, time.Second); cp.Size != 3 {
		t.Errorf("WaitFor(2) = size %d, want 3", cp.Size)
	}

	// Waiters wake when this node signs.
	var wg sync.WaitGroup
	for range 10 {
		wg.Go(func() {
			ctx, cancel := context.WithTimeout(t.Context(), 2*time.Second)
			defer cancel()
			if cp, err := f.cp.WaitFor(ctx, "acme", "payments", 5); err != nil || cp.Size != 5 {
				t.Errorf("WaitFor(5) = %v, %v; want the size-5 checkpoint", cp, err)
			}
		})
	}
	time.Sleep(10 * time.Millisecond)
	head = f.store.appendLeaves(t, "acme", "payments", testLeaves(2)...)
	if _, err := f.cp.SignHead(t.Context(), head); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
}

// conflictOnDuplicate makes AddCheckpoint of an already stored tree an
// EConflict, as an engine with a unique (context, size) key would.
type conflictOnDuplicate struct{ *memLog }

func (c conflictOnDuplicate) AddCheckpoint(ctx context.Context, org, name string, cp *cairn.Checkpoint) error {
	if latest, err := c.LatestCheckpoint(ctx, org, name); err == nil && latest.Size == cp.Size {
		return cairn.Errorf(cairn.EConflict, "checkpoint %d exists", cp.Size)
	}
	return c.memLog.AddCheckpoint(ctx, org, name, cp)
}

// staleLatest reports no checkpoint on its first LatestCheckpoint call, as
// if read just before another node's insert.
type staleLatest struct {
	conflictOnDuplicate
	served bool
}

func (s *staleLatest) LatestCheckpoint(ctx context.Context, org, name string) (*cairn.Checkpoint, error) {
	if !s.served {
		s.served = true
		return nil, cairn.Errorf(cairn.ENotFound, "no checkpoint yet")
	}
	return s.conflictOnDuplicate.LatestCheckpoint(ctx, org, name)
}
