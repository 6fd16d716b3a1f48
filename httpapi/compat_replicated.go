package httpapi

import (
	"cmp"
	"net/http"
	"net/netip"

	"github.com/cairn-audit/cairn"
	"github.com/cairn-audit/cairn/ingest"
)

// The Replicated (legacy) Audit API: POST /audit/v1/event → 201, empty
// body, into the context CompatConfig.ReplicatedContext of the caller's
// org, created on first use.

// ReplicatedEvent is the Replicated Audit API's event. All members are
// optional strings; unknown members are rejected.
type ReplicatedEvent struct {
	Name        string `json:"name,omitempty"`
	Title       string `json:"title,omitempty"`
	Description string `json:"description,omitempty"`
	IPAddress   string `json:"ip_address,omitempty"`
	Action      string `json:"action,omitempty"`
}

// DecodeReplicatedEvent decodes and maps a Replicated event onto Cairn's
// input: action (or, without one, name) → action, title, description,
// ip_address → source.ip, name → fields.name. Errors are EInvalid (or
// ETooLarge).
func DecodeReplicatedEvent(body []byte) (*ingest.Input, error) {
	if len(body) > ingest.MaxEvent {
		return nil, cairn.Errorf(cairn.ETooLarge, "event exceeds the %d-byte limit", ingest.MaxEvent)
	}
	var ev ReplicatedEvent
	if err := strictUnmarshal(body, &ev); err != nil {
		return nil, err
	}
	in := &ingest.Input{
		Action:      cmp.Or(ev.Action, ev.Name),
		Title:       ev.Title,
		Description: ev.Description,
	}
	if in.Action == "" {
		return nil, cairn.Errorf(cairn.EInvalid, "action: required (or name)")
	}
	if ev.IPAddress != "" {
		if _, err := netip.ParseAddr(ev.IPAddress); err != nil {
			return nil, cairn.Errorf(cairn.EInvalid, "ip_address: not an IPv4 or IPv6 address")
		}
		in.Source = &cairn.Source{IP: ev.IPAddress}
	}
	if ev.Name != "" {
		in.Fields = map[string]string{"name": ev.Name}
	}
	return in, nil
}

func (s *Server) replicatedWrite(w http.ResponseWriter, r *http.Request) {
	org := callerOf(r).key.Org
	// Replicated's clients send no parameters; the agent names the context
	// it was configured with.
	q := r.URL.Query()
	name := cmp.Or(q.Get("context"), s.cfg.Compat.ReplicatedContext)
	for k, v := range q {
		if k != "context" || len(v) != 1 {
			s.error(w, r, cairn.Errorf(cairn.EInvalid, "unknown query parameter %q (only context)", k))
			return
		}
	}
	if err := validName("context", name); err != nil {
		s.error(w, r, err)
		return
	}
	if err := s.authorizeCompatWrite(r, org, name); err != nil {
		s.error(w, r, err)
		return
	}
	body, err := readBody(w, r, ingest.MaxEvent)
	if err != nil {
		s.error(w, r, err)
		return
	}
	in, err := DecodeReplicatedEvent(body)
	if err == nil {
		in.EventTime, err = defaultEventTime(r)
	}
	if err != nil {
		s.error(w, r, err)
		return
	}
	if in.Source == nil {
		in.Source = &cairn.Source{}
	}
	in.Source.UserAgent, in.Source.RequestID = r.UserAgent(), requestID(r)
	c, err := s.writableContext(r, org, name, true)
	if err != nil {
		s.error(w, r, err)
		return
	}
	if _, _, err := s.commit(r, compatWrite{org: org, ctx: c, inputs: []*ingest.Input{in},
		idemKey: r.Header.Get("Idempotency-Key"), body: body, route: "replicated"}); err != nil {
		s.error(w, r, err)
		return
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Content-Length", "0")
	w.WriteHeader(http.StatusCreated)
}
