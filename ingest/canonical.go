package ingest

import (
	"fmt"
	"math"
	"slices"
	"strconv"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/cairn-audit/cairn"
)

// Canonical returns the leaf of e: its RFC 8785 (JCS) canonical JSON
// without "seq", split so that Leaf.Bytes(seq) is the canonical JSON of e
// with that sequence number (see cairn.Leaf). e.Seq is ignored.
//
// Members follow the json tags of cairn.Event: id, org, context,
// event_time, received_time, action, kind and outcome are always present;
// the others are left out when empty (a nil pointer, an empty string, map
// or slice, a nil change value). Times are RFC 3339 in UTC with trailing
// zeros of the fraction trimmed (time.RFC3339Nano).
//
// Free-form values may be nil, bool, string, float64, any Go integer type
// within ±(2^53-1), map[string]any, map[string]string, []any and []string,
// nested at most MaxDepth deep. Errors are *cairn.Error: ETooLarge when the
// leaf for the largest sequence number would exceed cairn.MaxLeafSize;
// EInvalid for invalid UTF-8, non-finite or out-of-range numbers and times
// outside years 0000-9999; EInternal for a value of another type.
//
// Canonical encodes the fixed shape of cairn.Event directly rather than
// marshalling and re-canonicalising, which costs several times as much;
// the tests check it against an independent RFC 8785 implementation.
func Canonical(e *cairn.Event) (cairn.Leaf, error) {
	enc := encoderPool.Get().(*encoder)
	defer enc.release()
	split, err := enc.event(e)
	if err != nil {
		return cairn.Leaf{}, publicError(err)
	}
	leaf := cairn.Leaf{Head: enc.buf[:split], Tail: enc.buf[split:]}
	if leaf.MaxLen() > cairn.MaxLeafSize {
		return cairn.Leaf{}, cairn.Errorf(cairn.ETooLarge,
			"event too large: its canonical leaf needs up to %d bytes, over the limit of %d bytes", leaf.MaxLen(), cairn.MaxLeafSize)
	}
	out := make([]byte, len(enc.buf))
	copy(out, enc.buf)
	return cairn.Leaf{Head: out[:split:split], Tail: out[split:]}, nil
}

// encoder writes canonical JSON into buf. keys is a stack of map keys being
// sorted, shared by the nested maps.
type encoder struct {
	buf   []byte
	keys  []string
	depth int
}

var encoderPool = sync.Pool{New: func() any { return &encoder{buf: make([]byte, 0, 2048)} }}

func (enc *encoder) release() {
	if cap(enc.buf) > 2*cairn.MaxLeafSize {
		enc.buf = nil
	}
	enc.buf = enc.buf[:0]
	clear(enc.keys[:cap(enc.keys)])
	enc.keys = enc.keys[:0]
	enc.depth = 0
	encoderPool.Put(enc)
}

