package main

import (
	"bytes"
	"database/sql"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cairn-audit/cairn/httpapi"
	_ "modernc.org/sqlite"
)

// These tests do what an attacker with write access to the database file
// would do to a stopped server: drop the append-only triggers with a raw
// SQLite connection and change, delete or reorder rows, or put back an
// older copy of the file. cairn fsck and cairn verify must name the
// damaged entries; a verifier holding state must see a rollback or fork.

// seedLog runs a server over dir, writes 6 batches of 100 events (one
// checkpoint each) into context app, and stops it gracefully.
func seedLog(t *testing.T, dir string) string {
	t.Helper()
	p := startServer(t, dir)
	if _, err := p.client.CreateContext(t.Context(), "default", "app", "", nil); err != nil {
		t.Fatal(err)
	}
	writeBatches(t, p, "app", "doc.update", 6, 100)
	vkey, err := p.client.VerifierKey(t.Context(), "default", "app")
	if err != nil {
		t.Fatal(err)
	}
	p.stop()
	return vkey
}

// copyDir copies a stopped server's data directory.
func copyDir(t *testing.T, from string) string {
	t.Helper()
	to := t.TempDir()
	ents, err := os.ReadDir(from)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		data, err := os.ReadFile(filepath.Join(from, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(to, e.Name()), data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return to
}

// tamper runs SQL on the stopped server's database after dropping the
// triggers that forbid UPDATE and DELETE on events.
func tamper(t *testing.T, dir string, stmts ...string) {
	t.Helper()
	db, err := sql.Open("sqlite", "file:"+filepath.Join(dir, "cairn.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	for _, s := range append([]string{
		"DROP TRIGGER events_no_update", "DROP TRIGGER events_no_delete",
	}, stmts...) {
		if _, err := db.Exec(s); err != nil {
			t.Fatalf("%s: %v", s, err)
		}
	}
	if _, err := db.Exec("PRAGMA wal_checkpoint(TRUNCATE)"); err != nil {
		t.Fatal(err)
	}
}

const appCtx = `(SELECT id FROM contexts WHERE name = 'app')`

// expectNamed runs fsck on dir and verify over HTTP (server on a copy of
// dir) and checks that both fail and name every given entry index.
func expectNamed(t *testing.T, dir, vkey string, indexes ...string) {
	t.Helper()
	stdout, stderr, code := cairnCmd(t, nil, "fsck", "--data-dir", dir)
	if code != 1 {
		t.Fatalf("fsck: exit %d, want 1\n%s%s", code, stdout, stderr)
	}
	for _, i := range indexes {
		if !strings.Contains(stdout, "default/app: entry "+i+":") {
			t.Errorf("fsck does not name entry %s:\n%s", i, stdout)
		}
	}
	t.Logf("fsck:\n%s", stdout)

	p := startServer(t, copyDir(t, dir))
	stdout, stderr, code = cairnCmd(t, []string{"CAIRN_TOKEN=" + testToken}, "verify", "log", "--key", vkey, p.client.LogURL("default", "app"))
	if code != 1 {
		t.Fatalf("verify log URL: exit %d, want 1\n%s%s", code, stdout, stderr)
	}
	for _, i := range indexes {
		if !strings.Contains(stdout, "entry "+i+":") {
			t.Errorf("verify does not name entry %s:\n%s", i, stdout)
		}
	}
	t.Logf("verify:\n%s", stdout)
}

func TestTamper(t *testing.T) {
	base := t.TempDir()
	vkey := seedLog(t, base)
	if stdout, stderr, code := cairnCmd(t, nil, "fsck", "--data-dir", base); code != 0 ||
		!strings.Contains(stdout, "default/app: 600/600 entries valid, 6/6 checkpoints valid and consistent") {
		t.Fatalf("fsck of an intact database: %d\n%s%s", code, stdout, stderr)
	}

	t.Run("one byte of an event changed", func(t *testing.T) {
		dir := copyDir(t, base)
		db, _ := sql.Open("sqlite", "file:"+filepath.Join(dir, "cairn.db"))
		var leaf []byte
		if err := db.QueryRow(`SELECT leaf FROM events WHERE ctx_id = ` + appCtx + ` AND seq = 123`).Scan(&leaf); err != nil {
			t.Fatal(err)
		}
		db.Close()
		i := bytes.Index(leaf, []byte("event number"))
		leaf[i] = 'E' // one byte
		tamper(t, dir, `UPDATE events SET leaf = x'`+hexOf(leaf)+`' WHERE ctx_id = `+appCtx+` AND seq = 123`)
		expectNamed(t, dir, vkey, "123")

		// The export of the damaged log names it too, offline.
		p := startServer(t, copyDir(t, dir))
		out := filepath.Join(t.TempDir(), "export")
		if _, stderr, code := cairnCmd(t, p.env(), "export", "--context", "app", "--out", out); code != 0 {
			t.Fatalf("export: %d %s", code, stderr)
		}
		stdout, _, code := cairnCmd(t, nil, "verify", "log", "--key", vkey, out)
		if code != 1 || !strings.Contains(stdout, "entry 123: changed") || !strings.Contains(stdout, "599/600 entries valid") {
			t.Fatalf("verify log of the export: %d\n%s", code, stdout)
		}
	})

	t.Run("last row deleted", func(t *testing.T) {
		dir := copyDir(t, base)
		tamper(t, dir, `DELETE FROM events WHERE ctx_id = `+appCtx+` AND seq = 599`)
		expectNamed(t, dir, vkey, "599")
	})

	t.Run("two rows reordered", func(t *testing.T) {
		dir := copyDir(t, base)
		tamper(t, dir,
			`UPDATE events SET seq = -1 WHERE ctx_id = `+appCtx+` AND seq = 10`,
			`UPDATE events SET seq = 10 WHERE ctx_id = `+appCtx+` AND seq = 20`,
			`UPDATE events SET seq = 20 WHERE ctx_id = `+appCtx+` AND seq = -1`)
		expectNamed(t, dir, vkey, "10", "20")
	})
}

// TestRollbackDetected: a verifier that remembers the last checkpoint it
// verified (--state) catches a database put back to an older copy, both
// as is (a rollback: the log shrank) and after new appends (a fork: the
// log grew again, but along another history).
func TestRollbackDetected(t *testing.T) {
	dir := t.TempDir()
	p := startServer(t, dir)
	ctx := ctxTimeout(t, 2*time.Minute)
	if _, err := p.client.CreateContext(ctx, "default", "app", "", nil); err != nil {
		t.Fatal(err)
	}
	writeBatches(t, p, "app", "doc.old", 2, 100)
	vkey, _ := p.client.VerifierKey(ctx, "default", "app")
	p.stop()
	backup := copyDir(t, dir) // 200 events

	p = startServer(t, dir)
	writeBatches(t, p, "app", "doc.new", 2, 100) // 400 events
	state := filepath.Join(t.TempDir(), "state")
	env := []string{"CAIRN_TOKEN=" + testToken}
	logURL := p.client.LogURL("default", "app")
	if stdout, stderr, code := cairnCmd(t, env, "verify", "log", "--key", vkey, "--state", state, logURL); code != 0 {
		t.Fatalf("first verification: %d\n%s%s", code, stdout, stderr)
	}
	p.stop()

	// The old copy as is: the log is smaller than what was verified.
	p = startServer(t, copyDir(t, backup))
	stdout, _, code := cairnCmd(t, env, "verify", "log", "--key", vkey, "--state", state, p.client.LogURL("default", "app"))
	if code != 1 || !strings.Contains(stdout, "ROLLBACK") {
		t.Fatalf("rolled-back log: exit %d\n%s", code, stdout)
	}
	p.kill()

	// The old copy, appended to past the size verified before: a fork.
	p = startServer(t, copyDir(t, backup))
	writeBatches(t, p, "app", "doc.forged", 3, 100) // 500 events, other history from 200 on
	stdout, _, code = cairnCmd(t, env, "verify", "log", "--key", vkey, "--state", state, p.client.LogURL("default", "app"))
	if code != 1 || !strings.Contains(stdout, "FORK") {
		t.Fatalf("forked log: exit %d\n%s", code, stdout)
	}
	// Without the state the forked log is self-consistent: only the state
	// (or any checkpoint kept from before) can tell.
	if _, _, code := cairnCmd(t, env, "verify", "log", "--key", vkey, p.client.LogURL("default", "app")); code != 0 {
		t.Fatalf("forked log without state: exit %d, want 0", code)
	}
	// Nor does fsck: the database is consistent in itself.
	p.stop()
	_ = httpapi.ExportContentType
}

func hexOf(b []byte) string {
	const digits = "0123456789abcdef"
	out := make([]byte, 0, 2*len(b))
	for _, c := range b {
		out = append(out, digits[c>>4], digits[c&15])
	}
	return string(out)
}
