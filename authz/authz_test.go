package authz

import (
	"slices"
	"strings"
	"testing"

	"github.com/cairn-audit/cairn"
	"github.com/google/go-cmp/cmp"
)

func TestImplies(t *testing.T) {
	want := map[string][]string{
		Create:     {Create},
		Edit:       {Edit, View},
		Manage:     {Create, Edit, Manage, ReadAudit, View, WriteAudit},
		ReadAudit:  {ReadAudit, View},
		View:       {View},
		WriteAudit: {View, WriteAudit},
	}
	for p, w := range want {
		if got := Implies(p); !slices.Equal(got, w) {
			t.Errorf("Implies(%s) = %v, want %v", p, got, w)
		}
	}
	if Implies("root") != nil || Valid("root") {
		t.Error("unknown permission is valid")
	}
}

func TestValidatePolicy(t *testing.T) {
	ok := []cairn.Binding{{Permissions: []string{ReadAudit}, Principals: []string{"user/ann"}, GroupPrefixes: []string{"acme/finance"}}}
	cases := []struct {
		name string
		p    cairn.Policy
		ok   bool
	}{
		{"valid", cairn.Policy{Name: "p", Context: "app", Bindings: ok}, true},
		{"all contexts", cairn.Policy{Name: "p", Context: "*", Bindings: ok}, true},
		{"no context", cairn.Policy{Name: "p", Bindings: ok}, false},
		{"unknown permission", cairn.Policy{Name: "p", Context: "app", Bindings: []cairn.Binding{{Permissions: []string{"root"}}}}, false},
		{"no permission", cairn.Policy{Name: "p", Context: "app", Bindings: []cairn.Binding{{Principals: []string{"user/a"}}}}, false},
		{"bad ref", cairn.Policy{Name: "p", Context: "app", Bindings: []cairn.Binding{{Permissions: []string{View}, Principals: []string{"ann"}}}}, false},
		{"bad kind", cairn.Policy{Name: "p", Context: "app", Bindings: []cairn.Binding{{Permissions: []string{View}, Principals: []string{"robot/x"}}}}, false},
		{"scoped manage", cairn.Policy{Name: "p", Context: "app", Bindings: []cairn.Binding{{Permissions: []string{Manage}, EventGroups: []string{"g"}}}}, false},
		{"scoped write", cairn.Policy{Name: "p", Context: "app", Bindings: []cairn.Binding{{Permissions: []string{WriteAudit}, GroupPrefixes: []string{"g"}}}}, false},
		{"slash group", cairn.Policy{Name: "p", Context: "app", Bindings: []cairn.Binding{{Permissions: []string{ReadAudit}, GroupPrefixes: []string{"/"}}}}, false},
	}
	for _, tc := range cases {
		err := ValidatePolicy(&tc.p)
		if (err == nil) != tc.ok || (err != nil && cairn.ErrorCode(err) != cairn.EInvalid) {
			t.Errorf("%s: %v, want ok=%v", tc.name, err, tc.ok)
		}
	}
}

func policies() []*cairn.Policy {
	return []*cairn.Policy{
		{Name: "app-writers", Context: "app", Bindings: []cairn.Binding{
			{Permissions: []string{WriteAudit}, Principals: []string{"serviceaccount/ci"}},
		}},
		{Name: "finance-readers", Context: "app", Bindings: []cairn.Binding{
			{Permissions: []string{ReadAudit}, Principals: []string{"group/finance"}, GroupPrefixes: []string{"acme/finance"}},
		}},
		{Name: "org-admins", Context: "*", Bindings: []cairn.Binding{
			{Permissions: []string{Manage}, Principals: []string{"user/root"}},
		}},
		{Name: "ops-readers", Context: "ops", Bindings: []cairn.Binding{
			{Permissions: []string{ReadAudit}, Principals: []string{"user/ann"}},
		}},
		{Name: "eu", Context: "*", Bindings: []cairn.Binding{
			{Permissions: []string{ReadAudit}, Principals: []string{"user/eve"}, EventGroups: []string{"eu"}},
		}},
	}
}

