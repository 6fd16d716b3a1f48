package sqlite_test

import (
	"path/filepath"
	"testing"

	"github.com/cairn-audit/cairn"
	"github.com/cairn-audit/cairn/sqlite"
	"github.com/cairn-audit/cairn/storetest"
)

func TestConformance(t *testing.T) {
	storetest.Run(t, factory)
}

func TestWitnessConformance(t *testing.T) {
	storetest.RunWitness(t, factory)
}

// The triggers keep checkpoints append-only: a note may only gain lines.
func TestCheckpointNoteOnlyGrows(t *testing.T) {
	s, err := sqlite.Open(t.Context(), sqlite.Config{Path: filepath.Join(t.TempDir(), "cairn.db")})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ctx := t.Context()
	if _, err := s.CreateOrg(ctx, "acme"); err != nil {
		t.Fatal(err)
	}
	if err := s.AddCheckpoint(ctx, "acme", "cairn", &cairn.Checkpoint{Size: 0, Note: []byte("a\n\n— a b\n")}); err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{
		`UPDATE checkpoints SET note = X'00'`,
		`UPDATE checkpoints SET size = 5`,
		`UPDATE checkpoints SET note = note || X'00', root = X'01'`,
		`DELETE FROM checkpoints`,
	} {
		if _, err := s.DB().ExecContext(ctx, q); err == nil {
			t.Errorf("%s: allowed", q)
		}
	}
	if _, err := s.DB().ExecContext(ctx, `UPDATE checkpoints SET note = note || CAST('— w c\n' AS BLOB)`); err != nil {
		t.Errorf("appending a line: %v", err)
	}
}

func TestForwarderConformance(t *testing.T) {
	storetest.RunForwarders(t, factory)
}

func TestAccessConformance(t *testing.T) {
	storetest.RunAccess(t, factory)
}

func TestRetracedConformance(t *testing.T) {
	storetest.RunRetraced(t, factory)
}

// factory opens a fresh database file per subtest.
func factory(t *testing.T) storetest.Opener {
	path := filepath.Join(t.TempDir(), "cairn.db")
	return func() cairn.Store {
		s, err := sqlite.Open(t.Context(), sqlite.Config{Path: path})
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
}

// A new database gets 8 KiB pages (sqlite.go).
func TestPageSize(t *testing.T) {
	s, err := sqlite.Open(t.Context(), sqlite.Config{Path: filepath.Join(t.TempDir(), "cairn.db")})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	var size int
	if err := s.DB().QueryRowContext(t.Context(), "PRAGMA page_size").Scan(&size); err != nil {
		t.Fatal(err)
	}
	if size != 8192 {
		t.Errorf("page size %d, want 8192", size)
	}
}
