package storetest

import (
	"bytes"
	"crypto/sha256"
	"testing"
	"time"

	"github.com/cairn-audit/cairn"
	"github.com/transparency-dev/merkle/compact"
	"github.com/transparency-dev/merkle/rfc6962"
	"golang.org/x/mod/sumdb/tlog"
)

// recordHash is the RFC 6962 leaf hash, computed independently of the store.
func recordHash(leaf []byte) [32]byte {
	var h [32]byte
	copy(h[:], rfc6962.DefaultHasher.HashLeaf(leaf))
	return h
}

// IndependentRoot computes the RFC 6962 root of leaves with
// transparency-dev/merkle's compact ranges (not x/mod's tlog).
func IndependentRoot(t *testing.T, leaves [][]byte) [32]byte {
	t.Helper()
	if len(leaves) == 0 {
		return sha256.Sum256(nil)
	}
	rf := compact.RangeFactory{Hash: rfc6962.DefaultHasher.HashChildren}
	r := rf.NewEmptyRange(0)
	for _, l := range leaves {
		if err := r.Append(rfc6962.DefaultHasher.HashLeaf(l), nil); err != nil {
			t.Fatal(err)
		}
	}
	root, err := r.GetRootHash(nil)
	if err != nil {
		t.Fatal(err)
	}
	var out [32]byte
	copy(out[:], root)
	return out
}

// testStoredHashes: after appends in uneven batches, the context root equals
// an independent recomputation from the stored leaves, and every stored hash
// equals the one tlog derives from those leaves.
func testStoredHashes(t *testing.T, f Factory) {
	s, _ := open(t, f)
	setup(t, s)
	ctx := t.Context()
	for _, n := range []int{1, 2, 5, 1, 64, 183, 1} { // 257 in all: crosses a tile boundary
		appendN(t, s, "acme", "app", n, nil)
	}
	c, err := s.GetContext(ctx, "acme", "app")
	if err != nil {
		t.Fatal(err)
	}
	leaves, err := s.ReadLeaves(ctx, "acme", "app", 0, c.Size)
	if err != nil {
		t.Fatal(err)
	}
	if root := IndependentRoot(t, leaves); root != c.Root {
		t.Fatalf("stored root %x, independent root %x", c.Root, root)
	}
	var mem memHashes
	for i, l := range leaves {
		hs, err := tlog.StoredHashes(int64(i), l, &mem)
		if err != nil {
			t.Fatal(err)
		}
		mem = append(mem, hs...)
	}
	idx := make([]int64, len(mem))
	for i := range idx {
		idx[i] = int64(i)
	}
	stored, err := s.ReadHashes(ctx, "acme", "app", idx)
	if err != nil {
		t.Fatal(err)
	}
	if int64(len(stored)) != tlog.StoredHashCount(c.Size) {
		t.Fatalf("%d stored hashes, want %d", len(stored), tlog.StoredHashCount(c.Size))
	}
	for i := range mem {
		if stored[i] != mem[i] {
			t.Fatalf("stored hash %d = %x, recomputed %x", i, stored[i], mem[i])
		}
	}
	_, err = s.ReadHashes(ctx, "acme", "app", []int64{int64(len(mem)) + 10})
	wantCode(t, "hash past the end", err, cairn.ENotFound)
}

type memHashes []tlog.Hash

func (m *memHashes) ReadHashes(indexes []int64) ([]tlog.Hash, error) {
	out := make([]tlog.Hash, len(indexes))
	for i, x := range indexes {
		out[i] = (*m)[x]
	}
	return out, nil
}

