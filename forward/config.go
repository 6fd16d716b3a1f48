package forward

import (
	"maps"
	"regexp"
	"slices"
	"time"

	"github.com/cairn-audit/cairn"
)

// Forwarder defaults and limits.
const (
	DefaultMaxEvents   = 500
	DefaultMaxBytes    = 1 << 20
	DefaultMaxDelay    = 200 * time.Millisecond
	DefaultMaxAttempts = 20
	DefaultMinBackoff  = time.Second
	DefaultMaxBackoff  = 5 * time.Minute

	MaxBatchEvents = 10_000
	MaxBatchBytes  = 64 << 20
	MaxBatchDelay  = time.Minute
	MaxContexts    = 256
)

var nameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$`)

// sinkTypes indexes the configured sink types.
type sinkTypes map[string]SinkType

func (st sinkTypes) names() []string {
	return slices.Sorted(maps.Keys(st))
}

// normalize fills in f's defaults and checks it: names, contexts,
// filters, format, batching, retry policy, and the sink's settings (by
// building the sink, which does no I/O). Errors: EInvalid.
func (s *Service) normalize(f *cairn.Forwarder) error {
	if !nameRE.MatchString(f.Name) {
		return cairn.Errorf(cairn.EInvalid, "forwarder name %q must be 1-128 characters of letters, digits, '.', '_' or '-', starting with a letter or digit", f.Name)
	}
	if len(f.Contexts) > MaxContexts {
		return cairn.Errorf(cairn.EInvalid, "a forwarder takes at most %d contexts (none means all)", MaxContexts)
	}
	seen := map[string]bool{}
	for _, c := range f.Contexts {
		if !nameRE.MatchString(c) {
			return cairn.Errorf(cairn.EInvalid, "context name %q is not valid", c)
		}
		if seen[c] {
			return cairn.Errorf(cairn.EInvalid, "context %q is listed twice", c)
		}
		seen[c] = true
	}
	if f.Contexts == nil {
		f.Contexts = []string{}
	}
	if _, err := parseFilters(f); err != nil {
		return err
	}
	t, ok := s.types[f.Sink.Type]
	if !ok {
		return cairn.Errorf(cairn.EInvalid, "unknown sink type %q (want one of %v)", f.Sink.Type, s.types.names())
	}
	if f.Format == "" {
		f.Format = t.Formats[0]
	}
	if !slices.Contains(t.Formats, f.Format) {
		return cairn.Errorf(cairn.EInvalid, "sink %s takes the formats %v, not %q", t.Name, t.Formats, f.Format)
	}
	b := &f.Batch
	b.MaxEvents = orDefault(b.MaxEvents, DefaultMaxEvents)
	b.MaxBytes = orDefault(b.MaxBytes, DefaultMaxBytes)
	b.MaxDelay = orDefault(b.MaxDelay, DefaultMaxDelay)
	switch {
	case b.MaxEvents < 1 || b.MaxEvents > MaxBatchEvents:
		return cairn.Errorf(cairn.EInvalid, "batch max_events must be between 1 and %d", MaxBatchEvents)
	case b.MaxBytes < 1024 || b.MaxBytes > MaxBatchBytes:
		return cairn.Errorf(cairn.EInvalid, "batch max_bytes must be between 1024 and %d", MaxBatchBytes)
	case b.MaxDelay < 0 || b.MaxDelay > MaxBatchDelay:
		return cairn.Errorf(cairn.EInvalid, "batch max_delay must be between 0 and %v", MaxBatchDelay)
	}
	r := &f.Retry
	r.MaxAttempts = orDefault(r.MaxAttempts, DefaultMaxAttempts)
	r.MinBackoff = orDefault(r.MinBackoff, DefaultMinBackoff)
	r.MaxBackoff = orDefault(r.MaxBackoff, max(DefaultMaxBackoff, r.MinBackoff))
	switch {
	case r.MaxAttempts < 1 || r.MaxAttempts > 10_000:
		return cairn.Errorf(cairn.EInvalid, "retry max_attempts must be between 1 and 10000")
	case r.MinBackoff < time.Millisecond || r.MaxBackoff < r.MinBackoff || r.MaxBackoff > 24*time.Hour:
		return cairn.Errorf(cairn.EInvalid, "retry backoff must satisfy 1ms <= min_backoff <= max_backoff <= 24h")
	}
	for _, k := range t.Secrets {
		if f.Sink.Settings[k] == cairn.SecretMask {
			return cairn.Errorf(cairn.EInvalid, "sink setting %q is %q: give the secret itself", k, cairn.SecretMask)
		}
	}
	sink, err := t.New(f.Sink.Settings, s.env())
	if err != nil {
		if cairn.ErrorCode(err) == cairn.EInternal {
			return &cairn.Error{Code: cairn.EInvalid, Message: "sink settings: " + err.Error(), Err: err}
		}
		return err
	}
	return sink.Close()
}

func orDefault[T comparable](v, def T) T {
	var zero T
	if v == zero {
		return def
	}
	return v
}

// Mask returns a copy of f whose secret settings read cairn.SecretMask.
func (s *Service) Mask(f *cairn.Forwarder) *cairn.Forwarder {
	c := *f
	c.Contexts = slices.Clone(f.Contexts)
	c.Sink.Settings = maps.Clone(f.Sink.Settings)
	for _, k := range s.types[f.Sink.Type].Secrets {
		if v, ok := c.Sink.Settings[k]; ok && v != nil && v != "" {
			c.Sink.Settings[k] = cairn.SecretMask
		}
	}
	return &c
}

// keepSecrets replaces masked secrets in next by the stored ones of cur
// (same sink type only), so a view read and sent back changes nothing.
func (s *Service) keepSecrets(next, cur *cairn.Forwarder) {
	if next.Sink.Type != cur.Sink.Type {
		return
	}
	for _, k := range s.types[next.Sink.Type].Secrets {
		if next.Sink.Settings[k] == cairn.SecretMask {
			if v, ok := cur.Sink.Settings[k]; ok {
				next.Sink.Settings[k] = v
			}
		}
	}
}
