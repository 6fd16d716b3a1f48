package httpapi

import (
	"encoding/json"
	"net/http"
	"testing"

	"github.com/cairn-audit/cairn"
)

func TestReplicatedWrite(t *testing.T) {
	f := compatFixture(t, Config{Compat: CompatConfig{ReplicatedContext: "legacy"}})
	// The seed's two examples, verbatim.
	curlBody := `{"action":"user.login.success", "description":"john@example.com logged in", "title":"User Login Success", "name":"login"}`
	jsonBody := `{
  "name": "user.login",
  "description": "john@example.com logged in successfully",
  "title": "User Login Success",
  "action": "user.login.success",
  "ip_address": "192.30.252.12"
}`
	for _, b := range []string{curlBody, jsonBody} {
		status, body := f.do(t, "POST", "/audit/v1/event", "Bearer "+f.token, b)
		if status != http.StatusCreated || len(body) != 0 {
			t.Fatalf("write: %d %q, want 201 and an empty body", status, body)
		}
	}
	// The context was created on first use and the native API sees both.
	status, body := f.do(t, "GET", "/api/v1/orgs/acme/events?context=legacy", "Bearer "+f.token, "")
	var page struct {
		Items []cairn.Event `json:"items"`
	}
	if status != http.StatusOK || json.Unmarshal(body, &page) != nil || len(page.Items) != 2 {
		t.Fatalf("native search: %d %s", status, body)
	}
	e := page.Items[0]
	if e.Action != "user.login.success" || e.Title != "User Login Success" || e.Fields["name"] != "user.login" ||
		e.Source == nil || e.Source.IP != "192.30.252.12" {
		t.Fatalf("mapped event = %+v", e)
	}

	for _, tc := range []struct {
		name, auth, body, code string
	}{
		{"no key", "", curlBody, cairn.EUnauthorized},
		{"unknown field", f.token, `{"action":"a","teamId":"t"}`, cairn.EInvalid},
		{"no action or name", f.token, `{"title":"t"}`, cairn.EInvalid},
		{"bad ip", f.token, `{"action":"a","ip_address":"somewhere"}`, cairn.EInvalid},
		{"not a string", f.token, `{"action":1}`, cairn.EInvalid},
	} {
		status, body := f.do(t, "POST", "/audit/v1/event", tc.auth, tc.body)
		if got := errCode(body); got != tc.code || status != statusOf[tc.code] {
			t.Errorf("%s: %d %s, want %s", tc.name, status, body, tc.code)
		}
	}
}
