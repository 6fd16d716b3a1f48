package ingest

import (
	"bytes"
	"slices"
	"time"
	"unicode/utf16"
	"unicode/utf8"

	"github.com/cairn-audit/cairn"
	"github.com/go-json-experiment/json/jsontext"
)

// fastDecoder decodes the events that make up nearly all traffic (well
// formed, within the limits, only known members) several times faster than
// decoder, whose jsontext reader validates every token through a general
// state machine. It accepts exactly the same inputs as decoder: JSON syntax,
// UTF-8, escapes and surrogate pairs, duplicate names at any depth, nesting
// depth, member names and types, numbers and timestamps. But it does not
// say what is wrong: at the first thing it does not accept it gives up, and
// DecodeEvent runs decoder on the same input to report the error.
//
// So the one rule for this file: accept only what decoder accepts, and
// decode it to the same Input. TestFastDecoderAgrees and FuzzFastDecoder
// check it; when in doubt, give up.
type fastDecoder struct {
	in []byte
	// text is a copy of in. Strings without escapes are substrings of it,
	// as in decoder.
	text    string
	pos     int
	depth   int    // open objects and arrays, like jsontext's StackDepth
	scratch []byte // unquoted strings that contained escapes
	parts   *inputParts
}

// inputParts holds an Input and the members it points to in one
// allocation instead of five.
type inputParts struct {
	in     Input
	actor  cairn.Actor
	target cairn.Target
	group  cairn.Group
	source cairn.Source
}

// decodeFast decodes data, or reports false if decoder must do it.
func decodeFast(data []byte) (*Input, bool) {
	d := fastDecoder{in: data, text: string(data), parts: new(inputParts)}
	in := &d.parts.in
	if !d.event(in) {
		return nil, false
	}
	d.space()
	return in, d.pos == len(d.in)
}

func (d *fastDecoder) event(in *Input) bool {
	if !d.open('{') {
		return false
	}
	return d.fields(func(name string) (ok bool) {
		switch name {
		case "event_time":
			in.EventTime, ok = d.timestamp()
		case "action":
			in.Action, ok = d.str()
		case "kind":
			in.Kind, ok = d.str()
		case "outcome":
			in.Outcome, ok = d.str()
		case "reason":
			in.Reason, ok = d.str()
		case "actor":
			in.Actor, ok = d.actor()
		case "target":
			in.Target, ok = d.target()
		case "group":
			in.Group, ok = d.group()
		case "changes":
			in.Changes, ok = d.changes()
		case "source":
			in.Source, ok = d.source()
		case "title":
			in.Title, ok = d.str()
		case "description":
			in.Description, ok = d.str()
		case "component":
			in.Component, ok = d.str()
		case "version":
			in.Version, ok = d.str()
		case "external_id":
			in.ExternalID, ok = d.str()
		case "fields":
			in.Fields, ok = d.stringMap()
		case "metadata":
			in.Metadata, ok = d.object()
		}
		return ok // false for unknown and server-assigned members
	})
}

func (d *fastDecoder) actor() (*cairn.Actor, bool) {
	if d.null() {
		return nil, true
	}
	if !d.open('{') {
		return nil, false
	}
	a := &d.parts.actor
	return a, d.fields(func(name string) (ok bool) {
		switch name {
		case "type":
			a.Type, ok = d.str()
		case "id":
			a.ID, ok = d.str()
		case "name":
			a.Name, ok = d.str()
		case "email":
			a.Email, ok = d.str()
		case "claims":
			a.Claims, ok = d.object()
		}
		return ok
	})
}

func (d *fastDecoder) target() (*cairn.Target, bool) {
	if d.null() {
		return nil, true
	}
	if !d.open('{') {
		return nil, false
	}
	t := &d.parts.target
	return t, d.fields(func(name string) (ok bool) {
		switch name {
		case "type":
			t.Type, ok = d.str()
		case "id":
			t.ID, ok = d.str()
		case "name":
			t.Name, ok = d.str()
		case "href":
			t.Href, ok = d.str()
		case "data":
			t.Data, ok = d.object()
		}
		return ok
	})
}

func (d *fastDecoder) group() (*cairn.Group, bool) {
	if d.null() {
		return nil, true
	}
	if !d.open('{') {
		return nil, false
	}
	g := &d.parts.group
	return g, d.fields(func(name string) (ok bool) {
		switch name {
		case "id":
			g.ID, ok = d.str()
		case "name":
			g.Name, ok = d.str()
		}
		return ok
	})
}

func (d *fastDecoder) source() (*cairn.Source, bool) {
	if d.null() {
		return nil, true
	}
	if !d.open('{') {
		return nil, false
	}
	s := &d.parts.source
	return s, d.fields(func(name string) (ok bool) {
		switch name {
		case "ip":
			s.IP, ok = d.str()
		case "user_agent":
			s.UserAgent, ok = d.str()
		case "request_id":
			s.RequestID, ok = d.str()
		case "location":
			s.Location, ok = d.str()
		}
		return ok
	})
}

