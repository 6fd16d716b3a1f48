package postgres

import (
	"context"
	"sync"
	"time"

	"github.com/cairn-audit/cairn"
	"github.com/jackc/pgx/v5"
)

// Leases: one node at a time delivers a forwarder (the forward package
// uses TryLease when the store has it).
//
// A lease is a session advisory lock (pg_try_advisory_lock) held on one
// connection per node, kept outside the pool. When the node dies its
// session ends and PostgreSQL releases the locks, so another node takes
// the lease on its next try. The connection is pinged every
// leasePing: if it fails, every lease of the node is reported lost (its
// workers stop delivering) before another node can have taken one.

const leasePing = time.Second

type leaser struct {
	mu     sync.Mutex
	conn   *pgx.Conn // nil until the first lease, and after a failure
	lost   chan struct{}
	counts map[int64]int // lock key → leases held (advisory locks stack per session)
	stop   chan struct{}
}

type lease struct {
	s    *Store
	key  int64
	lost chan struct{}
	once sync.Once
}

func (l *lease) Lost() <-chan struct{} { return l.lost }

func (l *lease) Release() {
	l.once.Do(func() { l.s.releaseLease(l) })
}

// TryLease implements forward.Leaser.
func (s *Store) TryLease(ctx context.Context, name string) (cairn.Lease, error) {
	ls := &s.leases
	ls.mu.Lock()
	defer ls.mu.Unlock()
	if ls.conn == nil {
		cc := s.pool.Config().ConnConfig.Copy()
		conn, err := pgx.ConnectConfig(ctx, cc)
		if err != nil {
			return nil, dbErr("lease connection", err)
		}
		ls.conn, ls.lost, ls.counts = conn, make(chan struct{}), map[int64]int{}
		if ls.stop == nil {
			ls.stop = make(chan struct{})
			go s.pingLeases(ls.stop)
		}
	}
	key := lockKey("lease", s.cfg.Schema+"\x00"+name)
	var ok bool
	if err := ls.conn.QueryRow(ctx, `SELECT pg_try_advisory_lock($1)`, key).Scan(&ok); err != nil {
		s.dropLeasesLocked()
		return nil, dbErr("take lease", err)
	}
	if !ok {
		return nil, nil
	}
	ls.counts[key]++
	return &lease{s: s, key: key, lost: ls.lost}, nil
}

func (s *Store) releaseLease(l *lease) {
	ls := &s.leases
	ls.mu.Lock()
	defer ls.mu.Unlock()
	if ls.conn == nil || ls.lost != l.lost {
		return // the session it was held on is gone, and the lock with it
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := ls.conn.Exec(ctx, `SELECT pg_advisory_unlock($1)`, l.key); err != nil {
		s.dropLeasesLocked()
		return
	}
	if ls.counts[l.key]--; ls.counts[l.key] == 0 {
		delete(ls.counts, l.key)
	}
}

// dropLeasesLocked closes the lease connection (releasing every lock it
// holds, if the server still sees it) and reports the leases lost.
func (s *Store) dropLeasesLocked() {
	ls := &s.leases
	if ls.conn == nil {
		return
	}
	close(ls.lost)
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	ls.conn.Close(ctx)
	cancel()
	ls.conn, ls.counts = nil, nil
}

// pingLeases checks the lease connection while leases are held.
func (s *Store) pingLeases(stop chan struct{}) {
	t := time.NewTicker(leasePing)
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case <-t.C:
		}
		ls := &s.leases
		ls.mu.Lock()
		if ls.conn != nil && len(ls.counts) > 0 {
			ctx, cancel := context.WithTimeout(context.Background(), leasePing)
			if err := ls.conn.Ping(ctx); err != nil {
				s.dropLeasesLocked()
			}
			cancel()
		}
		ls.mu.Unlock()
	}
}

// closeLeases ends the lease session (Close).
func (s *Store) closeLeases() {
	ls := &s.leases
	ls.mu.Lock()
	defer ls.mu.Unlock()
	if ls.stop != nil {
		close(ls.stop)
		ls.stop = nil
	}
	s.dropLeasesLocked()
}
