package ingest

import (
	"strings"
	"testing"
	"time"

	"github.com/cairn-audit/cairn"
	"github.com/google/go-cmp/cmp"
)

func TestNormalize(t *testing.T) {
	received := time.Date(2026, 3, 1, 13, 0, 0, 0, time.FixedZone("CET", 3600))
	tests := []struct {
		name string
		data string
		want *cairn.Event
	}{
		{
			name: "defaults",
			data: `{"action":"user.login"}`,
			want: &cairn.Event{
				ID: testID, Org: "acme", Context: "docs",
				EventTime: received.UTC(), ReceivedTime: received.UTC(),
				Action: "user.login", Kind: cairn.KindOther, Outcome: cairn.OutcomeSuccess,
			},
		},
		{
			name: "times in UTC, empty parts dropped",
			data: `{"action":"a","kind":"login_failed","outcome":"failure","event_time":"2026-03-01T14:30:00.5+02:00",
				"actor":{},"target":{"data":{}},"group":{},"source":{},"changes":[],"fields":{},"metadata":{}}`,
			want: &cairn.Event{
				ID: testID, Org: "acme", Context: "docs",
				EventTime: time.Date(2026, 3, 1, 12, 30, 0, 500000000, time.UTC), ReceivedTime: received.UTC(),
				Action: "a", Kind: cairn.KindLoginFailed, Outcome: cairn.OutcomeFailure,
			},
		},
		{
			name: "everything",
			data: `{"action":"doc.update","kind":"update","reason":"r","title":"t","description":"line 1\nline 2",
				"component":"c","version":"v","external_id":"x",
				"actor":{"type":"serviceaccount","id":"sa","name":"n","email":"e","claims":{"k":"v"}},
				"target":{"type":"doc","id":"1","name":"n","href":"h","data":{"k":1}},
				"group":{"id":"g"},"source":{"ip":"::1","user_agent":"ua","request_id":"r","location":"l"},
				"changes":[{"field":"f","old":null,"new":false}],"fields":{"k":"tab\there"},"metadata":{"k":null}}`,
			want: &cairn.Event{
				ID: testID, Org: "acme", Context: "docs",
				EventTime: received.UTC(), ReceivedTime: received.UTC(),
				Action: "doc.update", Kind: cairn.KindUpdate, Outcome: cairn.OutcomeSuccess,
				Reason: "r", Title: "t", Description: "line 1\nline 2", Component: "c", Version: "v", ExternalID: "x",
				Actor:    &cairn.Actor{Type: cairn.ActorServiceAccount, ID: "sa", Name: "n", Email: "e", Claims: map[string]any{"k": "v"}},
				Target:   &cairn.Target{Type: "doc", ID: "1", Name: "n", Href: "h", Data: map[string]any{"k": 1.0}},
				Group:    &cairn.Group{ID: "g"},
				Source:   &cairn.Source{IP: "::1", UserAgent: "ua", RequestID: "r", Location: "l"},
				Changes:  []cairn.Change{{Field: "f", New: false}},
				Fields:   map[string]string{"k": "tab\there"},
				Metadata: map[string]any{"k": nil},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in, err := DecodeEvent([]byte(tt.data))
			if err != nil {
				t.Fatal(err)
			}
			got, err := Normalize(in, "acme", "docs", testID, received, nil)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("Normalize mismatch (-want +got):\n%s", diff)
			}
			if got.EventTime.Location() != time.UTC || got.ReceivedTime.Location() != time.UTC {
				t.Errorf("times not in UTC: %v, %v", got.EventTime, got.ReceivedTime)
			}
		})
	}
}

func TestNormalizeLimits(t *testing.T) {
	tests := []struct {
		name string
		in   Input
		ok   bool
	}{
		{"action at limit", Input{Action: strings.Repeat("a", 256)}, true},
		{"action over limit", Input{Action: strings.Repeat("a", 257)}, false},
		{"actor.email at limit", Input{Action: "a", Actor: &cairn.Actor{Email: strings.Repeat("e", 1024)}}, true},
		{"actor.email over limit", Input{Action: "a", Actor: &cairn.Actor{Email: strings.Repeat("e", 1025)}}, false},
		{"href over limit", Input{Action: "a", Target: &cairn.Target{Href: strings.Repeat("h", 4097)}}, false},
		{"description at limit", Input{Action: "a", Description: strings.Repeat("d", 16384)}, true},
		{"fields value over limit", Input{Action: "a", Fields: map[string]string{"k": strings.Repeat("v", 4097)}}, false},
		{"fields key over limit", Input{Action: "a", Fields: map[string]string{strings.Repeat("k", 257): "v"}}, false},
		{"change field over limit", Input{Action: "a", Changes: []cairn.Change{{Field: strings.Repeat("f", 257)}}}, false},
		{"tab in reason", Input{Action: "a", Reason: "a\tb\r\n"}, true},
		{"tab in title", Input{Action: "a", Title: "a\tb"}, false},
		{"DEL in group.name", Input{Action: "a", Group: &cairn.Group{Name: "a\x7f"}}, false},
		{"NUL in description", Input{Action: "a", Description: "a\x00"}, false},
		{"invalid UTF-8 in component", Input{Action: "a", Component: "\xff"}, false},
		{"control chars in metadata are fine", Input{Action: "a", Metadata: map[string]any{"\x00": "\x01\u0085"}}, true},
		{"every actor type", Input{Action: "a", Actor: &cairn.Actor{Type: cairn.ActorWorkload}}, true},
		{"actor type case", Input{Action: "a", Actor: &cairn.Actor{Type: "User"}}, false},
		{"year 9999", Input{Action: "a", EventTime: time.Date(9999, 12, 31, 23, 59, 59, 999999999, time.UTC)}, true},
		{"year 10000 in UTC", Input{Action: "a", EventTime: time.Date(9999, 12, 31, 23, 59, 59, 0, time.FixedZone("", -3600))}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Normalize(&tt.in, "acme", "docs", testID, testReceived, nil)
			if tt.ok && err != nil {
				t.Errorf("unexpected error: %v", err)
			}
			if !tt.ok && cairn.ErrorCode(err) != cairn.EInvalid {
				t.Errorf("err %v, want code invalid", err)
			}
		})
	}
}

func TestNormalizeServerArguments(t *testing.T) {
	in := &Input{Action: "a"}
	for _, tt := range []struct {
		name             string
		in               *Input
		org, context, id string
		received         time.Time
	}{
		{"nil input", nil, "o", "c", "i", testReceived},
		{"no org", in, "", "c", "i", testReceived},
		{"no context", in, "o", "", "i", testReceived},
		{"no id", in, "o", "c", "", testReceived},
		{"no received time", in, "o", "c", "i", time.Time{}},
	} {
		_, err := Normalize(tt.in, tt.org, tt.context, tt.id, tt.received, nil)
		if got := cairn.ErrorCode(err); got != cairn.EInternal {
			t.Errorf("%s: code %q, want internal", tt.name, got)
		}
	}
}
