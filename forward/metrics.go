package forward

import (
	"sync"
	"time"

	"github.com/cairn-audit/cairn"
	"github.com/prometheus/client_golang/prometheus"
)

// Metrics are the forwarding series. Labels are org, forwarder and, for
// per-context series, context: never a URL or a setting (they may carry
// credentials).
type Metrics struct {
	deliveredEv *prometheus.CounterVec
	skippedEv   *prometheus.CounterVec
	deliveries  *prometheus.CounterVec
	duration    *prometheus.HistogramVec
	cursor      *prometheus.GaugeVec
	lagEvents   *prometheus.GaugeVec
	lagSeconds  *prometheus.GaugeVec
	parked      *prometheus.GaugeVec
	paused      *prometheus.GaugeVec
	attempts    *prometheus.GaugeVec
	lastSuccess *prometheus.GaugeVec

	mu    sync.Mutex
	known map[[2]string]bool // forwarders with series
}

// NewMetrics registers the forwarding series on reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	fw := []string{"org", "forwarder"}
	fwCtx := []string{"org", "forwarder", "context"}
	m := &Metrics{known: map[[2]string]bool{},
		deliveredEv: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "cairn_forwarder_delivered_events_total", Help: "Events the sink acknowledged.",
		}, fw),
		skippedEv: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "cairn_forwarder_filtered_events_total", Help: "Events passed over by the forwarder's filters.",
		}, fw),
		deliveries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "cairn_forwarder_deliveries_total", Help: "Batch deliveries by result (ok, error).",
		}, append(fw, "result")),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "cairn_forwarder_delivery_duration_seconds", Help: "Duration of one acknowledged batch delivery.",
			Buckets: prometheus.ExponentialBuckets(0.001, 2, 15),
		}, fw),
		cursor: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "cairn_forwarder_cursor", Help: "Next seq the forwarder delivers from each context.",
		}, fwCtx),
		lagEvents: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "cairn_forwarder_lag_events", Help: "Committed events not yet delivered, per context.",
		}, fwCtx),
		lagSeconds: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "cairn_forwarder_lag_seconds", Help: "Age of the oldest undelivered event (by received time), per context.",
		}, fwCtx),
		parked: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "cairn_forwarder_parked", Help: "1 while the forwarder is parked (retry budget spent).",
		}, fw),
		paused: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "cairn_forwarder_paused", Help: "1 while the forwarder is paused.",
		}, fw),
		attempts: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "cairn_forwarder_failed_attempts", Help: "Consecutive failed deliveries (0 after a success).",
		}, fw),
		lastSuccess: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "cairn_forwarder_last_success_timestamp_seconds", Help: "Unix time of the last acknowledged delivery.",
		}, fw),
	}
	reg.MustRegister(m.deliveredEv, m.skippedEv, m.deliveries, m.duration, m.cursor, m.lagEvents, m.lagSeconds,
		m.parked, m.paused, m.attempts, m.lastSuccess)
	return m
}

func (m *Metrics) delivered(f *cairn.Forwarder, events int, took time.Duration) {
	if m == nil {
		return
	}
	if events > 0 {
		m.deliveredEv.WithLabelValues(f.Org, f.Name).Add(float64(events))
	}
	m.deliveries.WithLabelValues(f.Org, f.Name, "ok").Inc()
	m.duration.WithLabelValues(f.Org, f.Name).Observe(took.Seconds())
}

func (m *Metrics) delivery(f *cairn.Forwarder, result string, events int) {
	if m != nil {
		m.deliveries.WithLabelValues(f.Org, f.Name, result).Inc()
	}
}

func (m *Metrics) skipped(f *cairn.Forwarder, events int) {
	if m != nil && events > 0 {
		m.skippedEv.WithLabelValues(f.Org, f.Name).Add(float64(events))
	}
}

// status sets the gauges from a status.
func (m *Metrics) status(st *cairn.ForwarderStatus) {
	if m == nil {
		return
	}
	b := func(v bool) float64 {
		if v {
			return 1
		}
		return 0
	}
	m.mu.Lock()
	m.known[[2]string{st.Org, st.Name}] = true
	m.mu.Unlock()
	m.parked.WithLabelValues(st.Org, st.Name).Set(b(st.Parked))
	m.paused.WithLabelValues(st.Org, st.Name).Set(b(st.State == cairn.ForwarderPaused))
	m.attempts.WithLabelValues(st.Org, st.Name).Set(float64(st.Attempts))
	if !st.LastSuccess.IsZero() {
		m.lastSuccess.WithLabelValues(st.Org, st.Name).Set(float64(st.LastSuccess.UnixMilli()) / 1000)
	}
	for _, c := range st.Cursors {
		m.cursor.WithLabelValues(st.Org, st.Name, c.Context).Set(float64(c.Next))
		m.lagEvents.WithLabelValues(st.Org, st.Name, c.Context).Set(float64(c.LagEvents))
		m.lagSeconds.WithLabelValues(st.Org, st.Name, c.Context).Set(c.LagSeconds)
	}
}

// forget drops the series of forwarders that no longer exist.
func (m *Metrics) forget(exist []*cairn.Forwarder) {
	if m == nil {
		return
	}
	keep := map[[2]string]bool{}
	for _, f := range exist {
		keep[[2]string{f.Org, f.Name}] = true
	}
	m.mu.Lock()
	var gone [][2]string
	for k := range m.known {
		if !keep[k] {
			gone = append(gone, k)
			delete(m.known, k)
		}
	}
	m.mu.Unlock()
	for _, g := range gone {
		l := prometheus.Labels{"org": g[0], "forwarder": g[1]}
		for _, v := range []interface{ DeletePartialMatch(prometheus.Labels) int }{
			m.deliveredEv, m.skippedEv, m.deliveries, m.duration, m.cursor, m.lagEvents, m.lagSeconds,
			m.parked, m.paused, m.attempts, m.lastSuccess,
		} {
			v.DeletePartialMatch(l)
		}
	}
}
