package httpapi

import (
	"flag"
	"fmt"
	"net/http"
	"os"
	"regexp"
	"strings"
	"testing"

	"github.com/cairn-audit/cairn"
	"github.com/google/uuid"
)

var update = flag.Bool("update", false, "rewrite golden files")

// impliedBy is the permission table of the issue, written out by hand so
// the matrix does not trust the code under test: a grant of the key gives
// every permission listed.
var impliedBy = map[string][]string{
	"create":     {"create"},
	"edit":       {"edit", "view"},
	"manage":     {"create", "edit", "manage", "readAudit", "view", "writeAudit"},
	"readAudit":  {"readAudit", "view"},
	"view":       {"view"},
	"writeAudit": {"writeAudit", "view"},
}

// grantCase is one column of the matrix: what the calling principal holds.
type grantCase struct {
	name   string
	perm   string // granted permission, "" for none
	target string // "app", "*" or "ops"
	group  bool   // through a group
	scoped bool   // limited to event groups
}

func grantCases() []grantCase {
	cs := []grantCase{{name: "none"}}
	for _, p := range []string{"create", "edit", "manage", "readAudit", "view", "writeAudit"} {
		cs = append(cs,
			grantCase{name: p + " on app", perm: p, target: "app"},
			grantCase{name: p + " on all", perm: p, target: "*"},
			grantCase{name: p + " via group", perm: p, target: "app", group: true},
			grantCase{name: p + " on ops", perm: p, target: "ops"},
		)
	}
	return append(cs,
		grantCase{name: "group-scoped readAudit on app", perm: "readAudit", target: "app", scoped: true},
		grantCase{name: "group-scoped readAudit on all", perm: "readAudit", target: "*", scoped: true},
	)
}

// allows is the expected outcome of a rule for a grant, for a request on
// org acme and context app.
func (g grantCase) allows(ru rule) bool {
	holds := func(p string) bool {
		for _, q := range impliedBy[g.perm] {
			if q == p {
				return true
			}
		}
		return false
	}
	switch ru.access {
	case public, authenticated:
		return true
	case serverAdmin:
		return false
	case orgWide:
		return g.target == "*" && holds(ru.perm) && !g.scoped
	case onContext:
		return (g.target == "app" || g.target == "*") && holds(ru.perm) && (ru.scoped || !g.scoped)
	case onAnyContext:
		return holds(ru.perm)
	}
	panic("rule without access")
}

// params fills a route's path parameters; the test fails on a parameter
// it does not know, so a new route cannot slip through unexercised.
var params = map[string]string{
	"org": "acme", "ctx": "app", "name": "ghost", "kind": "user", "member": "ghost",
	"path": "0/000", "target_type": "doc", "target_id": "d1",
}

var paramRE = regexp.MustCompile(`\{([a-z_]+)(\.\.\.)?\}`)

func fillPath(t *testing.T, p string, org string) string {
	return paramRE.ReplaceAllStringFunc(p, func(m string) string {
		name := paramRE.FindStringSubmatch(m)[1]
		if name == "id" {
			return uuid.Must(uuid.NewV7()).String() // an event or key that does not exist
		}
		if name == "org" {
			return org
		}
		v, ok := params[name]
		if !ok {
			t.Fatalf("matrix: no value for path parameter {%s}; add one", name)
		}
		return v
	})
}

// matrixBody is a body that passes authorization and then fails
// validation (or changes nothing), so the matrix has no side effects.
func matrixBody(method string) string {
	if method == "POST" || method == "PUT" || method == "PATCH" {
		return "[]"
	}
	return ""
}

