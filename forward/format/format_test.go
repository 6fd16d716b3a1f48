package format

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cairn-audit/cairn"
)

var update = flag.Bool("update", false, "rewrite the golden files")

// events are the golden inputs: one per mapping branch, plus one whose
// strings need every CEF escape.
func events() map[string]*cairn.Event {
	at := time.Date(2026, 3, 1, 12, 30, 45, 123456000, time.UTC)
	rcv := at.Add(250 * time.Millisecond)
	base := func(id, action, kind string) *cairn.Event {
		return &cairn.Event{ID: id, Org: "acme", Context: "app", Seq: 41, EventTime: at, ReceivedTime: rcv,
			Action: action, Kind: kind, Outcome: cairn.OutcomeSuccess}
	}
	upd := base("0195a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b", "document.update", cairn.KindUpdate)
	upd.Actor = &cairn.Actor{Type: cairn.ActorUser, ID: "u-42", Name: "Ann", Email: "ann@example.com", Claims: map[string]any{"role": "editor"}}
	upd.Target = &cairn.Target{Type: "document", ID: "d-7", Name: "Plan", Href: "https://app.example/d/7"}
	upd.Group = &cairn.Group{ID: "tenant-1", Name: "Tenant One"}
	upd.Changes = []cairn.Change{{Field: "title", Old: "a", New: "b"}, {Field: "password", Old: "***", New: "***"}}
	upd.Source = &cairn.Source{IP: "203.0.113.9", UserAgent: "curl/8.5", RequestID: "req-1", Location: "Berlin"}
	upd.Description = "renamed the plan"
	upd.Fields = map[string]string{"env": "prod"}

	login := base("0195a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5c", "user.login_failed", cairn.KindLoginFailed)
	login.Outcome = cairn.OutcomeFailure
	login.Reason = "bad password"
	login.Actor = &cairn.Actor{Type: cairn.ActorUser, ID: "u-9", Email: "bob@example.com"}
	login.Source = &cairn.Source{IP: "198.51.100.4", UserAgent: "Mozilla/5.0"}

	pw := base("0195a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5d", "user.password_change", cairn.KindUpdate)
	pw.Actor = &cairn.Actor{Type: cairn.ActorSystem, ID: "system"}
	pw.Target = &cairn.Target{Type: "user", ID: "u-9", Name: "Bob"}

	sa := base("0195a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5e", "serviceaccount.create", cairn.KindCreate)
	sa.Actor = &cairn.Actor{Type: cairn.ActorAPIToken, ID: "key-1", Name: "ci"}
	sa.Target = &cairn.Target{Type: "serviceaccount", ID: "sa-3", Name: "deployer"}
	sa.Metadata = map[string]any{"scopes": []any{"read", "write"}, "n": float64(3)}

	weird := base("0195a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5f", `odd|action\name`, cairn.KindOther)
	weird.Title = "line1\nline2|pipe"
	weird.Description = "k=v \\ back\r\nslash"
	weird.Actor = &cairn.Actor{Type: cairn.ActorWorkload, ID: "w=1", Name: "wl"}
	weird.Target = &cairn.Target{Type: "a=b", ID: "c\nd"}

	read := base("0195a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a60", "report.read", cairn.KindRead)
	return map[string]*cairn.Event{"update": upd, "login_failed": login, "password_change": pw,
		"principal_create": sa, "escapes": weird, "minimal_read": read}
}

