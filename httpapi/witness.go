package httpapi

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/cairn-audit/cairn"
	"github.com/cairn-audit/cairn/merkle"
	"golang.org/x/mod/sumdb/note"
)

// Witnessing is the witness service as the API uses it (witness.Service).
type Witnessing interface {
	// Checkpoint returns the checkpoint a context publishes under its
	// witness policy.
	Checkpoint(ctx context.Context, org, name string) (*cairn.Checkpoint, error)
	// Config returns a context's witness configuration.
	Config(ctx context.Context, org, name string) (cairn.WitnessConfig, error)
	// Validate checks and completes a configuration (EInvalid).
	Validate(c *cairn.WitnessConfig) error
	// SetConfig validates and stores a configuration.
	SetConfig(ctx context.Context, org, name string, c cairn.WitnessConfig) (cairn.WitnessConfig, error)
	// Report returns the witnessing state of a context.
	Report(ctx context.Context, org, name string) (cairn.WitnessReport, error)
}

// WitnessStatusView is the JSON form of one witness of a context and
// what Cairn last heard from it.
type WitnessStatusView struct {
	Name string `json:"name"`
	URL  string `json:"url"`
	Key  string `json:"key"`
	// CosignedSize is the size the witness last cosigned or reported;
	// null if it was never heard from.
	CosignedSize *int64       `json:"cosigned_size"`
	LastSuccess  *time.Time   `json:"last_success"`
	LastErrorAt  *time.Time   `json:"last_error_at"`
	LastError    *ErrorDetail `json:"last_error"`
}

// WitnessingView summarises a context's witnessing.
type WitnessingView struct {
	// SignedSize is the size of the newest signed checkpoint, null if none.
	SignedSize *int64 `json:"signed_size"`
	// WitnessedSize is the size of the newest checkpoint that reached the
	// quorum, null if none.
	WitnessedSize *int64              `json:"witnessed_size"`
	Witnesses     []WitnessStatusView `json:"witnesses"`
}

func sizePtr(n int64) *int64 {
	if n < 0 {
		return nil
	}
	return &n
}

func timePtr(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	return &t
}

// addWitnessing fills in v's witness fields.
func (s *Server) addWitnessing(ctx context.Context, v *ContextView) error {
	v.Witnesses = []cairn.Witness{}
	if s.cfg.Witnessing == nil {
		return nil
	}
	c, err := s.cfg.Witnessing.Config(ctx, v.Org, v.Name)
	if err != nil {
		return err
	}
	if c.Witnesses != nil {
		v.Witnesses = c.Witnesses
	}
	v.WitnessQuorum, v.WitnessPolicy = c.Quorum, c.Policy
	if v.WitnessPolicy == "" {
		v.WitnessPolicy = cairn.WitnessFailOpen
	}
	r, err := s.cfg.Witnessing.Report(ctx, v.Org, v.Name)
	if err != nil {
		return err
	}
	w := &WitnessingView{SignedSize: sizePtr(r.SignedSize), WitnessedSize: sizePtr(r.WitnessedSize),
		Witnesses: []WitnessStatusView{}}
	for i, st := range r.Witnesses {
		name, _, _ := strings.Cut(st.Witness, "+")
		sv := WitnessStatusView{Name: name, Key: st.Witness, CosignedSize: sizePtr(st.Size),
			LastSuccess: timePtr(st.LastSuccess), LastErrorAt: timePtr(st.LastErrorAt)}
		if i < len(c.Witnesses) {
			sv.URL = c.Witnesses[i].URL
		}
		if st.LastErrorCode != "" {
			sv.LastError = &ErrorDetail{Code: st.LastErrorCode, Message: st.LastError}
		}
		w.Witnesses = append(w.Witnesses, sv)
	}
	v.WitnessStatus = w
	return nil
}

// witnessInput is the witness part of a context create or patch body.
type witnessInput struct {
	Witnesses *[]cairn.Witness `json:"witnesses"`
	Quorum    *int             `json:"witness_quorum"`
	Policy    *string          `json:"witness_policy"`
}

