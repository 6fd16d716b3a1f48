package retraced

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/cairn-audit/cairn"
)

// ViewerDescriptor is what a viewer token (GET …/viewertoken) stands for.
type ViewerDescriptor struct {
	ID            string    `json:"id"` // the token, 32 hex
	Org           string    `json:"org"`
	Context       string    `json:"context"`
	GroupID       string    `json:"group_id"`
	ActorID       string    `json:"actor_id"`
	TargetID      string    `json:"target_id,omitempty"`
	IsAdmin       bool      `json:"is_admin"`
	ViewLogAction string    `json:"view_log_action"`
	Created       time.Time `json:"created"`
}

// EnterpriseToken is an enterprise (eitapi) token, scoped to one group.
type EnterpriseToken struct {
	Token         string    `json:"token"`
	Org           string    `json:"org"`
	Context       string    `json:"context"`
	GroupID       string    `json:"group_id"`
	DisplayName   string    `json:"display_name"`
	ViewLogAction string    `json:"view_log_action"`
	Created       time.Time `json:"created"`
}

// State keeps viewer descriptors and enterprise tokens. Errors are
// *cairn.Error: ENotFound for a missing descriptor or token.
type State interface {
	PutViewer(ctx context.Context, d *ViewerDescriptor) error
	GetViewer(ctx context.Context, id string) (*ViewerDescriptor, error)
	// DeleteViewers removes every descriptor of (org, group, actor),
	// revoking their sessions.
	DeleteViewers(ctx context.Context, org, groupID, actorID string) error
	PutEnterprise(ctx context.Context, t *EnterpriseToken) error
	GetEnterprise(ctx context.Context, token string) (*EnterpriseToken, error)
	ListEnterprise(ctx context.Context, org, groupID string) ([]*EnterpriseToken, error)
	DeleteEnterprise(ctx context.Context, org, groupID, token string) error
}

// ViewerTTL is how long a viewer descriptor (and the sessions made from
// it) lives: a day, as upstream prunes them.
const ViewerTTL = 24 * time.Hour

// FileState is a State kept in one JSON file, rewritten atomically (temp
// file, fsync, rename) on every change; an empty path keeps it in memory
// only. The server keeps its state in the store; FileState serves tests
// and the one-time import of the file earlier versions wrote.
type FileState struct {
	path string
	now  func() time.Time

	mu   sync.Mutex
	data fileData
}

type fileData struct {
	Viewers    map[string]*ViewerDescriptor `json:"viewers"`
	Enterprise map[string]*EnterpriseToken  `json:"enterprise"`
}

// OpenFileState loads path (if it exists).
func OpenFileState(path string) (*FileState, error) {
	s := &FileState{path: path, now: time.Now,
		data: fileData{Viewers: map[string]*ViewerDescriptor{}, Enterprise: map[string]*EnterpriseToken{}}}
	if path == "" {
		return s, nil
	}
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return s, nil
	}
	if err != nil {
		return nil, fmt.Errorf("retraced state: %w", err)
	}
	if err := json.Unmarshal(b, &s.data); err != nil {
		return nil, fmt.Errorf("retraced state %s is damaged: %w", path, err)
	}
	if s.data.Viewers == nil {
		s.data.Viewers = map[string]*ViewerDescriptor{}
	}
	if s.data.Enterprise == nil {
		s.data.Enterprise = map[string]*EnterpriseToken{}
	}
	return s, nil
}

// Contents returns copies of every viewer descriptor and enterprise token
// held (an upgrade imports them into the store).
func (s *FileState) Contents() ([]*ViewerDescriptor, []*EnterpriseToken) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var vs []*ViewerDescriptor
	for _, d := range s.data.Viewers {
		c := *d
		vs = append(vs, &c)
	}
	var ts []*EnterpriseToken
	for _, t := range s.data.Enterprise {
		c := *t
		ts = append(ts, &c)
	}
	return vs, ts
}

// save writes the state; the caller holds mu.
func (s *FileState) save() error {
	if s.path == "" {
		return nil
	}
	now := s.now()
	for id, d := range s.data.Viewers {
		if now.Sub(d.Created) > ViewerTTL {
			delete(s.data.Viewers, id)
		}
	}
	b, err := json.Marshal(s.data)
	if err != nil {
		return err
	}
	tmp := s.path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	if _, err := f.Write(b); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp, s.path); err != nil {
		return err
	}
	d, err := os.Open(filepath.Dir(s.path))
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

