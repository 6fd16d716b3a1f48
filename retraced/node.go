package retraced

import (
	"cmp"
	"slices"
	"strings"
	"time"

	"github.com/cairn-audit/cairn"
)

// MetaKey is the metadata member holding what Retraced has and the native
// event does not (whether crud, created, is_failure, is_anonymous were
// sent; actor href and fields). Retraced metadata is string → string, so
// an object under this key cannot be user data; a user metadata key of
// this name is refused.
const MetaKey = "$retraced"

// Extras is the value stored under MetaKey.
type Extras struct {
	CRUD        string            `json:"crud,omitempty"`
	Created     bool              `json:"created,omitempty"`
	IsFailure   *bool             `json:"is_failure,omitempty"`
	IsAnonymous *bool             `json:"is_anonymous,omitempty"`
	ActorHref   string            `json:"actor_href,omitempty"`
	ActorFields map[string]string `json:"actor_fields,omitempty"`
}

// Map returns the extras as the free-form metadata value Cairn stores.
func (x Extras) Map() map[string]any {
	m := map[string]any{}
	if x.CRUD != "" {
		m["crud"] = x.CRUD
	}
	if x.Created {
		m["created"] = true
	}
	if x.IsFailure != nil {
		m["is_failure"] = *x.IsFailure
	}
	if x.IsAnonymous != nil {
		m["is_anonymous"] = *x.IsAnonymous
	}
	if x.ActorHref != "" {
		m["actor_href"] = x.ActorHref
	}
	if len(x.ActorFields) > 0 {
		f := map[string]any{}
		for k, v := range x.ActorFields {
			f[k] = v
		}
		m["actor_fields"] = f
	}
	return m
}

// KindOf maps crud to Cairn's kind ("" → other).
func KindOf(crud string) string { return kindOf(crud) }

func kindOf(crud string) string {
	switch crud {
	case "c":
		return cairn.KindCreate
	case "r":
		return cairn.KindRead
	case "u":
		return cairn.KindUpdate
	case "d":
		return cairn.KindDelete
	}
	return cairn.KindOther
}

// HexID is an event id as Retraced shows it: 32 hex digits, no dashes.
func HexID(id string) string { return strings.ReplaceAll(id, "-", "") }

// Field is one entry of a key/value list.
type Field struct {
	Key   string `json:"key"`
	Value string `json:"value"`
}

// EventNode is an event as Retraced's GraphQL returns it. Members that
// were not sent are null (nil pointers).
type EventNode struct {
	ID            string      `json:"id"`
	Action        string      `json:"action"`
	Description   *string     `json:"description"`
	CRUD          *string     `json:"crud"`
	Received      *string     `json:"received"`
	Created       *string     `json:"created"`
	CanonicalTime *string     `json:"canonical_time"`
	IsFailure     *bool       `json:"is_failure"`
	IsAnonymous   *bool       `json:"is_anonymous"`
	SourceIP      *string     `json:"source_ip"`
	Country       *string     `json:"country"`
	LocSubdiv1    *string     `json:"loc_subdiv1"`
	LocSubdiv2    *string     `json:"loc_subdiv2"`
	Component     *string     `json:"component"`
	Version       *string     `json:"version"`
	Raw           *string     `json:"raw"`
	ExternalID    *string     `json:"external_id"`
	Fields        []Field     `json:"fields"`
	Metadata      []Field     `json:"metadata"`
	Group         GroupNode   `json:"group"`
	Actor         ActorNode   `json:"actor"`
	Target        TargetNode  `json:"target"`
	Display       DisplayNode `json:"display"`

	canonical time.Time
}

// GroupNode, ActorNode, TargetNode and DisplayNode are always objects.
type GroupNode struct {
	ID   *string `json:"id"`
	Name *string `json:"name"`
}

type ActorNode struct {
	ID     *string `json:"id"`
	Name   *string `json:"name"`
	Href   *string `json:"href"`
	Fields []Field `json:"fields"`
}

type TargetNode struct {
	ID     *string `json:"id"`
	Name   *string `json:"name"`
	Href   *string `json:"href"`
	Type   *string `json:"type"`
	Fields []Field `json:"fields"`
}

type DisplayNode struct {
	Markdown *string `json:"markdown"`
}

// timeLayout is Retraced's output format: seconds, no fraction.
const timeLayout = "2006-01-02T15:04:05Z"

func ptr[T comparable](v T) *T {
	var zero T
	if v == zero {
		return nil
	}
	return &v
}

