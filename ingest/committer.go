package ingest

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/cairn-audit/cairn"
)

// CommitterConfig configures a Committer.
type CommitterConfig struct {
	Store cairn.Appender
	// MaxBatch is the most events one transaction carries (default 20,000).
	// A single request larger than this still commits, alone.
	MaxBatch int
	// MaxQueued bounds the events waiting for a commit (default 100,000).
	// Past it, Commit fails fast with EUnavailable instead of queueing
	// without bound: the HTTP layer answers 503 with Retry-After.
	MaxQueued int
	// OnCommit, if set, is called after every successful transaction with
	// the number of events it committed and how long it took (metrics, and
	// waking the checkpoint signer).
	OnCommit func(events int, took time.Duration)
}

// Committer is the group commit: concurrent Commit calls are merged into one
// store transaction and one fsync. While a transaction is in flight, new
// requests queue and go together in the next one, so the batch size adapts
// to the load without a timer adding latency to a lone writer.
type Committer struct {
	cfg   CommitterConfig
	queue chan *pending

	mu      sync.Mutex
	queued  int // events waiting or in flight
	closed  bool
	sending sync.WaitGroup // Commit calls between the closed check and the send
	closing chan struct{}
	done    chan struct{}
}

type pending struct {
	req  *cairn.AppendRequest
	done chan outcome // buffered: the committer never blocks on a gone caller
}

type outcome struct {
	res cairn.AppendResult
	err error
}

// ErrClosed is returned by Commit after Close.
var ErrClosed = &cairn.Error{Code: cairn.EUnavailable, Message: "server is shutting down"}

// NewCommitter starts a committer. Close stops it.
func NewCommitter(cfg CommitterConfig) *Committer {
	if cfg.MaxBatch <= 0 {
		cfg.MaxBatch = 20000
	}
	if cfg.MaxQueued <= 0 {
		cfg.MaxQueued = 100000
	}
	c := &Committer{
		cfg:     cfg,
		queue:   make(chan *pending, 4096),
		closing: make(chan struct{}),
		done:    make(chan struct{}),
	}
	go c.run()
	return c
}

// Commit queues req for the next transaction and waits until it is durably
// committed (or failed). If ctx ends first, Commit returns ctx's error, but
// the request may still commit: callers that must know use idempotency keys.
func (c *Committer) Commit(ctx context.Context, req *cairn.AppendRequest) (cairn.AppendResult, error) {
	n := len(req.Entries)
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return cairn.AppendResult{}, ErrClosed
	}
	if c.queued > 0 && c.queued+n > c.cfg.MaxQueued {
		c.mu.Unlock()
		return cairn.AppendResult{}, cairn.Errorf(cairn.EUnavailable, "ingest queue is full (%d events waiting); retry shortly", c.cfg.MaxQueued)
	}
	c.queued += n
	c.sending.Add(1)
	c.mu.Unlock()

	p := &pending{req: req, done: make(chan outcome, 1)}
	select {
	case c.queue <- p:
		c.sending.Done()
	case <-ctx.Done():
		c.sending.Done()
		c.release(n)
		return cairn.AppendResult{}, ctx.Err()
	}
	select {
	case o := <-p.done:
		return o.res, o.err
	case <-ctx.Done():
		return cairn.AppendResult{}, ctx.Err()
	}
}

func (c *Committer) release(n int) {
	c.mu.Lock()
	c.queued -= n
	c.mu.Unlock()
}

// Queued returns the number of events waiting for or in a commit.
func (c *Committer) Queued() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.queued
}

// Close stops accepting requests, commits everything already queued, and
// returns when the last transaction has finished: graceful shutdown drains
// in-flight writes.
func (c *Committer) Close() error {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		<-c.done
		return nil
	}
	c.closed = true
	c.mu.Unlock()
	c.sending.Wait() // every accepted request is in the queue before the drain
	close(c.closing)
	<-c.done
	return nil
}

func (c *Committer) run() {
	defer close(c.done)
	var batch []*pending
	for {
		batch = batch[:0]
		select {
		case p := <-c.queue:
			batch = append(batch, p)
		case <-c.closing:
			// Drain what was queued before Close.
			for {
				select {
				case p := <-c.queue:
					c.commit([]*pending{p})
				default:
					return
				}
			}
		}
		events := len(batch[0].req.Entries)
	fill:
		for events < c.cfg.MaxBatch {
			select {
			case p := <-c.queue:
				batch = append(batch, p)
				events += len(p.req.Entries)
			default:
				break fill
			}
		}
		c.commit(batch)
	}
}

func (c *Committer) commit(batch []*pending) {
	reqs := make([]*cairn.AppendRequest, len(batch))
	events := 0
	for i, p := range batch {
		reqs[i] = p.req
		events += len(p.req.Entries)
	}
	start := time.Now()
	// The transaction must not be abandoned halfway because one caller
	// went away: it is not tied to any request's context.
	results, err := c.cfg.Store.Append(context.Background(), reqs)
	took := time.Since(start)
	if err == nil && len(results) != len(batch) {
		err = errors.New("store returned a wrong number of results")
	}
	for i, p := range batch {
		if err != nil {
			p.done <- outcome{err: err}
		} else {
			p.done <- outcome{res: results[i]}
		}
	}
	c.release(events)
	if err == nil && c.cfg.OnCommit != nil {
		c.cfg.OnCommit(events, took)
	}
}
