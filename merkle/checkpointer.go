package merkle

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/cairn-audit/cairn"
	"golang.org/x/mod/sumdb/tlog"
)

// Default timings of a Checkpointer.
const (
	DefaultInterval = 200 * time.Millisecond
	DefaultPoll     = time.Second
)

// Config configures a Checkpointer.
type Config struct {
	// Store holds the logs to sign and records the checkpoints. Required.
	Store cairn.LogReader
	// Signer signs the checkpoints. Required.
	Signer *Signer
	// Interval is the longest a Notify waits for a signing round to start,
	// and the shortest time between the starts of two rounds: under load
	// each busy context gets one checkpoint per Interval. After an idle
	// period a Notify starts a round at once. Default DefaultInterval;
	// at most 1 s (the signing contract).
	Interval time.Duration
	// Poll is how often to look for unsigned heads without a Notify: it
	// catches commits by other processes and retries refused heads.
	// Default DefaultPoll; not below Interval.
	Poll time.Duration
	// Logger receives refusals (error level) and failed rounds (warn).
	// Default: discard.
	Logger *slog.Logger
	// Now stamps Checkpoint.SignedAt. Default time.Now. Scheduling uses the
	// real clock.
	Now func() time.Time
	// OnSign, if set, is called after each checkpoint this Checkpointer
	// signs and records (e.g. to submit it to witnesses). It must not block.
	OnSign func(org, context string, cp *cairn.Checkpoint)
}

// Validate checks c and fills in the defaults.
func (c *Config) Validate() error {
	if c.Store == nil {
		return cairn.Errorf(cairn.EInvalid, "checkpointer: no store")
	}
	if c.Signer == nil {
		return cairn.Errorf(cairn.EInvalid, "checkpointer: no signer")
	}
	if c.Interval == 0 {
		c.Interval = DefaultInterval
	}
	if c.Interval < 0 || c.Interval > time.Second {
		return cairn.Errorf(cairn.EInvalid, "checkpointer: interval %v is outside (0, 1s]", c.Interval)
	}
	if c.Poll == 0 {
		c.Poll = max(DefaultPoll, c.Interval)
	}
	if c.Poll < c.Interval {
		return cairn.Errorf(cairn.EInvalid, "checkpointer: poll %v is shorter than interval %v", c.Poll, c.Interval)
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	return nil
}

// Checkpointer signs the committed heads of every context in the
// background and records the checkpoints in the store. The committer calls
// Notify after each commit; a checkpoint covering the commit is then
// signed within Interval plus the time a round takes.
//
// Before signing a head it checks, against the store's stored hashes and
// the context's latest checkpoint, that
//
//   - the head's root is the tree hash of the stored hashes at its size;
//   - at the latest checkpoint's size, the root is the signed one (then
//     nothing is signed: the checkpoint already covers the head);
//   - at a larger size, a consistency proof from the latest checkpoint to
//     the head verifies (tlog.ProveTree, tlog.CheckTree);
//   - a smaller head is only a stale read (another node signed a later
//     tree meanwhile): the stored hashes must reproduce the latest
//     checkpoint and prove the head a prefix of it; then that checkpoint
//     covers the head. If the store no longer holds that tree (rolled
//     back, rewritten) the head is refused.
//
// A head that fails a check is refused with an EIntegrity error and never
// signed; Run logs the refusal at error level (once per distinct head) and
// goes on signing the other contexts.
//
// Run must be called once. SignHead and WaitFor are safe for concurrent use.
type Checkpointer struct {
	store  cairn.LogReader
	signer *Signer
	cfg    Config
	notify chan struct{}

	signMu sync.Mutex // serialises SignHead: check-then-sign is not atomic in the store

	mu     sync.Mutex
	signed chan struct{}                // closed and replaced after each new checkpoint
	latest map[logKey]*cairn.Checkpoint // newest checkpoint seen per context
}

type logKey struct{ org, context string }

// NewCheckpointer returns a Checkpointer; it does no I/O.
func NewCheckpointer(cfg Config) (*Checkpointer, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return &Checkpointer{
		store:  cfg.Store,
		signer: cfg.Signer,
		cfg:    cfg,
		notify: make(chan struct{}, 1),
		signed: make(chan struct{}),
		latest: make(map[logKey]*cairn.Checkpoint),
	}, nil
}

// Notify tells the Checkpointer that new events were committed. It never
// blocks; notifications made before the next round starts coalesce.
func (c *Checkpointer) Notify() {
	select {
	case c.notify <- struct{}{}:
	default:
	}
}

// Run signs unsigned heads until ctx is cancelled, then returns nil. The
// first round starts at once, so heads committed before a restart are
// signed on startup without a separate call.
//
// A round lists the store's UnsignedHeads and calls SignHead for each.
// Rounds start at most once per Interval: a Notify starts one at once if
// the last round started at least Interval ago, else when Interval has
// passed. Without Notify a round starts every Poll. A round with a
// transient failure (store error, concurrent signer) is retried after
// Interval; refusals wait for Poll.
func (c *Checkpointer) Run(ctx context.Context) error {
	refused := make(map[logKey]cairn.Head)
	var lastStart time.Time
	due := time.Now()
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-c.notify:
			if at := lastStart.Add(c.cfg.Interval); at.Before(due) {
				due = at
				timer.Reset(time.Until(at))
			}
		case <-timer.C:
			lastStart = time.Now()
			retry := c.round(ctx, refused)
			due = lastStart.Add(c.cfg.Poll)
			if retry {
				due = lastStart.Add(c.cfg.Interval)
			}
			timer.Reset(time.Until(due))
		}
	}
}