func (s *FileState) PutViewer(ctx context.Context, d *ViewerDescriptor) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	c := *d
	s.data.Viewers[d.ID] = &c
	return s.save()
}

func (s *FileState) GetViewer(ctx context.Context, id string) (*ViewerDescriptor, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	d, ok := s.data.Viewers[id]
	if !ok || s.now().Sub(d.Created) > ViewerTTL {
		return nil, cairn.Errorf(cairn.ENotFound, "viewer token not found or expired")
	}
	c := *d
	return &c, nil
}

func (s *FileState) DeleteViewers(ctx context.Context, org, groupID, actorID string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	for id, d := range s.data.Viewers {
		if d.Org == org && d.GroupID == groupID && d.ActorID == actorID {
			delete(s.data.Viewers, id)
		}
	}
	return s.save()
}

func (s *FileState) PutEnterprise(ctx context.Context, t *EnterpriseToken) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	c := *t
	s.data.Enterprise[t.Token] = &c
	return s.save()
}

func (s *FileState) GetEnterprise(ctx context.Context, token string) (*EnterpriseToken, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	// Compare through a MAC so the lookup time does not depend on how much
	// of a guessed token matches a real one.
	for k, t := range s.data.Enterprise {
		if hmac.Equal(macOf(k), macOf(token)) {
			c := *t
			return &c, nil
		}
	}
	return nil, cairn.Errorf(cairn.ENotFound, "enterprise token not found")
}

var macKey = func() []byte { b := make([]byte, 32); rand.Read(b); return b }()

func macOf(s string) []byte {
	m := hmac.New(sha256.New, macKey)
	m.Write([]byte(s))
	return m.Sum(nil)
}

func (s *FileState) ListEnterprise(ctx context.Context, org, groupID string) ([]*EnterpriseToken, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []*EnterpriseToken
	for _, t := range s.data.Enterprise {
		if t.Org == org && t.GroupID == groupID {
			c := *t
			out = append(out, &c)
		}
	}
	slices.SortFunc(out, func(a, b *EnterpriseToken) int { return a.Created.Compare(b.Created) })
	return out, nil
}

func (s *FileState) DeleteEnterprise(ctx context.Context, org, groupID, token string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	t, ok := s.data.Enterprise[token]
	if !ok || t.Org != org || t.GroupID != groupID {
		return cairn.Errorf(cairn.ENotFound, "enterprise token not found")
	}
	delete(s.data.Enterprise, token)
	return s.save()
}

// TokenKey is the key a store keeps an enterprise token under: its
// SHA-256, so that a lookup never compares the secret itself.
func TokenKey(token string) []byte {
	h := sha256.Sum256([]byte(token))
	return h[:]
}

// NewToken returns 32 random hex digits (Retraced's token form).
func NewToken() string {
	var b [16]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// Session is a viewer session: an HS256 JWT naming its descriptor. It has
// no expiry of its own; it is valid while its descriptor exists (deleting
// viewer sessions revokes it, and descriptors expire after ViewerTTL).
type Session struct {
	Descriptor string `json:"vd"`
	Org        string `json:"project_id"`
	GroupID    string `json:"group_id"`
	ActorID    string `json:"actor_id"`
	IsAdmin    bool   `json:"is_admin"`
	IssuedAt   int64  `json:"iat"`
}

var jwtHeader = base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"HS256","typ":"JWT"}`))

// SignSession returns the JWT for a session.
func SignSession(secret []byte, s Session) string {
	body, _ := json.Marshal(s)
	msg := jwtHeader + "." + base64.RawURLEncoding.EncodeToString(body)
	m := hmac.New(sha256.New, secret)
	m.Write([]byte(msg))
	return msg + "." + base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// VerifySession checks a JWT's signature and returns its session. Errors
// are EUnauthorized.
func VerifySession(secret []byte, token string) (*Session, error) {
	bad := cairn.Errorf(cairn.EUnauthorized, "invalid viewer session")
	parts := strings.Split(strings.TrimSpace(token), ".")
	if len(parts) != 3 || parts[0] != jwtHeader {
		return nil, bad
	}
	sig, err := base64.RawURLEncoding.DecodeString(parts[2])
	if err != nil {
		return nil, bad
	}
	m := hmac.New(sha256.New, secret)
	m.Write([]byte(parts[0] + "." + parts[1]))
	if !hmac.Equal(sig, m.Sum(nil)) {
		return nil, bad
	}
	body, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return nil, bad
	}
	var s Session
	if err := json.Unmarshal(body, &s); err != nil || s.Descriptor == "" {
		return nil, bad
	}
	return &s, nil
}
