package forward

import (
	"context"
	"log/slog"
	"time"

	"github.com/cairn-audit/cairn"
)

// Leaser is implemented by stores that several nodes share (the PostgreSQL
// engine). When the Store implements it, a node delivers a forwarder only
// while it holds the forwarder's lease, so the nodes of a cluster do not
// send the same events at the same time; when the holder dies, another
// node takes the lease within Poll and continues from the durable cursor.
// Without it (the embedded engine: one node), every forwarder is
// delivered by the one node.
type Leaser interface {
	// TryLease takes the named lease if no node holds it; it returns a
	// nil Lease, and no error, when another node does.
	TryLease(ctx context.Context, name string) (cairn.Lease, error)
}

// leaseName names the lease of a forwarder.
func leaseName(org, name string) string { return "forwarder\x00" + org + "\x00" + name }

// runLeased delivers while this node holds the forwarder's lease, and
// tries to take it every Poll while another node holds it.
func (w *worker) runLeased(ctx context.Context, l Leaser, deliver func(ctx context.Context)) {
	for ctx.Err() == nil {
		lease, err := l.TryLease(ctx, leaseName(w.f.Org, w.f.Name))
		if err != nil || lease == nil {
			if err != nil && ctx.Err() == nil {
				w.log().LogAttrs(ctx, slog.LevelDebug, "take forwarder lease", slog.Any("error", err))
			}
			w.sleep(ctx, nil, time.Time{})
			continue
		}
		held, cancel := context.WithCancel(ctx)
		go func() {
			select {
			case <-lease.Lost():
				cancel()
			case <-held.Done():
			}
		}()
		w.cursors = nil // another node delivered before this one: start from the stored cursors
		deliver(held)
		cancel()
		lease.Release()
	}
}
