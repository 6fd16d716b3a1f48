// Package anchor exports the latest checkpoint of every audit context, at
// a fixed interval, to a sink the customer controls (a directory, an HTTPS
// endpoint), so that a copy of each log's signed state lives outside
// Cairn's control and a later rollback or rewrite of the log can be proven
// against it.
//
// An export never blocks writes: it only reads checkpoints. A failed
// export is logged, counted and retried at the next interval. Nothing it
// logs contains a checkpoint's contents beyond its origin and size, nor
// the sink's token.
package anchor

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/cairn-audit/cairn"
	"github.com/prometheus/client_golang/prometheus"
)

// Sink receives checkpoints.
type Sink interface {
	// Export stores one context's checkpoint note, signed, with any
	// cosignatures. origin is the note's first line. It must be durable
	// when Export returns nil.
	Export(ctx context.Context, origin string, size int64, note []byte) error
	// String names the sink for logs and metrics, without credentials.
	String() string
}

// Source lists the checkpoints to export.
type Source interface {
	ListOrgs(ctx context.Context) ([]*cairn.Org, error)
	ListContexts(ctx context.Context, org string) ([]*cairn.Context, error)
	LatestCheckpoint(ctx context.Context, org, context string) (*cairn.Checkpoint, error)
}

// Config configures an Exporter.
type Config struct {
	Source Source // required
	Sink   Sink   // required
	// Interval between exports. Required, > 0.
	Interval time.Duration
	Logger   *slog.Logger // default: discard
	// Registerer, if set, receives the export metrics.
	Registerer prometheus.Registerer
}

// Validate checks c and fills in the defaults.
func (c *Config) Validate() error {
	if c.Source == nil || c.Sink == nil {
		return cairn.Errorf(cairn.EInvalid, "checkpoint export: no source or sink")
	}
	if c.Interval <= 0 {
		return cairn.Errorf(cairn.EInvalid, "checkpoint export: the interval must be positive")
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return nil
}

// Exporter exports checkpoints periodically.
type Exporter struct {
	cfg      Config
	exported map[string][]byte // origin → the last note the sink accepted

	exports     *prometheus.CounterVec
	lastSuccess prometheus.Gauge
}

// New returns an Exporter; it does no I/O.
func New(cfg Config) (*Exporter, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	e := &Exporter{cfg: cfg, exported: map[string][]byte{},
		exports: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "cairn_checkpoint_exports_total",
			Help: "Checkpoints written to the export sink, by result (ok, error).",
		}, []string{"result"}),
		lastSuccess: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "cairn_checkpoint_export_last_success_timestamp_seconds",
			Help: "Unix time of the last export round that wrote every checkpoint.",
		}),
	}
	if cfg.Registerer != nil {
		cfg.Registerer.MustRegister(e.exports, e.lastSuccess)
	}
	return e, nil
}

// Run exports every Interval until ctx is cancelled, then returns nil.
// The first export happens one Interval after the start.
func (e *Exporter) Run(ctx context.Context) error {
	t := time.NewTicker(e.cfg.Interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
			// Failures are logged and counted in ExportAll.
			_ = e.ExportAll(ctx)
		}
	}
}

// ExportAll writes the latest checkpoint of every context whose note
// changed since the sink last accepted it (each one on the first round
// after a start). It returns the failures joined; each is also logged and
// counted.
func (e *Exporter) ExportAll(ctx context.Context) error {
	var errs []error
	fail := func(err error) {
		errs = append(errs, err)
		e.exports.WithLabelValues("error").Inc()
	}
	orgs, err := e.cfg.Source.ListOrgs(ctx)
	if err != nil {
		fail(fmt.Errorf("list orgs: %w", err))
	}
	for _, o := range orgs {
		cs, err := e.cfg.Source.ListContexts(ctx, o.Name)
		if err != nil {
			fail(fmt.Errorf("list contexts of %s: %w", o.Name, err))
			continue
		}
		for _, c := range cs {
			cp, err := e.cfg.Source.LatestCheckpoint(ctx, o.Name, c.Name)
			if cairn.ErrorCode(err) == cairn.ENotFound {
				continue
			}
			if err != nil {
				fail(fmt.Errorf("checkpoint of %s/%s: %w", o.Name, c.Name, err))
				continue
			}
			origin, _, _ := strings.Cut(string(cp.Note), "\n")
			if bytes.Equal(e.exported[origin], cp.Note) {
				continue
			}
			if err := e.cfg.Sink.Export(ctx, origin, cp.Size, cp.Note); err != nil {
				if ctx.Err() != nil {
					return ctx.Err()
				}
				e.cfg.Logger.LogAttrs(ctx, slog.LevelWarn, "checkpoint export failed",
					slog.String("sink", e.cfg.Sink.String()), slog.String("origin", origin),
					slog.Int64("size", cp.Size), slog.Any("error", err))
				fail(fmt.Errorf("export %s: %w", origin, err))
				continue
			}
			e.exported[origin] = cp.Note
			e.exports.WithLabelValues("ok").Inc()
		}
	}
	if len(errs) == 0 {
		e.lastSuccess.SetToCurrentTime()
	}
	return errors.Join(errs...)
}
