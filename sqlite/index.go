package sqlite

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/cairn-audit/cairn"
)

// The search index.
//
// Every search filter is answered from one FTS5 table, events_index, instead
// of a B-tree index per column. Its row for an event (rowid = gid) holds the
// event's free text and one key token per filterable value: the context, the
// action and each of its dotted prefixes, kind, outcome, actor type, id and
// email, target type, id and type+id, group and each '/'-bounded path
// prefix of the group id ("acme", "acme/finance" for "acme/finance/emea"),
// the bucket of event_time at each of ten granularities from the year to
// the hundredth of a second, and the leaf hash. A key token is "0", a field
// letter and 10 base-36 digits of FNV-1a(org id, field, value), so tokens
// of different orgs and fields never meet and any value survives the
// tokenizer; a time token is "0", a field letter, the org id, "z" and the
// bucket's "YYYYMMDD…" digits as one number in base 36.
//
// Tokens are short because the index pays for every byte: FTS5's tokenizer
// reads the body a character at a time, and a term that few events share
// (a target, a leaf hash) is stored again in every segment it is merged
// into. Hex tokens of 18 characters and decimal time buckets made an index
// of 114 bytes per event in BenchmarkIndexer; these make 93, and the
// indexer 8-11 % faster (format 4, docs/performance.md).
//
// Why: a B-tree index on a high-cardinality column (actors, targets) puts
// each new event on a random page, and SQLite writes every page a
// transaction dirties into the WAL: at 5,000 actors one such index cost a
// third of the bulk ingest rate, more as the table outgrew the cache. FTS5
// is an LSM: a transaction's tokens are sorted in memory and written as one
// new segment, merged in the background of later writes. A search ANDs the
// tokens of its filters (FTS5 intersects the posting lists, newest rowid
// first, seeking past the cursor), so two selective filters are as cheap as
// one, and a time window is an OR of the coarsest buckets that cover it.
//
// Tokens are only a fast path: the query re-checks every filter against the
// event's columns, so a hash collision can cost time but never a wrong row.

// Field letters of key tokens. Never change one: stored tokens use them.
const (
	tokContext      = 'x'
	tokAction       = 'a'
	tokActionPrefix = 'p'
	tokKind         = 'k'
	tokOutcome      = 'o'
	tokActorType    = 't'
	tokActorID      = 'i'
	tokActorEmail   = 'e'
	tokTargetType   = 'y'
	tokTargetID     = 's'
	tokTarget       = 'r' // type + "\x00" + id
	tokGroup        = 'g'
	tokGroupPrefix  = 'f' // each '/'-bounded path prefix of the group id
	tokNotBuiltin   = 'b' // value "1" on every event outside the built-in context
	tokYear         = 'v'
	tokMonth        = 'm'
	tokDay          = 'd'
	tokHour         = 'h'
	tokTenMinutes   = 'u'
	tokMinute       = 'n'
	tokTenSeconds   = 'w'
	tokSecond       = 'q'
	tokDecisecond   = 'c'
	tokCentisecond  = 'j'
	tokLeafHash     = 'l' // "0l" + 50 bits of the RFC 6962 leaf hash (leafHashToken)
)

// token returns the key token of one field value in one org: the top 50
// bits of FNV-1a over (org id, field, value), in 10 base-36 digits. A
// collision only costs a search the rows it re-checks (and can only be
// arranged within one org: the org id is hashed), so a cryptographic hash,
// which was 7 % of the server's CPU under bulk ingest, buys nothing here;
// with a million distinct values of one field, a value's token is shared
// by another with a chance of about one in a billion.
func token(orgID int64, field byte, value string) string {
	const offset, prime = 14695981039346656037, 1099511628211
	h := uint64(offset)
	for i := 56; i >= 0; i -= 8 {
		h = (h ^ uint64(byte(orgID>>i))) * prime
	}
	h = (h ^ uint64(field)) * prime
	for i := 0; i < len(value); i++ {
		h = (h ^ uint64(value[i])) * prime
	}
	return keyToken(field, h)
}

// keyToken is "0", field and the top 50 bits of h in 10 base-36 digits
// (36^10 > 2^51). FNV-1a's high bits depend on every input byte; its low
// bits do not mix as well.
func keyToken(field byte, h uint64) string {
	const digits = "0123456789abcdefghijklmnopqrstuvwxyz"
	var out [12]byte
	out[0], out[1] = '0', field
	v := h >> 14
	for i := len(out) - 1; i >= 2; i-- {
		out[i] = digits[v%36]
		v /= 36
	}
	return string(out[:])
}

// prefixBoundary reports whether an action prefix ends where a key token
// exists for it: right after a separator.
func prefixBoundary(p string) bool {
	return p != "" && strings.ContainsRune(".:/", rune(p[len(p)-1]))
}

