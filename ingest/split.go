package ingest

import (
	"bytes"
	"io"
	"strings"

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
