package httpapi

import (
	"net/http"
	"strings"

	"github.com/cairn-audit/cairn"
	"github.com/cairn-audit/cairn/authz"
)

type policyInput struct {
	Name        string          `json:"name"`
	Description string          `json:"description"`
	Context     string          `json:"context"`
	Bindings    []cairn.Binding `json:"bindings"`
}

// checkPolicy validates a policy and that every principal it names exists.
func (s *Server) checkPolicy(r *http.Request, as cairn.AccessStore, p *cairn.Policy) error {
	if err := validName("policy", p.Name); err != nil {
		return err
	}
	if p.Context != cairn.AllContexts {
		if err := validName("context", p.Context); err != nil {
			return err
		}
	}
	if err := authz.ValidatePolicy(p); err != nil {
		return err
	}
	for _, b := range p.Bindings {
		for _, ref := range b.Principals {
			kind, name, _ := strings.Cut(ref, "/")
			if _, err := as.GetPrincipal(r.Context(), p.Org, kind, name); err != nil {
				if cairn.ErrorCode(err) == cairn.ENotFound {
					return cairn.Errorf(cairn.EInvalid, "principal %q does not exist", ref)
				}
				return err
			}
		}
	}
	return nil
}

func policyTarget(name string) *cairn.Target { return &cairn.Target{Type: "policy", ID: name} }

func (s *Server) savePolicy(w http.ResponseWriter, r *http.Request, in policyInput, create bool) {
	org := r.PathValue("org")
	as, err := s.access()
	if err != nil {
		s.error(w, r, err)
		return
	}
	p := &cairn.Policy{Org: org, Name: in.Name, Description: in.Description, Context: in.Context, Bindings: in.Bindings}
	if err := s.checkPolicy(r, as, p); err != nil {
		s.error(w, r, err)
		return
	}
	old, err := as.GetPolicy(r.Context(), org, p.Name)
	switch {
	case err == nil && create:
		s.error(w, r, cairn.Errorf(cairn.EConflict, "policy %q already exists", p.Name))
		return
	case err != nil && cairn.ErrorCode(err) != cairn.ENotFound:
		s.error(w, r, err)
		return
	case err != nil && !create:
		s.error(w, r, err)
		return
	}
	saved, err := as.PutPolicy(r.Context(), p)
	if err != nil {
		s.error(w, r, err)
		return
	}
	s.forgetGrants()
	action, kind, status := actionPolicy+"create", cairn.KindCreate, http.StatusCreated
	if old == nil {
		old = &cairn.Policy{}
	} else {
		action, kind, status = actionPolicy+"update", cairn.KindUpdate, http.StatusOK
	}
	var changes []cairn.Change
	changes = append(changes, change("description", old.Description, saved.Description)...)
	changes = append(changes, change("context", old.Context, saved.Context)...)
	changes = append(changes, change("bindings", old.Bindings, saved.Bindings)...)
	if err := s.recordChange(r, org, action, kind, policyTarget(p.Name), changes); err != nil {
		s.error(w, r, err)
		return
	}
	writeJSON(w, status, saved)
}

func (s *Server) createPolicy(w http.ResponseWriter, r *http.Request) {
	var in policyInput
	if err := decodeJSON(r, &in); err != nil {
		s.error(w, r, err)
		return
	}
	s.savePolicy(w, r, in, true)
}

func (s *Server) putPolicy(w http.ResponseWriter, r *http.Request) {
	var in policyInput
	if err := decodeJSON(r, &in); err != nil {
		s.error(w, r, err)
		return
	}
	if in.Name == "" {
		in.Name = r.PathValue("name")
	}
	if in.Name != r.PathValue("name") {
		s.error(w, r, cairn.Errorf(cairn.EInvalid, "the body names policy %q, the path %q", in.Name, r.PathValue("name")))
		return
	}
	s.savePolicy(w, r, in, false)
}

func (s *Server) listPolicies(w http.ResponseWriter, r *http.Request) {
	as, err := s.access()
	if err != nil {
		s.error(w, r, err)
		return
	}
	ps, err := as.ListPolicies(r.Context(), r.PathValue("org"))
	if err != nil {
		s.error(w, r, err)
		return
	}
	if ps == nil {
		ps = []*cairn.Policy{}
	}
	writeJSON(w, http.StatusOK, map[string]any{"items": ps})
}

func (s *Server) getPolicy(w http.ResponseWriter, r *http.Request) {
	as, err := s.access()
	if err != nil {
		s.error(w, r, err)
		return
	}
	p, err := as.GetPolicy(r.Context(), r.PathValue("org"), r.PathValue("name"))
	if err != nil {
		s.error(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, p)
}

func (s *Server) deletePolicy(w http.ResponseWriter, r *http.Request) {
	org, name := r.PathValue("org"), r.PathValue("name")
	as, err := s.access()
	if err != nil {
		s.error(w, r, err)
		return
	}
	old, err := as.GetPolicy(r.Context(), org, name)
	if err != nil {
		s.error(w, r, err)
		return
	}
	if err := as.DeletePolicy(r.Context(), org, name); err != nil {
		s.error(w, r, err)
		return
	}
	s.forgetGrants()
	if err := s.recordChange(r, org, actionPolicy+"delete", cairn.KindDelete, policyTarget(name),
		change("bindings", old.Bindings, nil)); err != nil {
		s.error(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// AccessReport lists who holds which permission on a context, and why.
type AccessReport struct {
	Org     string `json:"org"`
	Context string `json:"context"`
	// ServerAdmins is a reminder: server admin keys hold every permission
	// everywhere and are not listed.
	ServerAdmins string        `json:"server_admins"`
	Items        []authz.Entry `json:"items"`
}

func (s *Server) accessReport(w http.ResponseWriter, r *http.Request) {
	org, name := r.PathValue("org"), r.PathValue("ctx")
	as, err := s.access()
	if err != nil {
		s.error(w, r, err)
		return
	}
	if _, err := s.cfg.Store.GetContext(r.Context(), org, name); err != nil {
		s.error(w, r, err)
		return
	}
	ps, err := as.ListPrincipals(r.Context(), org, "")
	if err != nil {
		s.error(w, r, err)
		return
	}
	groupsOf := map[string][]string{}
	for _, p := range ps {
		if p.Kind == cairn.PrincipalGroup {
			members, err := as.GroupMembers(r.Context(), org, p.Name)
			if err != nil {
				s.error(w, r, err)
				return
			}
			for _, m := range members {
				groupsOf[m] = append(groupsOf[m], p.Name)
			}
		}
	}
	pols, err := as.ListPolicies(r.Context(), org)
	if err != nil {
		s.error(w, r, err)
		return
	}
	if err := s.recordRead(r, org, actionAccessRead, contextTarget(name), nil); err != nil {
		s.error(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, AccessReport{Org: org, Context: name,
		ServerAdmins: "server admin keys hold every permission on every context and are not listed",
		Items:        authz.Report(name, ps, groupsOf, pols)})
}
