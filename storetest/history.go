package storetest

import (
	"bytes"
	"fmt"
	"testing"
	"time"

	"github.com/cairn-audit/cairn"
)

// testCheckpointHistory: Checkpoints returns every recorded checkpoint in a
// size range, smallest first, notes byte for byte (extra signature lines
// included), paged by limit; bad ranges are EInvalid, unknown contexts
// ENotFound, and another context's checkpoints never show.
func testCheckpointHistory(t *testing.T, f Factory) {
	s, _ := open(t, f)
	setup(t, s)
	ctx := t.Context()
	if _, err := s.CreateContext(ctx, &cairn.Context{Org: "acme", Name: "other"}); err != nil {
		t.Fatal(err)
	}

	got, err := s.Checkpoints(ctx, "acme", "app", 0, 1<<62, 10)
	if err != nil || len(got) != 0 {
		t.Fatalf("Checkpoints before any = %v, %v; want none", got, err)
	}

	now := time.Now().UTC().Truncate(time.Microsecond)
	var want []*cairn.Checkpoint
	for i, n := range []int{0, 1, 2, 5, 3, 20} { // sizes 0, 1, 3, 8, 11, 31
		if n > 0 {
			appendN(t, s, "acme", "app", n, nil)
		}
		c, err := s.GetContext(ctx, "acme", "app")
		if err != nil {
			t.Fatal(err)
		}
		// A note with an extra (witness-style) signature line: stored and
		// returned verbatim.
		note := fmt.Appendf(nil, "origin\n%d\nroot\n\n— origin AAAA\n— witness.example/w%d BBBB\n", c.Size, i)
		cp := &cairn.Checkpoint{Size: c.Size, Root: c.Root, Note: note, SignedAt: now.Add(time.Duration(i) * time.Second)}
		if err := s.AddCheckpoint(ctx, "acme", "app", cp); err != nil {
			t.Fatalf("AddCheckpoint(%d): %v", c.Size, err)
		}
		want = append(want, cp)
	}
	// A checkpoint of the other context must never appear.
	appendN(t, s, "acme", "other", 4, nil)
	oc, _ := s.GetContext(ctx, "acme", "other")
	if err := s.AddCheckpoint(ctx, "acme", "other", &cairn.Checkpoint{Size: 4, Root: oc.Root, Note: []byte("other\n"), SignedAt: now}); err != nil {
		t.Fatal(err)
	}

	check := func(name string, from, to int64, limit int, want []*cairn.Checkpoint) {
		t.Helper()
		got, err := s.Checkpoints(ctx, "acme", "app", from, to, limit)
		if err != nil {
			t.Fatalf("%s: Checkpoints(%d, %d, %d): %v", name, from, to, limit, err)
		}
		if len(got) != len(want) {
			t.Fatalf("%s: got %d checkpoints, want %d", name, len(got), len(want))
		}
		for i := range got {
			g, w := got[i], want[i]
			if g.Size != w.Size || g.Root != w.Root || !bytes.Equal(g.Note, w.Note) || !g.SignedAt.Equal(w.SignedAt) {
				t.Fatalf("%s: item %d = {%d %x %q %v}, want {%d %x %q %v}", name, i,
					g.Size, g.Root, g.Note, g.SignedAt, w.Size, w.Root, w.Note, w.SignedAt)
			}
		}
	}
	check("all", 0, 1<<62, 100, want)
	check("inclusive bounds", 3, 11, 100, want[2:5])
	check("single size", 8, 8, 100, want[3:4])
	check("between sizes", 4, 7, 100, nil)
	check("limit", 0, 1<<62, 2, want[:2])
	check("next page", want[1].Size+1, 1<<62, 2, want[2:4])
	check("past the end", 32, 1<<62, 10, nil)

	for _, bad := range []struct {
		from, to int64
		limit    int
	}{{-1, 5, 1}, {5, 4, 1}, {0, 5, 0}, {0, 5, -1}} {
		_, err := s.Checkpoints(ctx, "acme", "app", bad.from, bad.to, bad.limit)
		wantCode(t, fmt.Sprintf("Checkpoints(%d, %d, %d)", bad.from, bad.to, bad.limit), err, cairn.EInvalid)
	}
	_, err = s.Checkpoints(ctx, "acme", "nope", 0, 10, 10)
	wantCode(t, "unknown context", err, cairn.ENotFound)
	_, err = s.Checkpoints(ctx, "nope", "app", 0, 10, 10)
	wantCode(t, "unknown org", err, cairn.ENotFound)
}

// testLeafIndex: LeafIndex finds a leaf by its RFC 6962 leaf hash (computed
// independently of the store), only among the first size leaves and only in
// its own context.
func testLeafIndex(t *testing.T, f Factory) {
	s, _ := open(t, f)
	setup(t, s)
	ctx := t.Context()
	if _, err := s.CreateContext(ctx, &cairn.Context{Org: "acme", Name: "other"}); err != nil {
		t.Fatal(err)
	}
	appendN(t, s, "acme", "app", 300, nil)
	appendN(t, s, "acme", "other", 3, nil)
	leaves, err := s.ReadLeaves(ctx, "acme", "app", 0, 300)
	if err != nil {
		t.Fatal(err)
	}
	for _, i := range []int64{0, 1, 255, 256, 299} {
		got, err := s.LeafIndex(ctx, "acme", "app", recordHash(leaves[i]), 300)
		if err != nil || got != i {
			t.Fatalf("LeafIndex(leaf %d) = %d, %v", i, got, err)
		}
	}
	_, err = s.LeafIndex(ctx, "acme", "app", recordHash(leaves[299]), 299)
	wantCode(t, "leaf beyond size", err, cairn.ENotFound)
	_, err = s.LeafIndex(ctx, "acme", "app", recordHash([]byte("never appended")), 300)
	wantCode(t, "unknown leaf", err, cairn.ENotFound)
	other, _ := s.ReadLeaves(ctx, "acme", "other", 0, 1)
	_, err = s.LeafIndex(ctx, "acme", "app", recordHash(other[0]), 300)
	wantCode(t, "leaf of another context", err, cairn.ENotFound)
	_, err = s.LeafIndex(ctx, "acme", "app", recordHash(leaves[0]), -1)
	wantCode(t, "negative size", err, cairn.EInvalid)
	_, err = s.LeafIndex(ctx, "acme", "nope", recordHash(leaves[0]), 1)
	wantCode(t, "unknown context", err, cairn.ENotFound)
}
