package ingest

import (
	"cmp"
	"errors"
	"fmt"
	"time"
	"unicode/utf8"

	"github.com/cairn-audit/cairn"
)

// Length limits in bytes (see the package doc).
const (
	maxShort       = 256
	maxName        = 1 << 10
	maxLong        = 4 << 10
	maxDescription = 16 << 10
)

// Normalize builds the event to commit from a client's input: it assigns
// the server's fields (org, context, id, received time), applies the
// defaults (event_time = received, kind "other", outcome "success"),
// converts times to UTC, redacts (DefaultRedaction plus rules, which win
// for the same field) and validates against the package's limits.
//
// Normalize never modifies in or anything it points to. The returned event
// shares with in every map, slice and value that redaction left unchanged,
// so treat both as read-only afterwards.
//
// Client errors are *cairn.Error with code EInvalid naming the member;
// missing server arguments are an internal error.
func Normalize(in *Input, org, context, id string, received time.Time, rules []cairn.RedactionRule) (*cairn.Event, error) {
	if in == nil || org == "" || context == "" || id == "" || received.IsZero() {
		return nil, errors.New("ingest: normalize: input, org, context, id and received time are required")
	}
	e := &cairn.Event{
		ID:           id,
		Org:          org,
		Context:      context,
		EventTime:    in.EventTime.UTC(),
		ReceivedTime: received.UTC(),
		Action:       in.Action,
		Kind:         cmp.Or(in.Kind, cairn.KindOther),
		Outcome:      cmp.Or(in.Outcome, cairn.OutcomeSuccess),
		Reason:       in.Reason,
		Title:        in.Title,
		Description:  in.Description,
		Component:    in.Component,
		Version:      in.Version,
		ExternalID:   in.ExternalID,
	}
	if in.EventTime.IsZero() {
		e.EventTime = e.ReceivedTime
	}

	r := newRedactor(rules)
	if a := in.Actor; a != nil {
		claims, _ := r.object(a.Claims)
		if a.Type != "" || a.ID != "" || a.Name != "" || a.Email != "" || len(claims) > 0 {
			e.Actor = &cairn.Actor{Type: a.Type, ID: a.ID, Name: a.Name, Email: a.Email, Claims: nilIfEmpty(claims)}
		}
	}
	if t := in.Target; t != nil {
		data, _ := r.object(t.Data)
		if t.Type != "" || t.ID != "" || t.Name != "" || t.Href != "" || len(data) > 0 {
			e.Target = &cairn.Target{Type: t.Type, ID: t.ID, Name: t.Name, Href: t.Href, Data: nilIfEmpty(data)}
		}
	}
	if g := in.Group; g != nil && *g != (cairn.Group{}) {
		e.Group = &cairn.Group{ID: g.ID, Name: g.Name}
	}
	if s := in.Source; s != nil && *s != (cairn.Source{}) {
		c := *s
		e.Source = &c
	}
	if cs := r.changes(in.Changes); len(cs) > 0 {
		e.Changes = cs
	}
	if f, _ := r.stringMap(in.Fields); len(f) > 0 {
		e.Fields = f
	}
	if m, _ := r.object(in.Metadata); len(m) > 0 {
		e.Metadata = m
	}

	if err := validate(e); err != nil {
		return nil, publicError(err)
	}
	return e, nil
}

func nilIfEmpty(m map[string]any) map[string]any {
	if len(m) == 0 {
		return nil
	}
	return m
}

