package retraced

import (
	"testing"
	"time"

	"github.com/cairn-audit/cairn"
	"github.com/google/go-cmp/cmp"
)

func TestParseQuery(t *testing.T) {
	q, err := ParseQuery(`action:"user.*" crud:c,u actor.id:abc actor.id:def fields.k:"a b" received:2017-01-01T00:00:00Z, some "quoted text" foo:bar`)
	if err != nil {
		t.Fatal(err)
	}
	want := &Query{Actions: []string{"user.*"}, CRUD: []string{"c", "u"}, ActorIDs: []string{"abc", "def"},
		Fields: map[string][]string{"k": {"a b"}}, Received: Range{From: time.Date(2017, 1, 1, 0, 0, 0, 0, time.UTC)},
		Text: []string{"some", "quoted", "text", "foo:bar"}}
	if d := cmp.Diff(want, q); d != "" {
		t.Fatalf("parse (-want +got):\n%s", d)
	}
	for _, bad := range []string{"received:yesterday,", "created:,", "received:2017-01-01,soon"} {
		if _, err := ParseQuery(bad); cairn.ErrorCode(err) != cairn.EInvalid {
			t.Errorf("%s: %v, want invalid", bad, err)
		}
	}
}

func TestQueryMatch(t *testing.T) {
	at := time.Date(2024, 5, 6, 7, 8, 9, 0, time.UTC)
	e := &cairn.Event{ID: "0190d5a0-0000-7000-8000-000000000000", Action: "user.login", Kind: cairn.KindUpdate,
		EventTime: at, ReceivedTime: at, Description: "Logged in from the new laptop",
		Actor:  &cairn.Actor{ID: "abc", Name: "Bob Builder"},
		Target: &cairn.Target{ID: "t1", Name: "Main Site", Type: "site"},
		Fields: map[string]string{"k": "v"}, ExternalID: "ext-1",
		Source: &cairn.Source{Location: "New York"}}
	cases := []struct {
		q    string
		want bool
	}{
		{"", true},
		{"action:user.login", true}, {"action:user.*", true}, {"action:user", false}, {"action:x,user.login", true},
		{"crud:u", true}, {"crud:c,d", false},
		{"actor.id:abc", true}, {"actor.id:ab", false},
		{"actor.name:bob", true}, {`actor.name:"builder bob"`, true}, {"actor.name:%!q(MISSING)Bob", false},
		{"description:laptop", true}, {"target.name:main", true}, {"target.type:site", true}, {"target.id:t2", false},
		{"fields.k:v", true}, {"fields.k:w", false}, {"fields.x:v", false},
		{"external_id:ext-1", true}, {`location:"new york"`, true},
		{"received:2024-05-06T07:08:09Z,2024-05-06T07:08:10Z", true}, {"received:,2024-05-06T07:08:09Z", false},
		{"created:2024-05-07,", false},
		{"laptop bob", true}, {"laptop alice", false},
	}
	for _, tc := range cases {
		q, err := ParseQuery(tc.q)
		if err != nil {
			t.Fatalf("%s: %v", tc.q, err)
		}
		if got := q.Match(e); got != tc.want {
			t.Errorf("%q: match %v, want %v", tc.q, got, tc.want)
		}
	}
}
