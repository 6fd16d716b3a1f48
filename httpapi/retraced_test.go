package httpapi

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/cairn-audit/cairn"
	"github.com/cairn-audit/cairn/retraced"
)

const rbase = "/auditlog/publisher/v1/project/acme"

// retracedGoQuery is retraced-go's Search query with an 8-field mask
// (reference §9.1, tests/graphql_test.go).
const retracedGoQuery = `query Search($query: String!, $last: Int, $before: String) { search(query: $query, last: $last, before: $before) { totalCount, pageInfo { hasPreviousPage } edges { cursor node { id action crud created received actor { id name } group { id name } } } } }`

type gqlResult struct {
	Data struct {
		Search struct {
			TotalCount int `json:"totalCount"`
			PageInfo   struct {
				HasPreviousPage bool `json:"hasPreviousPage"`
				HasNextPage     bool `json:"hasNextPage"`
			} `json:"pageInfo"`
			Edges []struct {
				Cursor string                     `json:"cursor"`
				Node   map[string]json.RawMessage `json:"node"`
			} `json:"edges"`
		} `json:"search"`
	} `json:"data"`
	Errors []struct {
		Message string `json:"message"`
	} `json:"errors"`
}

func retracedErrStatus(t *testing.T, body []byte) (int, string) {
	t.Helper()
	var e RetracedError
	if err := json.Unmarshal(body, &e); err != nil || e.Type == "" {
		t.Fatalf("not a Retraced error: %s", body)
	}
	return e.Status, e.Type
}

