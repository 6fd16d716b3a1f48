package ingest

import (
	"bytes"
	"testing"
	"time"

	"github.com/cairn-audit/cairn"
	jsonv2 "github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"
)

// benchEvent is a realistic ~600-byte event: a document update by a user,
// with two changes, claims, target data, source and metadata.
var benchEvent = []byte(`{"event_time":"2026-03-01T12:34:56.789Z","action":"document.update","kind":"update",` +
	`"actor":{"type":"user","id":"u-1234567","name":"Alice Example","email":"alice@example.com","claims":{"role":"admin"}},` +
	`"target":{"type":"document","id":"doc-98765","name":"Quarterly report","data":{"folder":"finance"}},` +
	`"group":{"id":"acme","name":"Acme Corp"},` +
	`"changes":[{"field":"title","old":"Q1 draft","new":"Q1 report"},{"field":"status","old":"draft","new":"published"}],` +
	`"source":{"ip":"203.0.113.7","user_agent":"Mozilla/5.0 Firefox/128.0","request_id":"req-3f2a9c"},` +
	`"component":"docs-api","metadata":{"trace_id":"4bf92f3577b34da6a3ce929d0e0e4736","attempt":1}}`)

var benchRules = []cairn.RedactionRule{{Field: "ssn", Mode: cairn.RedactExclude}}

// BenchmarkDecodeNormalizeCanonical measures the whole per-event ingest
// path before the commit.
func BenchmarkDecodeNormalizeCanonical(b *testing.B) {
	received := time.Date(2026, 3, 1, 12, 34, 57, 123456789, time.UTC)
	b.SetBytes(int64(len(benchEvent)))
	b.ReportAllocs()
	for b.Loop() {
		in, err := DecodeEvent(benchEvent)
		if err != nil {
			b.Fatal(err)
		}
		e, err := Normalize(in, "acme", "docs", "0195f3c2-7d1e-7b3a-9c4d-2e5f6a7b8c9d", received, benchRules)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := Canonical(e); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkDecodeEvent(b *testing.B) {
	b.SetBytes(int64(len(benchEvent)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := DecodeEvent(benchEvent); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkNormalize(b *testing.B) {
	in, err := DecodeEvent(benchEvent)
	if err != nil {
		b.Fatal(err)
	}
	received := time.Date(2026, 3, 1, 12, 34, 57, 123456789, time.UTC)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Normalize(in, "acme", "docs", "0195f3c2-7d1e-7b3a-9c4d-2e5f6a7b8c9d", received, benchRules); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkCanonical(b *testing.B) {
	in, err := DecodeEvent(benchEvent)
	if err != nil {
		b.Fatal(err)
	}
	e, err := Normalize(in, "acme", "docs", "0195f3c2-7d1e-7b3a-9c4d-2e5f6a7b8c9d", time.Now(), nil)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Canonical(e); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkCanonicalViaMarshal is the simple approach Canonical does not
// take, kept for comparison: marshal with json v2, then canonicalise.
func BenchmarkCanonicalViaMarshal(b *testing.B) {
	in, err := DecodeEvent(benchEvent)
	if err != nil {
		b.Fatal(err)
	}
	e, err := Normalize(in, "acme", "docs", "0195f3c2-7d1e-7b3a-9c4d-2e5f6a7b8c9d", time.Now(), nil)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		v, err := jsonv2.Marshal(e)
		if err != nil {
			b.Fatal(err)
		}
		if err := (*jsontext.Value)(&v).Canonicalize(); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkSplitBody splits a JSON array of 1,000 events; ns/op divided by
// 1,000 is the cost per event.
func BenchmarkSplitBody(b *testing.B) {
	body := append([]byte("["), bytes.Repeat(append(benchEvent, ','), 1000)...)
	body[len(body)-1] = ']'
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := SplitBody(body, "application/json"); err != nil {
			b.Fatal(err)
		}
	}
}
