package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestPercentile(t *testing.T) {
	var s []time.Duration
	for i := 1; i <= 100; i++ {
		s = append(s, time.Duration(i))
	}
	for _, c := range []struct {
		p    float64
		want time.Duration
	}{{50, 50}, {90, 90}, {99, 99}, {99.9, 100}, {100, 100}, {1, 1}, {0.1, 1}} {
		if got := percentile(s, c.p); got != c.want {
			t.Errorf("p%v of 1..100 = %v, want %v", c.p, got, c.want)
		}
	}
	if got := percentile(nil, 50); got != 0 {
		t.Errorf("p50 of nothing = %v", got)
	}
	if got := percentile([]time.Duration{7}, 99); got != 7 {
		t.Errorf("p99 of one sample = %v", got)
	}
	// Nearest rank on 10 samples: p50 is the 5th, p90 the 9th, p99 the 10th.
	ten := []time.Duration{10, 20, 30, 40, 50, 60, 70, 80, 90, 100}
	if a, b, c := percentile(ten, 50), percentile(ten, 90), percentile(ten, 99); a != 50 || b != 90 || c != 100 {
		t.Errorf("p50/p90/p99 of ten = %v/%v/%v", a, b, c)
	}

	// summarize sorts a copy and reports milliseconds.
	in := []time.Duration{3 * time.Millisecond, time.Millisecond, 2 * time.Millisecond, 10 * time.Millisecond}
	got := summarize(in)
	want := LatencySummary{Count: 4, MeanMs: 4, MinMs: 1, P50Ms: 2, P90Ms: 10, P99Ms: 10, MaxMs: 10}
	if got != want {
		t.Errorf("summarize = %+v, want %+v", got, want)
	}
	if in[0] != 3*time.Millisecond {
		t.Error("summarize reordered its input")
	}
}

// mustEvent is checkEvent for the test goroutine.
func mustEvent(t *testing.T, u *universe, raw []byte) map[string]int {
	t.Helper()
	ids, err := checkEvent(u, raw)
	if err != nil {
		t.Fatal(err)
	}
	return ids
}

// checkEvent validates one generated event against the data-set invariants.
func checkEvent(u *universe, raw []byte) (ids map[string]int, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("%v\n%s", r, raw)
		}
	}()
	var e struct {
		Action, Kind, Outcome, Reason, Description, Component, Version string
		Actor                                                          struct{ Type, ID, Name, Email string }
		Target                                                         struct{ Type, ID, Name string }
		Group                                                          struct{ ID, Name string }
		Source                                                         struct {
			IP        string `json:"ip"`
			UserAgent string `json:"user_agent"`
			RequestID string `json:"request_id"`
		}
		Changes []struct {
			Field    string
			Old, New any
		}
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&e); err != nil {
		return nil, fmt.Errorf("event does not decode: %v\n%s", err, raw)
	}
	var def = -1
	for i, d := range actionDefs {
		if d.action == e.Action {
			def = i
		}
	}
	if def < 0 || actionDefs[def].kind != e.Kind {
		panic(fmt.Sprintf("action/kind %q/%q", e.Action, e.Kind))
	}
	if e.Outcome != "success" && e.Outcome != "failure" {
		panic(fmt.Sprintf("outcome %q", e.Outcome))
	}

	num := func(s, prefix string, width, limit int) int {
		d, ok := strings.CutPrefix(s, prefix)
		if !ok || len(d) != width {
			panic(fmt.Sprintf("%q: want %s + %d digits", s, prefix, width))
		}
		n, err := strconv.Atoi(d)
		if err != nil || n < 0 || n >= limit {
			panic(fmt.Sprintf("%q out of range [0,%d)", s, limit))
		}
		return n
	}
	a := num(e.Actor.ID, actorPrefix(e.Actor.Type == "serviceaccount"), u.aw, u.actors)
	if u.actorID(a) != e.Actor.ID || u.actorEmail(a) != e.Actor.Email || (e.Actor.Type == "serviceaccount") != isService(a) {
		panic(fmt.Sprintf("inconsistent actor %+v", e.Actor))
	}
	tg := num(e.Target.ID, "obj-", u.tw, u.targets)
	if e.Target.Type != targetTypes[tg%4] || e.Target.Type != targetTypes[actionDefs[def].ttype] || u.targetID(tg) != e.Target.ID {
		panic(fmt.Sprintf("inconsistent target %+v for %s", e.Target, e.Action))
	}
	g := num(e.Group.ID, "tenant-", u.gw, u.groups)
	if u.groupID(g) != e.Group.ID {
		panic(fmt.Sprintf("group %q", e.Group.ID))
	}
	num(e.Source.RequestID, "req-", requestIDWidth, 1e12)
	if e.Source.IP == "" || e.Source.UserAgent == "" || e.Description == "" || e.Component == "" || e.Version == "" {
		panic(fmt.Sprintf("missing fields: %s", raw))
	}
	return map[string]int{"actor": a, "target": tg, "group": g}, nil
}

