// Package retraced is Cairn's Retraced domain: the published event and its
// validation, Retraced's per-event hash, the search query language, the
// GraphQL schema and resolvers, and viewer/enterprise token state. httpapi
// mounts it under the configured base path (docs/compat.md).
//
// It never logs, and its errors never quote, event values or tokens. The
// Retraced hash it computes is a compatibility receipt only; Cairn's Merkle
// log is the integrity proof.
package retraced

import (
	"fmt"
	"net/netip"
	"strings"
	"time"

	"github.com/cairn-audit/cairn"
	"github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"
)

// Event is a validated Retraced event as published, with what the hash
// needs to know about the raw JSON (which members were present).
type Event struct {
	Action      string
	CRUD        string // c, r, u, d or "" (sent as "" or not at all)
	Group       *Group
	Actor       *Actor
	Target      *Target
	Created     time.Time // zero: not sent (or retraced-go's zero time)
	SourceIP    string
	Description string
	Component   string
	Version     string
	ExternalID  string
	IsAnonymous *bool
	IsFailure   *bool
	Fields      map[string]string
	Metadata    map[string]string

	hash hashInput
}

// Group is the customer an event belongs to.
type Group struct {
	ID   string `json:"id"`
	Name string `json:"name,omitempty"`
}

// Actor is who acted.
type Actor struct {
	ID     string            `json:"id"`
	Name   string            `json:"name,omitempty"`
	Href   string            `json:"href,omitempty"`
	Fields map[string]string `json:"fields,omitempty"`
}

// Target is the object acted on.
type Target struct {
	ID     string            `json:"id"`
	Name   string            `json:"name,omitempty"`
	Href   string            `json:"href,omitempty"`
	Type   string            `json:"type,omitempty"`
	Fields map[string]string `json:"fields,omitempty"`
}

// hashInput is the raw-JSON view the hash is defined on (reference §6.3:
// the JS server's rules applied to the request as received).
type hashInput struct {
	targetID, actorID, groupID string // "" when the object was absent or empty
	sourceIP                   string
	isFailure, isAnonymous     bool
	fields                     map[string]string
	fieldsPresent              bool
	externalID                 string
	metadata                   map[string]string
	metadataPresent            bool
}

// wire is the JSON shape; objects stay raw so that presence and emptiness
// can be told apart.
type wire struct {
	Action      *string        `json:"action"`
	CRUD        *string        `json:"crud"`
	Group       jsontext.Value `json:"group"`
	Actor       jsontext.Value `json:"actor"`
	Target      jsontext.Value `json:"target"`
	Created     *string        `json:"created"`
	SourceIP    *string        `json:"source_ip"`
	Description *string        `json:"description"`
	Component   *string        `json:"component"`
	Version     *string        `json:"version"`
	ExternalID  *string        `json:"external_id"`
	IsAnonymous *bool          `json:"is_anonymous"`
	IsFailure   *bool          `json:"is_failure"`
	Fields      jsontext.Value `json:"fields"`
	Metadata    jsontext.Value `json:"metadata"`
}

// Violation is one broken rule, in Retraced's error shape.
type Violation struct {
	Message   string `json:"message"`
	Field     string `json:"field"`
	Violation string `json:"violation"`
}

// ValidationError lists the violations of one event.
type ValidationError struct {
	Violations []Violation
}

func (e *ValidationError) Error() string {
	if len(e.Violations) == 0 {
		return "invalid event"
	}
	return e.Violations[0].Message
}

// MaxEvent is the largest raw event accepted.
const MaxEvent = 1 << 20

// ParseEvent decodes and validates one event. Errors are a
// *ValidationError (wrapped in a *cairn.Error with code EInvalid) or
// ETooLarge.
func ParseEvent(data []byte) (*Event, error) {
	if len(data) > MaxEvent {
		return nil, cairn.Errorf(cairn.ETooLarge, "event exceeds the %d-byte limit", MaxEvent)
	}
	var w wire
	if err := json.Unmarshal(data, &w, json.RejectUnknownMembers(true)); err != nil {
		return nil, invalid(decodeViolation(err))
	}
	return w.event()
}

func invalid(vs ...Violation) error {
	ve := &ValidationError{Violations: vs}
	return &cairn.Error{Code: cairn.EInvalid, Message: ve.Error(), Err: ve}
}

func violation(field, rule, msg string) Violation {
	return Violation{Message: fmt.Sprintf("%q %s", field, msg), Field: field, Violation: rule}
}

func decodeViolation(err error) Violation {
	var se *json.SemanticError
	var syn *jsontext.SyntacticError
	switch {
	case asErr(err, &se):
		field := strings.ReplaceAll(strings.TrimPrefix(string(se.JSONPointer), "/"), "/", ".")
		if isUnknown(se) {
			return violation(field, "object.allowUnknown", "is not allowed")
		}
		return violation(field, "type", "has the wrong type")
	case asErr(err, &syn):
		return Violation{Message: fmt.Sprintf("malformed JSON at byte offset %d", syn.ByteOffset), Field: "", Violation: "json"}
	}
	return Violation{Message: "malformed JSON", Violation: "json"}
}

