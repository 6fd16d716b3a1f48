// Package httpapi is Cairn's HTTP surface: the native JSON API under
// /api/v1, the public log endpoints under /log, health and metrics, and the
// Go client the CLI and the end-to-end tests use.
//
// Every endpoint except /healthz, /readyz and the public checkpoint and key
// requires a bearer API key. The handlers never log request or event
// payloads, keys or tokens.
package httpapi

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"net/http/pprof"
	"regexp"
	"strconv"
	"sync"
	"time"

	"github.com/cairn-audit/cairn"
	"github.com/cairn-audit/cairn/ingest"
	"github.com/cairn-audit/cairn/merkle"
	"github.com/cairn-audit/cairn/retraced"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Config configures a Server.
type Config struct {
	Store     cairn.Store
	Committer *ingest.Committer
	Signer    *merkle.Signer
	Logger    *slog.Logger
	Metrics   *Metrics
	// Now stamps received times (default time.Now).
	Now func() time.Time
	// Ready reports whether the server can take traffic (default: always).
	Ready func(context.Context) error
	// Checkpoints lets receipts wait for the checkpoint that covers a new
	// event (the merkle.Checkpointer). Optional: without it a receipt for
	// an event no checkpoint covers yet fails with EUnavailable.
	Checkpoints CheckpointWaiter
	// ReceiptWait bounds that wait (default DefaultReceiptWait).
	ReceiptWait time.Duration
	// CachedHashes bounds the stored hashes at tree level 8 and above kept
	// in memory for proofs, receipts and tiles (default 262,144, ~25 MB:
	// enough for logs totalling 65 million entries).
	CachedHashes int
	// MaxInflightBytes bounds the write bodies held in memory at once
	// (default 256 MiB). A write that would exceed it gets 503 with
	// Retry-After instead of growing the heap.
	MaxInflightBytes int64
	// Witnessing, if set, stores witness configuration set through the
	// context API and chooses the published checkpoint by witness policy.
	// Without it the newest signed checkpoint is published.
	Witnessing Witnessing
	// KeyHistory, if set, returns the signing-key history published at
	// /log/{org}/{ctx}/keys. Without it only the current keys are listed.
	KeyHistory func(context.Context) ([]cairn.SigningKey, error)
	// Forwarding, if set, serves the forwarder API. Without it those
	// routes answer invalid ("forwarding is not enabled").
	Forwarding Forwarding
	// Compat configures the Control Plane, Replicated and Retraced
	// compatibility surfaces (docs/compat.md).
	Compat CompatConfig
}

// Server serves the HTTP API. It is an http.Handler.
type Server struct {
	cfg Config
	mux *http.ServeMux
	log *merkle.HashCache // the store's log, upper hashes cached

	mu       sync.Mutex
	inflight int64 // bytes reserved by write bodies being processed
	keys     map[[32]byte]cachedKey
	contexts map[ctxKey]cachedContext

	gql        *retraced.Executor // Retraced GraphQL
	groupNames map[groupKey]cachedGroupName
}

type cachedKey struct {
	key     *cairn.APIKey
	expires time.Time
}

type ctxKey struct{ org, name string }

type cachedContext struct {
	c       *cairn.Context
	expires time.Time
}

// cacheTTL bounds how long a revoked key or an edited context (edited on
// another node) can be served from memory.
const cacheTTL = 5 * time.Second

// New returns a Server with every route registered.
func New(cfg Config) *Server {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.CachedHashes <= 0 {
		cfg.CachedHashes = 1 << 18
	}
	if cfg.ReceiptWait <= 0 {
		cfg.ReceiptWait = DefaultReceiptWait
	}
	if cfg.MaxInflightBytes <= 0 {
		cfg.MaxInflightBytes = 256 << 20
	}
	cfg.Compat.setDefaults()
	if cfg.Metrics == nil {
		cfg.Metrics = NewMetrics(prometheus.NewRegistry())
	}
	s := &Server{cfg: cfg, mux: http.NewServeMux(), log: merkle.NewHashCache(cfg.Store, cfg.CachedHashes),
		keys: map[[32]byte]cachedKey{}, contexts: map[ctxKey]cachedContext{}, groupNames: map[groupKey]cachedGroupName{}}
	s.routes()
	return s
}

