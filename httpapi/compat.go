package httpapi

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"net/http"
	"strings"
	"time"

	"github.com/cairn-audit/cairn"
	"github.com/cairn-audit/cairn/authz"
	"github.com/cairn-audit/cairn/ingest"
	"github.com/cairn-audit/cairn/retraced"
	jsonv2 "github.com/go-json-experiment/json"
	"github.com/google/uuid"
)

// This file holds what the compatibility surfaces (Control Plane audit
// contexts, the Replicated Audit API, Retraced) share with the native API:
// authentication variants, the one permission decision per surface, the
// client address, contexts created on first use, and the write path. Every
// compat write goes through ingest (decode, normalise, redact, canonical
// leaf) and the same group commit into the same Merkle log as a native
// write, so the native API, receipts and `cairn verify` see it.

// CompatConfig configures the compatibility surfaces.
type CompatConfig struct {
	// ReplicatedContext is the context POST /audit/v1/event writes to in
	// the caller's org, created on first use (default "replicated").
	ReplicatedContext string
	// RetracedBasePath is the prefix of the Retraced routes (default
	// "/auditlog"). It must start with "/" and not end with one.
	RetracedBasePath string
	// RetracedContext is the context a Retraced project's events go to,
	// created on first use (default "retraced").
	RetracedContext string
	// Retraced keeps viewer descriptors and enterprise tokens (default: in
	// memory, lost on restart).
	Retraced retraced.State
	// ViewerSecret signs viewer sessions (HS256). Default: a random secret
	// per process, so sessions end with it.
	ViewerSecret []byte
}

// Default compat names.
const (
	DefaultReplicatedContext = "replicated"
	DefaultRetracedBasePath  = "/auditlog"
	DefaultRetracedContext   = "retraced"
)

func (c *CompatConfig) setDefaults() {
	if c.ReplicatedContext == "" {
		c.ReplicatedContext = DefaultReplicatedContext
	}
	if c.RetracedBasePath == "" {
		c.RetracedBasePath = DefaultRetracedBasePath
	}
	if c.RetracedContext == "" {
		c.RetracedContext = DefaultRetracedContext
	}
	if c.Retraced == nil {
		c.Retraced, _ = retraced.OpenFileState("")
	}
	if len(c.ViewerSecret) == 0 {
		c.ViewerSecret = make([]byte, 32)
		rand.Read(c.ViewerSecret)
	}
}

// Validate checks the configuration (after defaults).
func (c CompatConfig) Validate() error {
	c.setDefaults()
	if err := validName("context", c.ReplicatedContext); err != nil {
		return err
	}
	if err := validName("context", c.RetracedContext); err != nil {
		return err
	}
	if c.ReplicatedContext == cairn.BuiltinContext || c.RetracedContext == cairn.BuiltinContext {
		return cairn.Errorf(cairn.EInvalid, "the built-in context %q accepts no events", cairn.BuiltinContext)
	}
	p := c.RetracedBasePath
	bad := !strings.HasPrefix(p, "/") || strings.HasSuffix(p, "/") || strings.ContainsAny(p, "{}?$ \t#")
	for _, own := range []string{"/api", "/log", "/audit", "/healthz", "/readyz", "/metrics", "/debug"} {
		bad = bad || p == own || strings.HasPrefix(p, own+"/")
	}
	if bad {
		return cairn.Errorf(cairn.EInvalid, "retraced base path %q must start with '/', not end with '/', and not overlap Cairn's own routes", p)
	}
	return nil
}

// authenticateRaw resolves a key sent as "Authorization: <key>" (Control
// Plane's convention) or "Authorization: Bearer <key>".
func (s *Server) authenticateRaw(r *http.Request) (*caller, error) {
	h := strings.TrimSpace(r.Header.Get("Authorization"))
	if scheme, rest, ok := strings.Cut(h, " "); ok && strings.EqualFold(scheme, "Bearer") {
		h = strings.TrimSpace(rest)
	}
	if h == "" || strings.ContainsAny(h, " \t") {
		return nil, cairn.Errorf(cairn.EUnauthorized, "missing API key (Authorization: <key> or Authorization: Bearer <key>)")
	}
	return s.lookupKey(r.Context(), h)
}

