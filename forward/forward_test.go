package forward_test

import (
	"context"
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/cairn-audit/cairn"
	"github.com/cairn-audit/cairn/forward"
	"github.com/cairn-audit/cairn/sqlite"
	"github.com/cairn-audit/cairn/storetest"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

// memSink records what it is sent; fail, if set, decides each delivery's
// outcome (how many leading records it acknowledges and the error).
type memSink struct {
	mu    sync.Mutex
	got   []forward.Record
	calls int
	fail  func(call int, b *forward.Batch) (int, error)
}

func (m *memSink) Send(ctx context.Context, b *forward.Batch) (cairn.SinkAnswer, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.calls++
	acked, err := len(b.Records), error(nil)
	if m.fail != nil {
		if acked, err = m.fail(m.calls, b); err == nil {
			acked = len(b.Records)
		}
	}
	m.got = append(m.got, b.Records[:acked]...)
	return cairn.SinkAnswer{Acked: acked, Detail: fmt.Sprintf("took %d", acked)}, err
}

func (m *memSink) Close() error { return nil }

func (m *memSink) setFail(f func(call int, b *forward.Batch) (int, error)) {
	m.mu.Lock()
	m.fail = f
	m.mu.Unlock()
}

func (m *memSink) records() []forward.Record {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]forward.Record(nil), m.got...)
}

// env is a store with org acme (contexts app and billing), a service
// whose "mem" sink type delivers into sink, and the service running.
type env struct {
	store   *sqlite.Store
	svc     *forward.Service
	sink    *memSink
	reg     *prometheus.Registry
	stopRun func()
}

func newEnv(t *testing.T) *env { return newEnvWith(t, nil) }

// newEnvWith is newEnv with the service's store wrapped (nil: not).
func newEnvWith(t *testing.T, wrap func(*sqlite.Store) forward.Store) *env {
	t.Helper()
	store, err := sqlite.Open(t.Context(), sqlite.Config{Path: filepath.Join(t.TempDir(), "cairn.db")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	ctx := t.Context()
	if _, err := store.CreateOrg(ctx, "acme"); err != nil {
		t.Fatal(err)
	}
	for _, c := range []string{"app", "billing"} {
		if _, err := store.CreateContext(ctx, &cairn.Context{Org: "acme", Name: c}); err != nil {
			t.Fatal(err)
		}
	}
	e := &env{store: store, sink: &memSink{}, reg: prometheus.NewRegistry()}
	memType := forward.SinkType{Name: "mem", Secrets: []string{"token"}, Formats: []string{cairn.FormatJSON, cairn.FormatOCSF, cairn.FormatCEF},
		New: func(settings map[string]any, _ forward.Env) (forward.Sink, error) {
			var s struct {
				Token string `json:"token"`
				Note  string `json:"note"`
			}
			if err := forward.DecodeSettings(settings, &s); err != nil {
				return nil, err
			}
			return e.sink, nil
		}}
	var fs forward.Store = store
	if wrap != nil {
		fs = wrap(store)
	}
	e.svc, err = forward.New(forward.Config{Store: fs, Sinks: []forward.SinkType{memType},
		Poll: 20 * time.Millisecond, Metrics: forward.NewMetrics(e.reg)})
	if err != nil {
		t.Fatal(err)
	}
	runCtx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		e.svc.Run(runCtx)
		close(done)
	}()
	e.stopRun = func() { cancel(); <-done }
	t.Cleanup(e.stopRun)
	return e
}

// appendEvents commits n events to a context; mk may set fields.
func (e *env) appendEvents(t *testing.T, context string, n int, mk func(i int, ev *cairn.Event)) {
	t.Helper()
	for start := 0; start < n; start += 10_000 {
		req := &cairn.AppendRequest{Org: "acme", Context: context}
		for i := start; i < min(n, start+10_000); i++ {
			ev := cairn.Event{Action: "doc.update", Kind: cairn.KindUpdate}
			if mk != nil {
				mk(i, &ev)
			}
			req.Entries = append(req.Entries, storetest.NewEntry("acme", context, ev))
		}
		res, err := e.store.Append(t.Context(), []*cairn.AppendRequest{req})
		if err != nil || res[0].Err != nil {
			t.Fatalf("append: %v %v", err, res[0].Err)
		}
	}
	e.svc.Notify()
}

func fwd(name string, contexts ...string) *cairn.Forwarder {
	return &cairn.Forwarder{Org: "acme", Name: name, Contexts: contexts, Enabled: true,
		Sink:  cairn.SinkConfig{Type: "mem", Settings: map[string]any{"token": "s3cret"}},
		Batch: cairn.BatchPolicy{MaxEvents: 7, MaxDelay: time.Millisecond},
		Retry: cairn.RetryPolicy{MaxAttempts: 1000, MinBackoff: time.Millisecond, MaxBackoff: 5 * time.Millisecond}}
}

// waitFor polls cond; the deadline only keeps a broken build from hanging.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(2 * time.Minute)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("gave up waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func (e *env) status(t *testing.T, name string) *cairn.ForwarderStatus {
	t.Helper()
	st, err := e.svc.Status(t.Context(), "acme", name)
	if err != nil {
		t.Fatal(err)
	}
	return st
}

