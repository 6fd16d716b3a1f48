package ingest

import (
	"math"
	"math/rand/v2"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/cairn-audit/cairn"
)

// Generators of random events for the differential tests. They favour the
// cases RFC 8785 implementations get wrong: key order by UTF-16 code units
// (U+E000–U+FFFF sorts after surrogate pairs), ECMAScript number
// formatting, minimal escaping, HTML characters, a "seq" key inside nested
// data.

var trickyStrings = []string{
	"", "a", "hello world", "\u20ac", "\U0001F600", "\uE000", "\uFB33", "\uFFFF", "\U0010FFFF",
	"<script>&amp;</script>", `"quoted" \ back/slash`, "\x00\x01\x1f", "\x7f", "\u0080\u009f",
	"\u2028\u2029", "line\nbreak\ttab\rret", "\b\f", "日本語", "ÿ", "e\u0301", "seq", `,"seq":1`,
	"\ufeffbom", "\uFFFD",
}

var trickyKeys = []string{
	"a", "b", "A", "seq", "id", "", "1", "10", "\u20ac", "\U0001F600", "\U0001F602", "\uE000",
	"\uFB33", "\uFFFF", "\u00f6", "\r", "\n", "</script>", "a b", "é", "e\u0301", "\x00", "\u0080",
	"aa", "ab", "b\U0001F600", "b\uFB33",
}

var trickyNumbers = []float64{
	0, math.Copysign(0, -1), 1, -1, 0.1, 0.5, 1e21, 1e-7, 1e-6, 9.999999999999999e20, 1e20,
	123.456, 5e-324, math.MaxFloat64, -1.5e-300, 9007199254740991, 1.0 / 3, 333333333.33333329,
	1e30, 4.5, 2e-3, 1e-27, -1e21, 1e308, 2.2250738585072014e-308, 0.000001234, 1.5e-7,
	9.999999999999997e-7, 295147905179352830000,
}

// gen makes random values. With ijson set it avoids numbers that DecodeEvent
// rejects when they are written by a JSON encoder (integers beyond 2^53 in
// plain notation), so that the output can be round-tripped.
type gen struct {
	r     *rand.Rand
	ijson bool
}

func newGen(seed uint64, ijson bool) *gen {
	return &gen{r: rand.New(rand.NewPCG(seed, 0x5eed)), ijson: ijson}
}

func (g *gen) chance(p float64) bool { return g.r.Float64() < p }

func (g *gen) string() string {
	if g.chance(0.6) {
		return trickyStrings[g.r.IntN(len(trickyStrings))]
	}
	n := g.r.IntN(12)
	var b strings.Builder
	for range n {
		b.WriteRune(g.rune())
	}
	return b.String()
}

// line is a string that Normalize accepts for a single-line member.
func (g *gen) line() string {
	s := g.string()
	if badString(s, maxShort, false) != "" {
		return "x" + strings.Map(func(r rune) rune {
			if r < 0x20 || r == 0x7f || r >= 0x80 && r <= 0x9f {
				return -1
			}
			return r
		}, s)
	}
	return s
}

func (g *gen) rune() rune {
	for {
		var r rune
		switch g.r.IntN(6) {
		case 0, 1:
			r = rune(0x20 + g.r.IntN(0x5f))
		case 2:
			r = rune(g.r.IntN(0x20))
		case 3:
			r = rune(0x80 + g.r.IntN(0x800-0x80))
		case 4:
			r = rune(0x800 + g.r.IntN(0x10000-0x800))
		default:
			r = rune(0x10000 + g.r.IntN(0x110000-0x10000))
		}
		if utf8.ValidRune(r) {
			return r
		}
	}
}

func (g *gen) key() string {
	if g.chance(0.7) {
		return trickyKeys[g.r.IntN(len(trickyKeys))]
	}
	return g.string()
}

func (g *gen) number() float64 {
	var f float64
	switch g.r.IntN(4) {
	case 0:
		f = trickyNumbers[g.r.IntN(len(trickyNumbers))]
	case 1:
		f = float64(g.r.IntN(2_000_000) - 1_000_000)
	case 2:
		f = g.r.NormFloat64() * math.Pow(10, float64(g.r.IntN(60)-30))
	default:
		f = math.Float64frombits(g.r.Uint64())
		if math.IsNaN(f) || math.IsInf(f, 0) {
			f = 42
		}
	}
	if g.ijson && math.Abs(f) >= 1<<53 && math.Abs(f) < 1e21 && f == math.Trunc(f) {
		f = 0.25
	}
	return f
}

