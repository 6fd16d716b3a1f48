package httpapi

import (
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/cairn-audit/cairn"
	"github.com/cairn-audit/cairn/ingest"
)

// benchLogSize is the log size of BenchmarkProofs: CAIRN_BENCH_LOG_SIZE,
// default 100,000 (building 10 million entries takes minutes).
func benchLogSize(b *testing.B) int {
	if v := os.Getenv("CAIRN_BENCH_LOG_SIZE"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 2 {
			b.Fatalf("CAIRN_BENCH_LOG_SIZE=%q", v)
		}
		return n
	}
	return 100_000
}

// BenchmarkProofs measures the proof, tile and receipt endpoints in the
// handler (no network) on a SQLite log, reporting p50 and p99 latency.
func BenchmarkProofs(b *testing.B) {
	n := benchLogSize(b)
	f := newLogFixture(b)
	start := time.Now()
	cp := f.grow(n)
	b.Logf("built a log of %d entries in %v", n, time.Since(start).Round(time.Millisecond))
	c := ingest.NewCommitter(ingest.CommitterConfig{Store: f.store})
	defer c.Close()
	h := New(Config{Store: f.store, Signer: f.signer, Committer: c}) // receipts record their reads
	rng := rand.New(rand.NewPCG(1, 2))
	page, err := f.store.SearchEvents(b.Context(), "acme", cairn.Filter{Context: "app", Limit: 200})
	if err != nil {
		b.Fatal(err)
	}
	var ids []string
	for _, e := range page.Items {
		ids = append(ids, e.ID)
	}
	for _, ep := range []struct {
		name string
		path func() string
	}{
		{"inclusion", func() string {
			return fmt.Sprintf("/log/acme/app/proof/inclusion?index=%d&size=%d", rng.Int64N(cp.Size), cp.Size)
		}},
		{"consistency", func() string {
			a := 1 + rng.Int64N(cp.Size-1)
			return fmt.Sprintf("/log/acme/app/proof/consistency?from=%d&to=%d", a, cp.Size)
		}},
		{"receipt", func() string {
			return "/api/v1/orgs/acme/contexts/app/events/" + ids[rng.IntN(len(ids))] + "/receipt"
		}},
		{"level0-tile", func() string {
			return fmt.Sprintf("/log/acme/app/tile/0/%s", tileN(rng.Int64N(cp.Size/256)))
		}},
		{"entry-bundle", func() string {
			return fmt.Sprintf("/log/acme/app/tile/entries/%s", tileN(rng.Int64N(cp.Size/256)))
		}},
	} {
		b.Run(ep.name, func(b *testing.B) {
			var lat []time.Duration
			for b.Loop() {
				req := httptest.NewRequest("GET", ep.path(), nil)
				req.Header.Set("Authorization", "Bearer "+f.token)
				w := httptest.NewRecorder()
				t0 := time.Now()
				h.ServeHTTP(w, req)
				lat = append(lat, time.Since(t0))
				if w.Code != http.StatusOK {
					b.Fatalf("%s: %d %s", req.URL, w.Code, w.Body)
				}
			}
			slices.Sort(lat)
			b.ReportMetric(float64(lat[len(lat)/2].Microseconds()), "p50-µs")
			b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds()), "p99-µs")
		})
	}
}

// tileN formats a tile index the C2SP way.
func tileN(n int64) string {
	s := fmt.Sprintf("%03d", n%1000)
	for n >= 1000 {
		n /= 1000
		s = fmt.Sprintf("x%03d/", n%1000) + s
	}
	return s
}