// event writes e's members in RFC 8785 order (all names are ASCII, so
// UTF-16 order is byte order) and returns where "seq" belongs.
func (enc *encoder) event(e *cairn.Event) (split int, err error) {
	enc.buf = append(enc.buf[:0], '{')
	if err := enc.stringMember("action", e.Action, false); err != nil {
		return 0, err
	}
	if a := e.Actor; a != nil {
		enc.key("actor")
		enc.buf = append(enc.buf, '{')
		if err := enc.objectMember("claims", a.Claims); err != nil {
			return 0, at(err, "actor")
		}
		if err := enc.stringMember("email", a.Email, true); err != nil {
			return 0, at(err, "actor")
		}
		if err := enc.stringMember("id", a.ID, true); err != nil {
			return 0, at(err, "actor")
		}
		if err := enc.stringMember("name", a.Name, true); err != nil {
			return 0, at(err, "actor")
		}
		if err := enc.stringMember("type", a.Type, true); err != nil {
			return 0, at(err, "actor")
		}
		enc.buf = append(enc.buf, '}')
	}
	if len(e.Changes) > 0 {
		enc.key("changes")
		enc.buf = append(enc.buf, '[')
		for i, c := range e.Changes {
			if i > 0 {
				enc.buf = append(enc.buf, ',')
			}
			if err := enc.change(c); err != nil {
				return 0, at(at(err, i), "changes")
			}
		}
		enc.buf = append(enc.buf, ']')
	}
	if err := enc.stringMember("component", e.Component, true); err != nil {
		return 0, err
	}
	if err := enc.stringMember("context", e.Context, false); err != nil {
		return 0, err
	}
	if err := enc.stringMember("description", e.Description, true); err != nil {
		return 0, err
	}
	if err := enc.timeMember("event_time", e.EventTime); err != nil {
		return 0, err
	}
	if err := enc.stringMember("external_id", e.ExternalID, true); err != nil {
		return 0, err
	}
	if len(e.Fields) > 0 {
		enc.key("fields")
		if err := enc.stringMap(e.Fields); err != nil {
			return 0, at(err, "fields")
		}
	}
	if g := e.Group; g != nil {
		enc.key("group")
		enc.buf = append(enc.buf, '{')
		if err := enc.stringMember("id", g.ID, true); err != nil {
			return 0, at(err, "group")
		}
		if err := enc.stringMember("name", g.Name, true); err != nil {
			return 0, at(err, "group")
		}
		enc.buf = append(enc.buf, '}')
	}
	if err := enc.stringMember("id", e.ID, false); err != nil {
		return 0, err
	}
	if err := enc.stringMember("kind", e.Kind, false); err != nil {
		return 0, err
	}
	if err := enc.objectMember("metadata", e.Metadata); err != nil {
		return 0, err
	}
	if err := enc.stringMember("org", e.Org, false); err != nil {
		return 0, err
	}
	if err := enc.stringMember("outcome", e.Outcome, false); err != nil {
		return 0, err
	}
	if err := enc.stringMember("reason", e.Reason, true); err != nil {
		return 0, err
	}
	if err := enc.timeMember("received_time", e.ReceivedTime); err != nil {
		return 0, err
	}

	split = len(enc.buf) // "seq" sorts here

	if s := e.Source; s != nil {
		enc.key("source")
		enc.buf = append(enc.buf, '{')
		if err := enc.stringMember("ip", s.IP, true); err != nil {
			return 0, at(err, "source")
		}
		if err := enc.stringMember("location", s.Location, true); err != nil {
			return 0, at(err, "source")
		}
		if err := enc.stringMember("request_id", s.RequestID, true); err != nil {
			return 0, at(err, "source")
		}
		if err := enc.stringMember("user_agent", s.UserAgent, true); err != nil {
			return 0, at(err, "source")
		}
		enc.buf = append(enc.buf, '}')
	}
	if t := e.Target; t != nil {
		enc.key("target")
		enc.buf = append(enc.buf, '{')
		if err := enc.objectMember("data", t.Data); err != nil {
			return 0, at(err, "target")
		}
		if err := enc.stringMember("href", t.Href, true); err != nil {
			return 0, at(err, "target")
		}
		if err := enc.stringMember("id", t.ID, true); err != nil {
			return 0, at(err, "target")
		}
		if err := enc.stringMember("name", t.Name, true); err != nil {
			return 0, at(err, "target")
		}
		if err := enc.stringMember("type", t.Type, true); err != nil {
			return 0, at(err, "target")
		}
		enc.buf = append(enc.buf, '}')
	}
	if err := enc.stringMember("title", e.Title, true); err != nil {
		return 0, err
	}
	if err := enc.stringMember("version", e.Version, true); err != nil {
		return 0, err
	}
	enc.buf = append(enc.buf, '}')
	return split, nil
}

func (enc *encoder) change(c cairn.Change) error {
	enc.buf = append(enc.buf, '{')
	if err := enc.stringMember("field", c.Field, false); err != nil {
		return err
	}
	if c.New != nil {
		enc.key("new")
		if err := enc.value(c.New); err != nil {
			return at(err, "new")
		}
	}
	if c.Old != nil {
		enc.key("old")
		if err := enc.value(c.Old); err != nil {
			return at(err, "old")
		}
	}
	enc.buf = append(enc.buf, '}')
	return nil
}

// key writes a member name that needs no escaping, preceded by a comma
// unless it is the first member of its object.
func (enc *encoder) key(name string) {
	if enc.buf[len(enc.buf)-1] != '{' {
		enc.buf = append(enc.buf, ',')
	}
	enc.buf = append(enc.buf, '"')
	enc.buf = append(enc.buf, name...)
	enc.buf = append(enc.buf, '"', ':')
}

