package sqlite

import (
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
		for range 50 {
			at := since.Add(time.Duration(r.Int64N(int64(until.Sub(since)))))
			b := timeBuckets(7, at)
			if !slices.ContainsFunc(b[:], func(tok string) bool { return slices.Contains(toks, tok) }) {
				t.Fatalf("%v in [%v, %v) is in none of the window's buckets", at, since, until)
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
			b := timeBuckets(7, out)
			if slices.ContainsFunc(b[:], func(tok string) bool { return slices.Contains(toks, tok) }) {
				t.Fatalf("%v, outside [%v, %v) by more than %v, is in the window's buckets", out, since, until, timeGrain)
			}
		}
		// Tokens of another org never match.
		if slices.Contains(toks, timeBuckets(8, since)[7]) {
			t.Fatal("another org's bucket matched")
		}
	}
}

func TestTokensDiffer(t *testing.T) {
	seen := map[string]bool{}
	for _, tok := range []string{
		token(1, tokActorID, "u1"), token(2, tokActorID, "u1"), token(1, tokActorEmail, "u1"),
		token(1, tokActorID, "u2"), token(1, tokTarget, "doc\x00d1"), token(1, tokTarget, "do\x00cd1"),
	} {
		if seen[tok] {
			t.Fatalf("token %s repeats", tok)
		}
		seen[tok] = true
		if len(tok) != 18 || tok[0] != '0' {
			t.Fatalf("malformed token %q", tok)
		}
	}
}