// caughtUp waits until the forwarder's cursors reached every context's end.
func (e *env) caughtUp(t *testing.T, name string) {
	t.Helper()
	waitFor(t, name+" to catch up", func() bool { return e.status(t, name).LagEvents == 0 })
}

// checkOrdered checks that recs hold, per context, exactly seqs
// [0, sizes[context]) in order.
func checkOrdered(t *testing.T, recs []forward.Record, sizes map[string]int64) {
	t.Helper()
	next := map[string]int64{}
	for _, r := range recs {
		c := r.Event.Context
		if r.Event.Seq != next[c] {
			t.Fatalf("%s: got seq %d, want %d (out of order, lost or repeated)", c, r.Event.Seq, next[c])
		}
		next[c]++
	}
	for c, n := range sizes {
		if next[c] != n {
			t.Fatalf("%s: delivered %d events, want %d", c, next[c], n)
		}
	}
}

func wantCode(t *testing.T, what string, err error, code string) {
	t.Helper()
	if got := cairn.ErrorCode(err); got != code {
		t.Fatalf("%s: error %v (code %q), want %q", what, err, got, code)
	}
}

func TestDeliveryOrderedThroughFailures(t *testing.T) {
	e := newEnv(t)
	ctx := t.Context()
	// Every third delivery fails, acknowledging only some of its records.
	e.sink.setFail(func(call int, b *forward.Batch) (int, error) {
		if call%3 == 0 {
			return call % len(b.Records), cairn.Errorf(cairn.EUnavailable, "flaky")
		}
		return 0, nil
	})
	e.appendEvents(t, "app", 50, nil)
	if _, err := e.svc.Create(ctx, fwd("siem")); err != nil {
		t.Fatal(err)
	}
	e.appendEvents(t, "billing", 30, nil)
	e.appendEvents(t, "app", 25, nil)
	e.caughtUp(t, "siem")
	checkOrdered(t, e.sink.records(), map[string]int64{"app": 75, "billing": 30, "cairn": 0})
	st := e.status(t, "siem")
	if st.State != cairn.ForwarderRunning || st.Attempts != 0 || st.LastErrorCode != cairn.EUnavailable || st.LastSuccess.IsZero() {
		t.Fatalf("status after recovering = %+v", st)
	}
	if got := testutil.ToFloat64(mustCounter(t, e.reg, "cairn_forwarder_delivered_events_total")); got != 105 {
		t.Fatalf("delivered counter = %v, want 105", got)
	}
}

func mustCounter(t *testing.T, reg *prometheus.Registry, name string) prometheus.Collector {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name {
			sum := 0.0
			for _, m := range mf.GetMetric() {
				sum += m.GetCounter().GetValue()
			}
			c := prometheus.NewCounter(prometheus.CounterOpts{Name: name})
			c.Add(sum)
			return c
		}
	}
	t.Fatalf("no series %s", name)
	return nil
}

