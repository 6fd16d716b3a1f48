package storetest

import (
	"slices"
	"testing"

	"github.com/cairn-audit/cairn"
)

// testSearchScopes: group path prefixes, the access-control scopes a
// server adds to a search, and leaving out the built-in context.
func testSearchScopes(t *testing.T, f Factory) {
	s, _ := open(t, f)
	setup(t, s)
	if _, err := s.CreateContext(t.Context(), &cairn.Context{Org: "acme", Name: "ops"}); err != nil {
		t.Fatal(err)
	}
	type ev struct{ ctx, group string }
	evs := []ev{
		{"app", "acme/finance"}, {"app", "acme/finance/emea"}, {"app", "acme/financex"}, {"app", "acme/hr"},
		{"app", ""}, {"ops", "acme/finance/us"}, {"ops", "acme/hr/payroll"}, {"ops", "g1"},
		{cairn.BuiltinContext, "acme/finance"}, {cairn.BuiltinContext, ""},
	}
	var ids []string
	for _, e := range evs {
		var g *cairn.Group
		if e.group != "" {
			g = &cairn.Group{ID: e.group}
		}
		c := appendN(t, s, "acme", e.ctx, 1, func(int) cairn.Event { return cairn.Event{Action: "x.y", Group: g} })
		ids = append(ids, c[0].ID)
	}
	want := func(keep func(e ev) bool) []string {
		var out []string
		for i := len(evs) - 1; i >= 0; i-- {
			if keep(evs[i]) {
				out = append(out, ids[i])
			}
		}
		return out
	}
	under := func(p string) func(e ev) bool { return func(e ev) bool { return cairn.GroupUnder(e.group, p) } }
	cases := []struct {
		name string
		f    cairn.Filter
		keep func(e ev) bool
	}{
		{"group prefix", cairn.Filter{GroupPrefix: "acme/finance"}, under("acme/finance")},
		{"group prefix with slash", cairn.Filter{GroupPrefix: "acme/finance/"}, under("acme/finance")},
		{"group prefix top", cairn.Filter{GroupPrefix: "acme"}, under("acme")},
		{"group prefix exact leaf", cairn.Filter{GroupPrefix: "acme/hr/payroll"}, under("acme/hr/payroll")},
		{"group prefix inside a segment", cairn.Filter{GroupPrefix: "acme/fin"}, func(ev) bool { return false }},
		{"group prefix and context", cairn.Filter{GroupPrefix: "acme/finance", Context: "ops"},
			func(e ev) bool { return e.ctx == "ops" && cairn.GroupUnder(e.group, "acme/finance") }},
		{"skip builtin", cairn.Filter{SkipBuiltin: true}, func(e ev) bool { return e.ctx != cairn.BuiltinContext }},
		{"skip builtin unless named", cairn.Filter{SkipBuiltin: true, Context: cairn.BuiltinContext},
			func(e ev) bool { return e.ctx == cairn.BuiltinContext }},
		{"no scope admits nothing", cairn.Filter{Scopes: []cairn.ReadScope{}}, func(ev) bool { return false }},
		{"scope of one context", cairn.Filter{Scopes: []cairn.ReadScope{{Contexts: []string{"ops"}}}},
			func(e ev) bool { return e.ctx == "ops" }},
		{"scope of an unknown context", cairn.Filter{Scopes: []cairn.ReadScope{{Contexts: []string{"ghost"}}}},
			func(ev) bool { return false }},
		{"scope of groups", cairn.Filter{Scopes: []cairn.ReadScope{{GroupPrefixes: []string{"acme/hr"}, Groups: []string{"g1"}}}},
			func(e ev) bool { return e.group == "g1" || cairn.GroupUnder(e.group, "acme/hr") }},
		{"scope of a context's groups", cairn.Filter{Scopes: []cairn.ReadScope{{Contexts: []string{"app"}, GroupPrefixes: []string{"acme/finance"}}}},
			func(e ev) bool { return e.ctx == "app" && cairn.GroupUnder(e.group, "acme/finance") }},
		{"union of scopes", cairn.Filter{Scopes: []cairn.ReadScope{
			{Contexts: []string{"ops"}},
			{Contexts: []string{"app"}, Groups: []string{"acme/hr"}},
		}}, func(e ev) bool { return e.ctx == "ops" || (e.ctx == "app" && e.group == "acme/hr") }},
		{"scope and filter", cairn.Filter{GroupPrefix: "acme", Scopes: []cairn.ReadScope{{Contexts: []string{"ops"}}}},
			func(e ev) bool { return e.ctx == "ops" && cairn.GroupUnder(e.group, "acme") }},
		{"scope and skip builtin", cairn.Filter{SkipBuiltin: true, Scopes: []cairn.ReadScope{{GroupPrefixes: []string{"acme/finance"}}}},
			func(e ev) bool { return e.ctx != cairn.BuiltinContext && cairn.GroupUnder(e.group, "acme/finance") }},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			for _, limit := range []int{100, 2} {
				f := tc.f
				f.Limit = limit
				got := collect(t, s, "acme", f)
				if w := want(tc.keep); !slices.Equal(got, w) {
					t.Fatalf("limit %d: got %v\nwant %v", limit, got, w)
				}
			}
		})
	}
}
