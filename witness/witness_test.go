package witness

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"filippo.io/torchwood"
	"github.com/cairn-audit/cairn"
	"github.com/cairn-audit/cairn/merkle"
	"github.com/cairn-audit/cairn/sqlite"
	"github.com/cairn-audit/cairn/storetest"
	"github.com/cairn-audit/cairn/witness/witnesstest"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/transparency-dev/formats/log"
	"golang.org/x/mod/sumdb/note"
)

const org, ctxName = "acme", "app"

type fixture struct {
	store  *sqlite.Store
	signer *merkle.Signer
	cp     *merkle.Checkpointer
	svc    *Service
	origin string
	vkey   string // the log's verifier key

	mu  sync.Mutex
	now time.Time
}

func newFixture(t testing.TB) *fixture {
	t.Helper()
	s, err := sqlite.Open(t.Context(), sqlite.Config{Path: filepath.Join(t.TempDir(), "cairn.db")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	if _, err := s.CreateOrg(t.Context(), org); err != nil {
		t.Fatal(err)
	}
	if _, err := s.CreateContext(t.Context(), &cairn.Context{Org: org, Name: ctxName}); err != nil {
		t.Fatal(err)
	}
	_, key, _ := ed25519.GenerateKey(nil)
	signer, err := merkle.NewSigner(key, "test.local")
	if err != nil {
		t.Fatal(err)
	}
	f := &fixture{store: s, signer: signer, now: time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)}
	f.origin, _ = signer.Origin(org, ctxName)
	f.vkey = signer.VerifierKey(f.origin)
	f.svc, err = New(Config{Store: s, Signer: signer, Now: f.clock, Metrics: NewMetrics(prometheus.NewRegistry()),
		MinBackoff: time.Second, MaxBackoff: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	f.cp, err = merkle.NewCheckpointer(merkle.Config{Store: s, Signer: signer, OnSign: f.svc.Signed})
	if err != nil {
		t.Fatal(err)
	}
	return f
}

func (f *fixture) clock() time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.now
}

func (f *fixture) advance(d time.Duration) {
	f.mu.Lock()
	f.now = f.now.Add(d)
	f.mu.Unlock()
}

// grow appends n events and signs the new head.
func (f *fixture) grow(t testing.TB, n int) *cairn.Checkpoint {
	t.Helper()
	req := &cairn.AppendRequest{Org: org, Context: ctxName}
	for range n {
		req.Entries = append(req.Entries, storetest.NewEntry(org, ctxName, cairn.Event{Action: "test.event"}))
	}
	if res, err := f.store.Append(t.Context(), []*cairn.AppendRequest{req}); err != nil || res[0].Err != nil {
		t.Fatalf("append: %v %v", err, res)
	}
	c, err := f.store.GetContext(t.Context(), org, ctxName)
	if err != nil {
		t.Fatal(err)
	}
	cp, err := f.cp.SignHead(t.Context(), cairn.Head{Org: org, Context: ctxName, Size: c.Size, Root: c.Root})
	if err != nil {
		t.Fatal(err)
	}
	return cp
}

func (f *fixture) configure(t testing.TB, policy string, quorum int, ws ...*witnesstest.Witness) {
	t.Helper()
	c := cairn.WitnessConfig{Quorum: quorum, Policy: policy}
	for _, w := range ws {
		w.AddLog(t, f.origin, f.vkey)
		c.Witnesses = append(c.Witnesses, cairn.Witness{URL: w.URL + "/", Key: w.VKey})
	}
	if _, err := f.svc.SetConfig(t.Context(), org, ctxName, c); err != nil {
		t.Fatal(err)
	}
}

func (f *fixture) latest(t *testing.T) *cairn.Checkpoint {
	t.Helper()
	cp, err := f.store.LatestCheckpoint(t.Context(), org, ctxName)
	if err != nil {
		t.Fatal(err)
	}
	return cp
}

func (f *fixture) status(t *testing.T, w *witnesstest.Witness) cairn.WitnessStatus {
	t.Helper()
	r, err := f.svc.Report(t.Context(), org, ctxName)
	if err != nil {
		t.Fatal(err)
	}
	for _, st := range r.Witnesses {
		if st.Witness == w.VKey {
			return st
		}
	}
	t.Fatalf("no status for witness %s", w.Name)
	return cairn.WitnessStatus{}
}

func wantCode(t *testing.T, what string, err error, code string) {
	t.Helper()
	if got := cairn.ErrorCode(err); got != code {
		t.Fatalf("%s: error %v (code %q), want code %q", what, err, got, code)
	}
}

// checkCosigned verifies note with the log key alone (x/mod note,
// transparency-dev/formats) and, with torchwood as an independent
// verifier, that it carries valid cosignatures of every witness in ws.
func (f *fixture) checkCosigned(t *testing.T, msg []byte, size int64, ws ...*witnesstest.Witness) {
	t.Helper()
	lv, err := note.NewVerifier(f.vkey)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := note.Open(msg, note.VerifierList(lv)); err != nil {
		t.Fatalf("note.Open with the log key alone: %v\n%s", err, msg)
	}
	c, _, _, err := log.ParseCheckpoint(msg, f.origin, lv)
	if err != nil {
		t.Fatalf("log.ParseCheckpoint with the log key alone: %v", err)
	}
	if int64(c.Size) != size {
		t.Fatalf("checkpoint size %d, want %d", c.Size, size)
	}
	cosigners := []torchwood.Policy{}
	for _, w := range ws {
		cv, err := torchwood.NewCosignatureVerifier(w.VKey)
		if err != nil {
			t.Fatal(err)
		}
		cosigners = append(cosigners, torchwood.SingleVerifierPolicy(cv))
	}
	policy := torchwood.ThresholdPolicy(3, torchwood.OriginPolicy(f.origin), torchwood.SingleVerifierPolicy(lv),
		torchwood.ThresholdPolicy(len(ws), cosigners...))
	if _, _, err := torchwood.VerifyCheckpoint(msg, policy); err != nil {
		t.Fatalf("torchwood: log signature plus %d cosignatures: %v\n%s", len(ws), err, msg)
	}
}

func TestHappyPath(t *testing.T) {
	f := newFixture(t)
	w1, w2 := witnesstest.New(t, "witness-one"), witnesstest.New(t, "witness-two")
	f.configure(t, cairn.WitnessFailOpen, 2, w1, w2)
	ctx := t.Context()

	f.grow(t, 5)
	if err := f.svc.Submit(ctx, org, ctxName); err != nil {
		t.Fatal(err)
	}
	cp := f.latest(t)
	f.checkCosigned(t, cp.Note, 5, w1, w2)
	if got := bytes.Count(cp.Note, []byte("\n— ")); got != 3 {
		t.Fatalf("%d signature lines, want 3 (log + 2 witnesses):\n%s", got, cp.Note)
	}

	// Nothing new: no request.
	before := w1.Requests.Load() + w2.Requests.Load()
	if err := f.svc.Submit(ctx, org, ctxName); err != nil {
		t.Fatal(err)
	}
	if after := w1.Requests.Load() + w2.Requests.Load(); after != before {
		t.Fatalf("%d requests for an already cosigned checkpoint", after-before)
	}

	// The next checkpoint goes with a proof from the witness's size, in
	// one request each.
	f.grow(t, 300)
	if err := f.svc.Submit(ctx, org, ctxName); err != nil {
		t.Fatal(err)
	}
	f.checkCosigned(t, f.latest(t).Note, 305, w1, w2)
	if w1.Requests.Load() != 2 || w1.Size(f.origin) != 305 {
		t.Fatalf("witness one: %d requests, size %d; want 2 and 305", w1.Requests.Load(), w1.Size(f.origin))
	}
	// The earlier checkpoint keeps its cosignatures.
	cps, err := f.store.LatestCosignedCheckpoint(ctx, org, ctxName, []string{w1.VKey, w2.VKey}, 2)
	if err != nil || cps.Size != 305 {
		t.Fatalf("latest cosigned = %v, %v", cps, err)
	}
	st := f.status(t, w1)
	if st.Size != 305 || st.LastSuccess.IsZero() || st.LastErrorCode != "" {
		t.Fatalf("status = %+v", st)
	}
	r, err := f.svc.Report(ctx, org, ctxName)
	if err != nil || r.SignedSize != 305 || r.WitnessedSize != 305 {
		t.Fatalf("report = %+v, %v", r, err)
	}
}

func TestWitnessDownThenUp(t *testing.T) {
	f := newFixture(t)
	w := witnesstest.New(t, "witness")
	f.configure(t, cairn.WitnessFailOpen, 1, w)
	ctx := t.Context()
	f.grow(t, 3)

	w.Down.Store(true)
	wantCode(t, "submit to a down witness", f.svc.Submit(ctx, org, ctxName), cairn.EUnavailable)
	st := f.status(t, w)
	if st.LastErrorCode != cairn.EUnavailable || st.LastErrorAt.IsZero() || !st.LastSuccess.IsZero() {
		t.Fatalf("status after a network error = %+v", st)
	}
	// The checkpoint is served all the same (fail-open), without cosignature.
	cp, err := f.svc.Checkpoint(ctx, org, ctxName)
	if err != nil || cp.Size != 3 {
		t.Fatalf("served checkpoint = %v, %v", cp, err)
	}

	// Backing off: no attempt until the backoff has passed.
	w.Down.Store(false)
	if err := f.svc.Submit(ctx, org, ctxName); err != nil {
		t.Fatal(err)
	}
	if w.Requests.Load() != 0 {
		t.Fatal("submitted again during the backoff")
	}
	f.advance(2 * time.Second)
	if err := f.svc.Submit(ctx, org, ctxName); err != nil {
		t.Fatal(err)
	}
	f.checkCosigned(t, f.latest(t).Note, 3, w)
	st = f.status(t, w)
	if st.Size != 3 || !st.LastSuccess.After(st.LastErrorAt) {
		t.Fatalf("status after recovery = %+v", st)
	}
}

func TestConflictResync(t *testing.T) {
	f := newFixture(t)
	w := witnesstest.New(t, "witness")
	cp3 := f.grow(t, 3)
	// The witness already holds size 3 (e.g. Cairn's status was lost).
	w.SetLatest(f.origin, 3, cp3.Root[:])
	f.configure(t, cairn.WitnessFailOpen, 1, w)
	f.grow(t, 5)
	if err := f.svc.Submit(t.Context(), org, ctxName); err != nil {
		t.Fatal(err)
	}
	if w.Requests.Load() != 2 || w.Size(f.origin) != 8 {
		t.Fatalf("%d requests, witness size %d; want 2 (409 then 200) and 8", w.Requests.Load(), w.Size(f.origin))
	}
	f.checkCosigned(t, f.latest(t).Note, 8, w)
}

func TestRejected(t *testing.T) {
	f := newFixture(t)
	w := witnesstest.New(t, "witness")
	f.grow(t, 3)
	// The witness saw a forked tree of size 2: the proof from 2 fails.
	w.SetLatest(f.origin, 2, bytes.Repeat([]byte{7}, 32))
	f.configure(t, cairn.WitnessFailOpen, 1, w)
	f.grow(t, 4)
	wantCode(t, "submit to a witness holding a fork", f.svc.Submit(t.Context(), org, ctxName), cairn.EIntegrity)
	st := f.status(t, w)
	if st.LastErrorCode != cairn.EIntegrity || st.LastError == "" {
		t.Fatalf("status = %+v", st)
	}
	if bytes.Count(f.latest(t).Note, []byte("\n— ")) != 1 {
		t.Fatal("a rejected submission left a cosignature")
	}
	// Never retried blindly: the same checkpoint is not sent again.
	n := w.Requests.Load()
	f.advance(time.Hour)
	if err := f.svc.Submit(t.Context(), org, ctxName); err != nil {
		t.Fatal(err)
	}
	if w.Requests.Load() != n {
		t.Fatal("a rejected checkpoint was submitted again")
	}
	// A new checkpoint is new evidence and is submitted (and rejected).
	f.grow(t, 1)
	wantCode(t, "submit the next checkpoint", f.svc.Submit(t.Context(), org, ctxName), cairn.EIntegrity)
	if w.Requests.Load() == n {
		t.Fatal("the next checkpoint was not submitted")
	}
}

func TestBadCosignature(t *testing.T) {
	f := newFixture(t)
	w := witnesstest.New(t, "witness")
	w.Garble.Store(true)
	f.configure(t, cairn.WitnessFailOpen, 1, w)
	f.grow(t, 2)
	wantCode(t, "a cosignature that does not verify", f.svc.Submit(t.Context(), org, ctxName), cairn.EIntegrity)
	if bytes.Count(f.latest(t).Note, []byte("\n— ")) != 1 {
		t.Fatalf("an unverified cosignature was stored:\n%s", f.latest(t).Note)
	}
	// A witness presenting another key's cosignature is refused too.
	other := witnesstest.New(t, "witness")
	f.configure(t, cairn.WitnessFailOpen, 1, other)
	other.Signer = w.Signer
	f.advance(time.Hour)
	wantCode(t, "a cosignature by another key", f.svc.Submit(t.Context(), org, ctxName), cairn.EIntegrity)
}

func TestUnknownLog(t *testing.T) {
	f := newFixture(t)
	w := witnesstest.New(t, "witness")
	f.configure(t, cairn.WitnessFailOpen, 1, w)
	w.RemoveLog(f.origin)
	f.grow(t, 2)
	wantCode(t, "a witness that does not know the log", f.svc.Submit(t.Context(), org, ctxName), cairn.ENotFound)
	if st := f.status(t, w); st.LastErrorCode != cairn.ENotFound {
		t.Fatalf("status = %+v", st)
	}
}

func TestFailClosedQuorum(t *testing.T) {
	f := newFixture(t)
	w1, w2 := witnesstest.New(t, "witness-one"), witnesstest.New(t, "witness-two")
	f.configure(t, cairn.WitnessFailClosed, 2, w1, w2)
	ctx := t.Context()

	f.grow(t, 3)
	w2.Down.Store(true)
	wantCode(t, "submit with one witness down", f.svc.Submit(ctx, org, ctxName), cairn.EUnavailable)
	_, err := f.svc.Checkpoint(ctx, org, ctxName)
	wantCode(t, "served checkpoint before the quorum", err, cairn.ENotFound)

	w2.Down.Store(false)
	f.advance(time.Minute)
	if err := f.svc.Submit(ctx, org, ctxName); err != nil {
		t.Fatal(err)
	}
	cp, err := f.svc.Checkpoint(ctx, org, ctxName)
	if err != nil || cp.Size != 3 {
		t.Fatalf("served checkpoint after the quorum = %v, %v", cp, err)
	}
	f.checkCosigned(t, cp.Note, 3, w1, w2)

	// A new checkpoint that only one witness cosigned is not served.
	f.grow(t, 4)
	w2.Down.Store(true)
	wantCode(t, "submit with one witness down", f.svc.Submit(ctx, org, ctxName), cairn.EUnavailable)
	if cp, err := f.svc.Checkpoint(ctx, org, ctxName); err != nil || cp.Size != 3 {
		t.Fatalf("served checkpoint without quorum = %v, %v; want size 3", cp, err)
	}
	if f.latest(t).Size != 7 {
		t.Fatal("the log did not sign size 7")
	}
	r, err := f.svc.Report(ctx, org, ctxName)
	if err != nil || r.SignedSize != 7 || r.WitnessedSize != 3 {
		t.Fatalf("report = %+v, %v", r, err)
	}

	// A waiter for size 7 is released when the quorum is reached.
	got := make(chan *cairn.Checkpoint, 1)
	wctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	go func() {
		cp, err := f.svc.WaitFor(wctx, org, ctxName, 7)
		if err != nil {
			t.Error(err)
		}
		got <- cp
	}()
	w2.Down.Store(false)
	f.advance(time.Minute)
	if err := f.svc.Submit(ctx, org, ctxName); err != nil {
		t.Fatal(err)
	}
	if cp := <-got; cp == nil || cp.Size != 7 {
		t.Fatalf("WaitFor = %v", cp)
	}

	// Switching to fail-open serves the newest checkpoint at once.
	f.grow(t, 1)
	f.configure(t, cairn.WitnessFailOpen, 2, w1, w2)
	if cp, err := f.svc.Checkpoint(ctx, org, ctxName); err != nil || cp.Size != 8 {
		t.Fatalf("fail-open served checkpoint = %v, %v; want size 8", cp, err)
	}
}

// TestRun checks the background loop: a signed checkpoint reaches the
// witness without an explicit Submit.
func TestRun(t *testing.T) {
	f := newFixture(t)
	w := witnesstest.New(t, "witness")
	f.configure(t, cairn.WitnessFailClosed, 1, w)
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- f.svc.Run(ctx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	}()
	f.grow(t, 4)
	wctx, wcancel := context.WithTimeout(t.Context(), time.Minute)
	defer wcancel()
	cp, err := f.svc.WaitFor(wctx, org, ctxName, 4)
	if err != nil {
		t.Fatal(err)
	}
	f.checkCosigned(t, cp.Note, 4, w)
}

// BenchmarkSubmit measures one add-checkpoint round trip to an in-process
// witness per new checkpoint (proof, HTTP, verification, storing the
// cosignature and the status); appending and signing are excluded.
func BenchmarkSubmit(b *testing.B) {
	f := newFixture(b)
	w := witnesstest.New(b, "witness")
	f.configure(b, cairn.WitnessFailOpen, 1, w)
	for b.Loop() {
		b.StopTimer()
		f.grow(b, 10)
		b.StartTimer()
		if err := f.svc.Submit(b.Context(), org, ctxName); err != nil {
			b.Fatal(err)
		}
	}
}
