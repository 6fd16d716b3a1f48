package retraced

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"slices"
	"strings"
	"unicode/utf16"

	"github.com/go-json-experiment/json"
)

// Hash returns Retraced's per-event hash for the event as received, with
// the server-assigned id (32 hex digits): lowercase hex SHA-256 of
// HashTarget.
func (e *Event) Hash(id string) string {
	sum := sha256.Sum256([]byte(e.HashTarget(id)))
	return hex.EncodeToString(sum[:])
}

// HashTarget is the string Retraced hashes (reference §6.1, the JS
// server's rules: presence-based fields and metadata, truthy external_id,
// non-empty target/actor/group, keys in UTF-16 code-unit order).
func (e *Event) HashTarget(id string) string {
	h := &e.hash
	var b strings.Builder
	b.WriteString(enc1(id))
	b.WriteByte(':')
	b.WriteString(enc1(e.Action))
	b.WriteByte(':')
	for _, s := range []string{h.targetID, h.actorID, h.groupID, h.sourceIP} {
		b.WriteString(enc1(s))
		b.WriteByte(':')
	}
	b.WriteString(bit(h.isFailure))
	b.WriteByte(':')
	b.WriteString(bit(h.isAnonymous))
	b.WriteByte(':')
	if !h.fieldsPresent {
		b.WriteByte(':')
	} else {
		writeMap(&b, h.fields)
	}
	if h.externalID != "" {
		b.WriteByte(':')
		b.WriteString(enc1(h.externalID))
	}
	if h.metadataPresent {
		b.WriteByte(':')
		writeMap(&b, h.metadata)
	}
	return b.String()
}

func writeMap(b *strings.Builder, m map[string]string) {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, compareUTF16)
	for _, k := range keys {
		b.WriteString(enc2(enc1(k)))
		b.WriteByte('=')
		b.WriteString(enc2(enc1(m[k])))
		b.WriteByte(';')
	}
}

func bit(v bool) string {
	if v {
		return "1"
	}
	return "0"
}

func enc1(s string) string {
	return strings.ReplaceAll(strings.ReplaceAll(s, "%", "%25"), ":", "%3A")
}

func enc2(s string) string {
	return strings.ReplaceAll(strings.ReplaceAll(s, "=", "%3D"), ";", "%3B")
}

// compareUTF16 orders strings as JavaScript's default sort does: by UTF-16
// code units.
func compareUTF16(a, b string) int {
	return slices.Compare(utf16.Encode([]rune(a)), utf16.Encode([]rune(b)))
}

// HashFromJSON parses a raw event and hashes it with id: convenient for
// tests and for clients that verify receipts.
func HashFromJSON(raw []byte, id string) (string, error) {
	e, err := ParseEvent(raw)
	if err != nil {
		return "", err
	}
	return e.Hash(id), nil
}

func asErr[T error](err error, target *T) bool { return errors.As(err, target) }

func isUnknown(se *json.SemanticError) bool { return errors.Is(se.Err, json.ErrUnknownName) }