func TestParkResumeReplay(t *testing.T) {
	e := newEnv(t)
	ctx := t.Context()
	e.sink.setFail(func(int, *forward.Batch) (int, error) {
		return 0, cairn.Errorf(cairn.EUnavailable, "HTTP 503 from the receiver")
	})
	e.appendEvents(t, "app", 20, nil)
	f := fwd("siem", "app")
	f.Retry.MaxAttempts = 3
	if _, err := e.svc.Create(ctx, f); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "parking", func() bool { return e.status(t, "siem").State == cairn.ForwarderParked })
	st := e.status(t, "siem")
	if !st.Parked || st.Attempts != 3 || st.LastErrorCode != cairn.EUnavailable || st.LagEvents != 20 || st.Cursors[0].Next != 0 {
		t.Fatalf("parked status = %+v", st)
	}
	if len(e.sink.records()) != 0 {
		t.Fatal("a failing sink acknowledged events")
	}
	// Parked means no more attempts, whatever is committed meanwhile.
	e.appendEvents(t, "app", 5, nil)
	e.sink.mu.Lock()
	calls := e.sink.calls
	e.sink.mu.Unlock()
	e.sink.setFail(nil)
	time.Sleep(100 * time.Millisecond) // several polls: a parked forwarder must stay quiet
	e.sink.mu.Lock()
	after := e.sink.calls
	e.sink.mu.Unlock()
	if after != calls {
		t.Fatalf("a parked forwarder kept delivering (%d calls, was %d)", after, calls)
	}

	if _, err := e.svc.SetEnabled(ctx, "acme", "siem", true); err != nil {
		t.Fatal(err)
	}
	e.caughtUp(t, "siem")
	checkOrdered(t, e.sink.records(), map[string]int64{"app": 25})

	// Pause: nothing is delivered while paused.
	if _, err := e.svc.SetEnabled(ctx, "acme", "siem", false); err != nil {
		t.Fatal(err)
	}
	e.appendEvents(t, "app", 3, nil)
	if st := e.status(t, "siem"); st.State != cairn.ForwarderPaused || st.LagEvents != 3 {
		t.Fatalf("paused status = %+v", st)
	}
	if _, err := e.svc.SetEnabled(ctx, "acme", "siem", true); err != nil {
		t.Fatal(err)
	}
	e.caughtUp(t, "siem")
	checkOrdered(t, e.sink.records(), map[string]int64{"app": 28})

	// Replay from a seq delivers the tail again, in order. The forwarder
	// is paused around each replay so that the status it returns shows the
	// reset cursor: a running one may deliver the tail before Replay reads
	// its status back.
	before := len(e.sink.records())
	st, err := e.replayPaused(t, cairn.ReplayFrom{Context: "app", Seq: 20})
	if err != nil || st.Cursors[0].Next != 20 {
		t.Fatalf("replay from 20: %+v, %v", st, err)
	}
	e.caughtUp(t, "siem")
	again := e.sink.records()[before:]
	if len(again) != 8 {
		t.Fatalf("replay from 20 delivered %d events, want 8", len(again))
	}
	for i, r := range again {
		if r.Event.Seq != int64(20+i) {
			t.Fatalf("replayed event %d has seq %d, want %d", i, r.Event.Seq, 20+i)
		}
	}

	// Replay from a time: everything received at or after it.
	recs := e.sink.records()
	at := recs[10].Event.ReceivedTime
	want := int64(0)
	for want < 28 && recs[want].Event.ReceivedTime.Before(at) {
		want++
	}
	st, err = e.replayPaused(t, cairn.ReplayFrom{Time: at})
	if err != nil || st.Cursors[0].Next != want {
		t.Fatalf("replay from %v: cursor %+v, %v; want %d", at, st.Cursors, err, want)
	}
	e.caughtUp(t, "siem")

	_, err = e.svc.Replay(ctx, "acme", "siem", cairn.ReplayFrom{Context: "billing"})
	wantCode(t, "replay a context the forwarder does not forward", err, cairn.EInvalid)
	_, err = e.svc.Replay(ctx, "acme", "siem", cairn.ReplayFrom{Seq: -1})
	wantCode(t, "replay from a negative seq", err, cairn.EInvalid)
	// A seq past the end clamps to the end.
	if st, err := e.svc.Replay(ctx, "acme", "siem", cairn.ReplayFrom{Seq: 1 << 40}); err != nil || st.Cursors[0].Next != 28 {
		t.Fatalf("replay past the end: %+v, %v", st, err)
	}
}

// replayPaused replays the forwarder siem while it is paused, and resumes
// it.
func (e *env) replayPaused(t *testing.T, from cairn.ReplayFrom) (*cairn.ForwarderStatus, error) {
	t.Helper()
	if _, err := e.svc.SetEnabled(t.Context(), "acme", "siem", false); err != nil {
		t.Fatal(err)
	}
	st, err := e.svc.Replay(t.Context(), "acme", "siem", from)
	if _, err := e.svc.SetEnabled(t.Context(), "acme", "siem", true); err != nil {
		t.Fatal(err)
	}
	return st, err
}

