package merkle

import (
	"cmp"
	"context"
	"slices"
	"sync"
	"testing"

	"github.com/cairn-audit/cairn"
	"golang.org/x/mod/sumdb/tlog"
)

// memLog is an in-memory cairn.LogReader for tests: contexts with leaves,
// x/mod stored hashes and an insert-only checkpoint list. It follows the
// LogReader contract; ReadHashes returns ENotFound for indexes beyond the
// stored log.
type memLog struct {
	mu   sync.Mutex
	logs map[logKey]*memContext

	// beforeAdd, if set, runs at the start of AddCheckpoint without the lock:
	// it lets a test insert a competing checkpoint.
	beforeAdd func(org, context string)
	// failUnsigned, if set, is returned by UnsignedHeads (guarded by mu).
	failUnsigned error
}

type memContext struct {
	leaves [][]byte
	hashes [][32]byte // by stored hash index
	cps    []*cairn.Checkpoint
}

func newMemLog() *memLog {
	return &memLog{logs: make(map[logKey]*memContext)}
}

func (m *memLog) context(org, name string) *memContext {
	k := logKey{org, name}
	c := m.logs[k]
	if c == nil {
		c = &memContext{}
		m.logs[k] = c
	}
	return c
}

// appendLeaves commits leaves to a context (creating it) and returns the
// new head, as an engine's Append would.
func (m *memLog) appendLeaves(t testing.TB, org, name string, leaves ...[]byte) cairn.Head {
	t.Helper()
	m.mu.Lock()
	defer m.mu.Unlock()
	c := m.context(org, name)
	for _, leaf := range leaves {
		n := int64(len(c.leaves))
		hs, err := tlog.StoredHashes(n, leaf, c.reader())
		if err != nil {
			t.Fatalf("StoredHashes(%d): %v", n, err)
		}
		if int64(len(c.hashes)) != tlog.StoredHashIndex(0, n) {
			t.Fatalf("stored hashes out of step at record %d", n)
		}
		for _, h := range hs {
			c.hashes = append(c.hashes, h)
		}
		c.leaves = append(c.leaves, slices.Clone(leaf))
	}
	return m.headLocked(t, org, name)
}

// truncate drops a context's log back to size leaves, as a restore from an
// old backup would (the checkpoints stay: they were exported elsewhere).
func (m *memLog) truncate(t testing.TB, org, name string, size int64) cairn.Head {
	t.Helper()
	m.mu.Lock()
	defer m.mu.Unlock()
	c := m.context(org, name)
	c.leaves = c.leaves[:size]
	c.hashes = c.hashes[:tlog.StoredHashCount(size)]
	return m.headLocked(t, org, name)
}

func (m *memLog) head(t testing.TB, org, name string) cairn.Head {
	t.Helper()
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.headLocked(t, org, name)
}

func (m *memLog) headLocked(t testing.TB, org, name string) cairn.Head {
	t.Helper()
	c := m.context(org, name)
	root, err := tlog.TreeHash(int64(len(c.leaves)), c.reader())
	if err != nil {
		t.Fatalf("TreeHash: %v", err)
	}
	return cairn.Head{Org: org, Context: name, Size: int64(len(c.leaves)), Root: root}
}

func (m *memLog) checkpoints(org, name string) []*cairn.Checkpoint {
	m.mu.Lock()
	defer m.mu.Unlock()
	return slices.Clone(m.context(org, name).cps)
}

func (c *memContext) reader() tlog.HashReader {
	return tlog.HashReaderFunc(func(indexes []int64) ([]tlog.Hash, error) {
		out := make([]tlog.Hash, len(indexes))
		for i, x := range indexes {
			if x < 0 || x >= int64(len(c.hashes)) {
				return nil, cairn.Errorf(cairn.ENotFound, "no stored hash %d", x)
			}
			out[i] = c.hashes[x]
		}
		return out, nil
	})
}

func (m *memLog) ReadHashes(ctx context.Context, org, name string, indexes []int64) ([][32]byte, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	c, ok := m.logs[logKey{org, name}]
	if !ok {
		return nil, cairn.Errorf(cairn.ENotFound, "no context %s/%s", org, name)
	}
	hs, err := c.reader().ReadHashes(indexes)
	if err != nil {
		return nil, err
	}
	return hashes(hs), nil
}

