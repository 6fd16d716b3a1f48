package postgres

import (
	"slices"
	"strings"
	"testing"
	"unicode"

	"github.com/cairn-audit/cairn"
	"github.com/cairn-audit/cairn/storetest"
	"github.com/jackc/pgx/v5/pgtype"
)

// splitWords must split exactly as the reference (runs of letters and
// digits, lowered), which is also how the embedded engine tokenises.
func TestSplitWords(t *testing.T) {
	ref := func(s string) []string {
		return strings.FieldsFunc(strings.ToLower(s), func(r rune) bool { return !unicode.IsLetter(r) && !unicode.IsNumber(r) })
	}
	for _, s := range []string{"", "a", "Hello, World!", "zebra-credentials", "über Straße ÉCOLE", "u0@example.com",
		"Q3 numbers (draft)", "  multiple   spaces\t\nand\u2028lines ", "日本語のテキスト", "x1y2Z3", "\xff bad utf8 \xfe", "İstanbul"} {
		if got, want := splitWords(s), ref(s); !slices.Equal(got, want) {
			t.Errorf("splitWords(%q) = %q, want %q", s, got, want)
		}
	}
}

func FuzzSplitWords(f *testing.F) {
	f.Add("Hello, World! über-Straße 42")
	f.Fuzz(func(t *testing.T, s string) {
		want := strings.FieldsFunc(strings.ToLower(s), func(r rune) bool { return !unicode.IsLetter(r) && !unicode.IsNumber(r) })
		if got := splitWords(s); !slices.Equal(got, want) {
			t.Fatalf("splitWords(%q) = %q, want %q", s, got, want)
		}
	})
}

// TestWords checks an event's tsvector against the reference: the sorted,
// distinct words of each free-text part split on its own.
func TestWords(t *testing.T) {
	ref := func(parts ...string) []string {
		var all []string
		for _, p := range parts {
			for _, w := range strings.FieldsFunc(strings.ToLower(p), func(r rune) bool { return !unicode.IsLetter(r) && !unicode.IsNumber(r) }) {
				if len(w) <= maxWord {
					all = append(all, w)
				}
			}
		}
		slices.Sort(all)
		return slices.Compact(all)
	}
	long := strings.Repeat("Ab", maxWord/2+1)
	for _, e := range []*cairn.Event{
		{},
		{Title: "Quarterly REPORT", Description: "User updated the report; the report is DONE.",
			Actor: &cairn.Actor{Name: "User Number 12"}, Target: &cairn.Target{Name: "Doc-7"}, Group: &cairn.Group{Name: "Tenant 3"},
			Changes: []cairn.Change{{Field: "status", Old: "Draft", New: "published"}, {Field: "n", Old: 1.5, New: map[string]any{"K": "V"}}}},
		{Title: "über Straße ÉCOLE İstanbul", Description: long + " short", Changes: []cairn.Change{{Field: "x" + long}}},
		{Title: "日本語のテキスト", Actor: &cairn.Actor{Name: "Zoë"}},
	} {
		var parts []string
		parts = append(parts, e.Title, e.Description)
		if e.Actor != nil {
			parts = append(parts, e.Actor.Name)
		}
		if e.Target != nil {
			parts = append(parts, e.Target.Name)
		}
		if e.Group != nil {
			parts = append(parts, e.Group.Name)
		}
		for _, c := range e.Changes {
			parts = append(parts, c.Field, cairn.ValueText(c.Old), cairn.ValueText(c.New))
		}
		want := ref(parts...)
		var got []string
		if v, ok := words(e).(pgtype.TSVector); ok {
			for _, l := range v.Lexemes {
				got = append(got, l.Word)
			}
		} else if words(e) != nil {
			t.Fatalf("words(%+v) = %T", e, words(e))
		}
		if !slices.Equal(got, want) {
			t.Errorf("words(%q) = %q, want %q", parts, got, want)
		}
	}
}

func BenchmarkWords(b *testing.B) {
	events := make([]cairn.Event, 100)
	for i := range events {
		events[i] = storetest.RealisticEvent(i)
	}
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		words(&events[i%len(events)])
	}
}
