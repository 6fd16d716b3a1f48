package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cairn-audit/cairn/forward/forwardtest"
	"github.com/cairn-audit/cairn/httpapi"
	"github.com/transparency-dev/formats/log"
	"golang.org/x/mod/sumdb/note"
)

// TestMultiNode runs three `cairn serve` processes on one PostgreSQL
// schema. 32 writers spread over them write into one shared context and
// into four others; one node (the one delivering a forwarder) is killed
// with SIGKILL mid-stream and its writers move to the survivors. Afterwards every acknowledged event is
// present exactly once at the seq it was acknowledged with, each
// context's seqs are contiguous, its root is the one an independent
// implementation (transparency-dev/merkle) computes from the stored
// leaves, and every checkpoint any node served during the run is signed by
// the shared key and commits to a prefix of that tree.
func TestMultiNode(t *testing.T) {
	e := postgresEngine(t)
	if e == nil {
		t.Skip("CAIRN_TEST_POSTGRES is not set")
	}
	dir := t.TempDir()
	var ps []*proc
	for range 3 {
		ps = append(ps, e.start(t, dir, "--forward-allow-cidr", "127.0.0.0/8"))
	}
	ctx := ctxTimeout(t, 3*time.Minute)
	contexts := []string{"shared", "c0", "c1", "c2", "c3"}
	for i, name := range contexts {
		if _, err := ps[i%3].client.CreateContext(ctx, "default", name, "", nil); err != nil {
			t.Fatal(err)
		}
	}
	// One key signs for every node: each context's verifier key is the
	// same whichever node is asked.
	vkeys := map[string]string{}
	verifiers := map[string]note.Verifier{}
	for _, name := range contexts {
		for i, p := range ps {
			k, err := p.client.VerifierKey(ctx, "default", name)
			if err != nil {
				t.Fatal(err)
			}
			if i > 0 && k != vkeys[name] {
				t.Fatalf("%s: node %d publishes verifier key %s, node 0 %s", name, i, k, vkeys[name])
			}
			vkeys[name] = k
		}
		v, err := note.NewVerifier(vkeys[name])
		if err != nil {
			t.Fatal(err)
		}
		verifiers[name] = v
	}

	// A forwarder of two contexts: one node at a time delivers it; when
	// that node dies another continues from the durable cursor.
	rc := &hook{}
	srv := httptest.NewServer(rc)
	defer srv.Close()
	const fwdBatch = 100
	enabled := true
	if _, err := ps[0].client.CreateForwarder(ctx, "default", httpapi.ForwarderView{Name: "siem", Contexts: []string{"shared", "c0"},
		Sink:  httpapi.SinkView{Type: "webhook", Settings: map[string]any{"uri": srv.URL}},
		Batch: httpapi.BatchView{MaxEvents: fwdBatch, MaxDelay: "1ms"}, Enabled: &enabled}); err != nil {
		t.Fatal(err)
	}

	type ack struct {
		context string
		seq     int64
	}
	var mu sync.Mutex
	acked := map[string]ack{}
	checkpoints := map[string][][]byte{} // context → checkpoints served during the run
	var dead atomic.Int32                // index+1 of the killed node
	dead.Store(0)
	writeCtx, stopWriting := context.WithCancel(ctx)
	var wg sync.WaitGroup
	for w := range 32 {
		wg.Go(func() {
			name := "shared"
			if w%2 == 1 {
				name = contexts[1+(w/2)%4]
			}
			node := w % 3
			for i := 0; writeCtx.Err() == nil; i++ {
				if int(dead.Load()) == node+1 {
					node = (node + 1) % 3 // a load balancer moves the writer to a live node
				}
				n := 1 + (w+i)%10
				var sb strings.Builder
				sb.WriteString("[")
				for j := range n {
					if j > 0 {
						sb.WriteString(",")
					}
					fmt.Fprintf(&sb, `{"action":"multi.write","target":{"type":"w","id":"%d-%d-%d"}}`, w, i, j)
				}
				sb.WriteString("]")
				status, resp, err := ps[node].client.WriteEvents(writeCtx, "default", name, []byte(sb.String()), httpapi.WriteOptions{})
				if err != nil || status != 201 {
					continue // the node died mid-request: not acknowledged, may or may not be stored
				}
				var br struct{ Items []writeResult }
				if err := json.Unmarshal(resp, &br); err != nil || len(br.Items) != n {
					t.Errorf("bad response %s", resp)
					return
				}
				mu.Lock()
				for _, it := range br.Items {
					if it.Seq == nil {
						t.Errorf("item without seq: %s", resp)
					} else {
						acked[it.ID] = ack{name, *it.Seq}
					}
				}
				mu.Unlock()
			}
		})
	}
	// Watch the checkpoints every node serves.
	wg.Go(func() {
		for i := 0; writeCtx.Err() == nil; i++ {
			node := i % 3
			if int(dead.Load()) == node+1 {
				continue
			}
			name := contexts[i%len(contexts)]
			if cp, err := ps[node].client.Checkpoint(writeCtx, "default", name); err == nil {
				mu.Lock()
				checkpoints[name] = append(checkpoints[name], cp)
				mu.Unlock()
			}
			time.Sleep(10 * time.Millisecond)
		}
	})
	time.Sleep(2 * time.Second)
	// Node 0 created the forwarder and reloaded first: it holds the lease.
	dead.Store(1)
	ps[0].kill()
	mu.Lock()
	before := len(acked)
	mu.Unlock()
	time.Sleep(1500 * time.Millisecond)
	stopWriting()
	wg.Wait()
	if before == 0 || len(acked) == before {
		t.Fatalf("%d events acknowledged before the kill, %d after: the run did not write on both sides of it", before, len(acked)-before)
	}

	survivor := ps[2]
	// Requests cancelled by the stop may still commit (the commit is not
	// tied to the request): wait until the sizes stop moving.
	sizes := func() string {
		var b strings.Builder
		for _, name := range contexts {
			cv, err := survivor.client.GetContext(ctx, "default", name)
			if err != nil {
				t.Fatal(err)
			}
			fmt.Fprint(&b, cv.Size, " ")
		}
		return b.String()
	}
	for prev := sizes(); ; {
		time.Sleep(300 * time.Millisecond)
		cur := sizes()
		if cur == prev {
			break
		}
		prev = cur
	}
	total := 0
	for _, name := range contexts {
		cv, err := survivor.client.GetContext(ctx, "default", name)
		if err != nil {
			t.Fatal(err)
		}
		leaves := make([][]byte, cv.Size)
		q := url.Values{"context": {name}, "limit": {"1000"}}
		for {
			page, err := survivor.client.Search(ctx, "default", q)
			if err != nil {
				t.Fatal(err)
			}
			for _, it := range page.Items {
				var ev event
				if err := json.Unmarshal(it, &ev); err != nil {
					t.Fatal(err)
				}
				if ev.Seq < 0 || ev.Seq >= cv.Size || leaves[ev.Seq] != nil {
					t.Fatalf("%s: seq %d out of range or stored twice (size %d)", name, ev.Seq, cv.Size)
				}
				leaves[ev.Seq] = bytes.Clone(it)
				if a, ok := acked[ev.ID]; ok {
					if a.context != name || a.seq != ev.Seq {
						t.Fatalf("event %s acknowledged at %s/%d, stored at %s/%d", ev.ID, a.context, a.seq, name, ev.Seq)
					}
					delete(acked, ev.ID)
				}
			}
			if page.NextCursor == nil {
				break
			}
			q.Set("cursor", *page.NextCursor)
		}
		for i, l := range leaves {
			if l == nil {
				t.Fatalf("%s: seq %d missing of %d: seqs not contiguous", name, i, cv.Size)
			}
		}
		if got := base64.StdEncoding.EncodeToString(independentRoot(t, leaves, len(leaves))); got != cv.Root {
			t.Fatalf("%s: root %s, independent root %s", name, cv.Root, got)
		}
		// Every checkpoint served during the run, by any node, is signed
		// with the shared key and commits to a prefix of this tree.
		origin := "cairn.local/default/" + name
		for _, cp := range checkpoints[name] {
			c, _, _, err := log.ParseCheckpoint(cp, origin, verifiers[name])
			if err != nil {
				t.Fatalf("%s: checkpoint served during the run: %v\n%s", name, err, cp)
			}
			if int64(c.Size) > cv.Size || !bytes.Equal(independentRoot(t, leaves, int(c.Size)), c.Hash) {
				t.Fatalf("%s: checkpoint at %d is not a prefix of the final tree (size %d)", name, c.Size, cv.Size)
			}
		}
		cp := waitCheckpoint(t, survivor, name, cv.Size)
		verifyCheckpoint(t, cp, origin, vkeys[name], cv.Size, cv.Root)
		total += int(cv.Size)
		t.Logf("%s: %d events, %d checkpoints checked", name, cv.Size, len(checkpoints[name]))
	}
	if len(acked) > 0 {
		t.Fatalf("%d acknowledged events are missing", len(acked))
	}
	// The forwarder delivered everything, in order per context; only a
	// batch in flight when its node died may arrive twice.
	forwardtest.WaitFor(t, "forwarding to finish", func() bool {
		st, err := survivor.client.ForwarderStatus(ctx, "default", "siem")
		return err == nil && st.LagEvents == 0
	})
	want := map[string]int64{}
	for _, name := range []string{"shared", "c0"} {
		cv, err := survivor.client.GetContext(ctx, "default", name)
		if err != nil {
			t.Fatal(err)
		}
		want[name] = cv.Size
	}
	if dups := forwardtest.CheckStream(t, rc.delivered(), want); dups > 2*fwdBatch {
		t.Fatalf("%d events delivered twice: more than the batches in flight when a node died", dups)
	} else {
		t.Logf("forwarder: %d events delivered, %d twice", len(rc.delivered()), dups)
	}
	for i, p := range ps {
		if strings.Contains(p.stderr.String(), "refusing to sign") {
			t.Fatalf("node %d refused to sign a head:\n%s", i, p.stderr)
		}
	}
	t.Logf("%d events in all; %d acknowledged before the kill", total, before)
}
