package webhook_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cairn-audit/cairn"
	"github.com/cairn-audit/cairn/forward"
	"github.com/cairn-audit/cairn/forward/forwardtest"
	"github.com/cairn-audit/cairn/forward/webhook"
	"github.com/cairn-audit/cairn/ingest"
	"github.com/cairn-audit/cairn/storetest"
)

// benchReceiver decodes every batch (id, seq, received_time), checks the
// order and records each event's end-to-end lag: arrival time minus the
// time Cairn received it.
type benchReceiver struct {
	mu    sync.Mutex
	next  int64
	lags  []time.Duration
	count atomic.Int64
	bad   error
}

func (rc *benchReceiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	now := time.Now()
	var events []struct {
		Seq          int64     `json:"seq"`
		ReceivedTime time.Time `json:"received_time"`
	}
	if err := json.Unmarshal(body, &events); err != nil {
		http.Error(w, err.Error(), 400)
		return
	}
	rc.mu.Lock()
	for _, e := range events {
		if e.Seq < rc.next {
			continue // a duplicate (none expected here)
		}
		if e.Seq != rc.next && rc.bad == nil {
			rc.bad = fmt.Errorf("seq %d while %d was expected", e.Seq, rc.next)
		}
		rc.next = e.Seq + 1
		rc.lags = append(rc.lags, now.Sub(e.ReceivedTime))
	}
	rc.mu.Unlock()
	rc.count.Add(int64(len(events)))
	w.WriteHeader(http.StatusNoContent)
}

// benchEvent is an event of about 600 bytes, like the bench tool's.
func benchEvent(i int, received time.Time) cairn.Event {
	return cairn.Event{Action: "document.update", Kind: cairn.KindUpdate, ReceivedTime: received,
		Actor:       &cairn.Actor{Type: cairn.ActorUser, ID: fmt.Sprintf("user-%04d", i%5000), Email: fmt.Sprintf("user-%04d@example.com", i%5000)},
		Target:      &cairn.Target{Type: "document", ID: fmt.Sprintf("obj-%06d", i%200000), Name: "Quarterly plan"},
		Group:       &cairn.Group{ID: fmt.Sprintf("tenant-%02d", i%50)},
		Changes:     []cairn.Change{{Field: "title", Old: "Draft plan", New: "Quarterly plan"}, {Field: "status", Old: "draft", New: "review"}},
		Source:      &cairn.Source{IP: "203.0.113.9", UserAgent: "Mozilla/5.0 (X11; Linux x86_64)", RequestID: fmt.Sprintf("req-%08d", i)},
		Description: "updated the quarterly plan after the review meeting with the finance team"}
}

// ingestAt commits events to acme/app through a group committer at rate
// events/s (every 10 ms, what is due since the start) until ctx ends, waking the forwarders on each
// commit like cmd/cairn does.
func ingestAt(ctx context.Context, b *testing.B, h *forwardtest.Harness, rate int) *atomic.Int64 {
	c := ingest.NewCommitter(ingest.CommitterConfig{Store: h.Store, OnCommit: func(int, time.Duration) { h.Service.Notify() }})
	var n atomic.Int64
	go func() {
		defer c.Close()
		tick := time.NewTicker(10 * time.Millisecond)
		defer tick.Stop()
		start := time.Now()
		for i := 0; ; {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
			// Catch up on ticks lost to slow commits: the rate is kept
			// over the run, not per tick.
			per := int(time.Since(start).Seconds()*float64(rate)) - i
			if per <= 0 {
				continue
			}
			now := time.Now().UTC().Truncate(time.Microsecond)
			req := &cairn.AppendRequest{Org: forwardtest.Org, Context: "app"}
			for range per {
				req.Entries = append(req.Entries, storetest.NewEntry(forwardtest.Org, "app", benchEvent(i, now)))
				i++
			}
			if res, err := c.Commit(ctx, req); err != nil || res.Err != nil {
				if ctx.Err() == nil {
					b.Errorf("commit: %v %v", err, res.Err)
				}
				return
			}
			n.Add(int64(per))
		}
	}()
	return &n
}

