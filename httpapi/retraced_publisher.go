package httpapi

import (
	"net/http"
	"strconv"

	"github.com/cairn-audit/cairn"
	"github.com/cairn-audit/cairn/ingest"
	"github.com/cairn-audit/cairn/retraced"
	"github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"
	"github.com/google/uuid"
)

// RetracedCreated is the answer to a published event.
type RetracedCreated struct {
	ID   string `json:"id"`
	Hash string `json:"hash"`
}

// retracedBulkMax is Retraced's PUBLISHER_BULK_CREATE_MAX_EVENTS.
const retracedBulkMax = 50

// retracedInput maps a Retraced event onto Cairn's input (docs/compat.md).
func retracedInput(e *retraced.Event) (*ingest.Input, error) {
	if _, ok := e.Metadata[retraced.MetaKey]; ok {
		return nil, cairn.Errorf(cairn.EInvalid, "metadata: the key %q is reserved", retraced.MetaKey)
	}
	in := &ingest.Input{
		EventTime: e.Created, Action: e.Action, Kind: retraced.KindOf(e.CRUD), Outcome: cairn.OutcomeSuccess,
		Description: e.Description, Component: e.Component, Version: e.Version, ExternalID: e.ExternalID,
		Fields: e.Fields,
	}
	if e.IsFailure != nil && *e.IsFailure {
		in.Outcome = cairn.OutcomeFailure
	}
	x := retraced.Extras{CRUD: e.CRUD, Created: !e.Created.IsZero(), IsFailure: e.IsFailure, IsAnonymous: e.IsAnonymous}
	anonymous := e.IsAnonymous != nil && *e.IsAnonymous
	if a := e.Actor; a != nil {
		in.Actor = &cairn.Actor{Type: cairn.ActorUser, ID: a.ID, Name: a.Name}
		if anonymous {
			in.Actor.Type = cairn.ActorAnonymous
		}
		x.ActorHref, x.ActorFields = a.Href, a.Fields
	} else if anonymous {
		in.Actor = &cairn.Actor{Type: cairn.ActorAnonymous}
	}
	if t := e.Target; t != nil {
		in.Target = &cairn.Target{ID: t.ID, Name: t.Name, Type: t.Type, Href: t.Href}
		if len(t.Fields) > 0 {
			in.Target.Data = map[string]any{}
			for k, v := range t.Fields {
				in.Target.Data[k] = v
			}
		}
	}
	if g := e.Group; g != nil {
		in.Group = &cairn.Group{ID: g.ID, Name: g.Name}
	}
	if e.SourceIP != "" {
		in.Source = &cairn.Source{IP: e.SourceIP}
	}
	in.Metadata = map[string]any{retraced.MetaKey: x.Map()}
	for k, v := range e.Metadata {
		in.Metadata[k] = v
	}
	return in, nil
}

// publish commits parsed events into the project's Retraced context and
// returns their ids and hashes, in order.
func (s *Server) publish(r *http.Request, org string, events []*retraced.Event, body []byte, route string) ([]RetracedCreated, error) {
	c, err := s.writableContext(r, org, s.cfg.Compat.RetracedContext, true)
	if err != nil {
		return nil, err
	}
	inputs := make([]*ingest.Input, len(events))
	ids := make([]string, len(events))
	for i, e := range events {
		if inputs[i], err = retracedInput(e); err != nil {
			return nil, err
		}
		u, err := uuid.NewV7()
		if err != nil {
			return nil, err
		}
		ids[i] = u.String()
	}
	res, _, err := s.commit(r, compatWrite{org: org, ctx: c, inputs: inputs, ids: ids,
		idemKey: r.Header.Get("Idempotency-Key"), body: body, route: route})
	if err != nil {
		return nil, err
	}
	out := make([]RetracedCreated, len(events))
	for i, cm := range res.Committed {
		// A replayed request returns the original ids; the hash is over
		// the same body, so it matches what was returned then.
		id := retraced.HexID(cm.ID)
		out[i] = RetracedCreated{ID: id, Hash: events[i].Hash(id)}
	}
	return out, nil
}

