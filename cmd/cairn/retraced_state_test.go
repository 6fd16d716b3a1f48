package main

import (
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// retracedDo sends one request to a Retraced endpoint with Retraced's own
// Authorization header (or none).
func retracedDo(t *testing.T, p *proc, method, path, auth, body string) (int, []byte) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), method, p.addr+"/auditlog"+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, b
}

const retracedSearch = `{"query":"query { search(query: \"crud:c,u,d\", last: 20) { totalCount } }"}`

// TestRetracedStateSharedByNodes: with several nodes over one PostgreSQL,
// each with a data directory of its own, a viewer token or an enterprise
// token made through one node works through every other, and a viewer
// session one node signs, another accepts (the session key derives from
// the signing key the nodes share).
func TestRetracedStateSharedByNodes(t *testing.T) {
	e := postgresEngine(t)
	if e == nil {
		t.Skip("CAIRN_TEST_POSTGRES is not set")
	}
	dirA, dirB := t.TempDir(), t.TempDir()
	a := e.start(t, dirA)
	b := startServer(t, dirB, "--store", e.dsn, "--store-schema", e.schema(t, dirA), "--signing-key-file", sharedKey(t, dirA))
	pub := "Token token=" + testToken
	const project = "/publisher/v1/project/default"

	status, resp := retracedDo(t, a, "POST", project+"/group/g1/enterprisetoken", pub, `{"display_name":"SIEM"}`)
	var et struct{ Token string }
	if status != 201 || json.Unmarshal(resp, &et) != nil || et.Token == "" {
		t.Fatalf("create an enterprise token on node A: %d %s", status, resp)
	}
	if status, resp := retracedDo(t, b, "GET", project+"/group/g1/enterprisetoken", pub, ""); status != 200 || !strings.Contains(string(resp), et.Token) {
		t.Fatalf("node B lists g1's enterprise tokens: %d %s", status, resp)
	}
	if status, resp := retracedDo(t, b, "POST", "/enterprise/v1/graphql", "token="+et.Token, retracedSearch); status != 200 || !strings.Contains(string(resp), "totalCount") {
		t.Fatalf("node B takes node A's enterprise token: %d %s", status, resp)
	}

	status, resp = retracedDo(t, a, "GET", project+"/viewertoken?group_id=g1&actor_id=viewer-1", pub, "")
	var vt struct{ Token string }
	if status != 201 || json.Unmarshal(resp, &vt) != nil || vt.Token == "" {
		t.Fatalf("viewer token on node A: %d %s", status, resp)
	}
	status, resp = retracedDo(t, b, "POST", "/viewer/v1/viewersession", "", `{"token":"`+vt.Token+`"}`)
	var sess struct{ Token string }
	if status != 200 || json.Unmarshal(resp, &sess) != nil || sess.Token == "" {
		t.Fatalf("node B exchanges node A's viewer token: %d %s", status, resp)
	}
	if status, resp := retracedDo(t, a, "POST", "/viewer/v1/graphql", sess.Token, retracedSearch); status != 200 || !strings.Contains(string(resp), "totalCount") {
		t.Fatalf("node A takes node B's viewer session: %d %s", status, resp)
	}
	// Deleting the actor's sessions through one node revokes them on all.
	if status, resp := retracedDo(t, b, "DELETE", "/viewer/v1/project/default/group/g1/actor/viewer-1/viewersessions", pub, ""); status >= 300 {
		t.Fatalf("delete viewer sessions on node B: %d %s", status, resp)
	}
	if status, _ := retracedDo(t, a, "POST", "/viewer/v1/graphql", sess.Token, retracedSearch); status != 401 {
		t.Fatalf("node A still takes a revoked session: %d", status)
	}
	for _, p := range []*proc{a, b} {
		if _, err := os.Stat(filepath.Join(p.dataDir, "retraced-state.json")); err == nil {
			t.Errorf("a node wrote Retraced state into %s", p.dataDir)
		}
	}
}

// TestRetracedStateImported: the file earlier versions kept the Retraced
// state in is moved into the store on start, and renamed.
func TestRetracedStateImported(t *testing.T) {
	dir := t.TempDir()
	created := time.Now().UTC().Add(-time.Hour).Format(time.RFC3339Nano)
	const token = "0123456789abcdef0123456789abcdef"
	legacy := `{"viewers":{},"enterprise":{"` + token + `":{"token":"` + token + `","org":"default","context":"retraced",` +
		`"group_id":"g1","display_name":"Old SIEM","view_log_action":"audit.log.view","created":"` + created + `"},` +
		`"ffffffffffffffffffffffffffffffff":{"token":"ffffffffffffffffffffffffffffffff","org":"gone","group_id":"g1","created":"` + created + `"}}}`
	if err := os.WriteFile(filepath.Join(dir, "retraced-state.json"), []byte(legacy), 0o600); err != nil {
		t.Fatal(err)
	}
	p := startServer(t, dir)
	status, resp := retracedDo(t, p, "GET", "/publisher/v1/project/default/group/g1/enterprisetoken", "Token token="+testToken, "")
	if status != 200 || !strings.Contains(string(resp), token) || !strings.Contains(string(resp), "Old SIEM") {
		t.Fatalf("the imported token is not listed: %d %s", status, resp)
	}
	if status, resp := retracedDo(t, p, "POST", "/enterprise/v1/graphql", "token="+token, retracedSearch); status != 200 {
		t.Fatalf("the imported token does not authenticate: %d %s", status, resp)
	}
	if _, err := os.Stat(filepath.Join(dir, "retraced-state.json")); err == nil {
		t.Error("the state file was not renamed after its import")
	}
	if _, err := os.Stat(filepath.Join(dir, "retraced-state.json.imported")); err != nil {
		t.Errorf("the imported state file: %v", err)
	}
	p.stop()
	// A restart does not import again, and keeps the token.
	p = startServer(t, dir)
	if status, resp := retracedDo(t, p, "POST", "/enterprise/v1/graphql", "token="+token, retracedSearch); status != 200 {
		t.Fatalf("after a restart: %d %s", status, resp)
	}
	if strings.Contains(p.stderr.String(), token) {
		t.Error("the server logged an enterprise token")
	}
}
