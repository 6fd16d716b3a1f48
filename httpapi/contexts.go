package httpapi

import (
	"encoding/base64"
	"net/http"
	"time"

	"github.com/cairn-audit/cairn"
	"github.com/cairn-audit/cairn/authz"
	"github.com/cairn-audit/cairn/ingest"
)

// ContextView is the JSON form of an audit context.
type ContextView struct {
	Org         string                `json:"org"`
	Name        string                `json:"name"`
	Description string                `json:"description"`
	Tags        map[string]string     `json:"tags"`
	Builtin     bool                  `json:"builtin"`
	Redaction   []cairn.RedactionRule `json:"redaction"`
	CreatedAt   time.Time             `json:"created_at"`
	UpdatedAt   time.Time             `json:"updated_at"`
	Size        int64                 `json:"size"`
	Root        string                `json:"root"`
	Origin      string                `json:"origin"`
	// Witnesses, WitnessQuorum and WitnessPolicy are the context's witness
	// configuration; WitnessStatus what Cairn last heard from each witness.
	Witnesses     []cairn.Witness `json:"witnesses"`
	WitnessQuorum int             `json:"witness_quorum"`
	WitnessPolicy string          `json:"witness_policy"`
	WitnessStatus *WitnessingView `json:"witnessing,omitempty"`
}

func (s *Server) view(c *cairn.Context) ContextView {
	origin, _ := s.cfg.Signer.Origin(c.Org, c.Name)
	return ContextView{Org: c.Org, Name: c.Name, Description: c.Description, Tags: c.Tags, Builtin: c.Builtin,
		Redaction: c.Redaction, CreatedAt: c.CreatedAt, UpdatedAt: c.UpdatedAt, Size: c.Size,
		Root: base64.StdEncoding.EncodeToString(c.Root[:]), Origin: origin}
}

// context returns a context for the write path through a short-lived cache
// (its redaction rules and builtin flag; never its size).
func (s *Server) context(r *http.Request, org, name string) (*cairn.Context, error) {
	k := ctxKey{org, name}
	now := s.cfg.Now()
	s.mu.Lock()
	cc, ok := s.contexts[k]
	s.mu.Unlock()
	if ok && now.Before(cc.expires) {
		return cc.c, nil
	}
	c, err := s.cfg.Store.GetContext(r.Context(), org, name)
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	s.contexts[k] = cachedContext{c: c, expires: now.Add(cacheTTL)}
	s.mu.Unlock()
	return c, nil
}

type contextInput struct {
	Name        string                `json:"name"`
	Description string                `json:"description"`
	Tags        map[string]string     `json:"tags"`
	Redaction   []cairn.RedactionRule `json:"redaction"`
	witnessInput
}

func (s *Server) createContext(w http.ResponseWriter, r *http.Request) {
	org := r.PathValue("org")
	var in contextInput
	if err := decodeJSON(r, &in); err != nil {
		s.error(w, r, err)
		return
	}
	if err := validName("context", in.Name); err != nil {
		s.error(w, r, err)
		return
	}
	if err := ingest.ValidateRules(in.Redaction); err != nil {
		s.error(w, r, err)
		return
	}
	var wc cairn.WitnessConfig
	if in.witnessInput.set() {
		var err error
		if wc, err = s.witnessConfig(wc, in.witnessInput); err != nil {
			s.error(w, r, err)
			return
		}
	}
	c, err := s.cfg.Store.CreateContext(r.Context(), &cairn.Context{Org: org, Name: in.Name,
		Description: in.Description, Tags: in.Tags, Redaction: in.Redaction})
	if err != nil {
		s.error(w, r, err)
		return
	}
	if in.witnessInput.set() {
		if _, err := s.cfg.Witnessing.SetConfig(r.Context(), org, in.Name, wc); err != nil {
			s.error(w, r, err)
			return
		}
	}
	var changes []cairn.Change
	changes = append(changes, change("description", nil, in.Description)...)
	changes = append(changes, change("tags", nil, in.Tags)...)
	changes = append(changes, change("redaction", nil, in.Redaction)...)
	if in.witnessInput.set() {
		changes = append(changes, change("witnesses", nil, wc)...)
	}
	if err := s.recordChange(r, org, actionContext+"create", cairn.KindCreate, contextTarget(in.Name), changes); err != nil {
		s.error(w, r, err)
		return
	}
	s.writeView(w, r, http.StatusCreated, c)
}

// writeView writes a context with its witnessing state.
func (s *Server) writeView(w http.ResponseWriter, r *http.Request, status int, c *cairn.Context) {
	v := s.view(c)
	if err := s.addWitnessing(r.Context(), &v); err != nil {
		s.error(w, r, err)
		return
	}
	writeJSON(w, status, v)
}

