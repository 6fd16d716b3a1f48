package httpapi

import (
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/cairn-audit/cairn"
	"github.com/cairn-audit/cairn/authz"
)

// APIKeyView is the JSON form of an API key or session: never its secret or
// hash, only the visible prefix that identifies it.
type APIKeyView struct {
	ID        string     `json:"id"`
	Org       string     `json:"org"`
	Name      string     `json:"name"`
	Prefix    string     `json:"prefix"`
	Kind      string     `json:"kind"`
	Principal string     `json:"principal,omitempty"` // "<kind>/<name>"
	Admin     bool       `json:"server_admin,omitempty"`
	State     string     `json:"state"` // active, expired or revoked
	CreatedAt time.Time  `json:"created_at"`
	ExpiresAt *time.Time `json:"expires_at"`
	RevokedAt *time.Time `json:"revoked_at"`
}

func (s *Server) keyView(k *cairn.APIKey, principal string) APIKeyView {
	v := APIKeyView{ID: k.ID, Org: k.Org, Name: k.Name, Prefix: k.Prefix, Kind: k.Kind, Principal: principal, Admin: k.Admin,
		State: "active", CreatedAt: k.CreatedAt, ExpiresAt: timePtr(k.ExpiresAt), RevokedAt: timePtr(k.RevokedAt)}
	switch {
	case !k.RevokedAt.IsZero():
		v.State = "revoked"
	case !k.ExpiresAt.IsZero() && s.cfg.Now().After(k.ExpiresAt):
		v.State = "expired"
	}
	return v
}

func keyTarget(k *cairn.APIKey) *cairn.Target {
	return &cairn.Target{Type: "apikey", ID: k.ID, Name: k.Name}
}

func (s *Server) listKeys(w http.ResponseWriter, r *http.Request) {
	org := r.PathValue("org")
	as, err := s.access()
	if err != nil {
		s.error(w, r, err)
		return
	}
	if err := onlyParams(r.URL.Query(), "principal"); err != nil {
		s.error(w, r, err)
		return
	}
	refs := map[string]string{} // principal id → ref
	ps, err := as.ListPrincipals(r.Context(), org, "")
	if err != nil {
		s.error(w, r, err)
		return
	}
	pid := ""
	want := r.URL.Query().Get("principal")
	for _, p := range ps {
		refs[p.ID] = p.Ref()
		if p.Ref() == want {
			pid = p.ID
		}
	}
	if want != "" && pid == "" {
		s.error(w, r, cairn.Errorf(cairn.ENotFound, "principal %q not found", want))
		return
	}
	keys, err := as.ListAPIKeys(r.Context(), org, pid)
	if err != nil {
		s.error(w, r, err)
		return
	}
	out := []APIKeyView{}
	for _, k := range keys {
		out = append(out, s.keyView(k, refs[k.PrincipalID]))
	}
	writeJSON(w, http.StatusOK, map[string]any{"items": out})
}

// NewKey is the response to a key creation: the secret, shown this once.
type NewKey struct {
	Key    APIKeyView `json:"key"`
	Secret string     `json:"secret"`
}

func (s *Server) createKey(w http.ResponseWriter, r *http.Request) {
	org := r.PathValue("org")
	as, err := s.access()
	if err != nil {
		s.error(w, r, err)
		return
	}
	var in struct {
		Principal string    `json:"principal"`
		Name      string    `json:"name"`
		ExpiresAt time.Time `json:"expires_at"`
		ExpiresIn string    `json:"expires_in"`
	}
	if err := decodeJSON(r, &in); err != nil {
		s.error(w, r, err)
		return
	}
	if err := validName("key", in.Name); err != nil {
		s.error(w, r, err)
		return
	}
	if err := authz.ValidateRef(in.Principal); err != nil {
		s.error(w, r, err)
		return
	}
	kind, name, _ := strings.Cut(in.Principal, "/")
	if kind != cairn.PrincipalServiceAccount && kind != cairn.PrincipalIdentity {
		s.error(w, r, cairn.Errorf(cairn.EInvalid, "API keys belong to service accounts and identities; users log in"))
		return
	}
	now := s.cfg.Now().UTC()
	expires := in.ExpiresAt
	if in.ExpiresIn != "" {
		d, err := time.ParseDuration(in.ExpiresIn)
		if err != nil || d <= 0 || !in.ExpiresAt.IsZero() {
			s.error(w, r, cairn.Errorf(cairn.EInvalid, "expires_in must be a positive duration such as 720h, and not given with expires_at"))
			return
		}
		expires = now.Add(d)
	}
	if !expires.IsZero() && !expires.After(now) {
		s.error(w, r, cairn.Errorf(cairn.EInvalid, "expires_at is in the past"))
		return
	}
	p, err := as.GetPrincipal(r.Context(), org, kind, name)
	if err != nil {
		s.error(w, r, err)
		return
	}
	secret, k := NewAPIKey(org, in.Name, false, now)
	k.PrincipalID, k.ExpiresAt = p.ID, expires.UTC()
	if err := s.cfg.Store.CreateAPIKey(r.Context(), k); err != nil {
		s.error(w, r, err)
		return
	}
	changes := []cairn.Change{{Field: "principal", New: p.Ref()}, {Field: "prefix", New: k.Prefix}, {Field: "secret", New: "***"}}
	changes = append(changes, change("expires_at", nil, timePtr(k.ExpiresAt))...)
	if err := s.recordChange(r, org, actionKey+"create", cairn.KindCreate, keyTarget(k), changes); err != nil {
		s.error(w, r, err)
		return
	}
	writeJSON(w, http.StatusCreated, NewKey{Key: s.keyView(k, p.Ref()), Secret: secret})
}