// round signs every unsigned head once. It reports whether a transient
// failure calls for an early retry.
func (c *Checkpointer) round(ctx context.Context, refused map[logKey]cairn.Head) (retry bool) {
	log := c.cfg.Logger
	heads, err := c.store.UnsignedHeads(ctx)
	if err != nil {
		if ctx.Err() == nil {
			log.LogAttrs(ctx, slog.LevelWarn, "list unsigned heads", slog.Any("error", err))
		}
		return true
	}
	for _, h := range heads {
		if ctx.Err() != nil {
			return false
		}
		k := logKey{h.Org, h.Context}
		_, err := c.SignHead(ctx, h)
		switch {
		case err == nil:
			delete(refused, k)
		case ctx.Err() != nil:
			return false
		case cairn.ErrorCode(err) == cairn.EIntegrity:
			if prev, ok := refused[k]; ok && prev == h {
				continue // already reported; an operator must act
			}
			refused[k] = h
			log.LogAttrs(ctx, slog.LevelError, "refusing to sign checkpoint",
				slog.String("org", h.Org), slog.String("context", h.Context),
				slog.Int64("size", h.Size), slog.Any("error", err))
		case cairn.ErrorCode(err) == cairn.EConflict:
			retry = true // another node signed meanwhile; look again soon
			log.LogAttrs(ctx, slog.LevelDebug, "checkpoint conflict",
				slog.String("org", h.Org), slog.String("context", h.Context),
				slog.Int64("size", h.Size), slog.Any("error", err))
		default:
			retry = true
			log.LogAttrs(ctx, slog.LevelWarn, "sign checkpoint",
				slog.String("org", h.Org), slog.String("context", h.Context),
				slog.Int64("size", h.Size), slog.Any("error", err))
		}
	}
	return retry
}

