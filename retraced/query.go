package retraced

import (
	"slices"
	"strings"
	"time"
	"unicode"

	"github.com/cairn-audit/cairn"
)

// Query is a parsed Retraced search query (the language of npm
// search-query-parser as Retraced configures it): whitespace-separated
// key:value terms, values quoted with "…", commas making lists, a
// repeated key adding values, and the remaining words free text.
type Query struct {
	Actions      []string // exact, or prefix with a trailing '*'
	CRUD         []string
	Received     Range
	Created      Range
	ActorIDs     []string
	ActorNames   []string
	ExternalIDs  []string
	Descriptions []string
	Locations    []string
	TargetIDs    []string
	TargetNames  []string
	TargetTypes  []string
	Fields       map[string][]string
	Text         []string
}

// Range is a half-open time range [From, To); a zero end is open.
type Range struct{ From, To time.Time }

func (r Range) set() bool { return !r.From.IsZero() || !r.To.IsZero() }

func (r Range) contains(t time.Time) bool {
	return (r.From.IsZero() || !t.Before(r.From)) && (r.To.IsZero() || t.Before(r.To))
}

// MaxQuery bounds the length of a query string.
const MaxQuery = 8 << 10

// ParseQuery parses a query string. Errors are EInvalid: an unparseable
// time in a range, or a query longer than MaxQuery. Terms with keys the
// language does not know are free text, as upstream.
func ParseQuery(s string) (*Query, error) {
	if len(s) > MaxQuery {
		return nil, cairn.Errorf(cairn.EInvalid, "query is longer than %d bytes", MaxQuery)
	}
	q := &Query{}
	for _, tok := range tokenize(s) {
		key, val, ok := splitTerm(tok)
		if !ok {
			q.Text = append(q.Text, strings.Fields(unquote(tok))...)
			continue
		}
		vals := splitList(val)
		switch {
		case key == "action":
			q.Actions = append(q.Actions, vals...)
		case key == "crud":
			q.CRUD = append(q.CRUD, vals...)
		case key == "received", key == "created":
			r, err := parseRange(key, val)
			if err != nil {
				return nil, err
			}
			if key == "received" {
				q.Received = r
			} else {
				q.Created = r
			}
		case key == "actor.id":
			q.ActorIDs = append(q.ActorIDs, vals...)
		case key == "actor.name":
			q.ActorNames = append(q.ActorNames, vals...)
		case key == "external_id":
			q.ExternalIDs = append(q.ExternalIDs, vals...)
		case key == "description":
			q.Descriptions = append(q.Descriptions, vals...)
		case key == "location":
			q.Locations = append(q.Locations, vals...)
		case key == "target.id":
			q.TargetIDs = append(q.TargetIDs, vals...)
		case key == "target.name":
			q.TargetNames = append(q.TargetNames, vals...)
		case key == "target.type":
			q.TargetTypes = append(q.TargetTypes, vals...)
		case strings.HasPrefix(key, "fields.") && len(key) > len("fields."):
			if q.Fields == nil {
				q.Fields = map[string][]string{}
			}
			k := key[len("fields."):]
			q.Fields[k] = append(q.Fields[k], vals...)
		default:
			q.Text = append(q.Text, strings.Fields(unquote(tok))...)
		}
	}
	return q, nil
}

// tokenize splits on whitespace outside double quotes.
func tokenize(s string) []string {
	var toks []string
	var b strings.Builder
	quoted := false
	for _, r := range s {
		switch {
		case r == '"':
			quoted = !quoted
			b.WriteRune(r)
		case unicode.IsSpace(r) && !quoted:
			if b.Len() > 0 {
				toks = append(toks, b.String())
				b.Reset()
			}
		default:
			b.WriteRune(r)
		}
	}
	if b.Len() > 0 {
		toks = append(toks, b.String())
	}
	return toks
}

// splitTerm splits key:value where the key is unquoted.
func splitTerm(tok string) (string, string, bool) {
	i := strings.IndexByte(tok, ':')
	if i <= 0 || strings.ContainsRune(tok[:i], '"') {
		return "", "", false
	}
	return strings.ToLower(tok[:i]), tok[i+1:], true
}

// splitList splits a value on commas outside quotes and unquotes each.
func splitList(v string) []string {
	var out []string
	var b strings.Builder
	quoted := false
	flush := func() {
		if s := b.String(); s != "" {
			out = append(out, s)
		}
		b.Reset()
	}
	for _, r := range v {
		switch {
		case r == '"':
			quoted = !quoted
		case r == ',' && !quoted:
			flush()
		default:
			b.WriteRune(r)
		}
	}
	flush()
	return out
}

