package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// IngestResult is the outcome of the ingest and load modes.
type IngestResult struct {
	Clients        int     `json:"clients"`
	Batch          int     `json:"batch"`
	Single         bool    `json:"single_event_requests"`
	PoolBodies     int     `json:"pool_bodies"`
	EventBytesMean float64 `json:"event_bytes_mean"`
	BodyBytesMean  float64 `json:"body_bytes_mean"`
	GenerateMs     float64 `json:"pool_generate_ms"`

	TargetEvents   int64   `json:"target_events,omitempty"` // load mode
	WallSeconds    float64 `json:"wall_seconds"`
	Events         int64   `json:"events_committed"`
	Requests       int64   `json:"requests_ok"`
	Attempts       int64   `json:"attempts"`
	EventsPerSec   float64 `json:"events_per_sec"`
	RequestsPerSec float64 `json:"requests_per_sec"`
	MBPerSec       float64 `json:"request_mb_per_sec"`

	// Latency is per successful request: send to last response byte.
	Latency    LatencySummary `json:"latency"`
	Errors     errCounts      `json:"errors"`
	FirstError string         `json:"first_error,omitempty"`
	Stopped    string         `json:"stopped,omitempty"` // why the run ended early
}

// ingestWorker is one client's state; only its goroutine touches it.
type ingestWorker struct {
	id     int
	api    *api
	conn   *conn // its own connection (conn.go)
	u      *universe
	r      *rand.Rand
	url    string
	bodies []*body
	next   int
	buf    bytes.Buffer

	lat      latency
	errs     errCounts
	requests int64
	attempts int64
	events   int64
	bytes    int64
	firstErr string
}

// shared is what the workers and the progress reporter share.
type shared struct {
	committed atomic.Int64
	claimed   atomic.Int64 // load mode: events handed out
	fatal     atomic.Pointer[error]
	cancel    context.CancelFunc
}

func (s *shared) fail(err error) {
	if s.fatal.CompareAndSwap(nil, &err) {
		s.cancel()
	}
}

func runIngest(ctx context.Context, cfg *config, a *api, rep *report, log io.Writer) error {
	u := newUniverse(cfg.Actors, cfg.Targets, cfg.Groups)
	single := cfg.Batch == 1

	genStart := time.Now()
	g := &generator{u: u, r: rand.New(rand.NewPCG(cfg.Seed, 0x6a09e667))}
	pool := make([]*body, cfg.Pool)
	for i := range pool {
		pool[i] = g.newBody(cfg.Batch, single)
	}
	genTime := time.Since(genStart)

	res := &IngestResult{
		Clients:        cfg.Clients,
		Batch:          cfg.Batch,
		Single:         single,
		PoolBodies:     len(pool),
		EventBytesMean: meanEventSize(pool),
		GenerateMs:     ms(genTime),
		Errors:         errCounts{},
	}
	var total int
	for _, b := range pool {
		total += len(b.buf)
	}
	res.BodyBytesMean = float64(total) / float64(len(pool))
	if cfg.Mode == "load" {
		res.TargetEvents = cfg.Events
	}
	fmt.Fprintf(log, "generated %d bodies of %d event(s) in %s: mean event %.0f B, mean body %s\n",
		len(pool), cfg.Batch, genTime.Round(time.Millisecond), res.EventBytesMean, bytesStr(res.BodyBytesMean))

	if err := a.ensureContext(ctx, cfg.Context); err != nil {
		return err
	}

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	sh := &shared{cancel: cancel}

	workers := make([]*ingestWorker, cfg.Clients)
	for i := range workers {
		c, err := newConn(cfg.Server, cfg.Timeout)
		if err != nil {
			return err
		}
		defer c.close()
		w := &ingestWorker{id: i, api: a, conn: c, u: u, url: ingestURL(a, cfg),
			r:    rand.New(rand.NewPCG(cfg.Seed, uint64(i)+1)),
			errs: errCounts{}}
		for j := i; j < len(pool); j += cfg.Clients {
			w.bodies = append(w.bodies, pool[j])
		}
		workers[i] = w
	}

	start := time.Now()
	var deadline time.Time
	if cfg.Mode == "ingest" {
		deadline = start.Add(cfg.Duration)
	}
	stopProgress := startProgress(cfg, sh, start, log)

	var wg sync.WaitGroup
	for _, w := range workers {
		wg.Go(func() {
			if cfg.Mode == "ingest" {
				w.runFor(ctx, sh, deadline)
			} else {
				w.runLoad(ctx, sh, cfg, g)
			}
		})
	}
	wg.Wait()
	wall := time.Since(start)
	stopProgress()

	var lat latency
	var bytesSent int64
	for _, w := range workers {
		lat = append(lat, w.lat...)
		res.Errors.merge(w.errs)
		res.Requests += w.requests
		res.Attempts += w.attempts
		res.Events += w.events
		bytesSent += w.bytes
		if res.FirstError == "" {
			res.FirstError = w.firstErr
		}
	}
	res.WallSeconds = wall.Seconds()
	res.EventsPerSec = float64(res.Events) / wall.Seconds()
	res.RequestsPerSec = float64(res.Requests) / wall.Seconds()
	res.MBPerSec = float64(bytesSent) / 1e6 / wall.Seconds()
	res.Latency = summarize(lat)
	rep.Ingest = res

	if p := sh.fatal.Load(); p != nil {
		res.Stopped = (*p).Error()
		return *p
	}
	if ctx.Err() != nil {
		res.Stopped = "interrupted"
	}
	return nil
}

