package verify

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"slices"

	"filippo.io/torchwood"
	"golang.org/x/mod/sumdb/tlog"
)

// Options configure [Log].
type Options struct {
	// Keys are the pinned verifier keys. Empty: use the keys the log
	// publishes (trust on first use; Result.KeysPinned says which).
	Keys []string
	// Origin is the expected origin; default the keys' name.
	Origin string
	// CheckEntry, if set, checks an entry's contents (Cairn: its "seq" is
	// its index). It runs only while locating a damage (when the entries
	// do not reproduce the newest checkpoint), to name reordered entries.
	CheckEntry func(index int64, entry []byte) error
	// ReadTo reads entries up to this size even where no checkpoint covers
	// them (fsck checks the unsigned tail against the database's head).
	ReadTo int64
	// SkipTiles skips comparing the log's Merkle tiles with the rebuilt tree.
	SkipTiles bool
	// State, if set, is checked for rollback and fork and, when the log is
	// valid, advanced to its newest checkpoint.
	State *State
	// Parallel is the number of tile reads in flight (default 8).
	Parallel int
}

// Kinds of problems.
const (
	CheckEntry       = "entry"
	CheckCheckpoint  = "checkpoint"
	CheckConsistency = "consistency"
	CheckTile        = "tile"
	CheckState       = "state"
)

// Problem is one verification failure.
type Problem struct {
	Check string `json:"check"`
	// Index is the entry the problem is about, if any.
	Index *int64 `json:"index,omitempty"`
	// Size is the checkpoint (tree size) the problem is about, if any.
	Size    *int64 `json:"size,omitempty"`
	Message string `json:"message"`
}

func (p Problem) String() string {
	switch {
	case p.Index != nil:
		return fmt.Sprintf("%s %d: %s", p.Check, *p.Index, p.Message)
	case p.Size != nil:
		return fmt.Sprintf("%s at size %d: %s", p.Check, *p.Size, p.Message)
	}
	return p.Check + ": " + p.Message
}

// Result is the outcome of [Log].
type Result struct {
	Origin     string `json:"origin"`
	KeysPinned bool   `json:"keys_pinned"`
	// TreeSize and Root are those of the newest checkpoint that verified.
	TreeSize         int64     `json:"tree_size"`
	Root             string    `json:"root"`
	Entries          int64     `json:"entries"`
	EntriesValid     int64     `json:"entries_valid"`
	Checkpoints      int       `json:"checkpoints"`
	CheckpointsValid int       `json:"checkpoints_valid"`
	Problems         []Problem `json:"problems"`
	// Latest is the newest checkpoint whose signature verified.
	Latest *Checkpoint `json:"-"`

	tree *tree
}

// Valid reports whether nothing failed.
func (r *Result) Valid() bool { return len(r.Problems) == 0 }

// Summary is the totals line.
func (r *Result) Summary() string {
	return fmt.Sprintf("%d/%d entries valid, %d/%d checkpoints valid and consistent",
		r.EntriesValid, r.Entries, r.CheckpointsValid, r.Checkpoints)
}

// RootAt returns the root of the tree rebuilt from the log's entries at a
// size up to the entries read.
func (r *Result) RootAt(size int64) (tlog.Hash, error) {
	if r.tree == nil || size > r.tree.n {
		return tlog.Hash{}, fmt.Errorf("size %d is beyond the entries read", size)
	}
	return r.tree.root(size)
}

func (r *Result) entryProblem(i int64, format string, args ...any) {
	r.Problems = append(r.Problems, Problem{Check: CheckEntry, Index: &i, Message: fmt.Sprintf(format, args...)})
}

func (r *Result) sizeProblem(check string, size int64, format string, args ...any) {
	p := Problem{Check: check, Message: fmt.Sprintf(format, args...)}
	if size >= 0 {
		p.Size = &size
	}
	r.Problems = append(r.Problems, p)
}

// checkpointState tracks one verified checkpoint through the run.
type checkpointState struct {
	*Checkpoint
	checked bool // its root was compared with the rebuilt tree
	ok      bool // ... and matched, and nothing else failed
}

