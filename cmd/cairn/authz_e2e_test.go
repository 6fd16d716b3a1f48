package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cairn-audit/cairn"
	"github.com/cairn-audit/cairn/httpapi"
)

// cliAs runs a client command with the given environment on top of the
// server address (and no CAIRN_TOKEN unless env sets it).
func (p *proc) cliAs(t *testing.T, env []string, stdin string, args ...string) (string, error) {
	t.Helper()
	cmd := exec.Command(binary, args...)
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "CAIRN_") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	cmd.Env = append(append(cmd.Env, "CAIRN_SERVER="+p.addr), env...)
	cmd.Stdin = strings.NewReader(stdin)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	if err != nil {
		err = fmt.Errorf("%v: %s", err, errb.String())
	}
	return out.String(), err
}

// TestAccessControlCLI drives orgs, principals, keys, policies, the access
// report and cairn login through the real binary, on every engine.
func TestAccessControlCLI(t *testing.T) { forEachEngine(t, testAccessControlCLI) }

func testAccessControlCLI(t *testing.T, e *serveEngine) {
	p := e.start(t, t.TempDir())
	ctx := ctxTimeout(t, 2*time.Minute)
	admin := []string{"CAIRN_TOKEN=" + testToken}
	run := func(env []string, stdin string, args ...string) string {
		t.Helper()
		out, err := p.cliAs(t, env, stdin, args...)
		if err != nil {
			t.Fatalf("cairn %s: %v", strings.Join(args, " "), err)
		}
		return out
	}
	run(admin, "", "orgs", "create", "acme")
	if out := run(admin, "", "orgs", "list"); !strings.Contains(out, `"acme"`) || !strings.Contains(out, `"default"`) {
		t.Fatalf("orgs list: %s", out)
	}
	run(admin, "", "contexts", "create", "app", "--description", "the app")
	run(admin, "", "contexts", "edit", "app", "--json", `{"redaction":[{"field":"ssn","mode":"mask"}]}`)
	run(admin, "password one two three\n", "users", "create", "ann", "--email", "ann@example.com", "--password-stdin")
	run(admin, "", "serviceaccounts", "create", "ci")
	run(admin, "", "groups", "create", "auditors")
	run(admin, "", "groups", "add-member", "auditors", "user/ann")
	run(admin, "", "policies", "create", "auditors", "--context", "app", "--permission", "readAudit", "--principal", "group/auditors")
	run(admin, "", "policies", "create", "ci-writes", "--context", "*", "--permission", "writeAudit", "--principal", "serviceaccount/ci")

	var nk httpapi.NewKey
	if err := json.Unmarshal([]byte(run(admin, "", "keys", "create", "--principal", "serviceaccount/ci", "--name", "deploy", "--expires-in", "24h")), &nk); err != nil || nk.Secret == "" {
		t.Fatalf("keys create: %v %+v", err, nk)
	}
	ci := []string{"CAIRN_TOKEN=" + nk.Secret}
	run(ci, `{"action":"doc.update","target":{"type":"doc","id":"d1"}}`, "events", "write", "--context", "app")
	if _, err := p.cliAs(t, ci, "", "events", "query"); err == nil {
		t.Fatal("a write-only key could search")
	}
	if out := run(admin, "", "keys", "list", "--principal", "serviceaccount/ci"); !strings.Contains(out, nk.Key.Prefix) || strings.Contains(out, nk.Secret) {
		t.Fatalf("keys list: %s", out)
	}

	// cairn login stores a session token in a 0600 file; later commands use it.
	home := t.TempDir()
	user := []string{"XDG_CONFIG_HOME=" + home, "HOME=" + home}
	if _, err := p.cliAs(t, user, "wrong password!!\n", "login", "--username", "ann"); err == nil {
		t.Fatal("login with a wrong password succeeded")
	}
	if out := run(user, "password one two three\n", "login", "--username", "ann"); !strings.Contains(out, "user/ann") {
		t.Fatalf("login: %s", out)
	}
	fi, err := os.Stat(filepath.Join(home, "cairn", "credentials.json"))
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("credentials file: %v %v", err, fi)
	}
	if out := run(user, "", "events", "query", "--context", "app"); strings.Count(out, "\n") != 1 || !strings.Contains(out, "doc.update") {
		t.Fatalf("query with the stored session: %q", out)
	}
	if _, err := p.cliAs(t, user, "", "contexts", "create", "nope"); err == nil {
		t.Fatal("ann created a context without the create permission")
	}

	out := run(admin, "", "access", "app")
	var rep httpapi.AccessReport
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range rep.Items {
		for _, h := range e.Permissions {
			got = append(got, e.Principal+":"+h.Permission)
		}
	}
	want := "group/auditors:readAudit group/auditors:view serviceaccount/ci:view serviceaccount/ci:writeAudit user/ann:readAudit user/ann:view"
	if strings.Join(got, " ") != want {
		t.Fatalf("access report: %v", got)
	}

	run(admin, "", "keys", "revoke", nk.Key.ID)
	if _, err := p.cliAs(t, ci, `{"action":"x.y"}`, "events", "write", "--context", "app"); err == nil {
		t.Fatal("a revoked key still writes")
	}

	// Everything above is in the built-in context, with its actor, and
	// verifiable like any other log.
	// Reads and failed logins are recorded without waiting for their
	// commit: look again until the last of them is in.
	wantActors := map[string]string{
		"context.create": "api_token/bootstrap", "user.create": "api_token/bootstrap", "policy.create": "api_token/bootstrap",
		"apikey.create": "api_token/bootstrap", "apikey.revoke": "api_token/bootstrap", "auth.login": "user/ann",
		"log.search": "user/ann", "access.read": "api_token/bootstrap", "auth.failed": "anonymous/",
	}
	var actions map[string]string
	for deadline := time.Now().Add(15 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		actions = builtinActions(t, p, nk.Secret)
		complete := true
		for action := range wantActors {
			if _, ok := actions[action]; !ok {
				complete = false
			}
		}
		if complete || time.Now().After(deadline) {
			break
		}
	}
	for action, actor := range wantActors {
		if actions[action] != actor {
			t.Errorf("%s by %q, want %q", action, actions[action], actor)
		}
	}
	for _, secret := range []string{nk.Secret, "password one two three"} {
		if strings.Contains(p.stderr.String(), secret) {
			t.Errorf("a secret in the server log")
		}
	}
	cv, err := p.client.GetContext(ctx, "default", "cairn")
	if err != nil {
		t.Fatal(err)
	}
	waitCheckpoint(t, p, "cairn", cv.Size)
	vkey, _ := p.client.VerifierKey(ctx, "default", "cairn")
	if out, err := p.cli(t, "", "verify", "log", "--key", vkey, p.client.LogURL("default", "cairn")); err != nil {
		t.Fatalf("verify the built-in context: %v %s", err, out)
	}
}

// builtinActions reads the default org's built-in context: each action's
// latest actor as "type/name". It fails the test if a secret is there.
func builtinActions(t *testing.T, p *proc, secret string) map[string]string {
	t.Helper()
	page, err := p.client.Search(t.Context(), "default", map[string][]string{"context": {"cairn"}, "limit": {"1000"}})
	if err != nil {
		t.Fatal(err)
	}
	actions := map[string]string{}
	for _, it := range page.Items {
		var e cairn.Event
		json.Unmarshal(it, &e)
		if e.Actor != nil {
			actions[e.Action] = e.Actor.Type + "/" + e.Actor.Name
		}
		if bytes.Contains(it, []byte(secret)) || bytes.Contains(it, []byte("password one")) {
			t.Fatalf("a secret in the built-in context: %s", it)
		}
	}
	return actions
}
