package postgres

import (
	"slices"
	"strings"
	"unicode"
	"unicode/utf8"

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
func splitWords(text string) []string { return appendWords(nil, text) }

// appendWords appends the lowercased words of text to dst. ASCII, the
// common case, is lowered and split byte by byte without copying the text.
func appendWords(dst []string, text string) []string {
	start := -1
	lower := false // the word at start has upper-case or non-ASCII letters
	flush := func(end int) {
		if start < 0 {
			return
		}
		w := text[start:end]
		if lower {
			w = strings.ToLower(w)
		}
		dst = append(dst, w)
		start, lower = -1, false
	}
	for i := 0; i < len(text); {
		c := text[i]
		if c < utf8.RuneSelf {
			switch {
			case 'a' <= c && c <= 'z', '0' <= c && c <= '9':
			case 'A' <= c && c <= 'Z':
				lower = true
			default:
				flush(i)
				i++
				continue
			}
			if start < 0 {
				start = i
			}
			i++
			continue
		}
		r, n := utf8.DecodeRuneInString(text[i:])
		if unicode.IsLetter(r) || unicode.IsNumber(r) {
			if start < 0 {
				start = i
			}
			lower = true
		} else {
			flush(i)
		}
		i += n
	}
	flush(len(text))
	return dst
}

// words returns the tsvector of an event's free text, or nil when it has
// none.
func words(e *cairn.Event) any {
	// All the text, each part followed by a space (not part of a word), so
	// that it is lowered and split in one go.
	text := make([]byte, 0, 256)
	ascii := true
	add := func(s string) {
		if s == "" {
			return
		}
		for i := 0; i < len(s); i++ {
			ascii = ascii && s[i] < utf8.RuneSelf
		}
		text = append(text, s...)
		text = append(text, ' ')
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
		add(cairn.ValueText(c.Old))
		add(cairn.ValueText(c.New))
	}
	if ascii {
		// Lowered here, appendWords slices the words out of the one
		// string rather than allocating each word that had upper case.
		for i, c := range text {
			if 'A' <= c && c <= 'Z' {
				text[i] = c + 'a' - 'A'
			}
		}
	}
	all := appendWords(make([]string, 0, 32), string(text))
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
