package httpapi

import (
	"errors"
	"io"
	"net/http"

	"github.com/cairn-audit/cairn"
	"github.com/cairn-audit/cairn/ingest"
	"github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"
)

// strictUnmarshal decodes a compat request body: I-JSON (valid UTF-8, no
// duplicate names), case-sensitive member names, unknown members rejected.
// Errors are EInvalid naming the member by JSON pointer, never quoting a
// value.
func strictUnmarshal(data []byte, v any) error {
	err := json.Unmarshal(data, v, json.RejectUnknownMembers(true))
	if err == nil {
		return nil
	}
	return decodeError(err)
}

func decodeError(err error) error {
	var se *json.SemanticError
	var syn *jsontext.SyntacticError
	switch {
	case errors.As(err, &se):
		ptr := string(se.JSONPointer)
		if ptr == "" {
			ptr = "/"
		}
		switch {
		case errors.Is(se.Err, json.ErrUnknownName):
			return cairn.Errorf(cairn.EInvalid, "%s: unknown field", ptr)
		case se.JSONKind != 0:
			return cairn.Errorf(cairn.EInvalid, "%s: unexpected JSON %s", ptr, kindName(se.JSONKind))
		}
		return cairn.Errorf(cairn.EInvalid, "%s: invalid value", ptr)
	case errors.As(err, &syn):
		if errors.Is(syn.Err, jsontext.ErrDuplicateName) {
			return cairn.Errorf(cairn.EInvalid, "%s: duplicate member name", syn.JSONPointer)
		}
		return cairn.Errorf(cairn.EInvalid, "malformed JSON at byte offset %d", syn.ByteOffset)
	case errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, io.EOF):
		return cairn.Errorf(cairn.EInvalid, "malformed JSON: unexpected end of input")
	}
	return cairn.Errorf(cairn.EInvalid, "malformed JSON")
}

func kindName(k jsontext.Kind) string {
	switch k {
	case 'n':
		return "null"
	case 'f', 't':
		return "boolean"
	case '"':
		return "string"
	case '0':
		return "number"
	case '{':
		return "object"
	case '[':
		return "array"
	}
	return "value"
}

// readBody reads a compat request body of at most limit bytes.
func readBody(w http.ResponseWriter, r *http.Request, limit int64) ([]byte, error) {
	body, err := readLimited(w, r, limit)
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			return nil, cairn.Errorf(cairn.ETooLarge, "request body exceeds the limit of %d bytes", limit)
		}
		return nil, cairn.Errorf(cairn.EInvalid, "reading request body: %v", err)
	}
	return body, nil
}

// objectOrNull checks that a free-form member is a JSON object (or absent
// or null).
func objectOrNull(v jsontext.Value, path string) error {
	if len(v) == 0 {
		return nil
	}
	switch v.Kind() {
	case '{', 'n':
		return nil
	}
	return cairn.Errorf(cairn.EInvalid, "%s: expected object", path)
}

// nativeEvent re-encodes a mapped event as the native JSON shape and
// decodes it with ingest.DecodeEvent, so that free-form members passed
// through verbatim (data, claims) get exactly the native rules: depth,
// number range, UTF-8.
func nativeEvent(v any) (*ingest.Input, error) {
	b, err := json.Marshal(v, jsontext.AllowInvalidUTF8(false))
	if err != nil {
		return nil, cairn.Errorf(cairn.EInvalid, "event cannot be encoded")
	}
	return ingest.DecodeEvent(b)
}
