package postgres

import (
	"math/rand/v2"
	"testing"
)

// TestCover: the cover of [a, b) is exactly the seconds [a, b), with no
// bucket twice, in at most seven ranges.
func TestCover(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	check := func(a, b int64) {
		t.Helper()
		rs := cover(a, b)
		if len(rs) > 7 {
			t.Fatalf("cover(%d, %d): %d ranges", a, b, len(rs))
		}
		seen := map[int64]bool{}
		for _, x := range rs {
			size := markLevels[x.level]
			for bk := x.lo; bk <= x.hi; bk++ {
				for s := bk * size; s < (bk+1)*size; s++ {
					if seen[s] {
						t.Fatalf("cover(%d, %d) = %v: second %d twice", a, b, rs, s)
					}
					seen[s] = true
				}
			}
		}
		if int64(len(seen)) != b-a {
			t.Fatalf("cover(%d, %d) = %v: %d seconds, want %d", a, b, rs, len(seen), b-a)
		}
		for s := a; s < b; s++ {
			if !seen[s] {
				t.Fatalf("cover(%d, %d) = %v: second %d missing", a, b, rs, s)
			}
		}
	}
	for _, c := range [][2]int64{{0, 1}, {59, 61}, {-1, 1}, {-86401, 86401}, {3599, 3601}, {0, 86400}, {1, 86400 * 2}, {-7200, -3600}} {
		check(c[0], c[1])
	}
	for range 300 {
		a := r.Int64N(4*86400) - 2*86400
		b := a + 1 + r.Int64N([]int64{30, 200, 5000, 3 * 86400}[r.IntN(4)])
		check(a, b)
	}
	// Open ends: the finer ranges sit at the closed end, days run to the
	// open one.
	rs := cover(90061, openHigh) // 1 day, 1 hour, 1 minute, 1 second
	if last := rs[len(rs)-1]; last.level != 3 || last.lo != 2 || last.hi != openHigh {
		t.Fatalf("cover(90061, open) = %v", rs)
	}
	rs = cover(openLow, 90061)
	if first := rs[len(rs)-1]; first.level != 3 || first.lo != openLow || first.hi != 0 {
		t.Fatalf("cover(open, 90061) = %v", rs)
	}
	if rs := cover(openLow, openHigh); len(rs) != 1 || rs[0] != (markRange{3, openLow, openHigh}) {
		t.Fatalf("cover(open, open) = %v", rs)
	}
}