func (d *fastDecoder) changes() ([]cairn.Change, bool) {
	if d.null() {
		return nil, true
	}
	if !d.open('[') {
		return nil, false
	}
	cs := []cairn.Change{} // like decoder: [] is empty, not absent
	ok := d.elements(func() bool {
		if !d.open('{') { // a null change is an error
			return false
		}
		var c cairn.Change
		ok := d.fields(func(name string) (ok bool) {
			switch name {
			case "field":
				c.Field, ok = d.str()
			case "old":
				c.Old, ok = d.value()
			case "new":
				c.New, ok = d.value()
			}
			return ok
		})
		cs = append(cs, c)
		return ok
	})
	return cs, ok
}

// fields reads the members of an object of a fixed schema that open has
// just opened; fn reads the value of a known name and returns false for
// any other. A name that comes twice gives up.
func (d *fastDecoder) fields(fn func(name string) bool) bool {
	var seen [24]string // more than any schema object has members
	n := 0
	return d.members(func(name string) bool {
		if n == len(seen) || slices.Contains(seen[:n], name) {
			return false
		}
		seen[n] = name
		n++
		return fn(name)
	})
}

// members reads the members of the object open has just opened, calling fn
// to read the value of each. fn checks for duplicate names.
func (d *fastDecoder) members(fn func(name string) bool) bool {
	if d.peek() == '}' {
		d.pos++
		d.depth--
		return true
	}
	for {
		name, ok := d.string()
		if !ok || d.peek() != ':' {
			return false
		}
		d.pos++
		if !fn(name) {
			return false
		}
		switch d.peek() {
		case ',':
			d.pos++
		case '}':
			d.pos++
			d.depth--
			return true
		default:
			return false
		}
	}
}

// elements reads the elements of the array open has just opened, calling
// fn to read each.
func (d *fastDecoder) elements(fn func() bool) bool {
	if d.peek() == ']' {
		d.pos++
		d.depth--
		return true
	}
	for {
		if !fn() {
			return false
		}
		switch d.peek() {
		case ',':
			d.pos++
		case ']':
			d.pos++
			d.depth--
			return true
		default:
			return false
		}
	}
}

// open consumes c ('{' or '['), which must come next, within MaxDepth.
func (d *fastDecoder) open(c byte) bool {
	if d.peek() != c || d.depth >= MaxDepth {
		return false
	}
	d.pos++
	d.depth++
	return true
}

// null consumes a null if one comes next.
func (d *fastDecoder) null() bool {
	if d.peek() == 'n' && bytes.HasPrefix(d.in[d.pos:], []byte("null")) {
		d.pos += len("null")
		return true
	}
	return false
}

// peek skips whitespace and returns the next byte, 0 at the end.
func (d *fastDecoder) peek() byte {
	d.space()
	if d.pos < len(d.in) {
		return d.in[d.pos]
	}
	return 0
}

func (d *fastDecoder) space() {
	for d.pos < len(d.in) {
		switch d.in[d.pos] {
		case ' ', '\t', '\n', '\r':
			d.pos++
		default:
			return
		}
	}
}

// str reads a string; null reads as "".
func (d *fastDecoder) str() (string, bool) {
	if d.null() {
		return "", true
	}
	return d.string()
}

// string reads a string as a Go string.
func (d *fastDecoder) string() (string, bool) {
	b, escaped, ok := d.stringBytes()
	switch {
	case !ok:
		return "", false
	case escaped:
		return string(b), true
	}
	end := d.pos - 1 // the closing quote
	return d.text[end-len(b) : end], true
}

// plain marks the bytes that stand for themselves inside a JSON string.
var plain = func() (t [256]bool) {
	for c := 0x20; c < utf8.RuneSelf; c++ {
		t[c] = c != '"' && c != '\\'
	}
	return t
}()

// stringBytes reads a string and returns its contents: a slice of the
// input when it has no escapes, else of d.scratch, valid until the next
// read.
func (d *fastDecoder) stringBytes() (b []byte, escaped, ok bool) {
	if d.peek() != '"' {
		return nil, false, false
	}
	in := d.in
	start := d.pos + 1
	for i := start; i < len(in); {
		i += plainPrefix(in[i:])
		if i == len(in) {
			break
		}
		c := in[i]
		switch {
		case c == '"':
			d.pos = i + 1
			if !escaped {
				return in[start:i], false, true
			}
			var err error
			d.scratch, err = jsontext.AppendUnquote(d.scratch[:0], in[start-1:i+1])
			return d.scratch, true, err == nil
		case c == '\\':
			n := escapeLen(in[i:])
			if n == 0 {
				return nil, false, false
			}
			escaped = true
			i += n
		case c < utf8.RuneSelf: // a control character
			return nil, false, false
		default:
			r, size := utf8.DecodeRune(in[i:])
			if r == utf8.RuneError && size == 1 {
				return nil, false, false
			}
			i += size
		}
	}
	return nil, false, false
}

