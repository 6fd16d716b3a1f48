// Package authz is Cairn's access model: the permissions of an audit
// context and what they imply, the evaluation of an org's policies for a
// principal (and its groups), the access report, and password hashing for
// local users.
//
// It is pure: it never does I/O and never sees a secret other than a
// password handed to HashPassword or CheckPassword. The HTTP layer loads
// principals and policies from the store and asks this package.
package authz

import (
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/cairn-audit/cairn"
)

// Permissions of an audit context (Control Plane's set).
const (
	Create     = "create"
	Edit       = "edit"
	Manage     = "manage"
	ReadAudit  = "readAudit"
	View       = "view"
	WriteAudit = "writeAudit"
)

// Permissions lists every permission.
var Permissions = []string{Create, Edit, Manage, ReadAudit, View, WriteAudit}

// implies is the one table of implications: a grant of the key grants
// every permission in its value (itself included).
var implies = map[string][]string{
	Create:     {Create},
	Edit:       {Edit, View},
	Manage:     {Create, Edit, Manage, ReadAudit, View, WriteAudit},
	ReadAudit:  {ReadAudit, View},
	View:       {View},
	WriteAudit: {WriteAudit, View},
}

// Implies returns the permissions a grant of p gives, p included, sorted;
// nil for an unknown permission.
func Implies(p string) []string {
	out := slices.Clone(implies[p])
	slices.Sort(out)
	return out
}

// Valid reports whether p is a permission.
func Valid(p string) bool { _, ok := implies[p]; return ok }

// scopable are the permissions a binding limited to event groups may grant.
var scopable = map[string]bool{ReadAudit: true, View: true}

// ValidatePolicy checks a policy: a target context (a name or
// cairn.AllContexts), bindings with known permissions and principal refs
// of a known kind, and event-group limits only on readAudit/view
// bindings. EInvalid otherwise.
func ValidatePolicy(p *cairn.Policy) error {
	if p.Context == "" {
		return cairn.Errorf(cairn.EInvalid, "policy %q needs a context (a context name or %q for all)", p.Name, cairn.AllContexts)
	}
	for i, b := range p.Bindings {
		if len(b.Permissions) == 0 {
			return cairn.Errorf(cairn.EInvalid, "binding %d grants no permission", i)
		}
		for _, perm := range b.Permissions {
			if !Valid(perm) {
				return cairn.Errorf(cairn.EInvalid, "binding %d: unknown permission %q (want one of %s)", i, perm, strings.Join(Permissions, ", "))
			}
			if b.Scoped() && !scopable[perm] {
				return cairn.Errorf(cairn.EInvalid, "binding %d: only readAudit and view can be limited to event groups, not %q", i, perm)
			}
		}
		for _, ref := range b.Principals {
			if err := ValidateRef(ref); err != nil {
				return cairn.Errorf(cairn.EInvalid, "binding %d: %s", i, cairn.ErrorMessage(err))
			}
		}
		for _, g := range append(slices.Clone(b.EventGroups), b.GroupPrefixes...) {
			if strings.Trim(g, "/") == "" || len(g) > 256 {
				return cairn.Errorf(cairn.EInvalid, "binding %d: event group %q must be 1-256 characters and not only '/'", i, g)
			}
		}
	}
	return nil
}

// ValidateRef checks a "<kind>/<name>" principal reference.
func ValidateRef(ref string) error {
	kind, name, ok := strings.Cut(ref, "/")
	if !ok || name == "" || !slices.Contains(cairn.PrincipalKinds, kind) {
		return cairn.Errorf(cairn.EInvalid, "principal %q must be <kind>/<name> with kind one of %s", ref, strings.Join(cairn.PrincipalKinds, ", "))
	}
	return nil
}

// Grant is one permission a principal holds on a policy's target, and
// where it comes from.
type Grant struct {
	Permission string `json:"permission"`
	// Context is the policy's target: a context name or cairn.AllContexts.
	Context string `json:"context"`
	Policy  string `json:"policy"`
	// Via is the group ref through which the principal holds it; empty
	// when the policy names the principal itself.
	Via string `json:"via,omitempty"`
	// ImpliedBy is the granted permission that implies this one; empty
	// when the policy grants it by name.
	ImpliedBy string `json:"implied_by,omitempty"`
	// EventGroups and GroupPrefixes limit a readAudit or view grant.
	EventGroups   []string `json:"event_groups,omitempty"`
	GroupPrefixes []string `json:"group_prefixes,omitempty"`
}

// Scoped reports whether the grant is limited to event groups.
func (g Grant) Scoped() bool { return len(g.EventGroups) > 0 || len(g.GroupPrefixes) > 0 }

