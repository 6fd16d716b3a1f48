package main

import (
	"bytes"
	"strings"
	"testing"
)

// TestCommandGroupHelp: "cairn <group> -h" prints the group's usage and
// succeeds; an unknown subcommand is a usage error (exit 2).
func TestCommandGroupHelp(t *testing.T) {
	for _, group := range []string{"events", "verify", "forwarders", "keys"} {
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
