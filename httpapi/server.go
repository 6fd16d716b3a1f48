// Package httpapi is Cairn's HTTP surface: the native JSON API under
// /api/v1, the public log endpoints under /log, health and metrics, and the
// Go client the CLI and the end-to-end tests use.
//
// Every route is in one table (routes.go) with the permission it needs;
// the wrapper authenticates the bearer key, applies the rule and records
// failed authentications before a handler runs. Handlers record
// administrative changes and reads of a log in the org's built-in context
// (audit.go). They never log request or event payloads, keys or tokens.
package httpapi

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"log/slog"
	"math"
	"net/http"
	"net/http/pprof"
	"net/netip"
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

	// Access stores principals, groups and policies (default: Store, if
	// it implements cairn.AccessStore). Without it only keys of no
	// principal (server admin keys) can act.
	Access cairn.AccessStore
	// Auditor records administrative actions, failed authentications and
	// reads in the built-in context (default: one on Committer, closed by
	// Server.Close).
	Auditor *ingest.Auditor
	// TrustedProxies are the peers whose X-Forwarded-For is believed when
	// taking a request's source address (default: none).
	TrustedProxies []netip.Prefix
	// AuthFailureBurst failed authentications from one source address are
	// allowed at once (default 10); then one per AuthFailureWindow /
	// AuthFailureBurst (default window 1 minute). Past that the address
	// gets 429 with Retry-After.
	AuthFailureBurst  int
	AuthFailureWindow time.Duration
	// SessionTTL is how long a login session lasts (default 12 hours).
	SessionTTL time.Duration
	// Compat configures the Control Plane, Replicated and Retraced
	// compatibility surfaces (docs/compat.md).
	Compat CompatConfig
}

// Validate checks the configuration's values.
func (c *Config) Validate() error {
	switch {
	case c.Store == nil || c.Committer == nil || c.Signer == nil:
		return errors.New("httpapi: Store, Committer and Signer are required")
	case c.AuthFailureBurst < 0 || c.AuthFailureWindow < 0 || c.SessionTTL < 0:
		return errors.New("httpapi: AuthFailureBurst, AuthFailureWindow and SessionTTL must not be negative")
	}
	return c.Compat.Validate()
}

// Server serves the HTTP API. It is an http.Handler.
type Server struct {
	cfg Config
	mux *http.ServeMux
	log *merkle.HashCache // the store's log, upper hashes cached

	routeTable  []route
	limiter     *limiter
	ownsAuditor bool

	mu       sync.Mutex
	inflight int64 // bytes reserved by write bodies being processed
	keys     map[[32]byte]cachedKey
	contexts map[ctxKey]cachedContext
	grants   map[grantsKey]cachedGrants

	gql        *retraced.Executor // Retraced GraphQL
	groupNames map[groupKey]cachedGroupName
}

type cachedKey struct {
	key       *cairn.APIKey
	principal *cairn.Principal
	expires   time.Time
}

type ctxKey struct{ org, name string }

type cachedContext struct {
	c       *cairn.Context
	expires time.Time
}

// cacheTTL bounds how long a revoked key, a disabled principal, a changed
// policy or an edited context (changed on another node) can be served
// from memory. Changes made through this node apply at once.
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
	if cfg.Access == nil {
		cfg.Access, _ = cfg.Store.(cairn.AccessStore)
	}
	if cfg.AuthFailureBurst <= 0 {
		cfg.AuthFailureBurst = 10
	}
	if cfg.AuthFailureWindow <= 0 {
		cfg.AuthFailureWindow = time.Minute
	}
	if cfg.SessionTTL <= 0 {
		cfg.SessionTTL = 12 * time.Hour
	}
	s := &Server{cfg: cfg, mux: http.NewServeMux(), log: merkle.NewHashCache(cfg.Store, cfg.CachedHashes),
		keys: map[[32]byte]cachedKey{}, contexts: map[ctxKey]cachedContext{}, grants: map[grantsKey]cachedGrants{},
		groupNames: map[groupKey]cachedGroupName{},
		limiter:    newLimiter(cfg.AuthFailureBurst, cfg.AuthFailureWindow)}
	if s.cfg.Auditor == nil {
		s.cfg.Auditor = ingest.NewAuditor(ingest.AuditorConfig{Committer: cfg.Committer, Now: cfg.Now, Logger: cfg.Logger})
		s.ownsAuditor = true
	}
	s.routes()
	return s
}

// Close waits for the audit records of served reads to be committed, if
// the server made its own Auditor. Call it before closing the Committer.
func (s *Server) Close() error {
	if s.ownsAuditor {
		return s.cfg.Auditor.Close()
	}
	return nil
}

func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.mux.ServeHTTP(w, r) }

type ctxKeyType int

const (
	requestIDKey ctxKeyType = iota
	principalKey
	sourceIPKey
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

// wrap adds the request id, authentication and authorization by the
// route's rule, panic recovery, access logging and metrics around a
// handler.
func (s *Server) wrap(route string, h http.HandlerFunc, ru rule) http.Handler {
	var authn authenticator
	if ru.access != public {
		authn = s.authenticate
	}
	return s.wrapWith(route, h, authn, ru, s.error)
}

// authenticator resolves the caller; errorWriter writes an error in a
// surface's envelope (the compat APIs have their own).
type (
	authenticator func(*http.Request) (*caller, error)
	errorWriter   func(http.ResponseWriter, *http.Request, error)
)

// wrapWith is wrap with a surface's own authentication (nil: public) and
// error envelope. Failed authentications are rate-limited and recorded
// the same way on every surface.
func (s *Server) wrapWith(route string, h http.HandlerFunc, authn authenticator, ru rule, fail errorWriter) http.Handler {
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
		ip := s.clientIP(r)
		r = r.WithContext(context.WithValue(r.Context(), sourceIPKey, ip))
		if authn != nil {
			if wait := s.limiter.blocked(ip, s.cfg.Now()); wait > 0 {
				sw.Header().Set("Retry-After", strconv.Itoa(int(math.Ceil(wait.Seconds()))))
				fail(sw, r, cairn.Errorf(cairn.ERateLimited, "too many failed authentications from this address; retry later"))
				return
			}
			c, err := authn(r)
			if err != nil {
				if cairn.ErrorCode(err) == cairn.EUnauthorized {
					s.limiter.fail(ip, s.cfg.Now())
					s.recordAuthFailure(r, err)
				}
				fail(sw, r, err)
				return
			}
			if err := s.authorize(r, c, ru); err != nil {
				fail(sw, r, err)
				return
			}
			r = r.WithContext(context.WithValue(r.Context(), principalKey, c))
		}
		h(sw, r)
	})
}

func newRequestID() string {
	var b [8]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// sourceIP is the request's source address (see clientIP).
func sourceIP(r *http.Request) string {
	ip, _ := r.Context().Value(sourceIPKey).(string)
	return ip
}

// rateLimited answers 429 with Retry-After in whole seconds.
func (s *Server) rateLimited(w http.ResponseWriter, r *http.Request, wait time.Duration) {
	w.Header().Set("Retry-After", strconv.Itoa(int(math.Ceil(wait.Seconds()))))
	s.error(w, r, cairn.Errorf(cairn.ERateLimited, "too many failed authentications from this address; retry later"))
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
	cairn.ERateLimited:  http.StatusTooManyRequests,
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

// pprof serves the Go runtime profiles (server admins only, by the table).
func (s *Server) pprof(w http.ResponseWriter, r *http.Request) {
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
	promhttp.HandlerFor(s.cfg.Metrics.registry, promhttp.HandlerOpts{}).ServeHTTP(w, r)
}
