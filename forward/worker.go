package forward

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/cairn-audit/cairn"
	"github.com/cairn-audit/cairn/forward/format"
	jsonv2 "github.com/go-json-experiment/json"
)

// Run delivers the events of every enabled forwarder until ctx is
// cancelled, then stops the deliveries in flight and returns nil. Each
// forwarder gets one goroutine that walks its contexts in turn; a batch
// never mixes contexts, and a context's batches go one at a time, so
// order holds per context.
func (s *Service) Run(ctx context.Context) error {
	t := time.NewTicker(s.cfg.Poll)
	defer t.Stop()
	for {
		s.reconcile(ctx)
		select {
		case <-ctx.Done():
			s.stopAll()
			return nil
		case <-s.reload:
		case <-t.C:
		}
	}
}

// reconcile starts, restarts (after a configuration change) and stops
// workers to match the stored forwarders, and refreshes the gauges.
func (s *Service) reconcile(ctx context.Context) {
	fs, err := s.cfg.Store.AllForwarders(ctx)
	if err != nil {
		if ctx.Err() == nil {
			s.cfg.Logger.LogAttrs(ctx, slog.LevelWarn, "list forwarders", slog.Any("error", err))
		}
		return
	}
	want := map[fwdKey]*cairn.Forwarder{}
	for _, f := range fs {
		if f.Enabled {
			want[fwdKey{f.Org, f.Name}] = f
		}
	}
	var stop []*worker
	s.mu.Lock()
	for k, w := range s.workers {
		if f, ok := want[k]; !ok || !f.UpdatedAt.Equal(w.f.UpdatedAt) {
			stop = append(stop, w)
			delete(s.workers, k)
		}
	}
	s.mu.Unlock()
	for _, w := range stop {
		w.stop()
	}
	s.mu.Lock()
	for k, f := range want {
		if s.workers[k] == nil {
			s.workers[k] = s.start(ctx, f)
		}
	}
	s.mu.Unlock()
	s.cfg.Metrics.forget(fs)
	for _, f := range fs {
		if st, err := s.status(ctx, f); err == nil {
			s.cfg.Metrics.status(st)
		}
	}
}

func (s *Service) stopAll() {
	s.mu.Lock()
	ws := make([]*worker, 0, len(s.workers))
	for k, w := range s.workers {
		ws = append(ws, w)
		delete(s.workers, k)
	}
	s.mu.Unlock()
	for _, w := range ws {
		w.stop()
	}
}

// worker delivers one forwarder's events.
type worker struct {
	s      *Service
	f      *cairn.Forwarder
	fl     filters
	cancel context.CancelFunc
	done   chan struct{}
	wake   chan struct{}

	mu   sync.Mutex
	next time.Time // when a backing-off worker retries

	cursors map[string]int64 // nil: (re)load from the store
	bufs    map[string]*pending
}

// pending holds the events read after a context's cursor that are not
// yet delivered: recs[i] has seq from+i.
type pending struct {
	from  int64
	recs  []pendingRec
	bytes int // formatted bytes of the kept records
}

type pendingRec struct {
	rec      Record
	received time.Time
	keep     bool
}

func (s *Service) start(parent context.Context, f *cairn.Forwarder) *worker {
	ctx, cancel := context.WithCancel(context.WithoutCancel(parent))
	fl, _ := parseFilters(f) // validated when stored
	w := &worker{s: s, f: f, fl: fl, cancel: cancel, done: make(chan struct{}), wake: make(chan struct{}, 1),
		bufs: map[string]*pending{}}
	go func() {
		defer close(w.done)
		w.run(ctx)
	}()
	return w
}

func (w *worker) stop() {
	w.cancel()
	<-w.done
}

func (w *worker) kick() {
	select {
	case w.wake <- struct{}{}:
	default:
	}
}

func (w *worker) nextAttempt() time.Time {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.next
}

func (w *worker) log() *slog.Logger {
	return w.s.cfg.Logger.With(slog.String("org", w.f.Org), slog.String("forwarder", w.f.Name))
}

func (w *worker) run(ctx context.Context) {
	f := w.f
	sink, err := w.s.types[f.Sink.Type].New(f.Sink.Settings, w.s.env())
	if err != nil {
		// Validated when stored; a sink type that changed its rules.
		w.fail(ctx, fmt.Errorf("sink settings: %w", err))
		return
	}
	defer sink.Close()
	if l, ok := w.s.cfg.Store.(Leaser); ok {
		w.runLeased(ctx, l, func(ctx context.Context) { w.deliver(ctx, sink) })
		return
	}
	w.deliver(ctx, sink)
}

