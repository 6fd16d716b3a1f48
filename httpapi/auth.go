package httpapi

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"net/http"
	"strings"
	"time"

	"github.com/cairn-audit/cairn"
	"github.com/cairn-audit/cairn/authz"
	"github.com/google/uuid"
)

// KeyPrefix starts every API key Cairn issues, so leaked keys are easy to
// recognise (secret scanners) and to tell apart from other tokens.
const KeyPrefix = "cairn_"

// NewAPIKey returns a new random secret and its stored form. The secret is
// shown once; only its SHA-256 is stored (a 256-bit random secret needs no
// slow KDF: there is nothing to brute-force).
func NewAPIKey(org, name string, admin bool, now time.Time) (string, *cairn.APIKey) {
	var b [32]byte
	rand.Read(b[:])
	secret := KeyPrefix + base64.RawURLEncoding.EncodeToString(b[:])
	return secret, KeyFromSecret(secret, org, name, admin, now)
}

// KeyFromSecret returns the stored form of a given secret (used for a
// bootstrap token supplied by the operator).
func KeyFromSecret(secret, org, name string, admin bool, now time.Time) *cairn.APIKey {
	return &cairn.APIKey{
		ID: uuid.Must(uuid.NewV7()).String(), Org: org, Name: name, Prefix: visiblePrefix(secret),
		Hash: sha256.Sum256([]byte(secret)), Admin: admin, CreatedAt: now.UTC(), Kind: cairn.KeyKindAPI,
	}
}

// visiblePrefix is the part of a secret shown to identify it: "cairn_"
// and six characters (36 of its 256 random bits).
func visiblePrefix(secret string) string {
	if len(secret) > len(KeyPrefix)+6 {
		return secret[:len(KeyPrefix)+6]
	}
	return secret
}

// caller is the authenticated principal of a request.
type caller struct {
	key *cairn.APIKey
	// principal is nil for a key of no principal (the bootstrap admin key).
	principal *cairn.Principal
	// grants are the principal's grants in the path's org (nil for admins
	// and routes without an org).
	grants authz.Grants
}

func (c *caller) admin() bool { return c.key.Admin }

// actor is how the caller appears in the built-in context.
func (c *caller) actor() *cairn.Actor {
	claims := map[string]any{"key_id": c.key.ID, "key_prefix": c.key.Prefix}
	if c.admin() {
		claims["server_admin"] = true
	}
	if c.principal == nil {
		return &cairn.Actor{Type: cairn.ActorAPIToken, ID: c.key.ID, Name: c.key.Name, Claims: claims}
	}
	p := c.principal
	a := &cairn.Actor{ID: p.ID, Name: p.Name, Claims: claims}
	switch p.Kind {
	case cairn.PrincipalUser:
		a.Type, a.Email = cairn.ActorUser, p.Email
	case cairn.PrincipalIdentity:
		a.Type = cairn.ActorWorkload
	default:
		a.Type = cairn.ActorServiceAccount
	}
	return a
}

// ref is the caller's principal ref, or "key/<name>" for a key of no
// principal.
func (c *caller) ref() string {
	if c.principal == nil {
		return "key/" + c.key.Name
	}
	return c.principal.Ref()
}

func callerOf(r *http.Request) *caller {
	c, _ := r.Context().Value(principalKey).(*caller)
	return c
}

// authenticate resolves the bearer key of r and its principal. Keys and
// their principals are cached for cacheTTL: a revoked or expired key, or
// a disabled or deleted principal, is refused at most that long after
// the change on another node, and at once on this one.
func (s *Server) authenticate(r *http.Request) (*caller, error) {
	h := r.Header.Get("Authorization")
	scheme, secret, ok := strings.Cut(h, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") || strings.TrimSpace(secret) == "" {
		return nil, cairn.Errorf(cairn.EUnauthorized, "missing bearer API key (Authorization: Bearer <key>)")
	}
	return s.lookupKey(r.Context(), strings.TrimSpace(secret))
}

