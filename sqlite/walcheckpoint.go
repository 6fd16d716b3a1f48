package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"log/slog"
	"time"
)

// WAL checkpointing runs beside the writer instead of inside it.
//
// SQLite's automatic checkpoint runs on the connection that commits, so every
// few thousand pages one Append would also copy the WAL back into the
// database file and fsync it — about a seventh of the writer's time under
// bulk load, spent on the one goroutine that serialises all writes. Here the
// writer has wal_autocheckpoint=0 and a goroutine with its own connection
// runs PASSIVE checkpoints (which never block the writer or readers) a few
// times a second while writes continue.
//
// A PASSIVE checkpoint alone never lets the WAL start over under sustained
// writes: SQLite rewinds the WAL only when a write begins after every frame
// was copied, and the writer always adds frames while the copy runs. So once
// the WAL holds more than walRestartFrames, the PASSIVE pass (which copies
// nearly everything without blocking anyone) is followed by a RESTART
// checkpoint on the writer's own connection: it runs between two
// transactions, copies the few frames left, and makes the next transaction
// write the WAL from its start. The writer waits only for that short
// remainder, and the WAL stays bounded. (On a connection of its own, RESTART
// would starve: SQLite's busy handler polls, and the writer takes the lock
// again the instant a transaction ends.)
//
// RESTART must also wait for readers still using old frames, and a long
// read (an export streams a whole log in one transaction) would hold the
// writer's connection — every write — for as long as the busy timeout. So
// RESTART waits at most walRestartWait, and after a RESTART that could not
// finish the next one waits walRestartBackoff: the WAL then grows while the
// long reader lasts, and writes are never held for more than a moment.
const (
	walInterval       = 200 * time.Millisecond
	walRestartFrames  = 8192 // pages (32 MiB at 4 KiB pages)
	walRestartWait    = 50 * time.Millisecond
	walRestartBackoff = 2 * time.Second
	writerBusyTimeout = 10000 // ms, as the writer's DSN sets it
)

// walCheckpointer copies committed WAL frames into the database file.
type walCheckpointer struct {
	db      *sql.DB // its own connection, for PASSIVE checkpoints
	writer  *sql.DB // the writer's connection, for RESTART
	log     *slog.Logger
	written chan struct{} // a commit happened since the last checkpoint
	stop    chan struct{}
	done    chan struct{}
}

func newWALCheckpointer(db, writer *sql.DB, log *slog.Logger) *walCheckpointer {
	c := &walCheckpointer{db: db, writer: writer, log: log,
		written: make(chan struct{}, 1), stop: make(chan struct{}), done: make(chan struct{})}
	go c.run()
	return c
}

// committed tells the checkpointer that the WAL grew. It never blocks.
func (c *walCheckpointer) committed() {
	select {
	case c.written <- struct{}{}:
	default:
	}
}

func (c *walCheckpointer) run() {
	defer close(c.done)
	t := time.NewTicker(walInterval)
	defer t.Stop()
	var nextRestart time.Time
	for {
		select {
		case <-c.stop:
			return
		case <-t.C:
		}
		select {
		case <-c.written:
		default:
			continue // nothing new
		}
		logFrames, _, err := c.checkpoint(c.db, "PASSIVE")
		if err == nil && logFrames > walRestartFrames && !time.Now().Before(nextRestart) {
			var busy bool
			if busy, err = c.restart(); err == nil && busy {
				nextRestart = time.Now().Add(walRestartBackoff)
			}
		}
		if err != nil {
			c.log.Warn("wal checkpoint failed", "err", err)
		}
	}
}

// checkpoint runs one checkpoint on q and returns the WAL's size in frames
// and whether it could not finish (readers or a writer in the way).
func (c *walCheckpointer) checkpoint(q querier, mode string) (int, bool, error) {
	var busy, logFrames, copied int
	err := q.QueryRowContext(context.Background(), "PRAGMA wal_checkpoint("+mode+")").Scan(&busy, &logFrames, &copied)
	if err != nil {
		return 0, false, fmt.Errorf("%s checkpoint: %w", mode, err)
	}
	return logFrames, busy != 0, nil
}

// restart runs a RESTART checkpoint on the writer's connection (between
// two transactions) with a short busy timeout.
func (c *walCheckpointer) restart() (busy bool, err error) {
	ctx := context.Background()
	conn, err := c.writer.Conn(ctx)
	if err != nil {
		return false, err
	}
	defer conn.Close()
	if _, err := conn.ExecContext(ctx, fmt.Sprintf("PRAGMA busy_timeout = %d", walRestartWait.Milliseconds())); err != nil {
		return false, err
	}
	defer conn.ExecContext(ctx, fmt.Sprintf("PRAGMA busy_timeout = %d", writerBusyTimeout))
	_, busy, err = c.checkpoint(conn, "RESTART")
	return busy, err
}

// close stops the goroutine and waits for a running checkpoint to end.
func (c *walCheckpointer) close() {
	close(c.stop)
	<-c.done
}
