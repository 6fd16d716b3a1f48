package postgres_test

import (
	"testing"

	"github.com/cairn-audit/cairn"
	"github.com/cairn-audit/cairn/postgres"
	"github.com/cairn-audit/cairn/storetest"
)

// BenchmarkAppend measures the engine alone (no HTTP, no decoding): one
// Append of 1000 realistic events per transaction into one context.
func BenchmarkAppend(b *testing.B) {
	storetest.BenchmarkAppend(b, func(b *testing.B) cairn.Store {
		dsn, schema := newSchema(b)
		s, err := postgres.Open(b.Context(), postgres.Config{DSN: dsn, Schema: schema})
		if err != nil {
			b.Fatal(err)
		}
		return s
	}, 1000)
}
