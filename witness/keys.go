package witness

import (
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/cairn-audit/cairn"
	fnote "github.com/transparency-dev/formats/note"
	"golang.org/x/mod/sumdb/note"
)

// algCosignatureV1 is the signed-note type of Ed25519 cosignature/v1 keys
// (C2SP tlog-cosignature).
const algCosignatureV1 = 0x04

// Key is a parsed witness verifier key.
type Key struct {
	Name     string
	Hash     uint32
	Verifier note.Verifier
}

// ParseKey parses a C2SP tlog-cosignature Ed25519 verifier key,
// "<name>+<8 hex key ID>+<base64(0x04 ‖ 32-byte public key)>", strictly:
// the name must be a valid signed-note key name, the key ID lowercase hex
// and equal to SHA-256(name ‖ "\n" ‖ 0x04 ‖ key)[:4], the key type 0x04.
//
// Errors: EInvalid, with a message that names what is wrong.
func ParseKey(vkey string) (*Key, error) {
	bad := func(why string) error {
		return cairn.Errorf(cairn.EInvalid, "witness key %q: %s", truncate(vkey), why)
	}
	name, rest, ok1 := strings.Cut(vkey, "+")
	hash16, key64, ok2 := strings.Cut(rest, "+")
	if !ok1 || !ok2 {
		return nil, bad("want <name>+<key ID>+<base64 key>")
	}
	if !validName(name) {
		return nil, bad("the name must be non-empty UTF-8 without spaces, control characters or '+'")
	}
	if len(hash16) != 8 || strings.ToLower(hash16) != hash16 {
		return nil, bad("the key ID must be 8 lowercase hex digits")
	}
	id, err := hex.DecodeString(hash16)
	if err != nil {
		return nil, bad("the key ID must be 8 lowercase hex digits")
	}
	raw, err := base64.StdEncoding.Strict().DecodeString(key64)
	if err != nil {
		return nil, bad("the key is not standard base64")
	}
	if len(raw) == 0 || raw[0] != algCosignatureV1 {
		return nil, bad("not an Ed25519 cosignature/v1 key (type 0x04)")
	}
	if len(raw) != 1+ed25519.PublicKeySize {
		return nil, bad("an Ed25519 public key is 32 bytes")
	}
	sum := sha256.Sum256(append(append([]byte(name), '\n'), raw...))
	if !bytes.Equal(sum[:4], id) {
		return nil, bad("the key ID does not match the key")
	}
	v, err := fnote.NewVerifierForCosignatureV1(vkey)
	if err != nil || v.KeyHash() != binary.BigEndian.Uint32(id) {
		return nil, bad("not a valid cosignature key")
	}
	return &Key{Name: name, Hash: v.KeyHash(), Verifier: v}, nil
}

func truncate(s string) string {
	if len(s) > 80 {
		return s[:80] + "…"
	}
	return s
}

func validName(s string) bool {
	return s != "" && utf8.ValidString(s) && !strings.Contains(s, "+") &&
		strings.IndexFunc(s, func(r rune) bool { return unicode.IsSpace(r) || unicode.IsControl(r) }) < 0
}