func (enc *encoder) stringMember(name, s string, omitEmpty bool) error {
	if omitEmpty && s == "" {
		return nil
	}
	enc.key(name)
	if err := enc.string(s); err != nil {
		return at(err, name)
	}
	return nil
}

func (enc *encoder) objectMember(name string, m map[string]any) error {
	if len(m) == 0 {
		return nil
	}
	enc.key(name)
	if err := enc.object(m); err != nil {
		return at(err, name)
	}
	return nil
}

func (enc *encoder) timeMember(name string, t time.Time) error {
	t = t.UTC()
	if y := t.Year(); y < 0 || y > 9999 {
		return at(errorf("year outside 0000-9999 in UTC"), name)
	}
	enc.key(name)
	enc.buf = append(enc.buf, '"')
	enc.buf = t.AppendFormat(enc.buf, time.RFC3339Nano)
	enc.buf = append(enc.buf, '"')
	return nil
}

// value writes a free-form value.
func (enc *encoder) value(v any) error {
	switch v := v.(type) {
	case nil:
		enc.buf = append(enc.buf, "null"...)
	case bool:
		enc.buf = strconv.AppendBool(enc.buf, v)
	case string:
		return enc.string(v)
	case float64:
		return enc.float(v)
	case map[string]any:
		return enc.object(v)
	case map[string]string:
		return enc.stringMap(v)
	case []any:
		if err := enc.enter(); err != nil {
			return err
		}
		enc.buf = append(enc.buf, '[')
		for i, e := range v {
			if i > 0 {
				enc.buf = append(enc.buf, ',')
			}
			if err := enc.value(e); err != nil {
				return at(err, i)
			}
		}
		enc.buf = append(enc.buf, ']')
		enc.depth--
	case []string:
		enc.buf = append(enc.buf, '[')
		for i, s := range v {
			if i > 0 {
				enc.buf = append(enc.buf, ',')
			}
			if err := enc.string(s); err != nil {
				return at(err, i)
			}
		}
		enc.buf = append(enc.buf, ']')
	case int:
		return enc.int(int64(v))
	case int8:
		return enc.int(int64(v))
	case int16:
		return enc.int(int64(v))
	case int32:
		return enc.int(int64(v))
	case int64:
		return enc.int(v)
	case uint:
		return enc.uint(uint64(v))
	case uint8:
		return enc.uint(uint64(v))
	case uint16:
		return enc.uint(uint64(v))
	case uint32:
		return enc.uint(uint64(v))
	case uint64:
		return enc.uint(v)
	default:
		return &pathError{code: cairn.EInternal, msg: fmt.Sprintf("unsupported value type %T", v)}
	}
	return nil
}

// enter counts a level of nesting; the caller decrements enc.depth when it
// leaves the level without an error.
func (enc *encoder) enter() error {
	enc.depth++
	if enc.depth >= MaxDepth { // the event object is level 1
		return errorf("nested deeper than %d levels", MaxDepth)
	}
	return nil
}

// object writes a map with its keys in UTF-16 code unit order.
func (enc *encoder) object(m map[string]any) error {
	if err := enc.enter(); err != nil {
		return err
	}
	start := len(enc.keys)
	for k := range m {
		enc.keys = append(enc.keys, k)
	}
	keys := enc.keys[start:]
	slices.SortFunc(keys, compareUTF16)
	enc.buf = append(enc.buf, '{')
	for i, k := range keys {
		if i > 0 {
			enc.buf = append(enc.buf, ',')
		}
		if err := enc.string(k); err != nil {
			return at(err, k)
		}
		enc.buf = append(enc.buf, ':')
		if err := enc.value(m[k]); err != nil {
			return at(err, k)
		}
	}
	enc.buf = append(enc.buf, '}')
	enc.keys = enc.keys[:start]
	enc.depth--
	return nil
}

