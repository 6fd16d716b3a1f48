package merkle

import (
	"crypto/ed25519"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/cairn-audit/cairn"
	"github.com/transparency-dev/formats/log"
	"golang.org/x/mod/sumdb/note"
)

// Signer signs checkpoints for every audit context of one Cairn service
// with a single Ed25519 key. Each context's origin is also the key name,
// so each context has its own key ID and verifier key. A Signer is safe
// for concurrent use.
type Signer struct {
	key  ed25519.PrivateKey
	host string
}

// NewSigner returns a Signer for the contexts served under host (the
// schema-less URL prefix, e.g. "audit.example.com"). host must be a valid
// note key name fragment: non-empty, valid UTF-8, no spaces, control
// characters or '+'.
//
// Errors: EInvalid for a key that is not an Ed25519 private key or a bad host.
func NewSigner(key ed25519.PrivateKey, host string) (*Signer, error) {
	if len(key) != ed25519.PrivateKeySize {
		return nil, cairn.Errorf(cairn.EInvalid, "signing key is not an Ed25519 private key")
	}
	if !validName(host) {
		return nil, cairn.Errorf(cairn.EInvalid, "host %q cannot be part of a checkpoint origin", host)
	}
	// Keep a private copy: the caller may zero or reuse its slice.
	return &Signer{key: ed25519.NewKeyFromSeed(key.Seed()), host: host}, nil
}

// Host returns the host the Signer was created for.
func (s *Signer) Host() string { return s.host }

// PublicKey returns the Ed25519 public key.
func (s *Signer) PublicKey() ed25519.PublicKey {
	return s.key.Public().(ed25519.PublicKey)
}

// Origin returns the origin of an audit context's log under the Signer's
// host, see [Origin].
//
// Errors: EInvalid if org or context is empty, contains '/', '+', spaces or
// control characters: such a name would make the origin ambiguous or
// unusable as a key name.
func (s *Signer) Origin(org, contextName string) (string, error) {
	for _, part := range []string{org, contextName} {
		if !validName(part) || strings.Contains(part, "/") {
			return "", cairn.Errorf(cairn.EInvalid, "%q cannot be part of a checkpoint origin", part)
		}
	}
	return Origin(s.host, org, contextName), nil
}

// NoteSigner returns a [note.Signer] whose key name is origin. The key ID
// is computed by golang.org/x/mod/sumdb/note. If origin is not a valid key
// name, signing with it fails (note.Sign refuses it).
func (s *Signer) NoteSigner(origin string) note.Signer {
	ns := &noteSigner{name: origin, key: s.key}
	if v, err := note.NewVerifier(s.VerifierKey(origin)); err == nil {
		ns.hash = v.KeyHash()
	}
	return ns
}

// VerifierKey returns the published verifier key of origin's log,
// "<origin>+<8 hex key ID>+<base64(0x01 ‖ public key)>", as
// [note.NewEd25519VerifierKey] formats it.
func (s *Signer) VerifierKey(origin string) string {
	return mustVerifierKey(origin, s.key)
}

// SignCheckpoint returns the C2SP tlog-checkpoint for (origin, size, root)
// signed as a C2SP signed note:
//
//	<origin>\n<size>\n<base64 root>\n\n— <origin> <base64(key ID ‖ signature)>\n
//
// A size-0 tree always carries the RFC 6962 empty root; root must then be
// that root or the zero value.
//
// SignCheckpoint signs whatever it is given: only the [Checkpointer]
// decides whether a tree may be signed.
//
// Errors: EInvalid for an invalid origin, a negative size, or a size-0
// tree with another root.
func (s *Signer) SignCheckpoint(origin string, size int64, root [32]byte) ([]byte, error) {
	if !validName(origin) {
		return nil, cairn.Errorf(cairn.EInvalid, "origin %q is not a valid key name", origin)
	}
	if size < 0 {
		return nil, cairn.Errorf(cairn.EInvalid, "tree size %d is negative", size)
	}
	if size == 0 {
		if root != ([32]byte{}) && root != EmptyRoot() {
			return nil, cairn.Errorf(cairn.EInvalid, "an empty tree has the RFC 6962 empty root")
		}
		root = EmptyRoot()
	}
	body := log.Checkpoint{Origin: origin, Size: uint64(size), Hash: root[:]}.Marshal()
	msg, err := note.Sign(&note.Note{Text: string(body)}, s.NoteSigner(origin))
	if err != nil {
		return nil, &cairn.Error{Code: cairn.EInternal, Message: "cannot sign checkpoint", Err: err}
	}
	return msg, nil
}

// noteSigner is a note.Signer for one key name. It holds the key, so it
// has no String method and is never formatted.
type noteSigner struct {
	name string
	hash uint32
	key  ed25519.PrivateKey
}

func (n *noteSigner) Name() string    { return n.name }
func (n *noteSigner) KeyHash() uint32 { return n.hash }
func (n *noteSigner) Sign(msg []byte) ([]byte, error) {
	return ed25519.Sign(n.key, msg), nil
}

// validName reports whether s can be (part of) a signed-note key name and
// a checkpoint origin line: non-empty UTF-8 without spaces, control
// characters or '+'.
func validName(s string) bool {
	return s != "" && utf8.ValidString(s) && !strings.Contains(s, "+") &&
		strings.IndexFunc(s, func(r rune) bool { return unicode.IsSpace(r) || unicode.IsControl(r) }) < 0
}
