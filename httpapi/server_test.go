package httpapi

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cairn-audit/cairn"
	"github.com/cairn-audit/cairn/ingest"
	"github.com/cairn-audit/cairn/merkle"
	"github.com/cairn-audit/cairn/sqlite"
)

// gatedStore holds every Append until the gate opens.
type gatedStore struct {
	cairn.Store
	gate chan struct{}
}

func (g *gatedStore) Append(ctx context.Context, reqs []*cairn.AppendRequest) ([]cairn.AppendResult, error) {
	<-g.gate
	return g.Store.Append(ctx, reqs)
}

type fixture struct {
	url       string
	token     string
	store     *gatedStore
	committer *ingest.Committer
	release   func()
}

func newFixture(t testing.TB, cfg Config, maxQueued int) *fixture {
	t.Helper()
	s, err := sqlite.Open(t.Context(), sqlite.Config{Path: filepath.Join(t.TempDir(), "api.db")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	if _, err := s.CreateOrg(t.Context(), "acme"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.CreateContext(t.Context(), &cairn.Context{Org: "acme", Name: "app"}); err != nil {
		t.Fatal(err)
	}
	secret, key := NewAPIKey("acme", "test", true, time.Now())
	if err := s.CreateAPIKey(t.Context(), key); err != nil {
		t.Fatal(err)
	}
	g := &gatedStore{Store: s, gate: make(chan struct{})}
	var once sync.Once
	release := func() { once.Do(func() { close(g.gate) }) }
	c := ingest.NewCommitter(ingest.CommitterConfig{Store: g, MaxQueued: maxQueued})
	t.Cleanup(func() { c.Close() })
	_, priv, _ := ed25519.GenerateKey(rand.Reader)
	signer, err := merkle.NewSigner(priv, "test.local")
	if err != nil {
		t.Fatal(err)
	}
	cfg.Store, cfg.Committer, cfg.Signer = g, c, signer
	if cfg.Access == nil {
		cfg.Access = s // principals and policies, as in production
	}
	srv := httptest.NewServer(New(cfg))
	t.Cleanup(srv.Close)
	t.Cleanup(release) // first: a failed test must not leave writes blocked
	return &fixture{url: srv.URL, token: secret, store: g, committer: c, release: release}
}

func (f *fixture) post(t *testing.T, body string) *http.Response {
	t.Helper()
	req, _ := http.NewRequest("POST", f.url+"/api/v1/orgs/acme/contexts/app/events", strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+f.token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp
}

// waitQueued waits until n events wait for the (gated) store. Until then a
// probing request could itself be queued and block on the gate.
func (f *fixture) waitQueued(t *testing.T, n int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for f.committer.Queued() < n {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %d queued events (have %d)", n, f.committer.Queued())
		}
		time.Sleep(time.Millisecond)
	}
}

// TestOverloadQueue: when the commit queue is full, writes get 503 with
// Retry-After at once instead of queueing without bound.
func TestOverloadQueue(t *testing.T) {
	f := newFixture(t, Config{}, 2)
	done := make(chan int, 2)
	for range 2 {
		go func() { done <- f.post(t, `{"action":"a.b"}`).StatusCode }()
	}
	f.waitQueued(t, 2)
	// Both requests are in the committer: the next one must bounce.
	resp := f.post(t, `{"action":"a.c"}`)
	if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" {
		t.Fatalf("write to a full queue: %d, Retry-After %q; want 503 with Retry-After", resp.StatusCode, resp.Header.Get("Retry-After"))
	}
	f.release()
	for range 2 {
		if code := <-done; code != http.StatusCreated {
			t.Fatalf("queued write answered %d", code)
		}
	}
}

// TestOverloadMemory: bodies held in memory are bounded too.
func TestOverloadMemory(t *testing.T) {
	body := `{"action":"a.b","description":"` + strings.Repeat("x", 1000) + `"}`
	// Room for exactly one body of this size (reserved twice over).
	f := newFixture(t, Config{MaxInflightBytes: int64(2 * len(body))}, 0)
	done := make(chan int, 1)
	go func() { done <- f.post(t, body).StatusCode }()
	f.waitQueued(t, 1) // the first body is held in memory until its commit
	if code := f.post(t, body).StatusCode; code != http.StatusServiceUnavailable {
		t.Fatalf("write past the memory bound answered %d, want 503", code)
	}
	f.release()
	if code := <-done; code != http.StatusCreated {
		t.Fatalf("first write answered %d", code)
	}
	if code := f.post(t, body).StatusCode; code != http.StatusCreated {
		t.Fatalf("write after the load passed answered %d", code)
	}
}

// TestErrorShape: every error carries the stable body and a request id.
func TestErrorShape(t *testing.T) {
	f := newFixture(t, Config{}, 0)
	f.release()
	c := &Client{BaseURL: f.url, Token: f.token}
	for _, tc := range []struct {
		method, path, body string
		code               string
	}{
		{"GET", "/api/v1/orgs/acme/events?limit=abc", "", cairn.EInvalid},
		{"GET", "/api/v1/orgs/acme/contexts/nope", "", cairn.ENotFound},
		{"GET", "/api/v1/orgs/other/events", "", cairn.ENotFound},
		{"GET", "/no/such/route", "", cairn.ENotFound},
		{"POST", "/api/v1/orgs/acme/contexts", `{"name":"x","bogus":1}`, cairn.EInvalid},
		{"POST", "/api/v1/orgs/acme/contexts/cairn/events", `{"action":"a.b"}`, cairn.EForbidden},
	} {
		var body *strings.Reader
		if tc.body != "" {
			body = strings.NewReader(tc.body)
		}
		var err error
		if body != nil {
			_, err = c.Do(t.Context(), tc.method, tc.path, nil, body, nil, nil)
		} else {
			_, err = c.Do(t.Context(), tc.method, tc.path, nil, nil, nil, nil)
		}
		if got := cairn.ErrorCode(err); got != tc.code {
			t.Errorf("%s %s: %v, want %s", tc.method, tc.path, err, tc.code)
		}
	}
	resp, err := http.Get(f.url + "/api/v1/orgs/acme/events")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized || resp.Header.Get("X-Request-Id") == "" || resp.Header.Get("WWW-Authenticate") == "" {
		t.Fatalf("anonymous search: %d, headers %v", resp.StatusCode, resp.Header)
	}
}
