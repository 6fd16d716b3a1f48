package httpapi

import (
	"encoding/json"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/cairn-audit/cairn"
)

func readAll(t *testing.T, target string) *cairn.Policy {
	return &cairn.Policy{Name: "read-" + strings.ReplaceAll(target, "*", "all"), Context: target,
		Bindings: []cairn.Binding{{Permissions: []string{"readAudit"}, Principals: []string{"$self"}}}}
}

func ids(t *testing.T, p *EventPage) []string {
	t.Helper()
	var out []string
	for _, it := range p.Items {
		var e struct{ ID string }
		json.Unmarshal(it, &e)
		out = append(out, e.ID)
	}
	return out
}

// TestCrossOrgIsolation: a principal of acme with every permission in
// acme reaches nothing of rival through any route, nor with rival's ids,
// cursors or event ids in its own org's paths.
func TestCrossOrgIsolation(t *testing.T) {
	f := newAZFixture(t, nil)
	c := f.principal("acme", "boss", &cairn.Policy{Name: "all", Context: "*",
		Bindings: []cairn.Binding{{Permissions: []string{"manage"}, Principals: []string{"$self"}}}})
	for _, rt := range f.srv.routeTable {
		if !strings.Contains(rt.path(), "{org}") || rt.rule.access == public {
			continue
		}
		status, body, _ := f.do(c.Token, rt.method(), fillPath(t, rt.path(), "rival"), matrixBody(rt.method()), nil)
		if errCode(body) != cairn.ENotFound {
			t.Errorf("%s on rival: %d %s, want not_found", rt.pattern, status, body)
		}
	}
	rivalID := f.events["rival"]
	for _, path := range []string{
		"/api/v1/orgs/acme/contexts/app/events/" + rivalID,
		"/api/v1/orgs/acme/contexts/app/events/" + rivalID + "/receipt",
	} {
		if status, body, _ := f.do(c.Token, "GET", path, "", nil); errCode(body) != cairn.ENotFound {
			t.Errorf("%s: %d %s, want not_found", path, status, body)
		}
	}
	// A cursor taken from a rival search only pages acme's own events.
	rivalPage, err := f.admin.Search(t.Context(), "rival", url.Values{"limit": {"1"}})
	if err != nil || len(rivalPage.Items) != 1 {
		t.Fatal(err)
	}
	cursor := encodeCursor(1 << 40)
	for _, q := range []url.Values{{"cursor": {*cursor}}, {"q": {"doc"}}, {"group.id": {"acme/finance"}}, {"target.id": {"d1"}}} {
		p, err := c.Search(t.Context(), "acme", q)
		if err != nil {
			t.Fatal(err)
		}
		for _, id := range ids(t, p) {
			if id == rivalID {
				t.Errorf("acme search %v found rival's event", q)
			}
		}
	}
	tr, err := c.Trail(t.Context(), "acme", "doc", "d1", nil)
	if err != nil || len(tr.Items) != 2 {
		t.Fatalf("acme trail: %v %d items, want acme's 2", err, len(tr.Items))
	}
	// Public log endpoints of rival stay public; the rest is not_found.
	if status, _, _ := f.do(c.Token, "GET", "/log/rival/app/key", "", nil); status != 200 {
		t.Errorf("public key of rival: %d", status)
	}
	// A rival principal with every permission in rival sees none of acme.
	rc := f.principal("rival", "boss", &cairn.Policy{Name: "all", Context: "*",
		Bindings: []cairn.Binding{{Permissions: []string{"manage"}, Principals: []string{"$self"}}}})
	if _, err := rc.GetEvent(t.Context(), "acme", "app", f.events["finance"]); cairn.ErrorCode(err) != cairn.ENotFound {
		t.Errorf("rival reads acme's event: %v", err)
	}
	if _, err := rc.GetEvent(t.Context(), "rival", "app", f.events["finance"]); cairn.ErrorCode(err) != cairn.ENotFound {
		t.Errorf("rival reads acme's event through its own org: %v", err)
	}
	if _, err := rc.GetEvent(t.Context(), "rival", "app", rivalID); err != nil {
		t.Errorf("rival reads its own event: %v", err)
	}
}

