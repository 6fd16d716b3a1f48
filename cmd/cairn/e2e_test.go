package main

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cairn-audit/cairn"
	"github.com/cairn-audit/cairn/httpapi"
	"github.com/transparency-dev/formats/log"
	"github.com/transparency-dev/merkle/rfc6962"
	"golang.org/x/mod/sumdb/note"
)

type writeResult struct {
	ID       string               `json:"id"`
	Seq      *int64               `json:"seq"`
	LeafHash string               `json:"leaf_hash"`
	Error    *httpapi.ErrorDetail `json:"error"`
}

func mustWrite(t *testing.T, p *proc, ctxName string, body string, o httpapi.WriteOptions) (int, []byte) {
	t.Helper()
	status, resp, err := p.client.WriteEvents(t.Context(), "default", ctxName, []byte(body), o)
	if err != nil {
		t.Fatalf("write %s: %v", body, err)
	}
	return status, resp
}

// event is the decoded form of a returned event, for assertions.
type event struct {
	ID      string `json:"id"`
	Seq     int64  `json:"seq"`
	Context string `json:"context"`
	Org     string `json:"org"`
	Action  string `json:"action"`
}

func decodeItems(t *testing.T, items []json.RawMessage) []event {
	t.Helper()
	out := make([]event, len(items))
	for i, it := range items {
		if err := json.Unmarshal(it, &out[i]); err != nil {
			t.Fatal(err)
		}
	}
	return out
}

func TestEndToEnd(t *testing.T) { forEachEngine(t, testEndToEnd) }