// Log verifies a whole log: every checkpoint's signature; the tree rebuilt
// from every entry up to the newest checkpoint; the root at every
// checkpoint's size; the consistency of each checkpoint with the next
// (a proof from the rebuilt tree, checked by transparency-dev/merkle
// against the signed roots); the log's Merkle tiles against the rebuilt
// tree. Checkpoints that all match one sequence of entries are pairwise
// consistent.
//
// When the entries do not reproduce the newest checkpoint, Log locates
// the damage: it authenticates the log's level-0 tiles against the newest
// checkpoint (tlog.TileHashReader) and names each entry whose hash differs
// from the one the checkpoint commits to; where the tiles do not
// authenticate it names the range between the last checkpoint that
// matched and the first that did not.
//
// The error is non-nil only when the check could not be carried out:
// bad keys, or a source that fails other than with ErrMissing.
func Log(ctx context.Context, src Source, opts Options) (*Result, error) {
	if opts.Parallel <= 0 {
		opts.Parallel = 8
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	keys, pinned := opts.Keys, len(opts.Keys) > 0
	if !pinned {
		var err error
		if keys, err = src.Keys(ctx); err != nil {
			return nil, fmt.Errorf("read the log's verifier keys: %w", err)
		}
	}
	v, err := NewVerifier(keys, opts.Origin)
	if err != nil {
		return nil, err
	}
	res := &Result{Origin: v.Origin(), KeysPinned: pinned, Problems: []Problem{}}

	raws, err := src.Checkpoints(ctx)
	if err != nil {
		return nil, fmt.Errorf("read checkpoints: %w", err)
	}
	cps := verifyCheckpoints(res, v, raws)
	if len(cps) == 0 {
		res.sizeProblem(CheckCheckpoint, -1, "no checkpoint verifies with the log's key(s)")
		return res, nil
	}
	newest := cps[len(cps)-1]
	res.Latest = newest.Checkpoint
	res.TreeSize, res.Root = newest.Size, base64.StdEncoding.EncodeToString(newest.Root[:])
	res.Entries = newest.Size

	// Rebuild the tree from the entries, comparing the root at each
	// checkpoint's size as the tree passes it.
	end := max(newest.Size, opts.ReadTo)
	t := newTree(end)
	res.tree = t
	next := 0 // the next checkpoint to compare
	compare := func() error {
		for next < len(cps) && cps[next].Size <= t.n {
			c := cps[next]
			root, err := t.root(c.Size)
			if err != nil {
				return err
			}
			c.checked, c.ok = true, root == c.Root
			if !c.ok {
				res.sizeProblem(CheckCheckpoint, c.Size, "its root is not the root of the log's first %d entries", c.Size)
			}
			next++
		}
		return nil
	}
	if err := compare(); err != nil {
		return nil, err
	}
	missing, err := readEntries(ctx, res, src, t, end, opts.Parallel, compare)
	if err != nil {
		return nil, err
	}
	for _, c := range cps[next:] {
		res.sizeProblem(CheckCheckpoint, c.Size, "cannot be checked: the log lacks entries from %d on", missing)
	}

	// Consistency of each checkpoint with the next (both matched).
	var prev *checkpointState
	for _, c := range cps {
		if !c.ok {
			continue
		}
		if prev != nil && prev.Size > 0 && prev.Size < c.Size {
			p, err := tlog.ProveTree(c.Size, prev.Size, t)
			if err == nil {
				err = VerifyConsistencyProof(prev.Size, prev.Root, c.Size, c.Root, p)
			}
			if err != nil {
				c.ok = false
				res.sizeProblem(CheckConsistency, c.Size, "not consistent with the checkpoint of size %d: %v", prev.Size, err)
				continue
			}
		}
		prev = c
	}

	// Which entries are authenticated: all, if the newest checkpoint's root
	// came out of them; otherwise locate the damage.
	bad := map[int64]bool{}
	if newest.ok && missing >= newest.Size {
		res.EntriesValid = newest.Size
		if !opts.SkipTiles {
			if err := compareTiles(ctx, res, src, t, newest.Size, opts.Parallel); err != nil {
				return nil, err
			}
		}
	} else {
		if err := locate(ctx, res, src, t, cps, min(missing, newest.Size), opts, bad); err != nil {
			return nil, err
		}
	}
	for _, c := range cps {
		if c.ok {
			res.CheckpointsValid++
		}
	}
	if opts.State != nil {
		if err := opts.State.check(res); err != nil {
			return nil, err
		}
	}
	return res, nil
}

// verifyCheckpoints checks every signature and returns the verified
// checkpoints by size. Two different roots for one size are a fork.
func verifyCheckpoints(res *Result, v *Verifier, raws [][]byte) []*checkpointState {
	bySize := map[int64]*checkpointState{}
	var forked []int64
	for _, raw := range raws {
		res.Checkpoints++
		c, err := v.Checkpoint(raw)
		if err != nil {
			res.sizeProblem(CheckCheckpoint, claimedSize(raw), "%v", err)
			continue
		}
		if prev, ok := bySize[c.Size]; ok {
			if prev.Root != c.Root {
				forked = append(forked, c.Size)
				res.sizeProblem(CheckConsistency, c.Size, "the log signed two different trees of this size: a fork")
				continue
			}
			res.CheckpointsValid++ // the same tree again (other cosignatures)
			if bytes.Count(raw, []byte("\n— ")) > bytes.Count(prev.Note, []byte("\n— ")) {
				prev.Checkpoint = c
			}
			continue
		}
		bySize[c.Size] = &checkpointState{Checkpoint: c}
	}
	var out []*checkpointState
	for size, c := range bySize {
		if slices.Contains(forked, size) {
			continue
		}
		out = append(out, c)
	}
	slices.SortFunc(out, func(a, b *checkpointState) int { return int(a.Size - b.Size) })
	return out
}

// readEntries reads entries [0, end) bundle by bundle into t, calling
// compare after each bundle. It returns the index of the first entry the
// log cannot produce (end if none), after reporting it.
func readEntries(ctx context.Context, res *Result, src Source, t *tree, end int64, parallel int, compare func() error) (int64, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	for f := range prefetch(ctx, src, bundles(0, end), parallel) {
		r := <-f
		start := r.tile.N * 256
		if errors.Is(r.err, ErrMissing) {
			have, n, err := probeBundle(ctx, src, r.tile)
			if err != nil {
				return 0, err
			}
			if err := appendBundle(res, t, have, start, n); err != nil {
				return 0, err
			}
			if err := compare(); err != nil {
				return 0, err
			}
			res.entryProblem(t.n, "missing: the log cannot produce entries from here to %d, which a signed checkpoint covers", end)
			return t.n, nil
		}
		if r.err != nil {
			return 0, fmt.Errorf("read %s: %w", torchwood.TilePath(r.tile), r.err)
		}
		if err := appendBundle(res, t, r.data, start, r.tile.W); err != nil {
			return 0, err
		}
		if err := compare(); err != nil {
			return 0, err
		}
		if t.n != start+int64(r.tile.W) {
			return t.n, nil // malformed bundle, reported
		}
	}
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	return t.n, nil
}

// appendBundle hashes the w entries of an entry bundle into t. A
// malformed bundle is reported at the first entry it cannot yield.
func appendBundle(res *Result, t *tree, data []byte, start int64, w int) error {
	for i := range w {
		entry, rest, err := torchwood.ReadTileEntry(data)
		if err != nil {
			res.entryProblem(start+int64(i), "entry bundle %d is malformed: %v", start/256, err)
			return nil
		}
		if err := t.append(tlog.RecordHash(entry)); err != nil {
			return err
		}
		data = rest
	}
	if len(data) != 0 {
		res.entryProblem(start+int64(w)-1, "entry bundle %d has %d bytes after its %d entries", start/256, len(data), w)
	}
	return nil
}

// probeBundle finds how much of a bundle the log can produce by asking for
// narrower partial bundles (binary search), and returns that prefix and
// the number of entries in it.
func probeBundle(ctx context.Context, src Source, tile tlog.Tile) ([]byte, int, error) {
	lo, hi := 0, tile.W // the log has lo entries of the bundle, not hi
	var have []byte
	for lo+1 < hi {
		mid := (lo + hi) / 2
		t := tile
		t.W = mid
		data, err := src.ReadTile(ctx, t)
		switch {
		case err == nil:
			lo, have = mid, data
		case errors.Is(err, ErrMissing):
			hi = mid
		default:
			return nil, 0, fmt.Errorf("read %s: %w", torchwood.TilePath(t), err)
		}
	}
	return have, lo, nil
}
