package storetest

import (
	"fmt"
	"testing"

	"github.com/cairn-audit/cairn"
)

// RealisticEvent returns the i-th event of a repeatable stream of ~600-byte
// events with the shape and cardinalities of a busy application.
func RealisticEvent(i int) cairn.Event {
	return cairn.Event{
		Action:  []string{"document.update", "document.read", "user.login", "invoice.create", "policy.delete"}[i%5],
		Kind:    []string{cairn.KindUpdate, cairn.KindRead, cairn.KindLogin, cairn.KindCreate, cairn.KindDelete}[i%5],
		Outcome: cairn.OutcomeSuccess,
		Actor: &cairn.Actor{Type: cairn.ActorUser, ID: fmt.Sprintf("user-%d", i%5000),
			Name: fmt.Sprintf("User Number %d", i%5000), Email: fmt.Sprintf("user%d@example.com", i%5000)},
		Target: &cairn.Target{Type: []string{"document", "invoice", "policy"}[i%3], ID: fmt.Sprintf("obj-%d", i%200000),
			Name: fmt.Sprintf("Quarterly report %d", i%200000)},
		Group: &cairn.Group{ID: fmt.Sprintf("tenant-%d", i%50), Name: fmt.Sprintf("Tenant %d", i%50)},
		Changes: []cairn.Change{
			{Field: "status", Old: "draft", New: "published"},
			{Field: "title", Old: "Q3 numbers (draft)", New: "Q3 numbers"},
		},
		Source:      &cairn.Source{IP: "203.0.113.7", UserAgent: "Mozilla/5.0 (X11; Linux x86_64) Gecko/20100101 Firefox/131.0", RequestID: fmt.Sprintf("req-%08d", i)},
		Description: "User updated the document status and title from the web editor",
		Component:   "web-editor",
		Version:     "4.2.1",
	}
}

// BenchmarkAppend measures committed events per second for requests of
// batch events each, on a store from f.
func BenchmarkAppend(b *testing.B, open func(b *testing.B) cairn.Store, batch int) {
	s := open(b)
	defer s.Close()
	ctx := b.Context()
	if _, err := s.CreateOrg(ctx, "bench"); err != nil {
		b.Fatal(err)
	}
	if _, err := s.CreateContext(ctx, &cairn.Context{Org: "bench", Name: "app"}); err != nil {
		b.Fatal(err)
	}
	entries := make([]cairn.Entry, batch)
	var bytes int
	for i := range entries {
		entries[i] = NewEntry("bench", "app", RealisticEvent(i))
		bytes += entries[i].Leaf.MaxLen()
	}
	b.SetBytes(int64(bytes))
	b.ResetTimer()
	for b.Loop() {
		res, err := s.Append(ctx, []*cairn.AppendRequest{{Org: "bench", Context: "app", Entries: entries}})
		if err != nil || res[0].Err != nil {
			b.Fatal(err, res[0].Err)
		}
	}
	b.ReportMetric(float64(batch*b.N)/b.Elapsed().Seconds(), "events/s")
}
