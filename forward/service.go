package forward

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/cairn-audit/cairn"
	"github.com/cairn-audit/cairn/forward/format"
	"github.com/google/uuid"
)

// Defaults of a Service.
const (
	DefaultPoll        = time.Second
	DefaultSinkTimeout = 30 * time.Second
)

// Store is what the Service needs from an engine.
type Store interface {
	cairn.LogReader
	cairn.ForwarderStore
	GetContext(ctx context.Context, org, name string) (*cairn.Context, error)
	ListContexts(ctx context.Context, org string) ([]*cairn.Context, error)
}

// Config configures a Service.
type Config struct {
	// Store holds the logs, the forwarders and their cursors. Required.
	Store Store
	// Sinks are the sink types forwarders may use. Required.
	Sinks []SinkType
	// Guard dials every sink connection. Default: a guard that allows
	// nothing outside the public address space.
	Guard *Guard
	// Poll is how often delivery looks for events without a Notify
	// (commits by other nodes) and reloads forwarders changed elsewhere.
	// Default DefaultPoll.
	Poll time.Duration
	// SinkTimeout bounds one delivery. Default DefaultSinkTimeout.
	SinkTimeout time.Duration
	// Logger receives failed deliveries and parkings (warn). Never
	// payloads or secrets. Default: discard.
	Logger *slog.Logger
	// Metrics, if set, exports delivery series.
	Metrics *Metrics
	// Now is the clock of cursors, statuses, batching and backoff.
	// Default time.Now.
	Now func() time.Time
}

