package verify

import (
	"context"
	"fmt"

	"golang.org/x/mod/sumdb/tlog"
)

// tree is the RFC 6962 tree rebuilt from entries: every x/mod stored hash
// (just under two per entry), in memory. It is a tlog.HashReader, so roots
// (tlog.TreeHash), proofs (tlog.ProveTree) and tiles (tlog.ReadTileData)
// of any size up to n come from x/mod, not from code of ours.
type tree struct {
	n      int64
	hashes []tlog.Hash
}

func newTree(capacity int64) *tree {
	return &tree{hashes: make([]tlog.Hash, 0, tlog.StoredHashCount(capacity))}
}

// append adds the record hash of entry t.n.
func (t *tree) append(rh tlog.Hash) error {
	hs, err := tlog.StoredHashesForRecordHash(t.n, rh, t)
	if err != nil {
		return err
	}
	t.hashes = append(t.hashes, hs...)
	t.n++
	return nil
}

// ReadHashes implements tlog.HashReader.
func (t *tree) ReadHashes(indexes []int64) ([]tlog.Hash, error) {
	out := make([]tlog.Hash, len(indexes))
	for i, x := range indexes {
		if x < 0 || x >= int64(len(t.hashes)) {
			return nil, fmt.Errorf("stored hash %d is beyond the rebuilt tree (%d entries)", x, t.n)
		}
		out[i] = t.hashes[x]
	}
	return out, nil
}

// leafHash returns the record hash of entry i (< n).
func (t *tree) leafHash(i int64) tlog.Hash { return t.hashes[tlog.StoredHashIndex(0, i)] }

// root returns the tree hash at size (<= n).
func (t *tree) root(size int64) (tlog.Hash, error) { return tlog.TreeHash(size, t) }

// bundles returns the entry bundles that hold entries [start, end), the
// first and last possibly partial. start must be a multiple of 256.
func bundles(start, end int64) []tlog.Tile {
	var out []tlog.Tile
	for n := start / 256; n*256 < end; n++ {
		out = append(out, tlog.Tile{H: 8, L: -1, N: n, W: int(min(256, end-n*256))})
	}
	return out
}

// merkleTiles returns every Merkle tile of the tree of size n, each level's
// rightmost one partial where the level does not fill it.
func merkleTiles(n int64) []tlog.Tile {
	var out []tlog.Tile
	for l := 0; l < 8 && n>>(8*l) > 0; l++ {
		count := n >> (8 * l)
		for i := int64(0); i*256 < count; i++ {
			out = append(out, tlog.Tile{H: 8, L: l, N: i, W: int(min(256, count-i*256))})
		}
	}
	return out
}

// fetched is one tile read ahead.
type fetched struct {
	tile tlog.Tile
	data []byte
	err  error
}

// prefetch reads tiles in order with up to parallel reads in flight, and
// delivers them in order. At most parallel+2 tiles are held at once. The
// channel closes after the last tile or when ctx ends.
func prefetch(ctx context.Context, src Source, tiles []tlog.Tile, parallel int) <-chan chan fetched {
	futures := make(chan chan fetched, parallel)
	go func() {
		defer close(futures)
		for _, t := range tiles {
			f := make(chan fetched, 1)
			select {
			case futures <- f:
			case <-ctx.Done():
				return
			}
			go func() {
				data, err := src.ReadTile(ctx, t)
				f <- fetched{t, data, err}
			}()
		}
	}()
	return futures
}

// tileReader adapts a Source to tlog.TileReader for tlog.TileHashReader,
// which authenticates the tiles it reads against a signed tree.
type tileReader struct {
	ctx context.Context
	src Source
}

func (r tileReader) Height() int { return 8 }

func (r tileReader) ReadTiles(tiles []tlog.Tile) ([][]byte, error) {
	out := make([][]byte, len(tiles))
	for i, t := range tiles {
		data, err := r.src.ReadTile(r.ctx, t)
		if err != nil {
			return nil, err
		}
		out[i] = data
	}
	return out, nil
}

func (r tileReader) SaveTiles([]tlog.Tile, [][]byte) {}
