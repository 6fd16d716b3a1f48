package ingest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/cairn-audit/cairn"
	jsonv2 "github.com/go-json-experiment/json"
	"github.com/google/go-cmp/cmp"
)

const testID = "0195f3c2-7d1e-7b3a-9c4d-2e5f6a7b8c9d"

var testReceived = time.Date(2026, 3, 1, 12, 0, 0, 500, time.UTC)

// ingestOne runs the whole pipeline on one raw event.
func ingestOne(data []byte, rules []cairn.RedactionRule) (*cairn.Event, cairn.Leaf, error) {
	in, err := DecodeEvent(data)
	if err != nil {
		return nil, cairn.Leaf{}, err
	}
	e, err := Normalize(in, "acme", "docs", testID, testReceived, rules)
	if err != nil {
		return nil, cairn.Leaf{}, err
	}
	leaf, err := Canonical(e)
	return e, leaf, err
}

func TestDecodeEvent(t *testing.T) {
	data := []byte(`{
		"event_time": "2026-03-01T13:00:00.25+01:00",
		"action": "document.update", "kind": "update", "outcome": "failure", "reason": "denied",
		"actor": {"type": "user", "id": "u1", "name": "Al\u0069ce", "email": "a@example.com", "claims": {"role": "admin"}},
		"target": {"type": "document", "id": "d1", "name": "Report", "href": "https://x/d1", "data": {"n": [1, 2.5, true, null, "s"]}},
		"group": {"id": "g1", "name": "Acme"},
		"changes": [{"field": "title", "old": "a", "new": {"x": -0}}, {"field": "tags"}],
		"source": {"ip": "203.0.113.7", "user_agent": "curl/8", "request_id": "r1", "location": "Berlin"},
		"title": "T", "description": "D", "component": "C", "version": "V", "external_id": "E",
		"fields": {"env": "prod"}, "metadata": {"big": 9007199254740992, "exp": 1E30, "\u20ac": {}}
	}`)
	got, err := DecodeEvent(data)
	if err != nil {
		t.Fatal(err)
	}
	want := &Input{
		EventTime: time.Date(2026, 3, 1, 13, 0, 0, 250000000, time.FixedZone("", 3600)),
		Action:    "document.update", Kind: "update", Outcome: "failure", Reason: "denied",
		Actor:   &cairn.Actor{Type: "user", ID: "u1", Name: "Alice", Email: "a@example.com", Claims: map[string]any{"role": "admin"}},
		Target:  &cairn.Target{Type: "document", ID: "d1", Name: "Report", Href: "https://x/d1", Data: map[string]any{"n": []any{1.0, 2.5, true, nil, "s"}}},
		Group:   &cairn.Group{ID: "g1", Name: "Acme"},
		Changes: []cairn.Change{{Field: "title", Old: "a", New: map[string]any{"x": 0.0}}, {Field: "tags"}},
		Source:  &cairn.Source{IP: "203.0.113.7", UserAgent: "curl/8", RequestID: "r1", Location: "Berlin"},
		Title:   "T", Description: "D", Component: "C", Version: "V", ExternalID: "E",
		Fields:   map[string]string{"env": "prod"},
		Metadata: map[string]any{"big": 9007199254740992.0, "exp": 1e30, "€": map[string]any{}},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("DecodeEvent mismatch (-want +got):\n%s", diff)
	}
}