// zeroTime is what retraced-go sends for an unset time.Time.
var zeroTime = time.Time{}

func (w *wire) event() (*Event, error) {
	var vs []Violation
	e := &Event{}
	str := func(p *string) string {
		if p == nil {
			return ""
		}
		return *p
	}
	e.Action = str(w.Action)
	if e.Action == "" {
		vs = append(vs, violation("action", "any.required", "is required"))
	}
	if w.CRUD == nil {
		vs = append(vs, violation("crud", "any.required", "is required"))
	} else {
		switch e.CRUD = *w.CRUD; e.CRUD {
		case "c", "r", "u", "d", "":
		default:
			vs = append(vs, violation("crud", "any.only", "must be one of [c, r, u, d]"))
		}
	}
	e.Description, e.Component, e.Version = str(w.Description), str(w.Component), str(w.Version)
	e.ExternalID = str(w.ExternalID)
	e.IsAnonymous, e.IsFailure = w.IsAnonymous, w.IsFailure
	e.hash.externalID = e.ExternalID
	e.hash.isFailure = w.IsFailure != nil && *w.IsFailure
	e.hash.isAnonymous = w.IsAnonymous != nil && *w.IsAnonymous

	if s := str(w.SourceIP); s != "" {
		if _, err := netip.ParseAddr(s); err != nil {
			vs = append(vs, violation("source_ip", "string.ip", "must be a valid ip address"))
		}
		e.SourceIP, e.hash.sourceIP = s, s
	}
	if s := str(w.Created); s != "" {
		t, err := parseTime(s)
		switch {
		case err != nil:
			vs = append(vs, violation("created", "date.format", "must be a valid ISO 8601 date"))
		case !t.Equal(zeroTime):
			e.Created = t
		}
	}

	var g Group
	if present, err := object(w.Group, &g); err != nil {
		vs = append(vs, violation("group", "object.base", err.Error()))
	} else if present {
		if g.ID == "" {
			vs = append(vs, violation("group.id", "any.required", "is required"))
		}
		e.Group, e.hash.groupID = &g, g.ID
	}
	var a Actor
	if present, err := object(w.Actor, &a); err != nil {
		vs = append(vs, violation("actor", "object.base", err.Error()))
	} else if present {
		if a.ID == "" {
			vs = append(vs, violation("actor.id", "any.required", "is required"))
		}
		e.Actor, e.hash.actorID = &a, a.ID
	}
	if e.Actor == nil && !e.hash.isAnonymous {
		vs = append(vs, violation("actor", "any.required", "is required unless is_anonymous is true"))
	}
	var t Target
	if present, err := object(w.Target, &t); err != nil {
		vs = append(vs, violation("target", "object.base", err.Error()))
	} else if present {
		if t.ID == "" {
			vs = append(vs, violation("target.id", "any.required", "is required"))
		}
		e.Target, e.hash.targetID = &t, t.ID
	}
	var err error
	if e.Fields, e.hash.fieldsPresent, err = stringMap(w.Fields); err != nil {
		vs = append(vs, violation("fields", "object.base", err.Error()))
	}
	e.hash.fields = e.Fields
	if e.Metadata, e.hash.metadataPresent, err = stringMap(w.Metadata); err != nil {
		vs = append(vs, violation("metadata", "object.base", err.Error()))
	}
	e.hash.metadata = e.Metadata
	if len(vs) > 0 {
		return nil, invalid(vs...)
	}
	return e, nil
}

// object decodes an optional object member strictly and reports whether it
// was present (null counts as absent). An empty object is present, so its
// missing id is a violation; only a valid, hence non-empty, object reaches
// the hash (lodash's _.isEmpty rule).
func object(v jsontext.Value, out any) (bool, error) {
	if len(v) == 0 || v.Kind() == 'n' {
		return false, nil
	}
	if v.Kind() != '{' {
		return false, fmt.Errorf("must be an object")
	}
	if err := json.Unmarshal(v, out, json.RejectUnknownMembers(true)); err != nil {
		var se *json.SemanticError
		if asErr(err, &se) && isUnknown(se) {
			return false, fmt.Errorf("has a member that is not allowed")
		}
		return false, fmt.Errorf("has a member of the wrong type")
	}
	return true, nil
}

// stringMap decodes fields or metadata: an object of strings. present is
// true for any object, empty or not (the hash's rule).
func stringMap(v jsontext.Value) (map[string]string, bool, error) {
	if len(v) == 0 || v.Kind() == 'n' {
		return nil, false, nil
	}
	m := map[string]string{}
	if v.Kind() != '{' || json.Unmarshal(v, &m) != nil {
		return nil, false, fmt.Errorf("must be an object of strings")
	}
	return m, true, nil
}

// parseTime accepts ISO 8601 as JavaScript's Date does for the forms
// clients send: RFC 3339 with or without fraction, and a bare date.
func parseTime(s string) (time.Time, error) {
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04:05.999999999", "2006-01-02T15:04", "2006-01-02"} {
		if t, err := time.Parse(layout, s); err == nil {
			return t.UTC(), nil
		}
	}
	return time.Time{}, fmt.Errorf("not an ISO 8601 time")
}
