package httpapi

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/cairn-audit/cairn"
	"github.com/cairn-audit/cairn/ingest"
)

// benchBody returns a JSON array of n events shaped like those of the
// bench tool (bench/gen.go): about 600 bytes each, with actor, target,
// group, two changes, source and description.
func benchBody(n int) []byte {
	var b bytes.Buffer
	b.WriteByte('[')
	for i := range n {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, `{"action":"document.update","kind":"update","outcome":"success",`+
			`"actor":{"type":"user","id":"user-%06d","name":"User %06d","email":"user-%06d@example.com"},`+
			`"target":{"type":"document","id":"obj-%07d","name":"Quarterly report %07d"},`+
			`"group":{"id":"tenant-%04d","name":"Tenant %04d"},`+
			`"changes":[{"field":"status","old":"draft","new":"review"},{"field":"title","old":"Q3 budget forecast plan","new":"budget forecast plan (final)"}],`+
			`"source":{"ip":"203.0.113.%d","user_agent":"Mozilla/5.0 (X11; Linux x86_64; rv:131.0) Gecko/20100101 Firefox/131.0","request_id":"req-%012d"},`+
			`"description":"Quarterly report updated via web-editor: budget forecast review approved","component":"web-editor","version":"4.2.1"}`,
			i%5000, i%5000, i%5000, i%200000, i%200000, i%50, i%50, 1+i%254, i)
	}
	b.WriteByte(']')
	return b.Bytes()
}

// BenchmarkWriteEventsPrepare measures the request side of a batch write
// of 1,000 events up to the commit: reading the body, splitting it and
// preparing every event (decode, id, normalise, redact, canonical leaf),
// as writeEvents does.
func BenchmarkWriteEventsPrepare(b *testing.B) {
	const n = 1000
	body := benchBody(n)
	s := &Server{}
	c := &cairn.Context{Org: "acme", Name: "app", Redaction: []cairn.RedactionRule{{Field: "ssn", Mode: cairn.RedactExclude}}}
	received := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		r := httptest.NewRequest("POST", "/api/v1/orgs/acme/contexts/app/events", bytes.NewReader(body))
		w := httptest.NewRecorder()
		got, err := readLimited(w, r, ingest.MaxBody)
		if err != nil {
			b.Fatal(err)
		}
		items, _, err := ingest.SplitBody(got, "application/json")
		if err != nil {
			b.Fatal(err)
		}
		req := &cairn.AppendRequest{Org: "acme", Context: "app", Entries: make([]cairn.Entry, 0, len(items))}
		results := make([]WriteResult, len(items))
		if _, rejected := s.prepareAll(r, items, c, received, req, results); rejected > 0 {
			b.Fatalf("%d rejected: %v", rejected, results[0].Error)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/event")
}

// BenchmarkWriteEventsRespond measures the response to a committed batch
// of 1,000 events.
func BenchmarkWriteEventsRespond(b *testing.B) {
	const n = 1000
	results := make([]WriteResult, n)
	for i := range results {
		seq := int64(1_000_000 + i)
		results[i] = WriteResult{ID: "0195f3c2-7d1e-7b3a-9c4d-2e5f6a7b8c9d", Seq: &seq,
			LeafHash: base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{byte(i)}, 32))}
	}
	b.ReportAllocs()
	for b.Loop() {
		w := httptest.NewRecorder()
		writeJSON(w, http.StatusCreated, BatchResult{Items: results})
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/event")
}
