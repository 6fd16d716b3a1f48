// Package agent is Cairn's loopback agent (`cairn agent`): a workload posts
// Control Plane-style and Replicated audit events to it on 127.0.0.1
// without credentials; the agent journals each event durably on local disk
// before answering, then forwards the journal to the Cairn server in order
// with the workload identity's key, retrying until the server has every
// event. Each journal record carries its own Idempotency-Key, so a retry
// after a lost response, a server restart or an agent restart commits the
// event once.
//
// It must never listen on anything but a loopback address, never log event
// bodies or the token, and never drop a record it acknowledged: a record
// leaves the journal only when the server confirmed it, or (refused as
// invalid for good) into the journal's rejected/ directory.
package agent

import (
	"bytes"
	"context"
	crand "crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/cairn-audit/cairn"
)

// Config configures an Agent.
type Config struct {
	// Listen is the loopback address to serve on (default 127.0.0.1:43000).
	Listen string
	// Server is the Cairn server's base URL, e.g. https://cairn.example.
	Server string
	// Token is the API key of the workload identity; it must hold
	// writeAudit on the contexts the workload writes to.
	Token string
	// Org is the workload's org: Control Plane paths must name it.
	Org string
	// Journal is the directory of the durable journal.
	Journal string
	// ReplicatedContext is where Replicated events go (default
	// "replicated").
	ReplicatedContext string
	// Check checks a body before it is journaled (kind is KindControlPlane
	// or KindReplicated), so that what the agent accepts the server will
	// too. Errors are *cairn.Error.
	Check func(kind string, body []byte) error
	// SyncWait bounds how long a synchronous Control Plane write (async
	// false) waits for the server before the agent answers 202 from the
	// journal (default 10s).
	SyncWait time.Duration
	// MaxBackoff caps the retry delay (default 5s).
	MaxBackoff time.Duration
	HTTP       *http.Client
	Logger     *slog.Logger
}

// Defaults.
const (
	DefaultListen = "127.0.0.1:43000"
	maxBody       = 1 << 20
)

// Validate checks the configuration and fills in defaults.
func (c *Config) Validate() error {
	if c.Listen == "" {
		c.Listen = DefaultListen
	}
	if c.ReplicatedContext == "" {
		c.ReplicatedContext = "replicated"
	}
	if c.SyncWait <= 0 {
		c.SyncWait = 10 * time.Second
	}
	if c.MaxBackoff <= 0 {
		c.MaxBackoff = 5 * time.Second
	}
	if c.HTTP == nil {
		c.HTTP = &http.Client{Timeout: 30 * time.Second}
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	host, _, err := net.SplitHostPort(c.Listen)
	if err != nil {
		return cairn.Errorf(cairn.EInvalid, "listen address %q: %v", c.Listen, err)
	}
	if ip, err := netip.ParseAddr(host); host != "localhost" && (err != nil || !ip.IsLoopback()) {
		return cairn.Errorf(cairn.EInvalid, "listen address %q is not a loopback address: the agent accepts writes without credentials", c.Listen)
	}
	u, err := url.Parse(c.Server)
	if c.Server == "" || err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return cairn.Errorf(cairn.EInvalid, "server must be the Cairn server's http(s) URL")
	}
	switch {
	case c.Token == "":
		return cairn.Errorf(cairn.EInvalid, "token (the workload identity's API key) is required")
	case c.Org == "":
		return cairn.Errorf(cairn.EInvalid, "org is required")
	case c.Journal == "":
		return cairn.Errorf(cairn.EInvalid, "journal directory is required")
	case c.Check == nil:
		return cairn.Errorf(cairn.EInvalid, "check function is required")
	}
	return nil
}

// Agent is a running agent.
type Agent struct {
	cfg      Config
	journal  *journal
	listener net.Listener
	server   *http.Server

	mu      sync.Mutex
	waiters map[string]chan delivery

	stop context.CancelFunc
	done chan struct{}
}

// delivery is the server's answer for one record.
type delivery struct {
	status int
	body   []byte
}

// Open opens the journal, starts listening and starts forwarding.
func Open(ctx context.Context, cfg Config) (*Agent, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	j, err := openJournal(cfg.Journal)
	if err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return nil, fmt.Errorf("listen: %w", err)
	}
	a := &Agent{cfg: cfg, journal: j, listener: ln, waiters: map[string]chan delivery{}, done: make(chan struct{})}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /audit/org/{org}/auditctx/{ctx}", a.controlPlane)
	mux.HandleFunc("POST /audit/v1/event", a.replicated)
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, map[string]any{"status": "ok", "pending": a.journal.Len()})
	})
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, cairn.Errorf(cairn.ENotFound, "no route for %s %s", r.Method, r.URL.Path))
	})
	a.server = &http.Server{Handler: a.loopbackOnly(mux), ReadHeaderTimeout: 10 * time.Second, ReadTimeout: time.Minute,
		ErrorLog: slog.NewLogLogger(cfg.Logger.Handler(), slog.LevelWarn)}
	go a.server.Serve(ln)
	fctx, stop := context.WithCancel(context.WithoutCancel(ctx))
	a.stop = stop
	go a.forward(fctx)
	cfg.Logger.Info("cairn agent listening", slog.String("addr", "http://"+ln.Addr().String()),
		slog.String("server", cfg.Server), slog.String("org", cfg.Org), slog.Int("pending", j.Len()))
	return a, nil
}

