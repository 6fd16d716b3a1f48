package httpapi

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"time"

	"github.com/cairn-audit/cairn"
	"github.com/cairn-audit/cairn/retraced"
)

// The Retraced-compatible API under the configured base path (default
// /auditlog): publisher, GraphQL, viewer and enterprise routes, so the
// official Retraced clients and the viewer widget work unchanged. The
// Retraced domain (event rules, hash, query language, schema, token state)
// is package retraced; this file mounts it.

// retracedMaxBody is Retraced's JSON body limit.
const retracedMaxBody = 10 << 20

// retracedRoutes registers the Retraced routes under base (part of the
// one route table).
func (s *Server) retracedRoutes(base string) {
	x, err := retraced.NewExecutor(retracedSource{s})
	if err != nil {
		panic(err) // the schema is static: a failure is a bug
	}
	s.gql = x
	pub := func(pattern string, h http.HandlerFunc) {
		method, path, _ := strings.Cut(pattern, " ")
		route := method + " " + base + path
		s.mux.Handle(route, s.retracedWrap(s.wrapWith(route, h, s.authenticateToken, rule{access: authenticated}, s.retracedError)))
	}
	open := func(pattern string, h http.HandlerFunc) {
		method, path, _ := strings.Cut(pattern, " ")
		route := method + " " + base + path
		s.mux.Handle(route, s.retracedWrap(s.wrapWith(route, h, nil, rule{access: public}, s.retracedError)))
	}
	const p = "/publisher/v1/project/{projectId}"
	pub("POST "+p+"/event", s.retracedEvent)
	pub("POST "+p+"/event/bulk", s.retracedBulk)
	pub("GET "+p+"/viewertoken", s.retracedViewerToken)
	pub("POST "+p+"/group/{groupId}/enterprisetoken", s.retracedCreateEnterprise)
	pub("GET "+p+"/group/{groupId}/enterprisetoken", s.retracedListEnterprise)
	pub("GET "+p+"/group/{groupId}/enterprisetoken/{tokenId}", s.retracedGetEnterprise)
	pub("PUT "+p+"/group/{groupId}/enterprisetoken/{tokenId}", s.retracedUpdateEnterprise)
	pub("DELETE "+p+"/group/{groupId}/enterprisetoken/{tokenId}", s.retracedDeleteEnterprise)
	pub("POST "+p+"/graphql", s.retracedPublisherGraphQL)
	pub("GET "+p+"/graphql", s.retracedPublisherGraphQL)
	pub("POST /publisher/v1/graphql", s.retracedPublisherGraphQL)
	pub("GET /publisher/v1/graphql", s.retracedPublisherGraphQL)
	pub("DELETE /viewer/v1/project/{projectId}/group/{groupId}/actor/{actorId}/viewersessions", s.retracedDeleteSessions)
	// retraced-go sends this path without /viewer (reference §9.2).
	pub("DELETE /v1/project/{projectId}/group/{groupId}/actor/{actorId}/viewersessions", s.retracedDeleteSessions)

	open("POST /viewer/v1/viewersession", s.retracedViewerSession)
	open("GET /viewer/v1/graphql", s.retracedViewerGraphQL)
	open("POST /viewer/v1/graphql", s.retracedViewerGraphQL)
	open("POST /viewer/v1/graphql/paginated", s.retracedViewerGraphQL)
	open("GET /enterprise/v1/graphql", s.retracedEnterpriseGraphQL)
	open("POST /enterprise/v1/graphql", s.retracedEnterpriseGraphQL)

	health := func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusOK) }
	s.mux.Handle("GET "+base, s.retracedWrap(http.HandlerFunc(health)))
	s.mux.Handle("GET "+base+"/{$}", s.retracedWrap(http.HandlerFunc(health)))
	// Everything else under the base: CORS preflight, or Retraced's plain
	// "Not Found".
	s.mux.Handle(base+"/", s.retracedWrap(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodOptions {
			w.WriteHeader(http.StatusNoContent)
			return
		}
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.WriteHeader(http.StatusNotFound)
		w.Write([]byte("Not Found"))
	})))
}

// retracedWrap adds what every Retraced response carries: open CORS (the
// viewer widget runs on the vendor's origin) and X-Retraced-RequestId.
func (s *Server) retracedWrap(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id := newRequestID()
		r = r.WithContext(context.WithValue(r.Context(), requestIDKey, id))
		hd := w.Header()
		hd.Set("X-Retraced-RequestId", id)
		hd.Set("Access-Control-Allow-Origin", "*")
		hd.Set("Access-Control-Allow-Headers", "Authorization, Content-Type, Accept")
		hd.Set("Access-Control-Allow-Methods", "GET, POST, PUT, DELETE, OPTIONS")
		hd.Set("Access-Control-Expose-Headers", "X-Retraced-RequestId")
		h.ServeHTTP(w, r)
	})
}