func TestFilters(t *testing.T) {
	e := newEnv(t)
	ctx := t.Context()
	e.appendEvents(t, "app", 40, func(i int, ev *cairn.Event) {
		ev.Action = []string{"user.login", "doc.update", "user.logout", "userx.login"}[i%4]
		if i%3 == 0 {
			ev.Group = &cairn.Group{ID: "tenant-1"}
		}
	})
	f := fwd("users", "app")
	f.ActionFilter, f.GroupFilter = "user.*", "tenant-1"
	if _, err := e.svc.Create(ctx, f); err != nil {
		t.Fatal(err)
	}
	e.caughtUp(t, "users")
	got := e.sink.records()
	want := 0
	for i := range 40 {
		if (i%4 == 0 || i%4 == 2) && i%3 == 0 {
			want++
		}
	}
	if len(got) != want {
		t.Fatalf("delivered %d events, want %d", len(got), want)
	}
	for _, r := range got {
		if r.Event.Group == nil || r.Event.Group.ID != "tenant-1" || (r.Event.Action != "user.login" && r.Event.Action != "user.logout") {
			t.Fatalf("a filtered-out event was delivered: %+v", r.Event)
		}
	}
}

func TestReplaysHistoryOf100kEvents(t *testing.T) {
	if testing.Short() {
		t.Skip("appends 100,000 events")
	}
	e := newEnv(t)
	e.appendEvents(t, "app", 100_000, nil)
	f := fwd("late", "app")
	f.Batch = cairn.BatchPolicy{MaxEvents: 5000, MaxBytes: 16 << 20}
	if _, err := e.svc.Create(t.Context(), f); err != nil {
		t.Fatal(err)
	}
	e.caughtUp(t, "late")
	checkOrdered(t, e.sink.records(), map[string]int64{"app": 100_000})
}

func TestConfigChangeRestartsDelivery(t *testing.T) {
	e := newEnv(t)
	ctx := t.Context()
	e.appendEvents(t, "app", 5, nil)
	if _, err := e.svc.Create(ctx, fwd("siem", "app")); err != nil {
		t.Fatal(err)
	}
	e.caughtUp(t, "siem")
	cur, err := e.svc.Get(ctx, "acme", "siem")
	if err != nil {
		t.Fatal(err)
	}
	cur.Format = cairn.FormatCEF
	if _, err := e.svc.Replace(ctx, cur); err != nil {
		t.Fatal(err)
	}
	e.appendEvents(t, "app", 3, nil)
	e.caughtUp(t, "siem")
	recs := e.sink.records()
	checkOrdered(t, recs, map[string]int64{"app": 8})
	if last := string(recs[7].Body); last[:6] != "CEF:0|" {
		t.Fatalf("after switching to CEF the body is %q", last)
	}
}

func TestTestSendsSyntheticEvent(t *testing.T) {
	e := newEnv(t)
	ctx := t.Context()
	f := fwd("siem", "app")
	f.Enabled = false
	if _, err := e.svc.Create(ctx, f); err != nil {
		t.Fatal(err)
	}
	res, err := e.svc.Test(ctx, "acme", "siem")
	if err != nil || !res.OK || res.Answer != "took 1" {
		t.Fatalf("test = %+v, %v", res, err)
	}
	got := e.sink.records()
	if len(got) != 1 || got[0].Event.Seq != -1 || got[0].Event.Action != "cairn.forwarder.test" || got[0].Event.Context != "app" {
		t.Fatalf("test sent %+v", got)
	}
	e.sink.setFail(func(int, *forward.Batch) (int, error) { return 0, cairn.Errorf(cairn.EForbidden, "HTTP 401") })
	res, err = e.svc.Test(ctx, "acme", "siem")
	if err != nil || res.OK || res.ErrorCode != cairn.EForbidden {
		t.Fatalf("failing test = %+v, %v; want a result with code forbidden", res, err)
	}
	_, err = e.svc.Test(ctx, "acme", "nope")
	wantCode(t, "test a missing forwarder", err, cairn.ENotFound)
	// Testing touches neither cursor nor state.
	if st := e.status(t, "siem"); st.Attempts != 0 || !st.LastSuccess.IsZero() || st.Cursors[0].Next != 0 {
		t.Fatalf("status after tests = %+v", st)
	}
}

