package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cairn-audit/cairn/merkle"
	"github.com/jackc/pgx/v5"
)

// serveEngine starts `cairn serve` on one storage engine. The end-to-end tests
// that hold for every engine run once per engine (forEachEngine): the
// embedded SQLite engine always, PostgreSQL when CAIRN_TEST_POSTGRES names
// a database (and CAIRN_TEST_REQUIRE containing postgres makes its absence
// a failure).
type serveEngine struct {
	name string
	dsn  string // PostgreSQL URL; empty for the embedded engine

	mu      sync.Mutex
	schemas map[string]string // data dir → schema: a restart finds its data
}

func engines(t *testing.T) []*serveEngine {
	out := []*serveEngine{{name: "sqlite"}}
	if e := postgresEngine(t); e != nil {
		out = append(out, e)
	}
	return out
}

// postgresEngine returns the PostgreSQL engine, nil when the tests run
// without one.
func postgresEngine(t *testing.T) *serveEngine {
	t.Helper()
	dsn := os.Getenv("CAIRN_TEST_POSTGRES")
	if dsn == "" {
		if strings.Contains(os.Getenv("CAIRN_TEST_REQUIRE"), "postgres") {
			t.Fatal("CAIRN_TEST_REQUIRE names postgres but CAIRN_TEST_POSTGRES is not set")
		}
		return nil
	}
	return &serveEngine{name: "postgres", dsn: dsn, schemas: map[string]string{}}
}

// forEachEngine runs f as a subtest per engine.
func forEachEngine(t *testing.T, f func(t *testing.T, e *serveEngine)) {
	for _, e := range engines(t) {
		t.Run(e.name, func(t *testing.T) { f(t, e) })
	}
}

// start runs `cairn serve` on the engine. With PostgreSQL, dataDir names a
// schema of its own (created on first use, dropped when the test ends) and
// holds the signing key every node of that schema shares.
func (e *serveEngine) start(t *testing.T, dataDir string, extraArgs ...string) *proc {
	t.Helper()
	if e.dsn == "" {
		return startServer(t, dataDir, extraArgs...)
	}
	args := []string{"--store", e.dsn, "--store-schema", e.schema(t, dataDir)}
	if !slices.Contains(extraArgs, "--signing-key-file") {
		args = append(args, "--signing-key-file", sharedKey(t, dataDir))
	}
	return startServer(t, dataDir, append(args, extraArgs...)...)
}

func (e *serveEngine) schema(t *testing.T, dataDir string) string {
	e.mu.Lock()
	defer e.mu.Unlock()
	if s, ok := e.schemas[dataDir]; ok {
		return s
	}
	var b [6]byte
	rand.Read(b[:])
	s := "cairn_e2e_" + hex.EncodeToString(b[:])
	e.schemas[dataDir] = s
	dsn := e.dsn
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		conn, err := pgx.Connect(ctx, dsn)
		if err != nil {
			t.Errorf("drop schema %s: %v", s, err)
			return
		}
		defer conn.Close(ctx)
		if _, err := conn.Exec(ctx, `DROP SCHEMA IF EXISTS `+s+` CASCADE`); err != nil {
			t.Errorf("drop schema %s: %v", s, err)
		}
	})
	return s
}

// sharedKey returns dataDir/signing.key, creating it on first use.
func sharedKey(t *testing.T, dataDir string) string {
	t.Helper()
	path := filepath.Join(dataDir, "signing.key")
	if _, err := os.Stat(path); err == nil {
		return path
	}
	k, err := merkle.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	if err := merkle.WriteKeyFile(path, k); err != nil {
		t.Fatal(err)
	}
	return path
}
