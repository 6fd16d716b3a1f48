package sqlite

import (
	"encoding/binary"
	fnv1a "hash/fnv"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
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
		if len(tok) != 12 || tok[0] != '0' || strings.Trim(tok, "0123456789abcdefghijklmnopqrstuvwxyz") != "" {
			t.Fatalf("malformed token %q", tok)
		}
	}
}

// TestTokenEncoding pins the token formats: stored indexes hold them, so a
// change here needs a new indexVersion.
func TestTokenEncoding(t *testing.T) {
	var h [32]byte
	for i := range h {
		h[i] = 0xff
	}
	at := time.Date(2026, 12, 2, 13, 45, 7, 890_000_000, time.UTC)
	b := timeBuckets(12, at)
	for got, want := range map[string]string{
		token(1, tokActorID, "u1"):  "0i" + base36(fnv(1, tokActorID, "u1")>>14, 10),
		leafHashToken(h):            "0l" + base36(1<<50-1, 10),
		leafHashToken([32]byte{}):   "0l0000000000",
		b[0]:                        "0v12z" + strconv.FormatUint(2026, 36),
		b[len(b)-1]:                 "0j12z" + strconv.FormatUint(2026120213450789, 36),
		timeToken(3, tokDay, at, 8): "0d3z" + strconv.FormatUint(20261202, 36),
	} {
		if got != want {
			t.Errorf("token %q, want %q", got, want)
		}
	}
}

// base36 is v in base 36, zero-padded to width digits.
func base36(v uint64, width int) string {
	s := strconv.FormatUint(v, 36)
	return strings.Repeat("0", max(0, width-len(s))) + s
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
