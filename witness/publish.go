package witness

import (
	"context"
	"time"

	"github.com/cairn-audit/cairn"
)

// Checkpoint returns the checkpoint a context publishes, with every
// cosignature recorded so far:
//
//   - not witnessed, or fail-open: the newest signed checkpoint;
//   - fail-closed: the newest checkpoint cosigned by at least the quorum
//     of the configured witnesses (ENotFound until one is).
//
// Errors: ENotFound as above or for a missing context; the store's errors.
func (s *Service) Checkpoint(ctx context.Context, org, name string) (*cairn.Checkpoint, error) {
	c, err := s.config(ctx, org, name)
	if err != nil {
		return nil, err
	}
	if c.Policy != cairn.WitnessFailClosed || len(c.Witnesses) == 0 {
		return s.cfg.Store.LatestCheckpoint(ctx, org, name)
	}
	// The quorum query walks back over the checkpoints that lack a quorum,
	// which pile up while witnesses are down: cache its answer until the
	// next cosignature or checkpoint here, and at most servedTTL.
	k := logKey{org, name}
	now := time.Now()
	s.mu.Lock()
	sc, ok := s.served[k]
	s.mu.Unlock()
	if ok && now.Before(sc.expires) {
		if sc.cp == nil {
			return nil, cairn.Errorf(cairn.ENotFound, "no checkpoint of %s/%s reached its witness quorum", org, name)
		}
		cp := *sc.cp
		return &cp, nil
	}
	cp, err := s.cfg.Store.LatestCosignedCheckpoint(ctx, org, name, keys(c), c.Quorum)
	if cairn.ErrorCode(err) == cairn.ENotFound {
		s.mu.Lock()
		s.served[k] = cachedCheckpoint{expires: now.Add(servedTTL)}
		s.mu.Unlock()
		return nil, err
	}
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	s.served[k] = cachedCheckpoint{cp: cp, expires: now.Add(servedTTL)}
	s.mu.Unlock()
	c2 := *cp
	return &c2, nil
}

// servedTTL bounds how long a fail-closed checkpoint recorded on another
// node can go unserved here.
const servedTTL = time.Second

type cachedCheckpoint struct {
	cp      *cairn.Checkpoint // nil: none reached the quorum
	expires time.Time
}

// WaitFor returns the checkpoint Checkpoint publishes once its size is at
// least size, waiting until then or until ctx is done. Under fail-closed
// it waits for the witness quorum. It wakes on every checkpoint signed and
// cosignature recorded in this process, and reads the store at least
// every second for those recorded elsewhere; ctx should carry a deadline.
//
// Errors: ctx.Err() when ctx is done; the store's errors other than
// ENotFound.
func (s *Service) WaitFor(ctx context.Context, org, name string, size int64) (*cairn.Checkpoint, error) {
	for {
		s.mu.Lock()
		changed := s.changed
		s.mu.Unlock()
		cp, err := s.Checkpoint(ctx, org, name)
		switch {
		case err == nil && cp.Size >= size:
			return cp, nil
		case err != nil && cairn.ErrorCode(err) != cairn.ENotFound:
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			return nil, err
		}
		t := time.NewTimer(min(s.cfg.Poll, time.Second))
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, ctx.Err()
		case <-changed:
		case <-t.C:
		}
		t.Stop()
	}
}

// config returns a context's configuration through a short-lived cache.
func (s *Service) config(ctx context.Context, org, name string) (cairn.WitnessConfig, error) {
	k := logKey{org, name}
	now := time.Now()
	s.mu.Lock()
	cc, ok := s.configs[k]
	s.mu.Unlock()
	if ok && now.Before(cc.expires) {
		return cc.c, nil
	}
	c, err := s.cfg.Store.WitnessConfig(ctx, org, name)
	if err != nil {
		return c, err
	}
	s.mu.Lock()
	s.configs[k] = cachedConfig{c: c, expires: now.Add(configTTL)}
	s.mu.Unlock()
	return c, nil
}

// Config returns a context's witness configuration (zero: not witnessed).
func (s *Service) Config(ctx context.Context, org, name string) (cairn.WitnessConfig, error) {
	return s.cfg.Store.WitnessConfig(ctx, org, name)
}

// Validate checks and completes a configuration; see [ValidateConfig].
func (s *Service) Validate(c *cairn.WitnessConfig) error { return ValidateConfig(c) }

// SetConfig validates and stores a context's witness configuration, and
// submits the current checkpoint to new witnesses soon after.
//
// Errors: EInvalid for a bad configuration; the store's errors.
func (s *Service) SetConfig(ctx context.Context, org, name string, c cairn.WitnessConfig) (cairn.WitnessConfig, error) {
	if err := ValidateConfig(&c); err != nil {
		return c, err
	}
	if err := s.cfg.Store.SetWitnessConfig(ctx, org, name, c); err != nil {
		return c, err
	}
	s.mu.Lock()
	delete(s.configs, logKey{org, name})
	s.mu.Unlock()
	s.wake() // a fail-closed change may publish another checkpoint; drops the cache
	s.Notify()
	return c, nil
}

// Report returns the witnessing state of a context: one status per
// configured witness, and the sizes of the newest signed and the newest
// witnessed checkpoint.
func (s *Service) Report(ctx context.Context, org, name string) (cairn.WitnessReport, error) {
	r := cairn.WitnessReport{SignedSize: -1, WitnessedSize: -1}
	c, err := s.cfg.Store.WitnessConfig(ctx, org, name)
	if err != nil {
		return r, err
	}
	sts, err := s.statuses(ctx, org, name)
	if err != nil {
		return r, err
	}
	r.Witnesses = make([]cairn.WitnessStatus, 0, len(c.Witnesses))
	for _, w := range c.Witnesses {
		st, ok := sts[w.Key]
		if !ok {
			st = cairn.WitnessStatus{Witness: w.Key, Size: -1}
		}
		r.Witnesses = append(r.Witnesses, st)
	}
	if cp, err := s.cfg.Store.LatestCheckpoint(ctx, org, name); err == nil {
		r.SignedSize = cp.Size
	} else if cairn.ErrorCode(err) != cairn.ENotFound {
		return r, err
	}
	if len(c.Witnesses) > 0 {
		cp, err := s.cfg.Store.LatestCosignedCheckpoint(ctx, org, name, keys(c), c.Quorum)
		if err == nil {
			r.WitnessedSize = cp.Size
		} else if cairn.ErrorCode(err) != cairn.ENotFound {
			return r, err
		}
	}
	return r, nil
}
