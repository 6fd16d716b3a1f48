package httpapi

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/cairn-audit/cairn"
	"github.com/cairn-audit/cairn/ingest"
	"github.com/google/uuid"
)

// WriteResult is the response to one committed (or accepted) event.
type WriteResult struct {
	ID       string       `json:"id,omitempty"`
	Seq      *int64       `json:"seq,omitempty"`
	LeafHash string       `json:"leaf_hash,omitempty"`
	Error    *ErrorDetail `json:"error,omitempty"`
	// Receipt, with ?receipt=true, is the event's C2SP tlog-proof on the
	// first checkpoint signed after the write; ReceiptError says why it is
	// missing (the event is committed either way).
	Receipt      string       `json:"receipt,omitempty"`
	ReceiptError *ErrorDetail `json:"receipt_error,omitempty"`
}

// BatchResult is the response to a batch write: one item per input event,
// in input order.
type BatchResult struct {
	Items []WriteResult `json:"items"`
}

const maxIdempotencyKey = 255

func (s *Server) writeEvents(w http.ResponseWriter, r *http.Request) {
	org, name := r.PathValue("org"), r.PathValue("ctx")
	c, err := s.context(r, org, name)
	if err != nil {
		s.error(w, r, err)
		return
	}
	if c.Builtin {
		s.error(w, r, cairn.Errorf(cairn.EForbidden, "context %q is written by Cairn itself and accepts no events", c.Name))
		return
	}
	async, err := boolParam(r.URL.Query(), "async")
	if err != nil {
		s.error(w, r, err)
		return
	}
	withReceipt, err := boolParam(r.URL.Query(), "receipt")
	if err == nil && withReceipt && async {
		err = cairn.Errorf(cairn.EInvalid, "receipt=true waits for a checkpoint; it cannot be combined with async=true")
	}
	if err != nil {
		s.error(w, r, err)
		return
	}
	idemKey := r.Header.Get("Idempotency-Key")
	if len(idemKey) > maxIdempotencyKey {
		s.error(w, r, cairn.Errorf(cairn.EInvalid, "Idempotency-Key is longer than %d bytes", maxIdempotencyKey))
		return
	}
	reserved, err := s.reserve(r.ContentLength)
	if err != nil {
		s.error(w, r, err)
		return
	}
	defer s.unreserve(reserved)
	body, err := readLimited(w, r, ingest.MaxBody)
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			s.error(w, r, cairn.Errorf(cairn.ETooLarge, "request body exceeds the limit of %d bytes (32 MiB)", ingest.MaxBody))
			return
		}
		s.error(w, r, cairn.Errorf(cairn.EInvalid, "reading request body: %v", err))
		return
	}
	items, batch, err := ingest.SplitBody(body, r.Header.Get("Content-Type"))
	if err == nil && withReceipt && len(items) > MaxReceiptEvents {
		err = cairn.Errorf(cairn.ETooLarge, "receipt=true allows at most %d events per request", MaxReceiptEvents)
	}
	if err != nil {
		s.error(w, r, err)
		return
	}

	received := s.cfg.Now().UTC()
	req := &cairn.AppendRequest{Org: org, Context: c.Name, Entries: make([]cairn.Entry, 0, len(items))}
	if idemKey != "" {
		req.IdempotencyKey = idemKey
		h := sha256.New()
		h.Write([]byte(strconv.FormatBool(batch)))
		h.Write(body)
		h.Sum(req.RequestHash[:0])
	}
	results := make([]WriteResult, len(items))
	index, rejected := s.prepareAll(r, items, c, received, req, results)
	s.cfg.Metrics.ingested.WithLabelValues("rejected").Add(float64(rejected))
	if !batch && rejected > 0 {
		s.error(w, r, errFromDetail(results[0].Error))
		return
	}
	if len(req.Entries) > 0 {
		res, err := s.cfg.Committer.Commit(r.Context(), req)
		if err == nil {
			err = res.Err
		}
		if err != nil {
			s.error(w, r, err)
			return
		}
		label := "committed"
		if res.Replayed {
			label = "replayed"
		}
		s.cfg.Metrics.ingested.WithLabelValues(label).Add(float64(len(res.Committed)))
		for j, cm := range res.Committed {
			res := &results[index[j]]
			res.ID = cm.ID
			if !async {
				seq := cm.Seq
				res.Seq = &seq
				res.LeafHash = base64.StdEncoding.EncodeToString(cm.LeafHash[:])
			}
		}
	}
	if withReceipt {
		s.attachReceipts(r, org, c.Name, results)
	}
	status := http.StatusCreated
	if async {
		status = http.StatusAccepted
	}
	if !batch {
		writeJSON(w, status, results[0])
		return
	}
	if len(req.Entries) == 0 {
		writeJSON(w, http.StatusBadRequest, struct {
			ErrorBody
			BatchResult
		}{ErrorBody{s.errorDetail(r, cairn.Errorf(cairn.EInvalid, "no valid event in the batch"))}, BatchResult{results}})
		return
	}
	writeJSON(w, status, BatchResult{Items: results})
}

