package httpapi

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"io"
	"log/slog"
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
	"github.com/google/uuid"
)

// clock is a settable time source.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// syncBuffer is a goroutine-safe log sink.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// azFixture is a server over orgs acme (contexts app, ops) and rival
// (context app), with an admin key of acme, a fake clock and captured logs.
type azFixture struct {
	t      testing.TB
	url    string
	srv    *Server
	store  *sqlite.Store
	clock  *clock
	logs   *syncBuffer
	admin  *Client
	events map[string]string // name → event id in acme/app or rival/app
}

func newAZFixture(t testing.TB, mod func(*Config)) *azFixture {
	t.Helper()
	s, err := sqlite.Open(t.Context(), sqlite.Config{Path: filepath.Join(t.TempDir(), "az.db")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	ctx := t.Context()
	for _, org := range []string{"acme", "rival"} {
		if _, err := s.CreateOrg(ctx, org); err != nil {
			t.Fatal(err)
		}
		if _, err := s.CreateContext(ctx, &cairn.Context{Org: org, Name: "app"}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := s.CreateContext(ctx, &cairn.Context{Org: "acme", Name: "ops"}); err != nil {
		t.Fatal(err)
	}
	clk := &clock{t: time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC)}
	secret, key := NewAPIKey("acme", "bootstrap", true, clk.Now())
	if err := s.CreateAPIKey(ctx, key); err != nil {
		t.Fatal(err)
	}
	c := ingest.NewCommitter(ingest.CommitterConfig{Store: s})
	_, priv, _ := ed25519.GenerateKey(rand.Reader)
	signer, err := merkle.NewSigner(priv, "test.local")
	if err != nil {
		t.Fatal(err)
	}
	logs := &syncBuffer{}
	cfg := Config{Store: s, Committer: c, Signer: signer, Now: clk.Now,
		Logger: slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))}
	if mod != nil {
		mod(&cfg)
	}
	api := New(cfg)
	hs := httptest.NewServer(api)
	t.Cleanup(func() {
		hs.Close()
		api.Close()
		c.Close()
	})
	f := &azFixture{t: t, url: hs.URL, srv: api, store: s, clock: clk, logs: logs,
		admin: &Client{BaseURL: hs.URL, Token: secret}, events: map[string]string{}}
	for name, ev := range map[string]string{
		"finance": `{"action":"doc.read","group":{"id":"acme/finance/emea"},"target":{"type":"doc","id":"d1"}}`,
		"hr":      `{"action":"doc.read","group":{"id":"acme/hr"},"target":{"type":"doc","id":"d1"}}`,
		"rival":   `{"action":"doc.read","group":{"id":"acme/finance"},"target":{"type":"doc","id":"d1"}}`,
	} {
		org := "acme"
		if name == "rival" {
			org = "rival"
		}
		_, body, err := f.admin.WriteEvents(ctx, org, "app", []byte(ev), WriteOptions{})
		if err != nil {
			t.Fatal(err)
		}
		var wr WriteResult
		json.Unmarshal(body, &wr)
		f.events[name] = wr.ID
	}
	return f
}

// principal creates a service account with a key and the given policies
// (bindings naming the account as "$self"), straight in the store.
func (f *azFixture) principal(org, name string, pols ...*cairn.Policy) *Client {
	f.t.Helper()
	ctx := f.t.Context()
	now := f.clock.Now()
	p := &cairn.Principal{ID: uuid.Must(uuid.NewV7()).String(), Org: org, Kind: cairn.PrincipalServiceAccount, Name: name,
		CreatedAt: now, UpdatedAt: now}
	if err := f.store.CreatePrincipal(ctx, p); err != nil {
		f.t.Fatal(err)
	}
	for _, pol := range pols {
		cp := *pol
		cp.Org = org
		cp.Bindings = nil
		for _, b := range pol.Bindings {
			var refs []string
			for _, ref := range b.Principals {
				refs = append(refs, strings.ReplaceAll(ref, "$self", p.Ref()))
			}
			b.Principals = refs
			cp.Bindings = append(cp.Bindings, b)
		}
		if _, err := f.store.PutPolicy(ctx, &cp); err != nil {
			f.t.Fatal(err)
		}
	}
	secret, k := NewAPIKey(org, name+"-key", false, now)
	k.PrincipalID = p.ID
	if err := f.store.CreateAPIKey(ctx, k); err != nil {
		f.t.Fatal(err)
	}
	f.srv.forgetGrants()
	return &Client{BaseURL: f.url, Token: secret}
}

// do sends a request and returns the status and body.
func (f *azFixture) do(token, method, path, body string, header http.Header) (int, []byte, http.Header) {
	f.t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, _ := http.NewRequestWithContext(f.t.Context(), method, f.url+path, rd)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	for k, v := range header {
		req.Header[k] = v
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		f.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b, resp.Header
}

// builtin returns the events of org's built-in context, oldest first,
// waiting until at least n are there (reads are recorded asynchronously).
func (f *azFixture) builtin(org string, n int) []cairn.Event {
	f.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		p, err := f.store.SearchEvents(f.t.Context(), org, cairn.Filter{Context: cairn.BuiltinContext, Limit: 1000})
		if err != nil {
			f.t.Fatal(err)
		}
		if len(p.Items) >= n || time.Now().After(deadline) {
			out := make([]cairn.Event, len(p.Items))
			for i, it := range p.Items {
				json.Unmarshal(it.Leaf, &out[len(p.Items)-1-i])
			}
			return out
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// find returns the built-in events of org with the given action.
func (f *azFixture) find(org, action string, atLeast int) []cairn.Event {
	f.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		var out []cairn.Event
		for _, e := range f.builtin(org, 0) {
			if e.Action == action {
				out = append(out, e)
			}
		}
		if len(out) >= atLeast || time.Now().After(deadline) {
			return out
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func jsonUnmarshal(b []byte, v any) error { return json.Unmarshal(b, v) }