func TestGenerator(t *testing.T) {
	u := newUniverse(5000, 200000, 50)
	if u.aw != 4 || u.tw != 6 || u.gw != 2 {
		t.Fatalf("widths %d %d %d", u.aw, u.tw, u.gw)
	}
	g := &generator{u: u, r: rand.New(rand.NewPCG(1, 2))}
	b := g.newBody(500, false)
	r := rand.New(rand.NewPCG(3, 4))
	actors, targets := map[int]bool{}, map[int]bool{}
	for round := range 20 {
		var items []json.RawMessage
		if err := json.Unmarshal(b.buf, &items); err != nil {
			t.Fatalf("round %d: body is not a JSON array: %v", round, err)
		}
		if len(items) != 500 {
			t.Fatalf("%d items", len(items))
		}
		for _, it := range items {
			ids := mustEvent(t, u, it)
			actors[ids["actor"]] = true
			targets[ids["target"]] = true
		}
		before := len(b.buf)
		b.patch(u, r)
		if len(b.buf) != before {
			t.Fatal("patch changed the body size")
		}
	}
	// 10,000 draws over 5,000 actors hit most of them; over 200,000
	// targets almost all draws are distinct: patching really re-randomises.
	if len(actors) < 4000 || len(targets) < 9000 {
		t.Errorf("only %d actors, %d targets seen", len(actors), len(targets))
	}
	size := meanEventSize([]*body{b})
	if size < 450 || size > 800 {
		t.Errorf("mean event size %.0f B, want about 600", size)
	}
	t.Logf("mean event size %.1f B", size)

	single := g.newBody(1, true)
	if single.buf[0] != '{' {
		t.Fatalf("single body starts with %q", single.buf[0])
	}
	mustEvent(t, u, single.buf)
	if got := meanEventSize([]*body{single}); got != float64(len(single.buf)) {
		t.Errorf("single size %v", got)
	}

	// Tiny universes still satisfy the invariants.
	tiny := newUniverse(1, 4, 1)
	tg := &generator{u: tiny, r: rand.New(rand.NewPCG(5, 6))}
	tb := tg.newBody(50, false)
	tb.patch(tiny, r)
	var items []json.RawMessage
	if err := json.Unmarshal(tb.buf, &items); err != nil {
		t.Fatal(err)
	}
	for _, it := range items {
		mustEvent(t, tiny, it)
	}
}

// fake is an in-process stand-in for the Cairn API that checks request
// shapes.
type fake struct {
	u      *universe
	token  string
	org    string
	ctx    string
	reject int // first N event POSTs get 503

	mu        sync.Mutex
	posts     int
	events    int
	arrays    int
	singles   int
	receipts  int // posts with ?receipt=true
	contexts  int
	searches  map[string]int // sorted param names → count
	trails    int
	problems  []string
	committed []int // events per committed request
}

func (f *fake) problem(format string, args ...any) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.problems) < 20 {
		f.problems = append(f.problems, fmt.Sprintf(format, args...))
	}
}

var allowedSearch = map[string]bool{"context": true, "action": true, "kind": true, "outcome": true,
	"actor.id": true, "actor.type": true, "actor.email": true, "target.type": true, "target.id": true,
	"group.id": true, "since": true, "until": true, "q": true, "limit": true, "cursor": true}

