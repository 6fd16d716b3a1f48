package httpapi

import (
	"encoding/json"
	"log/slog"
	"net/http"
	"reflect"
	"strings"

	"github.com/cairn-audit/cairn"
	"github.com/cairn-audit/cairn/ingest"
)

// Actions recorded in the built-in context. Forwarder changes use the same
// Auditor with their own "forwarder.*" actions.
const (
	actionAuthFailed = "auth.failed"  // a bad, revoked or expired key
	actionLogin      = "auth.login"   // a user login, success or failure
	actionLogout     = "auth.logout"  // a session ended
	actionSearch     = "log.search"   // a search (the filter is recorded)
	actionTrail      = "log.trail"    // an object's trail
	actionEvent      = "log.event"    // one event read
	actionReceipt    = "log.receipt"  // one event's receipt
	actionExport     = "log.export"   // a whole log exported
	actionAccessRead = "access.read"  // an access report
	actionContext    = "context."     // + create, update
	actionOrg        = "org."         // + create
	actionKey        = "apikey."      // + create, revoke
	actionPolicy     = "policy."      // + create, update, delete
	actionMember     = "group.member" // + .add, .remove
)

func (s *Server) source(r *http.Request) *cairn.Source {
	return &cairn.Source{IP: sourceIP(r), UserAgent: truncate(r.UserAgent(), 256), RequestID: requestID(r)}
}

func truncate(v string, n int) string {
	if len(v) > n {
		return v[:n]
	}
	return v
}

// recordChange records an administrative change in org's built-in
// context and waits until it is committed: when the caller gets its
// answer, the record survives a crash.
func (s *Server) recordChange(r *http.Request, org, action, kind string, target *cairn.Target, changes []cairn.Change) error {
	var actor *cairn.Actor
	if c := callerOf(r); c != nil {
		actor = c.actor()
	}
	return s.cfg.Auditor.Record(r.Context(), org, ingest.AuditRecord{Action: action, Kind: kind,
		Actor: actor, Target: target, Changes: changes, Source: s.source(r)})
}

// recordRead records a read of a log without waiting for the commit (see
// ingest.Auditor.RecordAsync). An error means the read must be refused.
func (s *Server) recordRead(r *http.Request, org, action string, target *cairn.Target, fields map[string]string) error {
	return s.cfg.Auditor.RecordAsync(org, ingest.AuditRecord{Action: action, Kind: cairn.KindRead,
		Actor: callerOf(r).actor(), Target: target, Source: s.source(r), Fields: fields})
}

// recordAuthFailure records a failed authentication in the built-in
// context of the path's org, or of the default org when the path names
// none or an org that does not exist. Only the key's visible prefix is
// recorded, and only for keys in Cairn's format.
func (s *Server) recordAuthFailure(r *http.Request, err error) {
	org := r.PathValue("org")
	if org == "" || !s.orgExists(r, org) {
		org = cairn.DefaultOrg
	}
	actor := &cairn.Actor{Type: cairn.ActorAnonymous}
	_, secret, _ := strings.Cut(r.Header.Get("Authorization"), " ")
	if secret = strings.TrimSpace(secret); strings.HasPrefix(secret, KeyPrefix) {
		actor.Claims = map[string]any{"key_prefix": visiblePrefix(secret)}
	}
	if err := s.cfg.Auditor.RecordAsync(org, ingest.AuditRecord{Action: actionAuthFailed, Kind: cairn.KindLoginFailed,
		Outcome: cairn.OutcomeFailure, Reason: cairn.ErrorMessage(err), Actor: actor, Source: s.source(r),
		Target: &cairn.Target{Type: "route", ID: r.Method + " " + r.URL.Path}}); err != nil {
		s.cfg.Logger.LogAttrs(r.Context(), slog.LevelWarn, "failed authentication not recorded",
			slog.String("request_id", requestID(r)), slog.Any("err", err))
	}
}

func (s *Server) orgExists(r *http.Request, org string) bool {
	_, err := s.context(r, org, cairn.BuiltinContext)
	return err == nil
}

// change returns the change of one field, or nil when it did not change.
// Values are recorded in their JSON form; nil and empty values are absent.
func change(field string, old, new any) []cairn.Change {
	o, n := jsonValue(old), jsonValue(new)
	if reflect.DeepEqual(o, n) {
		return nil
	}
	return []cairn.Change{{Field: field, Old: o, New: n}}
}

// jsonValue converts v to the generic JSON types the leaf encoder takes;
// empty strings, slices and maps become nil.
func jsonValue(v any) any {
	b, err := json.Marshal(v)
	if err != nil {
		return nil
	}
	var out any
	if json.Unmarshal(b, &out) != nil {
		return nil
	}
	switch x := out.(type) {
	case string:
		if x == "" {
			return nil
		}
	case []any:
		if len(x) == 0 {
			return nil
		}
	case map[string]any:
		if len(x) == 0 {
			return nil
		}
	}
	return out
}

// filterFields is what a search or trail read: its query parameters.
func filterFields(r *http.Request) map[string]string {
	out := map[string]string{}
	for k, v := range r.URL.Query() {
		out["filter."+k] = strings.Join(v, ",")
	}
	return out
}

// auditLogin is the record of a login attempt.
func auditLogin(src *cairn.Source, actor *cairn.Actor, kind, outcome string) ingest.AuditRecord {
	return ingest.AuditRecord{Action: actionLogin, Kind: kind, Outcome: outcome, Actor: actor, Source: src,
		Target: &cairn.Target{Type: cairn.PrincipalUser, ID: actor.ID, Name: actor.Name}}
}
