package cairn

import (
	"context"
	"time"
)

// Principal kinds: who can call Cairn (DESIGN.md §1).
const (
	PrincipalUser           = "user"
	PrincipalServiceAccount = "serviceaccount"
	PrincipalGroup          = "group"
	PrincipalIdentity       = "identity"
)

// PrincipalKinds lists every principal kind.
var PrincipalKinds = []string{PrincipalUser, PrincipalServiceAccount, PrincipalGroup, PrincipalIdentity}

// Principal is a user, service account, group or workload identity of one
// org. A principal is named "<kind>/<name>" (its Ref) in policies and group
// memberships; names are unique per org and kind and never change.
type Principal struct {
	ID          string `json:"id"`
	Org         string `json:"org"`
	Kind        string `json:"kind"`
	Name        string `json:"name"`
	Description string `json:"description"`
	// Email is a user's address (informational).
	Email string `json:"email,omitempty"`
	// PasswordHash is a user's argon2id hash in PHC string form; empty
	// for other kinds and for users without a local password. Never
	// serialised.
	PasswordHash string    `json:"-"`
	Disabled     bool      `json:"disabled"`
	CreatedAt    time.Time `json:"created_at"`
	UpdatedAt    time.Time `json:"updated_at"`
}

// Ref is the principal's "<kind>/<name>".
func (p *Principal) Ref() string { return p.Kind + "/" + p.Name }

// PrincipalUpdate holds the editable fields of a principal; nil means
// unchanged.
type PrincipalUpdate struct {
	Description  *string
	Email        *string
	PasswordHash *string
	Disabled     *bool
}

// AllContexts is the Policy.Context that targets every context of the org,
// present and future.
const AllContexts = "*"

// Policy grants permissions on one context (or AllContexts) of an org to
// principals.
type Policy struct {
	Org         string    `json:"org"`
	Name        string    `json:"name"`
	Description string    `json:"description"`
	Context     string    `json:"context"`
	Bindings    []Binding `json:"bindings"`
	CreatedAt   time.Time `json:"created_at"`
	UpdatedAt   time.Time `json:"updated_at"`
}

// Binding grants Permissions to Principals ("<kind>/<name>" refs). A
// binding with EventGroups or GroupPrefixes limits what it grants to events
// of those groups: ids exactly, or group ids under a path prefix at '/'
// boundaries ("acme/finance" matches "acme/finance" and
// "acme/finance/emea"). Only readAudit (and view) can be so limited.
type Binding struct {
	Permissions   []string `json:"permissions"`
	Principals    []string `json:"principals"`
	EventGroups   []string `json:"event_groups,omitempty"`
	GroupPrefixes []string `json:"group_prefixes,omitempty"`
}

// Scoped reports whether the binding is limited to event groups.
func (b Binding) Scoped() bool { return len(b.EventGroups) > 0 || len(b.GroupPrefixes) > 0 }

// API key kinds.
const (
	KeyKindAPI     = "key"     // a long-lived key of a service account or identity
	KeyKindSession = "session" // a user's login session
)

// AccessStore keeps principals, group memberships, policies and the API
// keys of principals. Engines implement it beside Store. Every method is
// scoped to one org: ENotFound for a missing org or principal, EConflict
// for a duplicate name, EInvalid for bad arguments.
type AccessStore interface {
	// CreatePrincipal stores a new principal; ID and times are assigned
	// by the caller.
	CreatePrincipal(ctx context.Context, p *Principal) error
	// GetPrincipal returns a principal by kind and name.
	GetPrincipal(ctx context.Context, org, kind, name string) (*Principal, error)
	// GetPrincipalByID returns a principal by id, in any org (keys name
	// their principal by id; the caller checks the org).
	GetPrincipalByID(ctx context.Context, id string) (*Principal, error)
	// ListPrincipals returns an org's principals of one kind (all kinds
	// if kind is empty), ordered by kind and name.
	ListPrincipals(ctx context.Context, org, kind string) ([]*Principal, error)
	// UpdatePrincipal changes the editable fields of a principal.
	UpdatePrincipal(ctx context.Context, org, kind, name string, u PrincipalUpdate) (*Principal, error)
	// DeletePrincipal removes a principal, its group memberships (and, for
	// a group, its members), its references in policy bindings, and
	// revokes its API keys, in one transaction.
	DeletePrincipal(ctx context.Context, org, kind, name string, now time.Time) error

	// AddGroupMember adds a principal (not a group: groups do not nest)
	// to a group. Adding a member twice is not an error.
	AddGroupMember(ctx context.Context, org, group, memberRef string) error
	// RemoveGroupMember removes a member; ENotFound if it is not one.
	RemoveGroupMember(ctx context.Context, org, group, memberRef string) error
	// GroupMembers returns the refs of a group's members, sorted.
	GroupMembers(ctx context.Context, org, group string) ([]string, error)
	// GroupsOf returns the names of the groups a principal belongs to.
	GroupsOf(ctx context.Context, org, memberRef string) ([]string, error)

	// PutPolicy creates a policy, or replaces the one of that name
	// (keeping its creation time). The caller has validated it.
	PutPolicy(ctx context.Context, p *Policy) (*Policy, error)
	// GetPolicy returns a policy by name.
	GetPolicy(ctx context.Context, org, name string) (*Policy, error)
	// ListPolicies returns an org's policies by name.
	ListPolicies(ctx context.Context, org string) ([]*Policy, error)
	// DeletePolicy removes a policy.
	DeletePolicy(ctx context.Context, org, name string) error

	// ListAPIKeys returns the keys of an org, of one principal if
	// principalID is not empty, newest first. Hashes are not returned.
	ListAPIKeys(ctx context.Context, org, principalID string) ([]*APIKey, error)
	// RevokeAPIKey marks a key revoked at now; revoking twice keeps the
	// first time. ENotFound if the org has no such key.
	RevokeAPIKey(ctx context.Context, org, id string, now time.Time) (*APIKey, error)
}
