// Package witness submits Cairn's signed checkpoints to C2SP tlog-witness
// witnesses, verifies and stores their cosignatures, and decides which
// checkpoint a context publishes under its witness policy.
//
// It never sends a witness anything but the log-signed checkpoint and a
// consistency proof built from the stored hashes, never stores a
// cosignature it could not verify with the witness's configured key, and
// never retries a checkpoint a witness rejected (403, 400, 422). Nothing
// it logs contains keys or tokens.
package witness

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"sync"
	"time"

	"github.com/cairn-audit/cairn"
	"github.com/cairn-audit/cairn/merkle"
)

// Defaults of a Service.
const (
	DefaultPoll       = 5 * time.Second
	DefaultMinBackoff = time.Second
	DefaultMaxBackoff = 5 * time.Minute
	DefaultTimeout    = 10 * time.Second
	// configTTL bounds how long a configuration edited on another node is
	// served from memory.
	configTTL = 2 * time.Second
	// maxResends bounds the 409 resynchronisations of one submission.
	maxResends = 3
	// maxParallelContexts bounds the contexts submitted at once by Run.
	maxParallelContexts = 8
)

// Store is what the Service needs from an engine.
type Store interface {
	cairn.LogReader
	cairn.WitnessStore
}

// Config configures a Service.
type Config struct {
	// Store holds the logs, checkpoints and witnessing state. Required.
	Store Store
	// Signer names each context's origin. Required.
	Signer *merkle.Signer
	// HTTP sends the submissions. Default: a client with DefaultTimeout.
	HTTP *http.Client
	// Poll is how often Run looks for checkpoints that a witness has not
	// cosigned without a Notify (commits by other nodes, retries after a
	// backoff). Default DefaultPoll.
	Poll time.Duration
	// MinBackoff and MaxBackoff bound the exponential backoff (with
	// jitter) after a witness could not be reached. A witness that does
	// not know the log (404) or rejected a checkpoint waits MaxBackoff.
	MinBackoff, MaxBackoff time.Duration
	// Logger receives failed submissions (warn). Default: discard.
	Logger *slog.Logger
	// Metrics, if set, counts submissions.
	Metrics *Metrics
	// Now is the clock of statuses and backoffs. Default time.Now.
	Now func() time.Time
}

