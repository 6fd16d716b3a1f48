package retraced

import (
	"testing"

	"github.com/cairn-audit/cairn"
)

// FuzzParseEvent: any body is a valid event whose hash target is stable,
// or an invalid / too_large error; never a panic.
func FuzzParseEvent(f *testing.F) {
	for _, s := range []string{
		`{"action":"a","crud":"c","actor":{"id":"x"}}`,
		`{"action":"user.login","group":{"id":"g1","name":""},"created":"0001-01-01T00:00:00Z","crud":"","actor":{"id":"a1"}}`,
		`{"action":"a","crud":"u","is_anonymous":true,"fields":{"%:=;":"%:=;"},"metadata":{},"external_id":"e"}`,
		`{"action":"a","crud":"c","actor":{"id":"x"},"target":null,"group":{}}`,
		`{"action":1}`, `[]`, `{"action":"a","action":"b"}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		e, err := ParseEvent(data)
		if err != nil {
			if c := cairn.ErrorCode(err); c != cairn.EInvalid && c != cairn.ETooLarge {
				t.Fatalf("code %s: %v", c, err)
			}
			return
		}
		if e.Action == "" {
			t.Fatal("accepted an event without an action")
		}
		if a, b := e.HashTarget("id"), e.HashTarget("id"); a != b {
			t.Fatal("hash target not deterministic")
		}
	})
}

// FuzzParseQuery: any query parses or fails with invalid, and a parsed
// query can be matched and pushed down without a panic.
func FuzzParseQuery(f *testing.F) {
	for _, s := range []string{
		`action:"user.*" crud:"c" actor.id:abc`, `actor.name:%!q(MISSING)Bob`,
		`received:2017-01-01T00:00:00Z,`, `created:,2030-01-01`, `fields.k:"a b",c some words "quoted text"`,
		`crud:c,u,d location:"New York"`, `::: "unterminated`, `action:*`,
	} {
		f.Add(s)
	}
	e := &cairn.Event{ID: "0190d5a0-0000-7000-8000-000000000000", Action: "user.login", Kind: cairn.KindCreate,
		Actor: &cairn.Actor{ID: "abc", Name: "Bob"}, Fields: map[string]string{"k": "a b"}}
	f.Fuzz(func(t *testing.T, s string) {
		q, err := ParseQuery(s)
		if err != nil {
			if cairn.ErrorCode(err) != cairn.EInvalid {
				t.Fatalf("code %s: %v", cairn.ErrorCode(err), err)
			}
			return
		}
		q.Match(e)
		q.Filter()
	})
}
