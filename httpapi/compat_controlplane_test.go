package httpapi

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/cairn-audit/cairn"
)

// compatFixture is a server over a fresh store whose writes are not gated.
func compatFixture(t *testing.T, cfg Config) *fixture {
	t.Helper()
	f := newFixture(t, cfg, 0)
	f.release()
	return f
}

// do sends a request with an Authorization header value (none if empty)
// and returns the status and body.
func (f *fixture) do(t *testing.T, method, path, auth, body string, header ...string) (int, []byte) {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, f.url+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

func TestControlPlaneWrite(t *testing.T) {
	f := compatFixture(t, Config{})
	const path = "/audit/org/acme/auditctx/app"
	minimal := `{"resource": {"id": "anyid123", "type": "anytype"}}`

	t.Run("seed minimal example, both auth forms", func(t *testing.T) {
		for _, auth := range []string{f.token, "Bearer " + f.token} {
			status, body := f.do(t, "POST", path+"?async=true", auth, minimal)
			var res CPWriteResult
			if status != http.StatusAccepted || json.Unmarshal(body, &res) != nil || res.ID == "" || res.Message == "" {
				t.Fatalf("async write: %d %s", status, body)
			}
			status, body = f.do(t, "POST", path, auth, minimal)
			if status != http.StatusCreated || json.Unmarshal(body, &res) != nil || res.ID == "" {
				t.Fatalf("sync write: %d %s", status, body)
			}
			// The native API sees the compat write.
			status, body = f.do(t, "GET", "/api/v1/orgs/acme/contexts/app/events/"+res.ID, "Bearer "+f.token, "")
			if status != http.StatusOK || !strings.Contains(string(body), `"target":{"id":"anyid123","type":"anytype"}`) {
				t.Fatalf("native read: %d %s", status, body)
			}
		}
	})

	t.Run("rejections", func(t *testing.T) {
		cases := []struct {
			name, path, auth, body, code string
		}{
			{"no key", path, "", minimal, cairn.EUnauthorized},
			{"wrong key", path, "cairn_nope", minimal, cairn.EUnauthorized},
			{"unknown field", path, f.token, `{"resource":{"id":"a","type":"b"},"extra":1}`, cairn.EInvalid},
			{"unknown nested field", path, f.token, `{"resource":{"id":"a","type":"b","colour":"red"}}`, cairn.EInvalid},
			{"no resource", path, f.token, `{"action":{"type":"create"}}`, cairn.EInvalid},
			{"no resource id", path, f.token, `{"resource":{"type":"b"}}`, cairn.EInvalid},
			{"no resource type", path, f.token, `{"resource":{"id":"a"}}`, cairn.EInvalid},
			{"case-folded name", path, f.token, `{"Resource":{"id":"a","type":"b"}}`, cairn.EInvalid},
			{"duplicate member", path, f.token, `{"resource":{"id":"a","type":"b","id":"c"}}`, cairn.EInvalid},
			{"data not an object", path, f.token, `{"resource":{"id":"a","type":"b","data":[1]}}`, cairn.EInvalid},
			{"bad time", path, f.token, `{"resource":{"id":"a","type":"b"},"eventTime":"yesterday"}`, cairn.EInvalid},
			{"huge integer", path, f.token, `{"resource":{"id":"a","type":"b","data":{"n":9007199254740993}}}`, cairn.EInvalid},
			{"server-assigned id", path, f.token, `{"resource":{"id":"a","type":"b"},"id":"x"}`, cairn.EInvalid},
			{"context mismatch", path, f.token, `{"resource":{"id":"a","type":"b"},"context":{"org":"other"}}`, cairn.EInvalid},
			{"built-in context", "/audit/org/acme/auditctx/cairn", f.token, minimal, cairn.EForbidden},
			{"unknown context", "/audit/org/acme/auditctx/nope", f.token, minimal, cairn.ENotFound},
			{"other org", "/audit/org/other/auditctx/app", f.token, minimal, cairn.ENotFound},
			{"bad async", path + "?async=maybe", f.token, minimal, cairn.EInvalid},
		}
		for _, tc := range cases {
			status, body := f.do(t, "POST", tc.path, tc.auth, tc.body)
			if got := errCode(body); got != tc.code || status != statusOf[tc.code] {
				t.Errorf("%s: %d %s, want %s", tc.name, status, got, tc.code)
			}
		}
	})

	t.Run("idempotency key", func(t *testing.T) {
		_, a := f.do(t, "POST", path, f.token, minimal, "Idempotency-Key", "k1")
		_, b := f.do(t, "POST", path, f.token, minimal, "Idempotency-Key", "k1")
		var ra, rb CPWriteResult
		json.Unmarshal(a, &ra)
		json.Unmarshal(b, &rb)
		if ra.ID == "" || ra.ID != rb.ID {
			t.Fatalf("replayed write got another id: %s vs %s", a, b)
		}
		status, body := f.do(t, "POST", path, f.token, `{"resource":{"id":"other","type":"t"}}`, "Idempotency-Key", "k1")
		if status != http.StatusConflict || errCode(body) != cairn.EConflict {
			t.Fatalf("key reused with another body: %d %s", status, body)
		}
	})
}

func TestControlPlaneQuery(t *testing.T) {
	f := compatFixture(t, Config{})
	const path = "/audit/org/acme/auditctx/app"
	full := `{"eventTime":"2021-01-02T13:01:02.345Z",
		"subject":{"email":"bob@company.com","name":"Bob Johnson","claims":{"groups":["ops"]},"data":{"k":"v"}},
		"resource":{"id":"dfedd8b9","name":"my-workload","type":"workload","data":{"foo":"bar"}},
		"action":{"type":"delete","data":{"why":"cleanup"}},
		"result":{"status":"OK","message":"Object deleted"},
		"context":{"location":"aws-us-west-2","gvcAlias":"gm0b","podId":"pod-1","eventSource":"workload","data":{"x":1}}}`
	status, body := f.do(t, "POST", path, f.token, full)
	var w CPWriteResult
	if status != http.StatusCreated || json.Unmarshal(body, &w) != nil {
		t.Fatalf("write: %d %s", status, body)
	}
	for i := range 5 {
		f.do(t, "POST", path, f.token, `{"resource":{"id":"r`+string(rune('0'+i))+`","type":"secret"},"action":{"type":"create"}}`)
	}

	get := func(t *testing.T, p string) CPQueryResult {
		t.Helper()
		status, body := f.do(t, "GET", p, f.token, "")
		var res CPQueryResult
		if status != http.StatusOK || json.Unmarshal(body, &res) != nil {
			t.Fatalf("GET %s: %d %s", p, status, body)
		}
		if res.Kind != "queryresult" || res.ItemKind != "auditevent" || len(res.Links) == 0 || res.Links[0].Rel != "self" {
			t.Fatalf("GET %s: envelope %s", p, body)
		}
		return res
	}

	t.Run("event shape", func(t *testing.T) {
		res := get(t, "/audit/org/acme/resource/id/dfedd8b9?context=app")
		if len(res.Items) != 1 {
			t.Fatalf("items = %d", len(res.Items))
		}
		b, _ := json.Marshal(res.Items[0])
		var got map[string]any
		json.Unmarshal(b, &got)
		for _, k := range []string{"id", "eventTime", "postedTime", "receivedTime", "context", "subject", "resource", "action", "result"} {
			if _, ok := got[k]; !ok {
				t.Errorf("missing %s in %s", k, b)
			}
		}
		it := res.Items[0]
		if it.ID != w.ID || it.EventTime != "2021-01-02T13:01:02.345Z" || it.Action["type"] != "delete" ||
			it.Resource["name"] != "my-workload" || it.Subject["email"] != "bob@company.com" ||
			it.Result["status"] != "OK" || it.Result["message"] != "Object deleted" ||
			it.Context["org"] != "acme" || it.Context["name"] != "app" || it.Context["location"] != "aws-us-west-2" ||
			it.Context["podId"] != "pod-1" || it.Context["remoteIp"] != "127.0.0.1" {
			t.Errorf("event = %s", b)
		}
		for _, k := range []string{"action", "subject"} {
			if d, _ := got[k].(map[string]any)["data"].(map[string]any); len(d) != 1 {
				t.Errorf("%s.data lost: %s", k, b)
			}
		}
	})

	t.Run("filters and paths", func(t *testing.T) {
		cases := []struct {
			path string
			n    int
		}{
			{"/audit/org/acme?context=app", 6},
			{"/audit/org/acme?context=app&actionType=create", 5},
			{"/audit/org/acme?context=app&resourceType=workload", 1},
			{"/audit/org/acme?context=app&fromEvent=2022-01-01T00:00:00Z", 5},
			{"/audit/org/acme?context=app&toEvent=2022-01-01T00:00:00Z", 1},
			{"/audit/org/acme?context=app&podId=pod-1", 1},
			{"/audit/org/acme/resource/name/my-workload?context=app", 1},
			{"/audit/org/acme/subject/email/bob@company.com?context=app", 1},
		}
		for _, tc := range cases {
			if res := get(t, tc.path); len(res.Items) != tc.n {
				t.Errorf("%s: %d items, want %d", tc.path, len(res.Items), tc.n)
			}
		}
		// Without context, Control Plane's default: the built-in context,
		// which holds the record of every query above (recorded without
		// waiting for their commit, so they may take a moment).
		res := get(t, "/audit/org/acme")
		for deadline := time.Now().Add(10 * time.Second); len(res.Items) == 0 && time.Now().Before(deadline); {
			time.Sleep(10 * time.Millisecond)
			res = get(t, "/audit/org/acme")
		}
		if len(res.Items) == 0 {
			t.Error("/audit/org/acme: no records of this test's own reads")
		}
		for _, it := range res.Items {
			if a, _ := it.Action["type"].(string); !strings.HasPrefix(a, "log.") {
				t.Errorf("/audit/org/acme: action %q is not one of the built-in context's read records", a)
			}
		}
	})

	t.Run("paging", func(t *testing.T) {
		seen := map[string]bool{}
		for page := 0; page < 3; page++ {
			res := get(t, "/audit/org/acme?context=app&pageSize=2&page="+string(rune('0'+page)))
			if len(res.Items) != 2 {
				t.Fatalf("page %d: %d items", page, len(res.Items))
			}
			hasNext := false
			for _, l := range res.Links {
				hasNext = hasNext || l.Rel == "next"
			}
			if hasNext != (page < 2) {
				t.Errorf("page %d: next link %v", page, hasNext)
			}
			for _, it := range res.Items {
				if seen[it.ID] {
					t.Fatalf("page %d repeats %s", page, it.ID)
				}
				seen[it.ID] = true
			}
		}
	})

	t.Run("by id", func(t *testing.T) {
		for _, p := range []string{"/audit/org/acme/id/" + w.ID, "/audit/org/acme/id/" + w.ID + "?context=app"} {
			status, body := f.do(t, "GET", p, f.token, "")
			var res CPItemResult
			if status != http.StatusOK || json.Unmarshal(body, &res) != nil || res.Item.ID != w.ID {
				t.Fatalf("GET %s: %d %s", p, status, body)
			}
		}
		status, body := f.do(t, "GET", "/audit/org/acme/id/0190d5a0-0000-7000-8000-000000000000", f.token, "")
		if status != http.StatusNotFound || errCode(body) != cairn.ENotFound {
			t.Fatalf("unknown id: %d %s", status, body)
		}
	})

	t.Run("bad parameters", func(t *testing.T) {
		for _, p := range []string{"?pageSize=0", "?pageSize=1001", "?page=-1", "?fromEvent=today", "?limit=5", "?context=nope"} {
			status, body := f.do(t, "GET", "/audit/org/acme"+p, f.token, "")
			want := cairn.EInvalid
			if p == "?context=nope" {
				want = cairn.ENotFound
			}
			if errCode(body) != want {
				t.Errorf("%s: %d %s, want %s", p, status, body, want)
			}
		}
	})
}