// TestGroupScopedReads: a readAudit grant limited to a group prefix sees
// only matching events in search, trail, event and receipt, and gets 403
// for exports and tiles.
func TestGroupScopedReads(t *testing.T) {
	f := newAZFixture(t, nil)
	c := f.principal("acme", "fin", &cairn.Policy{Name: "finance", Context: "app", Bindings: []cairn.Binding{
		{Permissions: []string{"readAudit"}, Principals: []string{"$self"}, GroupPrefixes: []string{"acme/finance"}}}})
	ctx := t.Context()
	p, err := c.Search(ctx, "acme", nil)
	if err != nil {
		t.Fatal(err)
	}
	if got := ids(t, p); len(got) != 1 || got[0] != f.events["finance"] {
		t.Fatalf("scoped search = %v, want only the finance event %s", got, f.events["finance"])
	}
	for _, q := range []url.Values{{"group.id": {"acme/hr"}}, {"group.prefix": {"acme"}}, {"context": {"app"}, "action": {"doc.read"}}} {
		p, _ := c.Search(ctx, "acme", q)
		for _, id := range ids(t, p) {
			if id != f.events["finance"] {
				t.Errorf("search %v leaked %s", q, id)
			}
		}
	}
	if _, err := c.Search(ctx, "acme", url.Values{"context": {"ops"}}); cairn.ErrorCode(err) != cairn.EForbidden {
		t.Errorf("search of a context without a grant: %v", err)
	}
	if _, err := c.Search(ctx, "acme", url.Values{"context": {"cairn"}}); cairn.ErrorCode(err) != cairn.EForbidden {
		t.Errorf("search of the built-in context: %v", err)
	}
	tr, err := c.Trail(ctx, "acme", "doc", "d1", nil)
	if got := ids(t, tr); err != nil || len(got) != 1 || got[0] != f.events["finance"] {
		t.Fatalf("scoped trail = %v %v", got, err)
	}
	if _, err := c.GetEvent(ctx, "acme", "app", f.events["finance"]); err != nil {
		t.Errorf("own group's event: %v", err)
	}
	if _, err := c.GetEvent(ctx, "acme", "app", f.events["hr"]); cairn.ErrorCode(err) != cairn.ENotFound {
		t.Errorf("other group's event: %v, want not_found", err)
	}
	if status, body, _ := f.do(c.Token, "GET", "/api/v1/orgs/acme/contexts/app/events/"+f.events["hr"]+"/receipt", "", nil); errCode(body) != cairn.ENotFound {
		t.Errorf("other group's receipt: %d %s", status, body)
	}
	for _, path := range []string{"/api/v1/orgs/acme/contexts/app/export", "/log/acme/app/tile/entries/000", "/log/acme/app/checkpoints",
		"/log/acme/app/proof/inclusion?index=0"} {
		if status, body, _ := f.do(c.Token, "GET", path, "", nil); errCode(body) != cairn.EForbidden {
			t.Errorf("%s with a group-scoped grant: %d %s, want forbidden", path, status, body)
		}
	}
	// An unscoped grant reads every event, and may filter by group prefix.
	wide := f.principal("acme", "wide", readAll(t, "*"))
	all, err := wide.Search(ctx, "acme", nil)
	if err != nil || len(all.Items) != 2 {
		t.Fatalf("unscoped search: %v %d items, want 2 (the built-in context is left out)", err, len(all.Items))
	}
	hr, err := wide.Search(ctx, "acme", url.Values{"group.prefix": {"acme/hr"}})
	if got := ids(t, hr); err != nil || len(got) != 1 || got[0] != f.events["hr"] {
		t.Fatalf("group.prefix search = %v %v", got, err)
	}
	if _, err := wide.Search(ctx, "acme", url.Values{"group.prefix": {"/"}}); cairn.ErrorCode(err) != cairn.EInvalid {
		t.Fatalf("empty group.prefix: %v", err)
	}
}