func (f *fake) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Header.Get("Authorization") != "Bearer "+f.token {
		w.WriteHeader(http.StatusUnauthorized)
		io.WriteString(w, `{"error":{"code":"unauthorized","message":"bad key"}}`)
		return
	}
	body, err := io.ReadAll(r.Body)
	if err != nil {
		f.problem("read body: %v", err)
	}
	prefix := "/api/v1/orgs/" + f.org + "/"
	path, ok := strings.CutPrefix(r.URL.Path, prefix)
	if !ok {
		f.problem("path %s", r.URL.Path)
		w.WriteHeader(http.StatusNotFound)
		return
	}
	switch {
	case r.Method == http.MethodPost && path == "contexts":
		var c struct{ Name, Description string }
		if err := json.Unmarshal(body, &c); err != nil || c.Name != f.ctx {
			f.problem("context body %s", body)
		}
		f.mu.Lock()
		f.contexts++
		n := f.contexts
		f.mu.Unlock()
		if n > 1 {
			w.WriteHeader(http.StatusConflict)
			return
		}
		w.WriteHeader(http.StatusCreated)
	case r.Method == http.MethodPost && path == "contexts/"+f.ctx+"/events":
		if ct := r.Header.Get("Content-Type"); ct != "application/json" {
			f.problem("content type %q", ct)
		}
		if r.ContentLength != int64(len(body)) {
			f.problem("content length %d for %d bytes", r.ContentLength, len(body))
		}
		f.mu.Lock()
		f.posts++
		n := f.posts
		if r.URL.Query().Get("receipt") == "true" {
			f.receipts++
		}
		f.mu.Unlock()
		if n <= f.reject {
			w.Header().Set("Retry-After", "0")
			w.WriteHeader(http.StatusServiceUnavailable)
			io.WriteString(w, `{"error":{"code":"unavailable","message":"busy"}}`)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusCreated)
		if body[0] == '{' {
			if _, err := checkEvent(f.u, body); err != nil {
				f.problem("%v", err)
			}
			f.mu.Lock()
			f.singles++
			f.events++
			f.committed = append(f.committed, 1)
			f.mu.Unlock()
			io.WriteString(w, `{"id":"0190-x","seq":1,"leaf_hash":"AAAA"}`)
			return
		}
		var items []json.RawMessage
		if err := json.Unmarshal(body, &items); err != nil {
			f.problem("batch: %v", err)
			return
		}
		for _, it := range items {
			if _, err := checkEvent(f.u, it); err != nil {
				f.problem("%v", err)
			}
		}
		f.mu.Lock()
		f.arrays++
		f.events += len(items)
		f.committed = append(f.committed, len(items))
		f.mu.Unlock()
		out := []string{}
		for i := range items {
			out = append(out, fmt.Sprintf(`{"id":"id-%d","seq":%d,"leaf_hash":"AAAA"}`, i, i))
		}
		fmt.Fprintf(w, `{"items":[%s]}`, strings.Join(out, ","))
	case r.Method == http.MethodGet && path == "events":
		q := r.URL.Query()
		var names []string
		for k := range q {
			if !allowedSearch[k] {
				f.problem("search param %q", k)
			}
			if k != "limit" {
				names = append(names, k)
			}
		}
		f.checkValues(q)
		if q.Get("limit") == "1" {
			// The newest event, or a probe for how far back the data
			// goes: it reaches two hours back.
			newest := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
			at := newest
			if u := q.Get("until"); u != "" {
				at, _ = time.Parse(time.RFC3339Nano, u)
			}
			// A probe names a window: since and until both, or neither.
			probe := len(q) == 3 && q.Get("since") != "" && q.Get("until") != ""
			if !probe && len(q) != 1 || newest.Sub(at) > 2*time.Hour {
				io.WriteString(w, `{"items":[],"next_cursor":null}`)
				return
			}
			fmt.Fprintf(w, `{"items":[{"id":"x","event_time":%q,"received_time":"2026-03-01T12:00:01Z"}],"next_cursor":null}`,
				at.Format(time.RFC3339Nano))
			return
		}
		if q.Get("limit") != "50" {
			f.problem("limit %q", q.Get("limit"))
		}
		f.mu.Lock()
		f.searches[strings.Join(slices.Sorted(slices.Values(names)), "&")]++
		f.mu.Unlock()
		io.WriteString(w, `{"items":[{"id":"a"},{"id":"b"}],"next_cursor":"djE6MTA"}`)
	case r.Method == http.MethodGet && strings.HasPrefix(path, "trail/"):
		parts := strings.Split(strings.TrimPrefix(path, "trail/"), "/")
		if len(parts) != 2 {
			f.problem("trail path %q", path)
			return
		}
		n, err := strconv.Atoi(strings.TrimPrefix(parts[1], "obj-"))
		if err != nil || n >= f.u.targets || targetTypes[n%4] != parts[0] || f.u.targetID(n) != parts[1] {
			f.problem("trail target %q", path)
		}
		if r.URL.RawQuery != "limit=50" {
			f.problem("trail query %q", r.URL.RawQuery)
		}
		f.mu.Lock()
		f.trails++
		f.mu.Unlock()
		io.WriteString(w, `{"items":[],"next_cursor":null}`)
	default:
		f.problem("unexpected %s %s", r.Method, r.URL)
		w.WriteHeader(http.StatusNotFound)
	}
}

