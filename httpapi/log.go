package httpapi

import (
	"context"
	"net/http"

	"github.com/cairn-audit/cairn"
)

// getCheckpoint serves the context's published checkpoint (C2SP
// tlog-checkpoint) with every cosignature recorded so far: the newest
// signed one, or under a fail-closed witness policy the newest one that
// reached the witness quorum. It is public: a checkpoint reveals only the
// tree size and root.
func (s *Server) getCheckpoint(w http.ResponseWriter, r *http.Request) {
	cp, err := s.published(r.Context(), r.PathValue("org"), r.PathValue("ctx"))
	if err != nil {
		if cairn.ErrorCode(err) == cairn.ENotFound {
			err = cairn.Errorf(cairn.ENotFound, "no checkpoint for this log")
		}
		s.error(w, r, err)
		return
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-cache")
	w.Write(cp.Note)
}

// published returns the checkpoint a context publishes: the newest signed
// one, or what its witness policy allows (see witness.Service.Checkpoint).
// Receipts are built on it too, so a receipt never rests on a checkpoint
// that /checkpoint would not serve.
func (s *Server) published(ctx context.Context, org, name string) (*cairn.Checkpoint, error) {
	if s.cfg.Witnessing != nil {
		return s.cfg.Witnessing.Checkpoint(ctx, org, name)
	}
	return s.cfg.Store.LatestCheckpoint(ctx, org, name)
}

// getKey serves the note verifier key of a context's log. It is public, but
// only for logs that exist (no oracle for made-up names beyond that).
func (s *Server) getKey(w http.ResponseWriter, r *http.Request) {
	org, name := r.PathValue("org"), r.PathValue("ctx")
	if _, err := s.cfg.Store.GetContext(r.Context(), org, name); err != nil {
		if cairn.ErrorCode(err) == cairn.ENotFound {
			err = cairn.Errorf(cairn.ENotFound, "no such log")
		}
		s.error(w, r, err)
		return
	}
	origin, err := s.cfg.Signer.Origin(org, name)
	if err != nil {
		s.error(w, r, err)
		return
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Write([]byte(s.cfg.Signer.VerifierKey(origin) + "\n"))
}
