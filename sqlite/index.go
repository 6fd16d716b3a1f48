package sqlite

import (
	"encoding/binary"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/cairn-audit/cairn"
	"golang.org/x/text/unicode/norm"
)

// The search index's terms.
//
// Every search filter is answered from one inverted index (postings.go)
// instead of a B-tree index per column. An event's terms are a 64-bit hash
// of each filterable value: the context, the action and each of its dotted
// prefixes, kind, outcome, actor type, id and email, target type, id and
// type+id, group and each '/'-bounded path prefix of the group id ("acme",
// "acme/finance" for "acme/finance/emea"), the bucket of event_time at each
// of ten granularities from the year to the hundredth of a second, each
// word of its free text, and the leaf hash. A term is FNV-1a over (org id,
// field letter, value) with its top bit cleared, so terms of different
// orgs and fields do not meet; a leaf hash's term is the hash's first 64
// bits with the top bit set (leafHashToken).
//
// Why: a B-tree index on a high-cardinality column (actors, targets) puts
// each new event on a random page, and SQLite writes every page a
// transaction dirties into the WAL: at 5,000 actors one such index cost a
// third of the bulk ingest rate, more as the table outgrew the cache. The
// inverted index is an LSM: a transaction's terms are sorted in memory and
// written as one new segment. A search ANDs the terms of its filters
// (postings.go's cursors intersect the posting lists, newest gid first,
// seeking past the cursor), so two selective filters are as cheap as one,
// and a time window is an OR of the coarsest buckets that cover it.
//
// Terms are only a fast path: the query re-checks every filter against the
// event's columns, so a hash collision can cost time but never a wrong row.
// Free text has no column: a word matches another word of the same org
// whose hash collides, a chance of about n/2^63 for n distinct words.

// Field letters of terms. Never change one: stored terms use them.
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
	tokTime         = 'v' // a bucket of event_time (timeToken)
	tokText         = 'z' // a word of free text (wordTerms)
)

// fnv1a64 offset basis and prime.
const fnvOffset, fnvPrime = 14695981039346656037, 1099511628211

// fnvHead is FNV-1a's state after the org id and field letter.
func fnvHead(orgID int64, field byte) uint64 {
	h := uint64(fnvOffset)
	for i := 56; i >= 0; i -= 8 {
		h = (h ^ uint64(byte(orgID>>i))) * fnvPrime
	}
	return (h ^ uint64(field)) * fnvPrime
}

// token returns the term of one field value in one org: FNV-1a over (org
// id, field, value). A collision only costs a search the rows it re-checks
// (and can only be arranged within one org: the org id is hashed), so a
// cryptographic hash, which was 7 % of the server's CPU under bulk ingest,
// buys nothing here.
func token(orgID int64, field byte, value string) int64 {
	h := fnvHead(orgID, field)
	for i := 0; i < len(value); i++ {
		h = (h ^ uint64(value[i])) * fnvPrime
	}
	return keyTerm(h)
}

// prefixBoundary reports whether an action prefix ends where a term
// exists for it: right after a separator.
func prefixBoundary(p string) bool {
	return p != "" && strings.ContainsRune(".:/", rune(p[len(p)-1]))
}

// Time buckets, coarsest first: how many digits of "YYYYMMDDhhmmsscc"
// (cc: hundredths of a second) name each: the year, month, day, hour, ten
// minutes, minute, ten seconds, second, tenth and hundredth of a second.
//
// The finest is a hundredth of a second because a window's edges are
// rounded outwards to a bucket, and the events of the partial bucket past
// until are read and rejected before the first match (a search walks newest
// first): with seconds as the finest bucket, a one-minute window ending
// 0.05 s into a second took 50-340 ms at 10 M events written at 22,000 a
// second, against 2-14 ms ending on a whole second.
var timeDigits = [...]int{4, 6, 8, 10, 11, 12, 13, 14, 15, 16}

// timeGrain is the finest time bucket.
const timeGrain = 10 * time.Millisecond

