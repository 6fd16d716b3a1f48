package sqlite

import (
	"fmt"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cairn-audit/cairn"
)

// TestSearchPlansDoNotSort: every filter combination walks an index or the
// table in gid order; none sorts the matching rows (which at millions of
// events turns a 1 ms page into seconds).
func TestSearchPlansDoNotSort(t *testing.T) {
	s := openAcme(t)
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
		p, err := s.searchPlan(t.Context(), 1, "acme", f)
		if err != nil {
			t.Fatal(err)
		}
		queries := map[string]searchQuery{"walk": p.walk()}
		if !p.terms.empty() {
			queries = map[string]searchQuery{"tail": p.tail(1000), "index": p.candidates([]int64{900, 500, 7})}
		}
		for name, q := range queries {
			plan := explain(t, s, q)
			if strings.Contains(plan, "TEMP B-TREE") {
				t.Errorf("%+v %s sorts: %s", f, name, plan)
			}
			if name == "tail" && !strings.Contains(plan, "rowid>?") {
				t.Errorf("%+v: the tail does not seek past the watermark: %s", f, plan)
			}
			if name == "index" && !strings.Contains(plan, "INTEGER PRIMARY KEY (rowid=?)") {
				t.Errorf("%+v: the candidates are not looked up by gid: %s", f, plan)
			}
			t.Logf("%+v %s: %s", f, name, plan)
		}
	}
}

// The probe of a posting list seeks the pages' key index: one seek per
// segment and term.
func TestSearchProbeSeeks(t *testing.T) {
	s := openAcme(t)
	plan := explain(t, s, searchQuery{sql: searchProbe, args: []any{1, 2}})
	if !strings.Contains(plan, "USING PRIMARY KEY (seg=? AND (term,ngid)>(?,?))") || strings.Contains(plan, "TEMP B-TREE") {
		t.Errorf("the probe does not seek: %s", plan)
	}
	t.Log(plan)
}

// openAcme opens an empty store with org acme (id 1), closed with the test.
func openAcme(t *testing.T) *Store {
	t.Helper()
	s, err := Open(t.Context(), Config{Path: filepath.Join(t.TempDir(), "plan.db")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	if _, err := s.CreateOrg(t.Context(), "acme"); err != nil {
		t.Fatal(err)
	}
	return s
}

func explain(t *testing.T, s *Store, q searchQuery) string {
	t.Helper()
	rows, err := s.r.QueryContext(t.Context(), "EXPLAIN QUERY PLAN "+q.sql, append(q.args, 51)...)
	if err != nil {
		t.Fatalf("%v\n%s", err, q.sql)
	}
	defer rows.Close()
	var plan []string
	for rows.Next() {
		var id, parent, notused int
		var detail string
		if err := rows.Scan(&id, &parent, &notused, &detail); err != nil {
			t.Fatal(err)
		}
		plan = append(plan, detail)
	}
	return strings.Join(plan, "; ")
}

// A trail (target type and id) matches one index term, the pair's: ANDed
// with the type's own term, whose posting list holds a share of the whole
// log, the index walked that list to intersect them (trail p50 6.8 ms at
// 10 M events; 4.1 ms with the one term).
func TestTargetSearchIsOneTerm(t *testing.T) {
	s := openAcme(t)
	p, err := s.searchPlan(t.Context(), 1, "acme", cairn.Filter{TargetType: "doc", TargetID: "d1", Limit: 50})
	if err != nil {
		t.Fatal(err)
	}
	if want := [][]termRef{{{term: token(1, tokTarget, "doc\x00d1")}}}; !reflect.DeepEqual(p.terms.all, want) {
		t.Errorf("terms %v, want %v", p.terms.all, want)
	}
	for _, col := range []string{"e.target_type = ?", "e.target_id = ?"} {
		if !strings.Contains(p.walk().sql, col) {
			t.Errorf("the tail and walk lost %s: %s", col, p.walk().sql)
		}
	}
}

// A search that leaves the built-in context out ANDs the not-built-in term
// unless another term is selective: the built-in context's read records are
// the newest events and share kinds and outcomes with the rest, so without
// it kind=read&outcome=success read and rejected every read record first.
func TestSkipBuiltinTerm(t *testing.T) {
	s := openAcme(t)
	notBuiltin := []termRef{{term: token(1, tokNotBuiltin, "1")}}
	for _, c := range []struct {
		f    cairn.Filter
		want bool
	}{
		{cairn.Filter{SkipBuiltin: true}, true},
		{cairn.Filter{SkipBuiltin: true, Kind: "read", Outcome: "success"}, true},
		{cairn.Filter{SkipBuiltin: true, Action: "a.b", ActorType: "user"}, true},
		{cairn.Filter{SkipBuiltin: true, Kind: "read", ActorID: "u1"}, false},
		{cairn.Filter{SkipBuiltin: true, TargetType: "doc", TargetID: "d1"}, false},
		{cairn.Filter{SkipBuiltin: true, GroupID: "g1"}, false},
		{cairn.Filter{SkipBuiltin: true, Text: "zebra"}, false},
		{cairn.Filter{Kind: "read"}, false},
		{cairn.Filter{SkipBuiltin: true, Context: cairn.BuiltinContext, Kind: "read"}, false},
	} {
		c.f.Limit = 50
		p, err := s.searchPlan(t.Context(), 1, "acme", c.f)
		if err != nil {
			t.Fatal(err)
		}
		if p == nil {
			t.Fatalf("%+v: no plan", c.f)
		}
		if got := slices.ContainsFunc(p.terms.all, func(a []termRef) bool { return slices.Equal(a, notBuiltin) }); got != c.want {
			t.Errorf("%+v: terms %v; has the not-built-in term: %v, want %v", c.f, p.terms.all, got, c.want)
		}
	}
}

// Searches of one shape share a prepared statement; the cache is bounded.
func TestSearchStatementsCached(t *testing.T) {
	s := openAcme(t)
	ctx := t.Context()
	for _, f := range []cairn.Filter{{ActorID: "u1"}, {ActorID: "u2"}, {ActorID: "u3", Before: 10}, {Kind: "read"}} {
		f.Limit = 10
		if _, err := s.SearchEvents(ctx, "acme", f); err != nil {
			t.Fatal(err)
		}
	}
	// actor (index and tail), actor with a cursor (the same SQL: the
	// cursor is a parameter of the index query and adds a condition to the
	// tail), kind.
	s.mu.RLock()
	n := len(s.stmts)
	s.mu.RUnlock()
	if n == 0 || n > 5 {
		t.Fatalf("%d statements cached for three search shapes", n)
	}
	for i := range maxSearchStmts + 10 {
		s.searchStmt(fmt.Sprintf("SELECT %d", i))
	}
	s.prepareStmts(ctx)
	s.mu.RLock()
	n = len(s.stmts)
	s.mu.RUnlock()
	if n != maxSearchStmts {
		t.Fatalf("%d statements cached, bound %d", n, maxSearchStmts)
	}
}