// Validate checks c and fills in the defaults.
func (c *Config) Validate() error {
	if c.Store == nil {
		return cairn.Errorf(cairn.EInvalid, "forward: no store")
	}
	if len(c.Sinks) == 0 {
		return cairn.Errorf(cairn.EInvalid, "forward: no sink types")
	}
	for _, t := range c.Sinks {
		if t.Name == "" || t.New == nil || len(t.Formats) == 0 {
			return cairn.Errorf(cairn.EInvalid, "forward: sink type %q is incomplete", t.Name)
		}
		for _, f := range t.Formats {
			if !format.Valid(f) {
				return cairn.Errorf(cairn.EInvalid, "forward: sink type %q lists unknown format %q", t.Name, f)
			}
		}
	}
	if c.Guard == nil {
		c.Guard = &Guard{}
	}
	if c.Poll == 0 {
		c.Poll = DefaultPoll
	}
	if c.SinkTimeout == 0 {
		c.SinkTimeout = DefaultSinkTimeout
	}
	if c.Poll < 0 || c.SinkTimeout < 0 {
		return cairn.Errorf(cairn.EInvalid, "forward: negative poll or timeout")
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	return nil
}

// Service manages forwarders and delivers their events. Run must be
// called once for delivery; the other methods are safe for concurrent
// use and work without Run (on any node).
type Service struct {
	cfg   Config
	types sinkTypes

	mu      sync.Mutex
	commits chan struct{} // closed and replaced on each Notify
	reload  chan struct{}
	workers map[fwdKey]*worker
}

type fwdKey struct{ org, name string }

// New returns a Service; it does no I/O.
func New(cfg Config) (*Service, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	types := sinkTypes{}
	for _, t := range cfg.Sinks {
		types[t.Name] = t
	}
	return &Service{cfg: cfg, types: types, commits: make(chan struct{}), reload: make(chan struct{}, 1),
		workers: map[fwdKey]*worker{}}, nil
}

func (s *Service) env() Env {
	return Env{Guard: s.cfg.Guard, Timeout: s.cfg.SinkTimeout, Now: s.cfg.Now, Logger: s.cfg.Logger, UserAgent: UserAgent}
}

// SinkTypes returns the names of the configured sink types.
func (s *Service) SinkTypes() []string { return s.types.names() }

// Notify tells delivery that events were committed. It never blocks.
func (s *Service) Notify() {
	s.mu.Lock()
	close(s.commits)
	s.commits = make(chan struct{})
	s.mu.Unlock()
}

func (s *Service) committed() <-chan struct{} {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.commits
}

// changed asks Run to reload forwarders now and wakes the forwarder's
// worker (a replay or a resume must not wait for a backoff).
func (s *Service) changed(org, name string) {
	select {
	case s.reload <- struct{}{}:
	default:
	}
	s.mu.Lock()
	w := s.workers[fwdKey{org, name}]
	s.mu.Unlock()
	if w != nil {
		w.kick()
	}
}

// Create validates and stores a new forwarder, enabled unless f says
// otherwise, and returns it with its secrets masked. Delivery starts at
// seq 0 of every context: a new forwarder replays the whole log.
// Errors: EInvalid, ENotFound (org or a listed context), EConflict.
func (s *Service) Create(ctx context.Context, f *cairn.Forwarder) (*cairn.Forwarder, error) {
	f = clone(f)
	if err := s.normalize(f); err != nil {
		return nil, err
	}
	if err := s.checkContexts(ctx, f); err != nil {
		return nil, err
	}
	now := s.cfg.Now().UTC().Truncate(time.Microsecond)
	f.CreatedAt, f.UpdatedAt = now, now
	if err := s.cfg.Store.CreateForwarder(ctx, f); err != nil {
		return nil, err
	}
	s.changed(f.Org, f.Name)
	return s.Mask(f), nil
}

// Replace replaces a forwarder's configuration. Secret settings that read
// cairn.SecretMask keep their stored values. Cursors and delivery state
// are kept: a changed sink continues where the old one stopped.
func (s *Service) Replace(ctx context.Context, f *cairn.Forwarder) (*cairn.Forwarder, error) {
	cur, err := s.cfg.Store.GetForwarder(ctx, f.Org, f.Name)
	if err != nil {
		return nil, err
	}
	f = clone(f)
	s.keepSecrets(f, cur)
	if err := s.normalize(f); err != nil {
		return nil, err
	}
	if err := s.checkContexts(ctx, f); err != nil {
		return nil, err
	}
	f.CreatedAt = cur.CreatedAt
	f.UpdatedAt = s.cfg.Now().UTC().Truncate(time.Microsecond)
	if !f.UpdatedAt.After(cur.UpdatedAt) {
		f.UpdatedAt = cur.UpdatedAt.Add(time.Microsecond) // every change is seen as one
	}
	if err := s.cfg.Store.UpdateForwarder(ctx, f); err != nil {
		return nil, err
	}
	s.changed(f.Org, f.Name)
	return s.Mask(f), nil
}

// SetEnabled pauses (false) or resumes (true) a forwarder. Resuming also
// un-parks it and resets its attempts: delivery continues from the
// cursor at once.
func (s *Service) SetEnabled(ctx context.Context, org, name string, enabled bool) (*cairn.Forwarder, error) {
	f, err := s.cfg.Store.GetForwarder(ctx, org, name)
	if err != nil {
		return nil, err
	}
	if enabled {
		st, err := s.cfg.Store.ForwarderState(ctx, org, name)
		if err != nil {
			return nil, err
		}
		if st.Parked || st.Attempts > 0 {
			st.Parked, st.Attempts = false, 0
			if err := s.cfg.Store.SetForwarderState(ctx, org, name, st); err != nil {
				return nil, err
			}
		}
	}
	if f.Enabled != enabled {
		f.Enabled = enabled
		f.UpdatedAt = s.cfg.Now().UTC().Truncate(time.Microsecond)
		if err := s.cfg.Store.UpdateForwarder(ctx, f); err != nil {
			return nil, err
		}
	}
	s.changed(org, name)
	return s.Mask(f), nil
}

// Delete removes a forwarder, its cursors and its state.
func (s *Service) Delete(ctx context.Context, org, name string) error {
	if err := s.cfg.Store.DeleteForwarder(ctx, org, name); err != nil {
		return err
	}
	s.changed(org, name)
	return nil
}

// Get returns a forwarder with its secrets masked.
func (s *Service) Get(ctx context.Context, org, name string) (*cairn.Forwarder, error) {
	f, err := s.cfg.Store.GetForwarder(ctx, org, name)
	if err != nil {
		return nil, err
	}
	return s.Mask(f), nil
}

// List returns an org's forwarders with their secrets masked.
func (s *Service) List(ctx context.Context, org string) ([]*cairn.Forwarder, error) {
	fs, err := s.cfg.Store.ListForwarders(ctx, org)
	if err != nil {
		return nil, err
	}
	out := make([]*cairn.Forwarder, len(fs))
	for i, f := range fs {
		out[i] = s.Mask(f)
	}
	return out, nil
}

// checkContexts makes sure every listed context exists (contexts are
// never deleted, so they exist for good).
func (s *Service) checkContexts(ctx context.Context, f *cairn.Forwarder) error {
	for _, c := range f.Contexts {
		if _, err := s.cfg.Store.GetContext(ctx, f.Org, c); err != nil {
			if cairn.ErrorCode(err) == cairn.ENotFound {
				return cairn.Errorf(cairn.EInvalid, "context %q does not exist in org %q", c, f.Org)
			}
			return err
		}
	}
	return nil
}

// contexts returns the forwarder's contexts with their sizes, by name.
func (s *Service) contexts(ctx context.Context, f *cairn.Forwarder) ([]*cairn.Context, error) {
	all, err := s.cfg.Store.ListContexts(ctx, f.Org)
	if err != nil {
		return nil, err
	}
	if len(f.Contexts) == 0 {
		return all, nil
	}
	out := all[:0:0]
	for _, c := range all {
		if slices.Contains(f.Contexts, c.Name) {
			out = append(out, c)
		}
	}
	return out, nil
}

// Replay moves the cursors of a forwarder back (or forward) to a seq or
// to the first event received at or after a time, in one context or all
// of the forwarder's contexts, and returns the new status. Events after
// the new position are delivered again. A position past a context's end
// is clamped to its end. Errors: EInvalid (negative seq), ENotFound.
func (s *Service) Replay(ctx context.Context, org, name string, from cairn.ReplayFrom) (*cairn.ForwarderStatus, error) {
	f, err := s.cfg.Store.GetForwarder(ctx, org, name)
	if err != nil {
		return nil, err
	}
	if from.Seq < 0 {
		return nil, cairn.Errorf(cairn.EInvalid, "replay seq must not be negative")
	}
	cs, err := s.contexts(ctx, f)
	if err != nil {
		return nil, err
	}
	if from.Context != "" {
		cs = slices.DeleteFunc(cs, func(c *cairn.Context) bool { return c.Name != from.Context })
		if len(cs) == 0 {
			return nil, cairn.Errorf(cairn.EInvalid, "forwarder %q does not forward context %q", name, from.Context)
		}
	}
	for _, c := range cs {
		next := min(from.Seq, c.Size)
		if !from.Time.IsZero() {
			if next, err = s.seqAt(ctx, org, c.Name, c.Size, from.Time); err != nil {
				return nil, err
			}
		}
		if err := s.cfg.Store.SetCursor(ctx, org, name, c.Name, next); err != nil {
			return nil, err
		}
	}
	s.changed(org, name)
	return s.Status(ctx, org, name)
}

// seqAt returns the first seq in [0, size) whose event was received at or
// after t, or size: a binary search on received_time, which grows with
// seq (up to the jitter of concurrent requests).
func (s *Service) seqAt(ctx context.Context, org, context string, size int64, t time.Time) (int64, error) {
	lo, hi := int64(0), size
	for lo < hi {
		mid := lo + (hi-lo)/2
		rt, err := s.receivedAt(ctx, org, context, mid)
		if err != nil {
			return 0, err
		}
		if rt.Before(t) {
			lo = mid + 1
		} else {
			hi = mid
		}
	}
	return lo, nil
}

// receivedAt returns the received time of one committed event.
func (s *Service) receivedAt(ctx context.Context, org, context string, seq int64) (time.Time, error) {
	leaves, err := s.cfg.Store.ReadLeaves(ctx, org, context, seq, seq+1)
	if err != nil {
		return time.Time{}, err
	}
	var e struct {
		ReceivedTime time.Time `json:"received_time"`
	}
	if err := json.Unmarshal(leaves[0], &e); err != nil {
		return time.Time{}, &cairn.Error{Code: cairn.EIntegrity, Message: fmt.Sprintf("leaf %d of %s is not an event", seq, context), Err: err}
	}
	return e.ReceivedTime, nil
}

// Status returns a forwarder's cursors, lag and delivery state.
func (s *Service) Status(ctx context.Context, org, name string) (*cairn.ForwarderStatus, error) {
	f, err := s.cfg.Store.GetForwarder(ctx, org, name)
	if err != nil {
		return nil, err
	}
	return s.status(ctx, f)
}

func (s *Service) status(ctx context.Context, f *cairn.Forwarder) (*cairn.ForwarderStatus, error) {
	st, err := s.cfg.Store.ForwarderState(ctx, f.Org, f.Name)
	if err != nil {
		return nil, err
	}
	cursors, err := s.cfg.Store.Cursors(ctx, f.Org, f.Name)
	if err != nil {
		return nil, err
	}
	next := map[string]int64{}
	for _, c := range cursors {
		next[c.Context] = c.Next
	}
	cs, err := s.contexts(ctx, f)
	if err != nil {
		return nil, err
	}
	out := &cairn.ForwarderStatus{Org: f.Org, Name: f.Name, ForwarderState: st, Cursors: []cairn.CursorStatus{}}
	now := s.cfg.Now()
	for _, c := range cs {
		cur := cairn.CursorStatus{Context: c.Name, Next: next[c.Name], Size: c.Size}
		cur.LagEvents = max(0, c.Size-cur.Next)
		if cur.LagEvents > 0 {
			rt, err := s.receivedAt(ctx, f.Org, c.Name, cur.Next)
			if err != nil {
				return nil, err
			}
			cur.LagSeconds = max(0, now.Sub(rt).Seconds())
		}
		out.LagEvents += cur.LagEvents
		out.LagSeconds = max(out.LagSeconds, cur.LagSeconds)
		out.Cursors = append(out.Cursors, cur)
	}
	switch {
	case !f.Enabled:
		out.State = cairn.ForwarderPaused
	case st.Parked:
		out.State = cairn.ForwarderParked
	case st.Attempts > 0:
		out.State = cairn.ForwarderBackingOff
	default:
		out.State = cairn.ForwarderRunning
	}
	s.mu.Lock()
	w := s.workers[fwdKey{f.Org, f.Name}]
	s.mu.Unlock()
	if w != nil && out.State == cairn.ForwarderBackingOff {
		out.NextAttempt = w.nextAttempt()
	}
	return out, nil
}

// Test sends one synthetic event through the forwarder's sink, in its
// format, and reports the sink's answer. The event is not in any log: its
// seq is -1, its action "cairn.forwarder.test". Paused forwarders can be
// tested; cursors and state are not touched. A failed delivery is a
// result (OK false), not an error.
func (s *Service) Test(ctx context.Context, org, name string) (*cairn.ForwarderTest, error) {
	f, err := s.cfg.Store.GetForwarder(ctx, org, name)
	if err != nil {
		return nil, err
	}
	sink, err := s.types[f.Sink.Type].New(f.Sink.Settings, s.env())
	if err != nil {
		return nil, err
	}
	defer sink.Close()
	now := s.cfg.Now().UTC().Truncate(time.Microsecond)
	ctxName := cairn.BuiltinContext
	if len(f.Contexts) > 0 {
		ctxName = f.Contexts[0]
	}
	e := &cairn.Event{ID: uuid.Must(uuid.NewV7()).String(), Org: org, Context: ctxName, Seq: -1,
		EventTime: now, ReceivedTime: now, Action: "cairn.forwarder.test", Kind: cairn.KindOther,
		Outcome: cairn.OutcomeSuccess, Actor: &cairn.Actor{Type: cairn.ActorSystem, ID: "cairn", Name: "Cairn"},
		Target:      &cairn.Target{Type: "forwarder", ID: name, Name: name},
		Description: "A test event sent by Cairn to check the forwarder's sink; it is not in the log.",
		Metadata:    map[string]any{"cairn_test": true}}
	leaf, err := json.Marshal(e)
	if err != nil {
		return nil, err
	}
	body, err := format.Encode(f.Format, e, leaf)
	if err != nil {
		return nil, err
	}
	b := &Batch{Org: org, Forwarder: name, Context: ctxName, Format: f.Format,
		Records: []Record{{Event: e, Leaf: leaf, Body: body}}}
	sendCtx, cancel := contextWithTimeout(ctx, s.cfg.SinkTimeout)
	defer cancel()
	start := time.Now()
	ans, err := sink.Send(sendCtx, b)
	out := &cairn.ForwarderTest{OK: err == nil, Answer: ans.Detail, Took: time.Since(start)}
	if err != nil {
		if errors.Is(err, context.Canceled) && ctx.Err() != nil {
			return nil, ctx.Err()
		}
		out.ErrorCode, out.Error = cairn.ErrorCode(err), deliveryMessage(err)
	}
	return out, nil
}

// deliveryMessage is the text shown for a failed delivery: the cairn
// message, or the error itself for an unclassified one (sinks build
// their errors without secrets).
func deliveryMessage(err error) string {
	var ce *cairn.Error
	if errors.As(err, &ce) {
		return ce.Message
	}
	return err.Error()
}

func contextWithTimeout(ctx context.Context, d time.Duration) (context.Context, context.CancelFunc) {
	if d <= 0 {
		return context.WithCancel(ctx)
	}
	return context.WithTimeout(ctx, d)
}

func clone(f *cairn.Forwarder) *cairn.Forwarder {
	c := *f
	c.Contexts = slices.Clone(f.Contexts)
	c.Sink.Settings = map[string]any{}
	for k, v := range f.Sink.Settings {
		c.Sink.Settings[k] = v
	}
	return &c
}
