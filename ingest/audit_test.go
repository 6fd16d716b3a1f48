package ingest

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

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

// Records handed to RecordAsync within Delay share one commit per org, in
// the order they were handed in; Close commits what is still waiting.
func TestAuditorGathersReads(t *testing.T) {
	m := &memAppender{}
	c := NewCommitter(CommitterConfig{Store: m})
	defer c.Close()
	a := NewAuditor(AuditorConfig{Committer: c, Delay: 50 * time.Millisecond})
	for i, org := range []string{"acme", "beta", "acme", "acme", "beta"} {
		if err := a.RecordAsync(org, AuditRecord{Action: fmt.Sprintf("log.search%d", i), Kind: cairn.KindRead}); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, func() bool { m.mu.Lock(); defer m.mu.Unlock(); return len(m.reqs) == 2 })
	got := map[string]string{}
	for _, r := range m.reqs {
		for _, e := range r.Entries {
			got[r.Org] += e.Event.Action + " "
		}
	}
	if got["acme"] != "log.search0 log.search2 log.search3 " || got["beta"] != "log.search1 log.search4 " {
		t.Fatalf("commits: %q", got)
	}

	// Close does not wait for the delay to commit what is waiting.
	a = NewAuditor(AuditorConfig{Committer: c, Delay: time.Hour})
	if err := a.RecordAsync("acme", AuditRecord{Action: "log.trail", Kind: cairn.KindRead}); err != nil {
		t.Fatal(err)
	}
	a.Close()
	if n := len(m.reqs); n != 3 || m.reqs[2].Entries[0].Event.Action != "log.trail" {
		t.Fatalf("after Close: %d requests", n)
	}

	// A negative delay commits each record on its own.
	a = NewAuditor(AuditorConfig{Committer: c, Delay: -1})
	for range 3 {
		if err := a.RecordAsync("acme", AuditRecord{Action: "log.event", Kind: cairn.KindRead}); err != nil {
			t.Fatal(err)
		}
	}
	a.Close()
	if n := len(m.reqs); n != 6 {
		t.Fatalf("without delay: %d requests, want 6", n)
	}
}

// MaxPending counts records waiting for the delay as well as those in a
// commit.
func TestAuditorPendingBound(t *testing.T) {
	m := &memAppender{}
	c := NewCommitter(CommitterConfig{Store: m})
	defer c.Close()
	a := NewAuditor(AuditorConfig{Committer: c, Delay: time.Hour, MaxPending: 3})
	for range 3 {
		if err := a.RecordAsync("acme", AuditRecord{Action: "log.search", Kind: cairn.KindRead}); err != nil {
			t.Fatal(err)
		}
	}
	if err := a.RecordAsync("acme", AuditRecord{Action: "log.search", Kind: cairn.KindRead}); cairn.ErrorCode(err) != cairn.EUnavailable {
		t.Fatalf("past MaxPending: %v", err)
	}
	a.Close()
	if len(m.reqs) != 1 || len(m.reqs[0].Entries) != 3 {
		t.Fatalf("committed %d requests", len(m.reqs))
	}
}