func (s *Server) retracedEvent(w http.ResponseWriter, r *http.Request) {
	org, err := s.retracedProject(r, true)
	if err != nil {
		s.retracedError(w, r, err)
		return
	}
	body, err := readBody(w, r, retraced.MaxEvent)
	if err != nil {
		s.retracedError(w, r, err)
		return
	}
	ev, err := retraced.ParseEvent(body)
	if err != nil {
		s.retracedError(w, r, err)
		return
	}
	out, err := s.publish(r, org, []*retraced.Event{ev}, body, "retraced.event")
	if err != nil {
		s.retracedError(w, r, err)
		return
	}
	writeJSON(w, http.StatusCreated, out[0])
}

func (s *Server) retracedBulk(w http.ResponseWriter, r *http.Request) {
	org, err := s.retracedProject(r, true)
	if err != nil {
		s.retracedError(w, r, err)
		return
	}
	body, err := readBody(w, r, retracedMaxBody)
	if err != nil {
		s.retracedError(w, r, err)
		return
	}
	var req struct {
		Events []jsontext.Value `json:"events"`
	}
	if err := json.Unmarshal(body, &req, json.RejectUnknownMembers(true)); err != nil {
		s.retracedError(w, r, decodeError(err))
		return
	}
	switch {
	case len(req.Events) == 0:
		s.retracedError(w, r, cairn.Errorf(cairn.EInvalid, `"events" must hold at least one event`))
		return
	case len(req.Events) > retracedBulkMax:
		s.retracedError(w, r, cairn.Errorf(cairn.EInvalid, "a bulk request holds at most %d events", retracedBulkMax))
		return
	}
	events := make([]*retraced.Event, len(req.Events))
	var invalid []RetracedInvalid
	for i, raw := range req.Events {
		ev, err := retraced.ParseEvent(raw)
		if err != nil {
			inv := RetracedInvalid{Message: cairn.ErrorMessage(err), Index: i, Violations: []retraced.Violation{}}
			if ve, ok := asValidation(err); ok {
				inv.Violations = ve.Violations
			}
			invalid = append(invalid, inv)
			continue
		}
		events[i] = ev
	}
	if invalid != nil {
		s.retracedErrorWith(w, r, cairn.Errorf(cairn.EInvalid, "%d of %d events are invalid", len(invalid), len(events)), invalid)
		return
	}
	out, err := s.publish(r, org, events, body, "retraced.bulk")
	if err != nil {
		s.retracedError(w, r, err)
		return
	}
	writeJSON(w, http.StatusCreated, out)
}

func asValidation(err error) (*retraced.ValidationError, bool) {
	if e, ok := err.(*cairn.Error); ok {
		ve, ok := e.Err.(*retraced.ValidationError)
		return ve, ok
	}
	return nil, false
}

// retracedViewerToken issues a viewer descriptor: GET …/viewertoken →
// 201 {"token"}.
func (s *Server) retracedViewerToken(w http.ResponseWriter, r *http.Request) {
	org, err := s.retracedProject(r, false)
	if err != nil {
		s.retracedError(w, r, err)
		return
	}
	q := r.URL.Query()
	group := q.Get("group_id")
	if group == "" {
		group = q.Get("team_id")
	}
	if group == "" {
		s.retracedError(w, r, cairn.Errorf(cairn.EInvalid, "group_id is required"))
		return
	}
	isAdmin := false
	if v := q.Get("is_admin"); v != "" {
		if isAdmin, err = strconv.ParseBool(v); err != nil {
			s.retracedError(w, r, cairn.Errorf(cairn.EInvalid, "is_admin must be true or false"))
			return
		}
	}
	d := &retraced.ViewerDescriptor{ID: retraced.NewToken(), Org: org, Context: s.cfg.Compat.RetracedContext,
		GroupID: group, ActorID: q.Get("actor_id"), TargetID: q.Get("target_id"), IsAdmin: isAdmin,
		ViewLogAction: q.Get("view_log_action"), Created: s.cfg.Now().UTC()}
	if d.ViewLogAction == "" {
		d.ViewLogAction = "audit.log.view"
	}
	if err := s.cfg.Compat.Retraced.PutViewer(r.Context(), d); err != nil {
		s.retracedError(w, r, err)
		return
	}
	writeJSON(w, http.StatusCreated, map[string]string{"token": d.ID})
}

// retracedDeleteSessions deletes the viewer descriptors of a group's
// actor, revoking their sessions: 200, empty body.
func (s *Server) retracedDeleteSessions(w http.ResponseWriter, r *http.Request) {
	org, err := s.retracedProject(r, false)
	if err == nil {
		err = s.cfg.Compat.Retraced.DeleteViewers(r.Context(), org, r.PathValue("groupId"), r.PathValue("actorId"))
	}
	if err != nil {
		s.retracedError(w, r, err)
		return
	}
	w.WriteHeader(http.StatusOK)
}

