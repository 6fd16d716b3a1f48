// Package forwardtest runs a forwarder service over a temporary SQLite
// store for the sink packages' tests: append events, create a forwarder,
// wait until it caught up, check what a receiver got. It is for tests
// only and is never imported by production code.
package forwardtest

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cairn-audit/cairn"
	"github.com/cairn-audit/cairn/forward"
	bodyformat "github.com/cairn-audit/cairn/forward/format"
	"github.com/cairn-audit/cairn/sqlite"
	"github.com/cairn-audit/cairn/storetest"
)

// Org is the org every harness creates, with the contexts "app" and
// "billing".
const Org = "acme"

// Harness is a running forwarder service.
type Harness struct {
	T       testing.TB
	Store   *sqlite.Store
	Service *forward.Service
}

// Loopback allows the loopback ranges through the SSRF guard (local
// receivers).
var Loopback = &forward.Guard{Allow: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8"), netip.MustParsePrefix("::1/128")}}

// New starts a service with the given sink types; cfg may adjust its
// configuration (Store and Sinks are set by New; Guard defaults to
// Loopback, Poll to 20 ms).
func New(t testing.TB, sinks []forward.SinkType, cfg func(*forward.Config)) *Harness {
	t.Helper()
	store, err := sqlite.Open(context.Background(), sqlite.Config{Path: filepath.Join(t.TempDir(), "cairn.db")})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if _, err := store.CreateOrg(ctx, Org); err != nil {
		t.Fatal(err)
	}
	for _, c := range []string{"app", "billing"} {
		if _, err := store.CreateContext(ctx, &cairn.Context{Org: Org, Name: c}); err != nil {
			t.Fatal(err)
		}
	}
	c := forward.Config{Store: store, Sinks: sinks, Guard: Loopback, Poll: 20 * time.Millisecond}
	if cfg != nil {
		cfg(&c)
	}
	svc, err := forward.New(c)
	if err != nil {
		t.Fatal(err)
	}
	runCtx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		svc.Run(runCtx)
		close(done)
	}()
	t.Cleanup(func() {
		cancel()
		<-done
		store.Close()
	})
	return &Harness{T: t, Store: store, Service: svc}
}

// Append commits n events to a context of Org; mk may set their fields.
func (h *Harness) Append(ctxName string, n int, mk func(i int, e *cairn.Event)) {
	h.T.Helper()
	for start := 0; start < n; start += 10_000 {
		req := &cairn.AppendRequest{Org: Org, Context: ctxName}
		for i := start; i < min(n, start+10_000); i++ {
			e := cairn.Event{Action: "doc.update", Kind: cairn.KindUpdate,
				Target: &cairn.Target{Type: "doc", ID: "d" + string(rune('0'+i%10))}}
			if mk != nil {
				mk(i, &e)
			}
			req.Entries = append(req.Entries, storetest.NewEntry(Org, ctxName, e))
		}
		res, err := h.Store.Append(context.Background(), []*cairn.AppendRequest{req})
		if err != nil {
			h.T.Fatalf("append: %v", err)
		}
		if res[0].Err != nil {
			h.T.Fatalf("append: %v", res[0].Err)
		}
	}
	h.Service.Notify()
}

// Create creates a forwarder in Org.
func (h *Harness) Create(f *cairn.Forwarder) {
	h.T.Helper()
	f.Org = Org
	if _, err := h.Service.Create(context.Background(), f); err != nil {
		h.T.Fatalf("create forwarder: %v", err)
	}
}

// Status returns a forwarder's status.
func (h *Harness) Status(name string) *cairn.ForwarderStatus {
	h.T.Helper()
	st, err := h.Service.Status(context.Background(), Org, name)
	if err != nil {
		h.T.Fatal(err)
	}
	return st
}

