package nats

import (
	"strings"

	"github.com/cairn-audit/cairn"
)

// DefaultSubject is the subject template when none is set.
const DefaultSubject = "audit.{context}.{action}"

// maxTemplate bounds a subject template.
const maxTemplate = 256

// placeholders are the event fields a subject template may use.
var placeholders = map[string]func(e *cairn.Event) string{
	"org":     func(e *cairn.Event) string { return e.Org },
	"context": func(e *cairn.Event) string { return e.Context },
	"action":  func(e *cairn.Event) string { return e.Action },
	"kind":    func(e *cairn.Event) string { return e.Kind },
	"outcome": func(e *cairn.Event) string { return e.Outcome },
	"target_type": func(e *cairn.Event) string {
		if e.Target == nil {
			return ""
		}
		return e.Target.Type
	},
	"actor_type": func(e *cairn.Event) string {
		if e.Actor == nil {
			return ""
		}
		return e.Actor.Type
	},
	"group": func(e *cairn.Event) string {
		if e.Group == nil {
			return ""
		}
		return e.Group.ID
	},
}

// Template is a parsed subject template: dot-separated tokens, each a
// literal or one placeholder in braces ({org}, {context}, {action},
// {kind}, {outcome}, {target_type}, {actor_type}, {group}).
type Template struct {
	tokens []token
}

type token struct {
	literal string
	field   string // placeholder name, or "" for a literal
}

// ParseTemplate parses a subject template. Literal tokens may hold
// printable ASCII except the wildcards "*" and ">", braces and spaces.
// Errors: EInvalid.
func ParseTemplate(s string) (*Template, error) {
	if s == "" {
		s = DefaultSubject
	}
	if len(s) > maxTemplate {
		return nil, cairn.Errorf(cairn.EInvalid, "nats subject template is longer than %d bytes", maxTemplate)
	}
	t := &Template{}
	for _, part := range strings.Split(s, ".") {
		if name, ok := strings.CutPrefix(part, "{"); ok {
			name, ok = strings.CutSuffix(name, "}")
			if !ok || placeholders[name] == nil {
				return nil, cairn.Errorf(cairn.EInvalid, "nats subject template %q: unknown placeholder %q (want {org}, {context}, {action}, {kind}, {outcome}, {target_type}, {actor_type} or {group})", s, part)
			}
			t.tokens = append(t.tokens, token{field: name})
			continue
		}
		if part == "" {
			return nil, cairn.Errorf(cairn.EInvalid, "nats subject template %q has an empty token", s)
		}
		for i := 0; i < len(part); i++ {
			if c := part[i]; c <= ' ' || c > '~' || c == '*' || c == '>' || c == '{' || c == '}' {
				return nil, cairn.Errorf(cairn.EInvalid, "nats subject template %q: token %q holds a character a subject cannot", s, part)
			}
		}
		t.tokens = append(t.tokens, token{literal: part})
	}
	return t, nil
}

// Subject returns the subject of an event. The action's dot-separated
// segments become tokens (so "audit.app.user.>" matches every user.*
// action); every other value is one token. Characters outside
// [A-Za-z0-9_-] become "_", and an empty value or segment is "_", so the
// subject is always a valid publish subject.
func (t *Template) Subject(e *cairn.Event) string {
	var b strings.Builder
	for i, tk := range t.tokens {
		if i > 0 {
			b.WriteByte('.')
		}
		switch {
		case tk.field == "":
			b.WriteString(tk.literal)
		case tk.field == "action":
			for j, seg := range strings.Split(e.Action, ".") {
				if j > 0 {
					b.WriteByte('.')
				}
				sanitize(&b, seg)
			}
		default:
			sanitize(&b, placeholders[tk.field](e))
		}
	}
	return b.String()
}

func sanitize(b *strings.Builder, s string) {
	if s == "" {
		b.WriteByte('_')
		return
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-' {
			b.WriteByte(c)
		} else {
			b.WriteByte('_')
		}
	}
}