func testEndToEnd(t *testing.T, e *serveEngine) {
	p := e.start(t, t.TempDir())
	ctx := ctxTimeout(t, 2*time.Minute)
	c := p.client

	if _, err := c.CreateContext(ctx, "default", "app", "the app", map[string]string{"team": "core"}); err != nil {
		t.Fatal(err)
	}

	t.Run("auth", func(t *testing.T) {
		anon := &httpapi.Client{BaseURL: p.addr}
		_, err := anon.Search(ctx, "default", nil)
		if cairn.ErrorCode(err) != cairn.EUnauthorized {
			t.Fatalf("search without a key: %v, want unauthorized", err)
		}
		bad := &httpapi.Client{BaseURL: p.addr, Token: "cairn_wrong"}
		if _, err := bad.Search(ctx, "default", nil); cairn.ErrorCode(err) != cairn.EUnauthorized {
			t.Fatalf("search with a wrong key: %v, want unauthorized", err)
		}
		for _, path := range []string{"/healthz", "/readyz"} {
			if _, err := anon.Do(ctx, "GET", path, nil, nil, nil, nil); err != nil {
				t.Fatalf("%s without a key: %v", path, err)
			}
		}
		if _, err := anon.Do(ctx, "GET", "/metrics", nil, nil, nil, nil); cairn.ErrorCode(err) != cairn.EUnauthorized {
			t.Fatalf("metrics without a key: %v", err)
		}
	})

	t.Run("builtin context refuses writes", func(t *testing.T) {
		_, _, err := c.WriteEvents(ctx, "default", "cairn", []byte(`{"action":"x.y"}`), httpapi.WriteOptions{})
		if cairn.ErrorCode(err) != cairn.EForbidden {
			t.Fatalf("write to cairn: %v, want forbidden", err)
		}
	})

	var single writeResult
	t.Run("single write", func(t *testing.T) {
		status, resp := mustWrite(t, p, "app", `{"action":"document.update","kind":"update",
			"actor":{"type":"user","id":"u1","email":"ann@example.com","name":"Ann"},
			"target":{"type":"document","id":"d1","name":"Plan"},"group":{"id":"g1"},
			"changes":[{"field":"title","old":"a","new":"b"},{"field":"password","old":"hunter2","new":"hunter3"}],
			"description":"renamed the plan"}`, httpapi.WriteOptions{})
		if status != http.StatusCreated {
			t.Fatalf("status %d", status)
		}
		if err := json.Unmarshal(resp, &single); err != nil || single.ID == "" || single.Seq == nil || *single.Seq != 0 {
			t.Fatalf("response %s: %v", resp, err)
		}
		raw, err := c.GetEvent(ctx, "default", "app", single.ID)
		if err != nil {
			t.Fatal(err)
		}
		var got struct {
			event
			Leaf     string `json:"leaf"`
			LeafHash string `json:"leaf_hash"`
		}
		if err := json.Unmarshal(raw, &got); err != nil {
			t.Fatal(err)
		}
		leaf, _ := base64.StdEncoding.DecodeString(got.Leaf)
		if h := base64.StdEncoding.EncodeToString(rfc6962.DefaultHasher.HashLeaf(leaf)); h != got.LeafHash || h != single.LeafHash {
			t.Fatalf("leaf hash %s, event says %s, write said %s", h, got.LeafHash, single.LeafHash)
		}
		if got.Seq != 0 || got.Context != "app" || got.Org != "default" || got.Action != "document.update" {
			t.Fatalf("event = %+v", got.event)
		}
		if bytes.Contains(leaf, []byte("hunter2")) || bytes.Contains(raw, []byte("hunter2")) {
			t.Fatalf("a password reached the log: %s", leaf)
		}
	})

	t.Run("batch writes", func(t *testing.T) {
		status, resp := mustWrite(t, p, "app", `[{"action":"a.one"},{"nope":1},{"action":"a.two"}]`, httpapi.WriteOptions{})
		var br struct{ Items []writeResult }
		if err := json.Unmarshal(resp, &br); err != nil || status != http.StatusCreated || len(br.Items) != 3 {
			t.Fatalf("batch: %d %s", status, resp)
		}
		if br.Items[0].ID == "" || br.Items[1].Error == nil || br.Items[1].Error.Code != cairn.EInvalid || br.Items[2].ID == "" {
			t.Fatalf("batch items = %s", resp)
		}
		if *br.Items[2].Seq != *br.Items[0].Seq+1 {
			t.Fatalf("batch seqs not contiguous: %s", resp)
		}
		status, resp = mustWrite(t, p, "app", "{\"action\":\"n.one\"}\n\n{\"action\":\"n.two\"}\n", httpapi.WriteOptions{ContentType: "application/x-ndjson"})
		if err := json.Unmarshal(resp, &br); err != nil || status != http.StatusCreated || len(br.Items) != 2 || br.Items[1].ID == "" {
			t.Fatalf("ndjson: %d %s", status, resp)
		}
		status, resp = mustWrite(t, p, "app", `{"action":"a.async"}`, httpapi.WriteOptions{Async: true})
		if err := json.Unmarshal(resp, &single); status != http.StatusAccepted || err != nil || single.ID == "" {
			t.Fatalf("async: %d %s", status, resp)
		}
	})

	t.Run("idempotency", func(t *testing.T) {
		body := `[{"action":"pay.create"},{"action":"pay.capture"}]`
		_, first := mustWrite(t, p, "app", body, httpapi.WriteOptions{IdempotencyKey: "order-7"})
		_, again := mustWrite(t, p, "app", body, httpapi.WriteOptions{IdempotencyKey: "order-7"})
		if !bytes.Equal(first, again) {
			t.Fatalf("replay differs:\n%s\n%s", first, again)
		}
		_, _, err := c.WriteEvents(ctx, "default", "app", []byte(`[{"action":"pay.refund"}]`), httpapi.WriteOptions{IdempotencyKey: "order-7"})
		if cairn.ErrorCode(err) != cairn.EConflict {
			t.Fatalf("reused key with another body: %v, want conflict", err)
		}
	})

	t.Run("query filters", func(t *testing.T) {
		cases := []struct {
			q    url.Values
			want []string // actions, newest first
		}{
			{url.Values{"action": {"document.update"}}, []string{"document.update"}},
			{url.Values{"action": {"pay.*"}}, []string{"pay.capture", "pay.create"}},
			{url.Values{"kind": {"update"}}, []string{"document.update"}},
			{url.Values{"outcome": {"failure"}}, nil},
			{url.Values{"actor.id": {"u1"}}, []string{"document.update"}},
			{url.Values{"actor.type": {"user"}}, []string{"document.update"}},
			{url.Values{"actor.email": {"ann@example.com"}}, []string{"document.update"}},
			{url.Values{"target.type": {"document"}, "target.id": {"d1"}}, []string{"document.update"}},
			{url.Values{"group.id": {"g1"}}, []string{"document.update"}},
			{url.Values{"q": {"renamed"}}, []string{"document.update"}},
			{url.Values{"q": {"Plan"}}, []string{"document.update"}},
			{url.Values{"context": {"app"}, "action": {"n.*"}}, []string{"n.two", "n.one"}},
			{url.Values{"since": {time.Now().Add(time.Hour).Format(time.RFC3339)}}, nil},
			{url.Values{"until": {"2000-01-01T00:00:00Z"}}, nil},
		}
		for _, tc := range cases {
			page, err := c.Search(ctx, "default", tc.q)
			if err != nil {
				t.Fatalf("%v: %v", tc.q, err)
			}
			var got []string
			for _, e := range decodeItems(t, page.Items) {
				got = append(got, e.Action)
			}
			if strings.Join(got, ",") != strings.Join(tc.want, ",") {
				t.Errorf("%v: got %v, want %v", tc.q, got, tc.want)
			}
		}
		for _, bad := range []url.Values{{"limit": {"0"}}, {"limit": {"1001"}}, {"cursor": {"garbage"}},
			{"since": {"yesterday"}}, {"actor_id": {"u1"}}} {
			if _, err := c.Search(ctx, "default", bad); cairn.ErrorCode(err) != cairn.EInvalid {
				t.Errorf("%v: %v, want invalid", bad, err)
			}
		}
	})

	t.Run("trail and cli", func(t *testing.T) {
		page, err := c.Trail(ctx, "default", "document", "d1", nil)
		if err != nil || len(page.Items) != 1 {
			t.Fatalf("trail: %v %d", err, len(page.Items))
		}
		out, err := p.cli(t, `{"action":"cli.write","target":{"type":"document","id":"d1"}}`, "events", "write", "--context", "app")
		if err != nil || !strings.Contains(out, `"id"`) {
			t.Fatalf("cli write: %q %v", out, err)
		}
		out, err = p.cli(t, "", "events", "trail", "document", "d1")
		if err != nil || strings.Count(out, "\n") != 2 || !strings.Contains(strings.Split(out, "\n")[0], "cli.write") {
			t.Fatalf("cli trail: %q %v", out, err)
		}
		out, err = p.cli(t, "", "events", "query", "--action", "cli.*", "--context", "app")
		if err != nil || strings.Count(out, "\n") != 1 {
			t.Fatalf("cli query: %q %v", out, err)
		}
		if _, err := p.cli(t, "", "events", "query", "--limit", "x"); err == nil {
			t.Fatal("cli accepted a bad flag")
		}
	})

	t.Run("checkpoint", func(t *testing.T) {
		cv, err := c.GetContext(ctx, "default", "app")
		if err != nil {
			t.Fatal(err)
		}
		vkey, err := c.VerifierKey(ctx, "default", "app")
		if err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(vkey, "cairn.local/default/app+") {
			t.Fatalf("verifier key %q", vkey)
		}
		cp := waitCheckpoint(t, p, "app", cv.Size)
		verifyCheckpoint(t, cp, "cairn.local/default/app", vkey, cv.Size, cv.Root)
		resp, err := http.Get(p.addr + "/log/default/app/checkpoint")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if ct := resp.Header.Get("Content-Type"); ct != "text/plain; charset=utf-8" {
			t.Fatalf("checkpoint content type %q", ct)
		}
	})

	t.Run("contexts", func(t *testing.T) {
		if _, err := c.CreateContext(ctx, "default", "app", "", nil); cairn.ErrorCode(err) != cairn.EConflict {
			t.Fatalf("duplicate context: %v", err)
		}
		if _, err := c.CreateContext(ctx, "default", "bad name", "", nil); cairn.ErrorCode(err) != cairn.EInvalid {
			t.Fatalf("bad name: %v", err)
		}
		var v httpapi.ContextView
		if _, err := c.Do(ctx, "PATCH", "/api/v1/orgs/default/contexts/app", nil,
			strings.NewReader(`{"description":"edited","redaction":[{"field":"ssn","mode":"mask"}]}`), nil, &v); err != nil {
			t.Fatal(err)
		}
		if v.Description != "edited" || v.Tags["team"] != "core" || len(v.Redaction) != 1 {
			t.Fatalf("patched = %+v", v)
		}
		var list struct{ Items []httpapi.ContextView }
		if _, err := c.Do(ctx, "GET", "/api/v1/orgs/default/contexts", nil, nil, nil, &list); err != nil || len(list.Items) != 2 {
			t.Fatalf("list: %v %+v", err, list)
		}
		if _, err := c.Do(ctx, "DELETE", "/api/v1/orgs/default/contexts/app", nil, nil, nil, nil); err == nil {
			t.Fatal("DELETE of a context succeeded")
		}
		_, resp := mustWrite(t, p, "app", `{"action":"hr.update","changes":[{"field":"ssn","old":"123-45-6789","new":"987-65-4321"}]}`, httpapi.WriteOptions{})
		if err := json.Unmarshal(resp, &single); err != nil {
			t.Fatal(err)
		}
		raw, _ := c.GetEvent(ctx, "default", "app", single.ID)
		if bytes.Contains(raw, []byte("987-65-4321")) {
			t.Fatalf("context redaction rule not applied: %s", raw)
		}
	})
}