// routes is the one table of every route.
func (s *Server) routes() {
	public := func(pattern string, h http.HandlerFunc) { s.mux.Handle(pattern, s.wrap(pattern, h, false)) }
	authed := func(pattern string, h http.HandlerFunc) { s.mux.Handle(pattern, s.wrap(pattern, h, true)) }

	public("GET /healthz", s.healthz)
	public("GET /readyz", s.readyz)
	authed("GET /metrics", s.metrics)
	authed("GET /debug/pprof/{name...}", s.pprof)

	public("GET /log/{org}/{ctx}/checkpoint", s.getCheckpoint)
	public("GET /log/{org}/{ctx}/key", s.getKey)
	public("GET /log/{org}/{ctx}/keys", s.getKeys)
	public("GET /log/{org}/{ctx}/checkpoints", s.listCheckpoints)
	authed("GET /log/{org}/{ctx}/tile/{path...}", s.getTile)
	authed("GET /log/{org}/{ctx}/proof/inclusion", s.proveInclusion)
	authed("GET /log/{org}/{ctx}/proof/consistency", s.proveConsistency)

	authed("POST /api/v1/orgs", s.createOrg)
	authed("GET /api/v1/orgs", s.listOrgs)
	authed("POST /api/v1/orgs/{org}/contexts", s.createContext)
	authed("GET /api/v1/orgs/{org}/contexts", s.listContexts)
	authed("GET /api/v1/orgs/{org}/contexts/{ctx}", s.getContext)
	authed("PATCH /api/v1/orgs/{org}/contexts/{ctx}", s.patchContext)
	authed("POST /api/v1/orgs/{org}/contexts/{ctx}/events", s.writeEvents)
	authed("GET /api/v1/orgs/{org}/contexts/{ctx}/events/{id}", s.getEvent)
	authed("GET /api/v1/orgs/{org}/contexts/{ctx}/events/{id}/receipt", s.getReceipt)
	authed("GET /api/v1/orgs/{org}/contexts/{ctx}/export", s.export)
	authed("GET /api/v1/orgs/{org}/events", s.searchEvents)
	authed("GET /api/v1/orgs/{org}/trail/{target_type}/{target_id}", s.trail)

	authed("POST /api/v1/orgs/{org}/forwarders", s.createForwarder)
	authed("GET /api/v1/orgs/{org}/forwarders", s.listForwarders)
	authed("GET /api/v1/orgs/{org}/forwarders/{name}", s.getForwarder)
	authed("PUT /api/v1/orgs/{org}/forwarders/{name}", s.putForwarder)
	authed("PATCH /api/v1/orgs/{org}/forwarders/{name}", s.putForwarder)
	authed("DELETE /api/v1/orgs/{org}/forwarders/{name}", s.deleteForwarder)
	authed("POST /api/v1/orgs/{org}/forwarders/{name}/pause", s.pauseForwarder)
	authed("POST /api/v1/orgs/{org}/forwarders/{name}/resume", s.resumeForwarder)
	authed("POST /api/v1/orgs/{org}/forwarders/{name}/replay", s.replayForwarder)
	authed("POST /api/v1/orgs/{org}/forwarders/{name}/test", s.testForwarder)
	authed("GET /api/v1/orgs/{org}/forwarders/{name}/status", s.forwarderStatus)

	s.compatRoutes()

	s.mux.Handle("/", s.wrap("unmatched", func(w http.ResponseWriter, r *http.Request) {
		s.error(w, r, cairn.Errorf(cairn.ENotFound, "no route for %s %s", r.Method, r.URL.Path))
	}, false))
}

func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.mux.ServeHTTP(w, r) }

type ctxKeyType int

const (
	requestIDKey ctxKeyType = iota
	principalKey
)

// statusWriter records the status for logs and metrics.
type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

// wrap adds the request id, authentication, panic recovery, access logging
// and metrics around a handler.
func (s *Server) wrap(route string, h http.HandlerFunc, auth bool) http.Handler {
	if auth {
		return s.wrapWith(route, h, s.authenticate, s.error)
	}
	return s.wrapWith(route, h, nil, s.error)
}

// authenticator resolves the caller's key; errorWriter writes an error in
// a surface's envelope (the compat APIs have their own).
type (
	authenticator func(*http.Request) (*cairn.APIKey, error)
	errorWriter   func(http.ResponseWriter, *http.Request, error)
)

// wrapWith is wrap with a surface's own authentication (nil: public) and
// error envelope.
func (s *Server) wrapWith(route string, h http.HandlerFunc, authn authenticator, fail errorWriter) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		id, ok := r.Context().Value(requestIDKey).(string)
		if !ok {
			id = newRequestID()
		}
		w.Header().Set("X-Request-Id", id)
		r = r.WithContext(context.WithValue(r.Context(), requestIDKey, id))
		sw := &statusWriter{ResponseWriter: w}
		defer func() {
			if v := recover(); v != nil {
				if v == http.ErrAbortHandler {
					panic(v)
				}
				s.cfg.Logger.Error("panic in handler", "route", route, "request_id", id, "panic", v)
				if sw.status == 0 {
					fail(sw, r, errors.New("panic"))
				}
			}
			took := time.Since(start)
			s.cfg.Metrics.requests.WithLabelValues(route, strconv.Itoa(sw.status)).Inc()
			s.cfg.Metrics.requestDuration.WithLabelValues(route).Observe(took.Seconds())
			s.cfg.Logger.LogAttrs(r.Context(), slog.LevelDebug, "request",
				slog.String("route", route), slog.Int("status", sw.status),
				slog.Duration("took", took), slog.String("request_id", id))
		}()
		if authn != nil {
			k, err := authn(r)
			if err != nil {
				fail(sw, r, err)
				return
			}
			r = r.WithContext(context.WithValue(r.Context(), principalKey, k))
		}
		h(sw, r)
	})
}