func (s *Server) listContexts(w http.ResponseWriter, r *http.Request) {
	org := r.PathValue("org")
	cs, err := s.cfg.Store.ListContexts(r.Context(), org)
	if err != nil {
		s.error(w, r, err)
		return
	}
	out := struct {
		Items []ContextView `json:"items"`
	}{Items: []ContextView{}}
	caller := callerOf(r)
	for _, c := range cs {
		if !caller.can(authz.View, c.Name) {
			continue
		}
		v := s.view(c)
		if err := s.addWitnessing(r.Context(), &v); err != nil {
			s.error(w, r, err)
			return
		}
		out.Items = append(out.Items, v)
	}
	writeJSON(w, http.StatusOK, out)
}

func (s *Server) getContext(w http.ResponseWriter, r *http.Request) {
	org := r.PathValue("org")
	c, err := s.cfg.Store.GetContext(r.Context(), org, r.PathValue("ctx"))
	if err != nil {
		s.error(w, r, err)
		return
	}
	s.writeView(w, r, http.StatusOK, c)
}

type contextPatch struct {
	Description *string                `json:"description"`
	Tags        *map[string]string     `json:"tags"`
	Redaction   *[]cairn.RedactionRule `json:"redaction"`
	witnessInput
}

func (s *Server) patchContext(w http.ResponseWriter, r *http.Request) {
	org, name := r.PathValue("org"), r.PathValue("ctx")
	var in contextPatch
	if err := decodeJSON(r, &in); err != nil {
		s.error(w, r, err)
		return
	}
	if in.Redaction != nil {
		if err := ingest.ValidateRules(*in.Redaction); err != nil {
			s.error(w, r, err)
			return
		}
	}
	before, err := s.cfg.Store.GetContext(r.Context(), org, name)
	if err != nil {
		s.error(w, r, err)
		return
	}
	// Validate the witness part before changing anything.
	var wc, oldWC cairn.WitnessConfig
	if in.witnessInput.set() {
		if s.cfg.Witnessing == nil {
			s.error(w, r, cairn.Errorf(cairn.EInvalid, "witnessing is not enabled on this server"))
			return
		}
		cur, err := s.cfg.Witnessing.Config(r.Context(), org, name)
		if err != nil {
			s.error(w, r, err)
			return
		}
		oldWC = cur
		if wc, err = s.witnessConfig(cur, in.witnessInput); err != nil {
			s.error(w, r, err)
			return
		}
	}
	c, err := s.cfg.Store.UpdateContext(r.Context(), org, name,
		cairn.ContextUpdate{Description: in.Description, Tags: in.Tags, Redaction: in.Redaction})
	if err != nil {
		s.error(w, r, err)
		return
	}
	if in.witnessInput.set() {
		if _, err := s.cfg.Witnessing.SetConfig(r.Context(), org, name, wc); err != nil {
			s.error(w, r, err)
			return
		}
	}
	s.mu.Lock()
	delete(s.contexts, ctxKey{org, name})
	s.mu.Unlock()
	var changes []cairn.Change
	changes = append(changes, change("description", before.Description, c.Description)...)
	changes = append(changes, change("tags", before.Tags, c.Tags)...)
	changes = append(changes, change("redaction", before.Redaction, c.Redaction)...)
	if in.witnessInput.set() {
		changes = append(changes, change("witnesses", oldWC, wc)...)
	}
	if err := s.recordChange(r, org, actionContext+"update", cairn.KindUpdate, contextTarget(name), changes); err != nil {
		s.error(w, r, err)
		return
	}
	s.writeView(w, r, http.StatusOK, c)
}

func (s *Server) createOrg(w http.ResponseWriter, r *http.Request) {
	var in struct {
		Name string `json:"name"`
	}
	if err := decodeJSON(r, &in); err != nil {
		s.error(w, r, err)
		return
	}
	if err := validName("org", in.Name); err != nil {
		s.error(w, r, err)
		return
	}
	o, err := s.cfg.Store.CreateOrg(r.Context(), in.Name)
	if err != nil {
		s.error(w, r, err)
		return
	}
	if err := s.recordChange(r, o.Name, actionOrg+"create", cairn.KindCreate, &cairn.Target{Type: "org", ID: o.Name}, nil); err != nil {
		s.error(w, r, err)
		return
	}
	writeJSON(w, http.StatusCreated, o)
}

func (s *Server) listOrgs(w http.ResponseWriter, r *http.Request) {
	orgs, err := s.cfg.Store.ListOrgs(r.Context())
	if err != nil {
		s.error(w, r, err)
		return
	}
	if orgs == nil {
		orgs = []*cairn.Org{}
	}
	writeJSON(w, http.StatusOK, map[string]any{"items": orgs})
}

func contextTarget(name string) *cairn.Target { return &cairn.Target{Type: "context", ID: name} }