func (m *memLog) ReadLeaves(ctx context.Context, org, name string, start, end int64) ([][]byte, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	c, ok := m.logs[logKey{org, name}]
	if !ok {
		return nil, cairn.Errorf(cairn.ENotFound, "no context %s/%s", org, name)
	}
	if start < 0 || start > end {
		return nil, cairn.Errorf(cairn.EInvalid, "bad leaf range [%d, %d)", start, end)
	}
	if end > int64(len(c.leaves)) {
		return nil, cairn.Errorf(cairn.ENotFound, "leaves [%d, %d) not found", start, end)
	}
	return slices.Clone(c.leaves[start:end]), nil
}

func (m *memLog) LatestCheckpoint(ctx context.Context, org, name string) (*cairn.Checkpoint, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	c, ok := m.logs[logKey{org, name}]
	if !ok || len(c.cps) == 0 {
		return nil, cairn.Errorf(cairn.ENotFound, "no checkpoint for %s/%s", org, name)
	}
	cp := *c.cps[len(c.cps)-1]
	return &cp, nil
}

func (m *memLog) AddCheckpoint(ctx context.Context, org, name string, cp *cairn.Checkpoint) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if m.beforeAdd != nil {
		m.beforeAdd(org, name)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	c, ok := m.logs[logKey{org, name}]
	if !ok {
		return cairn.Errorf(cairn.ENotFound, "no context %s/%s", org, name)
	}
	for _, old := range c.cps {
		if old.Size > cp.Size || old.Size == cp.Size && old.Root != cp.Root {
			return cairn.Errorf(cairn.EConflict, "checkpoint %d conflicts with %d", cp.Size, old.Size)
		}
	}
	if len(c.cps) > 0 && c.cps[len(c.cps)-1].Size == cp.Size {
		return nil // the same tree again: nothing new
	}
	c.cps = append(c.cps, &cairn.Checkpoint{Size: cp.Size, Root: cp.Root, Note: slices.Clone(cp.Note), SignedAt: cp.SignedAt})
	return nil
}

func (m *memLog) UnsignedHeads(ctx context.Context) ([]cairn.Head, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.failUnsigned != nil {
		return nil, m.failUnsigned
	}
	var heads []cairn.Head
	for k, c := range m.logs {
		n := int64(len(c.leaves))
		if len(c.cps) > 0 && n <= c.cps[len(c.cps)-1].Size {
			continue
		}
		root, err := tlog.TreeHash(n, c.reader())
		if err != nil {
			return nil, err
		}
		heads = append(heads, cairn.Head{Org: k.org, Context: k.context, Size: n, Root: root})
	}
	slices.SortFunc(heads, func(a, b cairn.Head) int {
		return cmp.Or(cmp.Compare(a.Org, b.Org), cmp.Compare(a.Context, b.Context))
	})
	return heads, nil
}

func (m *memLog) Checkpoints(ctx context.Context, org, name string, from, to int64, limit int) ([]*cairn.Checkpoint, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if from < 0 || to < from || limit <= 0 {
		return nil, cairn.Errorf(cairn.EInvalid, "bad checkpoint range")
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	c, ok := m.logs[logKey{org, name}]
	if !ok {
		return nil, cairn.Errorf(cairn.ENotFound, "no context %s/%s", org, name)
	}
	var out []*cairn.Checkpoint
	for _, cp := range c.cps {
		if cp.Size >= from && cp.Size <= to && len(out) < limit {
			cp := *cp
			out = append(out, &cp)
		}
	}
	return out, nil
}

func (m *memLog) LeafIndex(ctx context.Context, org, name string, hash [32]byte, size int64) (int64, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	c, ok := m.logs[logKey{org, name}]
	if !ok {
		return 0, cairn.Errorf(cairn.ENotFound, "no context %s/%s", org, name)
	}
	for i, l := range c.leaves {
		if int64(i) < size && tlog.RecordHash(l) == hash {
			return int64(i), nil
		}
	}
	return 0, cairn.Errorf(cairn.ENotFound, "no such leaf")
}

var _ cairn.LogReader = (*memLog)(nil)