func newRequestID() string {
	var b [8]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

func requestID(r *http.Request) string {
	id, _ := r.Context().Value(requestIDKey).(string)
	return id
}

// statusOf is the one table from error codes to HTTP statuses.
var statusOf = map[string]int{
	cairn.EInvalid:      http.StatusBadRequest,
	cairn.EUnauthorized: http.StatusUnauthorized,
	cairn.EForbidden:    http.StatusForbidden,
	cairn.ENotFound:     http.StatusNotFound,
	cairn.EConflict:     http.StatusConflict,
	cairn.ETooLarge:     http.StatusRequestEntityTooLarge,
	cairn.EUnavailable:  http.StatusServiceUnavailable,
	cairn.EIntegrity:    http.StatusInternalServerError,
	cairn.EInternal:     http.StatusInternalServerError,
}

// ErrorBody is the JSON shape of every error response.
type ErrorBody struct {
	Error ErrorDetail `json:"error"`
}

// ErrorDetail carries a stable code, a caller-safe message and the request id.
type ErrorDetail struct {
	Code      string `json:"code"`
	Message   string `json:"message"`
	RequestID string `json:"request_id,omitempty"`
}

func (s *Server) errorDetail(r *http.Request, err error) ErrorDetail {
	return ErrorDetail{Code: cairn.ErrorCode(err), Message: cairn.ErrorMessage(err), RequestID: requestID(r)}
}

// error writes err as the standard error body. Internal errors are logged
// here, once, with their cause; callers only see a generic message.
func (s *Server) error(w http.ResponseWriter, r *http.Request, err error) {
	code := cairn.ErrorCode(err)
	status := statusOf[code]
	if status == 0 {
		status = http.StatusInternalServerError
	}
	if status >= 500 {
		s.cfg.Logger.Error("request failed", "request_id", requestID(r), "path", r.URL.Path, "err", err)
	}
	if code == cairn.EUnavailable {
		w.Header().Set("Retry-After", "1")
	}
	if code == cairn.EUnauthorized {
		w.Header().Set("WWW-Authenticate", `Bearer realm="cairn"`)
	}
	writeJSON(w, status, ErrorBody{Error: s.errorDetail(r, err)})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(v)
}

// decodeJSON decodes a small control-plane body strictly.
func decodeJSON(r *http.Request, v any) error {
	dec := json.NewDecoder(http.MaxBytesReader(nil, r.Body, 1<<20))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return &cairn.Error{Code: cairn.EInvalid, Message: "invalid JSON body: " + err.Error(), Err: err}
	}
	if dec.More() {
		return cairn.Errorf(cairn.EInvalid, "invalid JSON body: trailing data")
	}
	return nil
}

var nameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$`)

// validName checks an org or context name: it becomes part of the log's
// origin and key name, which allow no spaces and no '+'.
func validName(kind, name string) error {
	if !nameRE.MatchString(name) {
		return cairn.Errorf(cairn.EInvalid, "%s name %q must be 1-128 characters of letters, digits, '.', '_' or '-', starting with a letter or digit", kind, name)
	}
	return nil
}

func (s *Server) healthz(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
}

func (s *Server) readyz(w http.ResponseWriter, r *http.Request) {
	if s.cfg.Ready != nil {
		if err := s.cfg.Ready(r.Context()); err != nil {
			s.error(w, r, &cairn.Error{Code: cairn.EUnavailable, Message: "not ready", Err: err})
			return
		}
	}
	writeJSON(w, http.StatusOK, map[string]string{"status": "ready"})
}

// pprof serves the Go runtime profiles to server admins.
func (s *Server) pprof(w http.ResponseWriter, r *http.Request) {
	if err := s.requireAdmin(r); err != nil {
		s.error(w, r, err)
		return
	}
	switch name := r.PathValue("name"); name {
	case "", "index":
		pprof.Index(w, r)
	case "profile":
		pprof.Profile(w, r)
	case "trace":
		pprof.Trace(w, r)
	default:
		pprof.Handler(name).ServeHTTP(w, r)
	}
}

func (s *Server) metrics(w http.ResponseWriter, r *http.Request) {
	if err := s.requireAdmin(r); err != nil {
		s.error(w, r, err)
		return
	}
	promhttp.HandlerFor(s.cfg.Metrics.registry, promhttp.HandlerOpts{}).ServeHTTP(w, r)
}