// timeStamp is "YYYYMMDDhhmmsscc" of t, which is in UTC.
func timeStamp(t time.Time) [16]byte {
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
	return stamp
}

// timeToken is the term of the bucket of t (UTC) named by the first digits
// of its stamp: FNV-1a over (org id, tokTime, those digits). The number of
// digits fixes the granularity, so the buckets of one event share a
// prefix, hashed once (timeBuckets).
func timeToken(orgID int64, t time.Time, digits int) int64 {
	stamp := timeStamp(t)
	h := fnvHead(orgID, tokTime)
	for _, c := range stamp[:digits] {
		h = (h ^ uint64(c)) * fnvPrime
	}
	return keyTerm(h)
}

// keyTerm is a term of a hash: its top bit clear, so that terms and
// leaf-hash terms (leafHashToken) never meet.
func keyTerm(h uint64) int64 { return int64(h &^ (1 << 63)) }

// leafHashToken finds a leaf by its hash (proofs by leaf_hash). A leaf
// hash is already uniform, so its first 64 bits, with the top bit set,
// serve as the term; the query compares the whole stored hash. The term is
// negative, and no other is: Bloom filters leave these out (one per event,
// they were most of the filters' memory, and proofs by leaf hash are rare
// enough to probe every segment).
func leafHashToken(h [32]byte) int64 {
	return int64(binary.BigEndian.Uint64(h[:8]) | 1<<63)
}

// timeBuckets are the bucket terms of an event time, coarsest first.
func timeBuckets(orgID int64, t time.Time) [len(timeDigits)]int64 {
	stamp := timeStamp(t.UTC())
	h := fnvHead(orgID, tokTime)
	var out [len(timeDigits)]int64
	k := 0
	for i, c := range stamp {
		h = (h ^ uint64(c)) * fnvPrime
		if i+1 == timeDigits[k] {
			out[k] = keyTerm(h)
			if k++; k == len(out) {
				break
			}
		}
	}
	return out
}

