package ingest

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/cairn-audit/cairn"
	"github.com/go-json-experiment/json/jsontext"
)

// Input is an event as a client sends it (DESIGN.md §2), before
// validation, defaults and redaction. The JSON names are the API contract.
// A zero EventTime means the client sent none.
type Input struct {
	EventTime   time.Time         `json:"event_time,omitzero"`
	Action      string            `json:"action"`
	Kind        string            `json:"kind,omitempty"`
	Outcome     string            `json:"outcome,omitempty"`
	Reason      string            `json:"reason,omitempty"`
	Actor       *cairn.Actor      `json:"actor,omitempty"`
	Target      *cairn.Target     `json:"target,omitempty"`
	Group       *cairn.Group      `json:"group,omitempty"`
	Changes     []cairn.Change    `json:"changes,omitempty"`
	Source      *cairn.Source     `json:"source,omitempty"`
	Title       string            `json:"title,omitempty"`
	Description string            `json:"description,omitempty"`
	Component   string            `json:"component,omitempty"`
	Version     string            `json:"version,omitempty"`
	ExternalID  string            `json:"external_id,omitempty"`
	Fields      map[string]string `json:"fields,omitempty"`
	Metadata    map[string]any    `json:"metadata,omitempty"`
}

// DecodeEvent decodes one JSON event strictly (see the package doc). In
// free-form members (claims, data, metadata, changes[].old/new) objects
// become map[string]any, arrays []any and numbers float64.
//
// The result does not alias data. Errors are *cairn.Error: ETooLarge if
// data is longer than MaxEvent, otherwise EInvalid with a message that
// names the member path.
func DecodeEvent(data []byte) (*Input, error) {
	if len(data) > MaxEvent {
		return nil, cairn.Errorf(cairn.ETooLarge, "event exceeds the %d-byte limit", MaxEvent)
	}
	if in, ok := decodeFast(data); ok {
		return in, nil
	}
	// Something is wrong, or unusual enough for decodeFast to give up:
	// decoder decodes again and says what.
	return decodeStrict(data)
}

// decodeStrict is DecodeEvent with decoder alone.
func decodeStrict(data []byte) (*Input, error) {
	d := decoderPool.Get().(*decoder)
	defer d.release()
	d.src = *bytes.NewBuffer(data)
	d.dec.Reset(&d.src)
	d.text = string(data)

	in := new(Input)
	if err := d.event(in); err != nil {
		return nil, publicError(err)
	}
	return in, nil
}

// decoder reads one event from a jsontext.Decoder, which enforces the
// syntax, UTF-8, surrogate and duplicate-name rules.
type decoder struct {
	src bytes.Buffer // lets jsontext read the input in place
	dec jsontext.Decoder
	// text is a copy of the input. Decoded strings without escapes are
	// substrings of it, which saves an allocation for each of them.
	text    string
	scratch []byte // unquoted strings that contained escapes
}

var decoderPool = sync.Pool{New: func() any { return new(decoder) }}

func (d *decoder) release() {
	d.src = bytes.Buffer{}
	d.dec.Reset(&d.src) // drop the references to the input
	d.text = ""
	if cap(d.scratch) > 64<<10 {
		d.scratch = nil
	}
	decoderPool.Put(d)
}

