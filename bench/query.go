package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"math/rand/v2"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// ShapeResult is one query shape's outcome.
type ShapeResult struct {
	Name       string         `json:"name"`
	Kind       string         `json:"kind"` // "search" or "trail"
	Example    string         `json:"example"`
	Requests   int64          `json:"requests_ok"`
	Latency    LatencySummary `json:"latency"`
	MeanItems  float64        `json:"mean_items"`
	EmptyPct   float64        `json:"empty_pct"`
	FullPct    float64        `json:"more_pages_pct"` // answered with a next_cursor
	Errors     errCounts      `json:"errors,omitempty"`
	FirstError string         `json:"first_error,omitempty"`
}

// QueryResult is the outcome of the query mode.
type QueryResult struct {
	Clients        int            `json:"clients"`
	Limit          int            `json:"limit"`
	TrailRatio     float64        `json:"trail_ratio"`
	NewestEvent    string         `json:"newest_event_time,omitempty"`
	DataSpan       string         `json:"data_span,omitempty"` // events exist at least this far before the newest
	WallSeconds    float64        `json:"wall_seconds"`
	Requests       int64          `json:"requests_ok"`
	RequestsPerSec float64        `json:"requests_per_sec"`
	Search         LatencySummary `json:"search"`
	Trail          LatencySummary `json:"trail"`
	Shapes         []ShapeResult  `json:"shapes"`
	Errors         errCounts      `json:"errors"`
	Stopped        string         `json:"stopped,omitempty"`
}

// querier builds query URLs; one per worker.
type querier struct {
	a      *api
	u      *universe
	r      *rand.Rand
	ctx    string // context name for the context filter
	limit  string
	newest time.Time     // event_time of the newest event, the anchor of time windows
	span   time.Duration // events exist at least this far back from newest
}

type shape struct {
	name  string
	trail bool
	// params returns the query parameters (search) or, for trail, the
	// target type and id in "type" and "id".
	params func(q *querier) url.Values
}

func (q *querier) action() string  { return actionDefs[q.r.IntN(len(actionDefs))].action }
func (q *querier) kind() string    { return actionDefs[q.r.IntN(len(actionDefs))].kind }
func (q *querier) word() string    { return words[q.r.IntN(len(words))] }
func (q *querier) actorN() int     { return q.r.IntN(q.u.actors) }
func (q *querier) group() string   { return q.u.groupID(q.r.IntN(q.u.groups)) }
func (q *querier) prefix() string  { return actionPrefixes[q.r.IntN(len(actionPrefixes))] + ".*" }
func (q *querier) outcome() string { return [...]string{"success", "failure"}[q.r.IntN(2)] }
func (q *querier) target() (string, string) {
	n := q.r.IntN(q.u.targets)
	return targetTypes[n%4], q.u.targetID(n)
}

// window sets since/until to a span of one of the lengths, placed at
// random where the data is: within [newest-span, newest].
func (q *querier) window(v url.Values, lengths ...time.Duration) {
	d := lengths[q.r.IntN(len(lengths))]
	until := q.newest.Add(time.Millisecond)
	if q.span > d {
		until = until.Add(-time.Duration(q.r.Int64N(int64(q.span - d))))
	}
	v.Set("since", until.Add(-d).UTC().Format(time.RFC3339Nano))
	v.Set("until", until.UTC().Format(time.RFC3339Nano))
}

func vals(kv ...string) url.Values {
	v := url.Values{}
	for i := 0; i+1 < len(kv); i += 2 {
		v.Set(kv[i], kv[i+1])
	}
	return v
}

