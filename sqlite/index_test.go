package sqlite

import (
	"encoding/binary"
	fnv1a "hash/fnv"
	"math/rand/v2"
	"slices"
	"testing"
	"time"
)

// TestWindowTokensCover: every time inside a window falls in one of its
// bucket tokens, and the cover never needs more tokens than allowed.
func TestWindowTokensCover(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	base := time.Date(2024, 11, 28, 0, 0, 0, 0, time.UTC)
	for range 2000 {
		since := base.Add(time.Duration(r.Int64N(int64(3 * 365 * 24 * time.Hour))))
		until := since.Add(time.Duration(r.Int64N(int64([]time.Duration{time.Hour, 50 * time.Hour, 90 * 24 * time.Hour, 800 * 24 * time.Hour}[r.IntN(4)]))))
		toks := windowTokens(7, since, until)
		if !until.After(since) {
			if toks != nil {
				t.Fatalf("empty window [%v, %v) has tokens", since, until)
			}
			continue
		}
		if toks == nil {
			t.Fatalf("window [%v, %v) needs more than %d tokens", since, until, maxWindowTokens)
		}
		in := map[int64]termRef{}
		for _, tr := range toks {
			in[tr.term] = tr
		}
		has := func(b [len(timeDigits)]int64) (termRef, bool) {
			for _, tok := range b {
				if tr, ok := in[tok]; ok {
					return tr, true
				}
			}
			return termRef{}, false
		}
		for range 50 {
			at := since.Add(time.Duration(r.Int64N(int64(until.Sub(since)))))
			tr, ok := has(timeBuckets(7, at))
			if !ok {
				t.Fatalf("%v in [%v, %v) is in none of the window's buckets", at, since, until)
			}
			if m := micros(at); m < tr.tmin || m >= tr.tmax {
				t.Fatalf("%v is in a bucket whose range is [%d, %d)", at, tr.tmin, tr.tmax)
			}
		}
		// Tight to a hundredth of a second at both edges: a search walks
		// newest first, and what the cover holds past until is read and
		// rejected before the first match.
		after := until.Truncate(timeGrain)
		if after.Before(until) {
			after = after.Add(timeGrain)
		}
		before := since.Truncate(timeGrain).Add(-time.Nanosecond)
		for _, out := range []time.Time{after, before} {
			if _, ok := has(timeBuckets(7, out)); ok {
				t.Fatalf("%v, outside [%v, %v) by more than %v, is in the window's buckets", out, since, until, timeGrain)
			}
		}
		// Tokens of another org never match.
		if _, ok := in[timeBuckets(8, since)[7]]; ok {
			t.Fatal("another org's bucket matched")
		}
	}
}

func TestTokensDiffer(t *testing.T) {
	seen := map[int64]bool{}
	for _, tok := range []int64{
		token(1, tokActorID, "u1"), token(2, tokActorID, "u1"), token(1, tokActorEmail, "u1"),
		token(1, tokActorID, "u2"), token(1, tokTarget, "doc\x00d1"), token(1, tokTarget, "do\x00cd1"),
		wordTerm(1, "u1", true), wordTerm(2, "u1", true),
	} {
		if seen[tok] {
			t.Fatalf("term %d repeats", tok)
		}
		seen[tok] = true
	}
}

// TestTokenEncoding pins the terms: stored indexes hold them, so a change
// here needs a new indexVersion.
func TestTokenEncoding(t *testing.T) {
	var h [32]byte
	for i := range h {
		h[i] = 0xff
	}
	at := time.Date(2026, 12, 2, 13, 45, 7, 890_000_000, time.UTC)
	b := timeBuckets(12, at)
	const top = 1 << 63 // set in leaf-hash terms only
	for got, want := range map[int64]uint64{
		token(1, tokActorID, "u1"):   fnv(1, tokActorID, "u1") &^ top,
		leafHashToken(h):             1<<64 - 1,
		leafHashToken([32]byte{}):    top,
		b[0]:                         fnv(12, tokTime, "2026") &^ top,
		b[len(b)-1]:                  fnv(12, tokTime, "2026120213450789") &^ top,
		timeToken(3, at, 8):          fnv(3, tokTime, "20261202") &^ top,
		wordTerm(4, "Zebra", true):   fnv(4, tokText, "zebra") &^ top,
		wordTerm(4, "Élan", false):   fnv(4, tokText, "elan") &^ top,
		wordTerm(4, "STRASSE", true): fnv(4, tokText, "strasse") &^ top,
	} {
		if uint64(got) != want {
			t.Errorf("term %x, want %x", uint64(got), want)
		}
	}
}

// TestWordTerms: words are runs of letters, digits and combining marks,
// folded to lower case without diacritics.
func TestWordTerms(t *testing.T) {
	for text, want := range map[string][]string{
		"Invoice #42 approved": {"invoice", "42", "approved"},
		"foo-bar_baz":          {"foo", "bar", "baz"},
		"Crème brûlée, ÉLAN":   {"creme", "brulee", "elan"},
		"cre\u0300me":          {"creme"},
		"日本語 テキスト":             {"日本語", "テキスト"},
		"  ":                   nil,
		"naïve:Zoë/Ørsted":     {"naive", "zoe", "ørsted"},
	} {
		got := textTerms(9, text)
		var exp []int64
		for _, w := range want {
			exp = append(exp, int64(fnv(9, tokText, w)&^(1<<63)))
		}
		if !slices.Equal(got, exp) {
			t.Errorf("%q: terms %x, want those of %q", text, got, want)
		}
	}
}

// fnv is FNV-1a over (org id, field, value), written out again.
func fnv(orgID int64, field byte, value string) uint64 {
	h := fnv1a.New64a()
	var org [8]byte
	binary.BigEndian.PutUint64(org[:], uint64(orgID))
	h.Write(org[:])
	h.Write([]byte{field})
	h.Write([]byte(value))
	return h.Sum64()
}