func TestValidationAndSecrets(t *testing.T) {
	e := newEnv(t)
	ctx := t.Context()
	for name, mod := range map[string]func(f *cairn.Forwarder){
		"bad name":          func(f *cairn.Forwarder) { f.Name = "-x" },
		"unknown sink":      func(f *cairn.Forwarder) { f.Sink.Type = "ftp" },
		"unknown setting":   func(f *cairn.Forwarder) { f.Sink.Settings["nope"] = 1 },
		"format of no sink": func(f *cairn.Forwarder) { f.Format = cairn.FormatECS },
		"unknown format":    func(f *cairn.Forwarder) { f.Format = "leef" },
		"missing context":   func(f *cairn.Forwarder) { f.Contexts = []string{"nope"} },
		"context twice":     func(f *cairn.Forwarder) { f.Contexts = []string{"app", "app"} },
		"bad action filter": func(f *cairn.Forwarder) { f.ActionFilter = "us*er" },
		"bad group filter":  func(f *cairn.Forwarder) { f.GroupFilter = "*.x" },
		"huge batch":        func(f *cairn.Forwarder) { f.Batch.MaxEvents = 1_000_000 },
		"tiny max bytes":    func(f *cairn.Forwarder) { f.Batch.MaxBytes = 10 },
		"negative delay":    func(f *cairn.Forwarder) { f.Batch.MaxDelay = -time.Second },
		"backoff inverted":  func(f *cairn.Forwarder) { f.Retry.MinBackoff, f.Retry.MaxBackoff = time.Minute, time.Second },
		"masked secret":     func(f *cairn.Forwarder) { f.Sink.Settings["token"] = cairn.SecretMask },
	} {
		f := fwd("x")
		mod(f)
		_, err := e.svc.Create(ctx, f)
		wantCode(t, name, err, cairn.EInvalid)
	}
	got, err := e.svc.Create(ctx, fwd("siem"))
	if err != nil {
		t.Fatal(err)
	}
	if got.Sink.Settings["token"] != cairn.SecretMask || got.Format != cairn.FormatJSON || got.Batch.MaxBytes != forward.DefaultMaxBytes {
		t.Fatalf("created view = %+v; want the token masked and defaults filled in", got)
	}
	_, err = e.svc.Create(ctx, fwd("siem"))
	wantCode(t, "create twice", err, cairn.EConflict)
	list, err := e.svc.List(ctx, "acme")
	if err != nil || len(list) != 1 || list[0].Sink.Settings["token"] != cairn.SecretMask {
		t.Fatalf("list = %+v, %v", list, err)
	}
	// A masked view sent back keeps the stored secret.
	got.Sink.Settings["note"] = "edited"
	if _, err := e.svc.Replace(ctx, got); err != nil {
		t.Fatal(err)
	}
	stored, _ := e.store.GetForwarder(ctx, "acme", "siem")
	if stored.Sink.Settings["token"] != "s3cret" || stored.Sink.Settings["note"] != "edited" {
		t.Fatalf("stored settings after a masked round trip = %v", stored.Sink.Settings)
	}
	_, err = e.svc.Replace(ctx, fwd("nope"))
	wantCode(t, "replace a missing forwarder", err, cairn.ENotFound)
	if err := e.svc.Delete(ctx, "acme", "siem"); err != nil {
		t.Fatal(err)
	}
	wantCode(t, "delete twice", e.svc.Delete(ctx, "acme", "siem"), cairn.ENotFound)
}

func FuzzParsePattern(f *testing.F) {
	for _, s := range []string{"", "*", "user.*", "user.login", ".*", "a.*.*", "*.x", "a*b", "ü.*", "\x00"} {
		f.Add(s, "user.login")
	}
	f.Fuzz(func(t *testing.T, pattern, value string) {
		p, err := forward.ParsePattern(pattern)
		if err != nil {
			if cairn.ErrorCode(err) != cairn.EInvalid {
				t.Fatalf("ParsePattern(%q): code %q, want invalid", pattern, cairn.ErrorCode(err))
			}
			return
		}
		// A valid pattern round-trips and matches consistently.
		q, err := forward.ParsePattern(p.String())
		if err != nil || q != p {
			t.Fatalf("ParsePattern(%q).String() = %q does not round-trip (%v)", pattern, p.String(), err)
		}
		if pattern != "" && pattern != "*" && len(pattern) > 2 && pattern[len(pattern)-2:] == ".*" {
			prefix := pattern[:len(pattern)-1]
			if !p.Match(prefix+value) || p.Match(prefix[:len(prefix)-1]) {
				t.Fatalf("prefix pattern %q mismatches", pattern)
			}
		} else if pattern != "" && pattern != "*" && (!p.Match(pattern) || (value != pattern && p.Match(value))) {
			t.Fatalf("exact pattern %q matched %q", pattern, value)
		}
	})
}
