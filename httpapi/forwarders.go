package httpapi

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"maps"
	"net/http"
	"slices"
	"time"

	"github.com/cairn-audit/cairn"
)

// Forwarding is the forwarder service as the API uses it
// (forward.Service). Every forwarder it returns has its secret settings
// masked; the API never sees a stored secret.
type Forwarding interface {
	Create(ctx context.Context, f *cairn.Forwarder) (*cairn.Forwarder, error)
	// Replace keeps stored secrets whose new value is cairn.SecretMask.
	Replace(ctx context.Context, f *cairn.Forwarder) (*cairn.Forwarder, error)
	SetEnabled(ctx context.Context, org, name string, enabled bool) (*cairn.Forwarder, error)
	Delete(ctx context.Context, org, name string) error
	Get(ctx context.Context, org, name string) (*cairn.Forwarder, error)
	List(ctx context.Context, org string) ([]*cairn.Forwarder, error)
	Replay(ctx context.Context, org, name string, from cairn.ReplayFrom) (*cairn.ForwarderStatus, error)
	Test(ctx context.Context, org, name string) (*cairn.ForwarderTest, error)
	Status(ctx context.Context, org, name string) (*cairn.ForwarderStatus, error)
}

// ForwarderView is the JSON form of a forwarder, for input and output.
// Output-only members (org, created_at, updated_at, status) are ignored
// on input, so a view read with GET can be edited and sent back with PUT:
// secret settings read "***" and "***" keeps the stored secret.
type ForwarderView struct {
	Org          string               `json:"org,omitempty"`
	Name         string               `json:"name"`
	Contexts     []string             `json:"contexts"`
	ActionFilter string               `json:"action_filter"`
	GroupFilter  string               `json:"group_filter"`
	Sink         SinkView             `json:"sink"`
	Format       string               `json:"format"`
	Batch        BatchView            `json:"batch"`
	Retry        RetryView            `json:"retry"`
	Enabled      *bool                `json:"enabled"`
	CreatedAt    *time.Time           `json:"created_at,omitempty"`
	UpdatedAt    *time.Time           `json:"updated_at,omitempty"`
	Status       *ForwarderStatusView `json:"status,omitempty"`
}

// SinkView names the sink type and its settings.
type SinkView struct {
	Type     string         `json:"type"`
	Settings map[string]any `json:"settings"`
}

// BatchView is a forwarder's batching; durations in Go syntax ("250ms").
type BatchView struct {
	MaxEvents int    `json:"max_events"`
	MaxBytes  int    `json:"max_bytes"`
	MaxDelay  string `json:"max_delay"`
}

// RetryView is a forwarder's retry budget.
type RetryView struct {
	MaxAttempts int    `json:"max_attempts"`
	MinBackoff  string `json:"min_backoff"`
	MaxBackoff  string `json:"max_backoff"`
}

// ForwarderStatusView is a forwarder's delivery status.
type ForwarderStatusView struct {
	// State is running, backing_off, parked or paused.
	State       string       `json:"state"`
	Parked      bool         `json:"parked"`
	Attempts    int          `json:"attempts"`
	NextAttempt *time.Time   `json:"next_attempt"`
	LastSuccess *time.Time   `json:"last_success"`
	LastErrorAt *time.Time   `json:"last_error_at"`
	LastError   *ErrorDetail `json:"last_error"`
	LagEvents   int64        `json:"lag_events"`
	LagSeconds  float64      `json:"lag_seconds"`
	Cursors     []CursorView `json:"cursors"`
}

// CursorView is one context's cursor: the next seq to deliver.
type CursorView struct {
	Context    string  `json:"context"`
	NextSeq    int64   `json:"next_seq"`
	Size       int64   `json:"size"`
	LagEvents  int64   `json:"lag_events"`
	LagSeconds float64 `json:"lag_seconds"`
}

// ForwarderTestView is the answer of POST …/forwarders/{name}/test.
type ForwarderTestView struct {
	OK     bool         `json:"ok"`
	Answer string       `json:"answer"`
	Error  *ErrorDetail `json:"error"`
	TookMS float64      `json:"took_ms"`
}

// ReplayInput is the body of POST …/forwarders/{name}/replay: exactly one
// of seq and time; context limits the replay to one context.
type ReplayInput struct {
	Context string     `json:"context,omitempty"`
	Seq     *int64     `json:"seq,omitempty"`
	Time    *time.Time `json:"time,omitempty"`
}

