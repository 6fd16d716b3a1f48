package httpapi

import (
	"cmp"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/cairn-audit/cairn"
)

// Control Plane audit queries: GET /audit/org/{org}[/resource/id/{id} |
// /resource/name/{name} | /subject/email/{email} | /id/{id}].

// CPEventView is an event in Control Plane's read shape.
type CPEventView struct {
	ID           string         `json:"id"`
	EventTime    string         `json:"eventTime"`
	PostedTime   string         `json:"postedTime"`
	ReceivedTime string         `json:"receivedTime"`
	RequestID    string         `json:"requestId,omitempty"`
	Context      map[string]any `json:"context"`
	Subject      map[string]any `json:"subject"`
	Resource     map[string]any `json:"resource"`
	Action       map[string]any `json:"action"`
	Result       map[string]any `json:"result"`
}

// CPQueryResult is Control Plane's list envelope.
type CPQueryResult struct {
	Kind     string         `json:"kind"`
	ItemKind string         `json:"itemKind"`
	Items    []CPEventView  `json:"items"`
	Query    map[string]any `json:"query"`
	Links    []CPLink       `json:"links"`
}

// CPItemResult is Control Plane's envelope for one event.
type CPItemResult struct {
	Kind     string         `json:"kind"`
	ItemKind string         `json:"itemKind"`
	Item     CPEventView    `json:"item"`
	Query    map[string]any `json:"query"`
	Links    []CPLink       `json:"links"`
}

// CPLink is one entry of links.
type CPLink struct {
	Rel  string `json:"rel"`
	Href string `json:"href"`
}

// CP page sizes.
const (
	cpDefaultPageSize = 50
	cpMaxPageSize     = 1000
)

// renderCP shows a stored event in Control Plane's shape. Members Control
// Plane has and Cairn does not come back from metadata.controlplane;
// native events get the natural equivalents.
func renderCP(e *cairn.Event) CPEventView {
	meta, _ := e.Metadata[cpMetaKey].(map[string]any)
	sub := func(name string) map[string]any { m, _ := meta[name].(map[string]any); return m }
	v := CPEventView{
		ID:           e.ID,
		EventTime:    cpTime(e.EventTime),
		PostedTime:   cpTime(e.ReceivedTime),
		ReceivedTime: cpTime(e.ReceivedTime),
		Context:      map[string]any{"org": e.Org, "name": e.Context},
		Subject:      map[string]any{},
		Resource:     map[string]any{},
		Action:       map[string]any{"type": e.Action},
		Result:       map[string]any{},
	}
	if src := e.Source; src != nil {
		v.RequestID = src.RequestID
		if src.IP != "" {
			v.Context["remoteIp"] = src.IP
		}
		if src.Location != "" {
			v.Context["location"] = src.Location
		}
	}
	for k, val := range sub("context") {
		v.Context[k] = val
	}
	if a := e.Actor; a != nil {
		setNonEmpty(v.Subject, "email", a.Email)
		setNonEmpty(v.Subject, "name", cmp.Or(a.Name, a.ID))
		if len(a.Claims) > 0 {
			v.Subject["claims"] = a.Claims
		}
	}
	if d, ok := sub("subject")["data"]; ok {
		v.Subject["data"] = d
	}
	if t := e.Target; t != nil {
		setNonEmpty(v.Resource, "id", t.ID)
		setNonEmpty(v.Resource, "name", t.Name)
		setNonEmpty(v.Resource, "type", t.Type)
		if len(t.Data) > 0 {
			v.Resource["data"] = t.Data
		}
	}
	if d, ok := sub("action")["data"]; ok {
		v.Action["data"] = d
	}
	status, _ := sub("result")["status"].(string)
	if status == "" {
		status = "OK"
		if e.Outcome == cairn.OutcomeFailure {
			status = "Error"
		}
	}
	v.Result["status"] = status
	setNonEmpty(v.Result, "message", e.Reason)
	return v
}

func setNonEmpty(m map[string]any, k, v string) {
	if v != "" {
		m[k] = v
	}
}

// cpQuery is a parsed Control Plane query.
type cpQuery struct {
	filter         cairn.Filter
	page, pageSize int
	resourceName   string
	location       string
	gvcAlias       string
	podID          string
	echo           map[string]any
}

var cpParams = map[string]bool{"actionType": true, "resourceType": true, "fromEvent": true, "toEvent": true,
	"page": true, "pageSize": true, "context": true, "location": true, "gvcAlias": true, "podId": true}

func parseCPQuery(q url.Values) (*cpQuery, error) {
	cq := &cpQuery{pageSize: cpDefaultPageSize, echo: map[string]any{}}
	for name, vals := range q {
		if !cpParams[name] {
			return nil, cairn.Errorf(cairn.EInvalid, "unknown query parameter %q", name)
		}
		if len(vals) != 1 {
			return nil, cairn.Errorf(cairn.EInvalid, "query parameter %q given %d times", name, len(vals))
		}
	}
	var err error
	get := func(name string) string {
		v := q.Get(name)
		if v != "" {
			cq.echo[name] = v
		}
		return v
	}
	cq.filter.Context = cmp.Or(get("context"), cairn.BuiltinContext)
	cq.echo["context"] = cq.filter.Context
	cq.filter.Action = get("actionType")
	cq.filter.TargetType = get("resourceType")
	if v := get("fromEvent"); v != "" {
		if cq.filter.Since, err = parseTime("fromEvent", v); err != nil {
			return nil, err
		}
	}
	if v := get("toEvent"); v != "" {
		if cq.filter.Until, err = parseTime("toEvent", v); err != nil {
			return nil, err
		}
	}
	cq.location, cq.gvcAlias, cq.podID = get("location"), get("gvcAlias"), get("podId")
	if v := get("page"); v != "" {
		if cq.page, err = strconv.Atoi(v); err != nil || cq.page < 0 {
			return nil, cairn.Errorf(cairn.EInvalid, "page must be a non-negative integer (0 is the first page)")
		}
	}
	if v := get("pageSize"); v != "" {
		if cq.pageSize, err = strconv.Atoi(v); err != nil || cq.pageSize < 1 || cq.pageSize > cpMaxPageSize {
			return nil, cairn.Errorf(cairn.EInvalid, "pageSize must be an integer from 1 to %d", cpMaxPageSize)
		}
	}
	cq.echo["page"], cq.echo["pageSize"] = cq.page, cq.pageSize
	return cq, nil
}

