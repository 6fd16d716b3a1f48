package httpapi

import (
	"testing"
	"time"

	"github.com/cairn-audit/cairn"
	"github.com/cairn-audit/cairn/ingest"
)

// FuzzCPEvent: any body either decodes into an event that maps onto a
// valid native event, or fails with invalid / too_large; it never panics.
func FuzzCPEvent(f *testing.F) {
	for _, s := range []string{
		`{"resource": {"id": "anyid123", "type": "anytype"}}`,
		`{"eventTime":"2021-01-02T13:01:02.345Z","subject":{"email":"b@c.d","claims":{}},"resource":{"id":"a","type":"b","data":{"x":[1,2]}},"action":{"type":"edit"},"result":{"status":"Error"},"context":{"podId":"p"}}`,
		`{"resource":{"id":"a","type":"b"},"resource":{}}`,
		`{"resource":null}`, `[]`, `{"resource":{"id":"\ud800","type":"x"}}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		ev, err := DecodeCPEvent(body)
		if err != nil {
			if c := cairn.ErrorCode(err); c != cairn.EInvalid && c != cairn.ETooLarge {
				t.Fatalf("decode error code %s: %v", c, err)
			}
			return
		}
		in, err := ev.Input("org", "ctx", &cairn.Source{IP: "127.0.0.1"})
		if err != nil {
			if c := cairn.ErrorCode(err); c != cairn.EInvalid && c != cairn.ETooLarge {
				t.Fatalf("map error code %s: %v", c, err)
			}
			return
		}
		e, err := ingest.Normalize(in, "org", "ctx", "0190d5a0-0000-7000-8000-000000000000", timeForFuzz, nil)
		if err != nil {
			if c := cairn.ErrorCode(err); c != cairn.EInvalid && c != cairn.ETooLarge {
				t.Fatalf("normalize error code %s: %v", c, err)
			}
			return
		}
		if e.Target == nil || e.Target.ID != ev.Resource.ID || e.Target.Type != ev.Resource.Type {
			t.Fatalf("resource lost: %+v", e.Target)
		}
		if v := renderCP(e); v.Resource["id"] != ev.Resource.ID {
			t.Fatalf("render lost the resource id")
		}
	})
}

var timeForFuzz = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
