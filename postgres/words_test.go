package postgres

import (
	"slices"
	"strings"
	"testing"
	"unicode"
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