// deliver delivers until ctx is done.
func (w *worker) deliver(ctx context.Context, sink Sink) {
	f := w.f
	st, err := w.s.cfg.Store.ForwarderState(ctx, f.Org, f.Name)
	parked := err == nil && st.Parked
	for ctx.Err() == nil {
		if parked {
			select {
			case <-ctx.Done():
				return
			case <-w.wake:
			}
			st, err := w.s.cfg.Store.ForwarderState(ctx, f.Org, f.Name)
			parked = err != nil || st.Parked
			w.cursors = nil
			continue
		}
		commits := w.s.committed()
		progress, wakeAt, err := w.round(ctx, sink)
		if ctx.Err() != nil {
			return
		}
		if err != nil {
			var wait time.Duration
			parked, wait = w.fail(ctx, err)
			if !parked {
				w.sleep(ctx, nil, time.Now().Add(wait))
			}
			continue
		}
		if progress {
			continue
		}
		w.sleep(ctx, commits, wakeAt)
	}
}

// sleep waits for a commit, a kick, the poll interval or until (if set).
func (w *worker) sleep(ctx context.Context, commits <-chan struct{}, until time.Time) {
	d := w.s.cfg.Poll
	if !until.IsZero() {
		d = min(d, max(time.Until(until), 0))
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-commits:
	case <-w.wake:
		w.cursors = nil // a replay may have moved them
	case <-t.C:
	}
}

// fail records a failed delivery, parks the forwarder when its retry
// budget is spent, and returns the backoff before the next attempt.
func (w *worker) fail(ctx context.Context, cause error) (parked bool, wait time.Duration) {
	f, store := w.f, w.s.cfg.Store
	st, err := store.ForwarderState(ctx, f.Org, f.Name)
	if err != nil && ctx.Err() == nil {
		w.log().LogAttrs(ctx, slog.LevelWarn, "read forwarder state", slog.Any("error", err))
	}
	now := w.s.cfg.Now().UTC()
	st.Attempts++
	st.LastErrorAt, st.LastErrorCode, st.LastError = now, cairn.ErrorCode(cause), deliveryMessage(cause)
	st.Parked = st.Attempts >= f.Retry.MaxAttempts
	if err := store.SetForwarderState(ctx, f.Org, f.Name, st); err != nil && ctx.Err() == nil {
		w.log().LogAttrs(ctx, slog.LevelWarn, "record forwarder state", slog.Any("error", err))
	}
	w.s.cfg.Metrics.delivery(f, "error", 0)
	attrs := []slog.Attr{slog.Int("attempt", st.Attempts), slog.String("code", st.LastErrorCode), slog.String("error", st.LastError)}
	if st.Parked {
		w.log().LogAttrs(ctx, slog.LevelWarn, "forwarder parked: retry budget spent; resume it to continue from its cursor", attrs...)
		w.mu.Lock()
		w.next = time.Time{}
		w.mu.Unlock()
		return true, 0
	}
	wait = backoff(f.Retry, st.Attempts)
	if ra := RetryAfter(cause); ra > wait {
		wait = min(ra, f.Retry.MaxBackoff)
	}
	w.log().LogAttrs(ctx, slog.LevelWarn, "delivery failed", append(attrs, slog.Duration("retry_in", wait))...)
	w.mu.Lock()
	w.next = time.Now().Add(wait)
	w.mu.Unlock()
	return false, wait
}

// backoff is MinBackoff doubled per failed attempt, capped at MaxBackoff,
// with ±20% jitter so forwarders do not retry in step.
func backoff(r cairn.RetryPolicy, attempts int) time.Duration {
	d := r.MinBackoff << min(attempts-1, 30)
	if d > r.MaxBackoff || d <= 0 {
		d = r.MaxBackoff
	}
	return d - d/5 + time.Duration(rand.Int64N(int64(d/5)*2+1))
}

// round delivers at most one batch per context. It reports whether any
// cursor moved and, when a partial batch waits for MaxDelay, when to look
// again.
func (w *worker) round(ctx context.Context, sink Sink) (progress bool, wakeAt time.Time, err error) {
	f, store := w.f, w.s.cfg.Store
	if w.cursors == nil {
		cs, err := store.Cursors(ctx, f.Org, f.Name)
		if err != nil {
			return false, time.Time{}, err
		}
		w.cursors = map[string]int64{}
		for _, c := range cs {
			w.cursors[c.Context] = c.Next
		}
		clear(w.bufs)
	}
	contexts, err := w.s.contexts(ctx, f)
	if err != nil {
		return false, time.Time{}, err
	}
	for _, c := range contexts {
		moved, due, err := w.context(ctx, sink, c.Name, c.Size)
		if err != nil {
			return progress, time.Time{}, err
		}
		progress = progress || moved
		if !due.IsZero() && (wakeAt.IsZero() || due.Before(wakeAt)) {
			wakeAt = due
		}
	}
	return progress, wakeAt, nil
}

