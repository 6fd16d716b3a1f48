package merkle

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/hex"
	"flag"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/cairn-audit/cairn"
	"github.com/transparency-dev/merkle/compact"
	"github.com/transparency-dev/merkle/proof"
	"github.com/transparency-dev/merkle/rfc6962"
	"github.com/transparency-dev/merkle/testonly"
	"golang.org/x/mod/sumdb/tlog"
)

var seedFlag = flag.Uint64("seed", 0, "seed for randomised tree sizes (0: time-based)")

const (
	testOrg = "acme"
	testCtx = "payments"
	// emptyRootB64 is SHA-256("") in base64, from integrity-formats.md §1.
	emptyRootB64 = "47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU="
)

func testLeaf(i int) []byte { return fmt.Appendf(nil, `{"i":%d}`, i) }

func testLeaves(n int) [][]byte {
	leaves := make([][]byte, n)
	for i := range leaves {
		leaves[i] = testLeaf(i)
	}
	return leaves
}

func TestEmptyRoot(t *testing.T) {
	got := EmptyRoot()
	if b64 := base64.StdEncoding.EncodeToString(got[:]); b64 != emptyRootB64 {
		t.Errorf("EmptyRoot() = %s, want %s", b64, emptyRootB64)
	}
	if want := rfc6962.DefaultHasher.EmptyRoot(); !bytes.Equal(got[:], want) {
		t.Errorf("EmptyRoot() = %x, rfc6962 EmptyRoot() = %x", got, want)
	}
	th, err := TreeHash(t.Context(), newMemLog(), testOrg, testCtx, 0)
	if err != nil || th != got {
		t.Errorf("TreeHash(size 0) = %x, %v; want the empty root", th, err)
	}
}

// TestRFC6962Vectors checks roots and leaf hashes against the RFC 6962
// vectors of transparency-dev/merkle/testonly.
func TestRFC6962Vectors(t *testing.T) {
	m := newMemLog()
	inputs := testonly.LeafInputs()
	roots := testonly.RootHashes()
	leafHashes := testonly.NodeHashes()[0]
	for size := 0; size <= len(inputs); size++ {
		if size > 0 {
			leaf := inputs[size-1]
			if got := LeafHash(leaf); !bytes.Equal(got[:], leafHashes[size-1]) {
				t.Errorf("LeafHash(%x) = %x, want %x", leaf, got, leafHashes[size-1])
			}
			m.appendLeaves(t, testOrg, testCtx, leaf)
		}
		got, err := TreeHash(t.Context(), m, testOrg, testCtx, int64(size))
		if err != nil {
			t.Fatalf("TreeHash(%d): %v", size, err)
		}
		if !bytes.Equal(got[:], roots[size]) {
			t.Errorf("TreeHash(%d) = %x, want %x", size, got, roots[size])
		}
	}
	// Hardcoded as well, in case testonly ever changes (integrity-formats.md §11).
	got, _ := TreeHash(t.Context(), m, testOrg, testCtx, 8)
	if h := hex.EncodeToString(got[:]); h != "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328" {
		t.Errorf("8-leaf root = %s, want 5dc9da79a70659a9…", h)
	}
}

func TestLeafHash(t *testing.T) {
	for _, leaf := range [][]byte{nil, {}, {0}, []byte(`{"a":1}`), bytes.Repeat([]byte{0xff}, cairn.MaxLeafSize)} {
		got := LeafHash(leaf)
		if want := rfc6962.DefaultHasher.HashLeaf(leaf); !bytes.Equal(got[:], want) {
			t.Errorf("LeafHash(%d bytes) = %x, rfc6962 HashLeaf = %x", len(leaf), got, want)
		}
	}
}

// verifyInclusion runs both independent verifiers.
func verifyInclusion(leafHash [32]byte, index, size int64, p [][32]byte, root [32]byte) (merkleErr, tlogErr error) {
	merkleErr = proof.VerifyInclusion(rfc6962.DefaultHasher, uint64(index), uint64(size), leafHash[:], byteSlices(p), root[:])
	tlogErr = tlog.CheckRecord(tlogHashes(p), size, root, index, leafHash)
	return merkleErr, tlogErr
}

