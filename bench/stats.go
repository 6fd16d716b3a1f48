package main

import (
	"math"
	"slices"
	"strconv"
	"time"
)

// Latency keeps every sample; percentiles are exact (nearest rank).
//
// At 8 bytes a sample, a million requests cost 8 MB, which covers any
// realistic run of this tool.
type latency []time.Duration

// LatencySummary is in milliseconds.
type LatencySummary struct {
	Count  int     `json:"count"`
	MeanMs float64 `json:"mean_ms"`
	MinMs  float64 `json:"min_ms"`
	P50Ms  float64 `json:"p50_ms"`
	P90Ms  float64 `json:"p90_ms"`
	P99Ms  float64 `json:"p99_ms"`
	MaxMs  float64 `json:"max_ms"`
}

// percentile returns the nearest-rank p-th percentile (0 < p ≤ 100) of
// sorted: the smallest sample such that at least p% of the samples are ≤ it.
func percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	rank := int(math.Ceil(p / 100 * float64(len(sorted))))
	rank = min(max(rank, 1), len(sorted))
	return sorted[rank-1]
}

func summarize(samples []time.Duration) LatencySummary {
	if len(samples) == 0 {
		return LatencySummary{}
	}
	s := slices.Clone(samples)
	slices.Sort(s)
	var sum time.Duration
	for _, d := range s {
		sum += d
	}
	return LatencySummary{
		Count:  len(s),
		MeanMs: ms(sum / time.Duration(len(s))),
		MinMs:  ms(s[0]),
		P50Ms:  ms(percentile(s, 50)),
		P90Ms:  ms(percentile(s, 90)),
		P99Ms:  ms(percentile(s, 99)),
		MaxMs:  ms(s[len(s)-1]),
	}
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// fmtMs formats milliseconds with about three significant digits.
func fmtMs(v float64) string {
	prec := 1
	switch {
	case v < 1:
		prec = 3
	case v < 100:
		prec = 2
	}
	return strconv.FormatFloat(v, 'f', prec, 64) + "ms"
}

// errCounts counts failed attempts by kind: an HTTP status ("503"),
// "transport", or "rejected_item" (an item-level error inside a 201 batch).
type errCounts map[string]int64

func (e errCounts) merge(o errCounts) {
	for k, v := range o {
		e[k] += v
	}
}

func (e errCounts) total() int64 {
	var n int64
	for _, v := range e {
		n += v
	}
	return n
}
