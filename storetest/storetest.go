// Package storetest is the conformance suite every storage engine runs:
// one contract test written once, called by each engine's own tests in one
// line (storetest.Run(t, factory)). It must never depend on an engine.
package storetest

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/cairn-audit/cairn"
	"github.com/google/uuid"
)

// Opener opens the store under test. Calling it again after closing the
// previous Store must reopen the same database (to test durability across
// restarts). Each call of a Factory must return an opener for a new, empty
// database.
type Opener func() cairn.Store

// Factory creates a fresh database for one subtest.
type Factory func(t *testing.T) Opener

// Run runs the whole suite.
func Run(t *testing.T, f Factory) {
	t.Run("Orgs", func(t *testing.T) { testOrgs(t, f) })
	t.Run("Contexts", func(t *testing.T) { testContexts(t, f) })
	t.Run("AppendContiguous", func(t *testing.T) { testAppendContiguous(t, f) })
	t.Run("ConcurrentAppenders", func(t *testing.T) { testConcurrentAppenders(t, f) })
	t.Run("ByteExactReadBack", func(t *testing.T) { testByteExact(t, f) })
	t.Run("AtomicRequests", func(t *testing.T) { testAtomicRequests(t, f) })
	t.Run("Cancellation", func(t *testing.T) { testCancellation(t, f) })
	t.Run("Reopen", func(t *testing.T) { testReopen(t, f) })
	t.Run("StoredHashes", func(t *testing.T) { testStoredHashes(t, f) })
	t.Run("Idempotency", func(t *testing.T) { testIdempotency(t, f) })
	t.Run("Checkpoints", func(t *testing.T) { testCheckpoints(t, f) })
	t.Run("CheckpointHistory", func(t *testing.T) { testCheckpointHistory(t, f) })
	t.Run("LeafIndex", func(t *testing.T) { testLeafIndex(t, f) })
	t.Run("APIKeys", func(t *testing.T) { testAPIKeys(t, f) })
	t.Run("Search", func(t *testing.T) { testSearch(t, f) })
	t.Run("SearchScopes", func(t *testing.T) { testSearchScopes(t, f) })
	t.Run("OrgIsolation", func(t *testing.T) { testOrgIsolation(t, f) })
}

// open opens a fresh store and registers its Close.
func open(t *testing.T, f Factory) (cairn.Store, Opener) {
	t.Helper()
	o := f(t)
	s := o()
	t.Cleanup(func() { s.Close() })
	return s, o
}

// setup creates org "acme" with context "app".
func setup(t *testing.T, s cairn.Store) {
	t.Helper()
	ctx := t.Context()
	if _, err := s.CreateOrg(ctx, "acme"); err != nil {
		t.Fatalf("CreateOrg: %v", err)
	}
	if _, err := s.CreateContext(ctx, &cairn.Context{Org: "acme", Name: "app"}); err != nil {
		t.Fatalf("CreateContext: %v", err)
	}
}