// context delivers the next batch of one context, if it is full or due.
func (w *worker) context(ctx context.Context, sink Sink, name string, size int64) (moved bool, due time.Time, err error) {
	f := w.f
	next := w.cursors[name]
	if next >= size {
		delete(w.bufs, name)
		return false, time.Time{}, nil
	}
	p := w.bufs[name]
	if p == nil || p.from != next {
		p = &pending{from: next}
		w.bufs[name] = p
	}
	if err := w.fill(ctx, p, name, size, f.Batch.MaxEvents); err != nil {
		return false, time.Time{}, err
	}
	n := w.batchLen(p)
	full := n < len(p.recs) || n >= f.Batch.MaxEvents || p.bytes >= f.Batch.MaxBytes
	if !full && f.Batch.MaxDelay > 0 {
		due = p.recs[0].received.Add(f.Batch.MaxDelay)
		if w.s.cfg.Now().Before(due) {
			return false, due, nil
		}
	}
	b := &Batch{Org: f.Org, Forwarder: f.Name, Context: name, Format: f.Format}
	for _, r := range p.recs[:n] {
		if r.keep {
			b.Records = append(b.Records, r.rec)
		}
	}
	to := next + int64(n)
	var sendErr error
	if len(b.Records) > 0 {
		// Read and decode the next batch while this one is on the wire.
		prefetch := make(chan error, 1)
		go func() { prefetch <- w.fill(ctx, p, name, size, n+f.Batch.MaxEvents) }()
		sendCtx, cancel := contextWithTimeout(ctx, w.s.cfg.SinkTimeout)
		start := time.Now()
		ans, err := sink.Send(sendCtx, b)
		cancel()
		<-prefetch // a failed read ahead kept what it read; the next round retries the rest
		if err != nil {
			if ctx.Err() != nil {
				return false, time.Time{}, ctx.Err()
			}
			sendErr = err
			to = next
			if ans.Acked > 0 && ans.Acked < len(b.Records) {
				to = b.Records[ans.Acked].Event.Seq // the first record not acknowledged
			}
			ans.Acked = min(ans.Acked, len(b.Records))
		} else {
			ans.Acked = len(b.Records)
		}
		w.s.cfg.Metrics.delivered(f, ans.Acked, time.Since(start))
	}
	if to > next {
		if err := w.s.cfg.Store.AdvanceCursor(ctx, f.Org, f.Name, name, next, to, w.s.cfg.Now().UTC()); err != nil {
			if cairn.ErrorCode(err) == cairn.EConflict {
				w.cursors = nil // replayed meanwhile: reload, deliver from there
				return true, time.Time{}, nil
			}
			return false, time.Time{}, errors.Join(sendErr, err)
		}
		w.s.cfg.Metrics.skipped(f, int(to-next)-countKept(p.recs[:to-next]))
		w.cursors[name] = to
		drop := int(to - next)
		for _, r := range p.recs[:drop] {
			if r.keep {
				p.bytes -= len(r.rec.Body)
			}
		}
		p.recs = append(p.recs[:0:0], p.recs[drop:]...)
		p.from = to
		moved = true
	}
	return moved, time.Time{}, sendErr
}

func countKept(rs []pendingRec) int {
	n := 0
	for _, r := range rs {
		if r.keep {
			n++
		}
	}
	return n
}

// batchLen is how many of p's records the next batch spans: at most
// MaxEvents, and no more kept bodies than fit MaxBytes (at least one).
func (w *worker) batchLen(p *pending) int {
	bytes, kept := 0, 0
	for i, r := range p.recs {
		if i == w.f.Batch.MaxEvents {
			return i
		}
		if r.keep {
			if kept > 0 && bytes+len(r.rec.Body) > w.f.Batch.MaxBytes {
				return i
			}
			bytes += len(r.rec.Body)
			kept++
		}
	}
	return len(p.recs)
}

// fill reads committed leaves after p's records until p holds upTo
// records (or the log's end), decoding, filtering and formatting each
// once. It only appends to p.recs, so a batch taken from p.recs before
// it runs stays valid while it runs.
func (w *worker) fill(ctx context.Context, p *pending, name string, size int64, upTo int) error {
	f := w.f
	have := p.from + int64(len(p.recs))
	want := min(size, p.from+int64(upTo))
	if have >= want {
		return nil
	}
	leaves, err := w.s.cfg.Store.ReadLeaves(ctx, f.Org, name, have, want)
	if err != nil {
		return err
	}
	for i, leaf := range leaves {
		var e cairn.Event
		if err := jsonv2.Unmarshal(leaf, &e); err != nil {
			return &cairn.Error{Code: cairn.EIntegrity, Message: fmt.Sprintf("leaf %d of %s is not an event", have+int64(i), name), Err: err}
		}
		r := pendingRec{rec: Record{Event: &e, Leaf: leaf}, received: e.ReceivedTime, keep: w.fl.keep(&e)}
		if r.keep {
			if r.rec.Body, err = format.Encode(f.Format, &e, leaf); err != nil {
				return err
			}
			p.bytes += len(r.rec.Body)
		}
		p.recs = append(p.recs, r)
	}
	return nil
}
