package httpapi

import (
	"net/http"
	"strings"

	"github.com/cairn-audit/cairn"
	"github.com/cairn-audit/cairn/ingest"
	"github.com/cairn-audit/cairn/retraced"
	"github.com/go-json-experiment/json"
)

// Retraced GraphQL: the publisher route (project in the path, or the
// token's own on the legacy /publisher/v1/graphql), the viewer routes
// (session JWT, scoped to a group and optionally a target, each call
// recording a view event) and the enterprise route (eitapi token, scoped
// to a group, each call recorded).

// graphQLRequest reads a GraphQL request from a POST body or GET query.
func graphQLRequest(w http.ResponseWriter, r *http.Request) (retraced.Request, error) {
	var req retraced.Request
	if r.Method == http.MethodGet {
		q := r.URL.Query()
		req.Query, req.OperationName = q.Get("query"), q.Get("operationName")
		if v := q.Get("variables"); v != "" {
			if err := json.Unmarshal([]byte(v), &req.Variables); err != nil {
				return req, cairn.Errorf(cairn.EInvalid, "variables must be a JSON object")
			}
		}
		return req, nil
	}
	body, err := readBody(w, r, retracedMaxBody)
	if err != nil {
		return req, err
	}
	if err := json.Unmarshal(body, &req); err != nil {
		return req, decodeError(err)
	}
	return req, nil
}

// runGraphQL executes a request and writes the result: 200 with data, 400
// with errors (Retraced's upstream sometimes answered 500 here, reference
// §9.3; a bad request is 400), 500 when the store failed.
func (s *Server) runGraphQL(w http.ResponseWriter, r *http.Request, scope retraced.Scope, req retraced.Request) {
	res, err := s.gql.Do(r.Context(), scope, req)
	status := http.StatusOK
	if len(res.Errors) > 0 {
		status = http.StatusBadRequest
		if err != nil {
			if st := statusOf[cairn.ErrorCode(err)]; st != 0 {
				status = st
			} else {
				status = http.StatusInternalServerError
			}
			if status >= 500 {
				s.cfg.Logger.Error("graphql failed", "request_id", requestID(r), "path", r.URL.Path, "err", err)
			}
		}
	}
	writeJSON(w, status, res)
}

func (s *Server) retracedPublisherGraphQL(w http.ResponseWriter, r *http.Request) {
	org, err := s.retracedProject(r, false)
	if err != nil {
		s.retracedError(w, r, err)
		return
	}
	req, err := graphQLRequest(w, r)
	if err != nil {
		s.retracedError(w, r, err)
		return
	}
	s.runGraphQL(w, r, retraced.Scope{Org: org, Context: s.cfg.Compat.RetracedContext}, req)
}

// retracedViewerSession exchanges a viewer descriptor for a session:
// POST /viewer/v1/viewersession {"token"} → 200 {"project_id", "token"}.
func (s *Server) retracedViewerSession(w http.ResponseWriter, r *http.Request) {
	var in struct {
		Token string `json:"token"`
	}
	if err := decodeJSON(r, &in); err != nil {
		s.retracedError(w, r, err)
		return
	}
	d, err := s.cfg.Compat.Retraced.GetViewer(r.Context(), in.Token)
	if err != nil {
		s.retracedError(w, r, cairn.Errorf(cairn.EUnauthorized, "invalid or expired viewer token"))
		return
	}
	jwt := retraced.SignSession(s.cfg.Compat.ViewerSecret, retraced.Session{Descriptor: d.ID, Org: d.Org,
		GroupID: d.GroupID, ActorID: d.ActorID, IsAdmin: d.IsAdmin, IssuedAt: s.cfg.Now().Unix()})
	writeJSON(w, http.StatusOK, map[string]string{"project_id": d.Org, "token": jwt})
}

