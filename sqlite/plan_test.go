package sqlite

import (
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cairn-audit/cairn"
)

// TestSearchPlansDoNotSort: every filter combination walks an index or the
// table in gid order; none sorts the matching rows (which at millions of
// events turns a 1 ms page into seconds).
func TestSearchPlansDoNotSort(t *testing.T) {
	s, err := Open(t.Context(), Config{Path: filepath.Join(t.TempDir(), "plan.db")})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if _, err := s.CreateOrg(t.Context(), "acme"); err != nil {
		t.Fatal(err)
	}
	since := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for _, f := range []cairn.Filter{
		{},
		{Before: 100},
		{Context: cairn.BuiltinContext},
		{Action: "a.b"},
		{ActionPrefix: "a."},
		{Kind: "update", Outcome: "failure"},
		{ActorID: "u1", Action: "a.b"},
		{ActorEmail: "x@example.com"},
		{ActorType: "user"},
		{TargetType: "doc", TargetID: "d1", Before: 100},
		{TargetType: "doc"},
		{GroupID: "g1", Kind: "read"},
		{Since: since, Until: since.Add(time.Hour)},
		{Text: "zebra"},
		{Text: "zebra", ActorID: "u1", Before: 100},
	} {
		f.Limit = 50
		q, args, err := s.searchQuery(t.Context(), 1, "acme", f)
		if err != nil {
			t.Fatal(err)
		}
		rows, err := s.r.QueryContext(t.Context(), "EXPLAIN QUERY PLAN "+q, args...)
		if err != nil {
			t.Fatalf("%+v: %v\n%s", f, err, q)
		}
		var plan []string
		for rows.Next() {
			var id, parent, notused int
			var detail string
			if err := rows.Scan(&id, &parent, &notused, &detail); err != nil {
				t.Fatal(err)
			}
			plan = append(plan, detail)
		}
		rows.Close()
		if p := strings.Join(plan, "; "); strings.Contains(p, "TEMP B-TREE") {
			t.Errorf("%+v sorts: %s", f, p)
		} else {
			t.Logf("%+v: %s", f, p)
		}
	}
}
