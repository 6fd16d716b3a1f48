package ingest

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/cairn-audit/cairn"
)

// slowAppender is a fake store: each Append blocks until released and
// records how many requests it carried.
type slowAppender struct {
	mu      sync.Mutex
	batches []int
	release chan struct{}
	err     error
	entered int // Append calls begun
}

func (a *slowAppender) started() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.entered
}

func (a *slowAppender) Append(ctx context.Context, reqs []*cairn.AppendRequest) ([]cairn.AppendResult, error) {
	a.mu.Lock()
	a.entered++
	a.mu.Unlock()
	<-a.release
	a.mu.Lock()
	a.batches = append(a.batches, len(reqs))
	a.mu.Unlock()
	if a.err != nil {
		return nil, a.err
	}
	out := make([]cairn.AppendResult, len(reqs))
	for i, r := range reqs {
		for range r.Entries {
			out[i].Committed = append(out[i].Committed, cairn.Committed{ID: "x"})
		}
	}
	return out, nil
}

func req(n int) *cairn.AppendRequest {
	return &cairn.AppendRequest{Org: "o", Context: "c", Entries: make([]cairn.Entry, n)}
}

func TestCommitterGroupsConcurrentRequests(t *testing.T) {
	a := &slowAppender{release: make(chan struct{})}
	c := NewCommitter(CommitterConfig{Store: a})
	defer c.Close()
	var wg sync.WaitGroup
	results := make(chan cairn.AppendResult, 11)
	commit := func() {
		defer wg.Done()
		r, err := c.Commit(t.Context(), req(1))
		if err != nil {
			t.Error(err)
		}
		results <- r
	}
	// The first request occupies the store; ten more queue behind it.
	wg.Add(1)
	go commit()
	waitFor(t, func() bool { return a.started() == 1 })
	for range 10 {
		wg.Add(1)
		go commit()
	}
	// Queued counts a request before it is in the queue: wait for the
	// queue itself, or the next transaction may start without the last.
	waitFor(t, func() bool { return len(c.queue) == 10 })
	close(a.release)
	wg.Wait()
	close(results)
	for r := range results {
		if len(r.Committed) != 1 {
			t.Fatalf("result = %+v", r)
		}
	}
	if len(a.batches) != 2 || a.batches[0] != 1 || a.batches[1] != 10 {
		t.Fatalf("transactions carried %v requests, want [1 10]", a.batches)
	}
	if c.Queued() != 0 {
		t.Fatalf("queued = %d after all commits", c.Queued())
	}
}

func TestCommitterOverload(t *testing.T) {
	a := &slowAppender{release: make(chan struct{})}
	c := NewCommitter(CommitterConfig{Store: a, MaxQueued: 10})
	defer c.Close()
	go c.Commit(context.Background(), req(8))
	waitFor(t, func() bool { return c.Queued() == 8 })
	_, err := c.Commit(t.Context(), req(3))
	if cairn.ErrorCode(err) != cairn.EUnavailable {
		t.Fatalf("commit past the bound: %v, want unavailable", err)
	}
	if c.Queued() != 8 {
		t.Fatalf("refused request still counted: queued = %d", c.Queued())
	}
	close(a.release)
	// A request larger than the bound is accepted when nothing waits.
	waitFor(t, func() bool { return c.Queued() == 0 })
	if _, err := c.Commit(t.Context(), req(50)); err != nil {
		t.Fatalf("lone large request: %v", err)
	}
}

func TestCommitterStoreError(t *testing.T) {
	boom := errors.New("disk on fire")
	a := &slowAppender{release: make(chan struct{}), err: boom}
	close(a.release)
	c := NewCommitter(CommitterConfig{Store: a})
	defer c.Close()
	if _, err := c.Commit(t.Context(), req(2)); !errors.Is(err, boom) {
		t.Fatalf("err = %v, want the store's error", err)
	}
}

func TestCommitterCloseDrains(t *testing.T) {
	a := &slowAppender{release: make(chan struct{})}
	var committed int
	var mu sync.Mutex
	c := NewCommitter(CommitterConfig{Store: a, OnCommit: func(n int, _ time.Duration) {
		mu.Lock()
		committed += n
		mu.Unlock()
	}})
	errs := make(chan error, 5)
	for range 5 {
		go func() {
			_, err := c.Commit(context.Background(), req(2))
			errs <- err
		}()
	}
	waitFor(t, func() bool { return c.Queued() == 10 })
	closed := make(chan struct{})
	go func() {
		c.Close()
		close(closed)
	}()
	close(a.release)
	for range 5 {
		if err := <-errs; err != nil {
			t.Fatalf("queued request failed at Close: %v", err)
		}
	}
	<-closed
	if committed != 10 {
		t.Fatalf("committed %d events before Close returned, want 10", committed)
	}
	if _, err := c.Commit(t.Context(), req(1)); !errors.Is(err, ErrClosed) {
		t.Fatalf("commit after Close: %v", err)
	}
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not reached")
		}
		time.Sleep(time.Millisecond)
	}
}