// TestDecodeEventMatchesJSONv2 checks the hand-written decoder against
// go-json-experiment/json's Unmarshal with unknown members rejected, on
// random events written by encoding/json (which escapes <, > and &).
func TestDecodeEventMatchesJSONv2(t *testing.T) {
	g := newGen(2, true)
	for i := range 2000 {
		in := g.input()
		data, err := json.Marshal(in)
		if err != nil {
			t.Fatal(err)
		}
		if i%3 == 0 {
			var b bytes.Buffer
			if err := json.Indent(&b, data, "\t", "  "); err != nil {
				t.Fatal(err)
			}
			data = b.Bytes()
		}
		got, err := DecodeEvent(data)
		if err != nil {
			t.Fatalf("event %d: DecodeEvent: %v\n%s", i, err, data)
		}
		var want Input
		if err := jsonv2.Unmarshal(data, &want, jsonv2.RejectUnknownMembers(true)); err != nil {
			t.Fatalf("event %d: json v2: %v", i, err)
		}
		if diff := cmp.Diff(&want, got); diff != "" {
			t.Fatalf("event %d: mismatch (-json v2 +DecodeEvent):\n%s\n%s", i, diff, data)
		}
	}
}

func TestDecodeEventAccepts(t *testing.T) {
	tests := []struct {
		name string
		data string
	}{
		{"minimal", `{"action":"a"}`},
		{"event_time forms", `{"action":"a","event_time":"2026-03-01T10:00:00.123456789-23:59"}`},
		{"whitespace", " \t\r\n{ \"action\" : \"a\" }\n "},
		{"escaped name", `{"act\u0069on":"a"}`},
		{"nulls", `{"action":"a","event_time":null,"kind":null,"actor":null,"target":null,"group":null,"changes":null,"source":null,"fields":null,"metadata":null}`},
		{"2^53", `{"action":"a","metadata":{"n":9007199254740992,"m":-9007199254740992}}`},
		{"2^53+2 is exact", `{"action":"a","metadata":{"n":9007199254740994}}`},
		{"1e20 in digits is exact", `{"action":"a","metadata":{"n":100000000000000000000}}`},
		{"big float", `{"action":"a","metadata":{"n":9007199254740993.0,"m":1e30,"o":6.02214076e23}}`},
		{"underflow", `{"action":"a","metadata":{"n":1e-400}}`},
		{"surrogate pair", `{"action":"\ud83d\ude00"}`},
		{"html", `{"action":"<a>&amp;"}`},
		{"empty key", `{"action":"a","metadata":{"":1}}`},
		{"nesting at the limit", `{"action":"a","metadata":` + strings.Repeat(`{"a":`, MaxDepth-1) + `1` + strings.Repeat(`}`, MaxDepth-1) + `}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, _, err := ingestOne([]byte(tt.data), nil); err != nil {
				t.Errorf("%s: %v", tt.data, err)
			}
		})
	}
}

// TestRejects runs bad input through the whole pipeline.
func TestRejects(t *testing.T) {
	tests := []struct {
		name string
		data string
		code string
	}{
		// malformed JSON
		{"empty", ``, cairn.EInvalid},
		{"blank", " \n", cairn.EInvalid},
		{"truncated", `{"action":"a"`, cairn.EInvalid},
		{"missing value", `{"action":}`, cairn.EInvalid},
		{"unquoted name", `{action:"a"}`, cairn.EInvalid},
		{"trailing comma", `{"action":"a",}`, cairn.EInvalid},
		{"single quotes", `{"action":'a'}`, cairn.EInvalid},
		{"bad literal", `{"action":"a","metadata":{"k":tru}}`, cairn.EInvalid},
		{"NaN", `{"action":"a","metadata":{"k":NaN}}`, cairn.EInvalid},
		{"leading zero", `{"action":"a","metadata":{"k":01}}`, cairn.EInvalid},
		{"raw control char in string", "{\"action\":\"a\x01\"}", cairn.EInvalid},
		{"BOM", "\ufeff{\"action\":\"a\"}", cairn.EInvalid},
		{"not an object", `"action"`, cairn.EInvalid},
		{"array", `[{"action":"a"}]`, cairn.EInvalid},
		{"null", `null`, cairn.EInvalid},
		// trailing garbage
		{"trailing text", `{"action":"a"} x`, cairn.EInvalid},
		{"second object", `{"action":"a"}{"action":"b"}`, cairn.EInvalid},
		{"trailing bracket", `{"action":"a"}]`, cairn.EInvalid},
		// wrong types
		{"action number", `{"action":1}`, cairn.EInvalid},
		{"action array", `{"action":["a"]}`, cairn.EInvalid},
		{"actor string", `{"action":"a","actor":"bob"}`, cairn.EInvalid},
		{"actor.email number", `{"action":"a","actor":{"email":1}}`, cairn.EInvalid},
		{"claims string", `{"action":"a","actor":{"claims":"x"}}`, cairn.EInvalid},
		{"changes object", `{"action":"a","changes":{}}`, cairn.EInvalid},
		{"change number", `{"action":"a","changes":[1]}`, cairn.EInvalid},
		{"change null", `{"action":"a","changes":[null]}`, cairn.EInvalid},
		{"fields value number", `{"action":"a","fields":{"k":1}}`, cairn.EInvalid},
		{"metadata array", `{"action":"a","metadata":[]}`, cairn.EInvalid},
		{"event_time number", `{"action":"a","event_time":1}`, cairn.EInvalid},
		{"event_time words", `{"action":"a","event_time":"yesterday"}`, cairn.EInvalid},
		{"event_time with space", `{"action":"a","event_time":"2026-03-01 12:00:00Z"}`, cairn.EInvalid},
		{"event_time without zone", `{"action":"a","event_time":"2026-03-01T12:00:00"}`, cairn.EInvalid},
		{"event_time hour 24", `{"action":"a","event_time":"2026-03-01T24:00:00Z"}`, cairn.EInvalid},
		{"event_time one-digit hour", `{"action":"a","event_time":"2026-03-01T1:00:00Z"}`, cairn.EInvalid},
		{"event_time comma fraction", `{"action":"a","event_time":"2026-03-01T10:00:00,5Z"}`, cairn.EInvalid},
		{"event_time empty fraction", `{"action":"a","event_time":"2026-03-01T10:00:00.Z"}`, cairn.EInvalid},
		{"event_time zone hour 24", `{"action":"a","event_time":"2026-03-01T10:00:00+24:00"}`, cairn.EInvalid},
		{"event_time zone minute 60", `{"action":"a","event_time":"2026-03-01T10:00:00+01:60"}`, cairn.EInvalid},
		{"event_time lower-case z", `{"action":"a","event_time":"2026-03-01T10:00:00z"}`, cairn.EInvalid},
		{"event_time leap second", `{"action":"a","event_time":"2026-06-30T23:59:60Z"}`, cairn.EInvalid},
		{"event_time February 30", `{"action":"a","event_time":"2026-02-30T10:00:00Z"}`, cairn.EInvalid},
		// missing or invalid members
		{"missing action", `{"kind":"read"}`, cairn.EInvalid},
		{"empty object", `{}`, cairn.EInvalid},
		{"empty action", `{"action":""}`, cairn.EInvalid},
		{"null action", `{"action":null}`, cairn.EInvalid},
		{"long action", `{"action":"` + strings.Repeat("a", 257) + `"}`, cairn.EInvalid},
		{"control char in action", `{"action":"a\u0007"}`, cairn.EInvalid},
		{"newline in action", `{"action":"a\nb"}`, cairn.EInvalid},
		{"C1 control in actor.id", `{"action":"a","actor":{"id":"\u0085"}}`, cairn.EInvalid},
		{"unknown kind", `{"action":"a","kind":"Update"}`, cairn.EInvalid},
		{"unknown outcome", `{"action":"a","outcome":"ok"}`, cairn.EInvalid},
		{"unknown actor type", `{"action":"a","actor":{"type":"robot"}}`, cairn.EInvalid},
		{"change without field", `{"action":"a","changes":[{"old":1}]}`, cairn.EInvalid},
		{"long description", `{"action":"a","description":"` + strings.Repeat("d", 16<<10+1) + `"}`, cairn.EInvalid},
		{"control char in fields key", `{"action":"a","fields":{"a\u0000":"v"}}`, cairn.EInvalid},
		{"event_time year 0 east of UTC", `{"action":"a","event_time":"0000-01-01T00:00:00+01:00"}`, cairn.EInvalid},
		// unknown and server-assigned members
		{"unknown field", `{"action":"a","foo":1}`, cairn.EInvalid},
		{"wrong case", `{"action":"a","Action":"b"}`, cairn.EInvalid},
		{"unknown actor field", `{"action":"a","actor":{"role":"x"}}`, cairn.EInvalid},
		{"unknown change field", `{"action":"a","changes":[{"field":"f","diff":1}]}`, cairn.EInvalid},
		{"id", `{"action":"a","id":"x"}`, cairn.EInvalid},
		{"org", `{"action":"a","org":"x"}`, cairn.EInvalid},
		{"context", `{"action":"a","context":"x"}`, cairn.EInvalid},
		{"seq", `{"action":"a","seq":1}`, cairn.EInvalid},
		{"received_time", `{"action":"a","received_time":"2026-03-01T12:00:00Z"}`, cairn.EInvalid},
		// invalid UTF-8
		{"invalid UTF-8 in value", "{\"action\":\"a\xff\"}", cairn.EInvalid},
		{"invalid UTF-8 in name", "{\"action\":\"a\",\"\xff\":1}", cairn.EInvalid},
		{"invalid UTF-8 in metadata key", "{\"action\":\"a\",\"metadata\":{\"k\xc3\":1}}", cairn.EInvalid},
		{"overlong UTF-8", "{\"action\":\"\xc0\xaf\"}", cairn.EInvalid},
		{"UTF-8 encoded surrogate", "{\"action\":\"\xed\xa0\x80\"}", cairn.EInvalid},
		// lone surrogates
		{"lone high surrogate", `{"action":"\ud800"}`, cairn.EInvalid},
		{"lone low surrogate", `{"action":"a","metadata":{"k":"\udc00"}}`, cairn.EInvalid},
		{"reversed pair", `{"action":"\ude00\ud83d"}`, cairn.EInvalid},
		{"lone surrogate in key", `{"action":"a","metadata":{"\ud800":1}}`, cairn.EInvalid},
		// duplicate names
		{"duplicate top-level", `{"action":"a","action":"b"}`, cairn.EInvalid},
		{"duplicate via escape", `{"action":"a","\u0061ction":"b"}`, cairn.EInvalid},
		{"duplicate in actor", `{"action":"a","actor":{"id":"1","id":"2"}}`, cairn.EInvalid},
		{"duplicate in metadata", `{"action":"a","metadata":{"k":1,"k":2}}`, cairn.EInvalid},
		{"duplicate deep", `{"action":"a","changes":[{"field":"f","new":[{"x":{"y":1,"y":1}}]}]}`, cairn.EInvalid},
		// numbers
		{"2^53+1", `{"action":"a","metadata":{"n":9007199254740993}}`, cairn.EInvalid},
		{"-(2^53+1)", `{"action":"a","metadata":{"n":-9007199254740993}}`, cairn.EInvalid},
		{"int64 max", `{"action":"a","actor":{"claims":{"n":9223372036854775807}}}`, cairn.EInvalid},
		{"big int in change", `{"action":"a","changes":[{"field":"f","old":12345678901234567890}]}`, cairn.EInvalid},
		{"overflow", `{"action":"a","metadata":{"n":1e400}}`, cairn.EInvalid},
		// size and depth
		{"too deep", `{"action":"a","metadata":` + strings.Repeat(`{"a":`, MaxDepth) + `1` + strings.Repeat(`}`, MaxDepth) + `}`, cairn.EInvalid},
		{"too deep array", `{"action":"a","metadata":{"a":` + strings.Repeat(`[`, MaxDepth) + strings.Repeat(`]`, MaxDepth) + `}}`, cairn.EInvalid},
		{"leaf too large", `{"action":"a","metadata":{"k":"` + strings.Repeat("x", cairn.MaxLeafSize) + `"}}`, cairn.ETooLarge},
		{"input too large", `{"action":"a","metadata":{"k":"` + strings.Repeat(" ", MaxEvent) + `"}}`, cairn.ETooLarge},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := ingestOne([]byte(tt.data), nil)
			if got := cairn.ErrorCode(err); got != tt.code {
				t.Errorf("code %q, want %q (err %v)", got, tt.code, err)
			}
		})
	}
}

// TestErrorPaths checks that messages name the offending member, as the
// API contract promises, and never quote its value.
func TestErrorPaths(t *testing.T) {
	tests := []struct {
		data string
		path string
	}{
		{`{"action":"a","actor":{"email":1}}`, "actor.email"},
		{`{"action":"a","actor":{"email":"x","email":"y"}}`, "actor.email"},
		{`{"action":"a","changes":[{"field":"a"},{"field":"b","x":"hunter2"}]}`, "changes[1].x"},
		{`{"action":"a","changes":[{"field":"a"},{"old":"hunter2"}]}`, "changes[1].field"},
		{`{"action":"a","metadata":{"a.b":[0,{"n":9007199254740993}]}}`, `metadata["a.b"][1].n`},
		{`{"action":"a","metadata":{"k":{"d":"hunter2","d":2}}}`, "metadata.k.d"},
		{`{"action":"a","target":{"data":{"k":"\ud800hunter2"}}}`, "target.data.k"},
		{"{\"action\":\"a\",\"source\":{\"ip\":\"hunter2\xff\"}}", "source.ip"},
		{`{"action":"a","id":"hunter2"}`, "id"},
		{`{"action":"a","fields":{"k":"hunter2\u0001"}}`, "fields.k"},
		{`{"action":"hunter2\u0007"}`, "action"},
		{`{"action":"a","event_time":"hunter2"}`, "event_time"},
		{`{"action":"a","kind":"hunter2"}`, "kind"},
	}
	for _, tt := range tests {
		_, _, err := ingestOne([]byte(tt.data), nil)
		if cairn.ErrorCode(err) != cairn.EInvalid {
			t.Errorf("%s: err %v, want code invalid", tt.data, err)
			continue
		}
		msg := cairn.ErrorMessage(err)
		if !strings.HasPrefix(msg, tt.path+": ") {
			t.Errorf("%s: message %q does not start with %q", tt.data, msg, tt.path+": ")
		}
		if strings.Contains(err.Error(), "hunter2") {
			t.Errorf("%s: error %q quotes the value", tt.data, err)
		}
	}
}

func TestParseNumber(t *testing.T) {
	tests := []struct {
		lit string
		ok  bool
	}{
		{"0", true}, {"-0", true}, {"9007199254740991", true}, {"9007199254740992", true},
		{"9007199254740993", false}, {"-9007199254740993", false}, {"9007199254740994", true},
		{"18446744073709551616", true}, {"18446744073709551615", false}, {"1e400", false},
		{"1e308", true}, {"1.5", true}, {"9007199254740993.0", true}, {"9007199254740993e0", true},
		{"179769313486231570000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000", false},
	}
	for _, tt := range tests {
		_, err := parseNumber([]byte(tt.lit))
		if (err == nil) != tt.ok {
			t.Errorf("parseNumber(%s): err %v, want ok=%v", tt.lit, err, tt.ok)
		}
	}
}

func ExampleDecodeEvent() {
	_, err := DecodeEvent([]byte(`{"action":"user.login","actor":{"email":42}}`))
	fmt.Println(cairn.ErrorCode(err), cairn.ErrorMessage(err))
	// Output: invalid actor.email: expected string
}
