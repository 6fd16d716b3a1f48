package main

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cairn-audit/cairn/httpapi"
)

// cairnCmd runs the binary and returns stdout, stderr and the exit code.
func cairnCmd(t *testing.T, env []string, args ...string) (string, string, int) {
	t.Helper()
	cmd := exec.Command(binary, args...)
	cmd.Env = append(os.Environ(), env...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	var ee *exec.ExitError
	switch {
	case err == nil:
		return out.String(), errb.String(), 0
	case errors.As(err, &ee):
		return out.String(), errb.String(), ee.ExitCode()
	}
	t.Fatalf("run cairn %v: %v", args, err)
	return "", "", -1
}

func (p *proc) env() []string {
	return []string{"CAIRN_SERVER=" + p.addr, "CAIRN_TOKEN=" + testToken}
}

// writeBatches writes batches of n events, waiting for a checkpoint after
// each, so the log has one checkpoint per batch.
func writeBatches(t *testing.T, p *proc, ctxName, action string, batches, n int) {
	t.Helper()
	for range batches {
		var sb strings.Builder
		sb.WriteString("[")
		for i := range n {
			if i > 0 {
				sb.WriteString(",")
			}
			fmt.Fprintf(&sb, `{"action":%q,"target":{"type":"doc","id":"d%d"},"description":"event number %d"}`, action, i, i)
		}
		sb.WriteString("]")
		mustWrite(t, p, ctxName, sb.String(), httpapi.WriteOptions{})
		cv, err := p.client.GetContext(t.Context(), "default", ctxName)
		if err != nil {
			t.Fatal(err)
		}
		waitCheckpoint(t, p, ctxName, cv.Size)
	}
}

func TestVerifyCommands(t *testing.T) { forEachEngine(t, testVerifyCommands) }

func testVerifyCommands(t *testing.T, e *serveEngine) {
	p := e.start(t, t.TempDir())
	ctx := ctxTimeout(t, 3*time.Minute)
	c := p.client
	if _, err := c.CreateContext(ctx, "default", "app", "", nil); err != nil {
		t.Fatal(err)
	}
	writeBatches(t, p, "app", "doc.update", 3, 150)
	vkey, err := c.VerifierKey(ctx, "default", "app")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	keyFile := filepath.Join(dir, "app.vkey")
	os.WriteFile(keyFile, []byte(vkey+"\n"), 0o644)
	logURL := c.LogURL("default", "app")
	// One checkpoint per batch, and one of the empty tree when the signer
	// polled between the context's creation and the first batch.
	var cps httpapi.CheckpointPage
	if _, err := c.Do(ctx, "GET", "/log/default/app/checkpoints", nil, nil, nil, &cps); err != nil {
		t.Fatal(err)
	}
	ncp := len(cps.Checkpoints)
	if ncp != 3 && (ncp != 4 || cps.Checkpoints[0].Size != 0) {
		t.Fatalf("checkpoint history after three batches: %+v", cps)
	}
	valid := fmt.Sprintf("450/450 entries valid, %d/%d checkpoints valid and consistent", ncp, ncp)

	t.Run("export and verify offline", func(t *testing.T) {
		out := filepath.Join(dir, "export")
		stdout, stderr, code := cairnCmd(t, p.env(), "export", "--context", "app", "--out", out)
		if code != 0 || !strings.Contains(stdout, fmt.Sprintf("450 entries, %d checkpoints", ncp)) {
			t.Fatalf("export: %d %s %s", code, stdout, stderr)
		}
		stdout, stderr, code = cairnCmd(t, nil, "verify", "log", "--key", keyFile, out)
		if code != 0 || !strings.Contains(stdout, valid) || !strings.Contains(stdout, "pinned key") {
			t.Fatalf("verify log DIR: %d %s %s", code, stdout, stderr)
		}
		stdout, _, code = cairnCmd(t, nil, "verify", "log", "--json", out)
		var res struct {
			Valid      bool   `json:"valid"`
			Summary    string `json:"summary"`
			KeysPinned bool   `json:"keys_pinned"`
		}
		if err := json.Unmarshal([]byte(stdout), &res); err != nil || code != 0 || !res.Valid || res.Summary != valid || res.KeysPinned {
			t.Fatalf("verify log --json: %d %s", code, stdout)
		}
		if _, _, code := cairnCmd(t, p.env(), "export", "--context", "app", "--out", out); code != 2 {
			t.Fatalf("export into a non-empty directory: exit %d, want 2", code)
		}
	})

	t.Run("verify over HTTP", func(t *testing.T) {
		stdout, stderr, code := cairnCmd(t, []string{"CAIRN_TOKEN=" + testToken}, "verify", "log", "--key", vkey, logURL)
		if code != 0 || !strings.Contains(stdout, valid) {
			t.Fatalf("verify log URL: %d %s %s", code, stdout, stderr)
		}
		if _, _, code := cairnCmd(t, nil, "verify", "log", "--key", vkey, "--token", "cairn_wrong", logURL); code != 2 {
			t.Fatalf("verify log URL with a bad token: exit %d, want 2", code)
		}
	})

	t.Run("receipt", func(t *testing.T) {
		status, resp, err := c.WriteEvents(ctx, "default", "app", []byte(`{"action":"login","kind":"login"}`), httpapi.WriteOptions{})
		if err != nil || status != 201 {
			t.Fatal(err)
		}
		var w writeResult
		json.Unmarshal(resp, &w)
		event, err := c.GetEvent(ctx, "default", "app", w.ID)
		if err != nil {
			t.Fatal(err)
		}
		receipt, err := c.Receipt(ctx, "default", "app", w.ID)
		if err != nil {
			t.Fatal(err)
		}
		ev, rc := filepath.Join(dir, "event.json"), filepath.Join(dir, "event.tlog-proof")
		os.WriteFile(ev, event, 0o644)
		os.WriteFile(rc, receipt, 0o644)
		stdout, stderr, code := cairnCmd(t, nil, "verify", "receipt", "--key", vkey, ev, rc)
		if code != 0 || !strings.Contains(stdout, "receipt valid: entry 450 ") {
			t.Fatalf("verify receipt: %d %s %s", code, stdout, stderr)
		}
		// The raw canonical leaf works as well as the API's event JSON.
		var e struct{ Leaf string }
		json.Unmarshal(event, &e)
		raw := filepath.Join(dir, "leaf.json")
		os.WriteFile(raw, mustB64(t, e.Leaf), 0o644)
		if _, _, code := cairnCmd(t, nil, "verify", "receipt", "--key", vkey, raw, rc); code != 0 {
			t.Fatalf("verify receipt with the raw leaf: exit %d", code)
		}
		// One changed byte in the event: rejected.
		os.WriteFile(raw, bytes.Replace(mustB64(t, e.Leaf), []byte(`"login"`), []byte(`"logon"`), 1), 0o644)
		stdout, _, code = cairnCmd(t, nil, "verify", "receipt", "--key", vkey, raw, rc)
		if code != 1 || !strings.Contains(stdout, "receipt invalid") {
			t.Fatalf("verify receipt of a changed event: %d %s", code, stdout)
		}
		// Another log's key: rejected.
		other := strings.Replace(vkey, "/app+", "/other+", 1)
		if _, _, code := cairnCmd(t, nil, "verify", "receipt", "--key", other, ev, rc); code != 1 && code != 2 {
			t.Fatalf("verify receipt with another key: exit %d", code)
		}
	})

	t.Run("consistency", func(t *testing.T) {
		var page httpapi.CheckpointPage
		if _, err := c.Do(ctx, "GET", "/log/default/app/checkpoints", nil, nil, nil, &page); err != nil {
			t.Fatal(err)
		}
		if len(page.Checkpoints) < 3 {
			t.Fatalf("checkpoint history: %+v", page)
		}
		if page.Checkpoints[0].Size == 0 { // the empty tree: its consistency proof has no hashes to damage
			page.Checkpoints = page.Checkpoints[1:]
		}
		first, last := filepath.Join(dir, "cp-first"), filepath.Join(dir, "cp-last")
		os.WriteFile(first, []byte(page.Checkpoints[0].Note), 0o644)
		os.WriteFile(last, []byte(page.Checkpoints[len(page.Checkpoints)-1].Note), 0o644)
		env := []string{"CAIRN_TOKEN=" + testToken}
		state := filepath.Join(dir, "state")
		stdout, stderr, code := cairnCmd(t, env, "verify", "consistency", "--key", vkey, "--url", logURL, "--state", state, first, last)
		if code != 0 || !strings.Contains(stdout, "consistent: ") {
			t.Fatalf("verify consistency: %d %s %s", code, stdout, stderr)
		}
		if _, _, code := cairnCmd(t, env, "verify", "consistency", "--key", vkey, "--url", logURL, last, first); code != 1 {
			t.Fatalf("verify consistency NEW OLD: exit %d, want 1", code)
		}
		// A given proof file, as GET .../proof/consistency returns it.
		var proofJSON []byte
		q := fmt.Sprintf("?from=%d&to=%d", page.Checkpoints[0].Size, page.Checkpoints[len(page.Checkpoints)-1].Size)
		if _, err := c.Do(ctx, "GET", "/log/default/app/proof/consistency"+q, nil, nil, nil, &proofJSON); err != nil {
			t.Fatal(err)
		}
		pf := filepath.Join(dir, "proof.json")
		os.WriteFile(pf, proofJSON, 0o644)
		if _, _, code := cairnCmd(t, nil, "verify", "consistency", "--key", vkey, "--proof", pf, first, last); code != 0 {
			t.Fatalf("verify consistency --proof: exit %d", code)
		}
		os.WriteFile(pf, bytes.Replace(proofJSON, []byte(`"hashes":["`), []byte(`"hashes":["A`), 1), 0o644)
		if _, _, code := cairnCmd(t, nil, "verify", "consistency", "--key", vkey, "--proof", pf, first, last); code != 1 && code != 2 {
			t.Fatalf("verify consistency with a damaged proof: exit %d", code)
		}
		if _, _, code := cairnCmd(t, nil, "verify", "consistency", "--key", vkey, first, last); code != 2 {
			t.Fatalf("verify consistency without a proof: exit %d, want 2", code)
		}
	})

	t.Run("usage", func(t *testing.T) {
		for _, args := range [][]string{
			{"verify"}, {"verify", "nope"}, {"verify", "log"}, {"verify", "log", filepath.Join(dir, "does-not-exist")},
			{"verify", "receipt", "a", "b"}, {"verify", "log", "--key", "garbage", dir}, {"fsck", "--data-dir", filepath.Join(dir, "nothing")},
		} {
			if _, _, code := cairnCmd(t, nil, args...); code != 2 {
				t.Errorf("cairn %v: exit %d, want 2", args, code)
			}
		}
	})
}

func mustB64(t *testing.T, s string) []byte {
	t.Helper()
	b, err := base64Std(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func base64Std(s string) ([]byte, error) { return base64.StdEncoding.DecodeString(s) }