// Time buckets, coarsest first: the field letter of each and how many
// digits of "YYYYMMDDhhmmsscc" (cc: hundredths of a second) name it.
//
// The finest is a hundredth of a second because a window's edges are
// rounded outwards to a bucket, and the events of the partial bucket past
// until are read and rejected before the first match (a search walks newest
// first): with seconds as the finest bucket, a one-minute window ending
// 0.05 s into a second took 50-340 ms at 10 M events written at 22,000 a
// second, against 2-14 ms ending on a whole second.
var timeFields = [...]struct {
	field  byte
	digits int
}{
	{tokYear, 4}, {tokMonth, 6}, {tokDay, 8}, {tokHour, 10},
	{tokTenMinutes, 11}, {tokMinute, 12}, {tokTenSeconds, 13}, {tokSecond, 14},
	{tokDecisecond, 15}, {tokCentisecond, 16},
}

// timeGrain is the finest time bucket.
const timeGrain = 10 * time.Millisecond

// timeToken is the token of the bucket of t named by its first digits of
// "YYYYMMDDhhmmsscc". Time tokens need no hash: "0", the field letter, the
// org id, "z" and those digits as one number in base 36 is one token to the
// tokenizer and unique per org (the field letter fixes how many digits).
func timeToken(orgID int64, field byte, t time.Time, digits int) string {
	var stamp [16]byte
	y, mo, d := t.Date()
	h, mi, sec := t.Clock()
	put := func(at, v, n int) {
		for i := at + n - 1; i >= at; i-- {
			stamp[i] = byte('0' + v%10)
			v /= 10
		}
	}
	put(0, y, 4)
	put(4, int(mo), 2)
	put(6, d, 2)
	put(8, h, 2)
	put(10, mi, 2)
	put(12, sec, 2)
	put(14, t.Nanosecond()/int(timeGrain), 2)
	var v uint64
	for _, c := range stamp[:digits] {
		v = v*10 + uint64(c-'0')
	}
	b := make([]byte, 0, 40)
	b = append(b, '0', field)
	b = strconv.AppendInt(b, orgID, 10)
	b = append(b, 'z')
	b = strconv.AppendUint(b, v, 36)
	return string(b)
}

// leafHashToken finds a leaf by its hash (proofs by leaf_hash). A leaf hash
// is already uniform, so its first 50 bits serve as the token; the query
// compares the whole stored hash.
func leafHashToken(h [32]byte) string {
	return keyToken(tokLeafHash, binary.BigEndian.Uint64(h[:8]))
}

// timeBuckets are the bucket tokens of an event time, coarsest first.
func timeBuckets(orgID int64, t time.Time) [len(timeFields)]string {
	t = t.UTC()
	var out [len(timeFields)]string
	for i, f := range timeFields {
		out[i] = timeToken(orgID, f.field, t, f.digits)
	}
	return out
}

// indexBody is the events_index row of an event: free text, then key tokens.
func indexBody(orgID, ctxID int64, e *cairn.Event, leafHash [32]byte) string {
	var b strings.Builder
	b.Grow(512)
	writeSearchText(&b, e)
	add := func(field byte, v string) {
		if v == "" {
			return
		}
		if b.Len() > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(token(orgID, field, v))
	}
	add(tokContext, strconv.FormatInt(ctxID, 10))
	if e.Context != cairn.BuiltinContext {
		// Lets a search that leaves out the built-in context (which grows
		// with every read) skip its events in the index instead of
		// walking them.
		add(tokNotBuiltin, "1")
	}
	add(tokAction, e.Action)
	for i := 0; i < len(e.Action)-1; i++ {
		if prefixBoundary(e.Action[:i+1]) {
			add(tokActionPrefix, e.Action[:i+1])
		}
	}
	add(tokKind, e.Kind)
	add(tokOutcome, e.Outcome)
	if a := e.Actor; a != nil {
		add(tokActorType, a.Type)
		add(tokActorID, a.ID)
		add(tokActorEmail, a.Email)
	}
	if t := e.Target; t != nil {
		add(tokTargetType, t.Type)
		add(tokTargetID, t.ID)
		if t.Type != "" && t.ID != "" {
			add(tokTarget, t.Type+"\x00"+t.ID)
		}
	}
	if g := e.Group; g != nil {
		add(tokGroup, g.ID)
		for i := 1; i < len(g.ID); i++ {
			if g.ID[i] == '/' {
				add(tokGroupPrefix, g.ID[:i])
			}
		}
	}
	for _, tok := range timeBuckets(orgID, e.EventTime) {
		b.WriteByte(' ')
		b.WriteString(tok)
	}
	b.WriteByte(' ')
	b.WriteString(leafHashToken(leafHash))
	return b.String()
}

