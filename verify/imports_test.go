package verify

import (
	"os/exec"
	"strings"
	"testing"
)

// TestImports enforces the package's rule: it depends on no Cairn package
// (the verifier must not share code with the server it checks), and its
// direct imports are the standard library and the third-party
// transparency-log libraries only.
func TestImports(t *testing.T) {
	if _, err := exec.LookPath("go"); err != nil {
		t.Fatal("the go command is needed to list dependencies")
	}
	out, err := exec.Command("go", "list", "-deps", ".").Output()
	if err != nil {
		t.Fatalf("go list -deps: %v", err)
	}
	const self = "github.com/cairn-audit/cairn/verify"
	deps := strings.Fields(string(out))
	if len(deps) < 10 {
		t.Fatalf("go list -deps listed only %v", deps)
	}
	for _, d := range deps {
		if strings.HasPrefix(d, "github.com/cairn-audit/") && d != self {
			t.Errorf("verify depends on Cairn package %s", d)
		}
	}

	out, err = exec.Command("go", "list", "-f", `{{join .Imports "\n"}}`, ".").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	allowed := []string{
		"golang.org/x/mod/sumdb/tlog", "golang.org/x/mod/sumdb/note",
		"github.com/transparency-dev/merkle/", "github.com/transparency-dev/formats/",
		"filippo.io/torchwood",
	}
	for _, imp := range strings.Fields(string(out)) {
		std := !strings.Contains(strings.SplitN(imp, "/", 2)[0], ".")
		ok := std
		for _, a := range allowed {
			ok = ok || imp == a || strings.HasPrefix(imp, a)
		}
		if !ok {
			t.Errorf("verify imports %s, which is neither the standard library nor an allowed verifier library", imp)
		}
	}
}
