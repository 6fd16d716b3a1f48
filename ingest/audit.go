package ingest

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/cairn-audit/cairn"
	"github.com/google/uuid"
)

// AuditRecord is one of Cairn's own actions to record in an org's
// built-in context: an administrative change, a read of a log, a login or
// a failed authentication. The Auditor fills in org, context, id and
// times.
type AuditRecord struct {
	Action      string // e.g. "context.update", "log.search", "auth.failed"
	Kind        string // cairn.Kind*; default KindOther
	Outcome     string // default OutcomeSuccess
	Reason      string
	Description string
	Actor       *cairn.Actor
	Target      *cairn.Target
	// Changes are the per-field old → new values of an administrative
	// change. Secrets are masked whatever the caller passes (auditRules).
	Changes []cairn.Change
	Source  *cairn.Source
	// Fields carry what was read (the filter of a search, never results).
	Fields map[string]string
}

// auditRules are applied to every record on top of DefaultRedaction: the
// server's own credentials are always masked in the built-in context.
var auditRules = []cairn.RedactionRule{
	{Field: "key", Mode: cairn.RedactMask},
	{Field: "key_hash", Mode: cairn.RedactMask},
	{Field: "hash", Mode: cairn.RedactMask},
	{Field: "bearer", Mode: cairn.RedactMask},
	{Field: "credentials", Mode: cairn.RedactMask},
	{Field: "webhook_secret", Mode: cairn.RedactMask},
}

// AuditorConfig configures an Auditor.
type AuditorConfig struct {
	Committer *Committer
	// Now stamps records (default time.Now).
	Now    func() time.Time
	Logger *slog.Logger
	// MaxPending bounds the records handed to RecordAsync and not yet
	// committed (default 10,000). Past it RecordAsync fails with
	// EUnavailable, and the server refuses the read rather than serve it
	// unrecorded.
	MaxPending int
	// Delay is how long a record handed to RecordAsync waits for others to
	// share its commit (default DefaultAuditDelay; negative: none).
	Delay time.Duration
}

// DefaultAuditDelay is how long a read's record waits for others before
// it is committed. Every search and read writes one, and a commit empties
// the page caches of every reader of the SQLite engine and costs the
// committer ~1 ms of CPU whatever it carries: at 150 searches a second,
// one commit per read was a commit every 7 ms, the next search starting
// with cold caches and sharing the two cores with the last one's commit
// (docs/performance.md). Gathered for 200 ms, they are five commits a
// second. The price is the same trade-off RecordAsync already makes, over
// a longer window: a crash loses the records of the reads of the last
// 200 ms.
const DefaultAuditDelay = 200 * time.Millisecond

// maxAuditBatch is the most records of one org a delayed commit gathers.
const maxAuditBatch = 1000

// Auditor appends Cairn's own actions to the built-in context of an org
// through the group commit, so they are Merkle-logged and verifiable like
// any other event. Forwarders, the API and the server all record through
// it. It never records its own work, so nothing recurses.
type Auditor struct {
	cfg     AuditorConfig
	mu      sync.Mutex
	pending int // records handed to RecordAsync and not yet committed
	closed  bool
	wg      sync.WaitGroup
	// waiting are the records of RecordAsync not yet handed to the
	// committer, one request per org, and timer is their flush.
	waiting map[string]*cairn.AppendRequest
	timer   *time.Timer
}

// NewAuditor returns an Auditor. Close it before the Committer.
func NewAuditor(cfg AuditorConfig) *Auditor {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.MaxPending <= 0 {
		cfg.MaxPending = 10000
	}
	if cfg.Delay == 0 {
		cfg.Delay = DefaultAuditDelay
	}
	return &Auditor{cfg: cfg, waiting: map[string]*cairn.AppendRequest{}}
}

