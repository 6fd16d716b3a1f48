package merkle

import (
	"context"
	"encoding/binary"
	"fmt"
	"strings"

	"github.com/cairn-audit/cairn"
	"golang.org/x/mod/sumdb/tlog"
)

// TileHeight is the height of C2SP tlog-tiles tiles: 2^8 = 256 hashes or
// entries per full tile.
const TileHeight = 8

// TileWidth is the number of hashes in a full tile, and of entries in a full
// entry bundle.
const TileWidth = 1 << TileHeight

// maxTileLevel is the highest Merkle tile level C2SP tlog-tiles defines.
const maxTileLevel = 63

// ParseTilePath parses a C2SP tlog-tiles tile path: "tile/<L>/<N>[.p/<W>]"
// for a Merkle tile at level L, or "tile/entries/<N>[.p/<W>]" for an entry
// bundle (returned with L = -1, as golang.org/x/mod/sumdb/tlog marks data
// tiles). N is written in zero-padded groups of three digits, all but the
// last prefixed with "x" (1234067 is "x001/x234/067"); W, for a partial
// tile, is 1-255. Only the canonical spelling of a tile parses.
//
// The parsing is tlog.ParseTilePath's: the C2SP path differs from the
// go.sum database's only in leaving out the height ("tile/8/...") and
// naming data tiles "entries" instead of "data".
//
// Errors: EInvalid for anything else.
func ParseTilePath(path string) (tlog.Tile, error) {
	bad := func() (tlog.Tile, error) {
		return tlog.Tile{}, cairn.Errorf(cairn.EInvalid, "%q is not a C2SP tlog-tiles tile path", path)
	}
	rest, ok := strings.CutPrefix(path, "tile/")
	if !ok {
		return bad()
	}
	var sumdb string
	switch {
	case strings.HasPrefix(rest, "entries/"):
		sumdb = "tile/8/data/" + strings.TrimPrefix(rest, "entries/")
	case strings.HasPrefix(rest, "data/"):
		return bad() // the go.sum database's name, not C2SP's
	default:
		sumdb = "tile/8/" + rest
	}
	t, err := tlog.ParseTilePath(sumdb)
	if err != nil || t.H != TileHeight || t.L > maxTileLevel {
		return bad()
	}
	return t, nil
}

// TilePath returns the C2SP tlog-tiles path of t ("tile/0/x001/234",
// "tile/entries/005.p/17"). t must have height TileHeight.
func TilePath(t tlog.Tile) string {
	if t.L == -1 {
		return "tile/entries/" + strings.TrimPrefix(t.Path(), "tile/8/data/")
	}
	return "tile/" + strings.TrimPrefix(t.Path(), "tile/8/")
}

// TileCovered reports whether the tree of the given size holds everything
// tile t covers: for a Merkle tile at level L, the W hashes at tree level
// 8L starting at N*256; for an entry bundle, the W entries starting at
// N*256. A tile covered by a signed tree never changes.
func TileCovered(t tlog.Tile, size int64) bool {
	if t.H != TileHeight || t.N < 0 || t.W < 1 || t.W > TileWidth || size < 0 {
		return false
	}
	count := size // entries, or hashes at the tile's level
	if t.L > 0 {
		if t.L*TileHeight >= 63 {
			return false
		}
		count = size >> (t.L * TileHeight)
	}
	// N*256 + W <= count, without overflow.
	return t.N <= (count-int64(t.W))/TileWidth && count >= int64(t.W)
}

// ReadTile returns the contents of tile t of a context's log: for a Merkle
// tile the W hashes (32 bytes each) read from the stored hashes with
// tlog.ReadTileData, for an entry bundle (L = -1) the W leaves, each
// prefixed with its length as a big-endian uint16.
//
// signed is the size of the context's latest signed checkpoint: only tiles
// it covers are served, so nothing is revealed before it is signed and
// every tile served is one a verifier can authenticate.
//
// Errors: ENotFound for a tile beyond signed; EInvalid for a tile that is
// not a tlog-tiles tile; EIntegrity when the store lacks leaves or hashes
// the signed tree covers, or holds a leaf too long for an entry bundle; the
// reader's errors otherwise.
func ReadTile(ctx context.Context, r cairn.LogReader, org, contextName string, t tlog.Tile, signed int64) ([]byte, error) {
	if t.H != TileHeight || t.L < -1 || t.L > maxTileLevel || t.W < 1 || t.W > TileWidth || t.N < 0 {
		return nil, cairn.Errorf(cairn.EInvalid, "not a tlog-tiles tile")
	}
	if !TileCovered(t, signed) {
		return nil, cairn.Errorf(cairn.ENotFound, "%s is beyond the latest signed checkpoint (size %d)", TilePath(t), signed)
	}
	missing := func(err error) error {
		if cairn.ErrorCode(err) == cairn.ENotFound || cairn.ErrorCode(err) == cairn.EIntegrity {
			return &cairn.Error{Code: cairn.EIntegrity, Err: err, Message: fmt.Sprintf(
				"the store cannot produce %s although the checkpoint of size %d covers it", TilePath(t), signed)}
		}
		return fmt.Errorf("read %s: %w", TilePath(t), err)
	}
	if t.L >= 0 {
		data, err := tlog.ReadTileData(t, HashReader(ctx, r, org, contextName))
		if err != nil {
			return nil, missing(err)
		}
		return data, nil
	}
	start := t.N * TileWidth
	leaves, err := r.ReadLeaves(ctx, org, contextName, start, start+int64(t.W))
	if err == nil && len(leaves) != t.W {
		err = cairn.Errorf(cairn.ENotFound, "got %d leaves, want %d", len(leaves), t.W)
	}
	if err != nil {
		return nil, missing(err)
	}
	n := 0
	for _, l := range leaves {
		n += 2 + len(l)
	}
	bundle := make([]byte, 0, n)
	for i, l := range leaves {
		if len(l) > cairn.MaxLeafSize {
			return nil, cairn.Errorf(cairn.EIntegrity, "leaf %d is %d bytes, more than an entry bundle can carry", start+int64(i), len(l))
		}
		bundle = binary.BigEndian.AppendUint16(bundle, uint16(len(l)))
		bundle = append(bundle, l...)
	}
	return bundle, nil
}
