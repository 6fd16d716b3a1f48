package sqlite

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"log/slog"
	"path/filepath"
	"testing"

	"github.com/cairn-audit/cairn/storetest"
)

// BenchmarkIndexer measures the indexer alone: events already decoded, as
// the committer hands them over, written to a fresh index in batches, and
// the merges those batches' segments need (on their own goroutines, waited
// for before the clock stops).
func BenchmarkIndexer(b *testing.B) {
	for _, batch := range []int{20, 140, 500, 1024, 4096} {
		b.Run(fmt.Sprintf("batch=%d", batch), func(b *testing.B) {
			dir := b.TempDir()
			ixPath := filepath.Join(dir, "x.index.db")
			db, _, err := openIndex(b.Context(), ixPath, []byte("x"), 0, nil)
			if err != nil {
				b.Fatal(err)
			}
			defer db.Close()
			// Merges read the index through the log's readers.
			readers, err := openReaders(dsn(filepath.Join(dir, "x.db"), nil, "deferred"), ixPath, 2)
			if err != nil {
				b.Fatal(err)
			}
			defer readers.Close()
			x := &indexer{db: db, log: readers, logger: slog.New(slog.DiscardHandler), pages: newSegPages()}
			x.mergeCtx, x.mergeStop = context.WithCancel(b.Context())
			defer x.mergeStop()
			if err := x.prepare(); err != nil {
				b.Fatal(err)
			}
			items := make([]indexItem, batch)
			gid := int64(0)
			b.ResetTimer()
			for n := 0; n < b.N; n += batch {
				for i := range items {
					gid++
					e := storetest.RealisticEvent(int(gid))
					items[i] = indexItem{gid: gid, orgID: 1, ctxID: 2, event: &e, leafHash: sha256.Sum256(binary.BigEndian.AppendUint64(nil, uint64(gid)))}
				}
				if err := x.write(b.Context(), items, gid); err != nil {
					b.Fatal(err)
				}
			}
			for {
				x.merges.Wait()
				x.maybeMerge()
				x.segMu.Lock()
				idle := len(x.mergingLvl) == 0
				x.segMu.Unlock()
				if idle {
					break
				}
			}
			b.StopTimer()
			// The index's size: its pages, in the file or still in the WAL.
			var pages, pageSize int64
			if err := db.QueryRow(`SELECT (SELECT page_count FROM pragma_page_count), (SELECT page_size FROM pragma_page_size)`).Scan(&pages, &pageSize); err != nil {
				b.Fatal(err)
			}
			b.ReportMetric(float64(pages*pageSize)/float64(gid), "index-B/event")
		})
	}
}
