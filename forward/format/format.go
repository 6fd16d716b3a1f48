// Package format renders committed audit events in the bodies SIEMs and
// log pipelines read: Cairn's native JSON (the canonical leaf itself),
// OCSF 1.x, Elastic Common Schema and ArcSight CEF.
//
// Every format carries the event's id, context and seq so that receivers
// can de-duplicate an at-least-once stream. Rendering is pure: no I/O, no
// clock; the same event always renders to the same bytes. It never adds a
// secret: the leaf was redacted before it was committed.
package format

import (
	"bytes"
	"encoding/json"
	"fmt"
	"slices"

	"github.com/cairn-audit/cairn"
)

// Names lists the formats, the default first.
var Names = []string{cairn.FormatJSON, cairn.FormatOCSF, cairn.FormatECS, cairn.FormatCEF}

// Valid reports whether name is a format.
func Valid(name string) bool { return slices.Contains(Names, name) }

// Product names Cairn in the bodies it renders.
const (
	Vendor  = "Cairn"
	Product = "Cairn"
	// Version is the version of Cairn's mapping of its events onto the
	// formats (not the binary's version): it changes when a mapping does.
	Version = "1.0"
)

// Encode renders one event. leaf is the committed canonical leaf of e;
// cairn.FormatJSON returns it unchanged (it holds id, context and seq).
//
// Errors: EInvalid for an unknown format.
func Encode(name string, e *cairn.Event, leaf []byte) ([]byte, error) {
	switch name {
	case cairn.FormatJSON:
		return leaf, nil
	case cairn.FormatOCSF:
		return marshal(OCSF(e))
	case cairn.FormatECS:
		return marshal(ECS(e))
	case cairn.FormatCEF:
		return []byte(CEF(e)), nil
	}
	return nil, cairn.Errorf(cairn.EInvalid, "unknown format %q (want one of %v)", name, Names)
}

// IsJSON reports whether a format renders one JSON object per event.
func IsJSON(name string) bool { return name != cairn.FormatCEF }

// marshal encodes v compactly without HTML escaping; maps encode with
// sorted keys, so output is deterministic.
func marshal(v any) ([]byte, error) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, fmt.Errorf("encode: %w", err)
	}
	return bytes.TrimRight(b.Bytes(), "\n"), nil
}

// obj is a JSON object that keeps only non-empty members.
type obj map[string]any

func (o obj) set(k string, v any) obj {
	switch x := v.(type) {
	case nil:
		return o
	case string:
		if x == "" {
			return o
		}
	case obj:
		if len(x) == 0 {
			return o
		}
	case map[string]any:
		if len(x) == 0 {
			return o
		}
	case map[string]string:
		if len(x) == 0 {
			return o
		}
	case []any:
		if len(x) == 0 {
			return o
		}
	case []string:
		if len(x) == 0 {
			return o
		}
	case []cairn.Change:
		if len(x) == 0 {
			return o
		}
	}
	o[k] = v
	return o
}

// principalTypes are target types whose changes are account changes.
var principalTypes = map[string]bool{
	"user": true, "serviceaccount": true, "service_account": true, "principal": true, "account": true,
	"api_key": true, "apikey": true, "api_token": true, "identity": true, "member": true,
}

// isPrincipalChange reports whether e changes a principal (an account).
func isPrincipalChange(e *cairn.Event) bool {
	if e.Target == nil || !principalTypes[e.Target.Type] {
		return false
	}
	switch e.Kind {
	case cairn.KindCreate, cairn.KindUpdate, cairn.KindDelete:
		return true
	}
	return false
}

func ms(e *cairn.Event) int64 { return e.EventTime.UnixMilli() }

func actorName(a *cairn.Actor) string {
	if a == nil {
		return ""
	}
	if a.Name != "" {
		return a.Name
	}
	if a.Email != "" {
		return a.Email
	}
	return a.ID
}
