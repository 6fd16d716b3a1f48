package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/cairn-audit/cairn"
)

// agentProc is a running `cairn agent`.
type agentProc struct {
	cmd    *exec.Cmd
	addr   string // http://127.0.0.1:port
	stderr *lockedBuffer
	exited chan struct{}
}

// startAgent runs the real binary's agent and waits until it listens.
func startAgent(t *testing.T, server, journal, listen string) *agentProc {
	t.Helper()
	cmd := exec.Command(binary, "agent", "--listen", listen, "--org", "default", "--journal", journal)
	cmd.Env = append(os.Environ(), "CAIRN_SERVER="+server, "CAIRN_TOKEN="+testToken)
	a := &agentProc{cmd: cmd}
	a.addr, a.stderr, a.exited = launch(t, cmd, "cairn agent listening")
	t.Cleanup(a.kill)
	return a
}

func (a *agentProc) kill() {
	if a.cmd.Process != nil {
		a.cmd.Process.Kill()
		<-a.exited
	}
}

// post sends a body to the agent without credentials.
func (a *agentProc) post(t *testing.T, path, body string) (int, []byte) {
	t.Helper()
	resp, err := http.Post(a.addr+path, "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatalf("post to agent: %v", err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

// waitDrained waits until the agent's journal is empty.
func (a *agentProc) waitDrained(t *testing.T) {
	t.Helper()
	deadline := time.Now().Add(2 * time.Minute)
	for {
		resp, err := http.Get(a.addr + "/healthz")
		if err == nil {
			var h struct{ Pending int }
			json.NewDecoder(resp.Body).Decode(&h)
			resp.Body.Close()
			if h.Pending == 0 {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("agent journal did not drain:\n%s", a.stderr)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// agentOutage is how long the server stays down in TestAgentOutage (30 s as
// the issue asks; CAIRN_TEST_AGENT_OUTAGE may shorten it while iterating).
func agentOutage(t *testing.T) time.Duration {
	if v := os.Getenv("CAIRN_TEST_AGENT_OUTAGE"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil {
			t.Fatalf("CAIRN_TEST_AGENT_OUTAGE: %v", err)
		}
		return d
	}
	return 30 * time.Second
}

// TestAgentOutage streams writes through the agent while the server is
// killed (SIGKILL) for 30 seconds and the agent itself is killed and
// restarted on the same journal; every event the agent acknowledged must
// arrive exactly once, with the time the agent accepted it.
func TestAgentOutage(t *testing.T) {
	t.Parallel()
	dataDir, journal := t.TempDir(), t.TempDir()
	p := startServer(t, dataDir)
	ctx := ctxTimeout(t, 5*time.Minute)
	if _, err := p.client.CreateContext(ctx, "default", "app", "", nil); err != nil {
		t.Fatal(err)
	}
	a := startAgent(t, p.addr, journal, "127.0.0.1:0")
	agentListen := strings.TrimPrefix(a.addr, "http://")

	n := 0
	write := func(t *testing.T, count int, async bool) {
		t.Helper()
		q := "?async=true"
		if !async {
			q = ""
		}
		for range count {
			status, body := a.post(t, "/audit/org/default/auditctx/app"+q,
				fmt.Sprintf(`{"resource":{"id":"r-%d","type":"outage"},"action":{"type":"create"}}`, n))
			want := http.StatusAccepted
			if !async {
				want = http.StatusCreated // the server is up: the agent answers with its result
			}
			if status != want {
				t.Fatalf("write %d: %d %s, want %d", n, status, body, want)
			}
			n++
		}
	}
	write(t, 30, true)
	write(t, 5, false)

	p.kill()
	down := time.Now()
	write(t, 40, true)
	// The agent dies too and comes back on the same journal and port.
	a.kill()
	a = startAgent(t, p.addr, journal, agentListen)
	write(t, 40, true)
	if status, body := a.post(t, "/audit/v1/event", `{"action":"user.login.success","title":"during the outage"}`); status != http.StatusCreated || len(body) != 0 {
		t.Fatalf("replicated write: %d %q", status, body)
	}
	time.Sleep(time.Until(down.Add(agentOutage(t))))
	up := time.Now()
	p = startServer(t, dataDir, "--addr", strings.TrimPrefix(p.addr, "http://"))
	a.waitDrained(t)

	page, err := p.client.Search(ctx, "default", url.Values{"context": {"app"}, "limit": {"1000"}})
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]int{}
	for _, raw := range page.Items {
		var e cairn.Event
		if err := json.Unmarshal(raw, &e); err != nil {
			t.Fatal(err)
		}
		seen[e.Target.ID]++
		if e.Target.Type == "outage" && !e.EventTime.Before(up) {
			t.Errorf("event %s: event time %s is not when the agent accepted it (server back at %s)", e.Target.ID, e.EventTime, up)
		}
	}
	for i := range n {
		if c := seen[fmt.Sprintf("r-%d", i)]; c != 1 {
			t.Errorf("event r-%d arrived %d times, want exactly once", i, c)
		}
	}
	if len(page.Items) != n {
		t.Errorf("context holds %d events, want %d", len(page.Items), n)
	}
	rep, err := p.client.Search(ctx, "default", url.Values{"context": {"replicated"}})
	if err != nil || len(rep.Items) != 1 {
		t.Fatalf("replicated context: %v, %d events", err, len(rep.Items))
	}
}

// TestAgentSeedExamples runs the seeds' curl commands verbatim against a
// running agent: Control Plane's minimal in-workload example and
// Replicated's Audit API example.
func TestAgentSeedExamples(t *testing.T) {
	t.Parallel()
	if _, err := exec.LookPath("curl"); err != nil {
		t.Skip("curl is not installed")
	}
	p := startServer(t, t.TempDir())
	ctx := ctxTimeout(t, 2*time.Minute)
	if _, err := p.client.CreateContext(ctx, "default", "custom-audit-context", "", nil); err != nil {
		t.Fatal(err)
	}
	a := startAgent(t, p.addr, t.TempDir(), "127.0.0.1:0")
	commands := []string{
		// Control Plane "Audit Context" seed, minimal example.
		`curl -H "Content-Type: application/json" -X POST http://127.0.0.1:43000/audit/org/${CPLN_ORG}/auditctx/custom-audit-context?async=true -d '{"resource": {"id": "anyid123", "type": "anytype"}}'`,
		// Replicated "Audit API" seed.
		`curl -k -X POST $REPLICATED_INTEGRATIONAPI/audit/v1/event \
  -H "Content-Type: application/json" \
  -d '{"action":"user.login.success", "description":"john@example.com logged in", "title":"User Login Success", "name":"login"}'`,
	}
	for _, c := range commands {
		// The agent listens on a random port: only the address differs.
		c = strings.ReplaceAll(c, "http://127.0.0.1:43000", a.addr)
		cmd := exec.Command("bash", "-c", c+` -sS -o /dev/null -w '%{http_code}'`)
		cmd.Env = append(os.Environ(), "CPLN_ORG=default", "REPLICATED_INTEGRATIONAPI="+a.addr)
		out, err := cmd.CombinedOutput()
		if err != nil || (string(out) != "202" && string(out) != "201") {
			t.Fatalf("%s\n→ %s %v", c, out, err)
		}
	}
	a.waitDrained(t)
	for ctxName, action := range map[string]string{"custom-audit-context": "unspecified", "replicated": "user.login.success"} {
		page, err := p.client.Search(ctx, "default", url.Values{"context": {ctxName}})
		if err != nil || len(page.Items) != 1 || !strings.Contains(string(page.Items[0]), `"action":"`+action+`"`) {
			t.Fatalf("%s: %v %d", ctxName, err, len(page.Items))
		}
	}
	// No credentials are needed at the agent, but it refuses other orgs.
	if status, _ := a.post(t, "/audit/org/other/auditctx/custom-audit-context", `{"resource":{"id":"a","type":"b"}}`); status != http.StatusForbidden {
		t.Fatalf("other org: %d, want 403", status)
	}
	if status, _ := a.post(t, "/audit/org/default/auditctx/custom-audit-context", `{"resource":{"id":"a"}}`); status != http.StatusBadRequest {
		t.Fatalf("invalid event: %d, want 400 before journaling", status)
	}
}