// TestRetracedGoClient sends exactly the requests retraced-go sends
// (reference §9.1–9.2) and checks the answers it accepts.
func TestRetracedGoClient(t *testing.T) {
	f := compatFixture(t, Config{})
	auth := "Token token=" + f.token
	actorID := "2d1c4a6e-1d1b-4f7e-9c58-2f1b0f1c9a01"

	// ReportEvent ×10 with a full event, then retraced-go's minimal event
	// (crud "", group.name "", zero created).
	for i := range 10 {
		body := fmt.Sprintf(`{"action":"some.action","group":{"id":"g1","name":"Group One"},"created":"2021-01-0%dT10:00:00Z","crud":"c",`+
			`"actor":{"id":%q,"name":"Actor","href":"https://a.example/1","fields":{"dept":"eng"}},`+
			`"target":{"id":"t%d","name":"Target","href":"https://t.example","type":"doc","fields":{"k":"v"}},`+
			`"source_ip":"192.168.0.1","description":"did it","is_anonymous":false,"is_failure":false,`+
			`"fields":{"a":"1"},"component":"web","version":"abc123","external_id":"ext-%d","metadata":{"m":"n"}}`, i%9+1, actorID, i, i)
		status, resp := f.do(t, "POST", rbase+"/event", auth, body)
		var c RetracedCreated
		if status != http.StatusCreated || json.Unmarshal(resp, &c) != nil || len(c.ID) != 32 {
			t.Fatalf("ReportEvent: %d %s", status, resp)
		}
		// retraced-go recomputes the hash and fails on a mismatch.
		if want, _ := retraced.HashFromJSON([]byte(body), c.ID); c.Hash != want {
			t.Fatalf("hash %s, want %s", c.Hash, want)
		}
	}
	minimal := `{"action":"user.login","group":{"id":"g1","name":""},"created":"0001-01-01T00:00:00Z","crud":"","actor":{"id":"a1"}}`
	if status, resp := f.do(t, "POST", rbase+"/event", auth, minimal); status != http.StatusCreated {
		t.Fatalf("minimal retraced-go event: %d %s", status, resp)
	}

	t.Run("query paging with a field mask", func(t *testing.T) {
		var before string
		var ids []string
		for page := 1; ; page++ {
			vars := map[string]any{"last": 3, "query": "actor.id:" + actorID}
			if before != "" {
				vars["before"] = before
			}
			b, _ := json.Marshal(map[string]any{"query": retracedGoQuery, "variables": vars})
			status, resp := f.do(t, "POST", rbase+"/graphql", auth, string(b))
			var res gqlResult
			if status != http.StatusOK || json.Unmarshal(resp, &res) != nil || len(res.Errors) > 0 {
				t.Fatalf("page %d: %d %s", page, status, resp)
			}
			s := res.Data.Search
			if s.TotalCount != 10 {
				t.Fatalf("totalCount %d, want 10", s.TotalCount)
			}
			want := 3
			if page == 4 {
				want = 1
			}
			if len(s.Edges) != want {
				t.Fatalf("page %d: %d edges, want %d", page, len(s.Edges), want)
			}
			for _, e := range s.Edges {
				var got []string
				for k := range e.Node {
					got = append(got, k)
				}
				if len(e.Node) != 7 {
					t.Fatalf("unrequested fields present or requested ones missing: %v", got)
				}
				var created, received string
				json.Unmarshal(e.Node["created"], &created)
				json.Unmarshal(e.Node["received"], &received)
				if len(created) != len("2021-01-01T10:00:00Z") || !strings.HasSuffix(received, "Z") || strings.Contains(received, ".") {
					t.Fatalf("times not in Retraced's format: %s %s", created, received)
				}
				if string(e.Node["crud"]) != `"c"` || string(e.Node["group"]) != `{"id":"g1","name":"Group One"}` {
					t.Fatalf("node = %v", e.Node)
				}
				var id string
				json.Unmarshal(e.Node["id"], &id)
				ids = append(ids, id)
			}
			// Newest first by canonical time.
			if s.PageInfo.HasPreviousPage != (page < 4) {
				t.Fatalf("page %d: hasPreviousPage %v", page, s.PageInfo.HasPreviousPage)
			}
			if !s.PageInfo.HasPreviousPage {
				break
			}
			before = s.Edges[len(s.Edges)-1].Cursor
		}
		seen := map[string]bool{}
		for _, id := range ids {
			if seen[id] {
				t.Fatalf("id %s on two pages", id)
			}
			seen[id] = true
		}
	})

	t.Run("viewer token and sessions", func(t *testing.T) {
		status, resp := f.do(t, "GET", rbase+"/viewertoken?group_id=g1&is_admin=false&actor_id=viewer-1&view_log_action=", auth, "")
		var tok struct{ Token string }
		if status != http.StatusCreated || json.Unmarshal(resp, &tok) != nil || len(tok.Token) != 32 {
			t.Fatalf("GetViewerToken: %d %s", status, resp)
		}
		// retraced-go's DeleteViewerSessions path (without /viewer).
		status, resp = f.do(t, "DELETE", "/auditlog/v1/project/acme/group/g1/actor/viewer-1/viewersessions", auth, "")
		if status != http.StatusOK || len(resp) != 0 {
			t.Fatalf("DeleteViewerSessions: %d %s", status, resp)
		}
		status, _ = f.do(t, "POST", "/auditlog/viewer/v1/viewersession", "", `{"token":"`+tok.Token+`"}`)
		if status != http.StatusUnauthorized {
			t.Fatalf("deleted descriptor still makes sessions: %d", status)
		}
	})

	t.Run("query strings retraced-go renders", func(t *testing.T) {
		for _, q := range []string{`action:"user.*" crud:"c" actor.id:abc`, `actor.name:%!q(MISSING)Bob`,
			`received:2017-01-01T00:00:00Z,`, `received:,2030-01-01T00:00:00Z`} {
			b, _ := json.Marshal(map[string]any{"query": retracedGoQuery, "variables": map[string]any{"last": 3, "query": q}})
			if status, resp := f.do(t, "POST", rbase+"/graphql", auth, string(b)); status != http.StatusOK {
				t.Errorf("%s: %d %s", q, status, resp)
			}
		}
	})
}

