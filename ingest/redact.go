package ingest

import (
	"maps"
	"slices"
	"strings"

	"github.com/cairn-audit/cairn"
)

// masked replaces the value of a member redacted in mask mode.
const masked = "***"

// defaultRules never enter any log (DESIGN.md §2.2): credentials are masked,
// so the record shows that one was sent or changed; timestamp churn is
// excluded.
var defaultRules = []cairn.RedactionRule{
	{Field: "password", Mode: cairn.RedactMask},
	{Field: "password_hash", Mode: cairn.RedactMask},
	{Field: "passwd", Mode: cairn.RedactMask},
	{Field: "passphrase", Mode: cairn.RedactMask},
	{Field: "secret", Mode: cairn.RedactMask},
	{Field: "client_secret", Mode: cairn.RedactMask},
	{Field: "token", Mode: cairn.RedactMask},
	{Field: "access_token", Mode: cairn.RedactMask},
	{Field: "refresh_token", Mode: cairn.RedactMask},
	{Field: "id_token", Mode: cairn.RedactMask},
	{Field: "api_key", Mode: cairn.RedactMask},
	{Field: "apikey", Mode: cairn.RedactMask},
	{Field: "x-api-key", Mode: cairn.RedactMask},
	{Field: "private_key", Mode: cairn.RedactMask},
	{Field: "authorization", Mode: cairn.RedactMask},
	{Field: "proxy-authorization", Mode: cairn.RedactMask},
	{Field: "cookie", Mode: cairn.RedactMask},
	{Field: "set-cookie", Mode: cairn.RedactMask},
	{Field: "created_at", Mode: cairn.RedactExclude},
	{Field: "updated_at", Mode: cairn.RedactExclude},
}

// defaultModes indexes defaultRules by field name; it is never modified.
var defaultModes = func() map[string]string {
	m := make(map[string]string, len(defaultRules))
	for _, r := range defaultRules {
		m[r.Field] = r.Mode
	}
	return m
}()

// DefaultRedaction returns the deny-list Normalize applies in every
// context, in addition to the context's own rules. The names are lower
// case; matching is case-insensitive.
func DefaultRedaction() []cairn.RedactionRule {
	return slices.Clone(defaultRules)
}

// ValidateRules checks a context's redaction rules: each names a field and
// uses mode cairn.RedactExclude or cairn.RedactMask, and no field (ignoring
// case) appears twice. EInvalid otherwise.
func ValidateRules(rules []cairn.RedactionRule) error {
	seen := make(map[string]bool, len(rules))
	for i, r := range rules {
		switch {
		case r.Field == "":
			return cairn.Errorf(cairn.EInvalid, "redaction[%d].field: required", i)
		case r.Mode != cairn.RedactExclude && r.Mode != cairn.RedactMask:
			return cairn.Errorf(cairn.EInvalid, "redaction[%d].mode: must be %q or %q", i, cairn.RedactExclude, cairn.RedactMask)
		case seen[strings.ToLower(r.Field)]:
			return cairn.Errorf(cairn.EInvalid, "redaction[%d].field: duplicate field %q", i, r.Field)
		}
		seen[strings.ToLower(r.Field)] = true
	}
	return nil
}

// redactor applies a context's rules on top of the defaults.
//
// It never modifies what it is given: a map, slice or change list that
// needs redacting is copied (only along the path to the redacted member),
// and one that does not is returned as is.
type redactor struct {
	rules []cairn.RedactionRule // the context's rules, Field in lower case
}

func newRedactor(rules []cairn.RedactionRule) redactor {
	for i, r := range rules {
		if strings.ToLower(r.Field) != r.Field {
			lower := slices.Clone(rules)
			for j := i; j < len(lower); j++ {
				lower[j].Field = strings.ToLower(lower[j].Field)
			}
			return redactor{rules: lower}
		}
	}
	return redactor{rules: rules}
}

// mode returns how to redact a member called name: cairn.RedactExclude,
// cairn.RedactMask or "" (keep). A context rule with an unknown mode masks:
// a misconfigured rule fails closed. A dotted or slashed path such as the
// change field "user.password" or "credentials/token" is also judged by its
// last segment, so nesting a secret does not smuggle it past the rules.
func (r redactor) mode(name string) string {
	name = strings.ToLower(name) // allocates only if name has upper case
	if m := r.exact(name); m != "" {
		return m
	}
	if i := strings.LastIndexAny(name, "./"); i >= 0 {
		return r.exact(name[i+1:])
	}
	return ""
}

// exact returns the mode of the rule named exactly name (lower case).
func (r redactor) exact(name string) string {
	for _, rule := range r.rules {
		if rule.Field == name {
			if rule.Mode == cairn.RedactExclude {
				return cairn.RedactExclude
			}
			return cairn.RedactMask
		}
	}
	return defaultModes[name]
}

// object redacts the members of m and, recursively, of the values in it.
func (r redactor) object(m map[string]any) (map[string]any, bool) {
	var out map[string]any
	for k, v := range m {
		var nv any
		mode := r.mode(k)
		switch mode {
		case cairn.RedactExclude:
		case cairn.RedactMask:
			nv = masked
		default:
			var changed bool
			if nv, changed = r.value(v); !changed {
				continue
			}
		}
		if out == nil {
			out = maps.Clone(m)
		}
		if mode == cairn.RedactExclude {
			delete(out, k)
		} else {
			out[k] = nv
		}
	}
	if out == nil {
		return m, false
	}
	return out, true
}

// stringMap redacts a map of strings.
func (r redactor) stringMap(m map[string]string) (map[string]string, bool) {
	var out map[string]string
	for k := range m {
		mode := r.mode(k)
		if mode == "" {
			continue
		}
		if out == nil {
			out = maps.Clone(m)
		}
		if mode == cairn.RedactExclude {
			delete(out, k)
		} else {
			out[k] = masked
		}
	}
	if out == nil {
		return m, false
	}
	return out, true
}

// value redacts the objects inside a free-form value. It knows every
// container type Canonical accepts, so nothing unredacted can reach a leaf.
func (r redactor) value(v any) (any, bool) {
	switch v := v.(type) {
	case map[string]any:
		return r.object(v)
	case map[string]string:
		return r.stringMap(v)
	case []any:
		var out []any
		for i, e := range v {
			ne, changed := r.value(e)
			if !changed {
				continue
			}
			if out == nil {
				out = slices.Clone(v)
			}
			out[i] = ne
		}
		if out == nil {
			return v, false
		}
		return out, true
	}
	return v, false
}

// changes drops excluded changes, masks the values of masked ones and
// redacts the objects inside the others' values.
func (r redactor) changes(cs []cairn.Change) []cairn.Change {
	var out []cairn.Change // nil until the first difference
	for i, c := range cs {
		keep, changed := true, false
		switch r.mode(c.Field) {
		case cairn.RedactExclude:
			keep, changed = false, true
		case cairn.RedactMask:
			if c.Old != nil {
				c.Old, changed = masked, true
			}
			if c.New != nil {
				c.New, changed = masked, true
			}
		default:
			var oldChanged, newChanged bool
			c.Old, oldChanged = r.value(c.Old)
			c.New, newChanged = r.value(c.New)
			changed = oldChanged || newChanged
		}
		if changed && out == nil {
			out = make([]cairn.Change, i, len(cs))
			copy(out, cs[:i])
		}
		if out != nil && keep {
			out = append(out, c)
		}
	}
	if out == nil {
		return cs
	}
	return out
}
