package merkle

import (
	"bytes"
	"encoding/binary"
	"strings"
	"testing"

	"filippo.io/torchwood"
	"github.com/cairn-audit/cairn"
	"golang.org/x/mod/sumdb/tlog"
)

func TestParseTilePath(t *testing.T) {
	good := []struct {
		path string
		tile tlog.Tile
	}{
		{"tile/0/000", tlog.Tile{H: 8, L: 0, N: 0, W: 256}},
		{"tile/0/005", tlog.Tile{H: 8, L: 0, N: 5, W: 256}},
		{"tile/1/x001/000", tlog.Tile{H: 8, L: 1, N: 1000, W: 256}},
		{"tile/0/x001/x234/067", tlog.Tile{H: 8, L: 0, N: 1234067, W: 256}},
		{"tile/2/x001/x234/067.p/8", tlog.Tile{H: 8, L: 2, N: 1234067, W: 8}},
		{"tile/entries/000", tlog.Tile{H: 8, L: -1, N: 0, W: 256}},
		{"tile/entries/x001/x234/067.p/255", tlog.Tile{H: 8, L: -1, N: 1234067, W: 255}},
		{"tile/entries/123.p/1", tlog.Tile{H: 8, L: -1, N: 123, W: 1}},
		{"tile/63/000", tlog.Tile{H: 8, L: 63, N: 0, W: 256}},
	}
	for _, tc := range good {
		got, err := ParseTilePath(tc.path)
		if err != nil || got != tc.tile {
			t.Errorf("ParseTilePath(%q) = %+v, %v; want %+v", tc.path, got, err, tc.tile)
			continue
		}
		if p := TilePath(got); p != tc.path {
			t.Errorf("TilePath(%+v) = %q, want %q", got, p, tc.path)
		}
		if p := torchwood.TilePath(got); p != tc.path {
			t.Errorf("torchwood.TilePath(%+v) = %q, want %q", got, p, tc.path)
		}
	}
	for _, bad := range []string{
		"", "tile", "tile/", "tile/0", "tile/0/", "tile/0/5", "tile/0/0005", "tile/0/x000/005",
		"tile/0/001.p/0", "tile/0/001.p/256", "tile/0/001.p/", "tile/0/001.p/08",
		"tile/-1/000", "tile/64/000", "tile/8/0/000", "tile/entries/", "tile/entries/1",
		"tile/data/000", "tile/8/data/000", "tiles/0/000", "/tile/0/000", "tile/0/000/",
		"tile/0/x1234/000", "tile/0/1234", "tile/00/000", "tile/+0/000", "tile/0/+00",
		"tile/entries/000.p/1/2", "tile/0/000.p/1.p/2",
	} {
		if tile, err := ParseTilePath(bad); cairn.ErrorCode(err) != cairn.EInvalid {
			t.Errorf("ParseTilePath(%q) = %+v, %v; want invalid", bad, tile, err)
		}
	}
}

// FuzzParseTilePath: every path that parses is canonical (it prints back
// to itself) and agrees with torchwood's independent parser, which accepts
// everything Cairn accepts.
func FuzzParseTilePath(f *testing.F) {
	for _, s := range []string{"tile/0/x001/x234/067", "tile/entries/005.p/17", "tile/1/000", "tile/data/000", "tile/0/001.p/256"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, path string) {
		tile, err := ParseTilePath(path)
		if err != nil {
			if cairn.ErrorCode(err) != cairn.EInvalid {
				t.Fatalf("ParseTilePath(%q): error code %q", path, cairn.ErrorCode(err))
			}
			return
		}
		if p := TilePath(tile); p != path {
			t.Fatalf("ParseTilePath(%q) = %+v, which prints as %q", path, tile, p)
		}
		tw, err := torchwood.ParseTilePath(path)
		if err != nil || tw != tile {
			t.Fatalf("torchwood.ParseTilePath(%q) = %+v, %v; Cairn parsed %+v", path, tw, err, tile)
		}
	})
}

func TestTileCovered(t *testing.T) {
	for _, tc := range []struct {
		tile tlog.Tile
		size int64
		want bool
	}{
		{tlog.Tile{H: 8, L: 0, N: 0, W: 256}, 256, true},
		{tlog.Tile{H: 8, L: 0, N: 0, W: 256}, 255, false},
		{tlog.Tile{H: 8, L: 0, N: 0, W: 255}, 255, true},
		{tlog.Tile{H: 8, L: 0, N: 1, W: 1}, 256, false},
		{tlog.Tile{H: 8, L: 0, N: 1, W: 1}, 257, true},
		{tlog.Tile{H: 8, L: -1, N: 1, W: 2}, 258, true},
		{tlog.Tile{H: 8, L: -1, N: 1, W: 3}, 258, false},
		{tlog.Tile{H: 8, L: 1, N: 0, W: 1}, 255, false},
		{tlog.Tile{H: 8, L: 1, N: 0, W: 1}, 256, true},
		{tlog.Tile{H: 8, L: 1, N: 0, W: 256}, 65535, false},
		{tlog.Tile{H: 8, L: 1, N: 0, W: 256}, 65536, true},
		{tlog.Tile{H: 8, L: 2, N: 0, W: 1}, 65536, true},
		{tlog.Tile{H: 8, L: 8, N: 0, W: 1}, 1 << 62, false},
		{tlog.Tile{H: 8, L: 0, N: 1 << 60, W: 256}, 1 << 62, false},
		{tlog.Tile{H: 8, L: 0, N: 0, W: 1}, 0, false},
	} {
		if got := TileCovered(tc.tile, tc.size); got != tc.want {
			t.Errorf("TileCovered(%+v, %d) = %v, want %v", tc.tile, tc.size, got, tc.want)
		}
	}
}