// Validate checks c and fills in the defaults.
func (c *Config) Validate() error {
	if c.Store == nil {
		return cairn.Errorf(cairn.EInvalid, "witness: no store")
	}
	if c.Signer == nil {
		return cairn.Errorf(cairn.EInvalid, "witness: no signer")
	}
	if c.HTTP == nil {
		c.HTTP = &http.Client{Timeout: DefaultTimeout}
	}
	if c.Poll == 0 {
		c.Poll = DefaultPoll
	}
	if c.MinBackoff == 0 {
		c.MinBackoff = DefaultMinBackoff
	}
	if c.MaxBackoff == 0 {
		c.MaxBackoff = DefaultMaxBackoff
	}
	if c.Poll < 0 || c.MinBackoff < 0 || c.MaxBackoff < c.MinBackoff {
		return cairn.Errorf(cairn.EInvalid, "witness: bad poll or backoff durations")
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	return nil
}

// Service submits checkpoints to witnesses and serves checkpoints by
// policy. Run must be called once for background submission; the other
// methods are safe for concurrent use.
type Service struct {
	cfg    Config
	notify chan struct{}

	mu      sync.Mutex
	peers   map[peerKey]*peer
	configs map[logKey]cachedConfig
	served  map[logKey]cachedCheckpoint // fail-closed answers of Checkpoint
	changed chan struct{}               // closed and replaced when a checkpoint or cosignature is recorded
}

type logKey struct{ org, context string }

type peerKey struct{ org, context, key string }

// peer is the submission state of one witness of one context.
type peer struct {
	failures int
	next     time.Time // no submission before
	blocked  int64     // a checkpoint size the witness rejected; 0 none
	busy     bool
}

type cachedConfig struct {
	c       cairn.WitnessConfig
	expires time.Time
}

// New returns a Service; it does no I/O.
func New(cfg Config) (*Service, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return &Service{cfg: cfg, notify: make(chan struct{}, 1), peers: map[peerKey]*peer{},
		configs: map[logKey]cachedConfig{}, served: map[logKey]cachedCheckpoint{}, changed: make(chan struct{})}, nil
}

// Notify asks Run to look for new checkpoints now. It never blocks.
func (s *Service) Notify() {
	select {
	case s.notify <- struct{}{}:
	default:
	}
}

// Signed is the Checkpointer's OnSign hook: it wakes WaitFor callers and
// Run. It never blocks.
func (s *Service) Signed(org, context string, cp *cairn.Checkpoint) {
	s.wake()
	s.Notify()
}

func (s *Service) wake() {
	s.mu.Lock()
	clear(s.served)
	close(s.changed)
	s.changed = make(chan struct{})
	s.mu.Unlock()
}

// Run submits new checkpoints of every witnessed context until ctx is
// cancelled, then returns nil: at once, on each Notify, and every Poll.
func (s *Service) Run(ctx context.Context) error {
	t := time.NewTicker(s.cfg.Poll)
	defer t.Stop()
	for {
		refs, err := s.cfg.Store.WitnessedContexts(ctx)
		if err != nil && ctx.Err() == nil {
			s.cfg.Logger.LogAttrs(ctx, slog.LevelWarn, "list witnessed contexts", slog.Any("error", err))
		}
		// Contexts are submitted in parallel (bounded), so one slow
		// witness does not hold back the others.
		var wg sync.WaitGroup
		sem := make(chan struct{}, maxParallelContexts)
		for _, r := range refs {
			sem <- struct{}{}
			wg.Add(1)
			go func() {
				defer func() { <-sem; wg.Done() }()
				// Failures are recorded and logged per witness.
				_ = s.Submit(ctx, r.Org, r.Context)
			}()
		}
		wg.Wait()
		select {
		case <-ctx.Done():
			return nil
		case <-s.notify:
		case <-t.C:
		}
	}
}

// Submit sends the context's latest checkpoint to each configured witness
// that has not cosigned it, is not backing off and has not rejected it,
// concurrently, and waits for the answers. Each outcome is recorded in the
// witness's status; failures are logged. It returns the failures joined.
func (s *Service) Submit(ctx context.Context, org, name string) error {
	c, err := s.cfg.Store.WitnessConfig(ctx, org, name)
	if err != nil || len(c.Witnesses) == 0 {
		return err
	}
	origin, err := s.cfg.Signer.Origin(org, name)
	if err != nil {
		return err
	}
	cp, err := s.cfg.Store.LatestCheckpoint(ctx, org, name)
	if cairn.ErrorCode(err) == cairn.ENotFound {
		return nil
	}
	if err != nil {
		return fmt.Errorf("witness %s: %w", origin, err)
	}
	cosigners, err := s.cfg.Store.Cosigners(ctx, org, name, cp.Size)
	if err != nil {
		return fmt.Errorf("witness %s: %w", origin, err)
	}
	done := map[string]bool{}
	for _, w := range cosigners {
		done[w] = true
	}
	statuses, err := s.statuses(ctx, org, name)
	if err != nil {
		return fmt.Errorf("witness %s: %w", origin, err)
	}

	now := s.cfg.Now()
	var wg sync.WaitGroup
	errs := make([]error, len(c.Witnesses))
	for i, w := range c.Witnesses {
		if done[w.Key] || !s.acquire(peerKey{org, name, w.Key}, cp.Size, now) {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = s.submitOne(ctx, org, name, origin, w, cp, statuses[w.Key])
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

// acquire marks a witness busy unless it is busy, backing off, or rejected
// this size.
func (s *Service) acquire(k peerKey, size int64, now time.Time) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	p := s.peers[k]
	if p == nil {
		p = &peer{}
		s.peers[k] = p
	}
	if p.busy || now.Before(p.next) || (p.blocked != 0 && p.blocked == size) {
		return false
	}
	p.busy = true
	return true
}

func (s *Service) statuses(ctx context.Context, org, name string) (map[string]cairn.WitnessStatus, error) {
	sts, err := s.cfg.Store.WitnessStatuses(ctx, org, name)
	if err != nil {
		return nil, err
	}
	out := make(map[string]cairn.WitnessStatus, len(sts))
	for _, st := range sts {
		out[st.Witness] = st
	}
	return out, nil
}

// submitOne submits cp to one witness, resending after a 409 from the
// witness's size, and records the outcome.
func (s *Service) submitOne(ctx context.Context, org, name, origin string, w cairn.Witness, cp *cairn.Checkpoint, st cairn.WitnessStatus) error {
	k, err := ParseKey(w.Key)
	if err != nil {
		return s.finish(ctx, org, name, k, w, cp, st, err)
	}
	if st.Witness == "" {
		st = cairn.WitnessStatus{Witness: w.Key, Size: -1}
	}
	signed, err := logSigned(cp.Note, origin)
	if err != nil {
		return s.finish(ctx, org, name, k, w, cp, st, err)
	}
	old := max(st.Size, 0)
	for range maxResends + 1 {
		if old > cp.Size {
			err = cairn.Errorf(cairn.EIntegrity,
				"the witness has seen a larger tree (size %d) than the latest checkpoint (size %d)", old, cp.Size)
			return s.finish(ctx, org, name, k, w, cp, st, err)
		}
		proof, perr := merkle.ProveConsistency(ctx, s.cfg.Store, org, name, old, cp.Size)
		if perr != nil {
			return s.finish(ctx, org, name, k, w, cp, st, fmt.Errorf("consistency proof %d→%d: %w", old, cp.Size, perr))
		}
		var resp []byte
		resp, err = AddCheckpoint(ctx, s.cfg.HTTP, w.URL, old, proof, signed)
		if size, ok := sizeConflict(err); ok {
			s.cfg.Metrics.submitted(org, name, k.Name, "conflict")
			old, st.Size = size, size
			continue
		}
		if err != nil {
			return s.finish(ctx, org, name, k, w, cp, st, err)
		}
		cs, verr := verifyCosignature(k, w.Key, signed, resp)
		if verr != nil {
			return s.finish(ctx, org, name, k, w, cp, st, verr)
		}
		if err := s.cfg.Store.AddCosignatures(ctx, org, name, cp.Size, []cairn.Cosignature{cs}); err != nil {
			return s.finish(ctx, org, name, k, w, cp, st, fmt.Errorf("store cosignature: %w", err))
		}
		st.Size = cp.Size
		return s.finish(ctx, org, name, k, w, cp, st, nil)
	}
	return s.finish(ctx, org, name, k, w, cp, st, &cairn.Error{Code: cairn.EConflict, Err: err,
		Message: "the witness kept answering 409 with another size"})
}

// finish records a submission's outcome: status, backoff, metrics, log.
func (s *Service) finish(ctx context.Context, org, name string, k *Key, w cairn.Witness, cp *cairn.Checkpoint, st cairn.WitnessStatus, err error) error {
	now := s.cfg.Now().UTC()
	label := w.Key
	if k != nil {
		label = k.Name
	}
	if st.Witness == "" {
		st = cairn.WitnessStatus{Witness: w.Key, Size: -1}
	}
	result := "ok"
	s.mu.Lock()
	p := s.peers[peerKey{org, name, w.Key}]
	p.busy = false
	if err == nil {
		p.failures, p.next, p.blocked = 0, time.Time{}, 0
	} else if ctx.Err() == nil {
		p.failures++
		switch cairn.ErrorCode(err) {
		case cairn.EUnavailable, cairn.EInternal:
			result = "unavailable"
			if cairn.ErrorCode(err) == cairn.EInternal {
				result = "error"
			}
			p.next = now.Add(s.backoff(p.failures))
		case cairn.ENotFound:
			result = "unknown_log"
			p.next = now.Add(s.cfg.MaxBackoff)
		default: // rejected: never resubmit this checkpoint
			result = map[string]string{cairn.EIntegrity: "rejected", cairn.EForbidden: "forbidden"}[cairn.ErrorCode(err)]
			if result == "" {
				result = "rejected"
			}
			if cairn.ErrorCode(err) == cairn.EIntegrity && errors.Is(err, errBadCosignature) {
				result = "bad_cosignature"
			}
			p.blocked = cp.Size
			p.next = now.Add(s.cfg.MaxBackoff)
		}
	}
	s.mu.Unlock()
	if err != nil && ctx.Err() != nil {
		return err // shutting down: not the witness's fault
	}

	if err == nil {
		st.LastSuccess = now
	} else {
		st.LastErrorAt, st.LastErrorCode, st.LastError = now, cairn.ErrorCode(err), cairn.ErrorMessage(err)
	}
	if serr := s.cfg.Store.SetWitnessStatus(ctx, org, name, st); serr != nil && ctx.Err() == nil {
		s.cfg.Logger.LogAttrs(ctx, slog.LevelWarn, "record witness status",
			slog.String("org", org), slog.String("context", name), slog.Any("error", serr))
	}
	s.cfg.Metrics.submitted(org, name, label, result)
	if err != nil {
		s.cfg.Logger.LogAttrs(ctx, slog.LevelWarn, "witness submission failed",
			slog.String("org", org), slog.String("context", name), slog.String("witness", label),
			slog.Int64("size", cp.Size), slog.String("code", cairn.ErrorCode(err)), slog.Any("error", err))
		return fmt.Errorf("witness %s: %w", label, err)
	}
	s.cfg.Metrics.success(org, name, label, cp.Size, now)
	s.updateQuorum(ctx, org, name, cp.Size)
	s.wake()
	return nil
}

// errBadCosignature marks a response whose cosignature did not verify.
var errBadCosignature = errors.New("bad cosignature")

func (s *Service) backoff(failures int) time.Duration {
	d := s.cfg.MinBackoff << min(failures-1, 20)
	if d > s.cfg.MaxBackoff || d <= 0 {
		d = s.cfg.MaxBackoff
	}
	// ±20% jitter so many contexts do not retry in step.
	return d - d/5 + time.Duration(rand.Int64N(int64(d/5)*2+1))
}

func (s *Service) updateQuorum(ctx context.Context, org, name string, size int64) {
	c, err := s.config(ctx, org, name)
	if err != nil || c.Quorum == 0 {
		return
	}
	if cp, err := s.cfg.Store.LatestCosignedCheckpoint(ctx, org, name, keys(c), c.Quorum); err == nil {
		s.cfg.Metrics.quorum(org, name, cp.Size)
	}
}

func keys(c cairn.WitnessConfig) []string {
	out := make([]string, len(c.Witnesses))
	for i, w := range c.Witnesses {
		out[i] = w.Key
	}
	return out
}
