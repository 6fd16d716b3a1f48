package agent

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// BenchmarkAccept measures what a workload waits for: one async write
// accepted by the agent (HTTP on loopback, validation stub, journal file
// written and fsynced, directory fsynced), with parallel writers, while
// the forwarder delivers to a server that answers at once. Reported:
// accepted events/s; and how long the journal took to drain after the
// last write.
func BenchmarkAccept(b *testing.B) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusCreated)
	}))
	defer srv.Close()
	a, err := Open(b.Context(), Config{Listen: "127.0.0.1:0", Server: srv.URL, Token: "t", Org: "o", Journal: b.TempDir(),
		Check: func(string, []byte) error { return nil }})
	if err != nil {
		b.Fatal(err)
	}
	defer a.Close()
	url := "http://" + a.Addr() + "/audit/org/o/auditctx/c?async=true"
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
	b.SetParallelism(4)
	start := time.Now()
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			i++
			resp, err := client.Post(url, "application/json", strings.NewReader(fmt.Sprintf(`{"resource":{"id":"r%d","type":"t"}}`, i)))
			if err != nil || resp.StatusCode != http.StatusAccepted {
				b.Errorf("post: %v %v", resp, err)
				return
			}
			resp.Body.Close()
		}
	})
	accepted := time.Since(start)
	for a.Pending() > 0 {
		time.Sleep(time.Millisecond)
	}
	b.ReportMetric(float64(b.N)/accepted.Seconds(), "accepted/s")
	b.ReportMetric(float64(time.Since(start)-accepted)/float64(time.Millisecond), "drain-ms")
}