var shapes = []shape{
	{name: "action", params: func(q *querier) url.Values { return vals("action", q.action()) }},
	{name: "action_prefix", params: func(q *querier) url.Values { return vals("action", q.prefix()) }},
	{name: "actor", params: func(q *querier) url.Values { return vals("actor.id", q.u.actorID(q.actorN())) }},
	{name: "actor_email", params: func(q *querier) url.Values { return vals("actor.email", q.u.actorEmail(q.actorN())) }},
	{name: "target", params: func(q *querier) url.Values {
		t, id := q.target()
		return vals("target.type", t, "target.id", id)
	}},
	{name: "group", params: func(q *querier) url.Values { return vals("group.id", q.group()) }},
	{name: "kind_outcome", params: func(q *querier) url.Values { return vals("kind", q.kind(), "outcome", q.outcome()) }},
	{name: "window", params: func(q *querier) url.Values {
		v := url.Values{}
		q.window(v, time.Minute, 10*time.Minute, time.Hour)
		return v
	}},
	{name: "text", params: func(q *querier) url.Values { return vals("q", q.word()) }},
	{name: "text_group", params: func(q *querier) url.Values { return vals("q", q.word(), "group.id", q.group()) }},
	{name: "group_action_window", params: func(q *querier) url.Values {
		v := vals("group.id", q.group(), "action", q.action())
		q.window(v, time.Hour, 24*time.Hour)
		return v
	}},
	{name: "actor_kind", params: func(q *querier) url.Values {
		return vals("actor.id", q.u.actorID(q.actorN()), "kind", q.kind())
	}},
	{name: "actor_type_window", params: func(q *querier) url.Values {
		v := vals("actor.type", "serviceaccount")
		q.window(v, 10*time.Minute, time.Hour)
		return v
	}},
	{name: "context_prefix_outcome", params: func(q *querier) url.Values {
		return vals("context", q.ctx, "action", q.prefix(), "outcome", q.outcome())
	}},
	{name: "trail", trail: true, params: func(q *querier) url.Values {
		t, id := q.target()
		return vals("type", t, "id", id)
	}},
}

// url turns a shape's parameters into a request URL.
func (q *querier) url(s *shape) string {
	v := s.params(q)
	if s.trail {
		t, id := v.Get("type"), v.Get("id")
		return q.a.orgURL("trail", t, id) + "?limit=" + q.limit
	}
	v.Set("limit", q.limit)
	return q.a.orgURL("events") + "?" + v.Encode()
}

type shapeStats struct {
	lat      latency
	ok       int64
	items    int64
	empty    int64
	full     int64
	errs     errCounts
	firstErr string
}

type queryWorker struct {
	q     *querier
	sel   []int // indexes into shapes: search shapes
	trail int   // index of trail in shapes, or -1
	ratio float64
	stats []shapeStats
	buf   bytes.Buffer
}

type page struct {
	Items      []json.RawMessage `json:"items"`
	NextCursor *string           `json:"next_cursor"`
}

