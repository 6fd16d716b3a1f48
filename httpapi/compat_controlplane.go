package httpapi

import (
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/cairn-audit/cairn"
	"github.com/cairn-audit/cairn/ingest"
	"github.com/go-json-experiment/json/jsontext"
)

// Control Plane audit-context writes: POST /audit/org/{org}/auditctx/{ctx}.
// See docs/compat.md for the field mapping.

// CPEvent is an event in Control Plane's write shape. Only resource.id and
// resource.type are required; unknown members are rejected.
type CPEvent struct {
	EventTime jsontext.Value `json:"eventTime,omitzero"`
	Resource  *CPResource    `json:"resource"`
	Subject   *CPSubject     `json:"subject,omitempty"`
	Action    *CPAction      `json:"action,omitempty"`
	Result    *CPResult      `json:"result,omitempty"`
	Context   *CPContext     `json:"context,omitempty"`
}

// CPResource is the object acted on (Cairn's target).
type CPResource struct {
	ID   string         `json:"id"`
	Type string         `json:"type"`
	Name string         `json:"name,omitempty"`
	Data jsontext.Value `json:"data,omitzero"`
}

// CPSubject is who acted (Cairn's actor).
type CPSubject struct {
	Email  string         `json:"email,omitempty"`
	Name   string         `json:"name,omitempty"`
	Claims jsontext.Value `json:"claims,omitzero"`
	Data   jsontext.Value `json:"data,omitzero"`
}

// CPAction is what was done.
type CPAction struct {
	Type string         `json:"type,omitempty"`
	Data jsontext.Value `json:"data,omitzero"`
}

// CPResult is how it ended.
type CPResult struct {
	Status  string `json:"status,omitempty"`
	Message string `json:"message,omitempty"`
}

// CPContext is the client-supplied part of Control Plane's event context.
// org and name, if given, must match the path; remoteIp is the server's to
// set.
type CPContext struct {
	Org         string         `json:"org,omitempty"`
	Name        string         `json:"name,omitempty"`
	EventSource string         `json:"eventSource,omitempty"`
	Location    string         `json:"location,omitempty"`
	GvcAlias    string         `json:"gvcAlias,omitempty"`
	PodID       string         `json:"podId,omitempty"`
	Data        jsontext.Value `json:"data,omitzero"`
}

// cpUnspecifiedAction is Cairn's action for a Control Plane event without
// action.type (Cairn requires an action; Control Plane does not).
const cpUnspecifiedAction = "unspecified"

// cpMetaKey holds, in the event's metadata, the Control Plane members that
// have no native field, so queries render them back unchanged.
const cpMetaKey = "controlplane"

// DecodeCPEvent decodes and validates a Control Plane event body. Errors
// are *cairn.Error with code EInvalid (ETooLarge past ingest.MaxEvent).
func DecodeCPEvent(body []byte) (*CPEvent, error) {
	if len(body) > ingest.MaxEvent {
		return nil, cairn.Errorf(cairn.ETooLarge, "event exceeds the %d-byte limit", ingest.MaxEvent)
	}
	var ev CPEvent
	if err := strictUnmarshal(body, &ev); err != nil {
		return nil, err
	}
	if ev.Resource == nil {
		return nil, cairn.Errorf(cairn.EInvalid, "resource: required")
	}
	if ev.Resource.ID == "" {
		return nil, cairn.Errorf(cairn.EInvalid, "resource.id: required")
	}
	if ev.Resource.Type == "" {
		return nil, cairn.Errorf(cairn.EInvalid, "resource.type: required")
	}
	if len(ev.EventTime) > 0 && ev.EventTime.Kind() != '"' && ev.EventTime.Kind() != 'n' {
		return nil, cairn.Errorf(cairn.EInvalid, "eventTime: expected an ISO 8601 (RFC 3339) time string")
	}
	type member struct {
		v    jsontext.Value
		path string
	}
	checks := []member{{ev.Resource.Data, "resource.data"}}
	if s := ev.Subject; s != nil {
		checks = append(checks, member{s.Claims, "subject.claims"}, member{s.Data, "subject.data"})
	}
	if a := ev.Action; a != nil {
		checks = append(checks, member{a.Data, "action.data"})
	}
	if c := ev.Context; c != nil {
		checks = append(checks, member{c.Data, "context.data"})
	}
	for _, c := range checks {
		if err := objectOrNull(c.v, c.path); err != nil {
			return nil, err
		}
	}
	return &ev, nil
}

