package httpapi

import (
	"net/http"
	"time"

	"github.com/cairn-audit/cairn"
	"github.com/cairn-audit/cairn/authz"
	"github.com/google/uuid"
)

// PrincipalView is the JSON form of a principal (never its password hash).
type PrincipalView struct {
	ID          string    `json:"id"`
	Org         string    `json:"org"`
	Kind        string    `json:"kind"`
	Name        string    `json:"name"`
	Ref         string    `json:"ref"`
	Description string    `json:"description"`
	Email       string    `json:"email,omitempty"`
	HasPassword bool      `json:"has_password,omitempty"`
	Disabled    bool      `json:"disabled"`
	CreatedAt   time.Time `json:"created_at"`
	UpdatedAt   time.Time `json:"updated_at"`
	// Members are a group's members; Groups the groups of anyone else.
	Members []string `json:"members,omitempty"`
	Groups  []string `json:"groups,omitempty"`
}

func principalView(p *cairn.Principal) PrincipalView {
	return PrincipalView{ID: p.ID, Org: p.Org, Kind: p.Kind, Name: p.Name, Ref: p.Ref(), Description: p.Description,
		Email: p.Email, HasPassword: p.PasswordHash != "", Disabled: p.Disabled, CreatedAt: p.CreatedAt, UpdatedAt: p.UpdatedAt}
}

// principalChanges are the recorded changes from before to after; a new
// or changed password appears only as "***".
func principalChanges(before, after *cairn.Principal, password bool) []cairn.Change {
	var cs []cairn.Change
	cs = append(cs, change("description", before.Description, after.Description)...)
	cs = append(cs, change("email", before.Email, after.Email)...)
	if password {
		c := cairn.Change{Field: "password", New: "***"}
		if before.PasswordHash != "" {
			c.Old = "***"
		}
		cs = append(cs, c)
	}
	return append(cs, change("disabled", before.Disabled, after.Disabled)...)
}

func principalTarget(p *cairn.Principal) *cairn.Target {
	return &cairn.Target{Type: p.Kind, ID: p.ID, Name: p.Name}
}

// access returns the access store or EUnavailable.
func (s *Server) access() (cairn.AccessStore, error) {
	if s.cfg.Access == nil {
		return nil, cairn.Errorf(cairn.EUnavailable, "this server's store keeps no principals")
	}
	return s.cfg.Access, nil
}

type principalInput struct {
	Name        string `json:"name"`
	Description string `json:"description"`
	Email       string `json:"email"`
	Password    string `json:"password"`
	Disabled    bool   `json:"disabled"`
}

func (s *Server) createPrincipal(kind string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		org := r.PathValue("org")
		as, err := s.access()
		if err != nil {
			s.error(w, r, err)
			return
		}
		var in principalInput
		if err := decodeJSON(r, &in); err != nil {
			s.error(w, r, err)
			return
		}
		if err := validName(kind, in.Name); err != nil {
			s.error(w, r, err)
			return
		}
		if kind != cairn.PrincipalUser && (in.Email != "" || in.Password != "") {
			s.error(w, r, cairn.Errorf(cairn.EInvalid, "only users have an email and a password"))
			return
		}
		now := s.cfg.Now().UTC().Truncate(time.Microsecond)
		p := &cairn.Principal{ID: uuid.Must(uuid.NewV7()).String(), Org: org, Kind: kind, Name: in.Name,
			Description: in.Description, Email: in.Email, Disabled: in.Disabled, CreatedAt: now, UpdatedAt: now}
		if in.Password != "" {
			if p.PasswordHash, err = authz.HashPassword(in.Password); err != nil {
				s.error(w, r, err)
				return
			}
		}
		if err := as.CreatePrincipal(r.Context(), p); err != nil {
			s.error(w, r, err)
			return
		}
		changes := principalChanges(&cairn.Principal{}, p, in.Password != "")
		if err := s.recordChange(r, org, kind+".create", cairn.KindCreate, principalTarget(p), changes); err != nil {
			s.error(w, r, err)
			return
		}
		writeJSON(w, http.StatusCreated, principalView(p))
	}
}

func (s *Server) listPrincipals(kind string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		as, err := s.access()
		if err != nil {
			s.error(w, r, err)
			return
		}
		ps, err := as.ListPrincipals(r.Context(), r.PathValue("org"), kind)
		if err != nil {
			s.error(w, r, err)
			return
		}
		out := []PrincipalView{}
		for _, p := range ps {
			out = append(out, principalView(p))
		}
		writeJSON(w, http.StatusOK, map[string]any{"items": out})
	}
}

