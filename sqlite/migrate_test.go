package sqlite

import (
	"database/sql"
	"encoding/json"
	"path/filepath"
	"testing"
	"time"

	"github.com/cairn-audit/cairn"
	"github.com/google/uuid"
)

// TestMigrationIndexesOldEvents: a database written before migration 2 has
// its events in the new search index after an upgrade.
func TestMigrationIndexesOldEvents(t *testing.T) {
	path := filepath.Join(t.TempDir(), "old.db")
	db, err := sql.Open("sqlite", "file:"+path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(migrations[0].sql + "PRAGMA user_version = 1;"); err != nil {
		t.Fatal(err)
	}
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	mustExec := func(q string, args ...any) {
		t.Helper()
		if _, err := db.Exec(q, args...); err != nil {
			t.Fatal(err)
		}
	}
	mustExec(`INSERT INTO orgs (id, name, created_at) VALUES (1, 'acme', 0)`)
	mustExec(`INSERT INTO contexts (id, org_id, name, created_at, updated_at, root) VALUES (1, 1, 'app', 0, 0, x'00')`)
	var ids []string
	for i := range 3 {
		id := uuid.Must(uuid.NewV7())
		e := cairn.Event{ID: id.String(), Org: "acme", Context: "app", Seq: int64(i), EventTime: now, ReceivedTime: now,
			Action: "doc.update", Kind: "update", Outcome: "success",
			Actor:       &cairn.Actor{Type: "user", ID: []string{"ann", "bob", "ann"}[i]},
			Description: []string{"renamed the file", "moved the file", "deleted the file"}[i]}
		leaf, _ := json.Marshal(e)
		mustExec(`INSERT INTO events (org_id, ctx_id, seq, id, event_time, action, kind, outcome, actor_type, actor_id, leaf, hashes)
			VALUES (1, 1, ?, ?, ?, 'doc.update', 'update', 'success', 'user', ?, ?, x'00')`, i, id[:], now.UnixMicro(), e.Actor.ID, leaf)
		ids = append(ids, e.ID)
	}
	db.Close()

	s, err := Open(t.Context(), Config{Path: path})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for _, tc := range []struct {
		f    cairn.Filter
		want []string
	}{
		{cairn.Filter{ActorID: "ann"}, []string{ids[2], ids[0]}},
		{cairn.Filter{Text: "moved"}, []string{ids[1]}},
		{cairn.Filter{ActionPrefix: "doc.", Since: now.Add(-time.Hour), Until: now.Add(time.Hour)}, []string{ids[2], ids[1], ids[0]}},
	} {
		tc.f.Limit = 10
		p, err := s.SearchEvents(t.Context(), "acme", tc.f)
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, e := range p.Items {
			got = append(got, e.ID)
		}
		if len(got) != len(tc.want) || (len(got) > 0 && got[0] != tc.want[0]) || (len(got) > 1 && got[len(got)-1] != tc.want[len(tc.want)-1]) {
			t.Errorf("%+v after migration: got %v, want %v", tc.f, got, tc.want)
		}
	}
}
