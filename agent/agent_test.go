package agent

import (
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cairn-audit/cairn"
)

func TestJournalRecovery(t *testing.T) {
	dir := t.TempDir()
	j, err := openJournal(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"a", "b", "c"} {
		if err := j.Append(&Record{ID: id, Kind: KindControlPlane, Path: "/p", Body: []byte(`{"x":1}`)}); err != nil {
			t.Fatal(err)
		}
	}
	if err := j.Done(j.Pending()[0]); err != nil {
		t.Fatal(err)
	}
	// A write that crashed before its rename was never acknowledged.
	os.WriteFile(filepath.Join(dir, "00000000000000000009.rec.tmp"), []byte("{"), 0o600)

	j, err = openJournal(dir)
	if err != nil {
		t.Fatal(err)
	}
	if got := j.Len(); got != 2 {
		t.Fatalf("recovered %d records, want 2", got)
	}
	if h := j.Pending()[0]; h.ID != "b" || string(h.Body) != `{"x":1}` {
		t.Fatalf("head = %+v", h)
	}
	if err := j.Append(&Record{ID: "d"}); err != nil {
		t.Fatal(err)
	}
	if j.pending[2].ID != "d" || j.pending[2].seq <= j.pending[1].seq {
		t.Fatalf("new record not after the recovered ones: %+v", j.pending)
	}
	if _, err := os.Stat(filepath.Join(dir, "00000000000000000009.rec.tmp")); !os.IsNotExist(err) {
		t.Fatalf("unfinished write left behind: %v", err)
	}
}

// TestForwardRetries: the agent retries while the server fails, sends the
// same idempotency key every time, and parks an event the server refuses
// as invalid without blocking the ones behind it.
func TestForwardRetries(t *testing.T) {
	var mu sync.Mutex
	keys := map[string]int{}
	failures := 3
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		mu.Lock()
		defer mu.Unlock()
		if r.Header.Get("Authorization") != "Bearer tok" || r.Header.Get("Cairn-Event-Time") == "" {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		if strings.HasSuffix(r.URL.Path, "/missing") {
			w.WriteHeader(http.StatusNotFound) // a context not created yet
			return
		}
		keys[r.Header.Get("Idempotency-Key")]++
		if strings.Contains(string(body), "bad") {
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		if failures > 0 {
			failures--
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		w.WriteHeader(http.StatusCreated)
		w.Write([]byte(`{"id":"x","message":"ok"}`))
	}))
	defer srv.Close()
	dir := t.TempDir()
	a, err := Open(t.Context(), Config{Listen: "127.0.0.1:0", Server: srv.URL, Token: "tok", Org: "o", Journal: dir,
		MaxBackoff: 20 * time.Millisecond, Check: func(string, []byte) error { return nil }})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	// A record for a context the server does not have holds back only
	// its own destination.
	resp, err := http.Post("http://"+a.Addr()+"/audit/org/o/auditctx/missing?async=true", "application/json", strings.NewReader(`{"n":0}`))
	if err != nil || resp.StatusCode != http.StatusAccepted {
		t.Fatalf("post: %v %v", resp, err)
	}
	resp.Body.Close()
	for _, b := range []string{`{"n":1}`, `{"bad":1}`, `{"n":2}`} {
		resp, err := http.Post("http://"+a.Addr()+"/audit/org/o/auditctx/c?async=true", "application/json", strings.NewReader(b))
		if err != nil || resp.StatusCode != http.StatusAccepted {
			t.Fatalf("post: %v %v", resp, err)
		}
		resp.Body.Close()
	}
	// A synchronous write waits for the server's answer.
	resp, err = http.Post("http://"+a.Addr()+"/audit/org/o/auditctx/c", "application/json", strings.NewReader(`{"n":3}`))
	if err != nil || resp.StatusCode != http.StatusCreated {
		t.Fatalf("sync post: %v %v", resp, err)
	}
	resp.Body.Close()
	if a.Pending() != 1 {
		t.Fatalf("%d pending after the sync write, want 1 (the held-back one)", a.Pending())
	}
	mu.Lock()
	defer mu.Unlock()
	if len(keys) != 4 {
		t.Fatalf("%d distinct idempotency keys, want 4", len(keys))
	}
	rejected, _ := os.ReadDir(filepath.Join(dir, rejectedDir))
	if len(rejected) != 1 {
		t.Fatalf("%d rejected records, want 1", len(rejected))
	}
}

func TestConfigRefusesNonLoopback(t *testing.T) {
	for _, listen := range []string{"0.0.0.0:43000", ":43000", "10.0.0.1:43000", "example.com:1"} {
		c := Config{Listen: listen, Server: "http://x", Token: "t", Org: "o", Journal: "j", Check: func(string, []byte) error { return nil }}
		if err := c.Validate(); cairn.ErrorCode(err) != cairn.EInvalid {
			t.Errorf("%s: %v, want invalid", listen, err)
		}
	}
	for _, listen := range []string{"127.0.0.1:43000", "[::1]:0", "localhost:43000"} {
		c := Config{Listen: listen, Server: "http://x", Token: "t", Org: "o", Journal: "j", Check: func(string, []byte) error { return nil }}
		if err := c.Validate(); err != nil {
			t.Errorf("%s: %v", listen, err)
		}
	}
}