func (d *decoder) event(in *Input) error {
	if err := d.beginObject(); err != nil {
		if err == errNull {
			return errorf("expected object")
		}
		return err
	}
	err := d.members(func(name string) (err error) {
		switch name {
		case "event_time":
			in.EventTime, err = d.timestamp()
		case "action":
			in.Action, err = d.str()
		case "kind":
			in.Kind, err = d.str()
		case "outcome":
			in.Outcome, err = d.str()
		case "reason":
			in.Reason, err = d.str()
		case "actor":
			in.Actor, err = d.actor()
		case "target":
			in.Target, err = d.target()
		case "group":
			in.Group, err = d.group()
		case "changes":
			in.Changes, err = d.changes()
		case "source":
			in.Source, err = d.source()
		case "title":
			in.Title, err = d.str()
		case "description":
			in.Description, err = d.str()
		case "component":
			in.Component, err = d.str()
		case "version":
			in.Version, err = d.str()
		case "external_id":
			in.ExternalID, err = d.str()
		case "fields":
			in.Fields, err = d.stringMap()
		case "metadata":
			in.Metadata, err = d.object()
		case "id", "org", "context", "seq", "received_time":
			err = errorf("server-assigned field")
		default:
			err = unknownField()
		}
		return err
	})
	if err != nil {
		return err
	}
	if _, err := d.dec.ReadToken(); err != io.EOF {
		return errorf("unexpected data after the JSON object")
	}
	return nil
}

func (d *decoder) actor() (*cairn.Actor, error) {
	if err := d.beginObject(); err != nil {
		return nil, nullOK(err)
	}
	a := new(cairn.Actor)
	return a, d.members(func(name string) (err error) {
		switch name {
		case "type":
			a.Type, err = d.str()
		case "id":
			a.ID, err = d.str()
		case "name":
			a.Name, err = d.str()
		case "email":
			a.Email, err = d.str()
		case "claims":
			a.Claims, err = d.object()
		default:
			err = unknownField()
		}
		return err
	})
}

func (d *decoder) target() (*cairn.Target, error) {
	if err := d.beginObject(); err != nil {
		return nil, nullOK(err)
	}
	t := new(cairn.Target)
	return t, d.members(func(name string) (err error) {
		switch name {
		case "type":
			t.Type, err = d.str()
		case "id":
			t.ID, err = d.str()
		case "name":
			t.Name, err = d.str()
		case "href":
			t.Href, err = d.str()
		case "data":
			t.Data, err = d.object()
		default:
			err = unknownField()
		}
		return err
	})
}

func (d *decoder) group() (*cairn.Group, error) {
	if err := d.beginObject(); err != nil {
		return nil, nullOK(err)
	}
	g := new(cairn.Group)
	return g, d.members(func(name string) (err error) {
		switch name {
		case "id":
			g.ID, err = d.str()
		case "name":
			g.Name, err = d.str()
		default:
			err = unknownField()
		}
		return err
	})
}

func (d *decoder) source() (*cairn.Source, error) {
	if err := d.beginObject(); err != nil {
		return nil, nullOK(err)
	}
	s := new(cairn.Source)
	return s, d.members(func(name string) (err error) {
		switch name {
		case "ip":
			s.IP, err = d.str()
		case "user_agent":
			s.UserAgent, err = d.str()
		case "request_id":
			s.RequestID, err = d.str()
		case "location":
			s.Location, err = d.str()
		default:
			err = unknownField()
		}
		return err
	})
}

func (d *decoder) changes() ([]cairn.Change, error) {
	switch k := d.dec.PeekKind(); k {
	case '[':
	case 'n':
		return nil, d.skip()
	default:
		return nil, d.mismatch("array", k)
	}
	if _, err := d.dec.ReadToken(); err != nil {
		return nil, syntaxError(err)
	}
	cs := []cairn.Change{} // like json v2: [] is empty, not absent
	for i := 0; d.dec.PeekKind() != ']'; i++ {
		if err := d.beginObject(); err != nil {
			if err == errNull {
				err = errorf("expected object")
			}
			return nil, at(err, i)
		}
		var c cairn.Change
		err := d.members(func(name string) (err error) {
			switch name {
			case "field":
				c.Field, err = d.str()
			case "old":
				c.Old, err = d.value()
			case "new":
				c.New, err = d.value()
			default:
				err = unknownField()
			}
			return err
		})
		if err != nil {
			return nil, at(err, i)
		}
		cs = append(cs, c)
	}
	if _, err := d.dec.ReadToken(); err != nil {
		return nil, syntaxError(err)
	}
	return cs, nil
}

