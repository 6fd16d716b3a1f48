package main

import (
	"bytes"
	"strings"
	"testing"
)

// TestCommandGroupHelp: "cairn <group> -h" prints the group's usage and
// succeeds; an unknown subcommand is a usage error (exit 2).
func TestCommandGroupHelp(t *testing.T) {
	for _, group := range []string{"events", "verify", "forwarders", "keys", "orgs", "contexts", "users", "policies"} {
		for _, h := range []string{"-h", "--help", "help"} {
			var out, errb bytes.Buffer
			if code := run(t.Context(), []string{group, h}, &out, &errb); code != 0 || !strings.HasPrefix(out.String(), "usage: cairn "+group) {
				t.Errorf("cairn %s %s: exit %d, stdout %q, stderr %q", group, h, code, out.String(), errb.String())
			}
		}
		var out, errb bytes.Buffer
		if code := run(t.Context(), []string{group, "bogus"}, &out, &errb); code != 2 {
			t.Errorf("cairn %s bogus: exit %d, want 2", group, code)
		}
	}
}

// TestCommandHelp: every command's -h succeeds and never prints a secret
// taken from the environment (flag defaults are shown in help).
func TestCommandHelp(t *testing.T) {
	const secret = "cairn_secret_that_must_not_be_printed"
	t.Setenv("CAIRN_TOKEN", secret)
	t.Setenv("CAIRN_BOOTSTRAP_TOKEN", secret)
	t.Setenv("CAIRN_CHECKPOINT_EXPORT_TOKEN", secret)
	for _, cmd := range [][]string{
		{"serve"}, {"events", "write"}, {"events", "query"}, {"events", "trail"}, {"export"},
		{"verify", "log"}, {"verify", "receipt"}, {"verify", "consistency"}, {"fsck"},
		{"keys", "add-signing"}, {"keys", "create"}, {"forwarders", "list"}, {"forwarders", "create"}, {"forwarders", "replay"},
		{"login"}, {"orgs", "list"}, {"contexts", "list"}, {"users", "create"}, {"serviceaccounts", "list"},
		{"groups", "add-member"}, {"policies", "create"}, {"access"},
	} {
		var out, errb bytes.Buffer
		code := run(t.Context(), append(cmd, "-h"), &out, &errb)
		if code != 0 {
			t.Errorf("cairn %s -h: exit %d, stderr %q", strings.Join(cmd, " "), code, errb.String())
		}
		if strings.Contains(out.String()+errb.String(), secret) {
			t.Errorf("cairn %s -h prints a secret from the environment", strings.Join(cmd, " "))
		}
	}
}