// checkValues checks search values fall inside the generated data set.
func (f *fake) checkValues(q map[string][]string) {
	get := func(k string) string {
		if v := q[k]; len(v) > 0 {
			return v[0]
		}
		return ""
	}
	if a := get("actor.id"); a != "" {
		n, err := strconv.Atoi(a[strings.IndexByte(a, '-')+1:])
		if err != nil || n >= f.u.actors || f.u.actorID(n) != a {
			f.problem("actor.id %q", a)
		}
	}
	if g := get("group.id"); g != "" {
		n, err := strconv.Atoi(strings.TrimPrefix(g, "tenant-"))
		if err != nil || n >= f.u.groups || f.u.groupID(n) != g {
			f.problem("group.id %q", g)
		}
	}
	if a := get("action"); a != "" && !strings.HasSuffix(a, ".*") {
		found := false
		for _, d := range actionDefs {
			found = found || d.action == a
		}
		if !found {
			f.problem("action %q", a)
		}
	}
	for _, k := range []string{"since", "until"} {
		if v := get(k); v != "" {
			if _, err := time.Parse(time.RFC3339Nano, v); err != nil {
				f.problem("%s %q", k, v)
			}
		}
	}
	if s, u := get("since"), get("until"); s != "" && u != "" && s > u {
		f.problem("since %s after until %s", s, u)
	}
	if w := get("q"); w != "" && !strings.Contains(strings.Join(words[:], " "), w) {
		f.problem("q %q is not a description word", w)
	}
}

func newFake(t *testing.T, reject int) (*fake, *httptest.Server) {
	f := &fake{u: newUniverse(500, 2000, 10), token: "tok", org: "acme", ctx: "bench",
		reject: reject, searches: map[string]int{}}
	srv := httptest.NewServer(f)
	t.Cleanup(srv.Close)
	t.Cleanup(func() {
		for _, p := range f.problems {
			t.Error(p)
		}
	})
	return f, srv
}

