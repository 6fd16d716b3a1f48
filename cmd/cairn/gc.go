package main

import (
	"log/slog"
	"math"
	"os"
	"runtime/debug"
	"runtime/metrics"
	"strconv"

	"github.com/KimMachineGun/automemlimit/memlimit"
)

// serveGCPercent is the garbage collector's target for cairn serve when
// GOGC is not set. The server's live heap is small (SQLite's caches are
// not Go memory), so with Go's default of 100 a collection ran after every
// few megabytes of requests: with 64 single-event writers, GOGC=400 took
// 19 % less CPU per event and wrote 24 % more events per second (ABBA
// runs, docs/performance.md); a bulk load peaked at 520 instead of 400 MB
// resident.
const serveGCPercent = 400

// serveMemoryRatio is the share of the memory limit (the cgroup's, else
// the machine's) that becomes the Go heap's soft limit when GOMEMLIMIT is
// not set: near it the collector works harder instead of letting the
// higher GOGC grow the heap into an out-of-memory kill. The rest is left
// to SQLite's page caches, which live outside the Go heap.
const serveMemoryRatio = 0.7

// tuneGC sets the collector's defaults for a server process. GOGC and
// GOMEMLIMIT, when set, win; AUTOMEMLIMIT=off leaves the limit unset.
func tuneGC(logger *slog.Logger) {
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(serveGCPercent)
	}
	limit, err := memlimit.Set(
		memlimit.WithProvider(memlimit.ApplyFallback(memlimit.FromCgroup, memlimit.FromSystem)),
		memlimit.WithRatio(serveMemoryRatio),
	)
	if err != nil {
		logger.Warn("could not set a soft memory limit for the Go heap; set GOMEMLIMIT", "err", err)
	}
	logger.Info("garbage collector", "gc_percent", currentGCPercent(), "memory_limit_bytes", limit)
}

// currentGCPercent reads the collector's target: a number or "off".
func currentGCPercent() string {
	s := []metrics.Sample{{Name: "/gc/gogc:percent"}}
	metrics.Read(s)
	if s[0].Value.Kind() != metrics.KindUint64 {
		return "unknown"
	}
	if v := s[0].Value.Uint64(); v != math.MaxUint64 {
		return strconv.FormatUint(v, 10)
	}
	return "off"
}
