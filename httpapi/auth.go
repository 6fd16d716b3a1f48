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
	prefix := secret
	if len(prefix) > len(KeyPrefix)+6 {
		prefix = prefix[:len(KeyPrefix)+6]
	}
	return &cairn.APIKey{
		ID: uuid.Must(uuid.NewV7()).String(), Org: org, Name: name, Prefix: prefix,
		Hash: sha256.Sum256([]byte(secret)), Admin: admin, CreatedAt: now.UTC(),
	}
}

// authenticate resolves the bearer key of r.
func (s *Server) authenticate(r *http.Request) (*cairn.APIKey, error) {
	h := r.Header.Get("Authorization")
	scheme, secret, ok := strings.Cut(h, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") || secret == "" {
		return nil, cairn.Errorf(cairn.EUnauthorized, "missing bearer API key (Authorization: Bearer <key>)")
	}
	return s.lookupKey(r.Context(), strings.TrimSpace(secret))
}

// lookupKey resolves a key secret through a short-lived cache.
func (s *Server) lookupKey(ctx context.Context, secret string) (*cairn.APIKey, error) {
	// Keys are looked up by the SHA-256 of the secret: the comparison an
	// attacker could time is between hashes of their own guesses.
	hash := sha256.Sum256([]byte(secret))
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
		s.mu.Lock()
		s.keys[hash] = c
		s.mu.Unlock()
	}
	k := c.key
	if !k.RevokedAt.IsZero() || (!k.ExpiresAt.IsZero() && now.After(k.ExpiresAt)) {
		return nil, cairn.Errorf(cairn.EUnauthorized, "API key is revoked or expired")
	}
	return k, nil
}

func principal(r *http.Request) *cairn.APIKey {
	k, _ := r.Context().Value(principalKey).(*cairn.APIKey)
	return k
}

// authorize checks that the caller may act in org. Until policies exist,
// an admin key may act everywhere and any other key only in its own org.
func (s *Server) authorize(r *http.Request, org string) error {
	k := principal(r)
	if k == nil {
		return cairn.Errorf(cairn.EUnauthorized, "not authenticated")
	}
	if k.Admin || k.Org == org {
		return nil
	}
	// Do not reveal whether another org exists.
	return cairn.Errorf(cairn.ENotFound, "org %q not found", org)
}

func (s *Server) requireAdmin(r *http.Request) error {
	if k := principal(r); k == nil || !k.Admin {
		return cairn.Errorf(cairn.EForbidden, "this needs a server admin key")
	}
	return nil
}