// WaitFor polls cond every 5 ms; the deadline only keeps a broken build
// from hanging, it is not a timing assertion.
func WaitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(3 * time.Minute)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("gave up waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// CaughtUp waits until a forwarder delivered every committed event.
func (h *Harness) CaughtUp(name string) {
	h.T.Helper()
	WaitFor(h.T, name+" to catch up", func() bool { return h.Status(name).LagEvents == 0 })
}

// Delivered is one event as a receiver saw it.
type Delivered struct {
	Context string
	Seq     int64
	ID      string
}

// CheckStream checks what a receiver got, in arrival order: per context,
// seqs [0, want[context]) all present, in order; a seq at or below the
// highest one seen is a duplicate (allowed: at-least-once), one more than
// the highest is progress, anything else a gap or a reordering. It
// returns the number of duplicates.
func CheckStream(t testing.TB, got []Delivered, want map[string]int64) int {
	t.Helper()
	next := map[string]int64{}
	dups := 0
	for i, d := range got {
		switch n := next[d.Context]; {
		case d.Seq < n:
			dups++
		case d.Seq == n:
			next[d.Context] = n + 1
		default:
			t.Fatalf("delivery %d: %s seq %d arrived while %d was expected: lost or out of order", i, d.Context, d.Seq, n)
		}
	}
	for c, n := range want {
		if next[c] != n {
			t.Fatalf("%s: received seqs [0, %d), want [0, %d)", c, next[c], n)
		}
	}
	return dups
}

// Forwarder returns a forwarder of sink type typ over the given contexts
// with fast retries (1 ms to 20 ms, a large budget) and small batches.
func Forwarder(name, typ string, settings map[string]any, contexts ...string) *cairn.Forwarder {
	return &cairn.Forwarder{Org: Org, Name: name, Contexts: contexts, Enabled: true,
		Sink:  cairn.SinkConfig{Type: typ, Settings: settings},
		Batch: cairn.BatchPolicy{MaxEvents: 10, MaxDelay: time.Millisecond},
		Retry: cairn.RetryPolicy{MaxAttempts: 10_000, MinBackoff: time.Millisecond, MaxBackoff: 20 * time.Millisecond}}
}

// Batch returns a fixed batch of two events (fixed ids and times, one
// with a target and group) rendered in format: the input of the sinks'
// recorded-request goldens.
func Batch(t testing.TB, format string) *forward.Batch {
	t.Helper()
	at := time.Date(2026, 3, 1, 12, 0, 0, 250_000_000, time.UTC)
	events := []*cairn.Event{
		{ID: "0195a1b2-0000-7000-8000-000000000001", Org: Org, Context: "app", Seq: 7, EventTime: at, ReceivedTime: at.Add(time.Millisecond),
			Action: "document.update", Kind: cairn.KindUpdate, Outcome: cairn.OutcomeSuccess,
			Actor:  &cairn.Actor{Type: cairn.ActorUser, ID: "u-1", Email: "ann@example.com"},
			Target: &cairn.Target{Type: "document", ID: "d-1", Name: "Plan"}, Group: &cairn.Group{ID: "tenant-1"},
			Changes: []cairn.Change{{Field: "title", Old: "a", New: "b"}}},
		{ID: "0195a1b2-0000-7000-8000-000000000002", Org: Org, Context: "app", Seq: 8, EventTime: at.Add(time.Second), ReceivedTime: at.Add(time.Second),
			Action: "user.login_failed", Kind: cairn.KindLoginFailed, Outcome: cairn.OutcomeFailure, Reason: "bad password",
			Actor: &cairn.Actor{Type: cairn.ActorUser, ID: "u-2"}, Source: &cairn.Source{IP: "203.0.113.7"}},
	}
	b := &forward.Batch{Org: Org, Forwarder: "siem", Context: "app", Format: format}
	for _, e := range events {
		leaf, err := json.Marshal(e)
		if err != nil {
			t.Fatal(err)
		}
		body, err := bodyformat.Encode(format, e, leaf)
		if err != nil {
			t.Fatal(err)
		}
		b.Records = append(b.Records, forward.Record{Event: e, Leaf: leaf, Body: body})
	}
	return b
}

// Request is an HTTP request as a receiver recorded it.
type Request struct {
	Method, Path string
	Header       http.Header
	Body         []byte
}

// Golden compares a recorded request (method, path, the named headers and
// the body) with testdata/<name>.golden; -update rewrites it.
func Golden(t testing.TB, name string, update bool, r Request, headers ...string) {
	t.Helper()
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s\n", r.Method, r.Path)
	for _, h := range headers {
		fmt.Fprintf(&b, "%s: %s\n", h, r.Header.Get(h))
	}
	b.WriteString("\n")
	b.Write(r.Body)
	path := filepath.Join("testdata", name+".golden")
	if update {
		if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run with -update to create)", err)
	}
	if string(want) != b.String() {
		t.Fatalf("request differs from %s:\n--- got\n%s\n--- want\n%s", path, b.String(), want)
	}
}

// Recorder is an HTTP receiver that records requests and answers with
// Answer (status 200 and an empty JSON object by default).
type Recorder struct {
	mu       sync.Mutex
	Requests []Request
	Answer   func(r Request) (int, string)
}

func (rc *Recorder) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	req := Request{Method: r.Method, Path: r.URL.Path, Header: r.Header.Clone(), Body: body}
	rc.mu.Lock()
	rc.Requests = append(rc.Requests, req)
	answer := rc.Answer
	rc.mu.Unlock()
	status, resp := 200, "{}"
	if answer != nil {
		status, resp = answer(req)
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	io.WriteString(w, resp)
}

// Last returns the last recorded request.
func (rc *Recorder) Last() Request {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return rc.Requests[len(rc.Requests)-1]
}