// SignHead signs head and records the checkpoint, after the checks in the
// type's documentation. If the latest checkpoint already covers head (the
// same tree, or a later one a stale head is a prefix of), that checkpoint
// is returned and nothing is signed. SignHead does not log.
//
// Errors: EIntegrity when head must not be signed; EInvalid for a head
// whose org or context cannot form an origin; EConflict when another
// signer recorded a different checkpoint concurrently (retry later); the
// store's errors otherwise.
func (c *Checkpointer) SignHead(ctx context.Context, head cairn.Head) (*cairn.Checkpoint, error) {
	c.signMu.Lock()
	defer c.signMu.Unlock()

	origin, err := c.signer.Origin(head.Org, head.Context)
	if err != nil {
		return nil, err
	}
	if head.Size < 0 {
		return nil, cairn.Errorf(cairn.EInvalid, "%s: tree size %d is negative", origin, head.Size)
	}
	if head.Size == 0 && head.Root == ([32]byte{}) {
		head.Root = EmptyRoot()
	}
	hr := HashReader(ctx, c.store, head.Org, head.Context)
	root, err := tlog.TreeHash(head.Size, hr)
	if err != nil {
		return nil, fmt.Errorf("sign %s: tree hash at %d: %w", origin, head.Size, err)
	}
	if root != head.Root {
		return nil, cairn.Errorf(cairn.EIntegrity,
			"%s: the stored hashes do not match the committed root at size %d", origin, head.Size)
	}

	prev, err := c.store.LatestCheckpoint(ctx, head.Org, head.Context)
	switch cairn.ErrorCode(err) {
	case "":
		covered, err := covers(origin, prev, head, hr)
		if err != nil {
			return nil, err
		}
		if covered {
			c.publish(head, prev)
			return prev, nil
		}
	case cairn.ENotFound:
	default:
		return nil, fmt.Errorf("sign %s: latest checkpoint: %w", origin, err)
	}

	msg, err := c.signer.SignCheckpoint(origin, head.Size, head.Root)
	if err != nil {
		return nil, fmt.Errorf("sign %s: %w", origin, err)
	}
	cp := &cairn.Checkpoint{Size: head.Size, Root: head.Root, Note: msg, SignedAt: c.cfg.Now().UTC()}
	if err := c.store.AddCheckpoint(ctx, head.Org, head.Context, cp); err != nil {
		if cairn.ErrorCode(err) != cairn.EConflict {
			return nil, fmt.Errorf("sign %s: add checkpoint: %w", origin, err)
		}
		// Another signer (another node) got there first: fine if its
		// checkpoint covers this head.
		other, lerr := c.store.LatestCheckpoint(ctx, head.Org, head.Context)
		if lerr != nil {
			return nil, fmt.Errorf("sign %s: add checkpoint: %w", origin, err)
		}
		covered, cerr := covers(origin, other, head, hr)
		if cerr != nil {
			return nil, cerr
		}
		if !covered {
			return nil, &cairn.Error{Code: cairn.EConflict, Err: err, Message: fmt.Sprintf(
				"%s: a checkpoint at size %d was recorded concurrently", origin, other.Size)}
		}
		c.publish(head, other)
		return other, nil
	}
	c.publish(head, cp)
	if c.cfg.OnSign != nil {
		c.cfg.OnSign(head.Org, head.Context, cp)
	}
	return cp, nil
}