// authorizeCompatWrite is the one permission decision for every compat
// write (Control Plane, Replicated, Retraced publisher) into org/ctx: the
// same writeAudit on the context as a native write.
func (s *Server) authorizeCompatWrite(r *http.Request, org, ctx string) error {
	return s.authorizeCompat(r, org, ctx, authz.WriteAudit, false)
}

// authorizeCompatRead is the one permission decision for every compat read
// (Control Plane queries, Retraced GraphQL) of org/ctx: unscoped readAudit
// on the context (the compat query languages have no group scoping to
// narrow a group-scoped grant's results by). The read is recorded in the
// built-in context like a native search, with its query parameters.
func (s *Server) authorizeCompatRead(r *http.Request, org, ctx string) error {
	if err := s.authorizeCompat(r, org, ctx, authz.ReadAudit, true); err != nil {
		return err
	}
	return s.recordRead(r, org, actionSearch, &cairn.Target{Type: "context", ID: ctx}, filterFields(r))
}

func (s *Server) authorizeCompat(r *http.Request, org, ctx, perm string, unscoped bool) error {
	c := callerOf(r)
	if c == nil {
		return cairn.Errorf(cairn.EUnauthorized, "missing API key")
	}
	if !c.admin() && c.key.Org != org {
		return cairn.Errorf(cairn.ENotFound, "org %q not found", org)
	}
	if c.admin() {
		return nil
	}
	gs, err := s.loadGrants(r.Context(), c, org)
	if err != nil {
		return err
	}
	c.grants = gs
	ok := gs.Has(perm, ctx)
	if unscoped {
		ok = gs.Unscoped(perm, ctx)
	}
	if !ok {
		return cairn.Errorf(cairn.EForbidden, "this needs %s on context %q", perm, ctx)
	}
	return nil
}

// ensureContext returns a context, creating it (empty, no redaction rules
// beyond the defaults) if the org exists and the context does not.
func (s *Server) ensureContext(r *http.Request, org, name string) (*cairn.Context, error) {
	c, err := s.context(r, org, name)
	if cairn.ErrorCode(err) != cairn.ENotFound {
		return c, err
	}
	_, err = s.cfg.Store.CreateContext(r.Context(), &cairn.Context{Org: org, Name: name,
		Description: "created on first use by a compatibility API"})
	if err != nil && cairn.ErrorCode(err) != cairn.EConflict {
		return nil, err
	}
	if err == nil {
		s.cfg.Logger.Info("context created on first use", "org", org, "context", name)
	}
	return s.context(r, org, name)
}

// writableContext resolves the context of a compat write: it must exist
// (or be created when create is set) and must not be the built-in one.
func (s *Server) writableContext(r *http.Request, org, name string, create bool) (*cairn.Context, error) {
	if name == cairn.BuiltinContext {
		return nil, cairn.Errorf(cairn.EForbidden, "context %q is written by Cairn itself and accepts no events", name)
	}
	if create {
		return s.ensureContext(r, org, name)
	}
	return s.context(r, org, name)
}

// compatWrite is one compat request's events, already decoded.
type compatWrite struct {
	org     string
	ctx     *cairn.Context
	inputs  []*ingest.Input
	ids     []string // optional preassigned ids (uuid strings), one per input
	idemKey string   // Idempotency-Key, if any
	body    []byte   // request bytes the idempotency key is bound to
	route   string   // distinguishes surfaces in the request hash
}

// commit normalises, redacts and canonicalises every input and commits them
// in one request of the group commit. Any invalid input fails the whole
// request (the compat APIs are all-or-nothing).
func (s *Server) commit(r *http.Request, w compatWrite) (cairn.AppendResult, []*cairn.Event, error) {
	received := s.cfg.Now().UTC()
	req := &cairn.AppendRequest{Org: w.org, Context: w.ctx.Name, Entries: make([]cairn.Entry, 0, len(w.inputs))}
	if w.idemKey != "" {
		if len(w.idemKey) > maxIdempotencyKey {
			return cairn.AppendResult{}, nil, cairn.Errorf(cairn.EInvalid, "Idempotency-Key is longer than %d bytes", maxIdempotencyKey)
		}
		req.IdempotencyKey = w.idemKey
		h := sha256.New()
		h.Write([]byte(w.route))
		h.Write([]byte{0})
		h.Write(w.body)
		h.Sum(req.RequestHash[:0])
	}
	events := make([]*cairn.Event, len(w.inputs))
	for i, in := range w.inputs {
		var id string
		if i < len(w.ids) {
			id = w.ids[i]
		} else {
			u, err := uuid.NewV7()
			if err != nil {
				return cairn.AppendResult{}, nil, err
			}
			id = u.String()
		}
		e, err := ingest.Normalize(in, w.org, w.ctx.Name, id, received, w.ctx.Redaction)
		if err != nil {
			return cairn.AppendResult{}, nil, err
		}
		leaf, err := ingest.Canonical(e)
		if err != nil {
			return cairn.AppendResult{}, nil, err
		}
		events[i] = e
		req.Entries = append(req.Entries, cairn.Entry{Event: e, Leaf: leaf})
	}
	res, err := s.cfg.Committer.Commit(r.Context(), req)
	if err == nil {
		err = res.Err
	}
	if err != nil {
		return res, nil, err
	}
	label := "committed"
	if res.Replayed {
		label = "replayed"
	}
	s.cfg.Metrics.ingested.WithLabelValues(label).Add(float64(len(res.Committed)))
	return res, events, nil
}