// lookupKey resolves a key secret and its principal through a short-lived
// cache (every surface's authentication ends here).
func (s *Server) lookupKey(ctx context.Context, secret string) (*caller, error) {
	// Keys are looked up by the SHA-256 of the secret: the comparison an
	// attacker could time is between hashes of their own guesses, and the
	// index lookup never compares the secret itself.
	hash := sha256.Sum256([]byte(strings.TrimSpace(secret)))
	now := s.cfg.Now()
	s.mu.Lock()
	c, ok := s.keys[hash]
	s.mu.Unlock()
	if !ok || now.After(c.expires) {
		k, err := s.cfg.Store.LookupAPIKey(ctx, hash)
		if cairn.ErrorCode(err) == cairn.ENotFound {
			return nil, cairn.Errorf(cairn.EUnauthorized, "invalid API key")
		}
		if err != nil {
			return nil, err
		}
		c = cachedKey{key: k, expires: now.Add(cacheTTL)}
		if k.PrincipalID != "" && s.cfg.Access != nil {
			p, err := s.cfg.Access.GetPrincipalByID(ctx, k.PrincipalID)
			if err != nil && cairn.ErrorCode(err) != cairn.ENotFound {
				return nil, err
			}
			c.principal = p
		}
		s.mu.Lock()
		s.keys[hash] = c
		s.mu.Unlock()
	}
	k := c.key
	if !k.RevokedAt.IsZero() || (!k.ExpiresAt.IsZero() && now.After(k.ExpiresAt)) {
		return nil, cairn.Errorf(cairn.EUnauthorized, "API key is revoked or expired")
	}
	if k.PrincipalID != "" && (c.principal == nil || c.principal.Disabled || c.principal.Org != k.Org) {
		return nil, cairn.Errorf(cairn.EUnauthorized, "the key's principal is disabled or deleted")
	}
	return &caller{key: k, principal: c.principal}, nil
}

// forgetKeys drops cached keys after a revocation or a principal change on
// this node, so they take effect at once here.
func (s *Server) forgetKeys() {
	s.mu.Lock()
	clear(s.keys)
	clear(s.grants)
	s.mu.Unlock()
}

// forgetGrants drops cached grants after a policy or group change.
func (s *Server) forgetGrants() {
	s.mu.Lock()
	clear(s.grants)
	s.mu.Unlock()
}

type grantsKey struct{ principal, org string }

type cachedGrants struct {
	grants  authz.Grants
	expires time.Time
}

// loadGrants evaluates the org's policies for the caller (cached for
// cacheTTL, dropped at once on a local policy or group change).
func (s *Server) loadGrants(ctx context.Context, c *caller, org string) (authz.Grants, error) {
	if c.principal == nil || s.cfg.Access == nil {
		return nil, nil
	}
	k := grantsKey{c.principal.ID, org}
	now := s.cfg.Now()
	s.mu.Lock()
	cg, ok := s.grants[k]
	s.mu.Unlock()
	if ok && now.Before(cg.expires) {
		return cg.grants, nil
	}
	var groups []string
	if c.principal.Kind != cairn.PrincipalGroup {
		var err error
		if groups, err = s.cfg.Access.GroupsOf(ctx, org, c.principal.Ref()); err != nil {
			return nil, err
		}
	}
	pols, err := s.cfg.Access.ListPolicies(ctx, org)
	if err != nil {
		return nil, err
	}
	gs := authz.Evaluate(c.principal.Ref(), groups, pols)
	s.mu.Lock()
	s.grants[k] = cachedGrants{grants: gs, expires: now.Add(cacheTTL)}
	s.mu.Unlock()
	return gs, nil
}

// authorize applies a route's rule to an authenticated caller.
func (s *Server) authorize(r *http.Request, c *caller, ru rule) error {
	org := r.PathValue("org")
	if org != "" && !c.admin() && c.key.Org != org {
		// Do not reveal whether another org exists.
		return cairn.Errorf(cairn.ENotFound, "org %q not found", org)
	}
	if c.admin() || ru.access == authenticated {
		return nil
	}
	if ru.access == serverAdmin {
		return cairn.Errorf(cairn.EForbidden, "this needs a server admin key")
	}
	gs, err := s.loadGrants(r.Context(), c, org)
	if err != nil {
		return err
	}
	c.grants = gs
	var ok bool
	switch ru.access {
	case orgWide:
		ok = gs.Unscoped(ru.perm, cairn.AllContexts)
	case onContext:
		if ru.scoped {
			ok = gs.Has(ru.perm, r.PathValue("ctx"))
		} else {
			ok = gs.Unscoped(ru.perm, r.PathValue("ctx"))
		}
	case onAnyContext:
		ok = gs.HasAny(ru.perm)
	}
	if !ok {
		return cairn.Errorf(cairn.EForbidden, "this needs %s", ru)
	}
	return nil
}

// canRead reports what the caller may read in context ctx: ok false if
// nothing, else a scope (no groups: everything).
func (c *caller) canRead(ctx string) (cairn.ReadScope, bool) {
	if c.admin() {
		return cairn.ReadScope{}, true
	}
	return c.grants.Scope(ctx)
}

// searchScopes is Filter.Scopes for the caller.
func (c *caller) searchScopes() []cairn.ReadScope {
	if c.admin() {
		return nil
	}
	return c.grants.SearchScopes()
}

// can reports whether the caller holds perm on ctx (possibly scoped).
func (c *caller) can(perm, ctx string) bool { return c.admin() || c.grants.Has(perm, ctx) }