func TestRetracedPublisher(t *testing.T) {
	f := compatFixture(t, Config{Compat: CompatConfig{RetracedContext: "vendor"}})
	auth := "token=" + f.token
	ev := `{"action":"a.b","crud":"u","actor":{"id":"u1"},"group":{"id":"g1","name":"G"},"target":{"id":"d1"}}`

	t.Run("auth", func(t *testing.T) {
		for _, a := range []string{"", "token=cairn_nope", "Bearer " + f.token} {
			status, resp := f.do(t, "POST", rbase+"/event", a, ev)
			if st, _ := retracedErrStatus(t, resp); status != http.StatusUnauthorized || st != 401 {
				t.Errorf("auth %q: %d %s", a, status, resp)
			}
		}
		// A token of another project is 401, as upstream (a server admin
		// key may act in every org, so this takes a key of acme's own).
		acmeOnly := "token=" + f.grantedKey(t, "acme", "publisher", "writeAudit", "*")
		status, resp := f.do(t, "POST", "/auditlog/publisher/v1/project/other/event", acmeOnly, ev)
		if status != http.StatusUnauthorized {
			t.Errorf("other project: %d %s", status, resp)
		}
	})

	t.Run("validation envelope", func(t *testing.T) {
		for _, b := range []string{`{"action":"a","crud":"c"}`, `{"action":"a","crud":"c","actor":{"id":"x"},"source_ip":"nope"}`,
			`{"action":"a","crud":"c","actor":{"id":"x"},"teamId":"t"}`} {
			status, resp := f.do(t, "POST", rbase+"/event", auth, b)
			if st, typ := retracedErrStatus(t, resp); status != 400 || st != 400 || typ != "ValidationError" {
				t.Errorf("%s: %d %s", b, status, resp)
			}
		}
	})

	t.Run("bulk", func(t *testing.T) {
		status, resp := f.do(t, "POST", rbase+"/event/bulk", auth, `{"events":[`+ev+`,`+ev+`]}`)
		var out []RetracedCreated
		if status != http.StatusCreated || json.Unmarshal(resp, &out) != nil || len(out) != 2 || out[0].ID == out[1].ID {
			t.Fatalf("bulk: %d %s", status, resp)
		}
		status, resp = f.do(t, "POST", rbase+"/event/bulk", auth, `{"events":[`+ev+`,{"action":"x"}]}`)
		var e RetracedError
		if status != 400 || json.Unmarshal(resp, &e) != nil || len(e.Invalid) != 1 || e.Invalid[0].Index != 1 || len(e.Invalid[0].Violations) == 0 {
			t.Fatalf("bulk with an invalid event: %d %s", status, resp)
		}
		many := strings.Repeat(ev+",", 50) + ev
		if status, resp = f.do(t, "POST", rbase+"/event/bulk", auth, `{"events":[`+many+`]}`); status != 400 {
			t.Fatalf("51 events: %d %s", status, resp)
		}
	})

	t.Run("native API sees Retraced writes in the configured context", func(t *testing.T) {
		status, resp := f.do(t, "GET", "/api/v1/orgs/acme/events?context=vendor", "Bearer "+f.token, "")
		var page struct{ Items []cairn.Event }
		if status != 200 || json.Unmarshal(resp, &page) != nil || len(page.Items) != 2 {
			t.Fatalf("native search: %d %s", status, resp)
		}
		if e := page.Items[0]; e.Kind != cairn.KindUpdate || e.Group.ID != "g1" || e.Actor.ID != "u1" {
			t.Fatalf("mapped event %+v", e)
		}
	})

	t.Run("legacy graphql route and output rules", func(t *testing.T) {
		f.do(t, "POST", rbase+"/event", auth, `{"action":"plain","crud":"r","actor":{"id":"u2"},"group":{"id":"g1"}}`)
		q := `{ search(query: "action:plain", first: 10) { totalCount edges { node { is_failure is_anonymous created group { id name } fields { key value } target { id } } } } }`
		status, resp := f.do(t, "POST", "/auditlog/publisher/v1/graphql", auth, `{"query":`+quote(q)+`}`)
		var res gqlResult
		if status != 200 || json.Unmarshal(resp, &res) != nil || res.Data.Search.TotalCount != 1 {
			t.Fatalf("legacy graphql: %d %s", status, resp)
		}
		n := res.Data.Search.Edges[0].Node
		// Not sent: null. A missing group name comes from the group's record.
		if string(n["is_failure"]) != "null" || string(n["created"]) != "null" || string(n["fields"]) != "[]" ||
			string(n["target"]) != `{"id":null}` || string(n["group"]) != `{"id":"g1","name":"G"}` {
			t.Fatalf("node = %s", resp)
		}
		for _, bad := range []string{`{ nope }`, `{ search { totalCount totalCount } }`, `{ search(first: 1, last: 1) { totalCount } }`, `{ search(query: "received:bad") { totalCount } }`} {
			if status, resp := f.do(t, "POST", rbase+"/graphql", auth, `{"query":`+quote(bad)+`}`); status != 400 || !strings.Contains(string(resp), `"errors"`) {
				t.Errorf("%s: %d %s", bad, status, resp)
			}
		}
	})

	t.Run("first/after ascending and searchPaginated", func(t *testing.T) {
		q := `{ search(query: "", first: 2) { totalCount pageInfo { hasNextPage } edges { cursor node { id } } } }`
		_, resp := f.do(t, "POST", rbase+"/graphql", auth, `{"query":`+quote(q)+`}`)
		var res gqlResult
		json.Unmarshal(resp, &res)
		if res.Data.Search.TotalCount != 3 || len(res.Data.Search.Edges) != 2 || !res.Data.Search.PageInfo.HasNextPage {
			t.Fatalf("first page: %s", resp)
		}
		q = `{ search(first: 2, after: ` + quote(res.Data.Search.Edges[1].Cursor) + `) { pageInfo { hasNextPage } edges { node { id } } } }`
		_, resp = f.do(t, "POST", rbase+"/graphql", auth, `{"query":`+quote(q)+`}`)
		json.Unmarshal(resp, &res)
		if len(res.Data.Search.Edges) != 1 || res.Data.Search.PageInfo.HasNextPage {
			t.Fatalf("second page: %s", resp)
		}
		q = `{ searchPaginated(query: "crud:u", pageOffset: 1, pageLimit: 1) { totalCount edges { node { action } } } }`
		status, resp := f.do(t, "POST", rbase+"/graphql", auth, `{"query":`+quote(q)+`}`)
		if status != 200 || !strings.Contains(string(resp), `"totalCount":2`) || strings.Count(string(resp), `"action"`) != 1 {
			t.Fatalf("searchPaginated: %d %s", status, resp)
		}
	})
}

