package verify

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"filippo.io/torchwood"
	"github.com/transparency-dev/formats/log"
	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
)

const testOrigin = "audit.example.com/acme/payments"

// testLog is an in-memory tlog-tiles log built with x/mod only, with hooks
// to damage what it serves as an attacker with write access to the
// server's storage could.
type testLog struct {
	t       testing.TB
	origin  string
	signer  note.Signer
	vkey    string
	entries [][]byte
	hashes  []tlog.Hash // x/mod stored hashes of the original entries
	notes   [][]byte

	entryOverride map[int64][]byte     // served instead of the entry
	tileOverride  map[tlog.Tile][]byte // served instead of the tile
	missingFrom   int64                // entries (and their hashes) from here on are gone; -1: none
}

func newTestLog(t testing.TB, origin string) *testLog {
	t.Helper()
	skey, vkey, err := note.GenerateKey(rand.Reader, origin)
	if err != nil {
		t.Fatal(err)
	}
	s, err := note.NewSigner(skey)
	if err != nil {
		t.Fatal(err)
	}
	return &testLog{t: t, origin: origin, signer: s, vkey: vkey, missingFrom: -1,
		entryOverride: map[int64][]byte{}, tileOverride: map[tlog.Tile][]byte{}}
}

func testEntry(i int64) []byte { return fmt.Appendf(nil, `{"i":%d,"seq":%d,"pad":"%0100d"}`, i, i, i) }

// add appends n entries.
func (l *testLog) add(n int) {
	l.t.Helper()
	for range n {
		i := int64(len(l.entries))
		e := testEntry(i)
		hs, err := tlog.StoredHashes(i, e, tlog.HashReaderFunc(l.readHashes))
		if err != nil {
			l.t.Fatal(err)
		}
		l.hashes = append(l.hashes, hs...)
		l.entries = append(l.entries, e)
	}
}

func (l *testLog) readHashes(idx []int64) ([]tlog.Hash, error) {
	out := make([]tlog.Hash, len(idx))
	for i, x := range idx {
		out[i] = l.hashes[x]
	}
	return out, nil
}

// sign signs a checkpoint of the current size with the given signers
// (default the log's key) and records it.
func (l *testLog) sign(extra ...note.Signer) []byte {
	l.t.Helper()
	n := int64(len(l.entries))
	root, err := tlog.TreeHash(n, tlog.HashReaderFunc(l.readHashes))
	if err != nil {
		l.t.Fatal(err)
	}
	body := log.Checkpoint{Origin: l.origin, Size: uint64(n), Hash: root[:]}.Marshal()
	signers := extra
	if len(signers) == 0 {
		signers = []note.Signer{l.signer}
	}
	msg, err := note.Sign(&note.Note{Text: string(body)}, signers...)
	if err != nil {
		l.t.Fatal(err)
	}
	l.notes = append(l.notes, msg)
	return msg
}

func (l *testLog) ReadTile(ctx context.Context, t tlog.Tile) ([]byte, error) {
	if data, ok := l.tileOverride[t]; ok {
		return data, nil
	}
	if t.L == -1 {
		start := t.N * 256
		end := start + int64(t.W)
		if end > int64(len(l.entries)) || (l.missingFrom >= 0 && end > l.missingFrom) {
			return nil, fmt.Errorf("bundle %d: %w", t.N, ErrMissing)
		}
		var out []byte
		for i := start; i < end; i++ {
			e := l.entries[i]
			if o, ok := l.entryOverride[i]; ok {
				e = o
			}
			out = binary.BigEndian.AppendUint16(out, uint16(len(e)))
			out = append(out, e...)
		}
		return out, nil
	}
	last := ((t.N*256 + int64(t.W)) << (8 * t.L)) - 1 // the last entry the tile covers
	if last >= int64(len(l.entries)) || (l.missingFrom >= 0 && last >= l.missingFrom) {
		return nil, fmt.Errorf("tile: %w", ErrMissing)
	}
	return tlog.ReadTileData(t, tlog.HashReaderFunc(l.readHashes))
}

func (l *testLog) Checkpoints(ctx context.Context) ([][]byte, error) {
	return slices.Clone(l.notes), nil
}

func (l *testLog) Keys(ctx context.Context) ([]string, error) { return []string{l.vkey}, nil }

// writeDir writes the log as an export bundle (without a manifest).
func (l *testLog) writeDir(dir string) {
	l.t.Helper()
	write := func(name string, data []byte) {
		p := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			l.t.Fatal(err)
		}
		if err := os.WriteFile(p, data, 0o644); err != nil {
			l.t.Fatal(err)
		}
	}
	n := int64(len(l.entries))
	for _, t := range append(bundles(0, n), merkleTiles(n)...) {
		data, err := l.ReadTile(context.Background(), t)
		if err != nil {
			l.t.Fatal(err)
		}
		write(torchwood.TilePath(t), data)
	}
	for _, cp := range l.notes {
		write(CheckpointPath(claimedSize(cp)), cp)
	}
	write(CheckpointFile, l.notes[len(l.notes)-1])
	write(KeysFile, []byte(l.vkey+"\n"))
}

func problemsOf(r *Result) string {
	s := ""
	for _, p := range r.Problems {
		s += "\n  " + p.String()
	}
	return s
}

// hasProblem reports whether r has a problem of the check about the entry
// index (or, with index < 0, about the checkpoint size).
func hasProblem(r *Result, check string, index, size int64) bool {
	for _, p := range r.Problems {
		if p.Check != check {
			continue
		}
		if index >= 0 && p.Index != nil && *p.Index == index {
			return true
		}
		if index < 0 && size >= 0 && p.Size != nil && *p.Size == size {
			return true
		}
		if index < 0 && size < 0 {
			return true
		}
	}
	return false
}

func osDirFS(dir string) fs.FS { return os.DirFS(dir) }
