package verify

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"testing"

	"filippo.io/torchwood"
	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
)

// seqCheck is the application check Cairn's CLI uses: an entry's "seq"
// member is its index.
func seqCheck(i int64, entry []byte) error {
	var e struct{ Seq *int64 }
	if err := json.Unmarshal(entry, &e); err != nil || e.Seq == nil {
		return fmt.Errorf("not a JSON object with a seq")
	}
	if *e.Seq != i {
		return fmt.Errorf("says seq %d: entries were reordered", *e.Seq)
	}
	return nil
}

// growLog builds a log with checkpoints at the given sizes.
func growLog(t *testing.T, sizes ...int) *testLog {
	l := newTestLog(t, testOrigin)
	for _, n := range sizes {
		l.add(n - len(l.entries))
		l.sign()
	}
	return l
}

func verifyLog(t *testing.T, src Source, opts Options) *Result {
	t.Helper()
	if opts.CheckEntry == nil {
		opts.CheckEntry = seqCheck
	}
	r, err := Log(t.Context(), src, opts)
	if err != nil {
		t.Fatalf("Log: %v", err)
	}
	t.Logf("%s%s", r.Summary(), problemsOf(r))
	return r
}

func TestLogValid(t *testing.T) {
	for _, sizes := range [][]int{
		{0}, {1}, {2}, {0, 1, 255, 256, 257, 600, 1000}, {256}, {513, 513 + 255},
	} {
		l := growLog(t, sizes...)
		for _, pinned := range []bool{true, false} {
			opts := Options{}
			if pinned {
				opts.Keys = []string{l.vkey}
			}
			r := verifyLog(t, l, opts)
			n := int64(sizes[len(sizes)-1])
			want := fmt.Sprintf("%d/%d entries valid, %d/%d checkpoints valid and consistent", n, n, len(sizes), len(sizes))
			if !r.Valid() || r.Summary() != want || r.KeysPinned != pinned || r.TreeSize != n || r.Origin != testOrigin {
				t.Fatalf("sizes %v: %s (pinned %v, size %d)%s\nwant %s", sizes, r.Summary(), r.KeysPinned, r.TreeSize, problemsOf(r), want)
			}
		}
	}
}

func TestLogChangedEntry(t *testing.T) {
	l := growLog(t, 100, 300, 700, 1000)
	l.entryOverride[450] = bytes.Replace(testEntry(450), []byte(`"pad":"0`), []byte(`"pad":"1`), 1)
	r := verifyLog(t, l, Options{Keys: []string{l.vkey}})
	if r.Valid() || !hasProblem(r, CheckEntry, 450, -1) {
		t.Fatalf("a changed entry 450 not named:%s", problemsOf(r))
	}
	if !hasProblem(r, CheckCheckpoint, -1, 700) || !hasProblem(r, CheckCheckpoint, -1, 1000) || hasProblem(r, CheckCheckpoint, -1, 300) {
		t.Fatalf("checkpoints after the change should fail, before it pass:%s", problemsOf(r))
	}
	if r.Summary() != "999/1000 entries valid, 2/4 checkpoints valid and consistent" {
		t.Fatalf("summary %q%s", r.Summary(), problemsOf(r))
	}
}

func TestLogMissingEntries(t *testing.T) {
	l := growLog(t, 100, 999, 1000)
	l.missingFrom = 999 // the last row deleted
	r := verifyLog(t, l, Options{Keys: []string{l.vkey}})
	if r.Valid() || !hasProblem(r, CheckEntry, 999, -1) || !hasProblem(r, CheckCheckpoint, -1, 1000) {
		t.Fatalf("missing entry 999 not named:%s", problemsOf(r))
	}
	if r.CheckpointsValid != 2 {
		t.Fatalf("summary %q%s", r.Summary(), problemsOf(r))
	}
}

func TestLogReordered(t *testing.T) {
	l := growLog(t, 5, 300)
	// Rows 10 and 20 swapped, stored hashes and all: the level-0 tile
	// serves the swapped leaf hashes too.
	l.entryOverride[10], l.entryOverride[20] = testEntry(20), testEntry(10)
	tile := tlog.Tile{H: 8, L: 0, N: 0, W: 256}
	data, _ := l.ReadTile(t.Context(), tile)
	data = bytes.Clone(data)
	h10, h20 := bytes.Clone(data[10*32:11*32]), bytes.Clone(data[20*32:21*32])
	copy(data[10*32:], h20)
	copy(data[20*32:], h10)
	l.tileOverride[tile] = data
	r := verifyLog(t, l, Options{Keys: []string{l.vkey}})
	if r.Valid() || !hasProblem(r, CheckEntry, 10, -1) || !hasProblem(r, CheckEntry, 20, -1) || !hasProblem(r, CheckCheckpoint, -1, 300) {
		t.Fatalf("reordered entries 10 and 20 not named:%s", problemsOf(r))
	}
}

func TestLogTileOnlyDamage(t *testing.T) {
	l := growLog(t, 70000)
	tile := tlog.Tile{H: 8, L: 1, N: 0, W: 256}
	data, _ := l.ReadTile(t.Context(), tile)
	data = bytes.Clone(data)
	data[5*32] ^= 1
	l.tileOverride[tile] = data
	r := verifyLog(t, l, Options{Keys: []string{l.vkey}})
	if r.EntriesValid != 70000 || r.CheckpointsValid != 1 || !hasProblem(r, CheckTile, -1, -1) || r.Valid() {
		t.Fatalf("a damaged level-1 tile: %s%s", r.Summary(), problemsOf(r))
	}
	if r2 := verifyLog(t, l, Options{Keys: []string{l.vkey}, SkipTiles: true}); !r2.Valid() {
		t.Fatalf("with SkipTiles:%s", problemsOf(r2))
	}
}