func runQuery(ctx context.Context, cfg *config, a *api, rep *report, log io.Writer) error {
	u := newUniverse(cfg.Actors, cfg.Targets, cfg.Groups)

	// Which shapes run.
	var search []int
	trail := -1
	want := map[string]bool{}
	for _, s := range strings.Split(cfg.Shapes, ",") {
		if s = strings.TrimSpace(s); s != "" {
			want[s] = true
		}
	}
	for i, s := range shapes {
		if len(want) > 0 && !want[s.name] {
			continue
		}
		delete(want, s.name)
		if s.trail {
			trail = i
		} else {
			search = append(search, i)
		}
	}
	if len(want) > 0 {
		var names []string
		for _, s := range shapes {
			names = append(names, s.name)
		}
		return fmt.Errorf("unknown --shapes %q; known: %s", slices.Sorted(maps.Keys(want)), strings.Join(names, ","))
	}
	ratio := cfg.TrailRatio
	switch {
	case trail < 0:
		ratio = 0
	case len(search) == 0:
		ratio = 1
	}
	if ratio < 1 && len(search) == 0 || ratio > 0 && trail < 0 {
		return errors.New("no query shape selected")
	}

	newest, err := latestEventTime(ctx, a, time.Time{})
	if err != nil {
		return err
	}
	var span time.Duration
	if !newest.IsZero() {
		if span, err = dataSpan(ctx, a, newest); err != nil {
			return err
		}
	}
	res := &QueryResult{Clients: cfg.Clients, Limit: cfg.Limit, TrailRatio: ratio, Errors: errCounts{}}
	if newest.IsZero() {
		fmt.Fprintln(log, "warning: the org has no events; every search will come back empty (run the load mode first)")
		newest = time.Now()
	} else {
		res.NewestEvent = newest.UTC().Format(time.RFC3339Nano)
		res.DataSpan = span.String()
	}

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var fatal error
	var fatalOnce sync.Once
	fail := func(err error) { fatalOnce.Do(func() { fatal = err; cancel() }) }

	workers := make([]*queryWorker, cfg.Clients)
	for i := range workers {
		workers[i] = &queryWorker{
			q: &querier{a: a, u: u, r: rand.New(rand.NewPCG(cfg.Seed, 0x9e3779b9+uint64(i))),
				ctx: cfg.Context, limit: strconv.Itoa(cfg.Limit), newest: newest, span: span},
			sel: search, trail: trail, ratio: ratio,
			stats: make([]shapeStats, len(shapes)),
		}
		for j := range workers[i].stats {
			workers[i].stats[j].errs = errCounts{}
		}
	}

	start := time.Now()
	deadline := start.Add(cfg.Duration)
	var wg sync.WaitGroup
	for _, w := range workers {
		wg.Go(func() { w.run(ctx, deadline, fail) })
	}
	wg.Wait()
	wall := time.Since(start)

	// Merge.
	var searchLat, trailLat latency
	for i, s := range shapes {
		if s.trail && trail < 0 || !s.trail && !slices.Contains(search, i) {
			continue
		}
		var lat latency
		sr := ShapeResult{Name: s.name, Kind: "search", Errors: errCounts{}}
		if s.trail {
			sr.Kind = "trail"
		}
		// A deterministic example of the shape, for the report.
		ex := &querier{a: &api{org: cfg.Org}, u: u, r: rand.New(rand.NewPCG(1, 1)), ctx: cfg.Context,
			limit: strconv.Itoa(cfg.Limit), newest: newest, span: span}
		sr.Example = strings.TrimPrefix(ex.url(&shapes[i]), ex.a.orgURL())
		if un, err := url.QueryUnescape(sr.Example); err == nil {
			sr.Example = un // for reading; the real requests are escaped
		}
		var items, empty, full int64
		for _, w := range workers {
			st := &w.stats[i]
			lat = append(lat, st.lat...)
			sr.Requests += st.ok
			items += st.items
			empty += st.empty
			full += st.full
			sr.Errors.merge(st.errs)
			if sr.FirstError == "" {
				sr.FirstError = st.firstErr
			}
		}
		sr.Latency = summarize(lat)
		if sr.Requests > 0 {
			sr.MeanItems = float64(items) / float64(sr.Requests)
			sr.EmptyPct = 100 * float64(empty) / float64(sr.Requests)
			sr.FullPct = 100 * float64(full) / float64(sr.Requests)
		}
		if len(sr.Errors) == 0 {
			sr.Errors = nil
		}
		res.Errors.merge(sr.Errors)
		res.Requests += sr.Requests
		if s.trail {
			trailLat = append(trailLat, lat...)
		} else {
			searchLat = append(searchLat, lat...)
		}
		res.Shapes = append(res.Shapes, sr)
	}
	res.WallSeconds = wall.Seconds()
	res.RequestsPerSec = float64(res.Requests) / wall.Seconds()
	res.Search = summarize(searchLat)
	res.Trail = summarize(trailLat)
	rep.Query = res
	if fatal != nil {
		res.Stopped = fatal.Error()
		return fatal
	}
	if ctx.Err() != nil {
		res.Stopped = "interrupted"
	}
	return nil
}

func (w *queryWorker) run(ctx context.Context, deadline time.Time, fail func(error)) {
	for ctx.Err() == nil && time.Now().Before(deadline) {
		i := w.trail
		if w.ratio < 1 && (w.ratio == 0 || w.q.r.Float64() >= w.ratio) {
			i = w.sel[w.q.r.IntN(len(w.sel))]
		}
		w.one(ctx, i, deadline, fail)
	}
}

