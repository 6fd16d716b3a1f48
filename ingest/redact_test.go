package ingest

import (
	"bytes"
	"strings"
	"testing"

	"github.com/cairn-audit/cairn"
	"github.com/google/go-cmp/cmp"
)

// redactable is the part of an event that redaction touches.
type redactable struct {
	Changes  []cairn.Change
	Claims   map[string]any
	Data     map[string]any
	Fields   map[string]string
	Metadata map[string]any
}

func redactableOf(e *cairn.Event) redactable {
	r := redactable{Changes: e.Changes, Fields: e.Fields, Metadata: e.Metadata}
	if e.Actor != nil {
		r.Claims = e.Actor.Claims
	}
	if e.Target != nil {
		r.Data = e.Target.Data
	}
	return r
}

func TestRedaction(t *testing.T) {
	tests := []struct {
		name  string
		data  string
		rules []cairn.RedactionRule
		want  redactable
	}{
		{
			name: "nothing to redact",
			data: `{"action":"a","changes":[{"field":"title","old":"a","new":"b"}],"metadata":{"k":{"v":[1]}}}`,
			want: redactable{
				Changes:  []cairn.Change{{Field: "title", Old: "a", New: "b"}},
				Metadata: map[string]any{"k": map[string]any{"v": []any{1.0}}},
			},
		},
		{
			name: "default mask on change fields, any case",
			data: `{"action":"a","changes":[{"field":"password","old":"p1","new":"p2"},{"field":"Client_Secret","new":"s"},{"field":"TOKEN","old":"t"}]}`,
			want: redactable{Changes: []cairn.Change{
				{Field: "password", Old: "***", New: "***"},
				{Field: "Client_Secret", New: "***"},
				{Field: "TOKEN", Old: "***"},
			}},
		},
		{
			name: "dotted and slashed paths are judged by their last segment",
			data: `{"action":"a","changes":[{"field":"user.Password","old":"p1","new":"p2"},{"field":"creds/token","new":"t"},{"field":"meta.updated_at","new":"x"},{"field":"password.policy","new":"strict"}]}`,
			want: redactable{Changes: []cairn.Change{
				{Field: "user.Password", Old: "***", New: "***"},
				{Field: "creds/token", New: "***"},
				{Field: "password.policy", New: "strict"},
			}},
		},
		{
			name: "default exclude drops churn changes",
			data: `{"action":"a","changes":[{"field":"updated_at","old":"1","new":"2"},{"field":"name","old":"a","new":"b"},{"field":"Created_At","new":"3"}]}`,
			want: redactable{Changes: []cairn.Change{{Field: "name", Old: "a", New: "b"}}},
		},
		{
			name: "all changes excluded",
			data: `{"action":"a","changes":[{"field":"updated_at","new":"2"}]}`,
			want: redactable{},
		},
		{
			name: "objects inside change values",
			data: `{"action":"a","changes":[{"field":"user","old":{"name":"a","password":"x"},"new":{"name":"b","Password":{"h":"y"},"updated_at":"t","list":[{"api_key":"k"}]}}]}`,
			want: redactable{Changes: []cairn.Change{{
				Field: "user",
				Old:   map[string]any{"name": "a", "password": "***"},
				New:   map[string]any{"name": "b", "Password": "***", "list": []any{map[string]any{"api_key": "***"}}},
			}}},
		},
		{
			name: "claims, data, metadata and fields",
			data: `{"action":"a",
				"actor":{"id":"u","claims":{"role":"admin","access_token":"x","nested":{"Refresh_Token":"y"}}},
				"target":{"id":"t","data":{"items":[{"secret":"s"},{"ok":1}],"created_at":"c"}},
				"fields":{"authorization":"Bearer x","env":"prod","updated_at":"t"},
				"metadata":{"a":{"b":{"API_KEY":"k"}},"cookie":{"session":"v"},"set-cookie":["a","b"]}}`,
			want: redactable{
				Claims:   map[string]any{"role": "admin", "access_token": "***", "nested": map[string]any{"Refresh_Token": "***"}},
				Data:     map[string]any{"items": []any{map[string]any{"secret": "***"}, map[string]any{"ok": 1.0}}},
				Fields:   map[string]string{"authorization": "***", "env": "prod"},
				Metadata: map[string]any{"a": map[string]any{"b": map[string]any{"API_KEY": "***"}}, "cookie": "***", "set-cookie": "***"},
			},
		},
		{
			name: "excluding the only member omits the object",
			data: `{"action":"a","metadata":{"updated_at":"t"},"fields":{"created_at":"c"},"actor":{"id":"u","claims":{"updated_at":"t"}}}`,
			want: redactable{},
		},
		{
			name:  "context rules, matched in any case",
			data:  `{"action":"a","changes":[{"field":"ssn","old":"1"},{"field":"Email","old":"a@x","new":"b@x"}],"metadata":{"SSN":"123","k":[{"ssn":"4"}]},"fields":{"Ssn":"5"}}`,
			rules: []cairn.RedactionRule{{Field: "SSN", Mode: cairn.RedactExclude}, {Field: "email", Mode: cairn.RedactMask}},
			want: redactable{
				Changes:  []cairn.Change{{Field: "Email", Old: "***", New: "***"}},
				Metadata: map[string]any{"k": []any{map[string]any{}}},
			},
		},
		{
			name: "context rules override defaults",
			data: `{"action":"a","changes":[{"field":"password","new":"p"},{"field":"updated_at","old":"1","new":"2"}]}`,
			rules: []cairn.RedactionRule{
				{Field: "Password", Mode: cairn.RedactExclude},
				{Field: "updated_at", Mode: cairn.RedactMask},
			},
			want: redactable{Changes: []cairn.Change{{Field: "updated_at", Old: "***", New: "***"}}},
		},
		{
			name:  "a rule with an unknown mode masks",
			data:  `{"action":"a","metadata":{"note":"n"}}`,
			rules: []cairn.RedactionRule{{Field: "note", Mode: "drop"}},
			want:  redactable{Metadata: map[string]any{"note": "***"}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e, _, err := ingestOne([]byte(tt.data), tt.rules)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, redactableOf(e)); diff != "" {
				t.Errorf("redaction mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

// TestRedactionNeverLeaks puts a secret under every default-denied name in
// every place redaction covers and checks that no leaf byte carries it.
func TestRedactionNeverLeaks(t *testing.T) {
	const secret = "hunter2"
	for _, rule := range DefaultRedaction() {
		for _, name := range []string{rule.Field, strings.ToUpper(rule.Field)} {
			data := strings.ReplaceAll(`{"action":"a",
				"actor":{"id":"u","claims":{"N":"S","x":[{"N":"S"}]}},
				"target":{"id":"t","data":{"N":{"deep":"S"},"y":{"z":{"N":["S"]}}}},
				"changes":[{"field":"N","old":"S","new":"S"},{"field":"f","old":{"N":"S"},"new":[{"N":"S"}]}],
				"fields":{"N":"S"},
				"metadata":{"N":"S","m":[[{"N":"S"}]]}}`, "N", name)
			data = strings.ReplaceAll(data, `"S"`, `"`+secret+`"`)
			_, leaf, err := ingestOne([]byte(data), nil)
			if err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			if b := leaf.Bytes(7); bytes.Contains(b, []byte(secret)) {
				t.Errorf("%s: the leaf contains the secret: %s", name, b)
			}
		}
	}
}

// TestNormalizeLeavesInputAlone checks that redaction copies instead of
// modifying the caller's maps and slices.
func TestNormalizeLeavesInputAlone(t *testing.T) {
	data := []byte(`{"action":"a",
		"actor":{"claims":{"token":"t","k":{"password":"p"}}},
		"target":{"data":{"l":[{"secret":"s"}]}},
		"changes":[{"field":"ok","new":1},{"field":"password","new":"p"},{"field":"updated_at","new":"u"}],
		"fields":{"cookie":"c"},
		"metadata":{"api_key":"k","created_at":"c"}}`)
	in, err := DecodeEvent(data)
	if err != nil {
		t.Fatal(err)
	}
	before, err := DecodeEvent(data)
	if err != nil {
		t.Fatal(err)
	}
	rules := []cairn.RedactionRule{{Field: "OK", Mode: cairn.RedactMask}}
	rulesBefore := append([]cairn.RedactionRule(nil), rules...)
	if _, err := Normalize(in, "acme", "docs", testID, testReceived, rules); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(before, in); diff != "" {
		t.Errorf("Normalize modified its input (-before +after):\n%s", diff)
	}
	if diff := cmp.Diff(rulesBefore, rules); diff != "" {
		t.Errorf("Normalize modified the rules (-before +after):\n%s", diff)
	}
}

func TestDefaultRedaction(t *testing.T) {
	rules := DefaultRedaction()
	if err := ValidateRules(rules); err != nil {
		t.Fatalf("DefaultRedaction is not valid: %v", err)
	}
	for _, r := range rules {
		if r.Field != strings.ToLower(r.Field) {
			t.Errorf("%q is not lower case", r.Field)
		}
	}
	rules[0].Mode = cairn.RedactExclude // a copy: the package's list is unchanged
	if DefaultRedaction()[0] == rules[0] {
		t.Error("DefaultRedaction returned the package's own slice")
	}
}

func TestValidateRules(t *testing.T) {
	tests := []struct {
		name  string
		rules []cairn.RedactionRule
		code  string
	}{
		{"none", nil, ""},
		{"valid", []cairn.RedactionRule{{Field: "ssn", Mode: cairn.RedactExclude}, {Field: "email", Mode: cairn.RedactMask}}, ""},
		{"empty field", []cairn.RedactionRule{{Field: "", Mode: cairn.RedactMask}}, cairn.EInvalid},
		{"unknown mode", []cairn.RedactionRule{{Field: "ssn", Mode: "drop"}}, cairn.EInvalid},
		{"empty mode", []cairn.RedactionRule{{Field: "ssn"}}, cairn.EInvalid},
		{"duplicate in another case", []cairn.RedactionRule{{Field: "ssn", Mode: cairn.RedactMask}, {Field: "SSN", Mode: cairn.RedactExclude}}, cairn.EInvalid},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := cairn.ErrorCode(ValidateRules(tt.rules)); got != tt.code {
				t.Errorf("code %q, want %q", got, tt.code)
			}
		})
	}
}
