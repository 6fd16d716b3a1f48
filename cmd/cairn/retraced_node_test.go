package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// requireService reports whether CAIRN_TEST_REQUIRE names a service, in
// which case its tests fail instead of skipping when it is unavailable.
func requireService(name string) bool {
	for _, s := range strings.Split(os.Getenv("CAIRN_TEST_REQUIRE"), ",") {
		if strings.TrimSpace(s) == name {
			return true
		}
	}
	return false
}

// TestRetracedNodeClient drives the official Retraced Node client
// (@retracedhq/retraced, version pinned in compat/retraced/nodetest)
// against the real binary: reportEvent and reportEvents (the client
// verifies every hash), getViewerToken, and query with paging and field
// masks. It installs the client with `npm ci` into a test directory; it
// skips when node or npm is missing or the registry is unreachable, unless
// CAIRN_TEST_REQUIRE names "node".
func TestRetracedNodeClient(t *testing.T) {
	t.Parallel()
	unavailable := func(format string, args ...any) {
		t.Helper()
		if requireService("node") {
			t.Fatalf(format, args...)
		}
		t.Skipf(format+" (set CAIRN_TEST_REQUIRE=node to make this a failure)", args...)
	}
	for _, tool := range []string{"node", "npm"} {
		if _, err := exec.LookPath(tool); err != nil {
			unavailable("%s is not installed: cannot run the Retraced Node client", tool)
		}
	}
	dir := t.TempDir()
	src := filepath.Join("..", "..", "compat", "retraced", "nodetest")
	for _, f := range []string{"package.json", "package-lock.json", "run.js"} {
		b, err := os.ReadFile(filepath.Join(src, f))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, f), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	ctx := ctxTimeout(t, 4*time.Minute)
	install := exec.CommandContext(ctx, "npm", "ci", "--no-audit", "--no-fund", "--loglevel=error")
	install.Dir = dir
	install.Env = append(os.Environ(), "npm_config_cache="+filepath.Join(dir, ".npm"))
	if out, err := install.CombinedOutput(); err != nil {
		unavailable("npm ci failed (is the npm registry reachable?): %v\n%s", err, out)
	}

	p := startServer(t, t.TempDir())
	run := exec.CommandContext(ctx, "node", "run.js")
	run.Dir = dir
	run.Env = append(os.Environ(), "RETRACED_ENDPOINT="+p.addr+"/auditlog", "PROJECT_ID=default", "API_KEY="+testToken)
	out, err := run.CombinedOutput()
	t.Logf("node client:\n%s", out)
	if err != nil || !strings.Contains(string(out), " passed, 0 failed") {
		t.Fatalf("the Retraced Node client failed: %v", err)
	}
}