// errNull is returned by beginObject for a JSON null, which callers treat
// as an absent member.
var errNull = errors.New("null")

func nullOK(err error) error {
	if err == errNull {
		return nil
	}
	return err
}

// beginObject checks that the next value is an object without consuming
// it (members does). For null it consumes the null and returns errNull.
func (d *decoder) beginObject() error {
	switch k := d.dec.PeekKind(); k {
	case '{':
		if d.dec.StackDepth() >= MaxDepth {
			return errorf("nested deeper than %d levels", MaxDepth)
		}
		return nil
	case 'n':
		if err := d.skip(); err != nil {
			return err
		}
		return errNull
	default:
		return d.mismatch("object", k)
	}
}

// members reads the object that beginObject accepted, calling fn with each
// member name; fn must read the member's value. Errors are annotated with
// the member name.
func (d *decoder) members(fn func(name string) error) error {
	if _, err := d.dec.ReadToken(); err != nil {
		return syntaxError(err)
	}
	for {
		if d.dec.PeekKind() == '}' {
			if _, err := d.dec.ReadToken(); err != nil {
				return syntaxError(err)
			}
			return nil
		}
		raw, err := d.dec.ReadValue()
		if err != nil {
			return syntaxError(err)
		}
		name := d.name(raw)
		if err := fn(name); err != nil {
			return at(err, name)
		}
	}
}

// name returns an object member name just read. Names the schema knows are
// returned as constants.
func (d *decoder) name(raw []byte) string {
	switch string(d.unquote(raw)) {
	case "event_time":
		return "event_time"
	case "action":
		return "action"
	case "kind":
		return "kind"
	case "outcome":
		return "outcome"
	case "reason":
		return "reason"
	case "actor":
		return "actor"
	case "target":
		return "target"
	case "group":
		return "group"
	case "changes":
		return "changes"
	case "source":
		return "source"
	case "title":
		return "title"
	case "description":
		return "description"
	case "component":
		return "component"
	case "version":
		return "version"
	case "external_id":
		return "external_id"
	case "fields":
		return "fields"
	case "metadata":
		return "metadata"
	case "type":
		return "type"
	case "id":
		return "id"
	case "name":
		return "name"
	case "email":
		return "email"
	case "claims":
		return "claims"
	case "href":
		return "href"
	case "data":
		return "data"
	case "field":
		return "field"
	case "old":
		return "old"
	case "new":
		return "new"
	case "ip":
		return "ip"
	case "user_agent":
		return "user_agent"
	case "request_id":
		return "request_id"
	case "location":
		return "location"
	}
	return d.stringOf(raw)
}

// stringOf returns the JSON string just read (raw) as a Go string.
func (d *decoder) stringOf(raw []byte) string {
	if bytes.IndexByte(raw, '\\') < 0 {
		end := int(d.dec.InputOffset())
		return d.text[end-len(raw)+1 : end-1]
	}
	return string(d.unquote(raw))
}

// unquote returns the contents of a JSON string that jsontext has already
// validated. The result is only valid until the next read.
func (d *decoder) unquote(raw []byte) []byte {
	if bytes.IndexByte(raw, '\\') < 0 {
		return raw[1 : len(raw)-1]
	}
	d.scratch, _ = jsontext.AppendUnquote(d.scratch[:0], raw)
	return d.scratch
}

// str reads a JSON string; null reads as "".
func (d *decoder) str() (string, error) {
	raw, err := d.dec.ReadValue()
	if err != nil {
		return "", syntaxError(err)
	}
	switch raw[0] {
	case '"':
		return d.stringOf(raw), nil
	case 'n':
		return "", nil
	}
	return "", d.mismatch("string", raw.Kind())
}

