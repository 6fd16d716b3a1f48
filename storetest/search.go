package storetest

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/cairn-audit/cairn"
)

// corpus appends a known set of events to acme/app and acme/ops and returns
// their ids in commit order.
func corpus(t *testing.T, s cairn.Store) []string {
	t.Helper()
	if _, err := s.CreateContext(t.Context(), &cairn.Context{Org: "acme", Name: "ops"}); err != nil {
		t.Fatal(err)
	}
	base := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	var ids []string
	for i := range 40 {
		ctxName := "app"
		if i%4 == 3 {
			ctxName = "ops"
		}
		e := cairn.Event{
			Action:    []string{"user.login", "user.logout", "doc.update", "doc.read"}[i%4],
			Kind:      []string{cairn.KindLogin, cairn.KindOther, cairn.KindUpdate, cairn.KindRead}[i%4],
			Outcome:   []string{cairn.OutcomeSuccess, cairn.OutcomeFailure}[i%5/4],
			EventTime: base.Add(time.Duration(i) * time.Hour),
			Actor: &cairn.Actor{Type: []string{cairn.ActorUser, cairn.ActorServiceAccount}[i%2],
				ID: fmt.Sprintf("u%d", i%3), Email: fmt.Sprintf("u%d@example.com", i%3), Name: "Alice Example"},
			Target: &cairn.Target{Type: "doc", ID: fmt.Sprintf("d%d", i%5), Name: "quarterly report"},
			Group:  &cairn.Group{ID: []string{"g1", "g2"}[i%2]},
		}
		if i == 17 {
			e.Description = "rotated the zebra credentials"
			e.Changes = []cairn.Change{{Field: "colour", Old: "striped", New: "plain"}}
		}
		c := appendN(t, s, "acme", ctxName, 1, func(int) cairn.Event { return e })
		ids = append(ids, c[0].ID)
	}
	return ids
}

func testSearch(t *testing.T, f Factory) {
	s, _ := open(t, f)
	setup(t, s)
	ids := corpus(t, s)
	// want returns the ids of corpus events i (newest first) that pass keep.
	want := func(keep func(i int) bool) []string {
		var out []string
		for i := len(ids) - 1; i >= 0; i-- {
			if keep(i) {
				out = append(out, ids[i])
			}
		}
		return out
	}
	base := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	cases := []struct {
		name string
		f    cairn.Filter
		keep func(i int) bool
	}{
		{"all", cairn.Filter{}, func(int) bool { return true }},
		{"context", cairn.Filter{Context: "ops"}, func(i int) bool { return i%4 == 3 }},
		{"unknown context", cairn.Filter{Context: "ghost"}, func(int) bool { return false }},
		{"action", cairn.Filter{Action: "doc.update"}, func(i int) bool { return i%4 == 2 }},
		{"action prefix", cairn.Filter{ActionPrefix: "user."}, func(i int) bool { return i%4 < 2 }},
		{"kind", cairn.Filter{Kind: cairn.KindRead}, func(i int) bool { return i%4 == 3 }},
		{"outcome", cairn.Filter{Outcome: cairn.OutcomeFailure}, func(i int) bool { return i%5 == 4 }},
		{"actor id", cairn.Filter{ActorID: "u1"}, func(i int) bool { return i%3 == 1 }},
		{"actor type", cairn.Filter{ActorType: cairn.ActorServiceAccount}, func(i int) bool { return i%2 == 1 }},
		{"actor email", cairn.Filter{ActorEmail: "u2@example.com"}, func(i int) bool { return i%3 == 2 }},
		{"target", cairn.Filter{TargetType: "doc", TargetID: "d3"}, func(i int) bool { return i%5 == 3 }},
		{"target type", cairn.Filter{TargetType: "doc"}, func(int) bool { return true }},
		{"group", cairn.Filter{GroupID: "g2"}, func(i int) bool { return i%2 == 1 }},
		{"since", cairn.Filter{Since: base.Add(30 * time.Hour)}, func(i int) bool { return i >= 30 }},
		{"until", cairn.Filter{Until: base.Add(5 * time.Hour)}, func(i int) bool { return i < 5 }},
		{"text", cairn.Filter{Text: "zebra"}, func(i int) bool { return i == 17 }},
		{"text in changes", cairn.Filter{Text: "striped"}, func(i int) bool { return i == 17 }},
		{"text all words", cairn.Filter{Text: "zebra missingword"}, func(int) bool { return false }},
		{"text with syntax", cairn.Filter{Text: `"zebra" OR *`}, func(int) bool { return false }},
		{"combined", cairn.Filter{ActionPrefix: "doc.", ActorID: "u0", Context: "app"},
			func(i int) bool { return i%4 == 2 && i%3 == 0 }},
		{"action prefix inside a word", cairn.Filter{ActionPrefix: "us"}, func(i int) bool { return i%4 < 2 }},
		{"action prefix no match", cairn.Filter{ActionPrefix: "user.x"}, func(int) bool { return false }},
		{"action exact is not a prefix", cairn.Filter{Action: "user"}, func(int) bool { return false }},
		{"target id alone", cairn.Filter{TargetID: "d4"}, func(i int) bool { return i%5 == 4 }},
		{"target of another type", cairn.Filter{TargetType: "invoice", TargetID: "d3"}, func(int) bool { return false }},
		{"kind and outcome", cairn.Filter{Kind: cairn.KindLogin, Outcome: cairn.OutcomeFailure},
			func(i int) bool { return i%4 == 0 && i%5 == 4 }},
		{"window within a day", cairn.Filter{Since: base.Add(3 * time.Hour), Until: base.Add(30 * time.Hour)},
			func(i int) bool { return i >= 3 && i < 30 }},
		{"window of minutes", cairn.Filter{Since: base.Add(7*time.Hour + time.Minute), Until: base.Add(9*time.Hour + time.Minute)},
			func(i int) bool { return i == 8 || i == 9 }},
		{"window of years and months", cairn.Filter{Since: base.AddDate(-2, -3, 0), Until: base.Add(2 * time.Hour)},
			func(i int) bool { return i < 2 }},
		{"window with a whole day", cairn.Filter{Since: base.Add(-time.Hour), Until: base.Add(48 * time.Hour)},
			func(int) bool { return true }},
		{"window of millennia", cairn.Filter{Since: time.Date(1, 1, 1, 1, 0, 0, 0, time.UTC), Until: time.Date(9000, 1, 1, 0, 0, 0, 0, time.UTC)},
			func(int) bool { return true }},
		{"window and filters", cairn.Filter{Since: base.Add(10 * time.Hour), Until: base.Add(20 * time.Hour), GroupID: "g1", Action: "doc.update"},
			func(i int) bool { return i >= 10 && i < 20 && i%2 == 0 && i%4 == 2 }},
		{"empty window", cairn.Filter{Since: base.Add(10 * time.Hour), Until: base.Add(10 * time.Hour)}, func(int) bool { return false }},
		{"text with punctuation", cairn.Filter{Text: "zebra-credentials"}, func(i int) bool { return i == 17 }},
		{"text and filter", cairn.Filter{Text: "quarterly", ActorID: "u2", Kind: cairn.KindRead},
			func(i int) bool { return i%3 == 2 && i%4 == 3 }},
		{"text of punctuation only", cairn.Filter{Text: "--- ..."}, func(int) bool { return false }},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			for _, limit := range []int{1000, 3} {
				f := tc.f
				f.Limit = limit
				got := collect(t, s, "acme", f)
				if w := want(tc.keep); !slices.Equal(got, w) {
					t.Fatalf("limit %d: got %d ids %v\nwant %d ids %v", limit, len(got), got, len(w), w)
				}
			}
		})
	}
	_, err := s.SearchEvents(t.Context(), "acme", cairn.Filter{Limit: 0})
	wantCode(t, "zero limit", err, cairn.EInvalid)
	_, err = s.SearchEvents(t.Context(), "nope", cairn.Filter{Limit: 10})
	wantCode(t, "missing org", err, cairn.ENotFound)
}

