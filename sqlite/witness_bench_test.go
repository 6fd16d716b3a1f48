package sqlite_test

import (
	"path/filepath"
	"testing"

	"github.com/cairn-audit/cairn"
	"github.com/cairn-audit/cairn/sqlite"
)

// BenchmarkLatestCosignedCheckpoint measures the fail-closed /checkpoint
// read on a context with 100,000 checkpoints, each cosigned by two of
// three witnesses except the newest 1,000 (only one cosignature).
func BenchmarkLatestCosignedCheckpoint(b *testing.B) {
	s, err := sqlite.Open(b.Context(), sqlite.Config{Path: filepath.Join(b.TempDir(), "bench.db")})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	ctx := b.Context()
	if _, err := s.CreateOrg(ctx, "acme"); err != nil {
		b.Fatal(err)
	}
	tx, err := s.DB().BeginTx(ctx, nil)
	if err != nil {
		b.Fatal(err)
	}
	const n, tail = 100000, 1000
	for size := int64(1); size <= n; size++ {
		if _, err := tx.ExecContext(ctx, `INSERT INTO checkpoints (ctx_id, size, root, note, signed_at) VALUES (1, ?, X'00', X'00', 0)`, size); err != nil {
			b.Fatal(err)
		}
		ws := []string{"w1", "w2"}
		if size > n-tail {
			ws = ws[:1]
		}
		for _, w := range ws {
			if _, err := tx.ExecContext(ctx, `INSERT INTO cosignatures (ctx_id, size, witness, line, cosigned_at, added_at) VALUES (1, ?, ?, X'00', 0, 0)`, size, w); err != nil {
				b.Fatal(err)
			}
		}
	}
	if err := tx.Commit(); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for b.Loop() {
		cp, err := s.LatestCosignedCheckpoint(ctx, "acme", cairn.BuiltinContext, []string{"w1", "w2", "w3"}, 2)
		if err != nil || cp.Size != n-tail {
			b.Fatalf("got %v, %v", cp, err)
		}
	}
}