// cpKind maps Control Plane action types onto Cairn's kinds.
func cpKind(actionType string) string {
	switch strings.ToLower(actionType) {
	case "create":
		return cairn.KindCreate
	case "edit", "update", "patch":
		return cairn.KindUpdate
	case "delete":
		return cairn.KindDelete
	case "read", "get", "view", "list":
		return cairn.KindRead
	case "exec", "access", "connect":
		return cairn.KindAccess
	case "login":
		return cairn.KindLogin
	}
	return cairn.KindOther
}

// cpOutcome maps a result status: anything that reads as an error or
// refusal is a failure, everything else (OK, Success, Created, ...) success.
func cpOutcome(status string) string {
	s := strings.ToLower(status)
	for _, p := range []string{"err", "fail", "den", "forbid", "unauthori", "reject", "invalid", "timeout"} {
		if strings.HasPrefix(s, p) {
			return cairn.OutcomeFailure
		}
	}
	return cairn.OutcomeSuccess
}

// nativeCP is the native JSON an event maps to (see docs/compat.md).
type nativeCP struct {
	EventTime jsontext.Value `json:"event_time,omitzero"`
	Action    string         `json:"action"`
	Kind      string         `json:"kind"`
	Outcome   string         `json:"outcome"`
	Reason    string         `json:"reason,omitempty"`
	Actor     *nativeActor   `json:"actor,omitempty"`
	Target    nativeTarget   `json:"target"`
	Source    *cairn.Source  `json:"source,omitempty"`
	Metadata  map[string]any `json:"metadata,omitempty"`
}

type nativeActor struct {
	Type   string         `json:"type,omitempty"`
	ID     string         `json:"id,omitempty"`
	Name   string         `json:"name,omitempty"`
	Email  string         `json:"email,omitempty"`
	Claims jsontext.Value `json:"claims,omitzero"`
}

type nativeTarget struct {
	Type string         `json:"type"`
	ID   string         `json:"id"`
	Name string         `json:"name,omitempty"`
	Data jsontext.Value `json:"data,omitzero"`
}

// Input maps the event onto Cairn's native input. org and ctx are the path's;
// source is the server-observed origin of the request.
func (ev *CPEvent) Input(org, ctx string, source *cairn.Source) (*ingest.Input, error) {
	n := nativeCP{
		EventTime: ev.EventTime,
		Action:    cpUnspecifiedAction,
		Kind:      cairn.KindOther,
		Outcome:   cairn.OutcomeSuccess,
		Target:    nativeTarget{Type: ev.Resource.Type, ID: ev.Resource.ID, Name: ev.Resource.Name, Data: ev.Resource.Data},
		Source:    source,
	}
	meta := map[string]any{}
	if a := ev.Action; a != nil {
		if a.Type != "" {
			n.Action, n.Kind = a.Type, cpKind(a.Type)
		}
		if isSet(a.Data) {
			meta["action"] = map[string]any{"data": a.Data}
		}
	}
	if r := ev.Result; r != nil {
		n.Outcome, n.Reason = cpOutcome(r.Status), r.Message
		if r.Status != "" {
			meta["result"] = map[string]any{"status": r.Status}
		}
	}
	if s := ev.Subject; s != nil {
		if s.Email != "" || s.Name != "" || isSet(s.Claims) {
			n.Actor = &nativeActor{Email: s.Email, Name: s.Name, Claims: s.Claims}
		}
		if isSet(s.Data) {
			meta["subject"] = map[string]any{"data": s.Data}
		}
	}
	if c := ev.Context; c != nil {
		if c.Org != "" && c.Org != org || c.Name != "" && c.Name != ctx {
			return nil, cairn.Errorf(cairn.EInvalid, "context.org and context.name, if given, must match the path")
		}
		cm := map[string]any{}
		for k, v := range map[string]string{"eventSource": c.EventSource, "gvcAlias": c.GvcAlias, "podId": c.PodID} {
			if v != "" {
				cm[k] = v
			}
		}
		if isSet(c.Data) {
			cm["data"] = c.Data
		}
		if len(cm) > 0 {
			meta["context"] = cm
		}
		if c.Location != "" {
			if n.Source == nil {
				n.Source = &cairn.Source{}
			}
			src := *n.Source
			src.Location = c.Location
			n.Source = &src
		}
	}
	if len(meta) > 0 {
		n.Metadata = map[string]any{cpMetaKey: meta}
	}
	in, err := nativeEvent(n)
	if err != nil {
		return nil, cpPaths(err)
	}
	return in, nil
}