// verifyConsistency runs both independent verifiers. tlog.CheckTree does
// not accept from = 0 (every tree extends the empty one), so it is only
// run for from >= 1.
func verifyConsistency(from, to int64, p [][32]byte, root1, root2 [32]byte) (merkleErr, tlogErr error) {
	merkleErr = proof.VerifyConsistency(rfc6962.DefaultHasher, uint64(from), uint64(to), byteSlices(p), root1[:], root2[:])
	if from >= 1 {
		tlogErr = tlog.CheckTree(tlogHashes(p), to, root2, from, root1)
	}
	return merkleErr, tlogErr
}

func byteSlices(p [][32]byte) [][]byte {
	out := make([][]byte, len(p))
	for i := range p {
		out[i] = slices.Clone(p[i][:])
	}
	return out
}

func tlogHashes(p [][32]byte) []tlog.Hash {
	out := make([]tlog.Hash, len(p))
	for i, h := range p {
		out[i] = h
	}
	return out
}

// compactRoots returns the transparency-dev/merkle compact-range root of
// leaves[:n] for every n in sizes.
func compactRoots(t *testing.T, leaves [][]byte, sizes []int64) map[int64][32]byte {
	t.Helper()
	rf := &compact.RangeFactory{Hash: rfc6962.DefaultHasher.HashChildren}
	r := rf.NewEmptyRange(0)
	want := make(map[int64]bool)
	for _, s := range sizes {
		want[s] = true
	}
	roots := make(map[int64][32]byte)
	for n := int64(0); n <= int64(len(leaves)); n++ {
		if want[n] {
			root, err := r.GetRootHash(nil)
			if err != nil {
				t.Fatalf("compact root at %d: %v", n, err)
			}
			if n == 0 {
				root = rfc6962.DefaultHasher.EmptyRoot()
			}
			roots[n] = [32]byte(root)
		}
		if n < int64(len(leaves)) {
			if err := r.Append(rfc6962.DefaultHasher.HashLeaf(leaves[n]), nil); err != nil {
				t.Fatalf("compact append %d: %v", n, err)
			}
		}
	}
	return roots
}

// TestDifferential compares roots and proofs with transparency-dev/merkle
// and x/mod's verifiers on one large log.
func TestDifferential(t *testing.T) {
	seed := *seedFlag
	if seed == 0 {
		seed = uint64(time.Now().UnixNano())
	}
	t.Logf("seed %d (rerun with -seed=%d)", seed, seed)
	rng := rand.New(rand.NewPCG(seed, 0))

	maxSize := 70_000
	if testing.Short() {
		maxSize = 5_000
	}
	sizes := []int64{0, 1, 2, 3, 4, 5, 7, 8, 9, 255, 256, 257, 511, 512, 513}
	if maxSize > 65_537 {
		sizes = append(sizes, 65_535, 65_536, 65_537)
	}
	for range 5 {
		sizes = append(sizes, 1+rng.Int64N(int64(maxSize)))
	}
	sizes = append(sizes, int64(maxSize))
	slices.Sort(sizes)
	sizes = slices.Compact(sizes)

	leaves := testLeaves(maxSize)
	m := newMemLog()
	m.appendLeaves(t, testOrg, testCtx, leaves...)
	ctx := t.Context()
	want := compactRoots(t, leaves, sizes)

	roots := make(map[int64][32]byte)
	for _, size := range sizes {
		root, err := TreeHash(ctx, m, testOrg, testCtx, size)
		if err != nil {
			t.Fatalf("TreeHash(%d): %v", size, err)
		}
		if root != want[size] {
			t.Errorf("TreeHash(%d) = %x, compact range root = %x", size, root, want[size])
		}
		roots[size] = root
	}

	t.Run("inclusion", func(t *testing.T) {
		for _, size := range sizes {
			for _, i := range sampleIndexes(rng, size, 300, 40) {
				p, err := ProveInclusion(ctx, m, testOrg, testCtx, i, size)
				if err != nil {
					t.Fatalf("ProveInclusion(%d, %d): %v", i, size, err)
				}
				if e1, e2 := verifyInclusion(LeafHash(leaves[i]), i, size, p, roots[size]); e1 != nil || e2 != nil {
					t.Errorf("inclusion of %d in %d rejected: proof.VerifyInclusion: %v; tlog.CheckRecord: %v", i, size, e1, e2)
				}
			}
		}
	})

	t.Run("consistency", func(t *testing.T) {
		for a, from := range sizes {
			for _, to := range sizes[a:] {
				p, err := ProveConsistency(ctx, m, testOrg, testCtx, from, to)
				if err != nil {
					t.Fatalf("ProveConsistency(%d, %d): %v", from, to, err)
				}
				if e1, e2 := verifyConsistency(from, to, p, roots[from], roots[to]); e1 != nil || e2 != nil {
					t.Errorf("consistency %d → %d rejected: proof.VerifyConsistency: %v; tlog.CheckTree: %v", from, to, e1, e2)
				}
			}
		}
	})
}