func testIdempotency(t *testing.T, f Factory) {
	s, _ := open(t, f)
	setup(t, s)
	ctx := t.Context()
	mk := func(hash byte, n int) *cairn.AppendRequest {
		r := &cairn.AppendRequest{Org: "acme", Context: "app", IdempotencyKey: "k-1", RequestHash: [32]byte{hash}}
		for range n {
			r.Entries = append(r.Entries, NewEntry("acme", "app", cairn.Event{Action: "i.d"}))
		}
		return r
	}
	first, err := s.Append(ctx, []*cairn.AppendRequest{mk(1, 2)})
	if err != nil || first[0].Err != nil || first[0].Replayed {
		t.Fatalf("first append: %v %+v", err, first)
	}
	// Same key and body, twice in one group and once later: the original
	// results, nothing new written.
	again, err := s.Append(ctx, []*cairn.AppendRequest{mk(1, 2), mk(1, 2)})
	if err != nil {
		t.Fatal(err)
	}
	for i, r := range again {
		if r.Err != nil || !r.Replayed || len(r.Committed) != 2 {
			t.Fatalf("replay %d = %+v", i, r)
		}
		for j := range r.Committed {
			if r.Committed[j] != first[0].Committed[j] {
				t.Fatalf("replay %d entry %d = %+v, want %+v", i, j, r.Committed[j], first[0].Committed[j])
			}
		}
	}
	conflict, err := s.Append(ctx, []*cairn.AppendRequest{mk(2, 1)})
	if err != nil {
		t.Fatal(err)
	}
	wantCode(t, "same key, other body", conflict[0].Err, cairn.EConflict)
	c, err := s.GetContext(ctx, "acme", "app")
	if err != nil {
		t.Fatal(err)
	}
	if c.Size != 2 {
		t.Fatalf("size after replays = %d, want 2", c.Size)
	}
	// Keys are per context.
	other := mk(3, 1)
	other.Context = cairn.BuiltinContext
	res, err := s.Append(ctx, []*cairn.AppendRequest{other})
	if err != nil || res[0].Err != nil || res[0].Replayed {
		t.Fatalf("same key in another context: %v %+v", err, res)
	}
}

func testCheckpoints(t *testing.T, f Factory) {
	s, _ := open(t, f)
	setup(t, s)
	ctx := t.Context()
	_, err := s.LatestCheckpoint(ctx, "acme", "app")
	wantCode(t, "no checkpoint yet", err, cairn.ENotFound)
	heads, err := s.UnsignedHeads(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(heads) != 2 { // app and the built-in context, both empty and unsigned
		t.Fatalf("UnsignedHeads = %+v, want 2 empty heads", heads)
	}
	appendN(t, s, "acme", "app", 3, nil)
	c, _ := s.GetContext(ctx, "acme", "app")
	now := time.Now().UTC().Truncate(time.Microsecond)
	cp := &cairn.Checkpoint{Size: 3, Root: c.Root, Note: []byte("note-3\n"), SignedAt: now}
	if err := s.AddCheckpoint(ctx, "acme", "app", cp); err != nil {
		t.Fatal(err)
	}
	got, err := s.LatestCheckpoint(ctx, "acme", "app")
	if err != nil {
		t.Fatal(err)
	}
	if got.Size != 3 || got.Root != c.Root || !bytes.Equal(got.Note, cp.Note) || !got.SignedAt.Equal(now) {
		t.Fatalf("LatestCheckpoint = %+v", got)
	}
	err = s.AddCheckpoint(ctx, "acme", "app", &cairn.Checkpoint{Size: 2, Note: []byte("x")})
	wantCode(t, "smaller checkpoint", err, cairn.EConflict)
	err = s.AddCheckpoint(ctx, "acme", "app", &cairn.Checkpoint{Size: 3, Root: [32]byte{1}, Note: []byte("x")})
	wantCode(t, "same size, other root", err, cairn.EIntegrity)
	heads, err = s.UnsignedHeads(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, h := range heads {
		if h.Context == "app" {
			t.Fatalf("signed context still unsigned: %+v", h)
		}
	}
	appendN(t, s, "acme", "app", 1, nil)
	heads, _ = s.UnsignedHeads(ctx)
	found := false
	for _, h := range heads {
		if h.Org == "acme" && h.Context == "app" && h.Size == 4 {
			found = true
		}
	}
	if !found {
		t.Fatalf("UnsignedHeads after append = %+v, want acme/app at 4", heads)
	}
}

func testAPIKeys(t *testing.T, f Factory) {
	s, _ := open(t, f)
	setup(t, s)
	ctx := t.Context()
	k := &cairn.APIKey{ID: "key-1", Org: "acme", Name: "ci", Prefix: "cairn_ab", Hash: sha256.Sum256([]byte("secret")),
		Admin: true, CreatedAt: time.Now().UTC().Truncate(time.Microsecond)}
	if err := s.CreateAPIKey(ctx, k); err != nil {
		t.Fatal(err)
	}
	wantCode(t, "duplicate key", s.CreateAPIKey(ctx, k), cairn.EConflict)
	got, err := s.LookupAPIKey(ctx, k.Hash)
	if err != nil {
		t.Fatal(err)
	}
	if got.ID != k.ID || got.Org != "acme" || !got.Admin || got.Prefix != k.Prefix || !got.CreatedAt.Equal(k.CreatedAt) {
		t.Fatalf("LookupAPIKey = %+v", got)
	}
	_, err = s.LookupAPIKey(ctx, sha256.Sum256([]byte("other")))
	wantCode(t, "unknown key", err, cairn.ENotFound)
}