// BenchmarkWebhookDelivery measures delivery to a local webhook with
// batches of 2,000 while ingest continues at 5,000 events/s: b.N events
// are committed first, then the forwarder is created and the clock runs
// until the receiver has them all (plus what was ingested meanwhile).
//
//	go test ./forward/webhook -run XXX -bench WebhookDelivery -benchtime 200000x
func BenchmarkWebhookDelivery(b *testing.B) {
	rc := &benchReceiver{}
	srv := httptest.NewServer(rc)
	defer srv.Close()
	h := forwardtest.New(b, []forward.SinkType{webhook.Type}, nil)
	start := time.Now().UTC()
	for i := 0; i < b.N; i += 10_000 {
		req := &cairn.AppendRequest{Org: forwardtest.Org, Context: "app"}
		for j := i; j < min(b.N, i+10_000); j++ {
			req.Entries = append(req.Entries, storetest.NewEntry(forwardtest.Org, "app", benchEvent(j, start)))
		}
		if _, err := h.Store.Append(context.Background(), []*cairn.AppendRequest{req}); err != nil {
			b.Fatal(err)
		}
	}
	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	b.ResetTimer()
	t0 := time.Now()
	ingested := ingestAt(ctx, b, h, 5000)
	f := forwardtest.Forwarder("hook", "webhook", map[string]any{"uri": srv.URL}, "app")
	f.Batch = cairn.BatchPolicy{MaxEvents: 2000, MaxBytes: 4 << 20, MaxDelay: 100 * time.Millisecond}
	h.Create(f)
	forwardtest.WaitFor(b, "the backlog", func() bool { return rc.count.Load() >= int64(b.N) })
	took := time.Since(t0)
	b.StopTimer()
	stop()
	if rc.bad != nil {
		b.Fatal(rc.bad)
	}
	delivered := rc.count.Load()
	b.ReportMetric(float64(delivered)/took.Seconds(), "delivered/s")
	b.ReportMetric(float64(ingested.Load())/took.Seconds(), "ingested/s")
}

// BenchmarkWebhookLag ingests 5,000 events/s for 20 s into a context a
// webhook forwarder follows (batches of up to 1,000, max delay 100 ms) and
// reports the end-to-end lag: the receiver's arrival time minus the
// event's received time, over every event. Run it once:
//
//	go test ./forward/webhook -run XXX -bench WebhookLag -benchtime 1x
func BenchmarkWebhookLag(b *testing.B) {
	rc := &benchReceiver{}
	srv := httptest.NewServer(rc)
	defer srv.Close()
	h := forwardtest.New(b, []forward.SinkType{webhook.Type}, nil)
	f := forwardtest.Forwarder("hook", "webhook", map[string]any{"uri": srv.URL}, "app")
	f.Batch = cairn.BatchPolicy{MaxEvents: 1000, MaxBytes: 4 << 20, MaxDelay: 100 * time.Millisecond}
	h.Create(f)
	ctx, stop := context.WithTimeout(context.Background(), 20*time.Second)
	defer stop()
	ingested := ingestAt(ctx, b, h, 5000)
	<-ctx.Done()
	forwardtest.WaitFor(b, "the tail", func() bool { return rc.count.Load() >= ingested.Load() })
	if rc.bad != nil {
		b.Fatal(rc.bad)
	}
	rc.mu.Lock()
	lags := slices.Clone(rc.lags)
	rc.mu.Unlock()
	slices.Sort(lags)
	q := func(p float64) float64 { return lags[int(p*float64(len(lags)-1))].Seconds() * 1000 }
	b.ReportMetric(float64(len(lags))/20, "events/s")
	b.ReportMetric(q(0.5), "p50-ms")
	b.ReportMetric(q(0.99), "p99-ms")
	b.ReportMetric(lags[len(lags)-1].Seconds()*1000, "max-ms")
}