// ValidateConfig checks a context's witness configuration and fills in the
// defaults: Policy WitnessFailOpen; with witnesses, Quorum all of them.
// URLs must be absolute http(s) URLs without query, fragment or user
// info; their trailing '/' is removed. Keys must parse with [ParseKey] and
// appear once.
//
// Errors: EInvalid.
func ValidateConfig(c *cairn.WitnessConfig) error {
	if c.Policy == "" {
		c.Policy = cairn.WitnessFailOpen
	}
	if c.Policy != cairn.WitnessFailOpen && c.Policy != cairn.WitnessFailClosed {
		return cairn.Errorf(cairn.EInvalid, "witness_policy must be %q or %q", cairn.WitnessFailOpen, cairn.WitnessFailClosed)
	}
	if len(c.Witnesses) > cairn.MaxWitnesses {
		return cairn.Errorf(cairn.EInvalid, "at most %d witnesses per context", cairn.MaxWitnesses)
	}
	seen := map[string]bool{}
	for i := range c.Witnesses {
		w := &c.Witnesses[i]
		k, err := ParseKey(w.Key)
		if err != nil {
			return err
		}
		id := fmt.Sprintf("%s+%08x", k.Name, k.Hash)
		if seen[id] {
			return cairn.Errorf(cairn.EInvalid, "witness key %s is configured twice", id)
		}
		seen[id] = true
		u, err := url.Parse(w.URL)
		if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" ||
			u.User != nil || u.RawQuery != "" || u.Fragment != "" || u.Opaque != "" {
			return cairn.Errorf(cairn.EInvalid, "witness %s: url must be an http or https URL without user info, query or fragment", k.Name)
		}
		w.URL = strings.TrimRight(w.URL, "/")
	}
	switch {
	case len(c.Witnesses) == 0 && c.Quorum != 0:
		return cairn.Errorf(cairn.EInvalid, "witness_quorum needs witnesses")
	case len(c.Witnesses) > 0 && c.Quorum == 0:
		c.Quorum = len(c.Witnesses)
	case c.Quorum < 0 || c.Quorum > len(c.Witnesses):
		return cairn.Errorf(cairn.EInvalid, "witness_quorum must be between 1 and the number of witnesses (%d)", len(c.Witnesses))
	}
	return nil
}

// logSigned returns checkpoint note msg with only the signature lines of
// key name origin (the log's own signatures, one per signing key): the
// checkpoint as the log signed it, without any cosignatures.
func logSigned(msg []byte, origin string) ([]byte, error) {
	i := bytes.LastIndex(msg, []byte("\n\n"))
	if i < 0 {
		return nil, fmt.Errorf("malformed checkpoint note")
	}
	out := bytes.Clone(msg[:i+2])
	prefix := []byte("— " + origin + " ")
	for _, line := range bytes.SplitAfter(msg[i+2:], []byte("\n")) {
		if bytes.HasPrefix(line, prefix) {
			out = append(out, line...)
		}
	}
	return out, nil
}

// verifyCosignature checks a witness's add-checkpoint response against the
// checkpoint it cosigns and returns the witness's cosignature: the one
// response line that k's verifier accepts over the checkpoint text.
// Lines of other keys (e.g. the witness's other algorithms) are ignored.
//
// Errors: EIntegrity when no line verifies with k or a line by k fails.
func verifyCosignature(k *Key, witness string, checkpoint, response []byte) (cairn.Cosignature, error) {
	var cs cairn.Cosignature
	bad := func(why string, err error) error {
		return &cairn.Error{Code: cairn.EIntegrity, Message: "the witness returned " + why,
			Err: errors.Join(errBadCosignature, err)}
	}
	i := bytes.Index(checkpoint, []byte("\n\n"))
	if i < 0 {
		return cs, bad("a cosignature for a malformed checkpoint", nil)
	}
	text := checkpoint[:i+1]
	if len(response) == 0 || response[len(response)-1] != '\n' {
		return cs, bad("no cosignature lines", nil)
	}
	msg := append(append(bytes.Clone(text), '\n'), response...)
	n, err := note.Open(msg, note.VerifierList(k.Verifier))
	if err != nil {
		return cs, bad("no valid cosignature by its configured key", err)
	}
	for _, sig := range n.Sigs {
		if sig.Name == k.Name && sig.Hash == k.Hash {
			ts, err := fnote.CoSigV1Timestamp(sig)
			if err != nil {
				return cs, bad("a cosignature without a timestamp", err)
			}
			return cairn.Cosignature{Witness: witness, Line: []byte("— " + sig.Name + " " + sig.Base64 + "\n"),
				Time: ts.UTC().Truncate(time.Second)}, nil
		}
	}
	return cs, bad("no valid cosignature by its configured key", nil)
}