// viewer resolves the session of a viewer request (Authorization: <JWT>,
// no prefix) to its live descriptor.
func (s *Server) viewer(r *http.Request) (*retraced.ViewerDescriptor, error) {
	h := strings.TrimSpace(r.Header.Get("Authorization"))
	if scheme, rest, ok := strings.Cut(h, " "); ok && strings.EqualFold(scheme, "Bearer") {
		h = strings.TrimSpace(rest)
	}
	sess, err := retraced.VerifySession(s.cfg.Compat.ViewerSecret, h)
	if err != nil {
		return nil, err
	}
	d, err := s.cfg.Compat.Retraced.GetViewer(r.Context(), sess.Descriptor)
	if cairn.ErrorCode(err) == cairn.ENotFound {
		return nil, cairn.Errorf(cairn.EUnauthorized, "the viewer session was revoked or has expired")
	}
	return d, err
}

func (s *Server) retracedViewerGraphQL(w http.ResponseWriter, r *http.Request) {
	d, err := s.viewer(r)
	if err != nil {
		s.retracedError(w, r, err)
		return
	}
	req, err := graphQLRequest(w, r)
	if err != nil {
		s.retracedError(w, r, err)
		return
	}
	skip, _ := boolParam(r.URL.Query(), "skipViewLogEvent")
	if !skip {
		// As Retraced: every viewer search is itself an event in the
		// customer's log.
		in := &ingest.Input{Action: d.ViewLogAction, Kind: cairn.KindRead,
			Actor: &cairn.Actor{Type: cairn.ActorUser, ID: d.ActorID}, Group: &cairn.Group{ID: d.GroupID},
			Source:   &cairn.Source{IP: sourceIP(r), UserAgent: r.UserAgent()},
			Metadata: map[string]any{retraced.MetaKey: retraced.Extras{CRUD: "r"}.Map()}}
		if err := s.recordView(r, d.Org, d.Context, in); err != nil {
			s.retracedError(w, r, err)
			return
		}
	}
	s.runGraphQL(w, r, retraced.Scope{Org: d.Org, Context: d.Context, GroupID: d.GroupID, TargetID: d.TargetID}, req)
}

// recordView writes a view event into the Retraced context.
func (s *Server) recordView(r *http.Request, org, ctxName string, in *ingest.Input) error {
	c, err := s.writableContext(r, org, ctxName, true)
	if err != nil {
		return err
	}
	_, _, err = s.commit(r, compatWrite{org: org, ctx: c, inputs: []*ingest.Input{in}})
	return err
}

func (s *Server) retracedEnterpriseGraphQL(w http.ResponseWriter, r *http.Request) {
	_, secret, ok := strings.Cut(r.Header.Get("Authorization"), "token=")
	secret = strings.TrimSpace(secret)
	if !ok || secret == "" {
		s.retracedError(w, r, cairn.Errorf(cairn.EUnauthorized, "missing enterprise token (Authorization: token=<token>)"))
		return
	}
	t, err := s.cfg.Compat.Retraced.GetEnterprise(r.Context(), secret)
	if err != nil {
		s.retracedError(w, r, cairn.Errorf(cairn.EUnauthorized, "invalid enterprise token"))
		return
	}
	req, err := graphQLRequest(w, r)
	if err != nil {
		s.retracedError(w, r, err)
		return
	}
	in := &ingest.Input{Action: t.ViewLogAction, Kind: cairn.KindRead,
		Actor: &cairn.Actor{Type: cairn.ActorAPIToken, ID: "enterprise:" + t.Token[:min(7, len(t.Token))], Name: t.DisplayName},
		Group: &cairn.Group{ID: t.GroupID}, Source: &cairn.Source{IP: sourceIP(r), UserAgent: r.UserAgent()},
		Metadata: map[string]any{retraced.MetaKey: retraced.Extras{CRUD: "r"}.Map()}}
	if err := s.recordView(r, t.Org, t.Context, in); err != nil {
		s.retracedError(w, r, err)
		return
	}
	s.runGraphQL(w, r, retraced.Scope{Org: t.Org, Context: t.Context, GroupID: t.GroupID}, req)
}
