package merkle

import (
	"context"
	"fmt"
	"sync"

	"github.com/cairn-audit/cairn"
	"golang.org/x/mod/sumdb/tlog"
)

// cacheMinLevel is the lowest tree level a HashCache keeps: one hash in
// 256 leaves, the ones every proof and upper tile of a large tree needs.
const cacheMinLevel = TileHeight

// HashCache is a cairn.LogReader that remembers the stored hashes it has
// read at tree level 8 and above. Stored hashes never change once written,
// so nothing is ever invalidated; at most max hashes are kept (then new
// ones are no longer added). At level 8 and above a log of n entries has
// about n/255 hashes, so an inclusion or consistency proof in a large log
// reads only its eight lowest hashes, which sit in neighbouring rows, from
// the store.
//
// Only hashes below a signed size should be read through it (the server
// never reads others): a store rolled back while the server runs would
// otherwise keep being served the old hashes. Safe for concurrent use.
type HashCache struct {
	cairn.LogReader
	max int

	mu     sync.RWMutex
	hashes map[cacheKey][32]byte
}

type cacheKey struct {
	org, context string
	index        int64
}

// NewHashCache returns a HashCache over r holding at most max hashes
// (64 bytes and a map entry each).
func NewHashCache(r cairn.LogReader, max int) *HashCache {
	return &HashCache{LogReader: r, max: max, hashes: make(map[cacheKey][32]byte)}
}

// ReadHashes implements cairn.LogReader: cached hashes from memory, the
// rest in one call to the underlying reader.
func (c *HashCache) ReadHashes(ctx context.Context, org, contextName string, indexes []int64) ([][32]byte, error) {
	out := make([][32]byte, len(indexes))
	var miss []int64
	var at []int
	c.mu.RLock()
	for i, x := range indexes {
		if h, ok := c.hashes[cacheKey{org, contextName, x}]; ok {
			out[i] = h
			continue
		}
		miss = append(miss, x)
		at = append(at, i)
	}
	c.mu.RUnlock()
	if len(miss) == 0 {
		return out, nil
	}
	hs, err := c.LogReader.ReadHashes(ctx, org, contextName, miss)
	if err != nil {
		return nil, err
	}
	if len(hs) != len(miss) {
		return nil, fmt.Errorf("read hashes: got %d hashes for %d indexes", len(hs), len(miss))
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for k, h := range hs {
		out[at[k]] = h
		if level, _ := tlog.SplitStoredHashIndex(miss[k]); level >= cacheMinLevel && len(c.hashes) < c.max {
			c.hashes[cacheKey{org, contextName, miss[k]}] = h
		}
	}
	return out, nil
}

// Len returns the number of cached hashes.
func (c *HashCache) Len() int {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return len(c.hashes)
}