func testConfig(t *testing.T, srv *httptest.Server, mode string, args ...string) *config {
	t.Helper()
	base := []string{"--server", srv.URL, "--token", "tok", "--org", "acme",
		"--actors", "500", "--targets", "2000", "--groups", "10"}
	if mode != "query" {
		base = append(base, "--progress", "0")
	}
	cfg, err := parseFlags(mode, append(base, args...), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

func runMode(t *testing.T, cfg *config) (*report, string, error) {
	t.Helper()
	rep := newReport(cfg, []string{cfg.Mode})
	var log bytes.Buffer
	err := run(context.Background(), cfg, rep, &log)
	var out bytes.Buffer
	rep.printHeader(&out)
	rep.printResult(&out)
	if err := rep.writeJSON(&out); err != nil {
		t.Fatal(err)
	}
	return rep, out.String(), err
}

func TestIngestBatches(t *testing.T) {
	f, srv := newFake(t, 3)
	cfg := testConfig(t, srv, "ingest", "--clients", "3", "--batch", "40", "--duration", "300ms")
	rep, out, err := runMode(t, cfg)
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	res := rep.Ingest
	if res.Events == 0 || res.Events != int64(f.events) || f.singles != 0 || f.arrays == 0 {
		t.Errorf("tool counted %d events, fake committed %d (arrays %d singles %d)", res.Events, f.events, f.arrays, f.singles)
	}
	if res.Errors["503"] != 3 || res.Attempts != res.Requests+3 {
		t.Errorf("errors %v, attempts %d, requests %d", res.Errors, res.Attempts, res.Requests)
	}
	if res.Latency.Count != int(res.Requests) || res.Latency.P50Ms <= 0 {
		t.Errorf("latency %+v", res.Latency)
	}
	if res.EventBytesMean < 450 {
		t.Errorf("mean event %v", res.EventBytesMean)
	}
	t.Log("\n" + out)
}

func TestIngestSingle(t *testing.T) {
	f, srv := newFake(t, 0)
	cfg := testConfig(t, srv, "ingest", "--clients", "4", "--batch", "1", "--duration", "200ms")
	rep, out, err := runMode(t, cfg)
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if f.arrays != 0 || f.singles == 0 || rep.Ingest.Events != int64(f.singles) {
		t.Errorf("arrays %d singles %d counted %d", f.arrays, f.singles, rep.Ingest.Events)
	}
}

func TestIngestReceipt(t *testing.T) {
	f, srv := newFake(t, 0)
	cfg := testConfig(t, srv, "ingest", "--clients", "2", "--batch", "1", "--receipt", "--duration", "200ms")
	if _, out, err := runMode(t, cfg); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if f.receipts == 0 || f.receipts != f.posts {
		t.Errorf("%d of %d posts asked for a receipt", f.receipts, f.posts)
	}
}

func TestLoadExactCount(t *testing.T) {
	f, srv := newFake(t, 1)
	cfg := testConfig(t, srv, "load", "--clients", "3", "--batch", "10", "--events", "95")
	rep, out, err := runMode(t, cfg)
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if f.events != 95 || rep.Ingest.Events != 95 {
		t.Errorf("fake got %d events, tool counted %d, want 95", f.events, rep.Ingest.Events)
	}
	short := 0
	for _, n := range f.committed {
		if n != 10 {
			short++
			if n != 5 {
				t.Errorf("batch of %d", n)
			}
		}
	}
	if short != 1 {
		t.Errorf("%d short batches", short)
	}
}

func TestBadTokenStops(t *testing.T) {
	_, srv := newFake(t, 0)
	cfg := testConfig(t, srv, "ingest", "--duration", "10s", "--token", "wrong")
	start := time.Now()
	_, _, err := runMode(t, cfg)
	if err == nil || !strings.Contains(err.Error(), "401") {
		t.Fatalf("err = %v", err)
	}
	if time.Since(start) > 5*time.Second {
		t.Error("a bad token did not stop the run")
	}
}

func TestQuery(t *testing.T) {
	f, srv := newFake(t, 0)
	cfg := testConfig(t, srv, "query", "--clients", "2", "--duration", "400ms")
	rep, out, err := runMode(t, cfg)
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	res := rep.Query
	if len(res.Shapes) != len(shapes) {
		t.Fatalf("%d shapes reported", len(res.Shapes))
	}
	var searches int
	for _, n := range f.searches {
		searches += n
	}
	if int64(searches+f.trails) != res.Requests || res.Trail.Count != f.trails || res.Search.Count != searches {
		t.Errorf("fake saw %d searches %d trails; tool %+v", searches, f.trails, res)
	}
	for _, s := range res.Shapes {
		if s.Requests == 0 || s.Latency.Count == 0 {
			t.Errorf("shape %s never ran", s.Name)
		}
		if s.Kind == "search" && (s.MeanItems != 2 || s.FullPct != 100) {
			t.Errorf("shape %s: items %v more %v", s.Name, s.MeanItems, s.FullPct)
		}
		if s.Kind == "trail" && s.EmptyPct != 100 {
			t.Errorf("trail empty%% %v", s.EmptyPct)
		}
	}
	if len(f.searches) < 10 {
		t.Errorf("only %d distinct parameter sets: %v", len(f.searches), f.searches)
	}
	if res.NewestEvent != "2026-03-01T12:00:00Z" || res.DataSpan != "1h0m0s" {
		t.Errorf("newest %q, span %q", res.NewestEvent, res.DataSpan)
	}
	t.Log("\n" + out)

	// --shapes restricts the mix.
	cfg = testConfig(t, srv, "query", "--duration", "100ms", "--shapes", "actor,trail", "--trail-ratio", "0.5")
	rep, _, err = runMode(t, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Query.Shapes) != 2 {
		t.Errorf("shapes %+v", rep.Query.Shapes)
	}
	if _, err := parseFlags("query", []string{"--shapes", "nope"}, io.Discard); err != nil {
		t.Fatal(err) // validated at run time, against the shape table
	}
	cfg = testConfig(t, srv, "query", "--duration", "100ms", "--shapes", "nope")
	if _, _, err := runMode(t, cfg); err == nil {
		t.Error("unknown shape accepted")
	}
}

func TestShellJoin(t *testing.T) {
	got := shellJoin([]string{"ingest", "--token", "s3cret", "--token=abc", "--server", "http://x:1", "a b"})
	want := "ingest --token REDACTED --token=REDACTED --server http://x:1 'a b'"
	if got != want {
		t.Errorf("got  %s\nwant %s", got, want)
	}
	if commas(1234567) != "1,234,567" || commas(12) != "12" || commas(-1000) != "-1,000" {
		t.Error("commas")
	}
}
