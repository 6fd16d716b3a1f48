package postgres_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/cairn-audit/cairn"
	"github.com/cairn-audit/cairn/postgres"
	"github.com/cairn-audit/cairn/storetest"
	"github.com/jackc/pgx/v5"
)

// testDSN returns the DSN of the test database: CAIRN_TEST_POSTGRES. The
// test is skipped without it, and fails when CAIRN_TEST_REQUIRE names
// postgres (CI sets both, so a missing database never passes quietly).
func testDSN(t testing.TB) string {
	t.Helper()
	dsn := os.Getenv("CAIRN_TEST_POSTGRES")
	if dsn == "" {
		if strings.Contains(os.Getenv("CAIRN_TEST_REQUIRE"), "postgres") {
			t.Fatal("CAIRN_TEST_REQUIRE names postgres but CAIRN_TEST_POSTGRES is not set")
		}
		t.Skip("CAIRN_TEST_POSTGRES is not set")
	}
	return dsn
}

// newSchema names a fresh schema for one test and drops it (with
// everything in it) when the test ends.
func newSchema(t testing.TB) (dsn, schema string) {
	t.Helper()
	dsn = testDSN(t)
	var b [6]byte
	rand.Read(b[:])
	schema = "cairn_test_" + hex.EncodeToString(b[:])
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		conn, err := pgx.Connect(ctx, dsn)
		if err != nil {
			t.Errorf("drop schema %s: %v", schema, err)
			return
		}
		defer conn.Close(ctx)
		if _, err := conn.Exec(ctx, `DROP SCHEMA IF EXISTS `+schema+` CASCADE`); err != nil {
			t.Errorf("drop schema %s: %v", schema, err)
		}
	})
	return dsn, schema
}

func factory(t *testing.T) storetest.Opener {
	dsn, schema := newSchema(t)
	return func() cairn.Store {
		s, err := postgres.Open(t.Context(), postgres.Config{DSN: dsn, Schema: schema, MaxConns: 4})
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
}

func TestConformance(t *testing.T) {
	t.Parallel()
	storetest.Run(t, factory)
}

func TestWitnessConformance(t *testing.T) {
	t.Parallel()
	storetest.RunWitness(t, factory)
}

func TestForwarderConformance(t *testing.T) {
	t.Parallel()
	storetest.RunForwarders(t, factory)
}

func TestRetracedConformance(t *testing.T) {
	t.Parallel()
	storetest.RunRetraced(t, factory)
}

func open(t *testing.T) *postgres.Store {
	t.Helper()
	s := factory(t)().(*postgres.Store)
	t.Cleanup(func() { s.Close() })
	return s
}

func TestAccessConformance(t *testing.T) {
	t.Parallel()
	storetest.RunAccess(t, factory)
}