func unquote(s string) string { return strings.ReplaceAll(s, `"`, "") }

// parseRange reads A,B with either end optional ("A," and ",B" are open).
func parseRange(key, v string) (Range, error) {
	v = unquote(v)
	a, b, _ := strings.Cut(v, ",")
	var r Range
	var err error
	bad := cairn.Errorf(cairn.EInvalid, "%s: expected a time range start,end (ISO 8601; either end may be empty)", key)
	if a != "" {
		if r.From, err = parseTime(a); err != nil {
			return r, bad
		}
	}
	if b != "" {
		if r.To, err = parseTime(b); err != nil {
			return r, bad
		}
	}
	if !r.set() {
		return r, bad
	}
	return r, nil
}

// Filter is the part of the query the store can apply: single exact
// values and the created range. Match re-checks everything.
func (q *Query) Filter() cairn.Filter {
	var f cairn.Filter
	if len(q.Actions) == 1 {
		if p, ok := strings.CutSuffix(q.Actions[0], "*"); ok {
			if !strings.Contains(p, "*") {
				f.ActionPrefix = p
			}
		} else {
			f.Action = q.Actions[0]
		}
	}
	if len(q.CRUD) == 1 {
		f.Kind = kindOf(q.CRUD[0])
	}
	if len(q.ActorIDs) == 1 {
		f.ActorID = q.ActorIDs[0]
	}
	if len(q.TargetIDs) == 1 {
		f.TargetID = q.TargetIDs[0]
	}
	if len(q.TargetTypes) == 1 {
		f.TargetType = q.TargetTypes[0]
	}
	f.Since, f.Until = q.Created.From, q.Created.To
	return f
}

// Match reports whether an event satisfies every term.
func (q *Query) Match(e *cairn.Event) bool {
	n := nodeOf(e)
	str := func(p *string) string {
		if p == nil {
			return ""
		}
		return *p
	}
	if len(q.Actions) > 0 && !slices.ContainsFunc(q.Actions, func(a string) bool {
		if p, ok := strings.CutSuffix(a, "*"); ok {
			return strings.HasPrefix(e.Action, p)
		}
		return a == e.Action
	}) {
		return false
	}
	if len(q.CRUD) > 0 && !slices.Contains(q.CRUD, str(n.CRUD)) {
		return false
	}
	if q.Received.set() && !q.Received.contains(e.ReceivedTime) {
		return false
	}
	if q.Created.set() && !q.Created.contains(e.EventTime) {
		return false
	}
	checks := []struct {
		want  []string
		got   string
		words bool
	}{
		{q.ActorIDs, str(n.Actor.ID), false},
		{q.ExternalIDs, e.ExternalID, false},
		{q.TargetIDs, str(n.Target.ID), false},
		{q.TargetTypes, str(n.Target.Type), false},
		{q.ActorNames, str(n.Actor.Name), true},
		{q.Descriptions, e.Description, true},
		{q.TargetNames, str(n.Target.Name), true},
		{q.Locations, location(e), true},
	}
	for _, c := range checks {
		if len(c.want) == 0 {
			continue
		}
		if !slices.ContainsFunc(c.want, func(w string) bool {
			if c.words {
				return containsWords(c.got, w)
			}
			return w == c.got
		}) {
			return false
		}
	}
	for k, vals := range q.Fields {
		v, ok := e.Fields[k]
		if !ok || !slices.Contains(vals, v) {
			return false
		}
	}
	if len(q.Text) > 0 {
		hay := []string{e.Action, e.Description, e.Title, e.ExternalID, str(n.Actor.ID), str(n.Actor.Name),
			str(n.Target.ID), str(n.Target.Name), str(n.Target.Type), str(n.Group.Name)}
		for _, v := range e.Fields {
			hay = append(hay, v)
		}
		all := strings.ToLower(strings.Join(hay, "\x00"))
		for _, w := range q.Text {
			if !strings.Contains(all, strings.ToLower(w)) {
				return false
			}
		}
	}
	return true
}

func location(e *cairn.Event) string {
	if e.Source == nil {
		return ""
	}
	return e.Source.Location
}

// containsWords reports whether every word of want appears in got, case
// folded (Retraced's full-text terms).
func containsWords(got, want string) bool {
	g := strings.ToLower(got)
	words := strings.Fields(strings.ToLower(want))
	if len(words) == 0 {
		return false
	}
	for _, w := range words {
		if !strings.Contains(g, w) {
			return false
		}
	}
	return true
}