// sampleIndexes returns every index below size if size <= all, and
// otherwise the edges, the power-of-two boundaries and n random indexes.
func sampleIndexes(rng *rand.Rand, size int64, all, n int) []int64 {
	var idx []int64
	if size <= int64(all) {
		for i := range size {
			idx = append(idx, i)
		}
		return idx
	}
	idx = append(idx, 0, 1, size-2, size-1)
	for p := int64(1); p < size; p <<= 1 {
		idx = append(idx, p-1, p)
	}
	for range n {
		idx = append(idx, rng.Int64N(size))
	}
	slices.Sort(idx)
	return slices.Compact(idx)
}

// TestProofsAllPairs proves and verifies every inclusion (index, size) and
// every consistency pair (from, to) with 0 <= from <= to <= maxSize.
func TestProofsAllPairs(t *testing.T) {
	maxSize := int64(300)
	if testing.Short() {
		maxSize = 64
	}
	leaves := testLeaves(int(maxSize))
	m := newMemLog()
	m.appendLeaves(t, testOrg, testCtx, leaves...)
	ctx := t.Context()
	sizes := make([]int64, maxSize+1)
	for i := range sizes {
		sizes[i] = int64(i)
	}
	want := compactRoots(t, leaves, sizes)
	for size := range maxSize + 1 {
		root, err := TreeHash(ctx, m, testOrg, testCtx, size)
		if err != nil || root != want[size] {
			t.Fatalf("TreeHash(%d) = %x, %v; compact range root = %x", size, root, err, want[size])
		}
	}
	for to := range maxSize + 1 {
		for i := range to {
			p, err := ProveInclusion(ctx, m, testOrg, testCtx, i, to)
			if err != nil {
				t.Fatalf("ProveInclusion(%d, %d): %v", i, to, err)
			}
			if e1, e2 := verifyInclusion(LeafHash(leaves[i]), i, to, p, want[to]); e1 != nil || e2 != nil {
				t.Fatalf("inclusion of %d in %d rejected: proof.VerifyInclusion: %v; tlog.CheckRecord: %v", i, to, e1, e2)
			}
		}
		for from := range to + 1 {
			p, err := ProveConsistency(ctx, m, testOrg, testCtx, from, to)
			if err != nil {
				t.Fatalf("ProveConsistency(%d, %d): %v", from, to, err)
			}
			if e1, e2 := verifyConsistency(from, to, p, want[from], want[to]); e1 != nil || e2 != nil {
				t.Fatalf("consistency %d → %d rejected: proof.VerifyConsistency: %v; tlog.CheckTree: %v", from, to, e1, e2)
			}
		}
	}
}