func (s *Server) revokeKey(w http.ResponseWriter, r *http.Request) {
	org := r.PathValue("org")
	as, err := s.access()
	if err != nil {
		s.error(w, r, err)
		return
	}
	k, err := as.RevokeAPIKey(r.Context(), org, r.PathValue("id"), s.cfg.Now())
	if err != nil {
		s.error(w, r, err)
		return
	}
	s.forgetKeys()
	if err := s.recordChange(r, org, actionKey+"revoke", cairn.KindUpdate, keyTarget(k),
		[]cairn.Change{{Field: "revoked_at", New: k.RevokedAt.Format(time.RFC3339Nano)}}); err != nil {
		s.error(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, s.keyView(k, ""))
}

// Session is the response to a login.
type Session struct {
	Token     string        `json:"token"`
	ExpiresAt time.Time     `json:"expires_at"`
	Principal PrincipalView `json:"principal"`
}

// login checks a local user's password and issues a session token (an API
// key of kind session, expiring after SessionTTL). Failures count against
// the source address like any failed authentication.
func (s *Server) login(w http.ResponseWriter, r *http.Request) {
	org := r.PathValue("org")
	ip := sourceIP(r)
	if wait := s.limiter.blocked(ip, s.cfg.Now()); wait > 0 {
		s.rateLimited(w, r, wait)
		return
	}
	as, err := s.access()
	if err != nil {
		s.error(w, r, err)
		return
	}
	var in struct {
		Username string `json:"username"`
		Password string `json:"password"`
	}
	if err := decodeJSON(r, &in); err != nil {
		s.error(w, r, err)
		return
	}
	u, err := as.GetPrincipal(r.Context(), org, cairn.PrincipalUser, in.Username)
	if err != nil && cairn.ErrorCode(err) != cairn.ENotFound {
		s.error(w, r, err)
		return
	}
	hash := ""
	if u != nil && !u.Disabled {
		hash = u.PasswordHash
	}
	// Always one argon2id computation, so unknown and disabled users take
	// as long as a wrong password.
	if !authz.CheckPassword(hash, in.Password) {
		s.limiter.fail(ip, s.cfg.Now())
		if s.orgExists(r, org) {
			actor := &cairn.Actor{Type: cairn.ActorUser, Name: truncate(in.Username, 256)}
			if u != nil {
				actor.ID = u.ID
			}
			if err := s.cfg.Auditor.RecordAsync(org, auditLogin(s.source(r), actor, cairn.KindLoginFailed, cairn.OutcomeFailure)); err != nil {
				s.cfg.Logger.LogAttrs(r.Context(), slog.LevelWarn, "failed login not recorded",
					slog.String("request_id", requestID(r)), slog.Any("err", err))
			}
		}
		s.error(w, r, cairn.Errorf(cairn.EUnauthorized, "wrong username or password"))
		return
	}
	now := s.cfg.Now().UTC()
	secret, k := NewAPIKey(org, "session", false, now)
	k.Kind, k.PrincipalID, k.ExpiresAt = cairn.KeyKindSession, u.ID, now.Add(s.cfg.SessionTTL)
	if err := s.cfg.Store.CreateAPIKey(r.Context(), k); err != nil {
		s.error(w, r, err)
		return
	}
	actor := &cairn.Actor{Type: cairn.ActorUser, ID: u.ID, Name: u.Name, Email: u.Email,
		Claims: map[string]any{"key_id": k.ID, "key_prefix": k.Prefix}}
	if err := s.cfg.Auditor.Record(r.Context(), org, auditLogin(s.source(r), actor, cairn.KindLogin, cairn.OutcomeSuccess)); err != nil {
		s.error(w, r, err)
		return
	}
	writeJSON(w, http.StatusCreated, Session{Token: secret, ExpiresAt: k.ExpiresAt, Principal: principalView(u)})
}

func (s *Server) logout(w http.ResponseWriter, r *http.Request) {
	c := callerOf(r)
	if c.key.Kind != cairn.KeyKindSession {
		s.error(w, r, cairn.Errorf(cairn.EInvalid, "only a session can log out; revoke an API key instead"))
		return
	}
	as, err := s.access()
	if err != nil {
		s.error(w, r, err)
		return
	}
	if _, err := as.RevokeAPIKey(r.Context(), c.key.Org, c.key.ID, s.cfg.Now()); err != nil {
		s.error(w, r, err)
		return
	}
	s.forgetKeys()
	if err := s.recordChange(r, c.key.Org, actionLogout, cairn.KindOther, keyTarget(c.key), nil); err != nil {
		s.error(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// Whoami describes the caller.
type Whoami struct {
	Org         string         `json:"org"`
	ServerAdmin bool           `json:"server_admin"`
	Principal   *PrincipalView `json:"principal"`
	Key         APIKeyView     `json:"key"`
}

func (s *Server) whoami(w http.ResponseWriter, r *http.Request) {
	c := callerOf(r)
	out := Whoami{Org: c.key.Org, ServerAdmin: c.admin(), Key: s.keyView(c.key, "")}
	if c.principal != nil {
		v := principalView(c.principal)
		out.Principal, out.Key.Principal = &v, v.Ref
	}
	writeJSON(w, http.StatusOK, out)
}
