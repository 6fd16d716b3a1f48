package ingest

import (
	"bytes"
	"io"
	"strings"
	"unicode/utf8"

	"github.com/cairn-audit/cairn"
	"github.com/go-json-experiment/json/jsontext"
)

// SplitBody splits a write request's body into raw events and reports
// whether it was a batch:
//
//   - a JSON object is one event (batch = false);
//   - a JSON array holds one event per element (batch = true);
//   - with content type application/x-ndjson (or application/ndjson) every
//     non-blank line is one event (batch = true).
//
// SplitBody checks only the structure around the events. Whatever is wrong
// inside one (not an object, invalid UTF-8, duplicate names, bad members)
// is left for DecodeEvent to report for that item alone, so one bad event
// does not hide the others. The items are sub-slices of body.
//
// Errors are *cairn.Error: EInvalid for an empty body or batch and for a
// body whose structure is not JSON; ETooLarge for more than MaxBatch items.
// The HTTP layer enforces MaxBody before calling SplitBody.
func SplitBody(body []byte, contentType string) ([][]byte, bool, error) {
	if isNDJSON(contentType) {
		return splitLines(body)
	}
	b := trimSpace(body)
	if len(b) == 0 {
		return nil, false, cairn.Errorf(cairn.EInvalid, "empty body")
	}
	switch b[0] {
	case '{':
		return [][]byte{b[:len(b):len(b)]}, false, nil
	case '[':
		return splitArray(b)
	}
	return nil, false, cairn.Errorf(cairn.EInvalid, "body must be a JSON object, an array of objects or NDJSON")
}

func isNDJSON(contentType string) bool {
	mediaType, _, _ := strings.Cut(contentType, ";")
	mediaType = strings.TrimSpace(mediaType)
	return strings.EqualFold(mediaType, "application/x-ndjson") || strings.EqualFold(mediaType, "application/ndjson")
}

func splitArray(body []byte) ([][]byte, bool, error) {
	if items, ok := splitArrayFast(body); ok {
		return items, true, nil
	}
	// Something is wrong, or unusual: jsontext splits again and says what.
	return splitArrayStrict(body)
}

func splitArrayStrict(body []byte) ([][]byte, bool, error) {
	// Item contents are DecodeEvent's business: only the array's own
	// syntax is checked here.
	dec := jsontext.NewDecoder(bytes.NewBuffer(body),
		jsontext.AllowDuplicateNames(true), jsontext.AllowInvalidUTF8(true))
	if _, err := dec.ReadToken(); err != nil {
		return nil, false, publicError(syntaxError(err))
	}
	var items [][]byte
	for dec.PeekKind() != ']' {
		if len(items) == MaxBatch {
			return nil, false, tooManyItems()
		}
		v, err := dec.ReadValue()
		if err != nil {
			return nil, false, publicError(at(syntaxError(err), len(items)))
		}
		end := int(dec.InputOffset())
		items = append(items, body[end-len(v):end:end])
	}
	if _, err := dec.ReadToken(); err != nil {
		return nil, false, publicError(syntaxError(err))
	}
	if _, err := dec.ReadToken(); err != io.EOF {
		return nil, false, cairn.Errorf(cairn.EInvalid, "unexpected data after the JSON array")
	}
	if len(items) == 0 {
		return nil, false, cairn.Errorf(cairn.EInvalid, "empty batch")
	}
	return items, true, nil
}

func splitLines(body []byte) ([][]byte, bool, error) {
	var items [][]byte
	for len(body) > 0 {
		var line []byte
		line, body, _ = bytes.Cut(body, []byte{'\n'})
		if line = trimSpace(line); len(line) == 0 {
			continue
		}
		if len(items) == MaxBatch {
			return nil, false, tooManyItems()
		}
		items = append(items, line[:len(line):len(line)])
	}
	if len(items) == 0 {
		return nil, false, cairn.Errorf(cairn.EInvalid, "empty body")
	}
	return items, true, nil
}

func tooManyItems() error {
	return cairn.Errorf(cairn.ETooLarge, "batch exceeds the limit of %d events", MaxBatch)
}

// trimSpace removes JSON whitespace from both ends of b.
func trimSpace(b []byte) []byte {
	return bytes.Trim(b, " \t\r\n")
}

