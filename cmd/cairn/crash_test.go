package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cairn-audit/cairn/httpapi"
	"github.com/transparency-dev/formats/log"
	"github.com/transparency-dev/merkle/compact"
	"github.com/transparency-dev/merkle/rfc6962"
	"golang.org/x/mod/sumdb/note"
)

// TestCrashDuringIngest kills the server with SIGKILL while many clients
// write, restarts it, and checks the durability and integrity contracts:
// every acknowledged event is present, seqs are contiguous, the tree root
// matches an independent recomputation from the stored leaves, and the new
// checkpoint is consistent with the last one signed before the crash.
func TestCrashDuringIngest(t *testing.T) { forEachEngine(t, testCrashDuringIngest) }

func testCrashDuringIngest(t *testing.T, e *serveEngine) {
	dir := t.TempDir()
	p := e.start(t, dir)
	ctx := ctxTimeout(t, 3*time.Minute)
	if _, err := p.client.CreateContext(ctx, "default", "app", "", nil); err != nil {
		t.Fatal(err)
	}
	vkey, err := p.client.VerifierKey(ctx, "default", "app")
	if err != nil {
		t.Fatal(err)
	}

	var mu sync.Mutex
	acked := map[string]int64{} // id → seq
	var lastCP []byte
	writeCtx, stopWriting := context.WithCancel(ctx)
	var wg sync.WaitGroup
	for w := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; writeCtx.Err() == nil; i++ {
				n := 1 + (w+i)%20
				var sb strings.Builder
				sb.WriteString("[")
				for j := range n {
					if j > 0 {
						sb.WriteString(",")
					}
					fmt.Fprintf(&sb, `{"action":"crash.write","target":{"type":"w","id":"%d-%d-%d"}}`, w, i, j)
				}
				sb.WriteString("]")
				status, resp, err := p.client.WriteEvents(writeCtx, "default", "app", []byte(sb.String()), httpapi.WriteOptions{})
				if err != nil || status != 201 {
					return // the server died: unacknowledged writes may or may not be there
				}
				var br struct{ Items []writeResult }
				if err := json.Unmarshal(resp, &br); err != nil {
					t.Errorf("bad response %s", resp)
					return
				}
				mu.Lock()
				for _, it := range br.Items {
					acked[it.ID] = *it.Seq
				}
				mu.Unlock()
			}
		}()
	}
	// Keep the newest checkpoint seen before the crash.
	wg.Add(1)
	go func() {
		defer wg.Done()
		for writeCtx.Err() == nil {
			if cp, err := p.client.Checkpoint(writeCtx, "default", "app"); err == nil {
				mu.Lock()
				lastCP = cp
				mu.Unlock()
			}
			time.Sleep(20 * time.Millisecond)
		}
	}()
	time.Sleep(2500 * time.Millisecond)
	p.kill()
	stopWriting()
	wg.Wait()
	if len(acked) == 0 || lastCP == nil {
		t.Fatalf("nothing acknowledged (%d) or no checkpoint before the crash", len(acked))
	}

	p = e.start(t, dir)
	cv, err := p.client.GetContext(ctx, "default", "app")
	if err != nil {
		t.Fatal(err)
	}
	// Read back every leaf, by seq.
	leaves := make([][]byte, cv.Size)
	q := url.Values{"context": {"app"}, "limit": {"1000"}}
	for {
		page, err := p.client.Search(ctx, "default", q)
		if err != nil {
			t.Fatal(err)
		}
		for _, it := range page.Items {
			var e event
			if err := json.Unmarshal(it, &e); err != nil {
				t.Fatal(err)
			}
			if e.Seq < 0 || e.Seq >= cv.Size || leaves[e.Seq] != nil {
				t.Fatalf("seq %d out of range or repeated (size %d)", e.Seq, cv.Size)
			}
			leaves[e.Seq] = bytes.Clone(it)
			if seq, ok := acked[e.ID]; ok && seq != e.Seq {
				t.Fatalf("event %s acknowledged at seq %d, stored at %d", e.ID, seq, e.Seq)
			}
			delete(acked, e.ID)
		}
		if page.NextCursor == nil {
			break
		}
		q.Set("cursor", *page.NextCursor)
	}
	if len(acked) > 0 {
		t.Fatalf("%d acknowledged events lost in the crash", len(acked))
	}
	for i, l := range leaves {
		if l == nil {
			t.Fatalf("seq %d missing: seqs not contiguous", i)
		}
	}
	root := independentRoot(t, leaves, len(leaves))
	if got := base64.StdEncoding.EncodeToString(root); got != cv.Root {
		t.Fatalf("root after restart %s, recomputed %s", cv.Root, got)
	}
	// The checkpoint signed before the crash is a prefix of today's tree.
	v, _ := note.NewVerifier(vkey)
	old, _, _, err := log.ParseCheckpoint(lastCP, "cairn.local/default/app", v)
	if err != nil {
		t.Fatal(err)
	}
	if int64(old.Size) > cv.Size {
		t.Fatalf("checkpoint before crash has size %d > %d after restart: events lost", old.Size, cv.Size)
	}
	if !bytes.Equal(independentRoot(t, leaves, int(old.Size)), old.Hash) {
		t.Fatalf("pre-crash checkpoint (size %d) is not a prefix of the recovered log", old.Size)
	}
	cp := waitCheckpoint(t, p, "app", cv.Size)
	verifyCheckpoint(t, cp, "cairn.local/default/app", vkey, cv.Size, cv.Root)
	t.Logf("recovered %d events; pre-crash checkpoint at %d", cv.Size, old.Size)
}

func independentRoot(t *testing.T, leaves [][]byte, n int) []byte {
	t.Helper()
	if n == 0 {
		return rfc6962.DefaultHasher.EmptyRoot()
	}
	rf := compact.RangeFactory{Hash: rfc6962.DefaultHasher.HashChildren}
	r := rf.NewEmptyRange(0)
	for _, l := range leaves[:n] {
		if err := r.Append(rfc6962.DefaultHasher.HashLeaf(l), nil); err != nil {
			t.Fatal(err)
		}
	}
	root, err := r.GetRootHash(nil)
	if err != nil {
		t.Fatal(err)
	}
	return root
}

// TestGracefulShutdown: SIGTERM while clients write lets in-flight writes
// finish; whatever was acknowledged is there after a restart, and the
// process exits cleanly.
func TestGracefulShutdown(t *testing.T) { forEachEngine(t, testGracefulShutdown) }

func testGracefulShutdown(t *testing.T, e *serveEngine) {
	dir := t.TempDir()
	p := e.start(t, dir)
	ctx := ctxTimeout(t, 2*time.Minute)
	if _, err := p.client.CreateContext(ctx, "default", "app", "", nil); err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var acked []string
	var wg sync.WaitGroup
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				status, resp, err := p.client.WriteEvents(ctx, "default", "app", []byte(`{"action":"drain.write"}`), httpapi.WriteOptions{})
				if err != nil || status != 201 {
					return
				}
				var r writeResult
				if err := json.Unmarshal(resp, &r); err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				acked = append(acked, r.ID)
				mu.Unlock()
			}
		}()
	}
	time.Sleep(500 * time.Millisecond)
	p.stop()
	wg.Wait()
	p = e.start(t, dir)
	for _, id := range acked {
		if _, err := p.client.GetEvent(ctx, "default", "app", id); err != nil {
			t.Fatalf("acknowledged event %s missing after graceful shutdown: %v", id, err)
		}
	}
	if len(acked) == 0 {
		t.Fatal("no writes were acknowledged")
	}
}