func forwarderView(f *cairn.Forwarder) ForwarderView {
	enabled := f.Enabled
	v := ForwarderView{Org: f.Org, Name: f.Name, Contexts: f.Contexts, ActionFilter: f.ActionFilter,
		GroupFilter: f.GroupFilter, Sink: SinkView{Type: f.Sink.Type, Settings: f.Sink.Settings}, Format: f.Format,
		Batch:   BatchView{MaxEvents: f.Batch.MaxEvents, MaxBytes: f.Batch.MaxBytes, MaxDelay: f.Batch.MaxDelay.String()},
		Retry:   RetryView{MaxAttempts: f.Retry.MaxAttempts, MinBackoff: f.Retry.MinBackoff.String(), MaxBackoff: f.Retry.MaxBackoff.String()},
		Enabled: &enabled, CreatedAt: timePtr(f.CreatedAt), UpdatedAt: timePtr(f.UpdatedAt)}
	if v.Contexts == nil {
		v.Contexts = []string{}
	}
	if v.Sink.Settings == nil {
		v.Sink.Settings = map[string]any{}
	}
	return v
}

// forwarder converts an input view; a missing enabled means true.
func (v ForwarderView) forwarder(org string) (*cairn.Forwarder, error) {
	f := &cairn.Forwarder{Org: org, Name: v.Name, Contexts: v.Contexts, ActionFilter: v.ActionFilter,
		GroupFilter: v.GroupFilter, Sink: cairn.SinkConfig{Type: v.Sink.Type, Settings: v.Sink.Settings},
		Format: v.Format, Enabled: v.Enabled == nil || *v.Enabled}
	f.Batch.MaxEvents, f.Batch.MaxBytes = v.Batch.MaxEvents, v.Batch.MaxBytes
	f.Retry.MaxAttempts = v.Retry.MaxAttempts
	for _, d := range []struct {
		name string
		in   string
		out  *time.Duration
	}{
		{"batch.max_delay", v.Batch.MaxDelay, &f.Batch.MaxDelay},
		{"retry.min_backoff", v.Retry.MinBackoff, &f.Retry.MinBackoff},
		{"retry.max_backoff", v.Retry.MaxBackoff, &f.Retry.MaxBackoff},
	} {
		if d.in == "" {
			continue
		}
		var err error
		if *d.out, err = time.ParseDuration(d.in); err != nil {
			return nil, cairn.Errorf(cairn.EInvalid, "%s: %q is not a duration such as \"250ms\" or \"5m\"", d.name, d.in)
		}
	}
	return f, nil
}

func statusView(st *cairn.ForwarderStatus) *ForwarderStatusView {
	v := &ForwarderStatusView{State: st.State, Parked: st.Parked, Attempts: st.Attempts,
		NextAttempt: timePtr(st.NextAttempt), LastSuccess: timePtr(st.LastSuccess), LastErrorAt: timePtr(st.LastErrorAt),
		LagEvents: st.LagEvents, LagSeconds: st.LagSeconds, Cursors: []CursorView{}}
	if st.LastErrorCode != "" {
		v.LastError = &ErrorDetail{Code: st.LastErrorCode, Message: st.LastError}
	}
	for _, c := range st.Cursors {
		v.Cursors = append(v.Cursors, CursorView{Context: c.Context, NextSeq: c.Next, Size: c.Size,
			LagEvents: c.LagEvents, LagSeconds: c.LagSeconds})
	}
	return v
}

// forwarding returns the service after the org check, or an error.
func (s *Server) forwarding(r *http.Request) (Forwarding, string, error) {
	org := r.PathValue("org")
	// The route table has authorised the caller (manage on all contexts).
	if s.cfg.Forwarding == nil {
		return nil, "", cairn.Errorf(cairn.EInvalid, "forwarding is not enabled on this server")
	}
	return s.cfg.Forwarding, org, nil
}

// auditForwarder records a change of a forwarder's configuration or state
// in the org's built-in context: action is forwarder.create, .update,
// .delete, .pause, .resume or .replay; changes are the fields that differ
// between the masked views before and after (timestamps and delivery
// status left out), so no secret ever enters the log. The change has
// happened when this runs; a failure to record it is logged.
func (s *Server) auditForwarder(r *http.Request, org, action, name string, before, after *cairn.Forwarder, extra ...cairn.Change) {
	kind := cairn.KindUpdate
	switch {
	case before == nil && after != nil:
		kind = cairn.KindCreate
	case before != nil && after == nil:
		kind = cairn.KindDelete
	}
	view := func(f *cairn.Forwarder) map[string]any {
		if f == nil {
			return nil
		}
		m, _ := jsonValue(forwarderView(f)).(map[string]any)
		delete(m, "created_at")
		delete(m, "updated_at")
		delete(m, "status")
		return m
	}
	old, cur := view(before), view(after)
	fields := map[string]bool{}
	for k := range old {
		fields[k] = true
	}
	for k := range cur {
		fields[k] = true
	}
	var changes []cairn.Change
	for _, k := range slices.Sorted(maps.Keys(fields)) {
		changes = append(changes, change(k, old[k], cur[k])...)
	}
	changes = append(changes, extra...)
	target := &cairn.Target{Type: "forwarder", ID: name}
	if err := s.recordChange(r, org, action, kind, target, changes); err != nil {
		s.cfg.Logger.LogAttrs(r.Context(), slog.LevelWarn, "forwarder change not recorded",
			slog.String("request_id", requestID(r)), slog.String("action", action), slog.Any("err", err))
	}
}