// escapeLen returns the length of the valid escape sequence at the start
// of b, or 0. A \u escape of a surrogate must be the high half of a pair.
func escapeLen(b []byte) int {
	if len(b) < 2 {
		return 0
	}
	switch b[1] {
	case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
		return 2
	case 'u':
		r1, ok := hex4(b[2:])
		if !ok {
			return 0
		}
		if !utf16.IsSurrogate(r1) {
			return 6
		}
		if len(b) < 12 || b[6] != '\\' || b[7] != 'u' {
			return 0
		}
		r2, ok := hex4(b[8:])
		if !ok || utf16.DecodeRune(r1, r2) == utf8.RuneError {
			return 0
		}
		return 12
	}
	return 0
}

func hex4(b []byte) (rune, bool) {
	if len(b) < 4 {
		return 0, false
	}
	var r rune
	for _, c := range b[:4] {
		switch {
		case '0' <= c && c <= '9':
			c -= '0'
		case 'a' <= c && c <= 'f':
			c -= 'a' - 10
		case 'A' <= c && c <= 'F':
			c -= 'A' - 10
		default:
			return 0, false
		}
		r = r<<4 | rune(c)
	}
	return r, true
}

// timestamp reads an RFC 3339 timestamp; null reads as the zero time.
func (d *fastDecoder) timestamp() (time.Time, bool) {
	var t time.Time
	if d.null() {
		return t, true
	}
	b, _, ok := d.stringBytes()
	return t, ok && isRFC3339(b) && t.UnmarshalText(b) == nil
}

// stringMap reads an object of strings, or null.
func (d *fastDecoder) stringMap() (map[string]string, bool) {
	if d.null() {
		return nil, true
	}
	if !d.open('{') {
		return nil, false
	}
	m := make(map[string]string)
	return m, d.members(func(name string) (ok bool) {
		if _, dup := m[name]; dup {
			return false
		}
		m[name], ok = d.str()
		return ok
	})
}

// object reads a free-form object, or null.
func (d *fastDecoder) object() (map[string]any, bool) {
	if d.null() {
		return nil, true
	}
	if !d.open('{') {
		return nil, false
	}
	m := make(map[string]any)
	return m, d.members(func(name string) (ok bool) {
		if _, dup := m[name]; dup {
			return false
		}
		m[name], ok = d.value()
		return ok
	})
}

// value reads any free-form value, as decoder.value does.
func (d *fastDecoder) value() (any, bool) {
	switch d.peek() {
	case '{':
		return d.object()
	case '[':
		if !d.open('[') {
			return nil, false
		}
		a := []any{}
		ok := d.elements(func() (ok bool) {
			var v any
			v, ok = d.value()
			a = append(a, v)
			return ok
		})
		return a, ok
	case '"':
		return d.string()
	case 't':
		return true, d.literal("true")
	case 'f':
		return false, d.literal("false")
	case 'n':
		return nil, d.literal("null")
	}
	return d.number()
}

// literal consumes s, which must come next. The caller checks what
// follows it, as after any value.
func (d *fastDecoder) literal(s string) bool {
	if !bytes.HasPrefix(d.in[d.pos:], []byte(s)) {
		return false
	}
	d.pos += len(s)
	return true
}

// number reads a number with JSON's grammar and parseNumber's limits.
func (d *fastDecoder) number() (float64, bool) {
	in, start := d.in, d.pos
	i := start
	digits := func() int {
		j := i
		for i < len(in) && isDigit(in[i]) {
			i++
		}
		return i - j
	}
	if i < len(in) && in[i] == '-' {
		i++
	}
	switch {
	case i < len(in) && in[i] == '0':
		i++
	case digits() == 0:
		return 0, false
	}
	if i < len(in) && in[i] == '.' {
		i++
		if digits() == 0 {
			return 0, false
		}
	}
	if i < len(in) && (in[i] == 'e' || in[i] == 'E') {
		i++
		if i < len(in) && (in[i] == '+' || in[i] == '-') {
			i++
		}
		if digits() == 0 {
			return 0, false
		}
	}
	d.pos = i
	f, err := parseNumber(in[start:i])
	return f, err == nil
}

// plainPrefix returns how many bytes at the start of s are plain: ASCII
// that stands for itself in a JSON string (not a control character, '"'
// or '\\'). It tests eight bytes at a time, which is most of the work of
// scanning an event's strings.
func plainPrefix[T string | []byte](s T) int {
	const ones, highs = 0x0101010101010101, 0x8080808080808080
	i := 0
	for ; i+8 <= len(s); i += 8 {
		x := uint64(s[i]) | uint64(s[i+1])<<8 | uint64(s[i+2])<<16 | uint64(s[i+3])<<24 |
			uint64(s[i+4])<<32 | uint64(s[i+5])<<40 | uint64(s[i+6])<<48 | uint64(s[i+7])<<56
		quote, backslash := x^(ones*'"'), x^(ones*'\\')
		// A high bit set in any of these marks a byte that is not plain:
		// non-ASCII, below 0x20, '"' (a zero byte in quote) or '\\'.
		if (x|(x-ones*0x20)|(quote-ones)&^quote|(backslash-ones)&^backslash)&highs != 0 {
			break
		}
	}
	for i < len(s) && plain[s[i]] {
		i++
	}
	return i
}
