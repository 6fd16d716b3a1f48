package httpapi

import (
	"compress/gzip"
	"encoding/base64"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/cairn-audit/cairn"
	"github.com/cairn-audit/cairn/merkle"
)

// Cache lifetimes of the C2SP tlog-tiles resources. A full tile covered by
// a signed checkpoint never changes. The responses need an API key, so
// they are "private": a shared cache must not hand an authenticated entry
// bundle to someone else.
const (
	cacheFullTile    = "private, max-age=31536000, immutable"
	cachePartialTile = "private, max-age=10"
)

// Who may read a log's contents is decided by the route table (routes.go):
// entry bundles, Merkle tiles, proofs, the checkpoint history and exports
// need readAudit on the context for every event (a grant limited to event
// groups does not do: tiles are the whole log).

// latestCheckpoint returns a context's latest signed checkpoint: everything
// the log serves is bounded by its size.
func (s *Server) latestCheckpoint(r *http.Request, org, name string) (*cairn.Checkpoint, error) {
	cp, err := s.cfg.Store.LatestCheckpoint(r.Context(), org, name)
	if cairn.ErrorCode(err) == cairn.ENotFound {
		return nil, cairn.Errorf(cairn.ENotFound, "no signed checkpoint for this log yet")
	}
	return cp, err
}

// getTile serves C2SP tlog-tiles Merkle tiles and entry bundles for any
// tree size up to the latest signed checkpoint.
func (s *Server) getTile(w http.ResponseWriter, r *http.Request) {
	org, name := r.PathValue("org"), r.PathValue("ctx")
	tile, err := merkle.ParseTilePath("tile/" + r.PathValue("path"))
	if err != nil {
		s.error(w, r, err)
		return
	}
	cp, err := s.latestCheckpoint(r, org, name)
	if err != nil {
		s.error(w, r, err)
		return
	}
	data, err := merkle.ReadTile(r.Context(), s.log, org, name, tile, cp.Size)
	if err != nil {
		s.error(w, r, err)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "application/octet-stream")
	if tile.W == merkle.TileWidth {
		h.Set("Cache-Control", cacheFullTile)
	} else {
		h.Set("Cache-Control", cachePartialTile)
	}
	h.Add("Vary", "Accept-Encoding")
	if tile.L == -1 && acceptsGzip(r) {
		h.Set("Content-Encoding", "gzip")
		zw, _ := gzip.NewWriterLevel(w, gzip.BestSpeed)
		zw.Write(data)
		zw.Close()
		return
	}
	h.Set("Content-Length", strconv.Itoa(len(data)))
	w.Write(data)
}

func acceptsGzip(r *http.Request) bool {
	for _, part := range strings.Split(r.Header.Get("Accept-Encoding"), ",") {
		enc, q, _ := strings.Cut(strings.TrimSpace(part), ";")
		if strings.EqualFold(strings.TrimSpace(enc), "gzip") && strings.TrimSpace(q) != "q=0" {
			return true
		}
	}
	return false
}

// CheckpointView is one signed checkpoint in the history.
type CheckpointView struct {
	Size     int64     `json:"size"`
	Root     string    `json:"root"`
	SignedAt time.Time `json:"signed_at"`
	// Note is the signed note verbatim: the checkpoint body, the log's
	// signature and any witness cosignatures recorded with it.
	Note string `json:"note"`
}

// CheckpointPage is a page of the checkpoint history, smallest size first.
type CheckpointPage struct {
	Checkpoints []CheckpointView `json:"checkpoints"`
	// NextFrom is the from parameter of the next page; null on the last.
	NextFrom *int64 `json:"next_from"`
}

// MaxCheckpointPage is the most checkpoints one history page holds.
const MaxCheckpointPage = 1000

// listCheckpoints serves the history of every signed checkpoint whose size
// lies in [from, to]. Unlike the latest checkpoint it needs readAudit on
// the whole context: the history reveals how the log grew over time.
func (s *Server) listCheckpoints(w http.ResponseWriter, r *http.Request) {
	org, name := r.PathValue("org"), r.PathValue("ctx")
	q := r.URL.Query()
	for k := range q {
		if k != "from" && k != "to" && k != "limit" {
			s.error(w, r, cairn.Errorf(cairn.EInvalid, "unknown query parameter %q", k))
			return
		}
	}
	from, err := intParam(q.Get("from"), "from", 0)
	if err != nil {
		s.error(w, r, err)
		return
	}
	to, err := intParam(q.Get("to"), "to", 1<<62)
	if err != nil {
		s.error(w, r, err)
		return
	}
	limit, err := intParam(q.Get("limit"), "limit", MaxCheckpointPage)
	if err != nil || limit < 1 || limit > MaxCheckpointPage {
		s.error(w, r, cairn.Errorf(cairn.EInvalid, "limit must be an integer from 1 to %d", MaxCheckpointPage))
		return
	}
	if from > to {
		s.error(w, r, cairn.Errorf(cairn.EInvalid, "from (%d) is larger than to (%d)", from, to))
		return
	}
	// One more than asked tells whether another page follows.
	cps, err := s.cfg.Store.Checkpoints(r.Context(), org, name, from, to, int(limit)+1)
	if err != nil {
		if cairn.ErrorCode(err) == cairn.ENotFound {
			err = cairn.Errorf(cairn.ENotFound, "no such log")
		}
		s.error(w, r, err)
		return
	}
	page := CheckpointPage{Checkpoints: make([]CheckpointView, 0, len(cps))}
	if len(cps) > int(limit) {
		next := cps[limit-1].Size + 1
		page.NextFrom = &next
		cps = cps[:limit]
	}
	for _, cp := range cps {
		page.Checkpoints = append(page.Checkpoints, CheckpointView{Size: cp.Size,
			Root: base64.StdEncoding.EncodeToString(cp.Root[:]), SignedAt: cp.SignedAt, Note: string(cp.Note)})
	}
	w.Header().Set("Cache-Control", "no-cache")
	writeJSON(w, http.StatusOK, page)
}

// intParam parses a non-negative decimal query parameter; empty gives def.
func intParam(v, name string, def int64) (int64, error) {
	if v == "" {
		return def, nil
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil || n < 0 {
		return 0, cairn.Errorf(cairn.EInvalid, "%s must be a non-negative integer", name)
	}
	return n, nil
}