// reserve claims memory for a write body of the given Content-Length (the
// whole 32 MiB limit when unknown), or fails with EUnavailable when the
// server already holds MaxInflightBytes of bodies.
func (s *Server) reserve(contentLength int64) (int64, error) {
	n := int64(ingest.MaxBody)
	if contentLength >= 0 && contentLength < n {
		n = contentLength
	}
	// The parsed form of a body takes roughly as much again.
	n *= 2
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.inflight > 0 && s.inflight+n > s.cfg.MaxInflightBytes {
		return 0, cairn.Errorf(cairn.EUnavailable, "too many writes in progress; retry shortly")
	}
	s.inflight += n
	return n, nil
}

func (s *Server) unreserve(n int64) {
	s.mu.Lock()
	s.inflight -= n
	s.mu.Unlock()
}

// readLimited reads a request body of at most limit bytes (else the error
// is an *http.MaxBytesError), in one allocation when the client declared
// its length, where io.ReadAll would grow and copy its buffer about twenty
// times for a batch of 1,000 events.
func readLimited(w http.ResponseWriter, r *http.Request, limit int64) ([]byte, error) {
	size := int64(bytes.MinRead)
	if n := r.ContentLength; n > 0 && n <= limit {
		size += n // ReadFrom grows the buffer when less than MinRead is free
	}
	buf := bytes.NewBuffer(make([]byte, 0, size))
	_, err := buf.ReadFrom(http.MaxBytesReader(w, r.Body, limit))
	return buf.Bytes(), err
}

// prepareAll prepares the items of a write into req.Entries. An item that
// is rejected gets its error in results (one per item); index maps each
// entry to its item.
func (s *Server) prepareAll(r *http.Request, items [][]byte, c *cairn.Context, received time.Time,
	req *cairn.AppendRequest, results []WriteResult) (index []int, rejected int) {
	index = make([]int, 0, len(items))
	// The random bits of all the event ids, drawn in one read rather than
	// one per event.
	rnd := bufio.NewReaderSize(rand.Reader, 16*len(items))
	for i, raw := range items {
		e, leaf, err := s.prepare(raw, req.Org, c, received, rnd)
		if err != nil {
			d := s.errorDetail(r, err)
			results[i].Error = &d
			rejected++
			continue
		}
		req.Entries = append(req.Entries, cairn.Entry{Event: e, Leaf: leaf})
		index = append(index, i)
	}
	return index, rejected
}

// prepare turns one raw input event into a normalised event and its leaf.
// rnd supplies the random bits of the event's UUIDv7.
func (s *Server) prepare(raw []byte, org string, c *cairn.Context, received time.Time, rnd io.Reader) (*cairn.Event, cairn.Leaf, error) {
	in, err := ingest.DecodeEvent(raw)
	if err != nil {
		return nil, cairn.Leaf{}, err
	}
	id, err := uuid.NewV7FromReader(rnd)
	if err != nil {
		return nil, cairn.Leaf{}, err
	}
	e, err := ingest.Normalize(in, org, c.Name, id.String(), received, c.Redaction)
	if err != nil {
		return nil, cairn.Leaf{}, err
	}
	leaf, err := ingest.Canonical(e)
	return e, leaf, err
}

func errFromDetail(d *ErrorDetail) error {
	return &cairn.Error{Code: d.Code, Message: d.Message}
}

func boolParam(q url.Values, name string) (bool, error) {
	v := q.Get(name)
	if v == "" {
		return false, nil
	}
	b, err := strconv.ParseBool(v)
	if err != nil {
		return false, cairn.Errorf(cairn.EInvalid, "%s must be true or false", name)
	}
	return b, nil
}