func TestReadTile(t *testing.T) {
	m := newMemLog()
	leaves := testLeaves(70_000)
	m.appendLeaves(t, testOrg, testCtx, leaves...)
	ctx := t.Context()
	c := m.logs[logKey{testOrg, testCtx}]
	const signed = 66_000 // the latest checkpoint; the log holds more

	for _, tile := range []tlog.Tile{
		{H: 8, L: 0, N: 0, W: 256},
		{H: 8, L: 0, N: 3, W: 17},
		{H: 8, L: 0, N: 257, W: 208}, // 66,000 = 257*256 + 208: the right edge
		{H: 8, L: 1, N: 0, W: 256},
		{H: 8, L: 1, N: 1, W: 1},
		{H: 8, L: 2, N: 0, W: 1},
	} {
		got, err := ReadTile(ctx, m, testOrg, testCtx, tile, signed)
		if err != nil {
			t.Fatalf("ReadTile(%s): %v", TilePath(tile), err)
		}
		want, _ := tlog.ReadTileData(tile, c.reader())
		if !bytes.Equal(got, want) || len(got) != tile.W*32 {
			t.Errorf("ReadTile(%s): %d bytes differ from tlog.ReadTileData", TilePath(tile), len(got))
		}
	}

	bundle := tlog.Tile{H: 8, L: -1, N: 2, W: 100}
	got, err := ReadTile(ctx, m, testOrg, testCtx, bundle, signed)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 100 {
		entry, rest, err := torchwood.ReadTileEntry(got)
		if err != nil || !bytes.Equal(entry, leaves[512+i]) {
			t.Fatalf("entry %d of bundle 2: %q, %v", i, entry, err)
		}
		got = rest
	}
	if len(got) != 0 {
		t.Fatalf("%d trailing bytes after the bundle's entries", len(got))
	}

	for _, tile := range []tlog.Tile{
		{H: 8, L: 0, N: 257, W: 209},  // one hash past the signed size
		{H: 8, L: 0, N: 258, W: 1},    // exists in the log, not signed yet
		{H: 8, L: -1, N: 257, W: 209}, // entries past the signed size
		{H: 8, L: 2, N: 0, W: 2},
	} {
		_, err := ReadTile(ctx, m, testOrg, testCtx, tile, signed)
		if cairn.ErrorCode(err) != cairn.ENotFound {
			t.Errorf("ReadTile(%s) beyond the signed size: %v, want not_found", TilePath(tile), err)
		}
	}

	// A store that lost rows the signed tree covers is an integrity error,
	// not a 404 a client could mistake for "not yet".
	m.truncate(t, testOrg, testCtx, 1000)
	for _, tile := range []tlog.Tile{{H: 8, L: 0, N: 5, W: 256}, {H: 8, L: -1, N: 5, W: 256}} {
		_, err := ReadTile(ctx, m, testOrg, testCtx, tile, signed)
		if cairn.ErrorCode(err) != cairn.EIntegrity {
			t.Errorf("ReadTile(%s) of a truncated store: %v, want integrity", TilePath(tile), err)
		}
	}
}

func TestReadTileLeafTooLong(t *testing.T) {
	m := newMemLog()
	m.appendLeaves(t, testOrg, testCtx, bytes.Repeat([]byte("a"), cairn.MaxLeafSize), bytes.Repeat([]byte("b"), cairn.MaxLeafSize+1))
	got, err := ReadTile(t.Context(), m, testOrg, testCtx, tlog.Tile{H: 8, L: -1, N: 0, W: 1}, 2)
	if err != nil || binary.BigEndian.Uint16(got) != cairn.MaxLeafSize {
		t.Fatalf("a 65,535-byte leaf: %v", err)
	}
	_, err = ReadTile(t.Context(), m, testOrg, testCtx, tlog.Tile{H: 8, L: -1, N: 0, W: 2}, 2)
	if cairn.ErrorCode(err) != cairn.EIntegrity || !strings.Contains(err.Error(), "leaf 1") {
		t.Fatalf("a 65,536-byte leaf: %v, want integrity naming leaf 1", err)
	}
}
