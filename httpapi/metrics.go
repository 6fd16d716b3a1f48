package httpapi

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// Metrics are the Prometheus series Cairn exports at /metrics.
type Metrics struct {
	registry        *prometheus.Registry
	requests        *prometheus.CounterVec
	requestDuration *prometheus.HistogramVec
	ingested        *prometheus.CounterVec
	commitDuration  prometheus.Histogram
	commitEvents    prometheus.Histogram
	logSize         *prometheus.GaugeVec
}

// NewMetrics registers Cairn's series (and the Go runtime's) on reg.
func NewMetrics(reg *prometheus.Registry) *Metrics {
	m := &Metrics{
		registry: reg,
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "cairn_http_requests_total", Help: "HTTP requests by route and status.",
		}, []string{"route", "status"}),
		requestDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "cairn_http_request_duration_seconds", Help: "HTTP request latency by route.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 14),
		}, []string{"route"}),
		ingested: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "cairn_ingest_events_total", Help: "Events received, by result (committed, rejected, replayed).",
		}, []string{"result"}),
		commitDuration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "cairn_commit_duration_seconds", Help: "Duration of one group-commit transaction, fsync included.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 14),
		}),
		commitEvents: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "cairn_commit_events", Help: "Events per group-commit transaction.",
			Buckets: prometheus.ExponentialBuckets(1, 4, 9),
		}),
		logSize: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "cairn_log_size", Help: "Committed tree size per audit context.",
		}, []string{"org", "context"}),
	}
	reg.MustRegister(m.requests, m.requestDuration, m.ingested, m.commitDuration, m.commitEvents, m.logSize,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// ObserveCommit records one group-commit transaction.
func (m *Metrics) ObserveCommit(events int, seconds float64) {
	m.commitDuration.Observe(seconds)
	m.commitEvents.Observe(float64(events))
}

// SetLogSize records the committed size of a context's log.
func (m *Metrics) SetLogSize(org, context string, size int64) {
	m.logSize.WithLabelValues(org, context).Set(float64(size))
}