// Grants are what one principal holds in one org.
type Grants []Grant

// Evaluate returns the grants of a principal whose own ref is self and
// who belongs to groups (group names), under an org's policies.
func Evaluate(self string, groups []string, policies []*cairn.Policy) Grants {
	via := map[string]string{self: ""}
	for _, g := range groups {
		via[cairn.PrincipalGroup+"/"+g] = cairn.PrincipalGroup + "/" + g
	}
	var out Grants
	for _, p := range policies {
		for _, b := range p.Bindings {
			for _, ref := range b.Principals {
				v, ok := via[ref]
				if !ok {
					continue
				}
				for _, perm := range b.Permissions {
					for _, got := range implies[perm] {
						g := Grant{Permission: got, Context: p.Context, Policy: p.Name, Via: v,
							EventGroups: b.EventGroups, GroupPrefixes: b.GroupPrefixes}
						if got != perm {
							g.ImpliedBy = perm
						}
						out = append(out, g)
					}
				}
			}
		}
	}
	return out
}

// on returns the grants of perm that apply to context ctx: those on ctx
// itself and those on all contexts. ctx == cairn.AllContexts asks for
// org-wide grants only.
func (gs Grants) on(perm, ctx string) Grants {
	var out Grants
	for _, g := range gs {
		if g.Permission == perm && (g.Context == cairn.AllContexts || g.Context == ctx) {
			out = append(out, g)
		}
	}
	return out
}

// Has reports whether the grants hold perm on ctx, possibly limited to
// event groups.
func (gs Grants) Has(perm, ctx string) bool { return len(gs.on(perm, ctx)) > 0 }

// Unscoped reports whether the grants hold perm on ctx for every event.
func (gs Grants) Unscoped(perm, ctx string) bool {
	for _, g := range gs.on(perm, ctx) {
		if !g.Scoped() {
			return true
		}
	}
	return false
}

// HasAny reports whether the grants hold perm on at least one context.
func (gs Grants) HasAny(perm string) bool {
	for _, g := range gs {
		if g.Permission == perm {
			return true
		}
	}
	return false
}

// Scope returns what a holder of readAudit on ctx may read there: ok
// false if nothing, else a scope whose groups are empty when every event
// is readable.
func (gs Grants) Scope(ctx string) (cairn.ReadScope, bool) {
	on := gs.on(ReadAudit, ctx)
	if len(on) == 0 {
		return cairn.ReadScope{}, false
	}
	sc := cairn.ReadScope{Contexts: []string{ctx}}
	for _, g := range on {
		if !g.Scoped() {
			return sc, true
		}
		sc.Groups = appendNew(sc.Groups, g.EventGroups...)
		sc.GroupPrefixes = appendNew(sc.GroupPrefixes, g.GroupPrefixes...)
	}
	return sc, true
}

// SearchScopes returns the scopes an org-wide search of the holder is
// limited to: nil when the holder may read every event of every context,
// an empty slice when nothing. An event is readable when any scope admits
// it: one scope per policy target, unscoped if any grant on that target is.
func (gs Grants) SearchScopes() []cairn.ReadScope {
	if gs.Unscoped(ReadAudit, cairn.AllContexts) {
		return nil
	}
	type acc struct {
		unscoped         bool
		groups, prefixes []string
	}
	byCtx := map[string]*acc{}
	for _, g := range gs {
		if g.Permission != ReadAudit {
			continue
		}
		a := byCtx[g.Context]
		if a == nil {
			a = &acc{}
			byCtx[g.Context] = a
		}
		if !g.Scoped() {
			a.unscoped = true
			continue
		}
		a.groups = appendNew(a.groups, g.EventGroups...)
		a.prefixes = appendNew(a.prefixes, g.GroupPrefixes...)
	}
	out := []cairn.ReadScope{}
	for _, c := range slices.Sorted(maps.Keys(byCtx)) {
		a := byCtx[c]
		var sc cairn.ReadScope
		if c != cairn.AllContexts {
			sc.Contexts = []string{c}
		}
		if !a.unscoped {
			sc.Groups, sc.GroupPrefixes = a.groups, a.prefixes
		}
		out = append(out, sc)
	}
	return out
}

func appendNew(s []string, vs ...string) []string {
	for _, v := range vs {
		if !slices.Contains(s, v) {
			s = append(s, v)
		}
	}
	return s
}

// String describes a grant for messages and logs.
func (g Grant) String() string {
	s := fmt.Sprintf("%s on %s by policy %s", g.Permission, g.Context, g.Policy)
	if g.Via != "" {
		s += " via " + g.Via
	}
	return s
}
