package httpapi

import (
	"net/http"
	"testing"
	"time"

	"github.com/cairn-audit/cairn"
	"github.com/google/uuid"
)

// grantedKey creates a service account in org holding perm on context ctx
// ("*" for all) and returns an API key of it.
func (f *fixture) grantedKey(t *testing.T, org, name, perm, ctx string) string {
	t.Helper()
	as, ok := f.store.Store.(cairn.AccessStore)
	if !ok {
		t.Fatal("the fixture's store keeps no principals")
	}
	now := time.Now()
	p := &cairn.Principal{ID: uuid.Must(uuid.NewV7()).String(), Org: org, Kind: cairn.PrincipalServiceAccount,
		Name: name, CreatedAt: now, UpdatedAt: now}
	if err := as.CreatePrincipal(t.Context(), p); err != nil {
		t.Fatal(err)
	}
	pol := &cairn.Policy{Org: org, Name: name + "-policy", Context: ctx,
		Bindings: []cairn.Binding{{Permissions: []string{perm}, Principals: []string{p.Ref()}}}}
	if _, err := as.PutPolicy(t.Context(), pol); err != nil {
		t.Fatal(err)
	}
	secret, k := NewAPIKey(org, name+"-key", false, now)
	k.PrincipalID = p.ID
	if err := f.store.CreateAPIKey(t.Context(), k); err != nil {
		t.Fatal(err)
	}
	return secret
}

// TestCompatPermissions: the compat surfaces need the same permissions as
// the native API — writeAudit on the context to write, unscoped readAudit
// to query — and a key of another org is refused.
func TestCompatPermissions(t *testing.T) {
	f := compatFixture(t, Config{})
	writerKey := f.grantedKey(t, "acme", "writer", "writeAudit", "app")
	writer := "Bearer " + writerKey
	reader := "Bearer " + f.grantedKey(t, "acme", "reader", "readAudit", "app")
	other := "Bearer " + f.grantedKey(t, "acme", "other-ctx", "writeAudit", "ops")
	const cp = `{"resource":{"id":"anyid123","type":"anytype"}}`
	for _, tc := range []struct {
		name, method, path, auth, body string
		want                           int
	}{
		{"cp write with writeAudit", "POST", "/audit/org/acme/auditctx/app", writer, cp, http.StatusCreated},
		{"cp write with readAudit only", "POST", "/audit/org/acme/auditctx/app", reader, cp, http.StatusForbidden},
		{"cp write to another context", "POST", "/audit/org/acme/auditctx/app", other, cp, http.StatusForbidden},
		{"cp query with readAudit", "GET", "/audit/org/acme?context=app", reader, "", http.StatusOK},
		{"cp query with writeAudit only", "GET", "/audit/org/acme?context=app", writer, "", http.StatusForbidden},
		{"cp write into another org", "POST", "/audit/org/rival/auditctx/app", writer, cp, http.StatusNotFound},
		{"retraced publish with writeAudit elsewhere", "POST", "/auditlog/publisher/v1/project/acme/event", "token=" + writerKey,
			`{"action":"a.b","crud":"c","group":{"id":"g"}}`, http.StatusForbidden},
	} {
		if status, body := f.do(t, tc.method, tc.path, tc.auth, tc.body); status != tc.want {
			t.Errorf("%s: %d %s, want %d", tc.name, status, body, tc.want)
		}
	}
}
