package format

import (
	"strings"

	"github.com/cairn-audit/cairn"
)

// OCSFVersion is the OCSF schema version the mapping follows.
const OCSFVersion = "1.3.0"

// OCSF classes Cairn emits.
const (
	ClassAccountChange  = 3001 // category 3, Identity & Access Management
	ClassAuthentication = 3002
	ClassAPIActivity    = 6003 // category 6, Application Activity
)

// OCSFClass returns the OCSF class and activity of an event:
//
//   - login and login_failed: Authentication (3002), activity 1 Logon;
//   - create, update or delete of a principal (target type user,
//     serviceaccount, principal, account, api_key, api_token, identity or
//     member): Account Change (3001), activity 1 Create, 6 Delete, or for
//     an update 2 Enable, 3 Password Change, 5 Disable, 9 Lock, 12 Unlock
//     when the action's last segment says so, else 99 Other;
//   - everything else: API Activity (6003), activity 1 Create, 2 Read
//     (read and access), 3 Update, 4 Delete, 99 Other.
func OCSFClass(e *cairn.Event) (class, activity int) {
	switch {
	case e.Kind == cairn.KindLogin || e.Kind == cairn.KindLoginFailed:
		return ClassAuthentication, 1
	case isPrincipalChange(e):
		switch e.Kind {
		case cairn.KindCreate:
			return ClassAccountChange, 1
		case cairn.KindDelete:
			return ClassAccountChange, 6
		}
		verb := e.Action[strings.LastIndexAny(e.Action, ".:/")+1:]
		switch {
		case strings.Contains(verb, "password"):
			return ClassAccountChange, 3
		case strings.HasPrefix(verb, "unlock"):
			return ClassAccountChange, 12
		case strings.HasPrefix(verb, "lock"):
			return ClassAccountChange, 9
		case strings.HasPrefix(verb, "disable") || strings.HasPrefix(verb, "deactivate"):
			return ClassAccountChange, 5
		case strings.HasPrefix(verb, "enable") || strings.HasPrefix(verb, "activate"):
			return ClassAccountChange, 2
		}
		return ClassAccountChange, 99
	}
	switch e.Kind {
	case cairn.KindCreate:
		return ClassAPIActivity, 1
	case cairn.KindRead, cairn.KindAccess:
		return ClassAPIActivity, 2
	case cairn.KindUpdate:
		return ClassAPIActivity, 3
	case cairn.KindDelete:
		return ClassAPIActivity, 4
	}
	return ClassAPIActivity, 99
}

// ocsfUser is an OCSF User object for a Cairn actor.
func ocsfUser(a *cairn.Actor) obj {
	if a == nil {
		return nil
	}
	u := obj{}.set("uid", a.ID).set("name", a.Name).set("email_addr", a.Email)
	switch a.Type {
	case "":
	case cairn.ActorUser:
		u["type_id"] = 1
		u["type"] = "User"
	case cairn.ActorSystem:
		u["type_id"] = 3
		u["type"] = "System"
	default:
		u["type_id"] = 99
		u["type"] = a.Type
	}
	return u
}

// OCSF maps an event onto its OCSF class (see OCSFClass). Cairn data the
// class has no attribute for (changes, claims, target data, group,
// fields, metadata, org, context, seq) goes under "unmapped".
func OCSF(e *cairn.Event) map[string]any {
	class, activity := OCSFClass(e)
	failed := e.Outcome == cairn.OutcomeFailure || e.Kind == cairn.KindLoginFailed
	status, severity := 1, 1 // Success, Informational
	if failed {
		status, severity = 2, 3 // Failure, Medium
	}
	o := obj{
		"class_uid": class, "category_uid": class / 1000, "activity_id": activity,
		"type_uid": class*100 + activity, "severity_id": severity, "status_id": status,
		"time": ms(e),
	}
	o.set("status", map[int]string{1: "Success", 2: "Failure"}[status])
	o.set("status_detail", e.Reason)
	o.set("message", firstNonEmpty(e.Description, e.Title))
	meta := obj{
		"version": OCSFVersion,
		"product": obj{"name": Product, "vendor_name": Vendor, "version": Version},
		"uid":     e.ID, "log_name": e.Context, "sequence": e.Seq,
		"logged_time": e.ReceivedTime.UnixMilli(),
	}
	if e.Source != nil {
		meta.set("correlation_uid", e.Source.RequestID)
	}
	o["metadata"] = meta
	actor := obj{}.set("user", ocsfUser(e.Actor))
	if e.Component != "" {
		actor.set("app_name", e.Component)
	}
	if e.Source != nil {
		o.set("src_endpoint", obj{}.set("ip", e.Source.IP).set("location", locationOf(e.Source.Location)))
	}
	unmapped := obj{"cairn": obj{"org": e.Org, "context": e.Context, "seq": e.Seq, "id": e.ID, "action": e.Action, "kind": e.Kind}}
	unmapped.set("changes", e.Changes)
	unmapped.set("fields", e.Fields)
	unmapped.set("metadata", e.Metadata)
	unmapped.set("external_id", e.ExternalID)
	unmapped.set("version", e.Version)
	if e.Group != nil {
		unmapped.set("group", obj{}.set("id", e.Group.ID).set("name", e.Group.Name))
	}
	if e.Actor != nil {
		unmapped.set("actor_claims", e.Actor.Claims)
		unmapped.set("actor_type", e.Actor.Type)
	}
	if e.Target != nil {
		unmapped.set("target_href", e.Target.Href)
		unmapped.set("target_data", e.Target.Data)
	}
	var ua string
	if e.Source != nil {
		ua = e.Source.UserAgent
	}
	switch class {
	case ClassAuthentication:
		// The user is the account logging in: the actor.
		o.set("user", ocsfUser(e.Actor))
		if o["user"] == nil {
			o["user"] = obj{"name": "unknown"}
		}
		o.set("actor", actor)
		o.set("http_request", obj{}.set("user_agent", ua))
		if e.Target != nil {
			o.set("service", obj{}.set("name", e.Target.Name).set("uid", e.Target.ID))
		}
	case ClassAccountChange:
		// The user is the account changed: the target.
		o["user"] = obj{}.set("uid", e.Target.ID).set("name", e.Target.Name).set("type", e.Target.Type)
		o.set("actor", actor)
		o.set("http_request", obj{}.set("user_agent", ua))
	default:
		api := obj{"operation": e.Action}
		if e.Target != nil && e.Target.Type != "" {
			api["service"] = obj{"name": e.Target.Type}
		} else if e.Component != "" {
			api["service"] = obj{"name": e.Component}
		}
		if e.Source != nil && e.Source.RequestID != "" {
			api["request"] = obj{"uid": e.Source.RequestID}
		}
		o["api"] = api
		if len(actor) == 0 {
			actor = obj{"user": obj{"name": "unknown"}}
		}
		o["actor"] = actor
		if o["src_endpoint"] == nil {
			o["src_endpoint"] = obj{}
		}
		o.set("http_request", obj{}.set("user_agent", ua))
		if e.Target != nil {
			o.set("resources", []any{obj{}.set("type", e.Target.Type).set("uid", e.Target.ID).set("name", e.Target.Name)})
		}
	}
	o["unmapped"] = unmapped
	return o
}

func locationOf(s string) obj {
	if s == "" {
		return nil
	}
	return obj{"desc": s}
}

func firstNonEmpty(ss ...string) string {
	for _, s := range ss {
		if s != "" {
			return s
		}
	}
	return ""
}