// EventTimeHeader carries a default event time for compat writes whose body
// has none: the agent sets it to when it accepted the event, so events it
// forwards after an outage keep the time they happened.
const EventTimeHeader = "Cairn-Event-Time"

func defaultEventTime(r *http.Request) (time.Time, error) {
	v := r.Header.Get(EventTimeHeader)
	if v == "" {
		return time.Time{}, nil
	}
	t, err := time.Parse(time.RFC3339Nano, v)
	if err != nil {
		return t, cairn.Errorf(cairn.EInvalid, "%s must be an RFC 3339 time", EventTimeHeader)
	}
	return t, nil
}

// maxScan bounds the events one compat query examines. The compat query
// APIs filter on members the store does not index (resource name,
// Retraced's fields and locations) and count every match, so they read
// the matching events; past this many they ask the caller to narrow the
// query rather than scan without bound.
const maxScan = 100_000

// scan walks an org's events matching f, newest first, decoding each
// stored leaf, and calls visit until it returns false. It fails with
// EInvalid after maxScan events.
func (s *Server) scan(ctx context.Context, org string, f cairn.Filter, visit func(*cairn.StoredEvent, *cairn.Event) bool) error {
	f.Limit = MaxLimit
	seen := 0
	for {
		p, err := s.cfg.Store.SearchEvents(ctx, org, f)
		if err != nil {
			return err
		}
		for _, se := range p.Items {
			seen++
			if seen > maxScan {
				return cairn.Errorf(cairn.EInvalid, "the query matches more than %d events; narrow it (for example with a time range)", maxScan)
			}
			e, err := decodeLeaf(se.Leaf)
			if err != nil {
				return err
			}
			if !visit(se, e) {
				return nil
			}
		}
		if p.Next == 0 {
			return nil
		}
		f.Before = p.Next
		if err := ctx.Err(); err != nil {
			return err
		}
	}
}

// decodeLeaf decodes a stored canonical leaf.
func decodeLeaf(leaf []byte) (*cairn.Event, error) {
	var e cairn.Event
	if err := jsonv2.Unmarshal(leaf, &e); err != nil {
		return nil, &cairn.Error{Code: cairn.EIntegrity, Message: "a stored event does not decode", Err: err}
	}
	return &e, nil
}

// compatRoutes registers the compatibility surfaces (part of the one route
// table in routes).
func (s *Server) compatRoutes() {
	raw := func(pattern string, h http.HandlerFunc) {
		// The handlers decide the permission (authorizeCompatWrite/Read):
		// the context is not always in the path.
		s.mux.Handle(pattern, s.wrapWith(pattern, h, s.authenticateRaw, rule{access: authenticated}, s.error))
	}
	// Control Plane audit contexts.
	raw("POST /audit/org/{org}/auditctx/{ctx}", s.cpWrite)
	raw("GET /audit/org/{org}", s.cpQuery)
	raw("GET /audit/org/{org}/resource/id/{resource_id}", s.cpQuery)
	raw("GET /audit/org/{org}/resource/name/{resource_name}", s.cpQuery)
	raw("GET /audit/org/{org}/subject/email/{email}", s.cpQuery)
	raw("GET /audit/org/{org}/id/{id}", s.cpGet)
	// Replicated Audit API.
	raw("POST /audit/v1/event", s.replicatedWrite)

	s.retracedRoutes(s.cfg.Compat.RetracedBasePath)
}