func TestLogCheckpointSignatures(t *testing.T) {
	l := growLog(t, 10, 20)
	other := newTestLog(t, testOrigin)           // same origin, another key
	stranger := newTestLog(t, "other.example/x") // another origin
	l.add(5)
	l.sign(other.signer) // size 25, signed only by an unknown key
	stranger.add(30)
	l.notes = append(l.notes, stranger.sign())
	bad := bytes.Clone(l.notes[1])
	bad[len(bad)-10] ^= 1
	l.notes = append(l.notes, bad)

	r := verifyLog(t, l, Options{Keys: []string{l.vkey}})
	if r.Checkpoints != 5 || r.CheckpointsValid != 2 || r.Entries != 20 || r.EntriesValid != 20 {
		t.Fatalf("summary %q%s", r.Summary(), problemsOf(r))
	}
	for _, size := range []int64{25, 30} {
		if !hasProblem(r, CheckCheckpoint, -1, size) {
			t.Errorf("checkpoint of size %d (unknown key / wrong origin) not reported:%s", size, problemsOf(r))
		}
	}
	if !hasProblem(r, CheckCheckpoint, -1, 20) {
		t.Errorf("checkpoint with a bad signature not reported:%s", problemsOf(r))
	}
}

func TestLogCosignedCheckpoints(t *testing.T) {
	l := growLog(t, 10)
	_, wkey, _ := ed25519.GenerateKey(rand.Reader)
	w, err := torchwood.NewCosignatureSigner("witness.example/w1", wkey)
	if err != nil {
		t.Fatal(err)
	}
	l.add(10)
	l.sign(l.signer, w) // the log's signature and a witness's
	r := verifyLog(t, l, Options{Keys: []string{l.vkey}})
	if !r.Valid() || r.CheckpointsValid != 2 || r.Latest.Others != 1 {
		t.Fatalf("cosigned checkpoint: %s%s", r.Summary(), problemsOf(r))
	}
}

func TestLogForkedCheckpoints(t *testing.T) {
	l := growLog(t, 10, 20)
	// Another tree of size 20 under the same key: the log signed a fork.
	fork := &testLog{t: t, origin: l.origin, signer: l.signer, vkey: l.vkey, missingFrom: -1}
	fork.add(19)
	fork.entries = append(fork.entries, []byte("other"))
	fork.hashes = fork.hashes[:tlog.StoredHashCount(19)]
	hs, _ := tlog.StoredHashes(19, []byte("other"), tlog.HashReaderFunc(fork.readHashes))
	fork.hashes = append(fork.hashes, hs...)
	l.notes = append(l.notes, fork.sign())
	r := verifyLog(t, l, Options{Keys: []string{l.vkey}})
	if r.Valid() || !hasProblem(r, CheckConsistency, -1, 20) {
		t.Fatalf("two signed trees of size 20 not reported as a fork:%s", problemsOf(r))
	}
}

func TestLogNoValidCheckpoint(t *testing.T) {
	l := growLog(t, 10)
	other := newTestLog(t, testOrigin)
	r := verifyLog(t, l, Options{Keys: []string{other.vkey}})
	if r.Valid() || r.CheckpointsValid != 0 {
		t.Fatalf("checkpoints accepted with another key:%s", problemsOf(r))
	}
	if _, err := Log(t.Context(), l, Options{Keys: []string{"not a key"}}); err == nil {
		t.Fatal("a malformed key is an error, not a verification result")
	}
}

func TestLogDir(t *testing.T) {
	l := growLog(t, 3, 700)
	dir := t.TempDir()
	l.writeDir(dir)
	d, err := OpenDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	r := verifyLog(t, d, Options{})
	if !r.Valid() || r.Summary() != "700/700 entries valid, 2/2 checkpoints valid and consistent" {
		t.Fatalf("%s%s", r.Summary(), problemsOf(r))
	}
	// The directory is a tlog-tiles log: torchwood's client reads and
	// authenticates every entry from it.
	tfs, err := torchwood.NewTileFS(osDirFS(dir))
	if err != nil {
		t.Fatal(err)
	}
	c, err := torchwood.NewClient(tfs)
	if err != nil {
		t.Fatal(err)
	}
	v, _ := NewVerifier([]string{l.vkey}, "")
	cp, err := v.Checkpoint(l.notes[1])
	if err != nil {
		t.Fatal(err)
	}
	n := int64(0)
	for i, e := range c.AllEntries(t.Context(), tlog.Tree{N: cp.Size, Hash: cp.Root}, 0) {
		if i != n || !bytes.Equal(e, testEntry(i)) {
			t.Fatalf("torchwood entry %d = %q", i, e)
		}
		n++
	}
	if c.Err() != nil || n != 700 {
		t.Fatalf("torchwood read %d entries: %v", n, c.Err())
	}
}

func TestVerifierKeys(t *testing.T) {
	a, b := newTestLog(t, testOrigin), newTestLog(t, "other.example/log")
	if _, err := NewVerifier(nil, ""); err == nil {
		t.Error("no keys accepted")
	}
	if _, err := NewVerifier([]string{a.vkey, b.vkey}, ""); err == nil {
		t.Error("keys of two origins accepted without an origin")
	}
	v, err := NewVerifier([]string{a.vkey, newTestLog(t, testOrigin).vkey}, "")
	if err != nil || v.Origin() != testOrigin {
		t.Fatalf("two keys of one origin (rotation): %v", err)
	}
	a.add(1)
	if _, err := v.Checkpoint(a.sign()); err != nil {
		t.Fatalf("checkpoint by the first of two keys: %v", err)
	}
	var _ note.Verifiers = v.Policy()
}