// collect pages through a search and returns every id.
func collect(t *testing.T, s cairn.Store, org string, f cairn.Filter) []string {
	t.Helper()
	var ids []string
	for range 10000 {
		p, err := s.SearchEvents(t.Context(), org, f)
		if err != nil {
			t.Fatalf("SearchEvents(%+v): %v", f, err)
		}
		if len(p.Items) > f.Limit {
			t.Fatalf("page of %d items for limit %d", len(p.Items), f.Limit)
		}
		for _, e := range p.Items {
			if e.Org != org {
				t.Fatalf("event of org %q in a search of %q", e.Org, org)
			}
			ids = append(ids, e.ID)
		}
		if p.Next == 0 {
			return ids
		}
		f.Before = p.Next
	}
	t.Fatal("paging did not end")
	return nil
}

// testOrgIsolation: nothing of one org is visible through another.
func testOrgIsolation(t *testing.T, f Factory) {
	s, _ := open(t, f)
	setup(t, s)
	ctx := t.Context()
	if _, err := s.CreateOrg(ctx, "rival"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.CreateContext(ctx, &cairn.Context{Org: "rival", Name: "app"}); err != nil {
		t.Fatal(err)
	}
	secret := appendN(t, s, "acme", "app", 5, func(int) cairn.Event {
		return cairn.Event{Action: "secret.read", Description: "confidential", Target: &cairn.Target{Type: "doc", ID: "x"}}
	})
	appendN(t, s, "rival", "app", 2, nil)
	got := collect(t, s, "rival", cairn.Filter{Limit: 100})
	if len(got) != 2 {
		t.Fatalf("rival sees %d events, want its own 2", len(got))
	}
	for _, f := range []cairn.Filter{
		{Action: "secret.read"}, {Text: "confidential"}, {TargetType: "doc", TargetID: "x"},
		{Before: secret[4].Seq + 1000}, // a cursor from anywhere only narrows the caller's own org
	} {
		f.Limit = 100
		for _, id := range collect(t, s, "rival", f) {
			for _, c := range secret {
				if id == c.ID {
					t.Fatalf("rival found acme's event %s with %+v", id, f)
				}
			}
		}
	}
	for _, c := range secret {
		_, err := s.GetEvent(ctx, "rival", "app", c.ID)
		wantCode(t, "cross-org GetEvent", err, cairn.ENotFound)
	}
	rc, _ := s.GetContext(ctx, "rival", "app")
	if rc.Size != 2 {
		t.Fatalf("rival/app size %d, want 2", rc.Size)
	}
}