// waitCheckpoint polls until the log's checkpoint covers size (the server
// promises within 1 s; the poll allows more so a loaded CI machine does not
// fail a correctness test on timing).
func waitCheckpoint(t *testing.T, p *proc, ctxName string, size int64) []byte {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		cp, err := p.client.Checkpoint(t.Context(), "default", ctxName)
		if err == nil {
			var n int64
			lines := strings.Split(string(cp), "\n")
			if len(lines) > 1 {
				fmt.Sscan(lines[1], &n)
			}
			if n >= size {
				return cp
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no checkpoint of size >= %d: %s %v", size, cp, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// verifyCheckpoint checks a checkpoint with two independent parsers and the
// published key, and that it commits to the expected tree.
func verifyCheckpoint(t *testing.T, cp []byte, origin, vkey string, size int64, root string) {
	t.Helper()
	v, err := note.NewVerifier(vkey)
	if err != nil {
		t.Fatalf("verifier key %q: %v", vkey, err)
	}
	if _, err := note.Open(cp, note.VerifierList(v)); err != nil {
		t.Fatalf("note.Open: %v\n%s", err, cp)
	}
	parsed, _, _, err := log.ParseCheckpoint(cp, origin, v)
	if err != nil {
		t.Fatalf("ParseCheckpoint: %v", err)
	}
	if int64(parsed.Size) != size || base64.StdEncoding.EncodeToString(parsed.Hash) != root {
		t.Fatalf("checkpoint size %d root %x, want %d %s", parsed.Size, parsed.Hash, size, root)
	}
	// Negative: another origin, a flipped signature.
	if _, _, _, err := log.ParseCheckpoint(cp, origin+"x", v); err == nil {
		t.Fatal("checkpoint accepted for another origin")
	}
	bad := bytes.Clone(cp)
	bad[len(bad)-5] ^= 1
	if _, err := note.Open(bad, note.VerifierList(v)); err == nil {
		t.Fatal("checkpoint with a corrupted signature accepted")
	}
}

// TestPagingWhileWriting pages through 10,000 events with a cursor while
// other clients keep writing: every event that existed when paging began
// is seen exactly once, and nothing is seen twice.
func TestPagingWhileWriting(t *testing.T) { forEachEngine(t, testPagingWhileWriting) }

func testPagingWhileWriting(t *testing.T, e *serveEngine) {
	p := e.start(t, t.TempDir())
	ctx := ctxTimeout(t, 3*time.Minute)
	if _, err := p.client.CreateContext(ctx, "default", "app", "", nil); err != nil {
		t.Fatal(err)
	}
	initial := map[string]bool{}
	for b := range 10 {
		var sb strings.Builder
		sb.WriteString("[")
		for i := range 1000 {
			if i > 0 {
				sb.WriteString(",")
			}
			fmt.Fprintf(&sb, `{"action":"page.seed","target":{"type":"t","id":"%d"}}`, b*1000+i)
		}
		sb.WriteString("]")
		_, resp := mustWrite(t, p, "app", sb.String(), httpapi.WriteOptions{})
		var br struct{ Items []writeResult }
		if err := json.Unmarshal(resp, &br); err != nil || len(br.Items) != 1000 {
			t.Fatalf("seed batch: %v", err)
		}
		for _, it := range br.Items {
			initial[it.ID] = true
		}
	}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var written atomic.Int64
	for range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				if _, _, err := p.client.WriteEvents(ctx, "default", "app", []byte(`[{"action":"page.live"},{"action":"page.live"}]`), httpapi.WriteOptions{}); err != nil {
					t.Error(err)
					return
				}
				written.Add(2)
			}
		}()
	}
	seen := map[string]bool{}
	q := url.Values{"limit": {"97"}}
	pages := 0
	for {
		page, err := p.client.Search(ctx, "default", q)
		if err != nil {
			t.Fatal(err)
		}
		pages++
		for _, e := range decodeItems(t, page.Items) {
			if seen[e.ID] {
				t.Fatalf("event %s seen twice", e.ID)
			}
			seen[e.ID] = true
			if pages > 1 && !initial[e.ID] {
				t.Fatalf("event %s written after paging began showed up on page %d", e.ID, pages)
			}
		}
		if page.NextCursor == nil {
			break
		}
		q.Set("cursor", *page.NextCursor)
		time.Sleep(time.Millisecond) // let writers interleave
	}
	close(stop)
	wg.Wait()
	for id := range initial {
		if !seen[id] {
			t.Fatalf("event %s skipped", id)
		}
	}
	if written.Load() == 0 {
		t.Fatal("no concurrent writes happened during paging")
	}
	t.Logf("%d pages, %d events seen, %d written concurrently", pages, len(seen), written.Load())
}