// timestamp reads an RFC 3339 timestamp; null reads as the zero time.
func (d *decoder) timestamp() (time.Time, error) {
	var t time.Time
	raw, err := d.dec.ReadValue()
	switch {
	case err != nil:
		return t, syntaxError(err)
	case raw[0] == 'n':
		return t, nil
	case raw[0] != '"':
		return t, d.mismatch("RFC 3339 timestamp string", raw.Kind())
	}
	b := d.unquote(raw)
	if !isRFC3339(b) || t.UnmarshalText(b) != nil {
		return t, errorf("expected RFC 3339 timestamp")
	}
	return t, nil
}

// isRFC3339 checks the shape time.Time.UnmarshalText leaves unchecked
// (go.dev/issue/57912): two-digit fields, a '.' before the fraction and a
// zone offset within ±23:59. UnmarshalText checks the ranges of the rest.
func isRFC3339(b []byte) bool {
	const layout = "dddd-dd-ddTdd:dd:dd"
	if len(b) < len(layout)+1 {
		return false
	}
	for i := range len(layout) {
		if c := layout[i]; c == 'd' && !isDigit(b[i]) || c != 'd' && b[i] != c {
			return false
		}
	}
	rest := b[len(layout):]
	if rest[0] == '.' {
		n := 1
		for n < len(rest) && isDigit(rest[n]) {
			n++
		}
		if n == 1 {
			return false
		}
		rest = rest[n:]
	}
	if len(rest) == 1 {
		return rest[0] == 'Z'
	}
	return len(rest) == 6 && (rest[0] == '+' || rest[0] == '-') &&
		isDigit(rest[1]) && isDigit(rest[2]) && rest[3] == ':' && isDigit(rest[4]) && isDigit(rest[5]) &&
		(rest[1]-'0')*10+rest[2]-'0' < 24 && rest[4] < '6'
}

func isDigit(c byte) bool { return '0' <= c && c <= '9' }

// stringMap reads an object of strings.
func (d *decoder) stringMap() (map[string]string, error) {
	if err := d.beginObject(); err != nil {
		return nil, nullOK(err)
	}
	m := make(map[string]string)
	return m, d.members(func(name string) (err error) {
		m[name], err = d.str()
		return err
	})
}

// object reads a free-form JSON object.
func (d *decoder) object() (map[string]any, error) {
	if err := d.beginObject(); err != nil {
		return nil, nullOK(err)
	}
	m := make(map[string]any)
	return m, d.members(func(name string) (err error) {
		m[name], err = d.value()
		return err
	})
}

// value reads any free-form JSON value.
func (d *decoder) value() (any, error) {
	switch d.dec.PeekKind() {
	case '{':
		m, err := d.object()
		if err != nil {
			return nil, err
		}
		return m, nil
	case '[':
		if d.dec.StackDepth() >= MaxDepth {
			return nil, errorf("nested deeper than %d levels", MaxDepth)
		}
		if _, err := d.dec.ReadToken(); err != nil {
			return nil, syntaxError(err)
		}
		a := []any{}
		for i := 0; d.dec.PeekKind() != ']'; i++ {
			v, err := d.value()
			if err != nil {
				return nil, at(err, i)
			}
			a = append(a, v)
		}
		if _, err := d.dec.ReadToken(); err != nil {
			return nil, syntaxError(err)
		}
		return a, nil
	}
	raw, err := d.dec.ReadValue()
	if err != nil {
		return nil, syntaxError(err)
	}
	switch raw[0] {
	case 'n':
		return nil, nil
	case 't':
		return true, nil
	case 'f':
		return false, nil
	case '"':
		return d.stringOf(raw), nil
	}
	return parseNumber(raw)
}