func flipped(h [32]byte, bit int) [32]byte {
	h[bit/8%32] ^= 1 << (bit % 8)
	return h
}

func withProof(p [][32]byte, f func([][32]byte) [][32]byte) [][32]byte {
	return f(slices.Clone(p))
}

// TestInclusionNegative: every tampering is rejected by both verifiers.
func TestInclusionNegative(t *testing.T) {
	const size, index = 257, 100
	leaves := testLeaves(size)
	m := newMemLog()
	head := m.appendLeaves(t, testOrg, testCtx, leaves...)
	p, err := ProveInclusion(t.Context(), m, testOrg, testCtx, index, size)
	if err != nil {
		t.Fatal(err)
	}
	lh := LeafHash(leaves[index])
	if e1, e2 := verifyInclusion(lh, index, size, p, head.Root); e1 != nil || e2 != nil {
		t.Fatalf("untampered proof rejected: %v; %v", e1, e2)
	}
	flippedLeaf := slices.Clone(leaves[index])
	flippedLeaf[2] ^= 0x01

	type tc struct {
		name        string
		leaf        [32]byte
		index, size int64
		proof       [][32]byte
		root        [32]byte
	}
	cases := []tc{
		{"leaf bit flip", LeafHash(flippedLeaf), index, size, p, head.Root},
		{"leaf hash bit flip", flipped(lh, 255), index, size, p, head.Root},
		{"root bit flip", lh, index, size, p, flipped(head.Root, 0)},
		{"index+1", lh, index + 1, size, p, head.Root},
		{"index-1", lh, index - 1, size, p, head.Root},
		// A wrong size is only detectable when it changes the shape of the
		// path: 257 → 258 keeps it (the right subtree is one proof hash
		// either way). Binding size to root is the checkpoint's job.
		{"size-1", lh, index, size - 1, p, head.Root},
		{"size 513", lh, index, 513, p, head.Root},
		{"truncated", lh, index, size, p[:len(p)-1], head.Root},
		{"extended", lh, index, size, append(slices.Clone(p), p[0]), head.Root},
		{"extended with zero hash", lh, index, size, append(slices.Clone(p), [32]byte{}), head.Root},
		{"reordered", lh, index, size, withProof(p, func(q [][32]byte) [][32]byte { q[0], q[1] = q[1], q[0]; return q }), head.Root},
		{"empty", lh, index, size, nil, head.Root},
	}
	for i := range p {
		for _, bit := range []int{0, 7, 128, 255} {
			cases = append(cases, tc{fmt.Sprintf("proof[%d] bit %d", i, bit), lh, index, size,
				withProof(p, func(q [][32]byte) [][32]byte { q[i] = flipped(q[i], bit); return q }), head.Root})
		}
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			e1, e2 := verifyInclusion(c.leaf, c.index, c.size, c.proof, c.root)
			if e1 == nil {
				t.Error("proof.VerifyInclusion accepted a tampered proof")
			}
			if e2 == nil {
				t.Error("tlog.CheckRecord accepted a tampered proof")
			}
		})
	}
}