func leafOf(t *testing.T, e *cairn.Event) []byte {
	t.Helper()
	b, err := json.Marshal(e)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestGolden(t *testing.T) {
	for name, e := range events() {
		for _, f := range Names {
			t.Run(name+"."+f, func(t *testing.T) {
				leaf := leafOf(t, e)
				got, err := Encode(f, e, leaf)
				if err != nil {
					t.Fatal(err)
				}
				if f == cairn.FormatJSON && !bytes.Equal(got, leaf) {
					t.Fatal("native JSON is not the leaf byte for byte")
				}
				if IsJSON(f) {
					var v map[string]any
					if err := json.Unmarshal(got, &v); err != nil {
						t.Fatalf("%s output is not a JSON object: %v", f, err)
					}
					// Every format carries what receivers de-duplicate on.
					for _, want := range []string{e.ID, `"app"`, "41"} {
						if !bytes.Contains(got, []byte(want)) {
							t.Fatalf("%s output lacks %s: %s", f, want, got)
						}
					}
				}
				if f == cairn.FormatJSON {
					return // the leaf is the test's own input
				}
				path := filepath.Join("testdata", name+"."+f+".golden")
				if *update {
					if err := os.WriteFile(path, append(got, '\n'), 0o644); err != nil {
						t.Fatal(err)
					}
				}
				want, err := os.ReadFile(path)
				if err != nil {
					t.Fatalf("%v (run with -update to create)", err)
				}
				if string(want) != string(got)+"\n" {
					t.Fatalf("%s differs from %s:\n got %s\nwant %s", f, path, got, want)
				}
			})
		}
	}
}

func TestUnknownFormat(t *testing.T) {
	if _, err := Encode("leef", events()["update"], nil); cairn.ErrorCode(err) != cairn.EInvalid {
		t.Fatalf("unknown format: %v, want invalid", err)
	}
}

func TestOCSFClass(t *testing.T) {
	for _, c := range []struct {
		kind, action, target string
		class, activity      int
	}{
		{cairn.KindCreate, "doc.create", "document", ClassAPIActivity, 1},
		{cairn.KindRead, "doc.read", "document", ClassAPIActivity, 2},
		{cairn.KindAccess, "doc.open", "document", ClassAPIActivity, 2},
		{cairn.KindUpdate, "doc.update", "document", ClassAPIActivity, 3},
		{cairn.KindDelete, "doc.delete", "document", ClassAPIActivity, 4},
		{cairn.KindOther, "doc.export", "document", ClassAPIActivity, 99},
		{cairn.KindLogin, "user.login", "", ClassAuthentication, 1},
		{cairn.KindLoginFailed, "user.login_failed", "user", ClassAuthentication, 1},
		{cairn.KindCreate, "user.create", "user", ClassAccountChange, 1},
		{cairn.KindDelete, "user.delete", "user", ClassAccountChange, 6},
		{cairn.KindUpdate, "user.password_reset", "user", ClassAccountChange, 3},
		{cairn.KindUpdate, "user.disable", "user", ClassAccountChange, 5},
		{cairn.KindUpdate, "user.enable", "user", ClassAccountChange, 2},
		{cairn.KindUpdate, "user.lock", "user", ClassAccountChange, 9},
		{cairn.KindUpdate, "user.unlock", "user", ClassAccountChange, 12},
		{cairn.KindUpdate, "user.rename", "user", ClassAccountChange, 99},
		{cairn.KindRead, "user.read", "user", ClassAPIActivity, 2},
	} {
		e := &cairn.Event{Kind: c.kind, Action: c.action}
		if c.target != "" {
			e.Target = &cairn.Target{Type: c.target}
		}
		class, act := OCSFClass(e)
		if class != c.class || act != c.activity {
			t.Errorf("%s %s on %q: class %d activity %d, want %d %d", c.kind, c.action, c.target, class, act, c.class, c.activity)
		}
	}
}

func TestCEFEscaping(t *testing.T) {
	for _, c := range []struct{ in, header, value string }{
		{`a|b`, `a\|b`, `a|b`},
		{`a\b`, `a\\b`, `a\\b`},
		{`a=b`, `a=b`, `a\=b`},
		{"a\nb", "a b", `a\nb`},
		{"a\rb", "a b", `a\rb`},
		{"a\r\nb", "a b", `a\r\nb`},
		{`\|=`, `\\\|=`, `\\|\=`},
	} {
		if got := CEFHeader(c.in); got != c.header {
			t.Errorf("CEFHeader(%q) = %q, want %q", c.in, got, c.header)
		}
		if got := CEFValue(c.in); got != c.value {
			t.Errorf("CEFValue(%q) = %q, want %q", c.in, got, c.value)
		}
	}
	line := CEF(events()["escapes"])
	if strings.ContainsAny(line, "\r\n") {
		t.Fatalf("CEF line holds a raw line break: %q", line)
	}
	if n := strings.Count(unescapedPipes(line), "|"); n != 7 {
		t.Fatalf("CEF line has %d unescaped header separators, want 7: %s", n, line)
	}
}

// unescapedPipes returns the header part of a CEF line with escaped
// characters removed, so only separators remain.
func unescapedPipes(line string) string {
	var b strings.Builder
	pipes := 0
	for i := 0; i < len(line) && pipes < 7; i++ {
		switch line[i] {
		case '\\':
			i++
		case '|':
			pipes++
			b.WriteByte('|')
		}
	}
	return b.String()
}

// unescapeValue inverts CEFValue; ok is false for an escape CEF does not
// define or an unescaped "=".
func unescapeValue(s string) (string, bool) {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch c {
		case '=', '\n', '\r':
			return "", false
		case '\\':
			if i+1 == len(s) {
				return "", false
			}
			i++
			switch s[i] {
			case '\\', '=':
				b.WriteByte(s[i])
			case 'n':
				b.WriteByte('\n')
			case 'r':
				b.WriteByte('\r')
			default:
				return "", false
			}
		default:
			b.WriteByte(c)
		}
	}
	return b.String(), true
}

func FuzzCEFValue(f *testing.F) {
	for _, s := range []string{"", `a\b`, "a=b", "x\ny\r", `\=\n`, "k=v \\ back\r\nslash"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		esc := CEFValue(s)
		back, ok := unescapeValue(esc)
		if !ok || back != s {
			t.Fatalf("CEFValue(%q) = %q does not round-trip (got %q, ok %v)", s, esc, back, ok)
		}
		h := CEFHeader(s)
		if strings.ContainsAny(h, "\r\n") {
			t.Fatalf("CEFHeader(%q) = %q holds a line break", s, h)
		}
		if strings.Count(unescapedPipes(h+"|||||||"), "|") != 7 {
			t.Fatalf("CEFHeader(%q) = %q leaks an unescaped |", s, h)
		}
	})
}