func (s *Server) getPrincipal(kind string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		org := r.PathValue("org")
		as, err := s.access()
		if err != nil {
			s.error(w, r, err)
			return
		}
		p, err := as.GetPrincipal(r.Context(), org, kind, r.PathValue("name"))
		if err != nil {
			s.error(w, r, err)
			return
		}
		v := principalView(p)
		if kind == cairn.PrincipalGroup {
			v.Members, err = as.GroupMembers(r.Context(), org, p.Name)
		} else {
			v.Groups, err = as.GroupsOf(r.Context(), org, p.Ref())
		}
		if err != nil {
			s.error(w, r, err)
			return
		}
		writeJSON(w, http.StatusOK, v)
	}
}

type principalPatch struct {
	Description *string `json:"description"`
	Email       *string `json:"email"`
	Password    *string `json:"password"`
	Disabled    *bool   `json:"disabled"`
}

func (s *Server) patchPrincipal(kind string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		org, name := r.PathValue("org"), r.PathValue("name")
		as, err := s.access()
		if err != nil {
			s.error(w, r, err)
			return
		}
		var in principalPatch
		if err := decodeJSON(r, &in); err != nil {
			s.error(w, r, err)
			return
		}
		if kind != cairn.PrincipalUser && (in.Email != nil || in.Password != nil) {
			s.error(w, r, cairn.Errorf(cairn.EInvalid, "only users have an email and a password"))
			return
		}
		before, err := as.GetPrincipal(r.Context(), org, kind, name)
		if err != nil {
			s.error(w, r, err)
			return
		}
		u := cairn.PrincipalUpdate{Description: in.Description, Email: in.Email, Disabled: in.Disabled}
		if in.Password != nil {
			h := ""
			if *in.Password != "" {
				if h, err = authz.HashPassword(*in.Password); err != nil {
					s.error(w, r, err)
					return
				}
			}
			u.PasswordHash = &h
		}
		p, err := as.UpdatePrincipal(r.Context(), org, kind, name, u)
		if err != nil {
			s.error(w, r, err)
			return
		}
		s.forgetKeys()
		changes := principalChanges(before, p, in.Password != nil)
		if err := s.recordChange(r, org, kind+".update", cairn.KindUpdate, principalTarget(p), changes); err != nil {
			s.error(w, r, err)
			return
		}
		writeJSON(w, http.StatusOK, principalView(p))
	}
}

func (s *Server) deletePrincipal(kind string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		org, name := r.PathValue("org"), r.PathValue("name")
		as, err := s.access()
		if err != nil {
			s.error(w, r, err)
			return
		}
		p, err := as.GetPrincipal(r.Context(), org, kind, name)
		if err != nil {
			s.error(w, r, err)
			return
		}
		if err := as.DeletePrincipal(r.Context(), org, kind, name, s.cfg.Now()); err != nil {
			s.error(w, r, err)
			return
		}
		s.forgetKeys()
		if err := s.recordChange(r, org, kind+".delete", cairn.KindDelete, principalTarget(p), nil); err != nil {
			s.error(w, r, err)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	}
}

func (s *Server) addMember(w http.ResponseWriter, r *http.Request) {
	org, group := r.PathValue("org"), r.PathValue("name")
	as, err := s.access()
	if err != nil {
		s.error(w, r, err)
		return
	}
	var in struct {
		Principal string `json:"principal"`
	}
	if err := decodeJSON(r, &in); err != nil {
		s.error(w, r, err)
		return
	}
	if err := authz.ValidateRef(in.Principal); err != nil {
		s.error(w, r, err)
		return
	}
	if err := as.AddGroupMember(r.Context(), org, group, in.Principal); err != nil {
		s.error(w, r, err)
		return
	}
	s.forgetGrants()
	if err := s.recordChange(r, org, actionMember+".add", cairn.KindUpdate, &cairn.Target{Type: cairn.PrincipalGroup, ID: group},
		[]cairn.Change{{Field: "members", New: in.Principal}}); err != nil {
		s.error(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (s *Server) removeMember(w http.ResponseWriter, r *http.Request) {
	org, group := r.PathValue("org"), r.PathValue("name")
	ref := r.PathValue("kind") + "/" + r.PathValue("member")
	as, err := s.access()
	if err != nil {
		s.error(w, r, err)
		return
	}
	if err := as.RemoveGroupMember(r.Context(), org, group, ref); err != nil {
		s.error(w, r, err)
		return
	}
	s.forgetGrants()
	if err := s.recordChange(r, org, actionMember+".remove", cairn.KindUpdate, &cairn.Target{Type: cairn.PrincipalGroup, ID: group},
		[]cairn.Change{{Field: "members", Old: ref}}); err != nil {
		s.error(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}