// TestPermissionMatrix: every route × every kind of grant → allowed or
// 403, generated from the route table.
func TestPermissionMatrix(t *testing.T) {
	f := newAZFixture(t, nil)
	if len(f.srv.routeTable) < 40 {
		t.Fatalf("route table has %d routes", len(f.srv.routeTable))
	}
	for i, g := range grantCases() {
		var pols []*cairn.Policy
		name := fmt.Sprintf("case%d", i)
		if g.perm != "" {
			who := "$self"
			if g.group {
				who = "group/" + name + "-group"
			}
			b := cairn.Binding{Permissions: []string{g.perm}, Principals: []string{who}}
			if g.scoped {
				b.GroupPrefixes = []string{"acme/finance"}
			}
			pols = append(pols, &cairn.Policy{Name: name, Context: g.target, Bindings: []cairn.Binding{b}})
		}
		var c *Client
		if g.group {
			gp := &cairn.Principal{ID: uuid.Must(uuid.NewV7()).String(), Org: "acme", Kind: cairn.PrincipalGroup, Name: name + "-group"}
			if err := f.store.CreatePrincipal(t.Context(), gp); err != nil {
				t.Fatal(err)
			}
			c = f.principal("acme", name, pols...)
			if err := f.store.AddGroupMember(t.Context(), "acme", name+"-group", "serviceaccount/"+name); err != nil {
				t.Fatal(err)
			}
			f.srv.forgetGrants()
		} else {
			c = f.principal("acme", name, pols...)
		}
		t.Run(g.name, func(t *testing.T) {
			for _, rt := range f.srv.routeTable {
				path := fillPath(t, rt.path(), "acme")
				status, body, _ := f.do(c.Token, rt.method(), path, matrixBody(rt.method()), nil)
				want := g.allows(rt.rule)
				got := status != http.StatusForbidden
				if status == http.StatusUnauthorized || status == http.StatusTooManyRequests || status >= 500 {
					t.Errorf("%s (%s): status %d %s", rt.pattern, rt.rule, status, body)
					continue
				}
				if got != want {
					t.Errorf("%s (%s): status %d (%s), want allowed=%v", rt.pattern, rt.rule, status, errCode(body), want)
				}
			}
		})
	}
	t.Run("server admin", func(t *testing.T) {
		for _, rt := range f.srv.routeTable {
			status, body, _ := f.do(f.admin.Token, rt.method(), fillPath(t, rt.path(), "acme"), matrixBody(rt.method()), nil)
			if status == http.StatusForbidden && !strings.Contains(rt.pattern, "/cairn/") || status == http.StatusUnauthorized || status >= 500 {
				t.Errorf("%s as server admin: %d %s", rt.pattern, status, body)
			}
		}
	})
}

// TestRouteRules pins the rule of every route in a golden file, so a
// change of permission shows in review (go test -run RouteRules -update).
func TestRouteRules(t *testing.T) {
	f := newAZFixture(t, nil)
	var b strings.Builder
	for _, rt := range f.srv.routeTable {
		if rt.rule.access == accessUnset {
			t.Errorf("%s has no rule", rt.pattern)
		}
		fmt.Fprintf(&b, "%-70s %s\n", rt.pattern, rt.rule)
	}
	const golden = "testdata/permissions.golden"
	if *update {
		if err := os.WriteFile(golden, []byte(b.String()), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatal(err)
	}
	if string(want) != b.String() {
		t.Fatalf("route rules differ from %s (run with -update if intended):\n%s", golden, b.String())
	}
}

// TestOpenAPICoversRoutes: every registered route is in /openapi.json
// with its method and parameters.
func TestOpenAPICoversRoutes(t *testing.T) {
	f := newAZFixture(t, nil)
	var doc struct {
		OpenAPI string                               `json:"openapi"`
		Paths   map[string]map[string]map[string]any `json:"paths"`
	}
	status, body, _ := f.do("", "GET", "/openapi.json", "", nil)
	if status != 200 {
		t.Fatalf("openapi.json: %d", status)
	}
	if err := jsonUnmarshal(body, &doc); err != nil || doc.OpenAPI != "3.1.0" {
		t.Fatalf("openapi.json: %v %q", err, doc.OpenAPI)
	}
	n := 0
	for _, rt := range f.srv.routeTable {
		p := paramRE.ReplaceAllString(rt.path(), "{$1}")
		op, ok := doc.Paths[p][strings.ToLower(rt.method())]
		if !ok {
			t.Errorf("%s missing from openapi.json", rt.pattern)
			continue
		}
		n++
		if op["x-cairn-permission"] != rt.rule.String() || op["summary"] == "" {
			t.Errorf("%s: operation %v", rt.pattern, op)
		}
		if strings.Contains(p, "{") && op["parameters"] == nil {
			t.Errorf("%s: no parameters", rt.pattern)
		}
	}
	total := 0
	for _, ops := range doc.Paths {
		total += len(ops)
	}
	if total != n {
		t.Errorf("openapi.json has %d operations, the route table %d", total, n)
	}
}
