package httpapi

import (
	"crypto/ed25519"
	"crypto/rand"
	"net/http/httptest"
	"path/filepath"
	"testing"
	"time"

	"github.com/cairn-audit/cairn"
	"github.com/cairn-audit/cairn/ingest"
	"github.com/cairn-audit/cairn/merkle"
	"github.com/cairn-audit/cairn/sqlite"
	"github.com/cairn-audit/cairn/witness"
	fnote "github.com/transparency-dev/formats/note"
	"golang.org/x/mod/sumdb/note"
)

func cosignatureVKey(t *testing.T, name string) string {
	t.Helper()
	_, v, err := note.GenerateKey(rand.Reader, name)
	if err != nil {
		t.Fatal(err)
	}
	v04, err := fnote.VKeyToCosignatureV1(v)
	if err != nil {
		t.Fatal(err)
	}
	return v04
}

// TestContextWitnessConfig sets witnesses through the context API.
func TestContextWitnessConfig(t *testing.T) {
	s, err := sqlite.Open(t.Context(), sqlite.Config{Path: filepath.Join(t.TempDir(), "api.db")})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if _, err := s.CreateOrg(t.Context(), "acme"); err != nil {
		t.Fatal(err)
	}
	secret, key := NewAPIKey("acme", "test", true, time.Now())
	if err := s.CreateAPIKey(t.Context(), key); err != nil {
		t.Fatal(err)
	}
	_, old, _ := ed25519.GenerateKey(rand.Reader)
	_, cur, _ := ed25519.GenerateKey(rand.Reader)
	signer, err := merkle.NewSigner(cur, "test.local")
	if err != nil {
		t.Fatal(err)
	}
	now := time.Date(2026, 5, 1, 0, 0, 0, 0, time.UTC)
	if _, err := s.SyncSigningKeys(t.Context(), [][]byte{old.Public().(ed25519.PublicKey)}, now); err != nil {
		t.Fatal(err)
	}
	if _, err := s.SyncSigningKeys(t.Context(), [][]byte{cur.Public().(ed25519.PublicKey)}, now.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	ws, err := witness.New(witness.Config{Store: s, Signer: signer})
	if err != nil {
		t.Fatal(err)
	}
	c0 := ingest.NewCommitter(ingest.CommitterConfig{Store: s})
	defer c0.Close()
	srv := httptest.NewServer(New(Config{Store: s, Committer: c0, Signer: signer, Witnessing: ws, KeyHistory: s.SigningKeys}))
	defer srv.Close()
	c := &Client{BaseURL: srv.URL, Token: secret}
	ctx := t.Context()

	k1, k2 := cosignatureVKey(t, "w1.example"), cosignatureVKey(t, "w2.example")
	_, err = c.Do(ctx, "POST", "/api/v1/orgs/acme/contexts", nil, jsonBody(map[string]any{
		"name": "bad", "witnesses": []map[string]string{{"url": "https://w1.example", "key": "w1+00000000+BAAA"}}}), nil, nil)
	if cairn.ErrorCode(err) != cairn.EInvalid {
		t.Fatalf("create with a bad witness key: %v, want invalid", err)
	}
	if _, err := c.GetContext(ctx, "acme", "bad"); cairn.ErrorCode(err) != cairn.ENotFound {
		t.Fatalf("a rejected create left a context: %v", err)
	}

	var v ContextView
	_, err = c.Do(ctx, "POST", "/api/v1/orgs/acme/contexts", nil, jsonBody(map[string]any{
		"name": "app", "witnesses": []map[string]string{{"url": "https://w1.example/", "key": k1}},
		"witness_policy": "fail-closed"}), nil, &v)
	if err != nil {
		t.Fatal(err)
	}
	if len(v.Witnesses) != 1 || v.Witnesses[0].URL != "https://w1.example" || v.WitnessQuorum != 1 ||
		v.WitnessPolicy != cairn.WitnessFailClosed || v.WitnessStatus == nil || len(v.WitnessStatus.Witnesses) != 1 ||
		v.WitnessStatus.Witnesses[0].Name != "w1.example" || v.WitnessStatus.Witnesses[0].CosignedSize != nil {
		t.Fatalf("created context = %+v", v)
	}

	for _, bad := range []map[string]any{
		{"witness_quorum": 2},
		{"witness_policy": "sometimes"},
		{"witnesses": []map[string]string{{"url": "ftp://w", "key": k2}}},
		{"witnesses": []map[string]string{{"url": "https://w", "key": k1}, {"url": "https://v", "key": k1}}},
	} {
		if _, err := c.PatchContext(ctx, "acme", "app", bad); cairn.ErrorCode(err) != cairn.EInvalid {
			t.Errorf("patch %v: %v, want invalid", bad, err)
		}
	}
	got, err := c.PatchContext(ctx, "acme", "app", map[string]any{"description": "d",
		"witnesses": []map[string]string{{"url": "https://w1.example", "key": k1}, {"url": "https://w2.example", "key": k2}}})
	if err != nil {
		t.Fatal(err)
	}
	if got.Description != "d" || len(got.Witnesses) != 2 || got.WitnessQuorum != 2 || got.WitnessPolicy != cairn.WitnessFailClosed {
		t.Fatalf("patched context = %+v", got)
	}
	if got, err = c.PatchContext(ctx, "acme", "app", map[string]any{"witness_quorum": 1}); err != nil || got.WitnessQuorum != 1 || len(got.Witnesses) != 2 {
		t.Fatalf("patch quorum = %+v, %v", got, err)
	}
	// Fail-closed without a witnessed checkpoint: no checkpoint is public.
	if _, err := (&Client{BaseURL: srv.URL}).Checkpoint(ctx, "acme", "app"); cairn.ErrorCode(err) != cairn.ENotFound {
		t.Fatalf("checkpoint before the quorum: %v, want not_found", err)
	}
	if got, err = c.PatchContext(ctx, "acme", "app", map[string]any{"witnesses": []any{}}); err != nil || len(got.Witnesses) != 0 || got.WitnessQuorum != 0 {
		t.Fatalf("clearing witnesses = %+v, %v", got, err)
	}

	// The key history is public.
	keys, err := (&Client{BaseURL: srv.URL}).Keys(ctx, "acme", "app")
	if err != nil {
		t.Fatal(err)
	}
	origin, _ := signer.Origin("acme", "app")
	if keys.Origin != origin || len(keys.Keys) != 2 {
		t.Fatalf("keys = %+v", keys)
	}
	o, n := keys.Keys[0], keys.Keys[1]
	if o.Primary || o.Signing || o.RetiredAt == nil || !o.RetiredAt.Equal(now.Add(time.Hour)) || o.AddedAt == nil {
		t.Errorf("retired key = %+v", o)
	}
	if !n.Primary || !n.Signing || n.RetiredAt != nil || n.VerifierKey != signer.VerifierKey(origin) {
		t.Errorf("current key = %+v, want vkey %s", n, signer.VerifierKey(origin))
	}
	if _, err := (&Client{BaseURL: srv.URL}).Keys(ctx, "acme", "nope"); cairn.ErrorCode(err) != cairn.ENotFound {
		t.Fatalf("keys of a missing log: %v", err)
	}
}
