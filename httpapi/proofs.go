package httpapi

import (
	"encoding/base64"
	"net/http"
	"net/url"

	"github.com/cairn-audit/cairn"
	"github.com/cairn-audit/cairn/merkle"
)

// InclusionProof is the response of the inclusion proof endpoint: the
// RFC 6962 audit path of the leaf at Index in the tree of Size, leaf's
// sibling first, standard base64.
type InclusionProof struct {
	Index  int64    `json:"index"`
	Size   int64    `json:"size"`
	Hashes []string `json:"hashes"`
}

// ConsistencyProof is the response of the consistency proof endpoint: the
// RFC 6962 proof that the tree of size To extends the tree of size From.
type ConsistencyProof struct {
	From   int64    `json:"from"`
	To     int64    `json:"to"`
	Hashes []string `json:"hashes"`
}

func encodeHashes(hs [][32]byte) []string {
	out := make([]string, len(hs))
	for i, h := range hs {
		out[i] = base64.StdEncoding.EncodeToString(h[:])
	}
	return out
}

// onlyParams rejects query parameters other than the allowed ones, and
// repeated ones.
func onlyParams(q url.Values, allowed ...string) error {
	for k, v := range q {
		ok := false
		for _, a := range allowed {
			ok = ok || k == a
		}
		if !ok {
			return cairn.Errorf(cairn.EInvalid, "unknown query parameter %q", k)
		}
		if len(v) != 1 {
			return cairn.Errorf(cairn.EInvalid, "query parameter %q given %d times", k, len(v))
		}
	}
	return nil
}

// treeSize reads a size parameter (default: the latest signed size) and
// checks that a signed checkpoint covers it.
func treeSize(q url.Values, name string, signed int64) (int64, error) {
	size, err := intParam(q.Get(name), name, signed)
	if err != nil {
		return 0, err
	}
	if size > signed {
		return 0, cairn.Errorf(cairn.ENotFound, "%s %d is beyond the latest signed checkpoint (size %d)", name, size, signed)
	}
	return size, nil
}

// proveInclusion serves ?index=&size= or ?leaf_hash=&size=. size defaults
// to the latest signed checkpoint's and may not exceed it.
func (s *Server) proveInclusion(w http.ResponseWriter, r *http.Request) {
	org, name := r.PathValue("org"), r.PathValue("ctx")
	q := r.URL.Query()
	if err := onlyParams(q, "index", "leaf_hash", "size"); err != nil {
		s.error(w, r, err)
		return
	}
	if q.Has("index") == q.Has("leaf_hash") {
		s.error(w, r, cairn.Errorf(cairn.EInvalid, "give exactly one of index and leaf_hash"))
		return
	}
	cp, err := s.latestCheckpoint(r, org, name)
	if err != nil {
		s.error(w, r, err)
		return
	}
	size, err := treeSize(q, "size", cp.Size)
	if err != nil {
		s.error(w, r, err)
		return
	}
	var index int64
	if q.Has("index") {
		if index, err = intParam(q.Get("index"), "index", 0); err == nil && index >= size {
			err = cairn.Errorf(cairn.EInvalid, "index %d is outside a tree of size %d", index, size)
		}
	} else {
		var h []byte
		h, err = base64.StdEncoding.DecodeString(q.Get("leaf_hash"))
		if err != nil || len(h) != 32 {
			err = cairn.Errorf(cairn.EInvalid, "leaf_hash must be a standard base64 SHA-256 hash (32 bytes)")
		} else {
			index, err = s.cfg.Store.LeafIndex(r.Context(), org, name, [32]byte(h), size)
		}
	}
	if err != nil {
		s.error(w, r, err)
		return
	}
	p, err := merkle.ProveInclusion(r.Context(), s.log, org, name, index, size)
	if err != nil {
		s.error(w, r, lostHashes(err))
		return
	}
	writeJSON(w, http.StatusOK, InclusionProof{Index: index, Size: size, Hashes: encodeHashes(p)})
}

// proveConsistency serves ?from=&to=; to defaults to the latest signed
// checkpoint's size and may not exceed it.
func (s *Server) proveConsistency(w http.ResponseWriter, r *http.Request) {
	org, name := r.PathValue("org"), r.PathValue("ctx")
	q := r.URL.Query()
	if err := onlyParams(q, "from", "to"); err != nil {
		s.error(w, r, err)
		return
	}
	if !q.Has("from") {
		s.error(w, r, cairn.Errorf(cairn.EInvalid, "from is required"))
		return
	}
	cp, err := s.latestCheckpoint(r, org, name)
	if err != nil {
		s.error(w, r, err)
		return
	}
	to, err := treeSize(q, "to", cp.Size)
	if err != nil {
		s.error(w, r, err)
		return
	}
	from, err := intParam(q.Get("from"), "from", 0)
	if err == nil && from > to {
		err = cairn.Errorf(cairn.EInvalid, "from (%d) is larger than to (%d)", from, to)
	}
	if err != nil {
		s.error(w, r, err)
		return
	}
	p, err := merkle.ProveConsistency(r.Context(), s.log, org, name, from, to)
	if err != nil {
		s.error(w, r, lostHashes(err))
		return
	}
	writeJSON(w, http.StatusOK, ConsistencyProof{From: from, To: to, Hashes: encodeHashes(p)})
}

// lostHashes turns a missing stored hash below the signed size into the
// integrity failure it is: a 404 would read as "not there yet".
func lostHashes(err error) error {
	if cairn.ErrorCode(err) == cairn.ENotFound {
		return &cairn.Error{Code: cairn.EIntegrity, Message: "the store lacks hashes a signed checkpoint covers", Err: err}
	}
	return err
}
