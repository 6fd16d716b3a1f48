package postgres

import (
	"math"
	"slices"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"
)

// Time marks.
//
// Searches walk an org's commit order (gid) newest first. A time window
// on event_time alone gives the walk nothing to seek to: without help it
// passes every event committed after the window before it finds one inside
// (1.7 s at p99 at 10 million events). So appends keep, in the same
// transaction, for each org and each second, minute, hour and day of
// event_time, the smallest and largest gid of the events in it
// (time_marks). A window is covered by a few such buckets — whole days in
// the middle, hours, minutes and seconds at the edges, rounded outwards to
// whole seconds — and every event in the window has a gid between the
// smallest min_gid and the largest max_gid of its cover, so the walk is
// bounded to that stretch; the query still checks event_time exactly.
// When events arrive roughly in event-time order (the common case) the
// stretch is little more than the window's own events.
//
// Cost: a handful of upserts per append transaction (one per distinct
// bucket of its rows and level, usually eight), under the org's commit
// clock, so uncontended; one row per second with events per org.

// markLevels are the bucket sizes in seconds, finest first; the level is
// the index.
var markLevels = [...]int64{1, 60, 3600, 86400}

func floorDiv(a, b int64) int64 {
	q := a / b
	if a%b != 0 && (a < 0) != (b < 0) {
		q--
	}
	return q
}

// queueTimeMarks widens the time marks of the buckets the rows fall in to
// their gids.
func queueTimeMarks(batch *pgx.Batch, rows []placed) {
	type key struct {
		org    int64
		level  int
		bucket int64
	}
	type span struct{ lo, hi int64 }
	marks := map[key]span{}
	var keys []key
	for i := range rows {
		sec := rows[i].event.EventTime.Unix()
		for level, size := range markLevels {
			k := key{rows[i].ref.orgID, level, floorDiv(sec, size)}
			sp, ok := marks[k]
			if !ok {
				keys = append(keys, k)
				sp = span{rows[i].gid, rows[i].gid}
			}
			marks[k] = span{min(sp.lo, rows[i].gid), max(sp.hi, rows[i].gid)}
		}
	}
	slices.SortFunc(keys, func(a, b key) int {
		switch {
		case a.org != b.org:
			return cmpInt(a.org, b.org)
		case a.level != b.level:
			return a.level - b.level
		}
		return cmpInt(a.bucket, b.bucket)
	})
	for _, k := range keys {
		sp := marks[k]
		batch.Queue(`INSERT INTO time_marks (org_id, level, bucket, min_gid, max_gid) VALUES ($1, $2, $3, $4, $5)
			ON CONFLICT (org_id, level, bucket) DO UPDATE SET min_gid = least(time_marks.min_gid, excluded.min_gid),
			max_gid = greatest(time_marks.max_gid, excluded.max_gid)`, k.org, k.level, k.bucket, sp.lo, sp.hi)
	}
}

func cmpInt(a, b int64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// markRange is a range of buckets of one level, both ends inclusive.
type markRange struct {
	level  int
	lo, hi int64
}

const (
	openLow  = math.MinInt64
	openHigh = math.MaxInt64
)

// cover returns bucket ranges whose union covers the seconds [a, b)
// (a = openLow or b = openHigh for an open end), coarsest buckets in the
// middle: at most two ranges per level below days and one of days.
func cover(a, b int64) []markRange {
	var out []markRange
	for level := 0; level < len(markLevels)-1; level++ {
		size, next := markLevels[level], markLevels[level+1]
		if a != openLow {
			head := floorDiv(a+next-1, next) * next // the next coarser boundary
			if b != openHigh && head >= b {
				return append(out, markRange{level, floorDiv(a, size), floorDiv(b-1, size)})
			}
			if a < head {
				out = append(out, markRange{level, floorDiv(a, size), floorDiv(head, size) - 1})
				a = head
			}
		}
		if b != openHigh {
			tail := floorDiv(b, next) * next
			if a != openLow && tail <= a {
				return append(out, markRange{level, floorDiv(a, size), floorDiv(b-1, size)})
			}
			if tail < b {
				out = append(out, markRange{level, floorDiv(tail, size), floorDiv(b-1, size)})
				b = tail
			}
		}
	}
	day := markLevels[len(markLevels)-1]
	r := markRange{len(markLevels) - 1, openLow, openHigh}
	if a != openLow {
		r.lo = floorDiv(a, day)
	}
	if b != openHigh {
		r.hi = floorDiv(b, day) - 1
	}
	if r.lo <= r.hi {
		out = append(out, r)
	}
	return out
}

// windowSeconds rounds a window outwards to whole seconds: [a, b).
func windowSeconds(since, until time.Time) (a, b int64) {
	a, b = openLow, openHigh
	if !since.IsZero() {
		a = since.Unix() // Unix truncates towards the past: floor
	}
	if !until.IsZero() {
		b = until.Unix()
		if until.After(time.Unix(b, 0)) {
			b++
		}
	}
	return a, b
}

// gidBounds returns the SQL conditions bounding e.gid to the time marks
// of the window's cover, with their arguments appended to args ($1 is the
// org id).
func gidBounds(args []any, since, until time.Time) ([]string, []any) {
	a, b := windowSeconds(since, until)
	rs := cover(a, b)
	levels := make([]int32, len(rs))
	los := make([]int64, len(rs))
	his := make([]int64, len(rs))
	for i, r := range rs {
		levels[i], los[i], his[i] = int32(r.level), r.lo, r.hi
	}
	args = append(args, levels, los, his)
	n := len(args)
	from := ` FROM unnest($` + strconv.Itoa(n-2) + `::int[], $` + strconv.Itoa(n-1) + `::bigint[], $` + strconv.Itoa(n) +
		`::bigint[]) AS r (level, lo, hi) JOIN time_marks t ON t.org_id = $1 AND t.level = r.level AND t.bucket BETWEEN r.lo AND r.hi)`
	return []string{"e.gid >= (SELECT min(t.min_gid)" + from, "e.gid <= (SELECT max(t.max_gid)" + from}, args
}