func (s *Server) writeForwarder(w http.ResponseWriter, r *http.Request, status int, f *cairn.Forwarder) {
	v := forwarderView(f)
	st, err := s.cfg.Forwarding.Status(r.Context(), f.Org, f.Name)
	if err != nil {
		s.error(w, r, err)
		return
	}
	v.Status = statusView(st)
	writeJSON(w, status, v)
}

func (s *Server) createForwarder(w http.ResponseWriter, r *http.Request) {
	fw, org, err := s.forwarding(r)
	if err != nil {
		s.error(w, r, err)
		return
	}
	var in ForwarderView
	if err := decodeJSON(r, &in); err != nil {
		s.error(w, r, err)
		return
	}
	f, err := in.forwarder(org)
	if err != nil {
		s.error(w, r, err)
		return
	}
	created, err := fw.Create(r.Context(), f)
	if err != nil {
		s.error(w, r, err)
		return
	}
	s.auditForwarder(r, org, "forwarder.create", created.Name, nil, created)
	s.writeForwarder(w, r, http.StatusCreated, created)
}

func (s *Server) listForwarders(w http.ResponseWriter, r *http.Request) {
	fw, org, err := s.forwarding(r)
	if err != nil {
		s.error(w, r, err)
		return
	}
	fs, err := fw.List(r.Context(), org)
	if err != nil {
		s.error(w, r, err)
		return
	}
	out := struct {
		Items []ForwarderView `json:"items"`
	}{Items: []ForwarderView{}}
	for _, f := range fs {
		v := forwarderView(f)
		st, err := fw.Status(r.Context(), org, f.Name)
		if err != nil {
			s.error(w, r, err)
			return
		}
		v.Status = statusView(st)
		out.Items = append(out.Items, v)
	}
	writeJSON(w, http.StatusOK, out)
}

func (s *Server) getForwarder(w http.ResponseWriter, r *http.Request) {
	fw, org, err := s.forwarding(r)
	if err != nil {
		s.error(w, r, err)
		return
	}
	f, err := fw.Get(r.Context(), org, r.PathValue("name"))
	if err != nil {
		s.error(w, r, err)
		return
	}
	s.writeForwarder(w, r, http.StatusOK, f)
}

// putForwarder replaces a forwarder (PUT), or applies a JSON merge patch
// (RFC 7396) to its current view (PATCH).
func (s *Server) putForwarder(w http.ResponseWriter, r *http.Request) {
	fw, org, err := s.forwarding(r)
	if err != nil {
		s.error(w, r, err)
		return
	}
	name := r.PathValue("name")
	before, err := fw.Get(r.Context(), org, name)
	if err != nil {
		s.error(w, r, err)
		return
	}
	var in ForwarderView
	if r.Method == http.MethodPatch {
		err = s.patchView(r, before, &in)
	} else {
		err = decodeJSON(r, &in)
	}
	if err != nil {
		s.error(w, r, err)
		return
	}
	if in.Name != "" && in.Name != name {
		s.error(w, r, cairn.Errorf(cairn.EInvalid, "a forwarder cannot be renamed (body name %q, path %q)", in.Name, name))
		return
	}
	in.Name = name
	f, err := in.forwarder(org)
	if err != nil {
		s.error(w, r, err)
		return
	}
	after, err := fw.Replace(r.Context(), f)
	if err != nil {
		s.error(w, r, err)
		return
	}
	s.auditForwarder(r, org, "forwarder.update", name, before, after)
	s.writeForwarder(w, r, http.StatusOK, after)
}

func (s *Server) patchView(r *http.Request, cur *cairn.Forwarder, out *ForwarderView) error {
	var patch any
	if err := decodeJSON(r, &patch); err != nil {
		return err
	}
	if _, ok := patch.(map[string]any); !ok {
		return cairn.Errorf(cairn.EInvalid, "a merge patch must be a JSON object")
	}
	curJSON, err := json.Marshal(forwarderView(cur))
	if err != nil {
		return err
	}
	var target any
	if err := json.Unmarshal(curJSON, &target); err != nil {
		return err
	}
	merged, err := json.Marshal(mergePatch(target, patch))
	if err != nil {
		return err
	}
	dec := json.NewDecoder(bytes.NewReader(merged))
	dec.DisallowUnknownFields()
	if err := dec.Decode(out); err != nil {
		return cairn.Errorf(cairn.EInvalid, "patched forwarder: %v", err)
	}
	return nil
}