// TestConsistencyNegative: every tampering is rejected by both verifiers.
func TestConsistencyNegative(t *testing.T) {
	const from, to = 100, 257
	m := newMemLog()
	m.appendLeaves(t, testOrg, testCtx, testLeaves(to)...)
	ctx := t.Context()
	r1, _ := TreeHash(ctx, m, testOrg, testCtx, from)
	r2, _ := TreeHash(ctx, m, testOrg, testCtx, to)
	p, err := ProveConsistency(ctx, m, testOrg, testCtx, from, to)
	if err != nil {
		t.Fatal(err)
	}
	if e1, e2 := verifyConsistency(from, to, p, r1, r2); e1 != nil || e2 != nil {
		t.Fatalf("untampered proof rejected: %v; %v", e1, e2)
	}
	type tc struct {
		name         string
		from, to     int64
		proof        [][32]byte
		root1, root2 [32]byte
	}
	cases := []tc{
		{"root1 bit flip", from, to, p, flipped(r1, 3), r2},
		{"root2 bit flip", from, to, p, r1, flipped(r2, 200)},
		{"roots swapped", from, to, p, r2, r1},
		{"from+1", from + 1, to, p, r1, r2},
		{"from-1", from - 1, to, p, r1, r2},
		// As for inclusion, only a size that changes the proof shape is
		// detectable (257 → 258 is not).
		{"to-1", from, to - 1, p, r1, r2},
		{"to 513", from, 513, p, r1, r2},
		{"truncated", from, to, p[:len(p)-1], r1, r2},
		{"extended", from, to, append(slices.Clone(p), p[0]), r1, r2},
		{"reordered", from, to, withProof(p, func(q [][32]byte) [][32]byte { q[0], q[1] = q[1], q[0]; return q }), r1, r2},
		{"empty", from, to, nil, r1, r2},
	}
	for i := range p {
		for _, bit := range []int{0, 77, 255} {
			cases = append(cases, tc{fmt.Sprintf("proof[%d] bit %d", i, bit), from, to,
				withProof(p, func(q [][32]byte) [][32]byte { q[i] = flipped(q[i], bit); return q }), r1, r2})
		}
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			e1, e2 := verifyConsistency(c.from, c.to, c.proof, c.root1, c.root2)
			if e1 == nil {
				t.Error("proof.VerifyConsistency accepted a tampered proof")
			}
			if e2 == nil {
				t.Error("tlog.CheckTree accepted a tampered proof")
			}
		})
	}
}

func TestProofArguments(t *testing.T) {
	m := newMemLog()
	m.appendLeaves(t, testOrg, testCtx, testLeaves(10)...)
	ctx := t.Context()
	for _, c := range []struct {
		name string
		call func() error
		code string
	}{
		{"tree hash negative size", func() error { _, err := TreeHash(ctx, m, testOrg, testCtx, -1); return err }, cairn.EInvalid},
		{"tree hash beyond log", func() error { _, err := TreeHash(ctx, m, testOrg, testCtx, 11); return err }, cairn.ENotFound},
		{"inclusion index = size", func() error { _, err := ProveInclusion(ctx, m, testOrg, testCtx, 10, 10); return err }, cairn.EInvalid},
		{"inclusion negative index", func() error { _, err := ProveInclusion(ctx, m, testOrg, testCtx, -1, 10); return err }, cairn.EInvalid},
		{"inclusion size beyond log", func() error { _, err := ProveInclusion(ctx, m, testOrg, testCtx, 3, 12); return err }, cairn.ENotFound},
		{"consistency from > to", func() error { _, err := ProveConsistency(ctx, m, testOrg, testCtx, 5, 4); return err }, cairn.EInvalid},
		{"consistency negative from", func() error { _, err := ProveConsistency(ctx, m, testOrg, testCtx, -1, 4); return err }, cairn.EInvalid},
		{"consistency beyond log", func() error { _, err := ProveConsistency(ctx, m, testOrg, testCtx, 3, 12); return err }, cairn.ENotFound},
		{"unknown context", func() error { _, err := TreeHash(ctx, m, testOrg, "nope", 1); return err }, cairn.ENotFound},
	} {
		t.Run(c.name, func(t *testing.T) {
			if got := cairn.ErrorCode(c.call()); got != c.code {
				t.Errorf("error code %q, want %q", got, c.code)
			}
		})
	}
}

// A HashReader that returns too few hashes is an error, not a short proof.
func TestHashReaderShortRead(t *testing.T) {
	r := HashReader(t.Context(), shortReader{newMemLog()}, testOrg, testCtx)
	if _, err := r.ReadHashes([]int64{0, 1}); err == nil {
		t.Error("ReadHashes accepted 1 hash for 2 indexes")
	}
}

type shortReader struct{ *memLog }

func (shortReader) ReadHashes(context.Context, string, string, []int64) ([][32]byte, error) {
	return make([][32]byte, 1), nil
}