// parseNumber converts a JSON number that jsontext has validated. A double
// holds every integer up to ±2^53 exactly; an integer written without
// fraction or exponent beyond that must equal its double exactly, or the
// client must send it as a string (I-JSON, RFC 7493 §2.2): silently
// rounding a 64-bit identifier would corrupt the record. A number with a
// fraction or exponent is a double by intent and fails only on overflow.
func parseNumber(raw []byte) (float64, error) {
	f, err := strconv.ParseFloat(string(raw), 64)
	if err != nil {
		return 0, errorf("number out of range")
	}
	if math.Abs(f) >= 1<<53 && bytes.IndexAny(raw, ".eE") < 0 {
		// JSON integers have no leading zeros or '+': compare digits.
		var exact [32]byte
		if !bytes.Equal(raw, strconv.AppendFloat(exact[:0], f, 'f', 0, 64)) {
			return 0, errorf("integer beyond ±2^53 is not exactly representable; send it as a string")
		}
	}
	return f, nil
}

func (d *decoder) skip() error {
	if err := d.dec.SkipValue(); err != nil {
		return syntaxError(err)
	}
	return nil
}

// mismatch reports a value of the wrong JSON kind. k == 0 means the
// decoder hit a syntax error, which takes precedence.
func (d *decoder) mismatch(want string, k jsontext.Kind) error {
	if k == 0 {
		_, err := d.dec.ReadValue()
		if err == nil {
			err = io.ErrUnexpectedEOF
		}
		return syntaxError(err)
	}
	return errorf("expected %s", want)
}

// pathError is a rejection annotated, while the decoder unwinds, with the
// path of the member it concerns.
type pathError struct {
	code string
	msg  string
	path []any // innermost first: string member names, int array indexes
}

func (e *pathError) Error() string { return e.message() }

func (e *pathError) message() string {
	if len(e.path) == 0 {
		return e.msg
	}
	var b strings.Builder
	for i := len(e.path) - 1; i >= 0; i-- {
		switch p := e.path[i].(type) {
		case int:
			b.WriteByte('[')
			b.WriteString(strconv.Itoa(p))
			b.WriteByte(']')
		case string:
			if isIdent(p) {
				if b.Len() > 0 {
					b.WriteByte('.')
				}
				b.WriteString(p)
			} else {
				if len(p) > 64 {
					p = strings.ToValidUTF8(p[:64], "") + "…"
				}
				b.WriteByte('[')
				b.WriteString(strconv.Quote(p))
				b.WriteByte(']')
			}
		}
	}
	b.WriteString(": ")
	b.WriteString(e.msg)
	return b.String()
}

func isIdent(s string) bool {
	if s == "" || len(s) > 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

func errorf(format string, args ...any) *pathError {
	return &pathError{code: cairn.EInvalid, msg: fmt.Sprintf(format, args...)}
}

func unknownField() error { return errorf("unknown field") }

// at prefixes err's path with a member name (string) or index (int).
func at(err error, p any) error {
	if pe, ok := err.(*pathError); ok {
		pe.path = append(pe.path, p)
	}
	return err
}

// syntaxError describes a jsontext error without quoting the input.
func syntaxError(err error) error {
	var se *jsontext.SyntacticError
	switch {
	case err == io.EOF || errors.Is(err, io.ErrUnexpectedEOF):
		return errorf("malformed JSON: unexpected end of input")
	case errors.As(err, &se):
		if se.Err == jsontext.ErrDuplicateName {
			return at(errorf("duplicate member name"), se.JSONPointer.LastToken())
		}
		reason := "syntax error"
		if se.Err != nil {
			// Keep jsontext's description, not the input it quotes.
			reason = se.Err.Error()
			if i := strings.IndexAny(reason, "`'"); i > 0 {
				reason = strings.TrimSpace(reason[:i])
			}
		}
		return errorf("malformed JSON at byte offset %d: %s", se.ByteOffset, reason)
	}
	return errorf("malformed JSON")
}

// publicError converts a pathError to the *cairn.Error callers see.
func publicError(err error) error {
	var pe *pathError
	if errors.As(err, &pe) {
		return &cairn.Error{Code: pe.code, Message: pe.message()}
	}
	return err
}