// eventTerms appends an event's terms to out.
func eventTerms(out []int64, orgID, ctxID int64, e *cairn.Event, leafHash [32]byte) []int64 {
	add := func(field byte, v string) {
		if v != "" {
			out = append(out, token(orgID, field, v))
		}
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
	b := timeBuckets(orgID, e.EventTime)
	out = append(out, b[:]...)
	out = append(out, leafHashToken(leafHash))
	// Free text: title, description, names, and changed field names and
	// values.
	text := func(s string) {
		wordTerms(orgID, s, func(t int64) { out = append(out, t) })
	}
	text(e.Title)
	text(e.Description)
	if e.Actor != nil {
		text(e.Actor.Name)
	}
	if e.Target != nil {
		text(e.Target.Name)
	}
	if e.Group != nil {
		text(e.Group.Name)
	}
	for _, c := range e.Changes {
		text(c.Field)
		text(cairn.ValueText(c.Old))
		text(cairn.ValueText(c.New))
	}
	return out
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
func windowTokens(orgID int64, since, until time.Time) []termRef {
	since, until = since.UTC(), until.UTC()
	if !until.After(since) {
		return nil
	}
	t := since.Truncate(timeGrain)
	end := until.Truncate(timeGrain)
	if end.Before(until) {
		end = end.Add(timeGrain)
	}
	var out []termRef
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
		var digits int
		switch {
		case h == 0 && mi == 0 && sec == 0 && d == 1 && m == 1 && fits(t.AddDate(1, 0, 0)):
			next, digits = time.Date(y+1, 1, 1, 0, 0, 0, 0, time.UTC), 4
		case h == 0 && mi == 0 && sec == 0 && d == 1 && fits(t.AddDate(0, 1, 0)):
			next, digits = time.Date(y, m+1, 1, 0, 0, 0, 0, time.UTC), 6
		case h == 0 && mi == 0 && sec == 0 && fits(t.AddDate(0, 0, 1)):
			next, digits = time.Date(y, m, d+1, 0, 0, 0, 0, time.UTC), 8
		case mi == 0 && sec == 0 && fits(t.Add(time.Hour)):
			next, digits = t.Add(time.Hour), 10
		case mi%10 == 0 && sec == 0 && fits(t.Add(10*time.Minute)):
			next, digits = t.Add(10*time.Minute), 11
		case sec == 0 && fits(t.Add(time.Minute)):
			next, digits = t.Add(time.Minute), 12
		case sec%10 == 0 && fits(t.Add(10*time.Second)):
			next, digits = t.Add(10*time.Second), 13
		case sec >= 0 && fits(t.Add(time.Second)):
			next, digits = t.Add(time.Second), 14
		case cs%10 == 0 && fits(t.Add(10*timeGrain)):
			next, digits = t.Add(10*timeGrain), 15
		default:
			next, digits = t.Add(timeGrain), 16
		}
		out = append(out, termRef{term: timeToken(orgID, t, digits), tmin: micros(t), tmax: micros(next)})
		t = next
	}
	return out
}

// A termRef is a term of a query; a time bucket's also carries the
// bucket's range of event times in microseconds, [tmin, tmax), so segments
// without events in it are skipped.
type termRef struct{ term, tmin, tmax int64 }

// A termQuery is an AND of ORs of terms.
type termQuery struct{ all [][]termRef }

func (q *termQuery) and(t int64) { q.all = append(q.all, []termRef{{term: t}}) }

func (q *termQuery) anyOf(ts []termRef) { q.all = append(q.all, ts) }

func (q *termQuery) empty() bool { return len(q.all) == 0 }

// refs are terms as termRefs.
func refs(ts []int64) []termRef {
	out := make([]termRef, len(ts))
	for i, t := range ts {
		out[i] = termRef{term: t}
	}
	return out
}

// groupTokens are the terms whose union is the events of the given group
// ids and group path prefixes.
func groupTokens(orgID int64, ids, prefixes []string) []int64 {
	var out []int64
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

// wordTerms calls add with the term of each word of s in org orgID. A word
// is a run of letters, digits and combining marks; it is folded to lower
// case without diacritics (NFD, marks removed), so "Élan" finds "elan".
func wordTerms(orgID int64, s string, add func(int64)) {
	start, ascii := -1, true
	for i, r := range s {
		if wordRune(r) {
			if start < 0 {
				start, ascii = i, true
			}
			ascii = ascii && r < utf8.RuneSelf
			continue
		}
		if start >= 0 {
			add(wordTerm(orgID, s[start:i], ascii))
			start = -1
		}
	}
	if start >= 0 {
		add(wordTerm(orgID, s[start:], ascii))
	}
}

func wordRune(r rune) bool {
	if r < utf8.RuneSelf {
		return 'a' <= r && r <= 'z' || 'A' <= r && r <= 'Z' || '0' <= r && r <= '9'
	}
	return unicode.IsLetter(r) || unicode.IsNumber(r) || unicode.Is(unicode.Mn, r)
}

// wordTerm is the term of one word.
func wordTerm(orgID int64, w string, ascii bool) int64 {
	h := fnvHead(orgID, tokText)
	if ascii {
		for i := 0; i < len(w); i++ {
			c := w[i]
			if 'A' <= c && c <= 'Z' {
				c += 'a' - 'A'
			}
			h = (h ^ uint64(c)) * fnvPrime
		}
		return keyTerm(h)
	}
	var b []byte
	for _, r := range norm.NFD.String(w) {
		if !unicode.Is(unicode.Mn, r) {
			b = utf8.AppendRune(b, unicode.ToLower(r))
		}
	}
	for _, c := range b {
		h = (h ^ uint64(c)) * fnvPrime
	}
	return keyTerm(h)
}

// textTerms are the terms of the words of a free-text query, which must
// all match: "foo-bar" means foo AND bar.
func textTerms(orgID int64, text string) []int64 {
	var out []int64
	wordTerms(orgID, text, func(t int64) { out = append(out, t) })
	return out
}