// RetracedError is Retraced's error envelope.
type RetracedError struct {
	Status  int               `json:"status"`
	Type    string            `json:"type"`
	Error   string            `json:"error"`
	Invalid []RetracedInvalid `json:"invalid,omitempty"`
}

// RetracedInvalid is one invalid event of a bulk request.
type RetracedInvalid struct {
	Message    string               `json:"message"`
	Index      int                  `json:"index"`
	Violations []retraced.Violation `json:"violations"`
}

// retracedError writes err in Retraced's envelope, with the status the
// error code maps to in the one table (statusOf).
func (s *Server) retracedError(w http.ResponseWriter, r *http.Request, err error) {
	s.retracedErrorWith(w, r, err, nil)
}

func (s *Server) retracedErrorWith(w http.ResponseWriter, r *http.Request, err error, invalid []RetracedInvalid) {
	code := cairn.ErrorCode(err)
	status := statusOf[code]
	if status == 0 {
		status = http.StatusInternalServerError
	}
	if status >= 500 {
		s.cfg.Logger.Error("request failed", "request_id", requestID(r), "path", r.URL.Path, "err", err)
	}
	if code == cairn.EUnavailable {
		w.Header().Set("Retry-After", "1")
	}
	typ := "Error"
	var ve *retraced.ValidationError
	if errors.As(err, &ve) || invalid != nil {
		typ = "ValidationError"
	}
	writeJSON(w, status, RetracedError{Status: status, Type: typ, Error: cairn.ErrorMessage(err), Invalid: invalid})
}

// authenticateToken resolves a publisher token, a Cairn API key sent as
// "Authorization: token=<key>" or "Authorization: Token token=<key>"
// (Retraced extracts /token=(.+)/).
func (s *Server) authenticateToken(r *http.Request) (*caller, error) {
	_, secret, ok := strings.Cut(r.Header.Get("Authorization"), "token=")
	secret = strings.TrimSpace(secret)
	if !ok || secret == "" {
		return nil, cairn.Errorf(cairn.EUnauthorized, "missing API token (Authorization: token=<key>)")
	}
	return s.lookupKey(r.Context(), secret)
}

// retracedProject resolves the org of a publisher request: the project in
// the path (or, on the legacy routes, the token's own org), which the
// token must be allowed to act in. Retraced answers 401 for a token of
// another project.
func (s *Server) retracedProject(r *http.Request, write bool) (string, error) {
	org := r.PathValue("projectId")
	if org == "" {
		org = callerOf(r).key.Org
	}
	ctx := s.cfg.Compat.RetracedContext
	var err error
	if write {
		err = s.authorizeCompatWrite(r, org, ctx)
	} else {
		err = s.authorizeCompatRead(r, org, ctx)
	}
	if cairn.ErrorCode(err) == cairn.ENotFound {
		err = cairn.Errorf(cairn.EUnauthorized, "the token is not valid for project %q", org)
	}
	return org, err
}

// retracedSource gives the GraphQL resolvers the store's events.
type retracedSource struct{ s *Server }

func (rs retracedSource) Scan(ctx context.Context, org string, f cairn.Filter, visit func(*cairn.Event, []byte) bool) error {
	return rs.s.scan(ctx, org, f, func(se *cairn.StoredEvent, e *cairn.Event) bool { return visit(e, se.Leaf) })
}

// groupNameScan bounds the events GroupName looks at.
const groupNameScan = 1000

// GroupName looks through the group's latest events for a name, and keeps
// the answer (found or not) for cacheTTL: views of a group's log ask for
// its name on every page.
func (rs retracedSource) GroupName(ctx context.Context, org, context, groupID string) (string, error) {
	s := rs.s
	k := groupKey{org, context, groupID}
	now := s.cfg.Now()
	s.mu.Lock()
	c, ok := s.groupNames[k]
	s.mu.Unlock()
	if ok && now.Before(c.expires) {
		return c.name, nil
	}
	name := ""
	n := 0
	err := s.scan(ctx, org, cairn.Filter{Context: context, GroupID: groupID}, func(_ *cairn.StoredEvent, e *cairn.Event) bool {
		n++
		if e.Group != nil && e.Group.Name != "" {
			name = e.Group.Name
			return false
		}
		return n < groupNameScan
	})
	if err != nil {
		return "", err
	}
	s.mu.Lock()
	if len(s.groupNames) >= maxCachedGroups {
		clear(s.groupNames)
	}
	s.groupNames[k] = cachedGroupName{name: name, expires: now.Add(cacheTTL)}
	s.mu.Unlock()
	return name, nil
}

type groupKey struct{ org, context, id string }

type cachedGroupName struct {
	name    string
	expires time.Time
}

const maxCachedGroups = 10000
