package witness

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Metrics are the witnessing series. The witness label is the witness's
// key name (never a URL, which may carry credentials in its path).
type Metrics struct {
	submissions *prometheus.CounterVec
	lastSuccess *prometheus.GaugeVec
	cosigned    *prometheus.GaugeVec
	quorumSize  *prometheus.GaugeVec
}

// NewMetrics registers the witnessing series on reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		submissions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "cairn_witness_submissions_total",
			Help: "add-checkpoint submissions by result (ok, conflict, rejected, unknown_log, forbidden, unavailable, bad_cosignature, error).",
		}, []string{"org", "context", "witness", "result"}),
		lastSuccess: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "cairn_witness_last_success_timestamp_seconds",
			Help: "Unix time of the last valid cosignature from each witness.",
		}, []string{"org", "context", "witness"}),
		cosigned: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "cairn_witness_cosigned_size",
			Help: "Tree size of the last checkpoint each witness cosigned.",
		}, []string{"org", "context", "witness"}),
		quorumSize: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "cairn_witness_quorum_size",
			Help: "Tree size of the newest checkpoint that reached the context's witness quorum.",
		}, []string{"org", "context"}),
	}
	reg.MustRegister(m.submissions, m.lastSuccess, m.cosigned, m.quorumSize)
	return m
}

func (m *Metrics) submitted(org, ctx, witness, result string) {
	if m != nil {
		m.submissions.WithLabelValues(org, ctx, witness, result).Inc()
	}
}

func (m *Metrics) success(org, ctx, witness string, size int64, at time.Time) {
	if m != nil {
		m.lastSuccess.WithLabelValues(org, ctx, witness).Set(float64(at.UnixMilli()) / 1000)
		m.cosigned.WithLabelValues(org, ctx, witness).Set(float64(size))
	}
}

func (m *Metrics) quorum(org, ctx string, size int64) {
	if m != nil {
		m.quorumSize.WithLabelValues(org, ctx).Set(float64(size))
	}
}