// match applies the filters the store does not index.
func (cq *cpQuery) match(e *cairn.Event, v *CPEventView) bool {
	if cq.resourceName != "" && (e.Target == nil || e.Target.Name != cq.resourceName) {
		return false
	}
	for k, want := range map[string]string{"location": cq.location, "gvcAlias": cq.gvcAlias, "podId": cq.podID} {
		if want != "" {
			if got, _ := v.Context[k].(string); got != want {
				return false
			}
		}
	}
	return true
}

func (s *Server) cpQuery(w http.ResponseWriter, r *http.Request) {
	org := r.PathValue("org")
	cq, err := parseCPQuery(r.URL.Query())
	if err != nil {
		s.error(w, r, err)
		return
	}
	if err := s.authorizeCompatRead(r, org, cq.filter.Context); err != nil {
		s.error(w, r, err)
		return
	}
	if _, err := s.cfg.Store.GetContext(r.Context(), org, cq.filter.Context); err != nil {
		s.error(w, r, err)
		return
	}
	switch {
	case r.PathValue("resource_id") != "":
		cq.filter.TargetID = r.PathValue("resource_id")
		cq.echo["resourceId"] = cq.filter.TargetID
	case r.PathValue("resource_name") != "":
		cq.resourceName = r.PathValue("resource_name")
		cq.echo["resourceName"] = cq.resourceName
	case r.PathValue("email") != "":
		cq.filter.ActorEmail = r.PathValue("email")
		cq.echo["subjectEmail"] = cq.filter.ActorEmail
	}
	skip := cq.page * cq.pageSize
	items := []CPEventView{}
	more := false
	err = s.scan(r.Context(), org, cq.filter, func(_ *cairn.StoredEvent, e *cairn.Event) bool {
		v := renderCP(e)
		if !cq.match(e, &v) {
			return true
		}
		if skip > 0 {
			skip--
			return true
		}
		if len(items) == cq.pageSize {
			more = true
			return false
		}
		items = append(items, v)
		return true
	})
	if err != nil {
		s.error(w, r, err)
		return
	}
	cq.echo["org"] = org
	links := []CPLink{{Rel: "self", Href: cpPageURL(r, cq.page)}}
	if more {
		links = append(links, CPLink{Rel: "next", Href: cpPageURL(r, cq.page+1)})
	}
	if cq.page > 0 {
		links = append(links, CPLink{Rel: "prev", Href: cpPageURL(r, cq.page-1)})
	}
	writeJSON(w, http.StatusOK, CPQueryResult{Kind: "queryresult", ItemKind: "auditevent", Items: items, Query: cq.echo, Links: links})
}

func cpPageURL(r *http.Request, page int) string {
	q := r.URL.Query()
	q.Set("page", strconv.Itoa(page))
	return r.URL.EscapedPath() + "?" + q.Encode()
}

// cpGet returns one event by id: from the context named by ?context=, or
// else from whichever of the org's contexts holds it.
func (s *Server) cpGet(w http.ResponseWriter, r *http.Request) {
	org, id := r.PathValue("org"), r.PathValue("id")
	q := r.URL.Query()
	for k := range q {
		if k != "context" {
			s.error(w, r, cairn.Errorf(cairn.EInvalid, "unknown query parameter %q", k))
			return
		}
	}
	var names []string
	if c := q.Get("context"); c != "" {
		names = []string{c}
	} else {
		if err := s.authorizeCompatRead(r, org, ""); err != nil {
			s.error(w, r, err)
			return
		}
		cs, err := s.cfg.Store.ListContexts(r.Context(), org)
		if err != nil {
			s.error(w, r, err)
			return
		}
		for _, c := range cs {
			names = append(names, c.Name)
		}
	}
	for _, name := range names {
		if err := s.authorizeCompatRead(r, org, name); err != nil {
			if len(names) == 1 {
				s.error(w, r, err)
				return
			}
			continue
		}
		se, err := s.cfg.Store.GetEvent(r.Context(), org, name, id)
		if cairn.ErrorCode(err) == cairn.ENotFound {
			continue
		}
		if err != nil {
			s.error(w, r, err)
			return
		}
		e, err := decodeLeaf(se.Leaf)
		if err != nil {
			s.error(w, r, err)
			return
		}
		writeJSON(w, http.StatusOK, CPItemResult{Kind: "queryresult", ItemKind: "auditevent", Item: renderCP(e),
			Query: map[string]any{"org": org, "id": id, "context": name},
			Links: []CPLink{{Rel: "self", Href: "/audit/org/" + url.PathEscape(org) + "/id/" + url.PathEscape(id)}}})
		return
	}
	s.error(w, r, cairn.Errorf(cairn.ENotFound, "event %q not found", strings.TrimSpace(id)))
}