func (s *Server) getEvent(w http.ResponseWriter, r *http.Request) {
	org := r.PathValue("org")
	e, err := s.readableEvent(r, org, r.PathValue("ctx"), r.PathValue("id"), actionEvent)
	if err != nil {
		s.error(w, r, err)
		return
	}
	// The event's own fields (the leaf is its canonical JSON, seq included)
	// followed by the proof material: the stored leaf bytes and their hash.
	out := make([]byte, 0, len(e.Leaf)*2+128)
	out = append(out, e.Leaf[:len(e.Leaf)-1]...)
	out = append(out, `,"leaf_hash":"`...)
	out = base64.StdEncoding.AppendEncode(out, e.LeafHash[:])
	out = append(out, `","leaf":"`...)
	out = base64.StdEncoding.AppendEncode(out, e.Leaf)
	out = append(out, "\"}\n"...)
	w.Header().Set("Content-Type", "application/json")
	w.Write(out)
}

// searchParams are the query parameters of the search endpoint.
var searchParams = map[string]func(f *cairn.Filter, v string) error{
	"context":     func(f *cairn.Filter, v string) error { f.Context = v; return nil },
	"kind":        func(f *cairn.Filter, v string) error { f.Kind = v; return nil },
	"outcome":     func(f *cairn.Filter, v string) error { f.Outcome = v; return nil },
	"actor.id":    func(f *cairn.Filter, v string) error { f.ActorID = v; return nil },
	"actor.type":  func(f *cairn.Filter, v string) error { f.ActorType = v; return nil },
	"actor.email": func(f *cairn.Filter, v string) error { f.ActorEmail = v; return nil },
	"target.type": func(f *cairn.Filter, v string) error { f.TargetType = v; return nil },
	"target.id":   func(f *cairn.Filter, v string) error { f.TargetID = v; return nil },
	"group.id":    func(f *cairn.Filter, v string) error { f.GroupID = v; return nil },
	"group.prefix": func(f *cairn.Filter, v string) error {
		if strings.Trim(v, "/") == "" {
			return cairn.Errorf(cairn.EInvalid, "group.prefix must name a path such as acme/finance")
		}
		f.GroupPrefix = v
		return nil
	},
	"q":      func(f *cairn.Filter, v string) error { f.Text = v; return nil },
	"action": setAction,
	"since":  func(f *cairn.Filter, v string) (err error) { f.Since, err = parseTime("since", v); return },
	"until":  func(f *cairn.Filter, v string) (err error) { f.Until, err = parseTime("until", v); return },
	"limit":  setLimit,
	"cursor": setCursor,
}

func setAction(f *cairn.Filter, v string) error {
	if p, ok := strings.CutSuffix(v, "*"); ok {
		if strings.Contains(p, "*") {
			return cairn.Errorf(cairn.EInvalid, "action: only a trailing * is supported")
		}
		f.ActionPrefix = p
		return nil
	}
	f.Action = v
	return nil
}

func parseTime(name, v string) (time.Time, error) {
	t, err := time.Parse(time.RFC3339Nano, v)
	if err != nil {
		return t, cairn.Errorf(cairn.EInvalid, "%s must be an RFC 3339 time such as 2026-01-02T15:04:05Z", name)
	}
	return t, nil
}

// DefaultLimit and MaxLimit bound a page of search results.
const (
	DefaultLimit = 50
	MaxLimit     = 1000
)

func setLimit(f *cairn.Filter, v string) error {
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 || n > MaxLimit {
		return cairn.Errorf(cairn.EInvalid, "limit must be an integer from 1 to %d", MaxLimit)
	}
	f.Limit = n
	return nil
}

// Cursors are opaque to clients: "v1:<commit position>" in base64url.
func encodeCursor(before int64) *string {
	if before == 0 {
		return nil
	}
	c := base64.RawURLEncoding.EncodeToString([]byte("v1:" + strconv.FormatInt(before, 10)))
	return &c
}

func setCursor(f *cairn.Filter, v string) error {
	b, err := base64.RawURLEncoding.DecodeString(v)
	if err == nil {
		if n, ok := strings.CutPrefix(string(b), "v1:"); ok {
			if f.Before, err = strconv.ParseInt(n, 10, 64); err == nil && f.Before > 0 {
				return nil
			}
		}
	}
	return cairn.Errorf(cairn.EInvalid, "cursor is not one this server issued")
}

