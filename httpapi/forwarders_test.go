package httpapi_test

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cairn-audit/cairn"
	"github.com/cairn-audit/cairn/forward"
	"github.com/cairn-audit/cairn/forward/forwardtest"
	"github.com/cairn-audit/cairn/forward/webhook"
	"github.com/cairn-audit/cairn/httpapi"
	"github.com/cairn-audit/cairn/ingest"
	"github.com/cairn-audit/cairn/merkle"
	"github.com/cairn-audit/cairn/sqlite"
)

const hookToken = "hook-secret-token-0123456789"

type hookReceiver struct {
	mu      sync.Mutex
	auth    []string
	answers int
}

func (h *hookReceiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h.mu.Lock()
	h.auth = append(h.auth, r.Header.Get("Authorization"))
	h.answers++
	h.mu.Unlock()
	w.WriteHeader(http.StatusNoContent)
}

func newForwardingAPI(t *testing.T, withForwarding bool) (*httpapi.Client, *httpapi.Client, *hookReceiver, string) {
	t.Helper()
	ctx := t.Context()
	s, err := sqlite.Open(ctx, sqlite.Config{Path: filepath.Join(t.TempDir(), "api.db")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	for _, org := range []string{"acme", "other"} {
		if _, err := s.CreateOrg(ctx, org); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := s.CreateContext(ctx, &cairn.Context{Org: "acme", Name: "app"}); err != nil {
		t.Fatal(err)
	}
	secret, key := httpapi.NewAPIKey("acme", "test", true, time.Now()) // a server admin: forwarders need manage on all contexts
	otherSecret, otherKey := httpapi.NewAPIKey("other", "test", false, time.Now())
	for _, k := range []*cairn.APIKey{key, otherKey} {
		if err := s.CreateAPIKey(ctx, k); err != nil {
			t.Fatal(err)
		}
	}
	c := ingest.NewCommitter(ingest.CommitterConfig{Store: s})
	t.Cleanup(func() { c.Close() })
	_, priv, _ := ed25519.GenerateKey(rand.Reader)
	signer, _ := merkle.NewSigner(priv, "test.local")
	cfg := httpapi.Config{Store: s, Committer: c, Signer: signer}
	if withForwarding {
		svc, err := forward.New(forward.Config{Store: s, Sinks: []forward.SinkType{webhook.Type}, Guard: forwardtest.Loopback})
		if err != nil {
			t.Fatal(err)
		}
		cfg.Forwarding = svc
	}
	srv := httptest.NewServer(httpapi.New(cfg))
	t.Cleanup(srv.Close)
	rc := &hookReceiver{}
	hook := httptest.NewServer(rc)
	t.Cleanup(hook.Close)
	return &httpapi.Client{BaseURL: srv.URL, Token: secret}, &httpapi.Client{BaseURL: srv.URL, Token: otherSecret}, rc, hook.URL
}

func wantCode(t *testing.T, what string, err error, code string) {
	t.Helper()
	if got := cairn.ErrorCode(err); got != code {
		t.Fatalf("%s: %v (code %q), want %q", what, err, got, code)
	}
}

func TestForwarderAPI(t *testing.T) {
	c, other, rc, hookURL := newForwardingAPI(t, true)
	ctx := t.Context()
	in := httpapi.ForwarderView{Name: "siem", Contexts: []string{"app"}, ActionFilter: "user.*",
		Sink:  httpapi.SinkView{Type: "webhook", Settings: map[string]any{"uri": hookURL, "token": hookToken}},
		Batch: httpapi.BatchView{MaxEvents: 50, MaxDelay: "100ms"}}
	got, err := c.CreateForwarder(ctx, "acme", in)
	if err != nil {
		t.Fatal(err)
	}
	if got.Sink.Settings["token"] != "***" || got.Format != "json" || !*got.Enabled || got.Batch.MaxDelay != "100ms" ||
		got.Status == nil || got.Status.State != "running" || len(got.Status.Cursors) != 1 {
		t.Fatalf("created = %+v", got)
	}
	_, err = c.CreateForwarder(ctx, "acme", in)
	wantCode(t, "create twice", err, cairn.EConflict)

	// A view read back and sent again keeps the secret.
	v, err := c.GetForwarder(ctx, "acme", "siem")
	if err != nil {
		t.Fatal(err)
	}
	v.Format = "ocsf"
	if _, err := c.PutForwarder(ctx, "acme", "siem", *v); err != nil {
		t.Fatal(err)
	}
	res, err := c.TestForwarder(ctx, "acme", "siem")
	if err != nil || !res.OK || res.Answer != "HTTP 204" {
		t.Fatalf("test = %+v, %v", res, err)
	}
	rc.mu.Lock()
	auth := rc.auth[len(rc.auth)-1]
	rc.mu.Unlock()
	if auth != "Bearer "+hookToken {
		t.Fatalf("the receiver got %q: the stored token was lost in the round trip", auth)
	}

	// PATCH is a JSON merge patch over the current view.
	p, err := c.PatchForwarder(ctx, "acme", "siem", map[string]any{"action_filter": nil,
		"sink": map[string]any{"settings": map[string]any{"method": "PUT"}}})
	if err != nil {
		t.Fatal(err)
	}
	if p.ActionFilter != "" || p.Sink.Settings["method"] != "PUT" || p.Sink.Settings["token"] != "***" || p.Format != "ocsf" {
		t.Fatalf("patched = %+v", p)
	}
	v.Name = "renamed"
	_, err = c.PutForwarder(ctx, "acme", "siem", *v)
	wantCode(t, "rename", err, cairn.EInvalid)

	paused, err := c.PauseForwarder(ctx, "acme", "siem")
	if err != nil || *paused.Enabled || paused.Status.State != "paused" {
		t.Fatalf("pause = %+v, %v", paused, err)
	}
	resumed, err := c.ResumeForwarder(ctx, "acme", "siem")
	if err != nil || !*resumed.Enabled || resumed.Status.State != "running" {
		t.Fatalf("resume = %+v, %v", resumed, err)
	}
	zero := int64(0)
	st, err := c.ReplayForwarder(ctx, "acme", "siem", httpapi.ReplayInput{Context: "app", Seq: &zero})
	if err != nil || st.Cursors[0].NextSeq != 0 {
		t.Fatalf("replay = %+v, %v", st, err)
	}
	now := time.Now()
	_, err = c.ReplayForwarder(ctx, "acme", "siem", httpapi.ReplayInput{Seq: &zero, Time: &now})
	wantCode(t, "replay with seq and time", err, cairn.EInvalid)
	_, err = c.ReplayForwarder(ctx, "acme", "siem", httpapi.ReplayInput{})
	wantCode(t, "replay with neither", err, cairn.EInvalid)
	if st, err := c.ForwarderStatus(ctx, "acme", "siem"); err != nil || st.State != "running" {
		t.Fatalf("status = %+v, %v", st, err)
	}
	list, err := c.ListForwarders(ctx, "acme")
	if err != nil || len(list) != 1 || list[0].Status == nil {
		t.Fatalf("list = %+v, %v", list, err)
	}

	// No response ever carries the secret.
	for _, path := range []string{"/api/v1/orgs/acme/forwarders", "/api/v1/orgs/acme/forwarders/siem"} {
		var raw []byte
		if _, err := c.Do(ctx, "GET", path, nil, nil, nil, &raw); err != nil {
			t.Fatal(err)
		}
		if strings.Contains(string(raw), hookToken) {
			t.Fatalf("%s returned the secret: %s", path, raw)
		}
	}

	_, err = other.GetForwarder(ctx, "acme", "siem")
	wantCode(t, "another org's key", err, cairn.ENotFound)
	for _, body := range []string{`{"name":"x","nope":1}`, `{"name":"x","sink":{"type":"webhook","settings":{"uri":"` + hookURL + `"}},"batch":{"max_delay":"soon"}}`, `[]`} {
		_, err := c.Do(ctx, "POST", "/api/v1/orgs/acme/forwarders", nil, strings.NewReader(body), nil, nil)
		wantCode(t, "bad body "+body, err, cairn.EInvalid)
	}
	if err := c.DeleteForwarder(ctx, "acme", "siem"); err != nil {
		t.Fatal(err)
	}
	_, err = c.GetForwarder(ctx, "acme", "siem")
	wantCode(t, "get after delete", err, cairn.ENotFound)

	// Every change is in the built-in context, with the secret masked.
	page, err := c.Search(ctx, "acme", url.Values{"context": {cairn.BuiltinContext}, "action": {"forwarder.*"}, "limit": {"100"}})
	if err != nil {
		t.Fatal(err)
	}
	var actions []string
	for _, raw := range page.Items {
		if strings.Contains(string(raw), hookToken) {
			t.Fatalf("the built-in context holds the secret: %s", raw)
		}
		var e struct{ Action string }
		if err := json.Unmarshal(raw, &e); err != nil {
			t.Fatal(err)
		}
		actions = append(actions, e.Action)
	}
	for _, want := range []string{"forwarder.create", "forwarder.update", "forwarder.delete"} {
		if !slices.Contains(actions, want) {
			t.Errorf("no %s in the built-in context (have %v)", want, actions)
		}
	}
	wantCode(t, "delete twice", c.DeleteForwarder(ctx, "acme", "siem"), cairn.ENotFound)
}

func TestForwardingDisabled(t *testing.T) {
	c, _, _, _ := newForwardingAPI(t, false)
	_, err := c.ListForwarders(t.Context(), "acme")
	wantCode(t, "list without forwarding", err, cairn.EInvalid)
}