// TestBadInput: malformed and invalid events get a clear 4xx with a stable
// code, and nothing is stored.
func TestBadInput(t *testing.T) { forEachEngine(t, testBadInput) }

func testBadInput(t *testing.T, e *serveEngine) {
	p := e.start(t, t.TempDir())
	ctx := ctxTimeout(t, time.Minute)
	if _, err := p.client.CreateContext(ctx, "default", "app", "", nil); err != nil {
		t.Fatal(err)
	}
	big := `{"action":"x.big","metadata":{"blob":"` + strings.Repeat("a", 70000) + `"}}`
	cases := []struct {
		name, body, ct string
		code           string
	}{
		{"malformed", `{"action":`, "", cairn.EInvalid},
		{"not an object", `"hello"`, "", cairn.EInvalid},
		{"wrong type", `{"action":42}`, "", cairn.EInvalid},
		{"missing action", `{"kind":"create"}`, "", cairn.EInvalid},
		{"unknown field", `{"action":"a.b","colour":"red"}`, "", cairn.EInvalid},
		{"server field", `{"action":"a.b","seq":5}`, "", cairn.EInvalid},
		{"bad kind", `{"action":"a.b","kind":"explode"}`, "", cairn.EInvalid},
		{"invalid utf-8", "{\"action\":\"a.\xff\"}", "", cairn.EInvalid},
		{"duplicate key", `{"action":"a.b","action":"c.d"}`, "", cairn.EInvalid},
		{"big integer", `{"action":"a.b","metadata":{"n":9007199254740993}}`, "", cairn.EInvalid},
		{"oversize event", big, "", cairn.ETooLarge},
		{"oversize description", `{"action":"a.b","description":"` + strings.Repeat("d", 20000) + `"}`, "", cairn.EInvalid},
		{"empty body", ``, "", cairn.EInvalid},
		{"empty batch", `[]`, "", cairn.EInvalid},
		{"all invalid batch", `[{"x":1},{"y":2}]`, "", cairn.EInvalid},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, resp, err := p.client.WriteEvents(ctx, "default", "app", []byte(tc.body), httpapi.WriteOptions{ContentType: tc.ct})
			if got := cairn.ErrorCode(err); got != tc.code {
				t.Fatalf("error %v (%s), want code %s", err, resp, tc.code)
			}
		})
	}
	t.Run("too many events", func(t *testing.T) {
		body := "[" + strings.Repeat(`{"action":"a.b"},`, 10000) + `{"action":"a.b"}]`
		_, _, err := p.client.WriteEvents(ctx, "default", "app", []byte(body), httpapi.WriteOptions{})
		if cairn.ErrorCode(err) != cairn.ETooLarge || !strings.Contains(err.Error(), "10000") {
			t.Fatalf("10,001 events: %v", err)
		}
	})
	t.Run("body over 32 MiB", func(t *testing.T) {
		body := bytes.Repeat([]byte(" "), 33<<20)
		_, _, err := p.client.WriteEvents(ctx, "default", "app", body, httpapi.WriteOptions{})
		if cairn.ErrorCode(err) != cairn.ETooLarge {
			t.Fatalf("33 MiB body: %v", err)
		}
	})
	cv, err := p.client.GetContext(ctx, "default", "app")
	if err != nil {
		t.Fatal(err)
	}
	if cv.Size != 0 {
		t.Fatalf("bad input stored %d events", cv.Size)
	}
	page, err := p.client.Search(ctx, "default", nil)
	if err != nil || len(page.Items) != 0 {
		t.Fatalf("search after bad input: %v %d items", err, len(page.Items))
	}
}