// request builds the append request of one record.
func (a *Auditor) request(org string, r AuditRecord) (*cairn.AppendRequest, error) {
	if a.cfg.Committer == nil {
		return nil, cairn.Errorf(cairn.EUnavailable, "audit records cannot be committed: no committer")
	}
	id, err := uuid.NewV7()
	if err != nil {
		return nil, err
	}
	in := &Input{Action: r.Action, Kind: r.Kind, Outcome: r.Outcome, Reason: r.Reason, Description: r.Description,
		Actor: r.Actor, Target: r.Target, Changes: r.Changes, Source: r.Source, Fields: r.Fields, Component: "cairn"}
	e, err := Normalize(in, org, cairn.BuiltinContext, id.String(), a.cfg.Now().UTC(), auditRules)
	if err != nil {
		return nil, fmt.Errorf("audit record %s: %w", r.Action, err)
	}
	leaf, err := Canonical(e)
	if err != nil {
		return nil, fmt.Errorf("audit record %s: %w", r.Action, err)
	}
	return &cairn.AppendRequest{Org: org, Context: cairn.BuiltinContext, Entries: []cairn.Entry{{Event: e, Leaf: leaf}}}, nil
}

// Record appends r to org's built-in context and returns once it is
// durably committed. Administrative changes use it: the change has
// happened, and its record survives a crash once the caller answers.
func (a *Auditor) Record(ctx context.Context, org string, r AuditRecord) error {
	req, err := a.request(org, r)
	if err != nil {
		return err
	}
	res, err := a.cfg.Committer.Commit(ctx, req)
	if err == nil {
		err = res.Err
	}
	if err != nil {
		return fmt.Errorf("audit record %s: %w", r.Action, err)
	}
	return nil
}

// RecordAsync queues r for a commit shared with the other reads of the
// next Delay and returns at once: reads use it, so a read does not wait
// for an fsync. The trade-off: a crash before that commit loses the record
// of a read that was served. EUnavailable when MaxPending records are
// waiting or the Auditor is closed; the caller should then refuse the
// read. Records of one org commit in the order they were handed in, but
// may follow records that Record committed after them.
func (a *Auditor) RecordAsync(org string, r AuditRecord) error {
	req, err := a.request(org, r)
	if err != nil {
		return err
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.closed {
		return ErrClosed
	}
	if a.pending >= a.cfg.MaxPending {
		return cairn.Errorf(cairn.EUnavailable, "too many audit records waiting; retry shortly")
	}
	a.pending++
	w := a.waiting[org]
	if w != nil {
		w.Entries = append(w.Entries, req.Entries...)
	} else {
		w = req
		a.waiting[org] = w
	}
	switch {
	case a.cfg.Delay < 0 || len(w.Entries) >= maxAuditBatch:
		a.flushLocked()
	case a.timer == nil:
		a.timer = time.AfterFunc(a.cfg.Delay, a.flush)
	}
	return nil
}

func (a *Auditor) flush() {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.flushLocked()
}

// flushLocked hands the waiting records to the committer, one request per
// org, and returns without waiting for the commit.
func (a *Auditor) flushLocked() {
	if a.timer != nil {
		a.timer.Stop()
		a.timer = nil
	}
	for org, req := range a.waiting {
		a.wg.Add(1)
		go func() {
			defer a.wg.Done()
			res, err := a.cfg.Committer.Commit(context.Background(), req)
			if err == nil {
				err = res.Err
			}
			a.mu.Lock()
			a.pending -= len(req.Entries)
			a.mu.Unlock()
			if err != nil {
				a.cfg.Logger.Error("audit records lost", slog.String("org", org), slog.Int("records", len(req.Entries)),
					slog.String("first_action", req.Entries[0].Event.Action), slog.Any("err", err))
			}
		}()
	}
	clear(a.waiting)
}

// Close commits the records still waiting and returns once every record
// handed in is committed (or failed).
func (a *Auditor) Close() error {
	a.mu.Lock()
	a.closed = true
	a.flushLocked()
	a.mu.Unlock()
	a.wg.Wait()
	return nil
}