// TestSelfAudit: administrative actions, reads, failed authentications and
// logins appear in the built-in context with the right actor, secrets are
// masked, and no secret reaches the server's logs.
func TestSelfAudit(t *testing.T) {
	f := newAZFixture(t, nil)
	ctx := t.Context()
	boss := f.principal("acme", "boss", &cairn.Policy{Name: "all", Context: "*",
		Bindings: []cairn.Binding{{Permissions: []string{"manage"}, Principals: []string{"$self"}}}})
	const password = "correct horse battery staple"
	mustDo := func(c *Client, method, path string, body any, out any) {
		t.Helper()
		if _, err := c.Do(ctx, method, path, nil, jsonBody(body), nil, out); err != nil {
			t.Fatalf("%s %s: %v", method, path, err)
		}
	}
	mustDo(boss, "POST", "/api/v1/orgs/acme/users", map[string]any{"name": "ann", "email": "ann@example.com", "password": password}, nil)
	mustDo(boss, "POST", "/api/v1/orgs/acme/serviceaccounts", map[string]any{"name": "ci"}, nil)
	mustDo(boss, "POST", "/api/v1/orgs/acme/groups", map[string]any{"name": "auditors"}, nil)
	mustDo(boss, "POST", "/api/v1/orgs/acme/groups/auditors/members", map[string]any{"principal": "user/ann"}, nil)
	var nk NewKey
	mustDo(boss, "POST", "/api/v1/orgs/acme/keys", map[string]any{"principal": "serviceaccount/ci", "name": "deploy", "expires_in": "24h"}, &nk)
	mustDo(boss, "POST", "/api/v1/orgs/acme/policies", map[string]any{"name": "auditors", "context": "*",
		"bindings": []map[string]any{{"permissions": []string{"readAudit"}, "principals": []string{"group/auditors"}}}}, nil)
	mustDo(boss, "PATCH", "/api/v1/orgs/acme/contexts/app", map[string]any{"description": "the app",
		"redaction": []map[string]string{{"field": "ssn", "mode": "mask"}}}, nil)
	mustDo(boss, "POST", "/api/v1/orgs/acme/contexts", map[string]any{"name": "billing"}, nil)
	mustDo(boss, "POST", "/api/v1/orgs/acme/keys/"+nk.Key.ID+"/revoke", nil, nil)
	var sess Session
	anon := &Client{BaseURL: f.url}
	mustDo(anon, "POST", "/api/v1/orgs/acme/login", map[string]string{"username": "ann", "password": password}, &sess)
	if _, err := anon.Do(ctx, "POST", "/api/v1/orgs/acme/login", nil, jsonBody(map[string]string{"username": "ann", "password": "wrong password!!"}), nil, nil); cairn.ErrorCode(err) != cairn.EUnauthorized {
		t.Fatalf("wrong password: %v", err)
	}
	bogus := "cairn_" + strings.Repeat("Z", 43)
	if status, _, _ := f.do(bogus, "GET", "/api/v1/orgs/acme/events", "", nil); status != http.StatusUnauthorized {
		t.Fatalf("bogus key: %d", status)
	}
	ann := &Client{BaseURL: f.url, Token: sess.Token}
	if _, err := ann.Search(ctx, "acme", url.Values{"action": {"doc.*"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := ann.Trail(ctx, "acme", "doc", "d1", nil); err != nil {
		t.Fatal(err)
	}
	if _, err := ann.GetEvent(ctx, "acme", "app", f.events["hr"]); err != nil {
		t.Fatal(err)
	}
	// Reads of the built-in context itself are recorded, once each.
	if _, err := ann.Search(ctx, "acme", url.Values{"context": {"cairn"}}); err != nil {
		t.Fatal(err)
	}
	mustDo(boss, "GET", "/api/v1/orgs/acme/contexts/app/access", nil, nil)

	want := []struct{ action, actorType, actorName, kind string }{
		{"user.create", "serviceaccount", "boss", "create"},
		{"serviceaccount.create", "serviceaccount", "boss", "create"},
		{"group.create", "serviceaccount", "boss", "create"},
		{"group.member.add", "serviceaccount", "boss", "update"},
		{"apikey.create", "serviceaccount", "boss", "create"},
		{"policy.create", "serviceaccount", "boss", "create"},
		{"context.update", "serviceaccount", "boss", "update"},
		{"context.create", "serviceaccount", "boss", "create"},
		{"apikey.revoke", "serviceaccount", "boss", "update"},
		{"auth.login", "user", "ann", "login"},
		{"auth.login", "user", "ann", "login_failed"},
		{"auth.failed", "anonymous", "", "login_failed"},
		{"log.search", "user", "ann", "read"},
		{"log.trail", "user", "ann", "read"},
		{"log.event", "user", "ann", "read"},
		{"log.search", "user", "ann", "read"},
		{"access.read", "serviceaccount", "boss", "read"},
	}
	evs := f.builtin("acme", len(want))
	var got []string
	for _, e := range evs {
		name, typ := "", ""
		if e.Actor != nil {
			name, typ = e.Actor.Name, e.Actor.Type
		}
		got = append(got, e.Action+" "+typ+" "+name+" "+e.Kind)
		if e.Source == nil || e.Source.IP != "127.0.0.1" || e.Source.RequestID == "" {
			t.Errorf("%s: source %+v", e.Action, e.Source)
		}
	}
	var wantLines []string
	for _, w := range want {
		wantLines = append(wantLines, w.action+" "+w.actorType+" "+w.actorName+" "+w.kind)
	}
	if strings.Join(got, "\n") != strings.Join(wantLines, "\n") {
		t.Fatalf("built-in context:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(wantLines, "\n"))
	}
	byAction := map[string]cairn.Event{}
	for _, e := range evs {
		byAction[e.Action] = e
	}
	if s := byAction["log.search"]; s.Fields["filter.context"] != "cairn" {
		t.Errorf("recorded search filter = %v", s.Fields)
	}
	if u := byAction["context.update"]; len(u.Changes) != 2 || u.Changes[0].Field != "description" || u.Changes[1].Field != "redaction" {
		t.Errorf("context.update changes = %+v", u.Changes)
	}
	if k := byAction["apikey.create"]; k.Target == nil || k.Target.ID != nk.Key.ID {
		t.Errorf("apikey.create target = %+v", k.Target)
	}
	if e := byAction["log.event"]; e.Target == nil || e.Target.ID != f.events["hr"] {
		t.Errorf("log.event target = %+v", e.Target)
	}

	// No secret anywhere: not in any leaf of the built-in context, not in
	// the server's logs.
	var leaves strings.Builder
	for _, e := range evs {
		b, _ := json.Marshal(e)
		leaves.Write(b)
	}
	for _, secret := range []string{password, nk.Secret, sess.Token, bogus, "$argon2id"} {
		if strings.Contains(leaves.String(), secret) {
			t.Errorf("secret %.12s… in the built-in context", secret)
		}
		if strings.Contains(f.logs.String(), secret) {
			t.Errorf("secret %.12s… in the server logs", secret)
		}
	}
	if !strings.Contains(leaves.String(), `"password","new":"***"`) {
		t.Errorf("the password change is not recorded as masked")
	}
	if body, _ := json.Marshal(byAction["auth.failed"]); !strings.Contains(string(body), visiblePrefix(bogus)) {
		t.Errorf("auth.failed does not name the key prefix: %s", body)
	}
	// The built-in context takes no writes, not even from a server admin.
	if _, _, err := f.admin.WriteEvents(ctx, "acme", "cairn", []byte(`{"action":"x.y"}`), WriteOptions{}); cairn.ErrorCode(err) != cairn.EForbidden {
		t.Errorf("write to cairn: %v", err)
	}
}

// TestKeyLifecycle: revoked and expired keys are refused; a revocation on
// another node takes effect within the key cache's lifetime.
func TestKeyLifecycle(t *testing.T) {
	f := newAZFixture(t, nil)
	ctx := t.Context()
	f.principal("acme", "ci", readAll(t, "app"))
	var nk NewKey
	if _, err := f.admin.Do(ctx, "POST", "/api/v1/orgs/acme/keys", nil, jsonBody(map[string]any{
		"principal": "serviceaccount/ci", "name": "short", "expires_in": "1h"}), nil, &nk); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(nk.Secret, KeyPrefix) || nk.Key.Prefix != visiblePrefix(nk.Secret) || nk.Key.State != "active" {
		t.Fatalf("new key = %+v", nk.Key)
	}
	c := &Client{BaseURL: f.url, Token: nk.Secret}
	if _, err := c.Search(ctx, "acme", nil); err != nil {
		t.Fatal(err)
	}
	f.clock.Add(time.Hour + time.Second)
	if _, err := c.Search(ctx, "acme", nil); cairn.ErrorCode(err) != cairn.EUnauthorized {
		t.Fatalf("expired key: %v", err)
	}
	var list struct{ Items []APIKeyView }
	if _, err := f.admin.Do(ctx, "GET", "/api/v1/orgs/acme/keys", url.Values{"principal": {"serviceaccount/ci"}}, nil, nil, &list); err != nil ||
		len(list.Items) != 2 || list.Items[0].State != "expired" {
		t.Fatalf("key list: %v %+v", err, list.Items)
	}
	for _, k := range list.Items {
		if strings.Contains(k.Prefix, nk.Secret[len(k.Prefix):]) {
			t.Fatal("list shows more than the prefix")
		}
	}

	// Revoked through this node: refused at once.
	if _, err := f.admin.Do(ctx, "POST", "/api/v1/orgs/acme/keys", nil, jsonBody(map[string]any{
		"principal": "serviceaccount/ci", "name": "long"}), nil, &nk); err != nil {
		t.Fatal(err)
	}
	c = &Client{BaseURL: f.url, Token: nk.Secret}
	if _, err := c.Search(ctx, "acme", nil); err != nil {
		t.Fatal(err)
	}
	if _, err := f.admin.Do(ctx, "POST", "/api/v1/orgs/acme/keys/"+nk.Key.ID+"/revoke", nil, nil, nil, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Search(ctx, "acme", nil); cairn.ErrorCode(err) != cairn.EUnauthorized {
		t.Fatalf("revoked key: %v", err)
	}

	// Revoked on another node (straight in the store): served from the
	// cache for at most cacheTTL.
	if _, err := f.admin.Do(ctx, "POST", "/api/v1/orgs/acme/keys", nil, jsonBody(map[string]any{
		"principal": "serviceaccount/ci", "name": "other"}), nil, &nk); err != nil {
		t.Fatal(err)
	}
	c = &Client{BaseURL: f.url, Token: nk.Secret}
	if _, err := c.Search(ctx, "acme", nil); err != nil {
		t.Fatal(err)
	}
	if _, err := f.store.RevokeAPIKey(ctx, "acme", nk.Key.ID, f.clock.Now()); err != nil {
		t.Fatal(err)
	}
	f.clock.Add(cacheTTL + time.Millisecond)
	if _, err := c.Search(ctx, "acme", nil); cairn.ErrorCode(err) != cairn.EUnauthorized {
		t.Fatalf("key revoked elsewhere, after the cache TTL: %v", err)
	}

	// Disabling or deleting the principal ends its keys too.
	if _, err := f.admin.Do(ctx, "POST", "/api/v1/orgs/acme/keys", nil, jsonBody(map[string]any{
		"principal": "serviceaccount/ci", "name": "third"}), nil, &nk); err != nil {
		t.Fatal(err)
	}
	c = &Client{BaseURL: f.url, Token: nk.Secret}
	if _, err := f.admin.Do(ctx, "PATCH", "/api/v1/orgs/acme/serviceaccounts/ci", nil, jsonBody(map[string]any{"disabled": true}), nil, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Search(ctx, "acme", nil); cairn.ErrorCode(err) != cairn.EUnauthorized {
		t.Fatalf("key of a disabled principal: %v", err)
	}
	if _, err := f.admin.Do(ctx, "DELETE", "/api/v1/orgs/acme/serviceaccounts/ci", nil, nil, nil, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Search(ctx, "acme", nil); cairn.ErrorCode(err) != cairn.EUnauthorized {
		t.Fatalf("key of a deleted principal: %v", err)
	}
	// Users get no API keys; they log in.
	if _, err := f.admin.Do(ctx, "POST", "/api/v1/orgs/acme/users", nil, jsonBody(map[string]any{"name": "ann"}), nil, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := f.admin.Do(ctx, "POST", "/api/v1/orgs/acme/keys", nil, jsonBody(map[string]any{"principal": "user/ann", "name": "k"}), nil, nil); cairn.ErrorCode(err) != cairn.EInvalid {
		t.Fatalf("key for a user: %v", err)
	}
}

// TestRateLimit: failed authentications from one address are limited with
// 429 + Retry-After, for valid keys too, and X-Forwarded-For counts only
// from a trusted proxy.
func TestRateLimit(t *testing.T) {
	f := newAZFixture(t, func(c *Config) {
		c.AuthFailureBurst, c.AuthFailureWindow = 3, 30*time.Second
		c.TrustedProxies = []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}
	})
	xff := func(ip string) http.Header { return http.Header{"X-Forwarded-For": {"198.51.100.7, " + ip}} }
	for i := range 3 {
		if status, _, _ := f.do("cairn_wrong", "GET", "/api/v1/orgs/acme/events", "", xff("203.0.113.1")); status != http.StatusUnauthorized {
			t.Fatalf("failure %d: %d", i, status)
		}
	}
	status, body, h := f.do("cairn_wrong", "GET", "/api/v1/orgs/acme/events", "", xff("203.0.113.1"))
	if status != http.StatusTooManyRequests || errCode(body) != cairn.ERateLimited || h.Get("Retry-After") != "10" {
		t.Fatalf("fourth failure: %d %s Retry-After %q", status, body, h.Get("Retry-After"))
	}
	if status, _, _ := f.do(f.admin.Token, "GET", "/api/v1/orgs/acme/events", "", xff("203.0.113.1")); status != http.StatusTooManyRequests {
		t.Fatalf("valid key from a blocked address: %d", status)
	}
	if status, _, _ := f.do("", "POST", "/api/v1/orgs/acme/login", `{"username":"x","password":"y"}`, xff("203.0.113.1")); status != http.StatusTooManyRequests {
		t.Fatalf("login from a blocked address: %d", status)
	}
	if status, _, _ := f.do(f.admin.Token, "GET", "/api/v1/orgs/acme/events", "", xff("203.0.113.2")); status != 200 {
		t.Fatalf("another client behind the proxy: %d", status)
	}
	f.clock.Add(10 * time.Second)
	if status, _, _ := f.do(f.admin.Token, "GET", "/api/v1/orgs/acme/events", "", xff("203.0.113.1")); status != 200 {
		t.Fatalf("after Retry-After: %d", status)
	}
	fails := f.find("acme", actionAuthFailed, 3)
	if len(fails) != 3 || fails[0].Source.IP != "203.0.113.1" || fails[0].Outcome != cairn.OutcomeFailure {
		t.Fatalf("recorded failures: %d, first %+v", len(fails), fails)
	}

	// Without a trusted proxy the header is the client's to forge, and
	// ignored.
	g := newAZFixture(t, func(c *Config) { c.AuthFailureBurst = 2 })
	for i := range 2 {
		g.do("cairn_wrong", "GET", "/api/v1/orgs/acme/events", "", http.Header{"X-Forwarded-For": {"192.0.2." + string(rune('1'+i))}})
	}
	if status, _, _ := g.do(g.admin.Token, "GET", "/api/v1/whoami", "", http.Header{"X-Forwarded-For": {"192.0.2.9"}}); status != http.StatusTooManyRequests {
		t.Fatalf("forged X-Forwarded-For escaped the limit: %d", status)
	}
}

// TestLoginSession: a local user logs in with a password, the session acts
// with the user's grants, and ends at logout or expiry.
func TestLoginSession(t *testing.T) {
	f := newAZFixture(t, func(c *Config) { c.SessionTTL = time.Hour })
	ctx := t.Context()
	if _, err := f.admin.Do(ctx, "POST", "/api/v1/orgs/acme/users", nil, jsonBody(map[string]any{"name": "ann", "password": "short"}), nil, nil); cairn.ErrorCode(err) != cairn.EInvalid {
		t.Fatalf("short password: %v", err)
	}
	var u PrincipalView
	if _, err := f.admin.Do(ctx, "POST", "/api/v1/orgs/acme/users", nil, jsonBody(map[string]any{"name": "ann", "password": "a long enough password"}), nil, &u); err != nil || !u.HasPassword {
		t.Fatal(err, u)
	}
	if _, err := f.admin.Do(ctx, "POST", "/api/v1/orgs/acme/policies", nil, jsonBody(map[string]any{"name": "ann-reads", "context": "app",
		"bindings": []map[string]any{{"permissions": []string{"readAudit"}, "principals": []string{"user/ann"}}}}), nil, nil); err != nil {
		t.Fatal(err)
	}
	anon := &Client{BaseURL: f.url}
	for _, bad := range []map[string]string{{"username": "ann", "password": "wrong"}, {"username": "nobody", "password": "a long enough password"}} {
		if _, err := anon.Do(ctx, "POST", "/api/v1/orgs/acme/login", nil, jsonBody(bad), nil, nil); cairn.ErrorCode(err) != cairn.EUnauthorized {
			t.Fatalf("login %v: %v", bad, err)
		}
	}
	if _, err := anon.Do(ctx, "POST", "/api/v1/orgs/rival/login", nil, jsonBody(map[string]string{"username": "ann", "password": "a long enough password"}), nil, nil); cairn.ErrorCode(err) != cairn.EUnauthorized {
		t.Fatalf("login in another org: %v", err)
	}
	var s Session
	if _, err := anon.Do(ctx, "POST", "/api/v1/orgs/acme/login", nil, jsonBody(map[string]string{"username": "ann", "password": "a long enough password"}), nil, &s); err != nil {
		t.Fatal(err)
	}
	c := &Client{BaseURL: f.url, Token: s.Token}
	var who Whoami
	if _, err := c.Do(ctx, "GET", "/api/v1/whoami", nil, nil, nil, &who); err != nil || who.Principal == nil || who.Principal.Ref != "user/ann" || who.Key.Kind != cairn.KeyKindSession {
		t.Fatalf("whoami: %v %+v", err, who)
	}
	if _, err := c.Search(ctx, "acme", url.Values{"context": {"app"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Search(ctx, "acme", url.Values{"context": {"ops"}}); cairn.ErrorCode(err) != cairn.EForbidden {
		t.Fatalf("search outside the grant: %v", err)
	}
	if _, err := c.Do(ctx, "POST", "/api/v1/logout", nil, nil, nil, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Search(ctx, "acme", nil); cairn.ErrorCode(err) != cairn.EUnauthorized {
		t.Fatalf("after logout: %v", err)
	}
	if _, err := anon.Do(ctx, "POST", "/api/v1/orgs/acme/login", nil, jsonBody(map[string]string{"username": "ann", "password": "a long enough password"}), nil, &s); err != nil {
		t.Fatal(err)
	}
	f.clock.Add(time.Hour + time.Second)
	if _, err := (&Client{BaseURL: f.url, Token: s.Token}).Search(ctx, "acme", nil); cairn.ErrorCode(err) != cairn.EUnauthorized {
		t.Fatalf("expired session: %v", err)
	}
	if _, err := f.admin.Do(ctx, "POST", "/api/v1/logout", nil, nil, nil, nil); cairn.ErrorCode(err) != cairn.EInvalid {
		t.Fatalf("logout with an API key: %v", err)
	}
}

// TestAccessReport lists direct, implied and group grants with their
// policies.
func TestAccessReport(t *testing.T) {
	f := newAZFixture(t, nil)
	ctx := t.Context()
	for _, p := range []struct{ kind, name string }{{"users", "ann"}, {"groups", "auditors"}, {"serviceaccounts", "ci"}} {
		if _, err := f.admin.Do(ctx, "POST", "/api/v1/orgs/acme/"+p.kind, nil, jsonBody(map[string]any{"name": p.name}), nil, nil); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := f.admin.Do(ctx, "POST", "/api/v1/orgs/acme/groups/auditors/members", nil, jsonBody(map[string]string{"principal": "user/ann"}), nil, nil); err != nil {
		t.Fatal(err)
	}
	for _, pol := range []map[string]any{
		{"name": "audit", "context": "app", "bindings": []map[string]any{{"permissions": []string{"readAudit"}, "principals": []string{"group/auditors"}, "group_prefixes": []string{"acme/finance"}}}},
		{"name": "ci", "context": "*", "bindings": []map[string]any{{"permissions": []string{"writeAudit"}, "principals": []string{"serviceaccount/ci"}}}},
	} {
		if _, err := f.admin.Do(ctx, "POST", "/api/v1/orgs/acme/policies", nil, jsonBody(pol), nil, nil); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := f.admin.Do(ctx, "POST", "/api/v1/orgs/acme/policies", nil, jsonBody(map[string]any{"name": "bad", "context": "app",
		"bindings": []map[string]any{{"permissions": []string{"view"}, "principals": []string{"user/ghost"}}}}), nil, nil); cairn.ErrorCode(err) != cairn.EInvalid {
		t.Fatalf("policy naming a missing principal: %v", err)
	}
	var rep AccessReport
	if _, err := f.admin.Do(ctx, "GET", "/api/v1/orgs/acme/contexts/app/access", nil, nil, nil, &rep); err != nil {
		t.Fatal(err)
	}
	var lines []string
	for _, e := range rep.Items {
		for _, h := range e.Permissions {
			for _, g := range h.Grants {
				lines = append(lines, strings.Join([]string{e.Principal, h.Permission, g.Policy, g.Via, g.ImpliedBy, strings.Join(g.GroupPrefixes, ",")}, " "))
			}
		}
	}
	want := []string{
		"group/auditors readAudit audit   acme/finance",
		"group/auditors view audit  readAudit acme/finance",
		"serviceaccount/ci view ci  writeAudit ",
		"serviceaccount/ci writeAudit ci   ",
		"user/ann readAudit audit group/auditors  acme/finance",
		"user/ann view audit group/auditors readAudit acme/finance",
	}
	if strings.Join(lines, "\n") != strings.Join(want, "\n") {
		t.Fatalf("access report:\n%s\nwant:\n%s", strings.Join(lines, "\n"), strings.Join(want, "\n"))
	}
	if _, err := f.admin.Do(ctx, "GET", "/api/v1/orgs/acme/contexts/ghost/access", nil, nil, nil, nil); cairn.ErrorCode(err) != cairn.ENotFound {
		t.Fatalf("report of a missing context: %v", err)
	}
}