func quote(s string) string { b, _ := json.Marshal(s); return string(b) }

// TestRetracedViewerAndEnterprise: a viewer sees only its group (and
// target), every viewer or enterprise search is recorded as an event,
// and deleting sessions revokes the JWT.
func TestRetracedViewerAndEnterprise(t *testing.T) {
	f := compatFixture(t, Config{})
	auth := "Token token=" + f.token
	for _, g := range []string{"g1", "g1", "g2"} {
		f.do(t, "POST", rbase+"/event", auth, `{"action":"doc.edit","crud":"u","actor":{"id":"u1"},"group":{"id":"`+g+`"},"target":{"id":"t-`+g+`"}}`)
	}
	_, resp := f.do(t, "GET", rbase+"/viewertoken?group_id=g1&actor_id=viewer-1&view_log_action=audit.log.view", auth, "")
	var tok struct{ Token string }
	json.Unmarshal(resp, &tok)
	status, resp := f.do(t, "POST", "/auditlog/viewer/v1/viewersession", "", `{"token":"`+tok.Token+`"}`)
	var sess struct {
		ProjectID string `json:"project_id"`
		Token     string `json:"token"`
	}
	if status != 200 || json.Unmarshal(resp, &sess) != nil || sess.ProjectID != "acme" || strings.Count(sess.Token, ".") != 2 {
		t.Fatalf("viewer session: %d %s", status, resp)
	}
	search := `{"query":"query { search(query: \"crud:c,u,d\", last: 20) { totalCount edges { node { action group { id } } } } }"}`
	status, resp = f.do(t, "POST", "/auditlog/viewer/v1/graphql", sess.Token, search)
	if status != 200 || !strings.Contains(string(resp), `"totalCount":2`) || strings.Contains(string(resp), "g2") {
		t.Fatalf("viewer search: %d %s", status, resp)
	}
	// The search itself was recorded (crud r, hidden by crud:c,u,d).
	status, resp = f.do(t, "POST", "/auditlog/viewer/v1/graphql?skipViewLogEvent=true", sess.Token,
		`{"query":"{ search(query: \"action:audit.log.view\") { totalCount edges { node { actor { id } crud } } } }"}`)
	if status != 200 || !strings.Contains(string(resp), `"totalCount":1`) || !strings.Contains(string(resp), `"viewer-1"`) {
		t.Fatalf("view event: %d %s", status, resp)
	}
	// Paginated viewer route.
	status, resp = f.do(t, "POST", "/auditlog/viewer/v1/graphql/paginated?skipViewLogEvent=true", sess.Token,
		`{"query":"{ searchPaginated(query: \"crud:u\") { totalCount } }"}`)
	if status != 200 || !strings.Contains(string(resp), `"totalCount":2`) {
		t.Fatalf("paginated: %d %s", status, resp)
	}
	if status, _ = f.do(t, "POST", "/auditlog/viewer/v1/graphql", "garbage.jwt.token", search); status != 401 {
		t.Fatalf("bad session: %d", status)
	}

	t.Run("target-scoped viewer", func(t *testing.T) {
		_, resp := f.do(t, "GET", rbase+"/viewertoken?group_id=g1&actor_id=v2&target_id=nope", auth, "")
		json.Unmarshal(resp, &tok)
		_, resp = f.do(t, "POST", "/auditlog/viewer/v1/viewersession", "", `{"token":"`+tok.Token+`"}`)
		json.Unmarshal(resp, &sess)
		_, resp = f.do(t, "POST", "/auditlog/viewer/v1/graphql?skipViewLogEvent=true", sess.Token, search)
		if !strings.Contains(string(resp), `"totalCount":0`) {
			t.Fatalf("target scope: %s", resp)
		}
	})

	t.Run("enterprise", func(t *testing.T) {
		status, resp := f.do(t, "POST", rbase+"/group/g2/enterprisetoken", auth, `{"display_name":"SIEM pull","view_log_action":"viewlogs.custom"}`)
		var et EnterpriseTokenView
		if status != 201 || json.Unmarshal(resp, &et) != nil || len(et.Token) != 32 || et.ViewLogAction != "viewlogs.custom" {
			t.Fatalf("create: %d %s", status, resp)
		}
		status, resp = f.do(t, "GET", rbase+"/group/g2/enterprisetoken", auth, "")
		if status != 200 || !strings.Contains(string(resp), et.Token) {
			t.Fatalf("list: %d %s", status, resp)
		}
		status, resp = f.do(t, "POST", "/auditlog/enterprise/v1/graphql", "token="+et.Token,
			`{"query":"{ search(query: \"crud:u\") { totalCount edges { node { group { id } } } } }"}`)
		if status != 200 || !strings.Contains(string(resp), `"totalCount":1`) || strings.Contains(string(resp), `"g1"`) {
			t.Fatalf("enterprise search: %d %s", status, resp)
		}
		_, resp = f.do(t, "POST", rbase+"/graphql", auth, `{"query":"{ search(query: \"action:viewlogs.custom\") { totalCount edges { node { actor { id name } } } } }"}`)
		if !strings.Contains(string(resp), `"totalCount":1`) || !strings.Contains(string(resp), `"enterprise:`+et.Token[:7]+`"`) {
			t.Fatalf("enterprise call not recorded: %s", resp)
		}
		if status, _ = f.do(t, "DELETE", rbase+"/group/g2/enterprisetoken/"+et.Token, auth, ""); status != 204 {
			t.Fatalf("delete: %d", status)
		}
		if status, _ = f.do(t, "POST", "/auditlog/enterprise/v1/graphql", "token="+et.Token, `{"query":"{ search { totalCount } }"}`); status != 401 {
			t.Fatalf("deleted token still works: %d", status)
		}
	})

	t.Run("health, CORS and unknown routes", func(t *testing.T) {
		for _, p := range []string{"/auditlog", "/auditlog/"} {
			if status, body := f.do(t, "GET", p, "", ""); status != 200 || len(body) != 0 {
				t.Errorf("GET %s: %d %q", p, status, body)
			}
		}
		req, _ := http.NewRequest("OPTIONS", f.url+rbase+"/graphql", nil)
		res, err := http.DefaultClient.Do(req)
		if err != nil || res.StatusCode != 204 || res.Header.Get("Access-Control-Allow-Origin") != "*" {
			t.Fatalf("preflight: %v %v", res, err)
		}
		res.Body.Close()
		status, body := f.do(t, "GET", "/auditlog/nope", "", "")
		if status != 404 || string(body) != "Not Found" {
			t.Fatalf("unknown route: %d %q", status, body)
		}
		u, _ := url.Parse(f.url + rbase + "/event")
		res, _ = http.Post(u.String(), "application/json", strings.NewReader(`{}`))
		if res.Header.Get("X-Retraced-RequestId") == "" {
			t.Fatal("no X-Retraced-RequestId")
		}
		res.Body.Close()
	})
}
