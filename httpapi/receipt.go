package httpapi

import (
	"context"
	"fmt"
	"net/http"
	"time"

	"github.com/cairn-audit/cairn"
	"github.com/cairn-audit/cairn/merkle"
)

// CheckpointWaiter waits for a signed checkpoint that covers a tree size
// (merkle.Checkpointer and witness.Service implement it; the server uses
// the witness service, which waits for what its policy publishes). WaitFor returns a checkpoint of the
// context with size >= size, or ctx's error when ctx ends first.
type CheckpointWaiter interface {
	WaitFor(ctx context.Context, org, context string, size int64) (*cairn.Checkpoint, error)
}

// DefaultReceiptWait bounds how long a receipt waits for the checkpoint
// that covers its event. The checkpointer signs within about a second.
const DefaultReceiptWait = 10 * time.Second

// MaxReceiptEvents is the most events a write with ?receipt=true may carry:
// each receipt is a proof of its own.
const MaxReceiptEvents = 1000

// coveringCheckpoint returns a signed checkpoint whose tree holds the leaf
// at seq: the newest one if it does, else the first one signed after it,
// waiting at most ReceiptWait.
//
// Errors: EUnavailable when none is signed in time (retry later).
func (s *Server) coveringCheckpoint(ctx context.Context, org, name string, seq int64) (*cairn.Checkpoint, error) {
	cp, err := s.published(ctx, org, name)
	if err == nil && cp.Size > seq {
		return cp, nil
	}
	if err != nil && cairn.ErrorCode(err) != cairn.ENotFound {
		return nil, err
	}
	notYet := cairn.Errorf(cairn.EUnavailable, "event %d is not covered by a signed checkpoint yet; retry shortly", seq)
	if s.cfg.Checkpoints == nil {
		return nil, notYet
	}
	wctx, cancel := context.WithTimeout(ctx, s.cfg.ReceiptWait)
	defer cancel()
	cp, err = s.cfg.Checkpoints.WaitFor(wctx, org, name, seq+1)
	if err != nil {
		if ctx.Err() == nil && wctx.Err() != nil {
			return nil, notYet
		}
		return nil, fmt.Errorf("wait for checkpoint: %w", err)
	}
	return cp, nil
}

// getReceipt serves the C2SP tlog-proof of one event on the newest signed
// checkpoint (waiting briefly if the event is newer than it).
func (s *Server) getReceipt(w http.ResponseWriter, r *http.Request) {
	org, name, id := r.PathValue("org"), r.PathValue("ctx"), r.PathValue("id")
	e, err := s.readableEvent(r, org, name, id, actionReceipt)
	if err != nil {
		s.error(w, r, err)
		return
	}
	cp, err := s.coveringCheckpoint(r.Context(), org, name, e.Seq)
	if err != nil {
		s.error(w, r, err)
		return
	}
	receipt, err := merkle.Receipt(r.Context(), s.log, org, name, e.Seq, cp)
	if err != nil {
		s.error(w, r, lostHashes(err))
		return
	}
	w.Header().Set("Content-Type", merkle.ReceiptContentType)
	w.Header().Set("Content-Disposition", `attachment; filename="`+e.ID+`.tlog-proof"`)
	w.Write(receipt)
}

// attachReceipts adds a receipt to every committed item of a write made
// with ?receipt=true, all on the first checkpoint that covers the last of
// them. The events are committed whatever happens here, so a failure is
// reported per item in receipt_error, never as the response status.
func (s *Server) attachReceipts(r *http.Request, org, name string, items []WriteResult) {
	last := int64(-1)
	for _, it := range items {
		if it.Seq != nil {
			last = max(last, *it.Seq)
		}
	}
	if last < 0 {
		return
	}
	fail := func(err error) {
		d := s.errorDetail(r, err)
		if d.Code == cairn.EInternal {
			s.cfg.Logger.Error("receipt failed", "request_id", requestID(r), "err", err)
		}
		for i := range items {
			if items[i].Seq != nil {
				items[i].ReceiptError = &d
			}
		}
	}
	cp, err := s.coveringCheckpoint(r.Context(), org, name, last)
	if err != nil {
		fail(err)
		return
	}
	for i := range items {
		if items[i].Seq == nil {
			continue
		}
		receipt, err := merkle.Receipt(r.Context(), s.log, org, name, *items[i].Seq, cp)
		if err != nil {
			fail(lostHashes(err))
			return
		}
		items[i].Receipt = string(receipt)
	}
}
