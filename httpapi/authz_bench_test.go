package httpapi

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/cairn-audit/cairn"
)

// BenchmarkAccess measures what access control adds to a request in the
// handler (no network): a server admin key (no policy evaluation) against
// a service account with grants (cached evaluation), on a write, an event
// read (one audit record through the group commit, not waited for) and a
// group-scoped search.
func BenchmarkAccess(b *testing.B) {
	f := newAZFixture(b, nil)
	writer := f.principal("acme", "writer", &cairn.Policy{Name: "w", Context: "app",
		Bindings: []cairn.Binding{{Permissions: []string{"writeAudit"}, Principals: []string{"$self"}}}})
	reader := f.principal("acme", "reader", &cairn.Policy{Name: "r", Context: "app",
		Bindings: []cairn.Binding{{Permissions: []string{"readAudit"}, Principals: []string{"$self"}, GroupPrefixes: []string{"acme/finance"}}}})
	for _, bc := range []struct {
		name, token, method, path, body string
	}{
		{"write/admin", f.admin.Token, "POST", "/api/v1/orgs/acme/contexts/app/events", `{"action":"x.y"}`},
		{"write/principal", writer.Token, "POST", "/api/v1/orgs/acme/contexts/app/events", `{"action":"x.y"}`},
		{"event/admin", f.admin.Token, "GET", "/api/v1/orgs/acme/contexts/app/events/" + f.events["finance"], ""},
		{"event/scoped", reader.Token, "GET", "/api/v1/orgs/acme/contexts/app/events/" + f.events["finance"], ""},
		{"search/admin", f.admin.Token, "GET", "/api/v1/orgs/acme/events?limit=10", ""},
		{"search/scoped", reader.Token, "GET", "/api/v1/orgs/acme/events?limit=10", ""},
		{"whoami/admin", f.admin.Token, "GET", "/api/v1/whoami", ""},
		{"whoami/principal", reader.Token, "GET", "/api/v1/whoami", ""},
	} {
		b.Run(bc.name, func(b *testing.B) {
			for b.Loop() {
				var body *strings.Reader
				if bc.body != "" {
					body = strings.NewReader(bc.body)
				}
				var req *http.Request
				if body != nil {
					req = httptest.NewRequest(bc.method, bc.path, body)
				} else {
					req = httptest.NewRequest(bc.method, bc.path, nil)
				}
				req.Header.Set("Authorization", "Bearer "+bc.token)
				w := httptest.NewRecorder()
				f.srv.ServeHTTP(w, req)
				if w.Code >= 300 {
					b.Fatalf("%d %s", w.Code, w.Body)
				}
			}
		})
	}
}