// Addr is the address the agent listens on.
func (a *Agent) Addr() string { return a.listener.Addr().String() }

// Pending is the number of journaled records not yet delivered.
func (a *Agent) Pending() int { return a.journal.Len() }

// Close stops accepting writes, lets in-flight requests finish and stops
// forwarding. Undelivered records stay in the journal for the next start.
func (a *Agent) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	err := a.server.Shutdown(ctx)
	a.stop()
	<-a.done
	return err
}

// loopbackOnly refuses connections from anything but loopback (the
// listener is bound to loopback; this holds even if the kernel routes
// otherwise).
func (a *Agent) loopbackOnly(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ap, err := netip.ParseAddrPort(r.RemoteAddr)
		if err != nil || !ap.Addr().Unmap().IsLoopback() {
			writeError(w, cairn.Errorf(cairn.EForbidden, "the agent only accepts local connections"))
			return
		}
		h.ServeHTTP(w, r)
	})
}

func (a *Agent) controlPlane(w http.ResponseWriter, r *http.Request) {
	org, name := r.PathValue("org"), r.PathValue("ctx")
	if org != a.cfg.Org {
		writeError(w, cairn.Errorf(cairn.EForbidden, "this agent writes for org %q only", a.cfg.Org))
		return
	}
	async := false
	for k, v := range r.URL.Query() {
		if k != "async" || len(v) != 1 {
			writeError(w, cairn.Errorf(cairn.EInvalid, "unknown query parameter %q", k))
			return
		}
		switch strings.ToLower(v[0]) {
		case "true", "1":
			async = true
		case "false", "0", "":
		default:
			writeError(w, cairn.Errorf(cairn.EInvalid, "async must be true or false"))
			return
		}
	}
	rec, err := a.accept(w, r, KindControlPlane, "/audit/org/"+url.PathEscape(org)+"/auditctx/"+url.PathEscape(name), "")
	if err != nil {
		writeError(w, err)
		return
	}
	if async {
		a.unwait(rec.ID)
	} else {
		select {
		case d := <-rec.wait:
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(d.status)
			w.Write(d.body)
			return
		case <-time.After(a.cfg.SyncWait):
		case <-r.Context().Done():
			return
		}
		a.unwait(rec.ID)
	}
	writeJSON(w, http.StatusAccepted, map[string]string{"id": rec.ID,
		"message": fmt.Sprintf("Accepted event %s into the agent's journal; it will be published to %s", rec.ID, name)})
}

func (a *Agent) replicated(w http.ResponseWriter, r *http.Request) {
	if len(r.URL.Query()) > 0 {
		writeError(w, cairn.Errorf(cairn.EInvalid, "this route takes no query parameters"))
		return
	}
	q := url.Values{"context": {a.cfg.ReplicatedContext}}.Encode()
	rec, err := a.accept(w, r, KindReplicated, "/audit/v1/event", q)
	if err != nil {
		writeError(w, err)
		return
	}
	a.unwait(rec.ID)
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Content-Length", "0")
	w.WriteHeader(http.StatusCreated)
}

type accepted struct {
	*Record
	wait chan delivery
}

// accept validates and journals a write.
func (a *Agent) accept(w http.ResponseWriter, r *http.Request, kind, path, query string) (*accepted, error) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBody))
	if err != nil {
		return nil, cairn.Errorf(cairn.ETooLarge, "request body exceeds the limit of %d bytes", maxBody)
	}
	if err := a.cfg.Check(kind, body); err != nil {
		return nil, err
	}
	var id [16]byte
	if _, err := cryptoRead(id[:]); err != nil {
		return nil, err
	}
	rec := &Record{ID: "agent-" + hex.EncodeToString(id[:]), Kind: kind, Path: path, Query: query,
		Body: body, Received: time.Now().UTC()}
	wait := make(chan delivery, 1)
	a.mu.Lock()
	a.waiters[rec.ID] = wait
	a.mu.Unlock()
	if err := a.journal.Append(rec); err != nil {
		a.unwait(rec.ID)
		a.cfg.Logger.Error("journal append failed", slog.Any("err", err))
		return nil, cairn.Errorf(cairn.EUnavailable, "the agent cannot journal the event; retry shortly")
	}
	return &accepted{Record: rec, wait: wait}, nil
}

var cryptoRead = crand.Read

func (a *Agent) unwait(id string) {
	a.mu.Lock()
	delete(a.waiters, id)
	a.mu.Unlock()
}