func (w *queryWorker) one(ctx context.Context, i int, deadline time.Time, fail func(error)) {
	st := &w.stats[i]
	u := w.q.url(&shapes[i])
	req, err := w.q.a.newRequest(ctx, http.MethodGet, u, nil)
	if err != nil {
		fail(err)
		return
	}
	start := time.Now()
	resp, err := w.q.a.do(req, &w.buf)
	elapsed := time.Since(start)
	if err != nil {
		if ctx.Err() != nil {
			return
		}
		st.errs["transport"]++
		st.note(err.Error())
		sleep(ctx, 100*time.Millisecond, deadline)
		return
	}
	switch code := resp.StatusCode; {
	case code == http.StatusOK:
		var p page
		if err := json.Unmarshal(w.buf.Bytes(), &p); err != nil {
			st.errs["bad_json"]++
			st.note(fmt.Sprintf("GET %s: %v: %s", u, err, snippet(w.buf.Bytes())))
			return
		}
		st.lat = append(st.lat, elapsed)
		st.ok++
		st.items += int64(len(p.Items))
		if len(p.Items) == 0 {
			st.empty++
		}
		if p.NextCursor != nil && *p.NextCursor != "" {
			st.full++
		}
	case code == http.StatusServiceUnavailable || code == http.StatusTooManyRequests:
		st.errs[strconv.Itoa(code)]++
		sleep(ctx, retryDelay(resp.Header, 100*time.Millisecond, w.q.r), deadline)
	default:
		st.errs[strconv.Itoa(code)]++
		err := fmt.Errorf("GET %s: %w", u, statusError(resp, w.buf.Bytes()))
		st.note(err.Error())
		if code == http.StatusUnauthorized || code == http.StatusForbidden {
			fail(err)
		}
	}
}

func (s *shapeStats) note(msg string) {
	if s.firstErr == "" {
		s.firstErr = msg
	}
}

// dataSpan estimates how far back from newest the data reaches, probing
// "is there an event at or before newest-x" for growing x. The answer is a
// lower bound: events exist at newest-span.
func dataSpan(ctx context.Context, a *api, newest time.Time) (time.Duration, error) {
	var span time.Duration
	for _, x := range []time.Duration{time.Minute, 5 * time.Minute, 15 * time.Minute, time.Hour,
		6 * time.Hour, 24 * time.Hour, 7 * 24 * time.Hour, 30 * 24 * time.Hour, 365 * 24 * time.Hour} {
		t, err := latestEventTime(ctx, a, newest.Add(-x))
		if err != nil || t.IsZero() {
			return span, err
		}
		span = newest.Sub(t)
	}
	return span, nil
}

// latestEventTime is the event_time of the org's newest event (in the year
// before until, if given), or zero when there is none.
func latestEventTime(ctx context.Context, a *api, until time.Time) (time.Time, error) {
	u := a.orgURL("events") + "?limit=1"
	if !until.IsZero() {
		// A window, not until alone: a search with only an upper time bound
		// has no index to use and walks every newer event first (at 10 M
		// events, minutes); a year-long window is a handful of time buckets.
		u += "&since=" + url.QueryEscape(until.Add(-365*24*time.Hour).UTC().Format(time.RFC3339Nano)) +
			"&until=" + url.QueryEscape(until.UTC().Format(time.RFC3339Nano))
	}
	req, err := a.newRequest(ctx, http.MethodGet, u, nil)
	if err != nil {
		return time.Time{}, err
	}
	var buf bytes.Buffer
	resp, err := a.do(req, &buf)
	if err != nil {
		return time.Time{}, fmt.Errorf("GET %s: %w", u, err)
	}
	if resp.StatusCode != http.StatusOK {
		return time.Time{}, fmt.Errorf("GET %s: %w", u, statusError(resp, buf.Bytes()))
	}
	var p struct {
		Items []struct {
			EventTime    time.Time `json:"event_time"`
			ReceivedTime time.Time `json:"received_time"`
		} `json:"items"`
	}
	if err := json.Unmarshal(buf.Bytes(), &p); err != nil {
		return time.Time{}, fmt.Errorf("GET %s: %v", u, err)
	}
	if len(p.Items) == 0 {
		return time.Time{}, nil
	}
	if t := p.Items[0].EventTime; !t.IsZero() {
		return t, nil
	}
	return p.Items[0].ReceivedTime, nil
}
