package sqlite

import (
	"path/filepath"
	"testing"

	"github.com/cairn-audit/cairn"
	"github.com/cairn-audit/cairn/storetest"
)

// Appends read no stored hashes back from the database once a context's
// right edge is cached (frontiers), and the trees they build stay those an
// independent recomputation gives, across contexts written in one
// transaction, uneven batches and a reopen.
func TestAppendUsesCachedEdge(t *testing.T) {
	path := filepath.Join(t.TempDir(), "cairn.db")
	open := func() *Store {
		s, err := Open(t.Context(), Config{Path: path})
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	s := open()
	if _, err := s.CreateOrg(t.Context(), "acme"); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"app", "other"} {
		if _, err := s.CreateContext(t.Context(), &cairn.Context{Org: "acme", Name: name}); err != nil {
			t.Fatal(err)
		}
	}
	appendBoth := func(s *Store, n int) int64 {
		t.Helper()
		var reqs []*cairn.AppendRequest
		for _, name := range []string{"app", "other"} {
			req := &cairn.AppendRequest{Org: "acme", Context: name}
			for i := range n {
				req.Entries = append(req.Entries, storetest.NewEntry("acme", name, storetest.RealisticEvent(i)))
			}
			reqs = append(reqs, req)
		}
		before := s.hashReads.Load()
		res, err := s.Append(t.Context(), reqs)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range res {
			if r.Err != nil {
				t.Fatal(r.Err)
			}
		}
		return s.hashReads.Load() - before
	}
	for i, n := range []int{1, 2, 5, 1, 64, 183, 1, 3} {
		if reads := appendBoth(s, n); reads != 0 {
			t.Errorf("append %d (%d events per context) read %d stored hashes from the database, want 0", i, n, reads)
		}
	}
	s.Close()

	s = open()
	defer s.Close()
	if reads := appendBoth(s, 1); reads == 0 {
		t.Error("the first append after a reopen read no stored hashes: the edge cannot have come from the database")
	}
	if reads := appendBoth(s, 7); reads != 0 {
		t.Errorf("the second append after a reopen read %d stored hashes, want 0", reads)
	}

	for _, name := range []string{"app", "other"} {
		c, err := s.GetContext(t.Context(), "acme", name)
		if err != nil {
			t.Fatal(err)
		}
		leaves, err := s.ReadLeaves(t.Context(), "acme", name, 0, c.Size)
		if err != nil {
			t.Fatal(err)
		}
		root := storetest.IndependentRoot(t, leaves)
		if root != c.Root {
			t.Errorf("%s: stored root %x, independent root %x", name, c.Root, root)
		}
	}
}