// runFor posts bodies until the deadline. Requests in flight at the
// deadline complete and count.
func (w *ingestWorker) runFor(ctx context.Context, sh *shared, deadline time.Time) {
	for ctx.Err() == nil && time.Now().Before(deadline) {
		b := w.bodies[w.next]
		w.next = (w.next + 1) % len(w.bodies)
		w.post(ctx, sh, b, deadline)
	}
}

// runLoad claims batches of the event budget until it is spent.
func (w *ingestWorker) runLoad(ctx context.Context, sh *shared, cfg *config, g *generator) {
	var partial *body
	for ctx.Err() == nil {
		n := int64(cfg.Batch)
		prev := sh.claimed.Add(n) - n
		if prev >= cfg.Events {
			return
		}
		b := w.bodies[w.next]
		w.next = (w.next + 1) % len(w.bodies)
		if left := cfg.Events - prev; left < n {
			// The one short batch at the end: generate it on the spot.
			if partial == nil {
				pg := &generator{u: g.u, r: w.r}
				partial = pg.newBody(int(left), cfg.Batch == 1)
			}
			b = partial
		}
		w.post(ctx, sh, b, time.Time{})
	}
}

const maxTransportRetries = 3

// post re-randomises b and sends it, retrying 503/429 after Retry-After
// (until the deadline, if any) and transport errors a few times.
func (w *ingestWorker) post(ctx context.Context, sh *shared, b *body, deadline time.Time) {
	b.patch(w.u, w.r)
	backoff := 50 * time.Millisecond
	transportFails := 0
	for {
		if ctx.Err() != nil {
			return
		}
		req, err := w.api.postBody(ctx, w.url, b)
		if err != nil {
			sh.fail(err)
			return
		}
		w.attempts++
		start := time.Now()
		resp, err := w.conn.do(ctx, req, &w.buf)
		elapsed := time.Since(start)
		if err != nil {
			if ctx.Err() != nil {
				return // interrupted, not a server error
			}
			w.errs["transport"]++
			w.noteErr(err.Error())
			transportFails++
			if transportFails > maxTransportRetries || !sleep(ctx, time.Duration(transportFails)*100*time.Millisecond, deadline) {
				return
			}
			continue
		}
		w.bytes += int64(len(b.buf))
		switch code := resp.StatusCode; {
		case code == http.StatusCreated || code == http.StatusAccepted:
			w.lat = append(w.lat, elapsed)
			w.requests++
			n := int64(b.count())
			if !b.single {
				// Items that failed validation carry an "error" member.
				if rej := int64(bytes.Count(w.buf.Bytes(), []byte(`"error":`))); rej > 0 {
					w.errs["rejected_item"] += rej
					w.noteErr("item rejected: " + snippet(w.buf.Bytes()))
					n -= rej
				}
			}
			w.events += n
			sh.committed.Add(n)
			return
		case code == http.StatusServiceUnavailable || code == http.StatusTooManyRequests:
			w.errs[strconv.Itoa(code)]++
			d := retryDelay(resp.Header, backoff, w.r)
			backoff = min(2*backoff, 2*time.Second)
			if !sleep(ctx, d, deadline) {
				return
			}
		default:
			w.errs[strconv.Itoa(code)]++
			err := fmt.Errorf("POST %s: %w", w.url, statusError(resp, w.buf.Bytes()))
			w.noteErr(err.Error())
			if fatalStatus(code) {
				sh.fail(err)
			}
			return
		}
	}
}

func (w *ingestWorker) noteErr(s string) {
	if w.firstErr == "" {
		w.firstErr = s
	}
}

// startProgress prints a line every cfg.Progress; the returned func stops it.
func startProgress(cfg *config, sh *shared, start time.Time, log io.Writer) func() {
	if cfg.Progress <= 0 {
		return func() {}
	}
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		t := time.NewTicker(cfg.Progress)
		defer t.Stop()
		lastN, lastT := int64(0), start
		for {
			select {
			case <-done:
				return
			case now := <-t.C:
				n := sh.committed.Load()
				rate := float64(n-lastN) / now.Sub(lastT).Seconds()
				avg := float64(n) / now.Sub(start).Seconds()
				line := fmt.Sprintf("[%6s] %s events  %s/s now  %s/s avg",
					now.Sub(start).Round(time.Second), commas(n), commas(int64(rate)), commas(int64(avg)))
				if cfg.Mode == "load" {
					pct := 100 * float64(n) / float64(cfg.Events)
					eta := "?"
					if rate > 0 {
						eta = time.Duration(float64(cfg.Events-n) / rate * float64(time.Second)).Round(time.Second).String()
					}
					line += fmt.Sprintf("  %.1f%%  ETA %s", pct, eta)
				}
				fmt.Fprintln(log, line)
				lastN, lastT = n, now
			}
		}
	})
	return func() { close(done); wg.Wait() }
}

// ingestURL is where an ingest worker posts.
func ingestURL(a *api, cfg *config) string {
	u := a.eventsURL(cfg.Context)
	if cfg.Receipt {
		u += "?receipt=true"
	}
	return u
}
