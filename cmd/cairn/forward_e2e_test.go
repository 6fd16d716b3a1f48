package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cairn-audit/cairn/forward/forwardtest"
	"github.com/cairn-audit/cairn/httpapi"
)

// hook is a webhook receiver that records every event it is sent, in
// arrival order, before it answers.
type hook struct {
	mu    sync.Mutex
	got   []forwardtest.Delivered
	auth  string
	delay time.Duration
}

func (h *hook) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	var events []struct {
		ID      string `json:"id"`
		Context string `json:"context"`
		Seq     int64  `json:"seq"`
	}
	if err := json.Unmarshal(body, &events); err != nil {
		http.Error(w, "bad body", 400)
		return
	}
	h.mu.Lock()
	h.auth = r.Header.Get("Authorization")
	for _, e := range events {
		h.got = append(h.got, forwardtest.Delivered{Context: e.Context, Seq: e.Seq, ID: e.ID})
	}
	h.mu.Unlock()
	time.Sleep(h.delay)
	w.WriteHeader(http.StatusOK)
}

func (h *hook) delivered() []forwardtest.Delivered {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]forwardtest.Delivered(nil), h.got...)
}

func writeN(t *testing.T, p *proc, ctxName string, n int) {
	t.Helper()
	for start := 0; start < n; start += 500 {
		var b strings.Builder
		b.WriteString("[")
		for i := start; i < min(n, start+500); i++ {
			if i > start {
				b.WriteString(",")
			}
			fmt.Fprintf(&b, `{"action":"doc.update","kind":"update","target":{"type":"doc","id":"d%d"}}`, i)
		}
		b.WriteString("]")
		mustWrite(t, p, ctxName, b.String(), httpapi.WriteOptions{})
	}
}

const hookSecret = "e2e-hook-token-never-logged"

func TestForwardersCLI(t *testing.T) { forEachEngine(t, testForwardersCLI) }

func testForwardersCLI(t *testing.T, e *serveEngine) {
	rc := &hook{}
	srv := httptest.NewServer(rc)
	defer srv.Close()
	p := e.start(t, t.TempDir(), "--forward-allow-cidr", "127.0.0.0/8")
	ctx := ctxTimeout(t, 2*time.Minute)
	if _, err := p.client.CreateContext(ctx, "default", "app", "", nil); err != nil {
		t.Fatal(err)
	}
	tokenFile := filepath.Join(t.TempDir(), "token")
	os.WriteFile(tokenFile, []byte(hookSecret+"\n"), 0o600)
	out, err := p.cli(t, "", "forwarders", "create", "--name", "siem", "--type", "webhook", "--set", "uri="+srv.URL,
		"--set-file", "token="+tokenFile, "--context", "app", "--max-delay", "10ms", "--max-events", "25")
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(out, hookSecret) || !strings.Contains(out, `"token": "***"`) {
		t.Fatalf("create printed the secret or no mask:\n%s", out)
	}
	writeN(t, p, "app", 120)
	forwardtest.WaitFor(t, "120 events at the receiver", func() bool { return len(rc.delivered()) >= 120 })
	forwardtest.CheckStream(t, rc.delivered(), map[string]int64{"app": 120})
	rc.mu.Lock()
	auth := rc.auth
	rc.mu.Unlock()
	if auth != "Bearer "+hookSecret {
		t.Fatalf("receiver got Authorization %q", auth)
	}

	for _, args := range [][]string{
		{"forwarders", "list"}, {"forwarders", "get", "siem"}, {"forwarders", "status", "siem"},
		{"forwarders", "pause", "siem"}, {"forwarders", "resume", "siem"}, {"forwarders", "test", "siem"},
		{"forwarders", "update", "siem", "--format", "ocsf"},
		{"forwarders", "replay", "siem", "--context", "app", "--seq", "100"},
	} {
		out, err := p.cli(t, "", args...)
		if err != nil {
			t.Fatalf("%v: %v", args, err)
		}
		if strings.Contains(out, hookSecret) {
			t.Fatalf("%v printed the secret:\n%s", args, out)
		}
	}
	// The replay from 100 sends 100..119 again (in OCSF now).
	forwardtest.WaitFor(t, "the replay", func() bool { return len(rc.delivered()) >= 120+1+20 })
	if code := p.cliExit(t, "forwarders", "replay", "siem"); code != 2 {
		t.Fatalf("replay without --seq or --time exited %d, want 2 (usage)", code)
	}
	if code := p.cliExit(t, "forwarders", "get", "nope"); code != 1 {
		t.Fatalf("get of a missing forwarder exited %d, want 1", code)
	}
	var metrics []byte
	if _, err := p.client.Do(ctx, "GET", "/metrics", nil, nil, nil, &metrics); err != nil {
		t.Fatal(err)
	}
	series := []string{`cairn_forwarder_delivered_events_total{forwarder="siem",org="default"}`, `cairn_forwarder_lag_events{context="app",forwarder="siem",org="default"}`}
	if e.name == "sqlite" {
		// Only the embedded engine indexes behind the log; PostgreSQL
		// indexes in the append's transaction.
		series = append(series, "cairn_search_index_lag_events ")
	}
	for _, s := range series {
		if !strings.Contains(string(metrics), s) {
			t.Fatalf("/metrics lacks %s", s)
		}
	}
	p.stop()
	if strings.Contains(p.stderr.String(), hookSecret) {
		t.Fatal("the server logged the sink's token")
	}
}