// covers reports whether the signed checkpoint prev already covers head
// (nothing to sign), and otherwise checks that head may be signed after
// prev. head's root has been checked against the stored hashes.
//
// A head smaller than prev is stale (another node signed a later tree
// after the head was read) if the stored hashes reproduce prev's root and
// prove head a prefix of it: then prev covers head. If the store cannot
// produce prev's tree (ENotFound) or produces another one, the log was
// rolled back or rewritten: EIntegrity.
func covers(origin string, prev *cairn.Checkpoint, head cairn.Head, hr tlog.HashReader) (bool, error) {
	switch {
	case head.Size == prev.Size:
		if head.Root != prev.Root {
			return false, cairn.Errorf(cairn.EIntegrity,
				"%s: the committed root at size %d differs from the signed one", origin, head.Size)
		}
		return true, nil

	case head.Size < prev.Size:
		smaller := func(err error) error {
			return &cairn.Error{Code: cairn.EIntegrity, Err: err, Message: fmt.Sprintf(
				"%s: the committed tree (size %d) is smaller than the last signed checkpoint (size %d) and does not extend to it",
				origin, head.Size, prev.Size)}
		}
		root, err := tlog.TreeHash(prev.Size, hr)
		switch {
		case cairn.ErrorCode(err) == cairn.ENotFound:
			return false, smaller(err)
		case err != nil:
			return false, fmt.Errorf("sign %s: tree hash at %d: %w", origin, prev.Size, err)
		case root != prev.Root:
			return false, smaller(nil)
		case head.Size == 0:
			return true, nil
		}
		if err := consistent(prev.Size, prev.Root, head.Size, head.Root, hr); err != nil {
			if cairn.ErrorCode(err) == cairn.EIntegrity {
				return false, smaller(err)
			}
			return false, fmt.Errorf("sign %s: %w", origin, err)
		}
		return true, nil

	case prev.Size == 0:
		if prev.Root != EmptyRoot() {
			return false, cairn.Errorf(cairn.EIntegrity, "%s: the signed empty checkpoint has a non-empty root", origin)
		}
		return false, nil
	}

	if err := consistent(head.Size, head.Root, prev.Size, prev.Root, hr); err != nil {
		if cairn.ErrorCode(err) == cairn.EIntegrity {
			return false, &cairn.Error{Code: cairn.EIntegrity, Err: err, Message: fmt.Sprintf(
				"%s: the committed tree (size %d) is not consistent with the last signed checkpoint (size %d)",
				origin, head.Size, prev.Size)}
		}
		return false, fmt.Errorf("sign %s: %w", origin, err)
	}
	return false, nil
}

// consistent proves with the stored hashes that the tree (n, nroot) is a
// prefix of the tree (t, troot), 0 < n < t, and checks the proof. A proof
// that does not verify is EIntegrity; a failed read is returned as is.
func consistent(t int64, troot [32]byte, n int64, nroot [32]byte, hr tlog.HashReader) error {
	proof, err := tlog.ProveTree(t, n, hr)
	if err != nil {
		return fmt.Errorf("prove consistency of %d with %d: %w", t, n, err)
	}
	if err := tlog.CheckTree(proof, t, troot, n, nroot); err != nil {
		return &cairn.Error{Code: cairn.EIntegrity, Message: "consistency proof does not verify", Err: err}
	}
	return nil
}

// publish records cp as the newest checkpoint of head's context and wakes
// WaitFor callers.
func (c *Checkpointer) publish(head cairn.Head, cp *cairn.Checkpoint) {
	c.mu.Lock()
	defer c.mu.Unlock()
	k := logKey{head.Org, head.Context}
	if old := c.latest[k]; old != nil && old.Size >= cp.Size {
		return
	}
	c.latest[k] = cp
	close(c.signed)
	c.signed = make(chan struct{})
}

// WaitFor returns a checkpoint of the context whose size is at least size,
// waiting until one is signed or ctx is done. It wakes on every checkpoint
// this Checkpointer records and reads the store every Poll to see those
// recorded by other processes. It waits forever for a size the context
// never reaches, so ctx should carry a deadline.
//
// Errors: ctx.Err() when ctx is done; the store's errors other than
// ENotFound.
func (c *Checkpointer) WaitFor(ctx context.Context, org, contextName string, size int64) (*cairn.Checkpoint, error) {
	k := logKey{org, contextName}
	var poll <-chan time.Time // nil: read the store now
	for {
		c.mu.Lock()
		signed, cp := c.signed, c.latest[k]
		c.mu.Unlock()
		if cp != nil && cp.Size >= size {
			cp := *cp // callers share the cached value
			return &cp, nil
		}
		if poll == nil {
			cp, err := c.store.LatestCheckpoint(ctx, org, contextName)
			switch {
			case err == nil && cp.Size >= size:
				return cp, nil
			case err != nil && cairn.ErrorCode(err) != cairn.ENotFound:
				if ctx.Err() != nil {
					return nil, ctx.Err()
				}
				return nil, fmt.Errorf("wait for checkpoint: %w", err)
			}
			poll = time.After(c.cfg.Poll)
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-signed:
		case <-poll:
			poll = nil
		}
	}
}
