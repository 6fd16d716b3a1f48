package verify

import (
	"crypto/sha256"
	"fmt"
	"os"
	"sync"
	"testing"

	"golang.org/x/mod/sumdb/tlog"
)

// benchEntries is the size of the benchmark log: large enough that setup
// and per-run overheads vanish, small enough for a CI disk (~130 MB).
const benchEntries = 200_000

// benchEntry is a ~600-byte entry, the size of a typical Cairn event leaf.
func benchEntry(i int64) []byte {
	return fmt.Appendf(nil, `{"action":"document.update","actor":{"email":"user%d@example.com","id":"user-%d","name":"User Number %d","type":"user"},`+
		`"changes":[{"field":"status","new":"published","old":"draft"},{"field":"title","new":"Q3 numbers","old":"Q3 numbers (draft)"}],`+
		`"component":"web-editor","context":"app","description":"User updated the document status and title from the web editor",`+
		`"event_time":"2026-05-01T12:00:00.123456Z","group":{"id":"tenant-%d","name":"Tenant %d"},"id":"0190a4e2-%04x-7000-8000-%012x","kind":"update",`+
		`"org":"acme","outcome":"success","received_time":"2026-05-01T12:00:00.123456Z","seq":%d,`+
		`"source":{"ip":"203.0.113.7","request_id":"req-%08d","user_agent":"Mozilla/5.0 (X11; Linux x86_64) Gecko/20100101 Firefox/131.0"},`+
		`"target":{"id":"obj-%d","name":"Quarterly report %d","type":"document"},"version":"4.2.1"}`,
		i%5000, i%5000, i%5000, i%50, i%50, i%65536, i, i, i, i%200000, i%200000)
}

var benchDir struct {
	once sync.Once
	dir  string
	log  *testLog
	err  error
}

// benchExport writes (once per process) an export bundle of benchEntries
// entries with ten checkpoints.
func benchExport(b *testing.B) (string, *testLog) {
	benchDir.once.Do(func() {
		l := newTestLog(b, testOrigin)
		for i := int64(0); i < benchEntries; i++ {
			e := benchEntry(i)
			hs, err := tlog.StoredHashes(i, e, tlog.HashReaderFunc(l.readHashes))
			if err != nil {
				benchDir.err = err
				return
			}
			l.hashes = append(l.hashes, hs...)
			l.entries = append(l.entries, e)
			if (i+1)%(benchEntries/10) == 0 {
				l.sign()
			}
		}
		benchDir.dir, benchDir.err = os.MkdirTemp("", "cairn-verify-bench-")
		benchDir.log = l
		if benchDir.err == nil {
			l.writeDir(benchDir.dir)
		}
	})
	if benchDir.err != nil {
		b.Fatal(benchDir.err)
	}
	return benchDir.dir, benchDir.log
}

// BenchmarkVerifyLog measures `cairn verify log DIR`'s engine on an
// export: read every entry bundle, hash every entry, rebuild the tree,
// check ten checkpoints and their consistency, compare every Merkle tile.
// Run with -cpu 1 for a per-core figure.
func BenchmarkVerifyLog(b *testing.B) {
	for _, skip := range []bool{false, true} {
		name := "with-tiles"
		if skip {
			name = "entries-only"
		}
		b.Run(name, func(b *testing.B) {
			dir, l := benchExport(b)
			src, err := OpenDir(dir)
			if err != nil {
				b.Fatal(err)
			}
			bytes := 0
			for _, e := range l.entries {
				bytes += len(e)
			}
			b.SetBytes(int64(bytes))
			b.ResetTimer()
			for b.Loop() {
				r, err := Log(b.Context(), src, Options{Keys: []string{l.vkey}, SkipTiles: skip})
				if err != nil || !r.Valid() {
					b.Fatalf("%v %s", err, problemsOf(r))
				}
			}
			b.ReportMetric(float64(benchEntries*b.N)/b.Elapsed().Seconds(), "entries/s")
		})
	}
}

// BenchmarkSHA256Bound is the floor under BenchmarkVerifyLog: the SHA-256
// work alone, on the same entries already in memory — one leaf hash
// (0x00 ‖ entry) and, on average, one interior node hash (0x01 ‖ l ‖ r)
// per entry, which is what rebuilding an RFC 6962 tree costs.
func BenchmarkSHA256Bound(b *testing.B) {
	_, l := benchExport(b)
	bytes := 0
	for _, e := range l.entries {
		bytes += len(e)
	}
	b.SetBytes(int64(bytes))
	var buf [1 + 65]byte
	b.ResetTimer()
	for b.Loop() {
		h := sha256.New()
		var sum [32]byte
		for _, e := range l.entries {
			h.Reset()
			h.Write(buf[:1]) // 0x00
			h.Write(e)
			h.Sum(sum[:0])
			buf[1] = 1
			copy(buf[2:], sum[:])
			sum = sha256.Sum256(buf[1:])
			buf[1] = 0
		}
	}
	b.ReportMetric(float64(benchEntries*b.N)/b.Elapsed().Seconds(), "entries/s")
}

func TestMain(m *testing.M) {
	code := m.Run()
	if benchDir.dir != "" {
		os.RemoveAll(benchDir.dir)
	}
	os.Exit(code)
}
