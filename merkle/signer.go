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
// with one or more Ed25519 keys. Each context's origin is also the key
// name, so each context has its own key ID and verifier key per key.
//
// The first key is the primary: its verifier key is the one a context
// publishes as current. Every key signs every checkpoint, so during a key
// rotation a checkpoint carries one signature per key and a verifier that
// knows any one of them accepts it (C2SP signed-note verifiers ignore
// signatures by unknown keys). A Signer is safe for concurrent use.
type Signer struct {
	keys []ed25519.PrivateKey // keys[0] is the primary
	host string
}

// NewSigner returns a Signer for the contexts served under host (the
// schema-less URL prefix, e.g. "audit.example.com"), signing with key (the
// primary) and any additional keys (a rotation overlap). host must be a
// valid note key name fragment: non-empty, valid UTF-8, no spaces, control
// characters or '+'.
//
// Errors: EInvalid for a key that is not an Ed25519 private key, a key
// given twice, or a bad host.
func NewSigner(key ed25519.PrivateKey, host string, more ...ed25519.PrivateKey) (*Signer, error) {
	if !validName(host) {
		return nil, cairn.Errorf(cairn.EInvalid, "host %q cannot be part of a checkpoint origin", host)
	}
	s := &Signer{host: host}
	for _, k := range append([]ed25519.PrivateKey{key}, more...) {
		if len(k) != ed25519.PrivateKeySize {
			return nil, cairn.Errorf(cairn.EInvalid, "signing key is not an Ed25519 private key")
		}
		// Keep a private copy: the caller may zero or reuse its slice.
		k = ed25519.NewKeyFromSeed(k.Seed())
		for _, have := range s.keys {
			if have.Equal(k) {
				return nil, cairn.Errorf(cairn.EInvalid, "the same signing key is configured twice")
			}
		}
		s.keys = append(s.keys, k)
	}
	return s, nil
}

// Host returns the host the Signer was created for.
func (s *Signer) Host() string { return s.host }

// PublicKey returns the primary Ed25519 public key.
func (s *Signer) PublicKey() ed25519.PublicKey {
	return s.keys[0].Public().(ed25519.PublicKey)
}

// PublicKeys returns the public keys of every signing key, primary first.
func (s *Signer) PublicKeys() []ed25519.PublicKey {
	out := make([]ed25519.PublicKey, len(s.keys))
	for i, k := range s.keys {
		out[i] = k.Public().(ed25519.PublicKey)
	}
	return out
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

// NoteSigner returns a [note.Signer] for the primary key whose key name is
// origin. The key ID is computed by golang.org/x/mod/sumdb/note. If origin
// is not a valid key name, signing with it fails (note.Sign refuses it).
func (s *Signer) NoteSigner(origin string) note.Signer {
	return newNoteSigner(origin, s.keys[0])
}

func newNoteSigner(origin string, key ed25519.PrivateKey) note.Signer {
	ns := &noteSigner{name: origin, key: key}
	if v, err := note.NewVerifier(mustVerifierKey(origin, key)); err == nil {
		ns.hash = v.KeyHash()
	}
	return ns
}

// VerifierKey returns the published verifier key of origin's log for the
// primary key, "<origin>+<8 hex key ID>+<base64(0x01 ‖ public key)>", as
// [note.NewEd25519VerifierKey] formats it.
func (s *Signer) VerifierKey(origin string) string {
	return mustVerifierKey(origin, s.keys[0])
}

// VerifierKeys returns the verifier keys of origin's log for every signing
// key, primary first.
func (s *Signer) VerifierKeys(origin string) []string {
	out := make([]string, len(s.keys))
	for i, k := range s.keys {
		out[i] = mustVerifierKey(origin, k)
	}
	return out
}

// VerifierKeyFor returns the verifier key of origin's log for the Ed25519
// public key pub (a key of the key history that this Signer may no longer
// hold).
//
// Errors: EInvalid for a malformed public key or origin.
func VerifierKeyFor(origin string, pub []byte) (string, error) {
	if len(pub) != ed25519.PublicKeySize {
		return "", cairn.Errorf(cairn.EInvalid, "not an Ed25519 public key")
	}
	vkey, err := note.NewEd25519VerifierKey(origin, ed25519.PublicKey(pub))
	if err != nil {
		return "", &cairn.Error{Code: cairn.EInvalid, Message: "cannot form a verifier key", Err: err}
	}
	return vkey, nil
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
	signers := make([]note.Signer, len(s.keys))
	for i, k := range s.keys {
		signers[i] = newNoteSigner(origin, k)
	}
	msg, err := note.Sign(&note.Note{Text: string(body)}, signers...)
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
