package main

import (
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
)

// TestCompatWritesVerify writes through the Control Plane, Replicated and
// Retraced APIs of the real binary and checks that the events land in the
// contexts' Merkle logs: cairn verify (built on third-party verifiers)
// checks every entry and checkpoint over HTTP.
func TestCompatWritesVerify(t *testing.T) {
	t.Parallel()
	p := startServer(t, t.TempDir())
	ctx := ctxTimeout(t, 2*time.Minute)
	if _, err := p.client.CreateContext(ctx, "default", "app", "", nil); err != nil {
		t.Fatal(err)
	}
	post := func(path, auth, body string) {
		t.Helper()
		req, _ := http.NewRequest("POST", p.addr+path, strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Authorization", auth)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode/100 != 2 {
			t.Fatalf("POST %s: %d %s", path, resp.StatusCode, b)
		}
	}
	for i := range 3 {
		post("/audit/org/default/auditctx/app", testToken, fmt.Sprintf(`{"resource":{"id":"r%d","type":"t"}}`, i))
		post("/audit/v1/event", "Bearer "+testToken, fmt.Sprintf(`{"action":"a.%d"}`, i))
		post("/auditlog/publisher/v1/project/default/event", "Token token="+testToken,
			fmt.Sprintf(`{"action":"b.%d","crud":"c","actor":{"id":"u"}}`, i))
	}
	for _, name := range []string{"app", "replicated", "retraced"} {
		waitCheckpoint(t, p, name, 3)
		vkey, err := p.client.VerifierKey(ctx, "default", name)
		if err != nil {
			t.Fatal(err)
		}
		stdout, stderr, code := cairnCmd(t, []string{"CAIRN_TOKEN=" + testToken}, "verify", "log", "--key", vkey, p.client.LogURL("default", name))
		if code != 0 || !strings.Contains(stdout, "3/3 entries valid") {
			t.Fatalf("verify %s: %d %s %s", name, code, stdout, stderr)
		}
	}
}