// EnterpriseTokenView is an enterprise token as the publisher API shows it.
type EnterpriseTokenView struct {
	Token         string `json:"token"`
	DisplayName   string `json:"display_name"`
	ViewLogAction string `json:"view_log_action"`
}

type enterpriseInput struct {
	DisplayName   string `json:"display_name"`
	ViewLogAction string `json:"view_log_action,omitempty"`
}

func (s *Server) retracedCreateEnterprise(w http.ResponseWriter, r *http.Request) {
	org, err := s.retracedProject(r, false)
	if err != nil {
		s.retracedError(w, r, err)
		return
	}
	var in enterpriseInput
	if err := decodeJSON(r, &in); err != nil {
		s.retracedError(w, r, err)
		return
	}
	if in.DisplayName == "" {
		s.retracedError(w, r, cairn.Errorf(cairn.EInvalid, "display_name is required"))
		return
	}
	t := &retraced.EnterpriseToken{Token: retraced.NewToken(), Org: org, Context: s.cfg.Compat.RetracedContext,
		GroupID: r.PathValue("groupId"), DisplayName: in.DisplayName, ViewLogAction: in.ViewLogAction, Created: s.cfg.Now().UTC()}
	if t.ViewLogAction == "" {
		t.ViewLogAction = "audit.log.view"
	}
	if err := s.cfg.Compat.Retraced.PutEnterprise(r.Context(), t); err != nil {
		s.retracedError(w, r, err)
		return
	}
	writeJSON(w, http.StatusCreated, EnterpriseTokenView{t.Token, t.DisplayName, t.ViewLogAction})
}

func (s *Server) retracedListEnterprise(w http.ResponseWriter, r *http.Request) {
	org, err := s.retracedProject(r, false)
	if err != nil {
		s.retracedError(w, r, err)
		return
	}
	ts, err := s.cfg.Compat.Retraced.ListEnterprise(r.Context(), org, r.PathValue("groupId"))
	if err != nil {
		s.retracedError(w, r, err)
		return
	}
	out := []EnterpriseTokenView{}
	for _, t := range ts {
		out = append(out, EnterpriseTokenView{t.Token, t.DisplayName, t.ViewLogAction})
	}
	writeJSON(w, http.StatusOK, out)
}

// enterpriseToken returns the path's token if it belongs to the path's
// project and group.
func (s *Server) enterpriseToken(r *http.Request) (*retraced.EnterpriseToken, error) {
	org, err := s.retracedProject(r, false)
	if err != nil {
		return nil, err
	}
	t, err := s.cfg.Compat.Retraced.GetEnterprise(r.Context(), r.PathValue("tokenId"))
	if err == nil && (t.Org != org || t.GroupID != r.PathValue("groupId")) {
		err = cairn.Errorf(cairn.ENotFound, "enterprise token not found")
	}
	return t, err
}

func (s *Server) retracedGetEnterprise(w http.ResponseWriter, r *http.Request) {
	t, err := s.enterpriseToken(r)
	if err != nil {
		s.retracedError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, EnterpriseTokenView{t.Token, t.DisplayName, t.ViewLogAction})
}

func (s *Server) retracedUpdateEnterprise(w http.ResponseWriter, r *http.Request) {
	t, err := s.enterpriseToken(r)
	if err != nil {
		s.retracedError(w, r, err)
		return
	}
	var in enterpriseInput
	if err := decodeJSON(r, &in); err != nil {
		s.retracedError(w, r, err)
		return
	}
	if in.DisplayName != "" {
		t.DisplayName = in.DisplayName
	}
	if in.ViewLogAction != "" {
		t.ViewLogAction = in.ViewLogAction
	}
	if err := s.cfg.Compat.Retraced.PutEnterprise(r.Context(), t); err != nil {
		s.retracedError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, EnterpriseTokenView{t.Token, t.DisplayName, t.ViewLogAction})
}

func (s *Server) retracedDeleteEnterprise(w http.ResponseWriter, r *http.Request) {
	t, err := s.enterpriseToken(r)
	if err == nil {
		err = s.cfg.Compat.Retraced.DeleteEnterprise(r.Context(), t.Org, t.GroupID, t.Token)
	}
	if err != nil {
		s.retracedError(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}
