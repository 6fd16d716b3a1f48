package ingest

import (
	"strings"
	"testing"

	"github.com/cairn-audit/cairn"
	"github.com/google/go-cmp/cmp"
)

const ndjson = "application/x-ndjson"

func TestSplitBody(t *testing.T) {
	tests := []struct {
		name        string
		body        string
		contentType string
		want        []string
		batch       bool
	}{
		{"object", `{"action":"a"}`, "application/json", []string{`{"action":"a"}`}, false},
		{"object with whitespace", "\n {\"action\":\"a\"} \r\n", "", []string{`{"action":"a"}`}, false},
		{"object with trailing data is DecodeEvent's business", `{"a":1} {"b":2}`, "application/json", []string{`{"a":1} {"b":2}`}, false},
		{"NDJSON sent as JSON", "{\"a\":1}\n{\"b\":2}", "application/json", []string{"{\"a\":1}\n{\"b\":2}"}, false},
		{"array", `[{"a":1}, {"b":[2]} ]`, "application/json", []string{`{"a":1}`, `{"b":[2]}`}, true},
		{"array of one", ` [ {"a":1} ] `, "", []string{`{"a":1}`}, true},
		{"brackets in strings", `[{"s":"]"},{"t":"[,\"}"}]`, "", []string{`{"s":"]"}`, `{"t":"[,\"}"}`}, true},
		{"non-object items", `[{"a":1},2,"x",[],null,true]`, "", []string{`{"a":1}`, `2`, `"x"`, `[]`, `null`, `true`}, true},
		{"bad items are kept", "[{\"a\":1,\"a\":2},{\"k\":\"\xff\"}]", "", []string{`{"a":1,"a":2}`, "{\"k\":\"\xff\"}"}, true},
		{"NDJSON", "{\"a\":1}\n{\"b\":2}\n", ndjson, []string{`{"a":1}`, `{"b":2}`}, true},
		{"NDJSON blank lines and CRLF", "\n{\"a\":1}\r\n\r\n  \t\n{\"b\":2}", ndjson, []string{`{"a":1}`, `{"b":2}`}, true},
		{"NDJSON of one", `{"a":1}`, ndjson, []string{`{"a":1}`}, true},
		{"NDJSON non-object lines", "42\n[1]\n{\"a\":1}", ndjson, []string{"42", "[1]", `{"a":1}`}, true},
		{"NDJSON content type parameters", "{\"a\":1}\n{}", "Application/X-NDJSON; charset=utf-8", []string{`{"a":1}`, `{}`}, true},
		{"application/ndjson", "{}\n{}", "application/ndjson", []string{`{}`, `{}`}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			items, batch, err := SplitBody([]byte(tt.body), tt.contentType)
			if err != nil {
				t.Fatal(err)
			}
			got := make([]string, len(items))
			for i, it := range items {
				got[i] = string(it)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("items mismatch (-want +got):\n%s", diff)
			}
			if batch != tt.batch {
				t.Errorf("batch = %v, want %v", batch, tt.batch)
			}
		})
	}
}

func TestSplitBodyErrors(t *testing.T) {
	many := func(n int, sep string) string { return strings.Repeat(`{}`+sep, n) }
	tests := []struct {
		name        string
		body        string
		contentType string
		code        string
	}{
		{"empty", ``, "", cairn.EInvalid},
		{"blank", " \r\n\t", "application/json", cairn.EInvalid},
		{"empty array", `[]`, "", cairn.EInvalid},
		{"blank array", "[ \n ]", "", cairn.EInvalid},
		{"empty NDJSON", "\n\r\n  \n", ndjson, cairn.EInvalid},
		{"string", `"event"`, "", cairn.EInvalid},
		{"number", `1`, "", cairn.EInvalid},
		{"null", `null`, "", cairn.EInvalid},
		{"garbage", `<event/>`, "", cairn.EInvalid},
		{"unterminated array", `[{"a":1},`, "", cairn.EInvalid},
		{"missing comma", `[{"a":1} {"b":2}]`, "", cairn.EInvalid},
		{"unbalanced item", `[{"a":1}}]`, "", cairn.EInvalid},
		{"broken item", `[{"a":tru}]`, "", cairn.EInvalid},
		{"data after array", `[{"a":1}] x`, "", cairn.EInvalid},
		{"second array", `[{"a":1}][{"b":2}]`, "", cairn.EInvalid},
		{"too many in array", "[" + strings.TrimSuffix(many(MaxBatch+1, ","), ",") + "]", "", cairn.ETooLarge},
		{"too many lines", many(MaxBatch+1, "\n"), ndjson, cairn.ETooLarge},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := SplitBody([]byte(tt.body), tt.contentType)
			if got := cairn.ErrorCode(err); got != tt.code {
				t.Errorf("code %q, want %q (err %v)", got, tt.code, err)
			}
		})
	}
}

func TestSplitBodyAtLimit(t *testing.T) {
	array := "[" + strings.TrimSuffix(strings.Repeat(`{},`, MaxBatch), ",") + "]"
	lines := strings.Repeat("{}\n", MaxBatch)
	for _, tt := range []struct{ body, contentType string }{{array, "application/json"}, {lines, ndjson}} {
		items, _, err := SplitBody([]byte(tt.body), tt.contentType)
		if err != nil || len(items) != MaxBatch {
			t.Errorf("%s: %d items, err %v; want %d items", tt.contentType, len(items), err, MaxBatch)
		}
	}
}

// TestSplitBodyItemsAreIsolated checks that appending to an item cannot
// overwrite the next one.
func TestSplitBodyItemsAreIsolated(t *testing.T) {
	for _, tt := range []struct{ body, contentType string }{{`[{"a":1},{"b":2}]`, ""}, {"{\"a\":1}\n{\"b\":2}", ndjson}} {
		items, _, err := SplitBody([]byte(tt.body), tt.contentType)
		if err != nil {
			t.Fatal(err)
		}
		_ = append(items[0], "XXXXXXXX"...)
		if string(items[1]) != `{"b":2}` {
			t.Errorf("%q: appending to item 0 changed item 1 to %q", tt.body, items[1])
		}
	}
}