func timePtr(t time.Time) *string { s := t.UTC().Format(timeLayout); return &s }

func fieldList(m map[string]string) []Field {
	out := make([]Field, 0, len(m))
	for k, v := range m {
		out = append(out, Field{Key: k, Value: v})
	}
	slices.SortFunc(out, func(a, b Field) int { return strings.Compare(a.Key, b.Key) })
	return out
}

func stringsOf(m map[string]any) map[string]string {
	out := map[string]string{}
	for k, v := range m {
		if s, ok := v.(string); ok {
			out[k] = s
		}
	}
	return out
}

// nodeOf renders a stored event. Native events (written without Retraced)
// render with their natural equivalents.
func nodeOf(e *cairn.Event) *EventNode {
	x, _ := e.Metadata[MetaKey].(map[string]any)
	n := &EventNode{
		ID: HexID(e.ID), Action: e.Action, Description: ptr(e.Description),
		Received: timePtr(e.ReceivedTime), CanonicalTime: timePtr(e.EventTime),
		Component: ptr(e.Component), Version: ptr(e.Version), ExternalID: ptr(e.ExternalID),
		Fields: fieldList(e.Fields), canonical: e.EventTime,
	}
	if e.Source != nil {
		n.SourceIP = ptr(e.Source.IP)
	}
	if x != nil {
		if c, _ := x["crud"].(string); c != "" {
			n.CRUD = &c
		}
		if b, ok := x["created"].(bool); ok && b {
			n.Created = timePtr(e.EventTime)
		}
		if b, ok := x["is_failure"].(bool); ok {
			n.IsFailure = &b
		}
		if b, ok := x["is_anonymous"].(bool); ok {
			n.IsAnonymous = &b
		}
	} else {
		// A native event: crud from its kind, the failure flag from its outcome.
		switch e.Kind {
		case cairn.KindCreate:
			n.CRUD = ptr("c")
		case cairn.KindRead, cairn.KindAccess:
			n.CRUD = ptr("r")
		case cairn.KindUpdate:
			n.CRUD = ptr("u")
		case cairn.KindDelete:
			n.CRUD = ptr("d")
		}
		f := e.Outcome == cairn.OutcomeFailure
		n.IsFailure = &f
	}
	meta := map[string]string{}
	for k, v := range e.Metadata {
		if s, ok := v.(string); ok && k != MetaKey {
			meta[k] = s
		}
	}
	n.Metadata = fieldList(meta)
	if g := e.Group; g != nil {
		n.Group = GroupNode{ID: ptr(g.ID), Name: ptr(g.Name)}
	}
	if a := e.Actor; a != nil && a.Type != cairn.ActorAnonymous || a != nil && a.ID != "" {
		n.Actor = ActorNode{ID: ptr(a.ID), Name: ptr(a.Name), Fields: []Field{}}
		if x != nil {
			href, _ := x["actor_href"].(string)
			n.Actor.Href = ptr(href)
			af, _ := x["actor_fields"].(map[string]any)
			n.Actor.Fields = fieldList(stringsOf(af))
		}
	}
	if t := e.Target; t != nil {
		n.Target = TargetNode{ID: ptr(t.ID), Name: ptr(t.Name), Href: ptr(t.Href), Type: ptr(t.Type),
			Fields: fieldList(stringsOf(t.Data))}
	}
	md := defaultMarkdown(n)
	n.Display.Markdown = &md
	return n
}

// defaultMarkdown is the display text when no display template applies
// (Cairn has no template admin API): "**actor** action **target**".
func defaultMarkdown(n *EventNode) string {
	s := func(ps ...*string) string {
		for _, p := range ps {
			if p != nil && *p != "" {
				return *p
			}
		}
		return ""
	}
	var b strings.Builder
	if a := s(n.Actor.Name, n.Actor.ID); a != "" {
		b.WriteString("**" + a + "** ")
	}
	b.WriteString(n.Action)
	if t := s(n.Target.Name, n.Target.ID); t != "" {
		b.WriteString(" **" + t + "**")
	}
	return b.String()
}

// sortKey orders events as Retraced does: by canonical time in
// milliseconds, then id.
type sortKey struct {
	ms int64
	id string
}

func (n *EventNode) key() sortKey { return sortKey{n.canonical.UnixMilli(), n.ID} }

func compareKeys(a, b sortKey) int {
	return cmp.Or(cmp.Compare(a.ms, b.ms), strings.Compare(a.id, b.id))
}