// NewEntry builds a committed-ready entry for tests: a leaf that is the
// sorted-key JSON of the event's fields, split around "seq".
func NewEntry(org, context string, e cairn.Event) cairn.Entry {
	if e.ID == "" {
		e.ID = uuid.Must(uuid.NewV7()).String()
	}
	if e.ReceivedTime.IsZero() {
		e.ReceivedTime = time.Now().UTC().Truncate(time.Microsecond)
	}
	if e.EventTime.IsZero() {
		e.EventTime = e.ReceivedTime
	}
	if e.Kind == "" {
		e.Kind = cairn.KindOther
	}
	if e.Outcome == "" {
		e.Outcome = cairn.OutcomeSuccess
	}
	e.Org, e.Context = org, context
	raw, err := json.Marshal(e)
	if err != nil {
		panic(err)
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(raw, &m); err != nil {
		panic(err)
	}
	delete(m, "seq")
	head, tail := map[string]json.RawMessage{}, map[string]json.RawMessage{}
	for k, v := range m {
		if k < "seq" {
			head[k] = v
		} else {
			tail[k] = v
		}
	}
	h, _ := json.Marshal(head)
	tl, _ := json.Marshal(tail)
	leaf := cairn.Leaf{Head: h[:len(h)-1], Tail: []byte("}")}
	if len(tail) > 0 {
		leaf.Tail = append([]byte(","), tl[1:]...)
	}
	ev := e
	return cairn.Entry{Event: &ev, Leaf: leaf}
}

// appendN appends n events to org/context in one request and returns them.
func appendN(t *testing.T, s cairn.Store, org, context string, n int, mk func(i int) cairn.Event) []cairn.Committed {
	t.Helper()
	req := &cairn.AppendRequest{Org: org, Context: context}
	for i := range n {
		var e cairn.Event
		if mk != nil {
			e = mk(i)
		}
		if e.Action == "" {
			e.Action = "test.event"
		}
		req.Entries = append(req.Entries, NewEntry(org, context, e))
	}
	res, err := s.Append(t.Context(), []*cairn.AppendRequest{req})
	if err != nil {
		t.Fatalf("Append: %v", err)
	}
	if res[0].Err != nil {
		t.Fatalf("Append result: %v", res[0].Err)
	}
	return res[0].Committed
}

func wantCode(t *testing.T, what string, err error, code string) {
	t.Helper()
	if got := cairn.ErrorCode(err); got != code {
		t.Fatalf("%s: error code %q (%v), want %q", what, got, err, code)
	}
}

func testOrgs(t *testing.T, f Factory) {
	s, _ := open(t, f)
	ctx := t.Context()
	if _, err := s.CreateOrg(ctx, "acme"); err != nil {
		t.Fatal(err)
	}
	_, err := s.CreateOrg(ctx, "acme")
	wantCode(t, "duplicate org", err, cairn.EConflict)
	if _, err := s.CreateOrg(ctx, "beta"); err != nil {
		t.Fatal(err)
	}
	orgs, err := s.ListOrgs(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(orgs) != 2 || orgs[0].Name != "acme" || orgs[1].Name != "beta" {
		t.Fatalf("ListOrgs = %v, want acme, beta", orgs)
	}
	c, err := s.GetContext(ctx, "acme", cairn.BuiltinContext)
	if err != nil {
		t.Fatalf("built-in context: %v", err)
	}
	if !c.Builtin || c.Size != 0 {
		t.Fatalf("built-in context = %+v, want builtin and empty", c)
	}
}

func testContexts(t *testing.T, f Factory) {
	s, _ := open(t, f)
	ctx := t.Context()
	_, err := s.CreateContext(ctx, &cairn.Context{Org: "nope", Name: "app"})
	wantCode(t, "context in missing org", err, cairn.ENotFound)
	setup(t, s)
	_, err = s.CreateContext(ctx, &cairn.Context{Org: "acme", Name: "app"})
	wantCode(t, "duplicate context", err, cairn.EConflict)
	c, err := s.CreateContext(ctx, &cairn.Context{Org: "acme", Name: "billing", Description: "money",
		Tags: map[string]string{"team": "fin"}})
	if err != nil {
		t.Fatal(err)
	}
	if c.Description != "money" || c.Tags["team"] != "fin" || c.Builtin || c.Size != 0 {
		t.Fatalf("created context = %+v", c)
	}
	desc := "money in, money out"
	rules := []cairn.RedactionRule{{Field: "iban", Mode: cairn.RedactMask}}
	c, err = s.UpdateContext(ctx, "acme", "billing", cairn.ContextUpdate{Description: &desc, Redaction: &rules})
	if err != nil {
		t.Fatal(err)
	}
	if c.Description != desc || c.Tags["team"] != "fin" || len(c.Redaction) != 1 || c.Redaction[0] != rules[0] {
		t.Fatalf("updated context = %+v", c)
	}
	got, err := s.GetContext(ctx, "acme", "billing")
	if err != nil || got.Description != desc {
		t.Fatalf("GetContext after update = %+v, %v", got, err)
	}
	_, err = s.GetContext(ctx, "acme", "missing")
	wantCode(t, "missing context", err, cairn.ENotFound)
	_, err = s.UpdateContext(ctx, "acme", "missing", cairn.ContextUpdate{Description: &desc})
	wantCode(t, "update missing context", err, cairn.ENotFound)
	list, err := s.ListContexts(ctx, "acme")
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, c := range list {
		names = append(names, c.Name)
	}
	if strings.Join(names, ",") != "app,billing,cairn" {
		t.Fatalf("ListContexts = %v, want app,billing,cairn", names)
	}
	_, err = s.ListContexts(ctx, "nope")
	wantCode(t, "list in missing org", err, cairn.ENotFound)
}

func testAppendContiguous(t *testing.T, f Factory) {
	s, _ := open(t, f)
	setup(t, s)
	for round := range 3 {
		got := appendN(t, s, "acme", "app", 7, nil)
		for i, c := range got {
			if want := int64(round*7 + i); c.Seq != want {
				t.Fatalf("round %d entry %d: seq %d, want %d", round, i, c.Seq, want)
			}
		}
	}
	c, err := s.GetContext(t.Context(), "acme", "app")
	if err != nil {
		t.Fatal(err)
	}
	if c.Size != 21 {
		t.Fatalf("size = %d, want 21", c.Size)
	}
}

// testConcurrentAppenders: many goroutines append to two contexts at once;
// every context's seqs must be exactly 0..n-1 with no gaps or duplicates.
func testConcurrentAppenders(t *testing.T, f Factory) {
	s, _ := open(t, f)
	setup(t, s)
	ctx := t.Context()
	if _, err := s.CreateContext(ctx, &cairn.Context{Org: "acme", Name: "other"}); err != nil {
		t.Fatal(err)
	}
	const workers, perWorker, batch = 8, 10, 5
	errs := make(chan error, workers)
	seqs := make(chan [2]int64, workers*perWorker*batch)
	for w := range workers {
		go func() {
			name := []string{"app", "other"}[w%2]
			for range perWorker {
				req := &cairn.AppendRequest{Org: "acme", Context: name}
				for range batch {
					req.Entries = append(req.Entries, NewEntry("acme", name, cairn.Event{Action: "c.write"}))
				}
				res, err := s.Append(ctx, []*cairn.AppendRequest{req})
				if err == nil {
					err = res[0].Err
				}
				if err != nil {
					errs <- err
					return
				}
				for i, c := range res[0].Committed {
					if i > 0 && c.Seq != res[0].Committed[i-1].Seq+1 {
						errs <- fmt.Errorf("request's seqs not contiguous: %v", res[0].Committed)
						return
					}
					seqs <- [2]int64{int64(w % 2), c.Seq}
				}
			}
			errs <- nil
		}()
	}
	for range workers {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	close(seqs)
	seen := [2]map[int64]bool{{}, {}}
	for p := range seqs {
		if seen[p[0]][p[1]] {
			t.Fatalf("seq %d handed out twice", p[1])
		}
		seen[p[0]][p[1]] = true
	}
	for i, name := range []string{"app", "other"} {
		n := int64(len(seen[i]))
		for seq := range n {
			if !seen[i][seq] {
				t.Fatalf("%s: seq %d missing of %d", name, seq, n)
			}
		}
		c, err := s.GetContext(ctx, "acme", name)
		if err != nil {
			t.Fatal(err)
		}
		if c.Size != n {
			t.Fatalf("%s: size %d, want %d", name, c.Size, n)
		}
		leaves, err := s.ReadLeaves(ctx, "acme", name, 0, n)
		if err != nil {
			t.Fatal(err)
		}
		if int64(len(leaves)) != n {
			t.Fatalf("%s: read %d leaves, want %d", name, len(leaves), n)
		}
	}
}

func testByteExact(t *testing.T, f Factory) {
	s, _ := open(t, f)
	setup(t, s)
	ctx := t.Context()
	// Non-ASCII, escapes and HTML characters must survive untouched.
	en := NewEntry("acme", "app", cairn.Event{Action: "doc.update", Description: "über <b>&</b> \"quoted\" \u2028 😀",
		Target: &cairn.Target{Type: "doc", ID: "42"}})
	res, err := s.Append(ctx, []*cairn.AppendRequest{{Org: "acme", Context: "app", Entries: []cairn.Entry{en}}})
	if err != nil || res[0].Err != nil {
		t.Fatalf("Append: %v %v", err, res)
	}
	c := res[0].Committed[0]
	want := en.Leaf.Bytes(c.Seq)
	got, err := s.GetEvent(ctx, "acme", "app", c.ID)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got.Leaf, want) {
		t.Fatalf("GetEvent leaf:\n got %q\nwant %q", got.Leaf, want)
	}
	if got.Seq != c.Seq || got.ID != c.ID || got.Context != "app" || got.Org != "acme" {
		t.Fatalf("GetEvent = %+v", got)
	}
	if got.LeafHash != c.LeafHash || got.LeafHash != recordHash(want) {
		t.Fatalf("leaf hash mismatch")
	}
	leaves, err := s.ReadLeaves(ctx, "acme", "app", c.Seq, c.Seq+1)
	if err != nil || !bytes.Equal(leaves[0], want) {
		t.Fatalf("ReadLeaves = %q, %v", leaves, err)
	}
	_, err = s.GetEvent(ctx, "acme", "app", uuid.Must(uuid.NewV7()).String())
	wantCode(t, "missing event", err, cairn.ENotFound)
	_, err = s.GetEvent(ctx, "acme", "app", "not-a-uuid")
	wantCode(t, "malformed id", err, cairn.ENotFound)
	_, err = s.GetEvent(ctx, "acme", cairn.BuiltinContext, c.ID)
	wantCode(t, "event from another context", err, cairn.ENotFound)
	_, err = s.ReadLeaves(ctx, "acme", "app", 0, 5)
	wantCode(t, "leaves past the end", err, cairn.ENotFound)
}

// testAtomicRequests: a request for an unknown context fails alone; every
// other request in the same Append commits.
func testAtomicRequests(t *testing.T, f Factory) {
	s, _ := open(t, f)
	setup(t, s)
	ctx := t.Context()
	mk := func(name string, n int) *cairn.AppendRequest {
		r := &cairn.AppendRequest{Org: "acme", Context: name}
		for range n {
			r.Entries = append(r.Entries, NewEntry("acme", name, cairn.Event{Action: "a.b"}))
		}
		return r
	}
	res, err := s.Append(ctx, []*cairn.AppendRequest{mk("app", 3), mk("ghost", 2), mk("app", 2)})
	if err != nil {
		t.Fatal(err)
	}
	wantCode(t, "unknown context", res[1].Err, cairn.ENotFound)
	if res[0].Err != nil || res[2].Err != nil {
		t.Fatalf("valid requests failed: %v, %v", res[0].Err, res[2].Err)
	}
	if len(res[1].Committed) != 0 {
		t.Fatalf("failed request committed %v", res[1].Committed)
	}
	if res[2].Committed[0].Seq != 3 || res[2].Committed[1].Seq != 4 {
		t.Fatalf("second request seqs = %v, want 3, 4", res[2].Committed)
	}
}

func testCancellation(t *testing.T, f Factory) {
	s, _ := open(t, f)
	setup(t, s)
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	req := &cairn.AppendRequest{Org: "acme", Context: "app",
		Entries: []cairn.Entry{NewEntry("acme", "app", cairn.Event{Action: "x.y"})}}
	if _, err := s.Append(ctx, []*cairn.AppendRequest{req}); err == nil {
		t.Fatal("Append with a cancelled context succeeded")
	}
	c, err := s.GetContext(t.Context(), "acme", "app")
	if err != nil {
		t.Fatal(err)
	}
	if c.Size != 0 {
		t.Fatalf("cancelled Append left size %d", c.Size)
	}
	// The store still works.
	appendN(t, s, "acme", "app", 1, nil)
}

func testReopen(t *testing.T, f Factory) {
	o := f(t)
	s := o()
	setup(t, s)
	committed := appendN(t, s, "acme", "app", 10, nil)
	before, err := s.GetContext(t.Context(), "acme", "app")
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = o()
	t.Cleanup(func() { s.Close() })
	after, err := s.GetContext(t.Context(), "acme", "app")
	if err != nil {
		t.Fatal(err)
	}
	if after.Size != before.Size || after.Root != before.Root {
		t.Fatalf("after reopen: size %d root %x, want %d %x", after.Size, after.Root, before.Size, before.Root)
	}
	for _, c := range committed {
		if _, err := s.GetEvent(t.Context(), "acme", "app", c.ID); err != nil {
			t.Fatalf("event %s lost across reopen: %v", c.ID, err)
		}
	}
	more := appendN(t, s, "acme", "app", 1, nil)
	if more[0].Seq != 10 {
		t.Fatalf("seq after reopen = %d, want 10", more[0].Seq)
	}
}
