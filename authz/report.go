package authz

import (
	"slices"

	"github.com/cairn-audit/cairn"
)

// Held is one permission a principal holds on a context, with every grant
// that gives it (direct or through a group, by name or implied).
type Held struct {
	Permission string  `json:"permission"`
	Grants     []Grant `json:"grants"`
}

// Entry is one principal's line in an access report.
type Entry struct {
	Principal   string `json:"principal"`
	Permissions []Held `json:"permissions"`
}

// Report lists, for context ctx, every principal that holds a permission
// there, each permission it holds and the grants that give it. groupsOf
// maps a principal ref to the names of its groups. Principals without any
// permission on ctx are left out; the order is the principals' order.
func Report(ctx string, principals []*cairn.Principal, groupsOf map[string][]string, policies []*cairn.Policy) []Entry {
	out := []Entry{}
	for _, p := range principals {
		ref := p.Ref()
		var groups []string
		if p.Kind != cairn.PrincipalGroup {
			groups = groupsOf[ref]
		}
		gs := Evaluate(ref, groups, policies)
		e := Entry{Principal: ref}
		for _, perm := range Permissions {
			if on := gs.on(perm, ctx); len(on) > 0 {
				e.Permissions = append(e.Permissions, Held{Permission: perm, Grants: slices.Clip(on)})
			}
		}
		if len(e.Permissions) > 0 {
			out = append(out, e)
		}
	}
	return out
}