// validate checks the members of a normalised event against the limits.
// Free-form data is checked by Canonical (UTF-8, types, size).
func validate(e *cairn.Event) error {
	v := validator{}
	if e.Action == "" {
		return errorf("action: required")
	}
	v.line("action", e.Action, maxShort)
	switch e.Kind {
	case cairn.KindCreate, cairn.KindRead, cairn.KindUpdate, cairn.KindDelete,
		cairn.KindAccess, cairn.KindLogin, cairn.KindLoginFailed, cairn.KindOther:
	default:
		v.fail("kind", "must be one of create, read, update, delete, access, login, login_failed, other")
	}
	switch e.Outcome {
	case cairn.OutcomeSuccess, cairn.OutcomeFailure:
	default:
		v.fail("outcome", "must be success or failure")
	}
	v.text("reason", e.Reason, maxLong)
	if a := e.Actor; a != nil {
		switch a.Type {
		case "", cairn.ActorUser, cairn.ActorServiceAccount, cairn.ActorAPIToken,
			cairn.ActorSystem, cairn.ActorWorkload, cairn.ActorAnonymous:
		default:
			v.fail("actor.type", "must be one of user, serviceaccount, api_token, system, workload, anonymous")
		}
		v.line("actor.id", a.ID, maxName)
		v.line("actor.name", a.Name, maxName)
		v.line("actor.email", a.Email, maxName)
	}
	if t := e.Target; t != nil {
		v.line("target.type", t.Type, maxShort)
		v.line("target.id", t.ID, maxName)
		v.line("target.name", t.Name, maxName)
		v.line("target.href", t.Href, maxLong)
	}
	if g := e.Group; g != nil {
		v.line("group.id", g.ID, maxName)
		v.line("group.name", g.Name, maxName)
	}
	if s := e.Source; s != nil {
		v.line("source.ip", s.IP, maxShort)
		v.line("source.user_agent", s.UserAgent, maxLong)
		v.line("source.request_id", s.RequestID, maxName)
		v.line("source.location", s.Location, maxName)
	}
	v.line("title", e.Title, maxName)
	v.text("description", e.Description, maxDescription)
	v.line("component", e.Component, maxShort)
	v.line("version", e.Version, maxShort)
	v.line("external_id", e.ExternalID, maxName)
	if v.err != nil {
		return v.err
	}
	for i, c := range e.Changes {
		msg := "required"
		if c.Field != "" {
			msg = badString(c.Field, maxShort, false)
		}
		if msg != "" {
			return at(at(at(errorf("%s", msg), "field"), i), "changes")
		}
	}
	for k, s := range e.Fields {
		if msg := badString(k, maxShort, false); msg != "" {
			return errorf("fields: key %s", msg)
		}
		if msg := badString(s, maxLong, true); msg != "" {
			return at(at(errorf("%s", msg), k), "fields")
		}
	}
	if y := e.EventTime.Year(); y < 0 || y > 9999 {
		return errorf("event_time: year outside 0000-9999 in UTC")
	}
	if y := e.ReceivedTime.Year(); y < 0 || y > 9999 {
		return errorf("received_time: year outside 0000-9999 in UTC")
	}
	return nil
}

// validator records the first failed check. Paths are constants so that
// passing checks allocate nothing.
type validator struct{ err error }

func (v *validator) fail(path, msg string) {
	if v.err == nil {
		v.err = errorf("%s: %s", path, msg)
	}
}

// line checks a single-line string: no control characters at all.
func (v *validator) line(path, s string, max int) {
	if msg := badString(s, max, false); msg != "" {
		v.fail(path, msg)
	}
}

// text checks a string that may hold tab, CR and LF.
func (v *validator) text(path, s string, max int) {
	if msg := badString(s, max, true); msg != "" {
		v.fail(path, msg)
	}
}

// badString describes what is wrong with s, or returns "".
func badString(s string, max int, multiline bool) string {
	if len(s) > max {
		return fmt.Sprintf("longer than %d bytes", max)
	}
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c < 0x20 && !(multiline && (c == '\t' || c == '\n' || c == '\r')) || c == 0x7f {
				return "contains a control character"
			}
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			return "invalid UTF-8"
		case r >= 0x80 && r <= 0x9f:
			return "contains a control character"
		}
		i += size
	}
	return ""
}