// mergePatch applies an RFC 7396 JSON merge patch.
func mergePatch(target, patch any) any {
	p, ok := patch.(map[string]any)
	if !ok {
		return patch
	}
	t, ok := target.(map[string]any)
	if !ok {
		t = map[string]any{}
	}
	for k, v := range p {
		if v == nil {
			delete(t, k)
		} else {
			t[k] = mergePatch(t[k], v)
		}
	}
	return t
}

func (s *Server) deleteForwarder(w http.ResponseWriter, r *http.Request) {
	fw, org, err := s.forwarding(r)
	if err != nil {
		s.error(w, r, err)
		return
	}
	name := r.PathValue("name")
	before, err := fw.Get(r.Context(), org, name)
	if err != nil {
		s.error(w, r, err)
		return
	}
	if err := fw.Delete(r.Context(), org, name); err != nil {
		s.error(w, r, err)
		return
	}
	s.auditForwarder(r, org, "forwarder.delete", name, before, nil)
	w.WriteHeader(http.StatusNoContent)
}

func (s *Server) pauseForwarder(w http.ResponseWriter, r *http.Request)  { s.setEnabled(w, r, false) }
func (s *Server) resumeForwarder(w http.ResponseWriter, r *http.Request) { s.setEnabled(w, r, true) }

func (s *Server) setEnabled(w http.ResponseWriter, r *http.Request, enabled bool) {
	fw, org, err := s.forwarding(r)
	if err != nil {
		s.error(w, r, err)
		return
	}
	name := r.PathValue("name")
	before, err := fw.Get(r.Context(), org, name)
	if err != nil {
		s.error(w, r, err)
		return
	}
	after, err := fw.SetEnabled(r.Context(), org, name, enabled)
	if err != nil {
		s.error(w, r, err)
		return
	}
	action := "forwarder.pause"
	if enabled {
		action = "forwarder.resume"
	}
	s.auditForwarder(r, org, action, name, before, after)
	s.writeForwarder(w, r, http.StatusOK, after)
}

func (s *Server) replayForwarder(w http.ResponseWriter, r *http.Request) {
	fw, org, err := s.forwarding(r)
	if err != nil {
		s.error(w, r, err)
		return
	}
	var in ReplayInput
	if err := decodeJSON(r, &in); err != nil {
		s.error(w, r, err)
		return
	}
	if (in.Seq == nil) == (in.Time == nil) {
		s.error(w, r, cairn.Errorf(cairn.EInvalid, "replay needs exactly one of seq and time"))
		return
	}
	from := cairn.ReplayFrom{Context: in.Context}
	if in.Seq != nil {
		from.Seq = *in.Seq
	} else {
		from.Time = *in.Time
	}
	name := r.PathValue("name")
	st, err := fw.Replay(r.Context(), org, name, from)
	if err != nil {
		s.error(w, r, err)
		return
	}
	pos := fmt.Sprintf("seq %d", from.Seq)
	if in.Time != nil {
		pos = from.Time.UTC().Format(time.RFC3339Nano)
	}
	if from.Context != "" {
		pos = from.Context + " " + pos
	}
	s.auditForwarder(r, org, "forwarder.replay", name, nil, nil, cairn.Change{Field: "replay_from", New: pos})
	writeJSON(w, http.StatusOK, statusView(st))
}

func (s *Server) testForwarder(w http.ResponseWriter, r *http.Request) {
	fw, org, err := s.forwarding(r)
	if err != nil {
		s.error(w, r, err)
		return
	}
	res, err := fw.Test(r.Context(), org, r.PathValue("name"))
	if err != nil {
		s.error(w, r, err)
		return
	}
	v := ForwarderTestView{OK: res.OK, Answer: res.Answer, TookMS: float64(res.Took.Microseconds()) / 1000}
	if !res.OK {
		v.Error = &ErrorDetail{Code: res.ErrorCode, Message: res.Error}
	}
	writeJSON(w, http.StatusOK, v)
}

func (s *Server) forwarderStatus(w http.ResponseWriter, r *http.Request) {
	fw, org, err := s.forwarding(r)
	if err != nil {
		s.error(w, r, err)
		return
	}
	st, err := fw.Status(r.Context(), org, r.PathValue("name"))
	if err != nil {
		s.error(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, statusView(st))
}
