package merkle

import (
	"context"
	"testing"

	"golang.org/x/mod/sumdb/tlog"
)

// countingReader counts the hashes read from the store.
type countingReader struct {
	*memLog
	reads, high int // hashes read; those at level 8 or above
}

func (c *countingReader) ReadHashes(ctx context.Context, org, name string, idx []int64) ([][32]byte, error) {
	c.reads += len(idx)
	for _, x := range idx {
		if level, _ := tlog.SplitStoredHashIndex(x); level >= cacheMinLevel {
			c.high++
		}
	}
	return c.memLog.ReadHashes(ctx, org, name, idx)
}

func TestHashCache(t *testing.T) {
	m := newMemLog()
	leaves := testLeaves(70_000)
	head := m.appendLeaves(t, testOrg, testCtx, leaves...)
	cr := &countingReader{memLog: m}
	c := NewHashCache(cr, 1000)
	ctx := t.Context()

	// Proofs through the cache equal proofs from the store.
	for _, i := range []int64{0, 12345, 69999} {
		want, _ := ProveInclusion(ctx, m, testOrg, testCtx, i, head.Size)
		got, err := ProveInclusion(ctx, c, testOrg, testCtx, i, head.Size)
		if err != nil || len(got) != len(want) {
			t.Fatalf("ProveInclusion through the cache: %v", err)
		}
		for k := range got {
			if got[k] != want[k] {
				t.Fatalf("proof of %d differs at %d", i, k)
			}
		}
	}
	// Once warm, a proof reads only its hashes below level 8 from the
	// store: 40001 shares 40000's path above level 0.
	ProveInclusion(ctx, c, testOrg, testCtx, 40000, head.Size)
	cr.reads, cr.high = 0, 0
	p, _ := ProveInclusion(ctx, c, testOrg, testCtx, 40001, head.Size)
	if cr.reads == 0 || cr.high != 0 {
		t.Fatalf("a warm proof of %d hashes read %d from the store, %d of them at level 8 or above", len(p), cr.reads, cr.high)
	}
	for idx := range c.hashes {
		if level, _ := tlog.SplitStoredHashIndex(idx.index); level < cacheMinLevel {
			t.Fatalf("cached a level-%d hash", level)
		}
	}
	// Other contexts do not share entries; the bound holds.
	if _, err := c.ReadHashes(ctx, testOrg, "other", []int64{0}); err == nil {
		t.Fatal("read a hash of an unknown context")
	}
	small := NewHashCache(m, 3)
	ReadTile(ctx, small, testOrg, testCtx, tlog.Tile{H: 8, L: 1, N: 0, W: 256}, head.Size)
	if small.Len() != 3 {
		t.Fatalf("cache of 3 holds %d", small.Len())
	}
}