// cliExit runs a client command and returns its exit code.
func (p *proc) cliExit(t *testing.T, args ...string) int {
	t.Helper()
	cmd := exec.Command(binary, args...)
	cmd.Env = append(os.Environ(), "CAIRN_SERVER="+p.addr, "CAIRN_TOKEN="+testToken)
	if err := cmd.Run(); err != nil {
		if ee, ok := err.(*exec.ExitError); ok {
			return ee.ExitCode()
		}
		t.Fatal(err)
	}
	return 0
}

// TestForwardCrashResumesFromCursor kills the server with SIGKILL while it
// delivers and restarts it: delivery resumes from the durable cursor;
// every event arrives in order, and only the batch in flight at the crash
// may arrive twice.
func TestForwardCrashResumesFromCursor(t *testing.T) {
	forEachEngine(t, testForwardCrashResumesFromCursor)
}

func testForwardCrashResumesFromCursor(t *testing.T, e *serveEngine) {
	const total, batch = 3000, 50
	rc := &hook{delay: 5 * time.Millisecond}
	srv := httptest.NewServer(rc)
	defer srv.Close()
	dir := t.TempDir()
	p := e.start(t, dir, "--forward-allow-cidr", "127.0.0.0/8")
	ctx := ctxTimeout(t, 3*time.Minute)
	if _, err := p.client.CreateContext(ctx, "default", "app", "", nil); err != nil {
		t.Fatal(err)
	}
	writeN(t, p, "app", total)
	enabled := true
	if _, err := p.client.CreateForwarder(ctx, "default", httpapi.ForwarderView{Name: "siem", Contexts: []string{"app"},
		Sink:  httpapi.SinkView{Type: "webhook", Settings: map[string]any{"uri": srv.URL}},
		Batch: httpapi.BatchView{MaxEvents: batch, MaxDelay: "1ms"}, Enabled: &enabled}); err != nil {
		t.Fatal(err)
	}
	forwardtest.WaitFor(t, "delivery to start", func() bool { return len(rc.delivered()) >= 500 })
	p.kill()
	before := len(rc.delivered())
	if before >= total {
		t.Fatalf("all %d events were delivered before the crash; the test needs a slower receiver", before)
	}
	p = e.start(t, dir, "--forward-allow-cidr", "127.0.0.0/8")
	forwardtest.WaitFor(t, "delivery to finish", func() bool {
		st, err := p.client.ForwarderStatus(ctx, "default", "siem")
		return err == nil && st.LagEvents == 0
	})
	dups := forwardtest.CheckStream(t, rc.delivered(), map[string]int64{"app": total})
	if dups > batch {
		t.Fatalf("%d events delivered twice: more than the one unacknowledged batch (%d)", dups, batch)
	}
	t.Logf("%d delivered before the crash, %d duplicates after the restart", before, dups)
}
