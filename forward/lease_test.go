package forward_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/cairn-audit/cairn"
	"github.com/cairn-audit/cairn/forward"
	"github.com/cairn-audit/cairn/sqlite"
)

// leasing is a store whose forwarder leases the test grants and revokes,
// as another node holding them would.
type leasing struct {
	*sqlite.Store
	mu      sync.Mutex
	granted bool
	held    *testLease
	tries   int
}

type testLease struct {
	lost     chan struct{}
	released chan struct{}
}

func (l *testLease) Lost() <-chan struct{} { return l.lost }
func (l *testLease) Release()              { close(l.released) }

func (s *leasing) TryLease(ctx context.Context, name string) (cairn.Lease, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.tries++
	if !s.granted || s.held != nil {
		return nil, nil
	}
	s.held = &testLease{lost: make(chan struct{}), released: make(chan struct{})}
	return s.held, nil
}

func (s *leasing) set(granted bool) {
	s.mu.Lock()
	s.granted = granted
	s.mu.Unlock()
}

// lose reports the held lease lost and waits until the worker let it go.
func (s *leasing) lose(t *testing.T) {
	s.mu.Lock()
	l := s.held
	s.granted = false
	s.mu.Unlock()
	close(l.lost)
	select {
	case <-l.released:
	case <-time.After(time.Minute):
		t.Fatal("the worker kept a lost lease")
	}
	s.mu.Lock()
	s.held = nil
	s.mu.Unlock()
}

// TestLeasedDelivery: with a store shared by several nodes, a node
// delivers only while it holds the forwarder's lease, stops when the lease
// is lost, and picks up from the stored cursor when it gets it back.
func TestLeasedDelivery(t *testing.T) {
	var ls *leasing
	e := newEnvWith(t, func(s *sqlite.Store) forward.Store {
		ls = &leasing{Store: s}
		return ls
	})
	if _, err := e.svc.Create(t.Context(), fwd("siem", "app")); err != nil {
		t.Fatal(err)
	}
	e.appendEvents(t, "app", 50, nil)
	waitFor(t, "a few lease attempts", func() bool {
		ls.mu.Lock()
		defer ls.mu.Unlock()
		return ls.tries >= 3
	})
	if got := len(e.sink.records()); got != 0 {
		t.Fatalf("%d events delivered without the lease", got)
	}
	ls.set(true)
	e.caughtUp(t, "siem")
	ls.lose(t)
	e.appendEvents(t, "app", 30, nil)
	time.Sleep(100 * time.Millisecond) // several polls
	if got := len(e.sink.records()); got != 50 {
		t.Fatalf("%d events delivered, want the 50 sent before the lease was lost", got)
	}
	ls.set(true)
	e.caughtUp(t, "siem")
	checkOrdered(t, e.sink.records(), map[string]int64{"app": 80})
}
