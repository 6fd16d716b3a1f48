package sqlite_test

import (
	"fmt"
	"path/filepath"
	"testing"

	"github.com/cairn-audit/cairn"
	"github.com/cairn-audit/cairn/sqlite"
	"github.com/cairn-audit/cairn/storetest"
)

func BenchmarkAppend(b *testing.B) {
	for _, batch := range []int{1, 100, 1000, 5000, 20000} {
		b.Run(fmt.Sprintf("batch=%d", batch), func(b *testing.B) {
			storetest.BenchmarkAppend(b, func(b *testing.B) cairn.Store {
				s, err := sqlite.Open(b.Context(), sqlite.Config{Path: filepath.Join(b.TempDir(), "bench.db")})
				if err != nil {
					b.Fatal(err)
				}
				return s
			}, batch)
		})
	}
}