func isSet(v jsontext.Value) bool { return len(v) > 0 && v.Kind() != 'n' }

// cpPaths renames native member paths in an ingest error to Control
// Plane's names.
func cpPaths(err error) error {
	e, ok := err.(*cairn.Error)
	if !ok {
		return err
	}
	m := e.Message
	for _, r := range [][2]string{{"target.", "resource."}, {"actor.", "subject."}, {"event_time", "eventTime"},
		{"action:", "action.type:"}, {"reason", "result.message"}, {"metadata.controlplane.", ""}} {
		if strings.HasPrefix(m, r[0]) {
			m = r[1] + strings.TrimPrefix(m, r[0])
			break
		}
	}
	return &cairn.Error{Code: e.Code, Message: m}
}

// CPWriteResult is Control Plane's response to a write.
type CPWriteResult struct {
	ID      string `json:"id"`
	Message string `json:"message"`
}

func (s *Server) cpWrite(w http.ResponseWriter, r *http.Request) {
	org, name := r.PathValue("org"), r.PathValue("ctx")
	if err := s.authorizeCompatWrite(r, org, name); err != nil {
		s.error(w, r, err)
		return
	}
	async, err := boolParam(r.URL.Query(), "async")
	if err != nil {
		s.error(w, r, err)
		return
	}
	for k := range r.URL.Query() {
		if k != "async" {
			s.error(w, r, cairn.Errorf(cairn.EInvalid, "unknown query parameter %q", k))
			return
		}
	}
	c, err := s.writableContext(r, org, name, false)
	if err != nil {
		s.error(w, r, err)
		return
	}
	body, err := readBody(w, r, ingest.MaxEvent)
	if err != nil {
		s.error(w, r, err)
		return
	}
	ev, err := DecodeCPEvent(body)
	if err != nil {
		s.error(w, r, err)
		return
	}
	in, err := ev.Input(org, name, &cairn.Source{IP: sourceIP(r), UserAgent: r.UserAgent(), RequestID: requestID(r)})
	if err == nil && in.EventTime.IsZero() {
		in.EventTime, err = defaultEventTime(r)
	}
	if err != nil {
		s.error(w, r, err)
		return
	}
	res, _, err := s.commit(r, compatWrite{org: org, ctx: c, inputs: []*ingest.Input{in},
		idemKey: r.Header.Get("Idempotency-Key"), body: body, route: "controlplane"})
	if err != nil {
		s.error(w, r, err)
		return
	}
	id := res.Committed[0].ID
	if async {
		writeJSON(w, http.StatusAccepted, CPWriteResult{ID: id, Message: fmt.Sprintf("Accepted event with ID %s", id)})
		return
	}
	writeJSON(w, http.StatusCreated, CPWriteResult{ID: id,
		Message: fmt.Sprintf("Published event with ID %s at sequence %d of %s/%s", id, res.Committed[0].Seq, org, c.Name)})
}

// cpTime formats times as Control Plane does: UTC with milliseconds.
func cpTime(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05.000Z") }
