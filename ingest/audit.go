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
}

// Auditor appends Cairn's own actions to the built-in context of an org
// through the group commit, so they are Merkle-logged and verifiable like
// any other event. Forwarders, the API and the server all record through
// it. It never records its own work, so nothing recurses.
type Auditor struct {
	cfg     AuditorConfig
	mu      sync.Mutex
	pending int
	closed  bool
	wg      sync.WaitGroup
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
	return &Auditor{cfg: cfg}
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

// RecordAsync queues r for the next group commit and returns at once:
// reads use it, so a read does not wait for an fsync. The trade-off: a
// crash in the few milliseconds before that commit loses the record of a
// read that was served. EUnavailable when MaxPending records are waiting
// or the Auditor is closed; the caller should then refuse the read.
func (a *Auditor) RecordAsync(org string, r AuditRecord) error {
	req, err := a.request(org, r)
	if err != nil {
		return err
	}
	a.mu.Lock()
	if a.closed {
		a.mu.Unlock()
		return ErrClosed
	}
	if a.pending >= a.cfg.MaxPending {
		a.mu.Unlock()
		return cairn.Errorf(cairn.EUnavailable, "too many audit records waiting; retry shortly")
	}
	a.pending++
	a.wg.Add(1)
	a.mu.Unlock()
	go func() {
		defer a.wg.Done()
		res, err := a.cfg.Committer.Commit(context.Background(), req)
		if err == nil {
			err = res.Err
		}
		a.mu.Lock()
		a.pending--
		a.mu.Unlock()
		if err != nil {
			a.cfg.Logger.Error("audit record lost", slog.String("org", org), slog.String("action", r.Action), slog.Any("err", err))
		}
	}()
	return nil
}

// Close waits until every queued record is committed (or failed).
func (a *Auditor) Close() error {
	a.mu.Lock()
	a.closed = true
	a.mu.Unlock()
	a.wg.Wait()
	return nil
}