// writeSearchText writes what free text matches: title, description, names,
// and changed field names and values.
func writeSearchText(b *strings.Builder, e *cairn.Event) {
	add := func(s string) {
		if s != "" {
			if b.Len() > 0 {
				b.WriteByte(' ')
			}
			b.WriteString(s)
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

// maxWindowTokens bounds the OR a time window becomes; a wider cover falls
// back to filtering while walking the commit order.
const maxWindowTokens = 256

// windowTokens returns bucket tokens whose union covers [since, until),
// rounded outwards to hundredths of a second (the query re-checks
// event_time), or nil when that needs more than maxWindowTokens buckets.
//
// The cover must be tight at both edges: a search walks newest first, so
// what it adds after until is walked and rejected before the first hit, and
// what it adds before since is walked before the search knows it is done.
// Between the edges it takes the coarsest buckets that fit, so a window of
// a day or a year costs a few dozen tokens.
func windowTokens(orgID int64, since, until time.Time) []string {
	since, until = since.UTC(), until.UTC()
	if !until.After(since) {
		return nil
	}
	t := since.Truncate(timeGrain)
	end := until.Truncate(timeGrain)
	if end.Before(until) {
		end = end.Add(timeGrain)
	}
	var out []string
	for t.Before(end) {
		if len(out) == maxWindowTokens {
			return nil
		}
		y, m, d := t.Date()
		h, mi, sec := t.Clock()
		cs := t.Nanosecond() / int(timeGrain)
		if cs != 0 {
			sec = -1 // no bucket of a second or more starts here
		}
		fits := func(next time.Time) bool { return !next.After(end) }
		var next time.Time
		var field byte
		var digits int
		switch {
		case h == 0 && mi == 0 && sec == 0 && d == 1 && m == 1 && fits(t.AddDate(1, 0, 0)):
			next, field, digits = time.Date(y+1, 1, 1, 0, 0, 0, 0, time.UTC), tokYear, 4
		case h == 0 && mi == 0 && sec == 0 && d == 1 && fits(t.AddDate(0, 1, 0)):
			next, field, digits = time.Date(y, m+1, 1, 0, 0, 0, 0, time.UTC), tokMonth, 6
		case h == 0 && mi == 0 && sec == 0 && fits(t.AddDate(0, 0, 1)):
			next, field, digits = time.Date(y, m, d+1, 0, 0, 0, 0, time.UTC), tokDay, 8
		case mi == 0 && sec == 0 && fits(t.Add(time.Hour)):
			next, field, digits = t.Add(time.Hour), tokHour, 10
		case mi%10 == 0 && sec == 0 && fits(t.Add(10*time.Minute)):
			next, field, digits = t.Add(10*time.Minute), tokTenMinutes, 11
		case sec == 0 && fits(t.Add(time.Minute)):
			next, field, digits = t.Add(time.Minute), tokMinute, 12
		case sec%10 == 0 && fits(t.Add(10*time.Second)):
			next, field, digits = t.Add(10*time.Second), tokTenSeconds, 13
		case sec >= 0 && fits(t.Add(time.Second)):
			next, field, digits = t.Add(time.Second), tokSecond, 14
		case cs%10 == 0 && fits(t.Add(10*timeGrain)):
			next, field, digits = t.Add(10*timeGrain), tokDecisecond, 15
		default:
			next, field, digits = t.Add(timeGrain), tokCentisecond, 16
		}
		out = append(out, timeToken(orgID, field, t, digits))
		t = next
	}
	return out
}

// matchQuery is an FTS5 query string that ANDs its terms; each term is a
// quoted phrase or a parenthesised OR of quoted phrases, so no FTS5 syntax
// from a caller reaches the engine.
type matchQuery struct{ terms []string }

func quote(s string) string { return `"` + strings.ReplaceAll(s, `"`, `""`) + `"` }

func (q *matchQuery) and(tok string) { q.terms = append(q.terms, quote(tok)) }

func (q *matchQuery) anyOf(toks []string) {
	quoted := make([]string, len(toks))
	for i, t := range toks {
		quoted[i] = quote(t)
	}
	q.terms = append(q.terms, "("+strings.Join(quoted, " OR ")+")")
}

// groupTokens are the tokens whose union is the events of the given group
// ids and group path prefixes.
func groupTokens(orgID int64, ids, prefixes []string) []string {
	var out []string
	for _, g := range ids {
		out = append(out, token(orgID, tokGroup, g))
	}
	for _, p := range prefixes {
		p = strings.TrimRight(p, "/")
		if p != "" {
			out = append(out, token(orgID, tokGroup, p), token(orgID, tokGroupPrefix, p))
		}
	}
	return out
}

func (q *matchQuery) String() string { return strings.Join(q.terms, " AND ") }