// forward delivers the journal until ctx ends: in order per destination
// (server route), so that a destination the server refuses for a while
// (a context not created yet, a key without permission) holds back only
// its own records; an unreachable server holds back everything.
func (a *Agent) forward(ctx context.Context) {
	defer close(a.done)
	const minBackoff = 100 * time.Millisecond
	type hold struct {
		until   time.Time
		backoff time.Duration
	}
	held := map[string]*hold{} // destination → retry time
	global := minBackoff
	for {
		now := time.Now()
		var rec *Record
		var wait time.Duration = -1 // -1: until woken
		skipped := map[string]bool{}
		for _, r := range a.journal.Pending() {
			dest := r.Path + "?" + r.Query
			if skipped[dest] {
				continue
			}
			if h := held[dest]; h != nil && now.Before(h.until) {
				skipped[dest] = true
				if d := h.until.Sub(now); wait < 0 || d < wait {
					wait = d
				}
				continue
			}
			rec = r
			break
		}
		if rec == nil {
			var timer <-chan time.Time
			if wait >= 0 {
				timer = time.After(wait)
			}
			select {
			case <-ctx.Done():
				return
			case <-a.journal.wake:
			case <-timer:
			}
			continue
		}
		dest := rec.Path + "?" + rec.Query
		d, err := a.send(ctx, rec)
		switch {
		case err == nil && d.status < 300:
			if err := a.journal.Done(rec); err != nil {
				a.cfg.Logger.Error("journal: removing a delivered record failed", slog.String("record", rec.ID), slog.Any("err", err))
			}
			a.notify(rec.ID, d)
			delete(held, dest)
			global = minBackoff
		case err == nil && permanent(d.status):
			a.cfg.Logger.Error("server refused an event for good; moved to the journal's rejected/ directory",
				slog.String("record", rec.ID), slog.Int("status", d.status))
			if err := a.journal.Reject(rec); err != nil {
				a.cfg.Logger.Error("journal: rejecting a record failed", slog.String("record", rec.ID), slog.Any("err", err))
			}
			a.notify(rec.ID, d)
		case err == nil:
			h := held[dest]
			if h == nil {
				h = &hold{backoff: minBackoff}
				held[dest] = h
			} else {
				h.backoff = min(h.backoff*2, a.cfg.MaxBackoff)
			}
			h.until = time.Now().Add(jitter(h.backoff))
			a.cfg.Logger.Warn("server did not accept an event; will retry", slog.String("record", rec.ID),
				slog.String("route", rec.Path), slog.Int("status", d.status), slog.Duration("backoff", h.backoff))
		default:
			if ctx.Err() != nil {
				return
			}
			a.cfg.Logger.Warn("server unreachable; will retry", slog.Any("err", err), slog.Duration("backoff", global))
			select {
			case <-ctx.Done():
				return
			case <-time.After(jitter(global)):
			}
			global = min(global*2, a.cfg.MaxBackoff)
		}
	}
}

// jitter spreads a backoff over [d/2, 3d/2).
func jitter(d time.Duration) time.Duration {
	return d/2 + time.Duration(rand.Int64N(int64(d)))
}

// permanent reports statuses that retrying cannot change: the event itself
// is invalid or too large, or the idempotency key was used with another
// body. Authentication, permission and missing contexts are configuration
// the operator can fix, so those are retried.
func permanent(status int) bool {
	switch status {
	case http.StatusBadRequest, http.StatusRequestEntityTooLarge, http.StatusConflict, http.StatusUnprocessableEntity:
		return true
	}
	return false
}

func (a *Agent) notify(id string, d delivery) {
	a.mu.Lock()
	ch := a.waiters[id]
	delete(a.waiters, id)
	a.mu.Unlock()
	if ch != nil {
		ch <- d
	}
}

// send forwards one record with its idempotency key.
func (a *Agent) send(ctx context.Context, rec *Record) (delivery, error) {
	u := strings.TrimRight(a.cfg.Server, "/") + rec.Path
	if rec.Query != "" {
		u += "?" + rec.Query
	}
	req, err := http.NewRequestWithContext(ctx, "POST", u, bytes.NewReader(rec.Body))
	if err != nil {
		return delivery{}, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+a.cfg.Token)
	req.Header.Set("Idempotency-Key", rec.ID)
	req.Header.Set("Cairn-Event-Time", rec.Received.Format(time.RFC3339Nano))
	req.Header.Set("User-Agent", "cairn-agent")
	resp, err := a.cfg.HTTP.Do(req)
	if err != nil {
		return delivery{}, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return delivery{}, err
	}
	return delivery{status: resp.StatusCode, body: body}, nil
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}

var statusOf = map[string]int{
	cairn.EInvalid: http.StatusBadRequest, cairn.EForbidden: http.StatusForbidden, cairn.ENotFound: http.StatusNotFound,
	cairn.ETooLarge: http.StatusRequestEntityTooLarge, cairn.EUnavailable: http.StatusServiceUnavailable,
}

// writeError writes the native error envelope.
func writeError(w http.ResponseWriter, err error) {
	code := cairn.ErrorCode(err)
	status, ok := statusOf[code]
	if !ok {
		status = http.StatusInternalServerError
	}
	if code == cairn.EUnavailable {
		w.Header().Set("Retry-After", "1")
	}
	writeJSON(w, status, map[string]any{"error": map[string]string{"code": code, "message": cairn.ErrorMessage(err)}})
}