func (in witnessInput) set() bool { return in.Witnesses != nil || in.Quorum != nil || in.Policy != nil }

// witnessConfig merges in into cur and validates the result. Replacing the
// witnesses without a quorum resets the quorum to its default (all).
func (s *Server) witnessConfig(cur cairn.WitnessConfig, in witnessInput) (cairn.WitnessConfig, error) {
	if s.cfg.Witnessing == nil {
		return cur, cairn.Errorf(cairn.EInvalid, "witnessing is not enabled on this server")
	}
	if in.Witnesses != nil {
		cur.Witnesses = append([]cairn.Witness{}, *in.Witnesses...)
		cur.Quorum = 0
	}
	if in.Quorum != nil {
		cur.Quorum = *in.Quorum
	}
	if in.Policy != nil {
		cur.Policy = *in.Policy
	}
	return cur, s.cfg.Witnessing.Validate(&cur)
}

// KeyView is one entry of a log's signing-key history.
type KeyView struct {
	// VerifierKey is the C2SP signed-note verifier key for this log's
	// origin: "<origin>+<key ID>+<base64(0x01 ‖ public key)>".
	VerifierKey string     `json:"vkey"`
	KeyID       string     `json:"key_id"`
	AddedAt     *time.Time `json:"added_at"`
	RetiredAt   *time.Time `json:"retired_at"`
	// Primary marks the key /key returns; Signing every key that signs
	// new checkpoints.
	Primary bool `json:"primary"`
	Signing bool `json:"signing"`
}

// KeysView is the body of GET /log/{org}/{ctx}/keys.
type KeysView struct {
	Origin string    `json:"origin"`
	Keys   []KeyView `json:"keys"`
}

// getKeys serves the history of a log's signing keys: every verifier key
// that signed (or signs) its checkpoints, with when it was added and
// retired. Public, like /key.
func (s *Server) getKeys(w http.ResponseWriter, r *http.Request) {
	org, name := r.PathValue("org"), r.PathValue("ctx")
	if _, err := s.cfg.Store.GetContext(r.Context(), org, name); err != nil {
		if cairn.ErrorCode(err) == cairn.ENotFound {
			err = cairn.Errorf(cairn.ENotFound, "no such log")
		}
		s.error(w, r, err)
		return
	}
	origin, err := s.cfg.Signer.Origin(org, name)
	if err != nil {
		s.error(w, r, err)
		return
	}
	var history []cairn.SigningKey
	if s.cfg.KeyHistory != nil {
		if history, err = s.cfg.KeyHistory(r.Context()); err != nil {
			s.error(w, r, err)
			return
		}
	}
	// Keys the signer holds but the history lacks (no history configured)
	// are listed without dates.
	for _, pub := range s.cfg.Signer.PublicKeys() {
		found := false
		for _, k := range history {
			found = found || (bytes.Equal(k.PublicKey, pub) && k.RetiredAt.IsZero())
		}
		if !found {
			history = append(history, cairn.SigningKey{PublicKey: pub})
		}
	}
	primary := s.cfg.Signer.PublicKey()
	out := KeysView{Origin: origin, Keys: []KeyView{}}
	for _, k := range history {
		vkey, err := merkle.VerifierKeyFor(origin, k.PublicKey)
		if err != nil {
			s.error(w, r, fmt.Errorf("key history: %w", err))
			return
		}
		v, err := note.NewVerifier(vkey)
		if err != nil {
			s.error(w, r, fmt.Errorf("key history: %w", err))
			return
		}
		out.Keys = append(out.Keys, KeyView{VerifierKey: vkey, KeyID: fmt.Sprintf("%08x", v.KeyHash()),
			AddedAt: timePtr(k.AddedAt), RetiredAt: timePtr(k.RetiredAt),
			Primary: k.RetiredAt.IsZero() && ed25519.PublicKey(k.PublicKey).Equal(primary),
			Signing: k.RetiredAt.IsZero()})
	}
	w.Header().Set("Cache-Control", "no-cache")
	writeJSON(w, http.StatusOK, out)
}
