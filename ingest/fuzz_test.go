package ingest

import (
	"bytes"
	"encoding/json"
	"testing"

	"github.com/cairn-audit/cairn"
	jsonv2 "github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"
	"github.com/google/go-cmp/cmp"
	"github.com/gowebpki/jcs"
)

var fuzzRules = []cairn.RedactionRule{{Field: "SSN", Mode: cairn.RedactExclude}, {Field: "email", Mode: cairn.RedactMask}}

func addEventSeeds(f *testing.F) {
	f.Add(benchEvent)
	for _, s := range []string{
		`{"action":"a"}`,
		`{"action":"a","metadata":{"seq":1,"\u20ac":[1e21,0.1,-0,1e-7],"\ufb33":"<>&","\ud83d\ude02":"\u0000\u001f"}}`,
		`{"action":"a","changes":[{"field":"password","old":"x","new":{"token":"y"}},{"field":"updated_at","new":1}]}`,
		`{"action":"a","fields":{"cookie":"c","SSN":"1"},"actor":{"claims":{"Email":"e"}}}`,
		`{"action":"a","event_time":"2026-03-01T12:00:00.000000001-07:00"}`,
		`{"action":"a","metadata":{"n":9007199254740993}}`,
		`{"action":"\ud800"}`,
		`{"action":"a","action":"b"}`,
	} {
		f.Add([]byte(s))
	}
	g := newGen(3, true)
	for range 20 {
		b, err := json.Marshal(g.input())
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
}

// FuzzDecodeEvent runs the whole per-event path. It must never panic; an
// event DecodeEvent accepts must decode the same with json v2's Unmarshal;
// and an event that gets through has a leaf within the size limit that is
// valid JSON already in RFC 8785 canonical form.
func FuzzDecodeEvent(f *testing.F) {
	addEventSeeds(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		in, err := DecodeEvent(data)
		if err != nil {
			if c := cairn.ErrorCode(err); c != cairn.EInvalid && c != cairn.ETooLarge {
				t.Fatalf("DecodeEvent: code %q: %v", c, err)
			}
			return
		}
		var want Input
		if err := jsonv2.Unmarshal(data, &want, jsonv2.RejectUnknownMembers(true)); err != nil {
			t.Fatalf("DecodeEvent accepted what json v2 rejects (%v): %q", err, data)
		}
		if diff := cmp.Diff(&want, in); diff != "" {
			t.Fatalf("DecodeEvent differs from json v2 (-v2 +DecodeEvent):\n%s", diff)
		}
		e, err := Normalize(in, "acme", "docs", testID, testReceived, fuzzRules)
		if err != nil {
			if c := cairn.ErrorCode(err); c != cairn.EInvalid {
				t.Fatalf("Normalize: code %q: %v", c, err)
			}
			return
		}
		leaf, err := Canonical(e)
		if err != nil {
			// Decoding guarantees valid UTF-8, finite numbers and bounded
			// depth: only the size can still fail.
			if c := cairn.ErrorCode(err); c != cairn.ETooLarge {
				t.Fatalf("Canonical: code %q: %v", c, err)
			}
			return
		}
		for _, seq := range []int64{0, 9007199254740991} {
			b := leaf.Bytes(seq)
			if len(b) > cairn.MaxLeafSize {
				t.Fatalf("leaf of %d bytes exceeds %d", len(b), cairn.MaxLeafSize)
			}
			if !jsontext.Value(b).IsValid() {
				t.Fatalf("leaf is not valid JSON: %q", b)
			}
			canon, err := jcs.Transform(b)
			if err != nil {
				t.Fatalf("jcs.Transform: %v\n%q", err, b)
			}
			if !bytes.Equal(canon, b) {
				t.Fatalf("leaf is not canonical\n got %q\nwant %q", b, canon)
			}
		}
	})
}

// FuzzSplitBody checks that splitting never panics, honours the limits, and
// returns non-empty sub-slices of the body that DecodeEvent can be given.
func FuzzSplitBody(f *testing.F) {
	for _, s := range []string{
		`{"action":"a"}`, `[{"action":"a"},{"action":"b"}]`, `[1,"x",null,[],{}]`, `[]`, ` [ {"s":"]"} ] `,
		"{\"a\":1}\n\n{\"b\":2}\r\n", `[{"a":1},`, `"x"`, "[{\"k\":\"\xff\"},{\"a\":1,\"a\":2}]",
	} {
		f.Add([]byte(s), false)
		f.Add([]byte(s), true)
	}
	f.Fuzz(func(t *testing.T, body []byte, isNDJSON bool) {
		contentType := "application/json"
		if isNDJSON {
			contentType = ndjson
		}
		items, batch, err := SplitBody(body, contentType)
		if err != nil {
			if c := cairn.ErrorCode(err); c != cairn.EInvalid && c != cairn.ETooLarge {
				t.Fatalf("code %q: %v", c, err)
			}
			return
		}
		if len(items) == 0 || len(items) > MaxBatch {
			t.Fatalf("%d items", len(items))
		}
		if !batch && (isNDJSON || len(items) != 1) {
			t.Fatalf("batch = false with %d items, NDJSON %v", len(items), isNDJSON)
		}
		for i, it := range items {
			if len(it) == 0 || !bytes.Contains(body, it) {
				t.Fatalf("item %d %q is empty or not from the body", i, it)
			}
			if isNDJSON && bytes.IndexByte(it, '\n') >= 0 {
				t.Fatalf("NDJSON item %d spans lines: %q", i, it)
			}
			if batch && !isNDJSON && !jsontext.Value(it).IsValid(jsontext.AllowDuplicateNames(true), jsontext.AllowInvalidUTF8(true)) {
				t.Fatalf("array item %d is not one JSON value: %q", i, it)
			}
			_, _ = DecodeEvent(it)
		}
	})
}
