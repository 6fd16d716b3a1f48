package verify

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sync"

	"filippo.io/torchwood"
	"golang.org/x/mod/sumdb/tlog"
)

// maxTileProblems bounds the tile mismatches reported one by one.
const maxTileProblems = 100

// compareTiles reads every Merkle tile of the tree of size n from the log
// and compares it with the same tile of the rebuilt tree (tlog.ReadTileData).
// The entries are already authenticated; a tile that differs is a problem
// of the log's serving (a client reading tiles would reject it), named by
// the first differing hash.
func compareTiles(ctx context.Context, res *Result, src Source, t *tree, n int64, parallel int) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	reported := 0
	report := func(p Problem) {
		if reported < maxTileProblems {
			res.Problems = append(res.Problems, p)
		} else if reported == maxTileProblems {
			res.Problems = append(res.Problems, Problem{Check: CheckTile, Message: "more tile problems not listed"})
		}
		reported++
	}
	for f := range prefetch(ctx, src, merkleTiles(n), parallel) {
		r := <-f
		path := torchwood.TilePath(r.tile)
		if errors.Is(r.err, ErrMissing) {
			report(Problem{Check: CheckTile, Message: path + " is missing"})
			continue
		}
		if r.err != nil {
			return fmt.Errorf("read %s: %w", path, r.err)
		}
		want, err := tlog.ReadTileData(r.tile, t)
		if err != nil {
			return err
		}
		if bytes.Equal(r.data, want) {
			continue
		}
		if len(r.data) != len(want) {
			report(Problem{Check: CheckTile, Message: fmt.Sprintf("%s has %d bytes, want %d", path, len(r.data), len(want))})
			continue
		}
		k := int64(0)
		for bytes.Equal(r.data[k*32:k*32+32], want[k*32:k*32+32]) {
			k++
		}
		first := (r.tile.N*256 + k) << (8 * r.tile.L)
		span := int64(1) << (8 * r.tile.L)
		if r.tile.L == 0 {
			report(Problem{Check: CheckTile, Index: &first, Message: fmt.Sprintf(
				"the log's tile %s holds another hash for this entry than the entry's own", path)})
		} else {
			report(Problem{Check: CheckTile, Message: fmt.Sprintf(
				"the log's tile %s differs from the rebuilt tree at the hash of entries [%d, %d)", path, first, first+span)})
		}
	}
	return ctx.Err()
}

// locate names the damage when the entries do not reproduce the newest
// checkpoint. Entries below the largest checkpoint that matched are
// authenticated by it. Above it, each entry's hash is compared with the
// leaf hash the newest checkpoint commits to, read from the log's level-0
// tiles and authenticated up to that checkpoint's root by
// tlog.TileHashReader. Entries whose tiles do not authenticate are
// reported as a range. opts.CheckEntry then runs over the same entries.
func locate(ctx context.Context, res *Result, src Source, t *tree, cps []*checkpointState, upTo int64, opts Options, bad map[int64]bool) error {
	newest := cps[len(cps)-1]
	matched := int64(0)
	firstBad := newest.Size
	for _, c := range cps {
		if c.ok {
			matched = max(matched, c.Size)
		} else if c.checked && c.Size > matched {
			firstBad = min(firstBad, c.Size)
		}
	}
	tr := &cachingReader{tileReader: tileReader{ctx: ctx, src: src}, cache: map[tlog.Tile][]byte{}}
	thr := tlog.TileHashReader(tlog.Tree{N: newest.Size, Hash: newest.Root}, tr)

	unauth, unauthFrom := int64(0), int64(-1)
	flush := func(end int64) {
		if unauthFrom >= 0 {
			lo := unauthFrom
			res.Problems = append(res.Problems, Problem{Check: CheckEntry, Index: &lo, Message: fmt.Sprintf(
				"entries [%d, %d) cannot be authenticated: the entries do not reproduce the checkpoints from size %d on, "+
					"and the log's tiles for them do not authenticate against the checkpoint of size %d",
				unauthFrom, end, firstBad, newest.Size)})
			unauthFrom = -1
		}
	}
	for start := matched; start < upTo; {
		end := min(upTo, (start/256+1)*256)
		idx := make([]int64, 0, end-start)
		for i := start; i < end; i++ {
			idx = append(idx, tlog.StoredHashIndex(0, i))
		}
		tr.ioErr = nil
		hs, err := thr.ReadHashes(idx)
		if tr.ioErr != nil {
			return tr.ioErr
		}
		if err != nil {
			if unauthFrom < 0 {
				unauthFrom = start
			}
			unauth += end - start
			start = end
			continue
		}
		flush(start)
		for k, h := range hs {
			i := start + int64(k)
			if h != t.leafHash(i) {
				bad[i] = true
				res.entryProblem(i, "changed: its hash is not the one the checkpoint of size %d commits to", newest.Size)
			}
		}
		start = end
	}
	flush(upTo)

	if opts.CheckEntry != nil && matched < upTo {
		if err := checkEntries(ctx, res, src, matched, upTo, opts, bad); err != nil {
			return err
		}
	}
	res.EntriesValid = upTo - unauth - int64(len(bad))
	return nil
}

// checkEntries runs opts.CheckEntry over entries [start, end).
func checkEntries(ctx context.Context, res *Result, src Source, start, end int64, opts Options, bad map[int64]bool) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	first := start / 256 * 256
	for f := range prefetch(ctx, src, bundles(first, end), opts.Parallel) {
		r := <-f
		if r.err != nil {
			return nil // already reported while rebuilding
		}
		data := r.data
		for k := range r.tile.W {
			entry, rest, err := torchwood.ReadTileEntry(data)
			if err != nil {
				break
			}
			data = rest
			i := r.tile.N*256 + int64(k)
			if i < start || i >= end {
				continue
			}
			if err := opts.CheckEntry(i, entry); err != nil && !bad[i] {
				bad[i] = true
				res.entryProblem(i, "%v", err)
			}
		}
	}
	return ctx.Err()
}

// cachingReader keeps the tiles tlog.TileHashReader asks for again and
// again (the parents of every level-0 tile), and separates I/O failures
// from tiles the log does not have or that do not authenticate.
type cachingReader struct {
	tileReader
	mu    sync.Mutex
	cache map[tlog.Tile][]byte
	ioErr error
}

func (c *cachingReader) ReadTiles(tiles []tlog.Tile) ([][]byte, error) {
	out := make([][]byte, len(tiles))
	for i, t := range tiles {
		c.mu.Lock()
		data, ok := c.cache[t]
		c.mu.Unlock()
		if !ok {
			var err error
			data, err = c.src.ReadTile(c.ctx, t)
			if err != nil {
				if !errors.Is(err, ErrMissing) {
					c.ioErr = fmt.Errorf("read %s: %w", torchwood.TilePath(t), err)
				}
				return nil, err
			}
			if t.L > 0 {
				c.mu.Lock()
				c.cache[t] = data
				c.mu.Unlock()
			}
		}
		out[i] = data
	}
	return out, nil
}