func (g *gen) value(depth int) any {
	n := 7
	if depth > 3 {
		n = 5
	}
	switch g.r.IntN(n) {
	case 0:
		return nil
	case 1:
		return g.chance(0.5)
	case 2:
		return g.string()
	case 3, 4:
		return g.number()
	case 5:
		return g.object(depth + 1)
	default:
		a := make([]any, g.r.IntN(4))
		for i := range a {
			a[i] = g.value(depth + 1)
		}
		return a
	}
}

func (g *gen) object(depth int) map[string]any {
	m := make(map[string]any)
	for range g.r.IntN(5) {
		m[g.key()] = g.value(depth)
	}
	return m
}

// maybe returns s or "" with equal odds.
func (g *gen) maybe(s string) string {
	if g.chance(0.5) {
		return s
	}
	return ""
}

func (g *gen) time() time.Time {
	return time.Unix(g.r.Int64N(4e9), g.r.Int64N(1e9)*int64(g.r.IntN(2))).UTC()
}

// event returns a random event in the shape Normalize produces.
func (g *gen) event() *cairn.Event {
	e := &cairn.Event{
		ID:           "0195f3c2-7d1e-7b3a-9c4d-2e5f6a7b8c9d",
		Org:          g.line(),
		Context:      g.line(),
		EventTime:    g.time(),
		ReceivedTime: g.time(),
		Action:       "x" + g.line(),
		Kind:         []string{cairn.KindCreate, cairn.KindLoginFailed, cairn.KindOther}[g.r.IntN(3)],
		Outcome:      []string{cairn.OutcomeSuccess, cairn.OutcomeFailure}[g.r.IntN(2)],
		Reason:       g.maybe(g.line()),
		Title:        g.maybe(g.line()),
		Description:  g.maybe(g.line()),
		Component:    g.maybe(g.line()),
		Version:      g.maybe(g.line()),
		ExternalID:   g.maybe(g.line()),
	}
	if g.chance(0.7) {
		e.Actor = &cairn.Actor{Type: cairn.ActorUser, ID: g.maybe(g.line()), Name: g.maybe(g.line()), Email: g.maybe(g.line())}
		if g.chance(0.5) {
			e.Actor.Claims = g.object(2)
		}
	}
	if g.chance(0.7) {
		e.Target = &cairn.Target{Type: g.maybe(g.line()), ID: g.line(), Name: g.maybe(g.line()), Href: g.maybe(g.line())}
		if g.chance(0.5) {
			e.Target.Data = g.object(2)
		}
	}
	if g.chance(0.5) {
		e.Group = &cairn.Group{ID: g.line(), Name: g.maybe(g.line())}
	}
	for range g.r.IntN(3) {
		e.Changes = append(e.Changes, cairn.Change{Field: "f" + g.line(), Old: g.value(3), New: g.value(3)})
	}
	if g.chance(0.5) {
		e.Source = &cairn.Source{IP: g.line(), UserAgent: g.maybe(g.line()), RequestID: g.maybe(g.line()), Location: g.maybe(g.line())}
	}
	if g.chance(0.5) {
		e.Fields = map[string]string{}
		for range 1 + g.r.IntN(3) {
			e.Fields[g.line()] = g.line()
		}
	}
	if g.chance(0.7) {
		e.Metadata = g.object(1)
	}
	return e
}

// input returns a random client input.
func (g *gen) input() *Input {
	e := g.event()
	in := &Input{
		Action:      e.Action,
		Kind:        g.maybe(e.Kind),
		Outcome:     g.maybe(e.Outcome),
		Reason:      e.Reason,
		Actor:       e.Actor,
		Target:      e.Target,
		Group:       e.Group,
		Changes:     e.Changes,
		Source:      e.Source,
		Title:       e.Title,
		Description: e.Description,
		Component:   e.Component,
		Version:     e.Version,
		ExternalID:  e.ExternalID,
		Fields:      e.Fields,
		Metadata:    e.Metadata,
	}
	if g.chance(0.5) {
		in.EventTime = e.EventTime
	}
	return in
}
