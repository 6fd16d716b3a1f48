package ingest

import (
	"context"
	"strings"
	"sync"
	"testing"

	"github.com/cairn-audit/cairn"
)

// memAppender records what it is asked to append.
type memAppender struct {
	mu   sync.Mutex
	reqs []*cairn.AppendRequest
}

func (m *memAppender) Append(ctx context.Context, reqs []*cairn.AppendRequest) ([]cairn.AppendResult, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make([]cairn.AppendResult, len(reqs))
	for i, r := range reqs {
		m.reqs = append(m.reqs, r)
		out[i].Committed = []cairn.Committed{{ID: r.Entries[0].Event.ID, Seq: int64(len(m.reqs))}}
	}
	return out, nil
}

func TestAuditorMasksSecrets(t *testing.T) {
	m := &memAppender{}
	c := NewCommitter(CommitterConfig{Store: m})
	defer c.Close()
	a := NewAuditor(AuditorConfig{Committer: c})
	err := a.Record(t.Context(), "acme", AuditRecord{Action: "user.create", Kind: cairn.KindCreate,
		Actor:  &cairn.Actor{Type: cairn.ActorUser, ID: "u1", Name: "root"},
		Target: &cairn.Target{Type: "user", ID: "ann"},
		Changes: []cairn.Change{{Field: "password", New: "hunter2hunter2"}, {Field: "secret", New: "cairn_topsecret"},
			{Field: "key", New: "cairn_k"}, {Field: "email", New: "ann@example.com"}},
		Fields: map[string]string{"token": "cairn_tok", "q": "hello"}})
	if err != nil {
		t.Fatal(err)
	}
	if err := a.RecordAsync("acme", AuditRecord{Action: "log.search", Kind: cairn.KindRead}); err != nil {
		t.Fatal(err)
	}
	a.Close()
	if len(m.reqs) != 2 {
		t.Fatalf("%d requests appended, want 2", len(m.reqs))
	}
	r := m.reqs[0]
	if r.Org != "acme" || r.Context != cairn.BuiltinContext {
		t.Fatalf("appended to %s/%s", r.Org, r.Context)
	}
	leaf := string(r.Entries[0].Leaf.Bytes(0))
	for _, secret := range []string{"hunter2", "topsecret", "cairn_k", "cairn_tok"} {
		if strings.Contains(leaf, secret) {
			t.Fatalf("secret %q in the leaf: %s", secret, leaf)
		}
	}
	if got := r.Entries[0].Event.Changes[3].New; got != "ann@example.com" {
		t.Fatalf("email change = %v", got)
	}
	if r.Entries[0].Event.Changes[0].New != "***" || r.Entries[0].Event.Fields["token"] != "***" {
		t.Fatalf("not masked: %+v", r.Entries[0].Event)
	}
	if err := a.RecordAsync("acme", AuditRecord{Action: "x.y"}); cairn.ErrorCode(err) != cairn.EUnavailable {
		t.Fatalf("record after close: %v", err)
	}
}
