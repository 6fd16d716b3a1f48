package postgres

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"unicode"

	"github.com/cairn-audit/cairn"
	"github.com/jackc/pgx/v5/pgtype"
)

// Free text.
//
// The words column is a tsvector of the event's free text (title,
// description, actor, target and group names, changed field names and
// values), searched through a GIN index. The engine tokenises in Go rather
// than with to_tsvector: a word is a run of letters and digits, lowercased,
// as the embedded engine's tokenizer makes it, so both engines answer a
// text query alike whatever text search configuration the database has,
// and no caller text is ever parsed as tsquery syntax.

// maxWord bounds a lexeme: longer runs are not indexed (PostgreSQL refuses
// lexemes past 2 KiB; nobody searches for such a word).
const maxWord = 256

// splitWords splits text into lowercased words.
func splitWords(text string) []string {
	return strings.FieldsFunc(strings.ToLower(text), func(r rune) bool { return !unicode.IsLetter(r) && !unicode.IsNumber(r) })
}

// words returns the tsvector of an event's free text, or nil when it has
// none.
func words(e *cairn.Event) any {
	var all []string
	add := func(s string) {
		if s != "" {
			all = append(all, splitWords(s)...)
		}
	}
	add(e.Title)
	add(e.Description)
	if e.Actor != nil {
		add(e.Actor.Name)
	}
	if e.Target != nil {
		add(e.Target.Name)
	}
	if e.Group != nil {
		add(e.Group.Name)
	}
	for _, c := range e.Changes {
		add(c.Field)
		add(scalarText(c.Old))
		add(scalarText(c.New))
	}
	all = slices.DeleteFunc(all, func(w string) bool { return len(w) > maxWord })
	if len(all) == 0 {
		return nil
	}
	slices.Sort(all)
	all = slices.Compact(all)
	v := pgtype.TSVector{Valid: true, Lexemes: make([]pgtype.TSVectorLexeme, len(all))}
	for i, w := range all {
		v.Lexemes[i].Word = w
	}
	return v
}

func scalarText(v any) string {
	switch v := v.(type) {
	case nil:
		return ""
	case string:
		return v
	case bool, float64, int64, int:
		return fmt.Sprint(v)
	default:
		b, _ := json.Marshal(v)
		return string(b)
	}
}

// textQuery returns the tsquery (text form) that ANDs the words of text,
// or "" when nothing can match (text without words, or with a word too
// long to be indexed). Each word is quoted, so the query has no operators
// but the ANDs.
func textQuery(text string) string {
	ws := splitWords(text)
	if len(ws) == 0 {
		return ""
	}
	for i, w := range ws {
		if len(w) > maxWord {
			return ""
		}
		ws[i] = "'" + strings.ReplaceAll(strings.ReplaceAll(w, `\`, `\\`), "'", "''") + "'"
	}
	return strings.Join(ws, " & ")
}
