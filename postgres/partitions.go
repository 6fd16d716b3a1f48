package postgres

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// Event partitions.
//
// events is range-partitioned by received_time, one partition per calendar
// month (UTC), named events_yYYYYmMM. received_time is stamped by the
// server that accepted the event, so the months that receive rows are the
// current one (and, around midnight of the last day, the next): the engine
// creates the current month and PartitionsAhead months after it at Open and
// every MaintenanceInterval, and before an Append whose rows fall in a
// month it has not seen. Creating a partition takes a brief ACCESS
// EXCLUSIVE lock on events, which is why it happens ahead of time rather
// than on the first insert of a month.
//
// Old months can be detached and archived (ALTER TABLE events DETACH
// PARTITION …) by an operator; the engine never drops one, because the
// Merkle tree needs every leaf to prove anything about later ones.

// month numbers a calendar month: year*12 + month-1.
func month(t time.Time) int64 {
	t = t.UTC()
	return int64(t.Year())*12 + int64(t.Month()) - 1
}

func monthStart(m int64) time.Time {
	return time.Date(int(m/12), time.Month(m%12+1), 1, 0, 0, 0, 0, time.UTC)
}

func partitionName(m int64) string {
	return fmt.Sprintf("events_y%04dm%02d", m/12, m%12+1)
}

// ensurePartitionsAhead creates the partitions of the current month and
// the PartitionsAhead months after it.
func (s *Store) ensurePartitionsAhead(ctx context.Context) error {
	now := month(s.cfg.Now())
	var want []int64
	for m := now; m <= now+int64(s.cfg.PartitionsAhead); m++ {
		want = append(want, m)
	}
	return s.ensurePartitions(ctx, want)
}

// ensurePartitions creates the partitions of the given months that the
// Store has not seen yet. A role that may not create them (see
// docs/postgres.md, Privileges) gets an insufficient-privilege error once
// per MaintenanceInterval and nil in between. Nodes creating at once are serialised by an
// advisory lock; CREATE … IF NOT EXISTS makes the loser a no-op.
func (s *Store) ensurePartitions(ctx context.Context, months []int64) error {
	var missing []int64
	s.mu.RLock()
	for _, m := range months {
		if !s.months[m] {
			missing = append(missing, m)
		}
	}
	s.mu.RUnlock()
	if len(missing) == 0 {
		return nil
	}
	s.mu.RLock()
	denied := s.denied
	s.mu.RUnlock()
	if !denied.IsZero() && s.cfg.Now().Sub(denied) < s.cfg.MaintenanceInterval {
		return nil // refused lately: rows go to existing partitions or the default one
	}
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, lockKey("partitions", s.cfg.Schema)); err != nil {
			return err
		}
		for _, m := range missing {
			var exists bool
			if err := tx.QueryRow(ctx, `SELECT to_regclass($1) IS NOT NULL`, partitionName(m)).Scan(&exists); err != nil {
				return err
			}
			if exists {
				continue
			}
			q := fmt.Sprintf(`CREATE TABLE %s PARTITION OF events FOR VALUES FROM ('%s') TO ('%s')`,
				pgx.Identifier{partitionName(m)}.Sanitize(),
				monthStart(m).Format(time.RFC3339), monthStart(m+1).Format(time.RFC3339))
			if _, err := tx.Exec(ctx, q); err != nil {
				return fmt.Errorf("create %s: %w", partitionName(m), err)
			}
		}
		return nil
	})
	if pgCode(err) == insufficientPrivilege {
		s.mu.Lock()
		s.denied = s.cfg.Now()
		s.mu.Unlock()
		return dbErr("create partitions", err)
	}
	if err != nil {
		return dbErr("create partitions", err)
	}
	s.mu.Lock()
	for _, m := range missing {
		s.months[m] = true
	}
	s.mu.Unlock()
	return nil
}

// Partitions returns the names of the event partitions, oldest first (the
// default partition last).
func (s *Store) Partitions(ctx context.Context) ([]string, error) {
	rows, err := s.pool.Query(ctx, `SELECT c.relname FROM pg_inherits i
		JOIN pg_class c ON c.oid = i.inhrelid
		WHERE i.inhparent = 'events'::regclass ORDER BY c.relname = 'events_default', c.relname`)
	if err != nil {
		return nil, dbErr("list partitions", err)
	}
	names, err := pgx.CollectRows(rows, pgx.RowTo[string])
	return names, dbErr("list partitions", err)
}