func parseFilter(q url.Values, allowed map[string]bool) (cairn.Filter, error) {
	f := cairn.Filter{Limit: DefaultLimit}
	for name, vals := range q {
		set, ok := searchParams[name]
		if !ok || (allowed != nil && !allowed[name]) {
			return f, cairn.Errorf(cairn.EInvalid, "unknown query parameter %q", name)
		}
		if len(vals) != 1 {
			return f, cairn.Errorf(cairn.EInvalid, "query parameter %q given %d times", name, len(vals))
		}
		if err := set(&f, vals[0]); err != nil {
			return f, err
		}
	}
	return f, nil
}

// rawPage writes a page of events: each item is the event's canonical JSON.
func writePage(w http.ResponseWriter, p *cairn.Page) {
	n := 64
	for _, e := range p.Items {
		n += len(e.Leaf) + 1
	}
	out := make([]byte, 0, n)
	out = append(out, `{"items":[`...)
	for i, e := range p.Items {
		if i > 0 {
			out = append(out, ',')
		}
		out = append(out, e.Leaf...)
	}
	out = append(out, `],"next_cursor":`...)
	if c := encodeCursor(p.Next); c != nil {
		out = strconv.AppendQuote(out, *c)
	} else {
		out = append(out, "null"...)
	}
	out = append(out, "}\n"...)
	w.Header().Set("Content-Type", "application/json")
	w.Write(out)
}

func (s *Server) searchEvents(w http.ResponseWriter, r *http.Request) {
	org := r.PathValue("org")
	f, err := parseFilter(r.URL.Query(), nil)
	if err == nil {
		err = s.restrict(r, org, &f, actionSearch, &cairn.Target{Type: "org", ID: org})
	}
	if err != nil {
		s.error(w, r, err)
		return
	}
	p, err := s.cfg.Store.SearchEvents(r.Context(), org, f)
	if err != nil {
		s.error(w, r, err)
		return
	}
	writePage(w, p)
}

var trailParams = map[string]bool{"limit": true, "cursor": true, "context": true}

func (s *Server) trail(w http.ResponseWriter, r *http.Request) {
	org := r.PathValue("org")
	f, err := parseFilter(r.URL.Query(), trailParams)
	if err != nil {
		s.error(w, r, err)
		return
	}
	f.TargetType, f.TargetID = r.PathValue("target_type"), r.PathValue("target_id")
	if err := s.restrict(r, org, &f, actionTrail, &cairn.Target{Type: f.TargetType, ID: f.TargetID}); err != nil {
		s.error(w, r, err)
		return
	}
	p, err := s.cfg.Store.SearchEvents(r.Context(), org, f)
	if err != nil {
		s.error(w, r, err)
		return
	}
	writePage(w, p)
}

// restrict narrows a search or trail to what the caller may read, leaves
// out the built-in context unless the filter names it, and records the
// read (the filter, not the results). A named context the caller may not
// read is EForbidden.
func (s *Server) restrict(r *http.Request, org string, f *cairn.Filter, action string, target *cairn.Target) error {
	c := callerOf(r)
	if f.Context != "" {
		if _, ok := c.canRead(f.Context); !ok {
			return cairn.Errorf(cairn.EForbidden, "this needs readAudit on context %q", f.Context)
		}
	}
	f.SkipBuiltin = true
	f.Scopes = c.searchScopes()
	return s.recordRead(r, org, action, target, filterFields(r))
}

// readableEvent returns an event the caller may read, and records the
// read. An event outside the caller's event groups is ENotFound, as if it
// did not exist.
func (s *Server) readableEvent(r *http.Request, org, ctx, id, action string) (*cairn.StoredEvent, error) {
	e, err := s.cfg.Store.GetEvent(r.Context(), org, ctx, id)
	if err != nil {
		return nil, err
	}
	scope, ok := callerOf(r).canRead(ctx)
	if !ok || (scope.Grouped() && !scope.Admits(ctx, eventGroup(e.Leaf))) {
		return nil, cairn.Errorf(cairn.ENotFound, "event %q not found", id)
	}
	if err := s.recordRead(r, org, action, &cairn.Target{Type: "event", ID: e.ID, Name: ctx},
		map[string]string{"context": ctx, "seq": strconv.FormatInt(e.Seq, 10)}); err != nil {
		return nil, err
	}
	return e, nil
}

// eventGroup is the group id of a stored leaf.
func eventGroup(leaf []byte) string {
	var e struct {
		Group *cairn.Group `json:"group"`
	}
	if json.Unmarshal(leaf, &e) != nil || e.Group == nil {
		return ""
	}
	return e.Group.ID
}