func TestEvaluate(t *testing.T) {
	ps := policies()
	ci := Evaluate("serviceaccount/ci", nil, ps)
	if !ci.Has(WriteAudit, "app") || !ci.Has(View, "app") || ci.Has(ReadAudit, "app") || ci.Has(WriteAudit, "ops") || ci.Has(WriteAudit, "*") {
		t.Errorf("ci grants = %v", ci)
	}
	root := Evaluate("user/root", nil, ps)
	for _, p := range Permissions {
		for _, c := range []string{"app", "ops", "*", "new"} {
			if !root.Unscoped(p, c) {
				t.Errorf("root lacks %s on %s", p, c)
			}
		}
	}
	if root.SearchScopes() != nil {
		t.Errorf("root search scopes = %v, want nil (everything)", root.SearchScopes())
	}
	ann := Evaluate("user/ann", []string{"finance"}, ps)
	if !ann.Has(ReadAudit, "app") || ann.Unscoped(ReadAudit, "app") || !ann.Unscoped(ReadAudit, "ops") || ann.Has(ReadAudit, "*") {
		t.Errorf("ann grants = %v", ann)
	}
	sc, ok := ann.Scope("app")
	if !ok || !slices.Equal(sc.GroupPrefixes, []string{"acme/finance"}) || !slices.Equal(sc.Contexts, []string{"app"}) {
		t.Errorf("ann scope on app = %+v %v", sc, ok)
	}
	if sc, ok := ann.Scope("ops"); !ok || sc.Grouped() {
		t.Errorf("ann scope on ops = %+v %v", sc, ok)
	}
	want := []cairn.ReadScope{{Contexts: []string{"app"}, GroupPrefixes: []string{"acme/finance"}}, {Contexts: []string{"ops"}}}
	if d := cmp.Diff(want, ann.SearchScopes()); d != "" {
		t.Errorf("ann search scopes (-want +got):\n%s", d)
	}
	g := ann.on(ReadAudit, "app")[0]
	if g.Via != "group/finance" || g.Policy != "finance-readers" || g.ImpliedBy != "" {
		t.Errorf("ann's app grant = %+v", g)
	}
	if v := ann.on(View, "ops")[0]; v.ImpliedBy != ReadAudit || v.Via != "" {
		t.Errorf("ann's implied view = %+v", v)
	}
	eve := Evaluate("user/eve", nil, ps)
	if d := cmp.Diff([]cairn.ReadScope{{Groups: []string{"eu"}}}, eve.SearchScopes()); d != "" {
		t.Errorf("eve search scopes (-want +got):\n%s", d)
	}
	nobody := Evaluate("user/nobody", nil, ps)
	if s := nobody.SearchScopes(); s == nil || len(s) != 0 || nobody.HasAny(View) {
		t.Errorf("nobody search scopes = %v", s)
	}
	// A group member's grant does not leak to another group's members.
	if bob := Evaluate("user/bob", []string{"other"}, ps); len(bob) != 0 {
		t.Errorf("bob grants = %v", bob)
	}
}

func TestReport(t *testing.T) {
	prin := []*cairn.Principal{
		{Kind: cairn.PrincipalGroup, Name: "finance"},
		{Kind: cairn.PrincipalServiceAccount, Name: "ci"},
		{Kind: cairn.PrincipalUser, Name: "ann"},
		{Kind: cairn.PrincipalUser, Name: "bob"},
		{Kind: cairn.PrincipalUser, Name: "root"},
	}
	rep := Report("app", prin, map[string][]string{"user/ann": {"finance"}}, policies())
	var lines []string
	for _, e := range rep {
		for _, h := range e.Permissions {
			var via []string
			for _, g := range h.Grants {
				via = append(via, g.Policy+"|"+g.Via+"|"+g.ImpliedBy)
			}
			lines = append(lines, e.Principal+" "+h.Permission+" "+strings.Join(via, ","))
		}
	}
	want := []string{
		"group/finance readAudit finance-readers||",
		"group/finance view finance-readers||readAudit",
		"serviceaccount/ci view app-writers||writeAudit",
		"serviceaccount/ci writeAudit app-writers||",
		"user/ann readAudit finance-readers|group/finance|",
		"user/ann view finance-readers|group/finance|readAudit",
		"user/root create org-admins||manage",
		"user/root edit org-admins||manage",
		"user/root manage org-admins||",
		"user/root readAudit org-admins||manage",
		"user/root view org-admins||manage",
		"user/root writeAudit org-admins||manage",
	}
	if d := cmp.Diff(want, lines); d != "" {
		t.Errorf("report (-want +got):\n%s", d)
	}
}

func TestPassword(t *testing.T) {
	h, err := HashPassword("correct horse battery staple")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(h, "$argon2id$v=19$m=19456,t=2,p=1$") {
		t.Fatalf("hash %q", h)
	}
	if h2, _ := HashPassword("correct horse battery staple"); h2 == h {
		t.Fatal("two hashes of one password are equal (no salt?)")
	}
	if !CheckPassword(h, "correct horse battery staple") {
		t.Fatal("right password rejected")
	}
	for _, bad := range []string{"correct horse battery stapl", "", strings.Repeat("x", 2000)} {
		if CheckPassword(h, bad) {
			t.Fatalf("wrong password %q accepted", bad)
		}
	}
	for _, hash := range []string{"", "plain", "$argon2id$v=19$m=1,t=1,p=1$$", "$argon2i$v=19$m=19456,t=2,p=1$AAAA$AAAA", dummyHash} {
		if CheckPassword(hash, "cairn-dummy-password-never-matches") && hash != dummyHash {
			t.Fatalf("malformed hash %q matched", hash)
		}
	}
	if CheckPassword("", "cairn-dummy-password-never-matches") {
		t.Fatal("an empty hash matched the dummy password")
	}
	if _, err := HashPassword("short"); cairn.ErrorCode(err) != cairn.EInvalid {
		t.Fatalf("short password: %v", err)
	}
}

// BenchmarkHashPassword is the cost of one login attempt (argon2id).
func BenchmarkHashPassword(b *testing.B) {
	h, _ := HashPassword("correct horse battery staple")
	for b.Loop() {
		CheckPassword(h, "correct horse battery staple")
	}
}

// BenchmarkEvaluate is the cost of evaluating an org's policies for one
// principal (the server caches the result for cacheTTL).
func BenchmarkEvaluate(b *testing.B) {
	ps := policies()
	for b.Loop() {
		gs := Evaluate("user/ann", []string{"finance"}, ps)
		gs.SearchScopes()
	}
}