func (enc *encoder) stringMap(m map[string]string) error {
	start := len(enc.keys)
	for k := range m {
		enc.keys = append(enc.keys, k)
	}
	keys := enc.keys[start:]
	slices.SortFunc(keys, compareUTF16)
	enc.buf = append(enc.buf, '{')
	for i, k := range keys {
		if i > 0 {
			enc.buf = append(enc.buf, ',')
		}
		if err := enc.string(k); err != nil {
			return at(err, k)
		}
		enc.buf = append(enc.buf, ':')
		if err := enc.string(m[k]); err != nil {
			return at(err, k)
		}
	}
	enc.buf = append(enc.buf, '}')
	enc.keys = enc.keys[:start]
	return nil
}

// compareUTF16 orders strings by their UTF-16 code units (RFC 8785 §3.2.3).
// UTF-8 byte order is code point order, which differs only where a
// supplementary character (a surrogate pair, 0xD800–0xDBFF first) meets a
// character in U+E000–U+FFFF.
func compareUTF16(a, b string) int {
	n := min(len(a), len(b))
	i := 0
	for i < n && a[i] == b[i] {
		i++
	}
	if i == n {
		return len(a) - len(b)
	}
	if a[i] < utf8.RuneSelf || b[i] < utf8.RuneSelf {
		return int(a[i]) - int(b[i])
	}
	for i > 0 && !utf8.RuneStart(a[i]) { // back to the start of the differing rune
		i--
	}
	ra, _ := utf8.DecodeRuneInString(a[i:])
	rb, _ := utf8.DecodeRuneInString(b[i:])
	return utf16Rank(ra) - utf16Rank(rb)
}

func utf16Rank(r rune) int {
	if r >= 0xE000 && r <= 0xFFFF {
		return int(r) + 0x200000 // after every surrogate pair
	}
	return int(r)
}

const hexDigits = "0123456789abcdef"

// string writes s as RFC 8785 requires: only '"', '\\' and control
// characters are escaped, with the short forms where JSON has them.
func (enc *encoder) string(s string) error {
	b := append(enc.buf, '"')
	start := 0
	for i := 0; i < len(s); {
		i += plainPrefix(s[i:])
		if i == len(s) {
			break
		}
		c := s[i]
		if c >= utf8.RuneSelf {
			r, size := utf8.DecodeRuneInString(s[i:])
			if r == utf8.RuneError && size == 1 {
				enc.buf = b
				return errorf("invalid UTF-8")
			}
			i += size
			continue
		}
		if c >= 0x20 && c != '"' && c != '\\' {
			i++
			continue
		}
		b = append(b, s[start:i]...)
		switch c {
		case '"', '\\':
			b = append(b, '\\', c)
		case '\b':
			b = append(b, '\\', 'b')
		case '\f':
			b = append(b, '\\', 'f')
		case '\n':
			b = append(b, '\\', 'n')
		case '\r':
			b = append(b, '\\', 'r')
		case '\t':
			b = append(b, '\\', 't')
		default:
			b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
		}
		i++
		start = i
	}
	b = append(b, s[start:]...)
	enc.buf = append(b, '"')
	return nil
}

// float writes f as ECMAScript's Number.prototype.toString does
// (RFC 8785 §3.2.2.3): shortest round-trip digits, exponent form below
// 1e-6 and from 1e21, and "0" for negative zero.
func (enc *encoder) float(f float64) error {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return errorf("number is not finite")
	}
	if f == 0 {
		enc.buf = append(enc.buf, '0')
		return nil
	}
	format := byte('f')
	if abs := math.Abs(f); abs < 1e-6 || abs >= 1e21 {
		format = 'e'
	}
	b := strconv.AppendFloat(enc.buf, f, format, -1, 64)
	if format == 'e' { // Go writes e-07 where ECMAScript writes e-7
		n := len(b)
		if n >= 4 && b[n-4] == 'e' && b[n-3] == '-' && b[n-2] == '0' {
			b[n-2] = b[n-1]
			b = b[:n-1]
		}
	}
	enc.buf = b
	return nil
}

const maxSafeInt = 1<<53 - 1

func (enc *encoder) int(i int64) error {
	if i > maxSafeInt || i < -maxSafeInt {
		return errorf("integer beyond ±(2^53-1)")
	}
	enc.buf = strconv.AppendInt(enc.buf, i, 10)
	return nil
}

func (enc *encoder) uint(u uint64) error {
	if u > maxSafeInt {
		return errorf("integer beyond ±(2^53-1)")
	}
	enc.buf = strconv.AppendUint(enc.buf, u, 10)
	return nil
}
