package main

import (
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestServeGCDefaults: cairn serve raises the collector's target and sets
// a soft memory limit unless the environment sets them.
func TestServeGCDefaults(t *testing.T) {
	var base []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "GOGC=") && !strings.HasPrefix(kv, "GOMEMLIMIT=") && !strings.HasPrefix(kv, "AUTOMEMLIMIT=") {
			base = append(base, kv)
		}
	}
	for _, tc := range []struct {
		name      string
		env       []string
		percent   float64
		limit     float64 // 0: any limit below the no-limit value
		unlimited bool
	}{
		{name: "defaults", percent: serveGCPercent},
		{name: "environment wins", env: []string{"GOGC=150", "GOMEMLIMIT=1GiB"}, percent: 150, limit: 1 << 30},
		{name: "limit off", env: []string{"AUTOMEMLIMIT=off"}, percent: serveGCPercent, unlimited: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := startServerEnv(t, t.TempDir(), append(base[:len(base):len(base)], tc.env...))
			var metrics []byte
			if _, err := p.client.Do(ctxTimeout(t, 10*time.Second), "GET", "/metrics", nil, nil, nil, &metrics); err != nil {
				t.Fatal(err)
			}
			if got := gauge(t, metrics, "go_gc_gogc_percent"); got != tc.percent {
				t.Errorf("go_gc_gogc_percent = %v, want %v", got, tc.percent)
			}
			const noLimit = float64(1<<63 - 1)
			switch got := gauge(t, metrics, "go_gc_gomemlimit_bytes"); {
			case tc.unlimited && got != noLimit:
				t.Errorf("go_gc_gomemlimit_bytes = %v, want no limit", got)
			case tc.limit > 0 && got != tc.limit:
				t.Errorf("go_gc_gomemlimit_bytes = %v, want %v", got, tc.limit)
			case !tc.unlimited && tc.limit == 0 && (got <= 0 || got >= noLimit):
				t.Errorf("go_gc_gomemlimit_bytes = %v, want a limit", got)
			}
		})
	}
}

// gauge reads an unlabelled gauge from a Prometheus text exposition.
func gauge(t *testing.T, metrics []byte, name string) float64 {
	t.Helper()
	m := regexp.MustCompile(`(?m)^` + name + ` (\S+)$`).FindSubmatch(metrics)
	if m == nil {
		t.Fatalf("/metrics lacks %s", name)
	}
	v, err := strconv.ParseFloat(string(m[1]), 64)
	if err != nil {
		t.Fatal(err)
	}
	return v
}
