package forward

import (
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/cairn-audit/cairn"
)

// maxPattern bounds a filter pattern.
const maxPattern = 256

// Pattern is an action or group filter: "" or "*" matches everything,
// "prefix.*" matches values starting with "prefix.", anything else
// matches itself exactly. "*" is allowed nowhere else.
type Pattern struct {
	all    bool
	exact  string
	prefix string
}

// ParsePattern parses a filter. Errors: EInvalid.
func ParsePattern(s string) (Pattern, error) {
	if s == "" || s == "*" {
		return Pattern{all: true}, nil
	}
	if len(s) > maxPattern {
		return Pattern{}, cairn.Errorf(cairn.EInvalid, "filter %q is longer than %d bytes", s[:32]+"…", maxPattern)
	}
	if !utf8.ValidString(s) || strings.IndexFunc(s, unicode.IsControl) >= 0 {
		return Pattern{}, cairn.Errorf(cairn.EInvalid, "filter %q holds invalid UTF-8 or control characters", s)
	}
	if p, ok := strings.CutSuffix(s, ".*"); ok {
		if p == "" || strings.Contains(p, "*") {
			return Pattern{}, cairn.Errorf(cairn.EInvalid, "filter %q: \"*\" may only end a prefix, as in \"user.*\"", s)
		}
		return Pattern{prefix: p + "."}, nil
	}
	if strings.Contains(s, "*") {
		return Pattern{}, cairn.Errorf(cairn.EInvalid, "filter %q: \"*\" may only end a prefix, as in \"user.*\"", s)
	}
	return Pattern{exact: s}, nil
}

// Match reports whether v passes the filter.
func (p Pattern) Match(v string) bool {
	switch {
	case p.all:
		return true
	case p.prefix != "":
		return strings.HasPrefix(v, p.prefix)
	}
	return v == p.exact
}

// String returns the pattern as written ("" for match-all).
func (p Pattern) String() string {
	switch {
	case p.all:
		return ""
	case p.prefix != "":
		return p.prefix + "*"
	}
	return p.exact
}

// filters is a forwarder's parsed filters.
type filters struct {
	action, group Pattern
}

func parseFilters(f *cairn.Forwarder) (filters, error) {
	a, err := ParsePattern(f.ActionFilter)
	if err != nil {
		return filters{}, err
	}
	g, err := ParsePattern(f.GroupFilter)
	if err != nil {
		return filters{}, err
	}
	return filters{a, g}, nil
}

// keep reports whether e passes both filters. An event without a group
// passes only a match-all group filter.
func (fl filters) keep(e *cairn.Event) bool {
	if !fl.action.Match(e.Action) {
		return false
	}
	if fl.group.all {
		return true
	}
	return e.Group != nil && fl.group.Match(e.Group.ID)
}