// splitArrayFast splits a well-formed array as splitArrayStrict does,
// several times faster, or reports false for anything else (a syntax
// error, an empty or too large batch, items nested deeper than
// maxSplitDepth), leaving splitArrayStrict to split it or say what is
// wrong. Like splitArrayStrict it checks the syntax of the items but
// neither their UTF-8 nor their member names. TestSplitFastAgrees and
// FuzzSplitFast check that it never accepts what splitArrayStrict rejects
// and splits alike.
func splitArrayFast(body []byte) ([][]byte, bool) {
	s := skipper{b: body}
	if s.peek() != '[' {
		return nil, false
	}
	s.pos++
	items := make([][]byte, 0, 64)
	for len(items) < MaxBatch {
		if s.peek() == ']' { // an empty batch or a trailing comma
			return nil, false
		}
		start := s.pos
		if !s.value(0) {
			return nil, false
		}
		items = append(items, body[start:s.pos:s.pos])
		switch s.peek() {
		case ',':
			s.pos++
		case ']':
			s.pos++
			s.peek()
			return items, s.pos == len(body)
		default:
			return nil, false
		}
	}
	return nil, false
}

// maxSplitDepth bounds the nesting splitArrayFast checks itself, far
// below jsontext's limit.
const maxSplitDepth = 1000

// skipper checks JSON syntax the way jsontext does with invalid UTF-8 and
// duplicate names allowed.
type skipper struct {
	b   []byte
	pos int
}

// peek skips whitespace and returns the next byte, 0 at the end.
func (s *skipper) peek() byte {
	for s.pos < len(s.b) {
		switch c := s.b[s.pos]; c {
		case ' ', '\t', '\n', '\r':
			s.pos++
		default:
			return c
		}
	}
	return 0
}

// value skips one value, nested depth containers deep.
func (s *skipper) value(depth int) bool {
	switch s.peek() {
	case '{':
		return depth < maxSplitDepth && s.container('}', depth)
	case '[':
		return depth < maxSplitDepth && s.container(']', depth)
	case '"':
		return s.string()
	case 't':
		return s.literal("true")
	case 'f':
		return s.literal("false")
	case 'n':
		return s.literal("null")
	}
	return s.number()
}

// container skips an object or array up to its closing byte.
func (s *skipper) container(closing byte, depth int) bool {
	s.pos++
	if s.peek() == closing {
		s.pos++
		return true
	}
	for {
		if closing == '}' {
			if s.peek() != '"' || !s.string() || s.peek() != ':' {
				return false
			}
			s.pos++
		}
		if !s.value(depth + 1) {
			return false
		}
		switch s.peek() {
		case ',':
			s.pos++
		case closing:
			s.pos++
			return true
		default:
			return false
		}
	}
}

// string skips a string: escapes must be valid (a \u escape of half a
// surrogate pair is, without UTF-8 validation), control characters are
// not; other bytes are.
func (s *skipper) string() bool {
	b := s.b
	for i := s.pos + 1; i < len(b); {
		i += plainPrefix(b[i:])
		if i == len(b) {
			break
		}
		switch c := b[i]; {
		case c >= utf8.RuneSelf:
			i++
		case c == '"':
			s.pos = i + 1
			return true
		case c == '\\' && i+1 < len(b) && strings.IndexByte(`"\\/bfnrt`, b[i+1]) >= 0:
			i += 2
		case c == '\\' && i+1 < len(b) && b[i+1] == 'u':
			if _, ok := hex4(b[i+2:]); !ok {
				return false
			}
			i += 6
		default:
			return false
		}
	}
	return false
}

func (s *skipper) literal(lit string) bool {
	if !bytes.HasPrefix(s.b[s.pos:], []byte(lit)) {
		return false
	}
	s.pos += len(lit)
	return true
}

// number skips a number with JSON's grammar.
func (s *skipper) number() bool {
	b, i := s.b, s.pos
	digits := func() int {
		j := i
		for i < len(b) && isDigit(b[i]) {
			i++
		}
		return i - j
	}
	if i < len(b) && b[i] == '-' {
		i++
	}
	switch {
	case i < len(b) && b[i] == '0':
		i++
	case digits() == 0:
		return false
	}
	if i < len(b) && b[i] == '.' {
		i++
		if digits() == 0 {
			return false
		}
	}
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		i++
		if i < len(b) && (b[i] == '+' || b[i] == '-') {
			i++
		}
		if digits() == 0 {
			return false
		}
	}
	s.pos = i
	return true
}
