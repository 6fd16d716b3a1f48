package format

import (
	"time"

	"github.com/cairn-audit/cairn"
)

// ECSVersion is the Elastic Common Schema version the mapping follows.
const ECSVersion = "8.11.0"

// ECSCategorize returns an event's ECS event.category and event.type
// (allowed values only): authentication/start for logins, iam with
// user + creation/change/deletion for principal changes, and
// configuration with creation/change/deletion/access otherwise.
func ECSCategorize(e *cairn.Event) (category, typ []string) {
	switch {
	case e.Kind == cairn.KindLogin || e.Kind == cairn.KindLoginFailed:
		return []string{"authentication"}, []string{"start"}
	case isPrincipalChange(e):
		return []string{"iam"}, []string{"user", ecsVerb(e.Kind)}
	}
	return []string{"configuration"}, []string{ecsVerb(e.Kind)}
}

func ecsVerb(kind string) string {
	switch kind {
	case cairn.KindCreate:
		return "creation"
	case cairn.KindUpdate:
		return "change"
	case cairn.KindDelete:
		return "deletion"
	case cairn.KindRead, cairn.KindAccess:
		return "access"
	}
	return "info"
}

// ECS maps an event onto an ECS document. Cairn fields without an ECS
// home go under the custom field set "cairn".
func ECS(e *cairn.Event) map[string]any {
	category, typ := ECSCategorize(e)
	outcome := "success"
	if e.Outcome == cairn.OutcomeFailure || e.Kind == cairn.KindLoginFailed {
		outcome = "failure"
	}
	ev := obj{
		"id": e.ID, "kind": "event", "category": category, "type": typ,
		"action": e.Action, "outcome": outcome, "sequence": e.Seq,
		"created": e.ReceivedTime.UTC().Format(time.RFC3339Nano),
		"dataset": "cairn.audit", "provider": e.Context, "module": "cairn",
	}
	ev.set("reason", e.Reason)
	d := obj{
		"@timestamp": e.EventTime.UTC().Format(time.RFC3339Nano),
		"ecs":        obj{"version": ECSVersion},
		"event":      ev,
	}
	d.set("message", firstNonEmpty(e.Description, e.Title))
	var relatedUsers, relatedIPs []string
	if a := e.Actor; a != nil {
		d.set("user", obj{}.set("id", a.ID).set("name", a.Name).set("email", a.Email))
		for _, s := range []string{a.ID, a.Name, a.Email} {
			if s != "" {
				relatedUsers = append(relatedUsers, s)
			}
		}
	}
	if isPrincipalChange(e) {
		u, _ := d["user"].(obj)
		if u == nil {
			u = obj{}
		}
		u.set("target", obj{}.set("id", e.Target.ID).set("name", e.Target.Name))
		d.set("user", u)
		if e.Target.ID != "" {
			relatedUsers = append(relatedUsers, e.Target.ID)
		}
	}
	if s := e.Source; s != nil {
		d.set("source", obj{}.set("ip", s.IP).set("geo", geoOf(s.Location)))
		d.set("user_agent", obj{}.set("original", s.UserAgent))
		if s.RequestID != "" {
			d["http"] = obj{"request": obj{"id": s.RequestID}}
		}
		if s.IP != "" {
			relatedIPs = append(relatedIPs, s.IP)
		}
	}
	if g := e.Group; g != nil {
		d.set("organization", obj{}.set("id", g.ID).set("name", g.Name))
	}
	d.set("related", obj{}.set("user", relatedUsers).set("ip", relatedIPs))
	d.set("labels", e.Fields)
	if e.Component != "" || e.Version != "" {
		d.set("service", obj{}.set("name", e.Component).set("version", e.Version))
	}
	c := obj{"org": e.Org, "context": e.Context, "seq": e.Seq, "kind": e.Kind}
	c.set("title", e.Title)
	c.set("external_id", e.ExternalID)
	c.set("changes", e.Changes)
	c.set("metadata", e.Metadata)
	if a := e.Actor; a != nil {
		c.set("actor", obj{}.set("type", a.Type).set("claims", a.Claims))
	}
	if t := e.Target; t != nil {
		c.set("target", obj{}.set("type", t.Type).set("id", t.ID).set("name", t.Name).set("href", t.Href).set("data", t.Data))
	}
	d["cairn"] = c
	return d
}

func geoOf(loc string) obj {
	if loc == "" {
		return nil
	}
	return obj{"name": loc}
}
