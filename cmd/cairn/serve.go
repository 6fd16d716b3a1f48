package main

import (
	"context"
	"crypto/ed25519"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/cairn-audit/cairn"
	"github.com/cairn-audit/cairn/anchor"
	"github.com/cairn-audit/cairn/forward"
	"github.com/cairn-audit/cairn/httpapi"
	"github.com/cairn-audit/cairn/ingest"
	"github.com/cairn-audit/cairn/merkle"
	"github.com/cairn-audit/cairn/postgres"
	"github.com/cairn-audit/cairn/retraced"
	"github.com/cairn-audit/cairn/sqlite"
	"github.com/cairn-audit/cairn/witness"
	"github.com/prometheus/client_golang/prometheus"
)

// Main is the server: ParseFlags, Run, Close. End-to-end tests run the real
// binary; this type keeps the wiring in one place.
type Main struct {
	Addr    string
	DataDir string
	// Store selects the engine: empty for the embedded SQLite database in
	// DataDir, or a postgres:// URL for the shared PostgreSQL engine.
	Store string
	// StoreSchema is the PostgreSQL schema Cairn's tables live in (default:
	// the URL's search_path).
	StoreSchema string
	OriginHost  string
	// SigningKeyFiles are the checkpoint signing keys, primary first;
	// every one signs every checkpoint (a rotation overlap).
	SigningKeyFiles []string
	BootstrapToken  string
	LogLevel        string
	ShutdownWait    time.Duration
	// CheckpointExport ("dir:/path" or an https URL) receives the latest
	// checkpoint of every context every CheckpointExportInterval.
	CheckpointExport         string
	CheckpointExportInterval time.Duration
	CheckpointInterval       time.Duration
	CheckpointExportToken    string
	// ReadRecordDelay is how long the record of a read waits to share a
	// commit with others (ingest.AuditorConfig.Delay); 0 commits each at
	// once.
	ReadRecordDelay time.Duration
	// ForwardAllowCIDRs are the otherwise refused ranges (loopback,
	// private, link-local, ...) that forwarders may reach.
	ForwardAllowCIDRs []netip.Prefix
	// TrustedProxies are the proxies whose X-Forwarded-For is believed.
	TrustedProxies []netip.Prefix
	// SessionTTL is how long a login session lasts.
	SessionTTL time.Duration
	// Compat configures the Control Plane, Replicated and Retraced
	// compatibility surfaces.
	Compat httpapi.CompatConfig

	Stderr io.Writer
	logger *slog.Logger

	store        engine
	committer    *ingest.Committer
	auditor      *ingest.Auditor
	checkpointer *merkle.Checkpointer
	witnesses    *witness.Service
	forwarders   *forward.Service
	server       *http.Server
	listener     net.Listener
	bg           sync.WaitGroup
	stopBG       context.CancelFunc
}

// engine is what the server needs from a storage engine (sqlite.Store,
// postgres.Store).
type engine interface {
	cairn.Store
	cairn.WitnessStore
	cairn.ForwarderStore
	// Ping checks that the database answers (readiness).
	Ping(ctx context.Context) error
	// Optimize refreshes the query planner's statistics.
	Optimize(ctx context.Context) error
}

// accessStore is the engine's principals and policies, if it keeps them
// (without, only server admin keys can act).
func accessStore(e engine) cairn.AccessStore {
	as, _ := e.(cairn.AccessStore)
	return as
}

// The PostgreSQL engine lets one node at a time deliver each forwarder.
var _ forward.Leaser = (*postgres.Store)(nil)

// usesPostgres reports whether a --store value names the PostgreSQL engine.
func usesPostgres(store string) bool {
	return strings.HasPrefix(store, "postgres://") || strings.HasPrefix(store, "postgresql://")
}

// ParseFlags reads flags, with CAIRN_* environment variables as defaults.
func (m *Main) ParseFlags(args []string) error {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.SetOutput(m.Stderr)
	fs.StringVar(&m.Addr, "addr", envOr("CAIRN_ADDR", "127.0.0.1:8080"), "listen address (CAIRN_ADDR)")
	fs.StringVar(&m.DataDir, "data-dir", envOr("CAIRN_DATA_DIR", "./cairn-data"), "data directory for the embedded engine (CAIRN_DATA_DIR)")
	fs.StringVar(&m.Store, "store", envOr("CAIRN_STORE", ""), "storage engine: empty for the embedded SQLite database in --data-dir, or a postgres://user@host/db URL shared by every node (needs --signing-key-file) (CAIRN_STORE)")
	fs.StringVar(&m.StoreSchema, "store-schema", envOr("CAIRN_STORE_SCHEMA", ""), "PostgreSQL schema for Cairn's tables, created if missing (default: the URL's search_path) (CAIRN_STORE_SCHEMA)")
	fs.StringVar(&m.OriginHost, "origin-host", envOr("CAIRN_ORIGIN_HOST", "cairn.local"), "host part of every log origin <host>/<org>/<context> (CAIRN_ORIGIN_HOST)")
	keyFiles := &listFlag{values: signingKeyFilesFromEnv()}
	fs.Var(keyFiles, "signing-key-file", "Ed25519 checkpoint signing key file; repeat for a key rotation overlap, primary first (default <data-dir>/signing.key, created on first start) (CAIRN_SIGNING_KEY_FILES, comma-separated, or CAIRN_SIGNING_KEY_FILE)")
	fs.StringVar(&m.CheckpointExport, "checkpoint-export", envOr("CAIRN_CHECKPOINT_EXPORT", ""), "where to export the latest checkpoints: dir:/path or an https:// URL (bearer token in CAIRN_CHECKPOINT_EXPORT_TOKEN) (CAIRN_CHECKPOINT_EXPORT)")
	exportEvery, err := durationEnv("CAIRN_CHECKPOINT_EXPORT_INTERVAL")
	if err != nil {
		return err
	}
	fs.DurationVar(&m.CheckpointExportInterval, "checkpoint-export-interval", exportEvery, "how often to export the latest checkpoints, e.g. 5m; 0 = off (CAIRN_CHECKPOINT_EXPORT_INTERVAL)")
	signEvery, err := durationEnv("CAIRN_CHECKPOINT_INTERVAL")
	if err != nil {
		return err
	}
	if signEvery == 0 {
		signEvery = merkle.DefaultInterval
	}
	fs.DurationVar(&m.CheckpointInterval, "checkpoint-interval", signEvery, "at most one checkpoint per busy context per interval, (0, 1s]; longer means fewer checkpoints to store and slower receipts (CAIRN_CHECKPOINT_INTERVAL)")
	readDelay := ingest.DefaultAuditDelay
	if os.Getenv("CAIRN_READ_RECORD_DELAY") != "" {
		if readDelay, err = durationEnv("CAIRN_READ_RECORD_DELAY"); err != nil {
			return err
		}
	}
	fs.DurationVar(&m.ReadRecordDelay, "read-record-delay", readDelay, "how long the record of a read or search waits to share one commit with others, [0, 1s]; a crash loses the records of this window's reads, 0 commits each at once (CAIRN_READ_RECORD_DELAY)")
	allow := &listFlag{values: splitList(os.Getenv("CAIRN_FORWARD_ALLOW_CIDRS"))}
	fs.Var(allow, "forward-allow-cidr", "a CIDR forwarders may reach although the SSRF guard refuses it by default (loopback, private, link-local, CGNAT); repeatable (CAIRN_FORWARD_ALLOW_CIDRS, comma-separated)")
	fs.StringVar(&m.Compat.ReplicatedContext, "replicated-context", envOr("CAIRN_REPLICATED_CONTEXT", httpapi.DefaultReplicatedContext), "context that the Replicated Audit API (POST /audit/v1/event) writes to, created on first use (CAIRN_REPLICATED_CONTEXT)")
	fs.StringVar(&m.Compat.RetracedBasePath, "retraced-base-path", envOr("CAIRN_RETRACED_BASE_PATH", httpapi.DefaultRetracedBasePath), "path prefix of the Retraced-compatible API (CAIRN_RETRACED_BASE_PATH)")
	fs.StringVar(&m.Compat.RetracedContext, "retraced-context", envOr("CAIRN_RETRACED_CONTEXT", httpapi.DefaultRetracedContext), "context that Retraced events go to in the org named by the project id, created on first use (CAIRN_RETRACED_CONTEXT)")
	fs.StringVar(&m.LogLevel, "log-level", envOr("CAIRN_LOG_LEVEL", "info"), "debug, info, warn or error (CAIRN_LOG_LEVEL)")
	fs.DurationVar(&m.ShutdownWait, "shutdown-timeout", 30*time.Second, "how long a graceful shutdown waits for in-flight requests")
	proxies := fs.String("trusted-proxies", envOr("CAIRN_TRUSTED_PROXIES", ""), "comma-separated addresses or CIDR prefixes of proxies whose X-Forwarded-For is believed (CAIRN_TRUSTED_PROXIES)")
	sessionTTL, err := durationEnv("CAIRN_SESSION_TTL")
	if err != nil {
		return err
	}
	if sessionTTL == 0 {
		sessionTTL = 12 * time.Hour
	}
	fs.DurationVar(&m.SessionTTL, "session-ttl", sessionTTL, "lifetime of a login session (CAIRN_SESSION_TTL)")
	if err := fs.Parse(args); err != nil {
		return flagError(err)
	}
	if fs.NArg() > 0 {
		return usageError{fmt.Sprintf("unexpected argument %q", fs.Arg(0))}
	}
	m.SigningKeyFiles = keyFiles.values
	switch {
	case m.Store == "", m.Store == "sqlite":
		m.Store = ""
		if m.StoreSchema != "" {
			return usageError{"--store-schema needs --store postgres://…"}
		}
	case usesPostgres(m.Store):
		if len(m.SigningKeyFiles) == 0 {
			// Every node must sign with the same key: a key generated in
			// one node's data directory would differ from the others'.
			return usageError{"--store postgres://… needs --signing-key-file: every node must sign checkpoints with the same key"}
		}
	default:
		return usageError{"--store must be empty (embedded SQLite) or a postgres:// URL"}
	}
	if err := m.Compat.Validate(); err != nil {
		return usageError{cairn.ErrorMessage(err)}
	}
	m.ForwardAllowCIDRs = nil
	for _, c := range allow.values {
		p, err := netip.ParsePrefix(c)
		if err != nil {
			return usageError{fmt.Sprintf("--forward-allow-cidr %q: not a CIDR such as 10.0.0.0/8", c)}
		}
		m.ForwardAllowCIDRs = append(m.ForwardAllowCIDRs, p.Masked())
	}
	if m.TrustedProxies, err = parsePrefixes(*proxies); err != nil {
		return usageError{"--trusted-proxies: " + err.Error()}
	}
	if m.SessionTTL <= 0 {
		return usageError{"--session-ttl must be positive"}
	}
	m.BootstrapToken = os.Getenv("CAIRN_BOOTSTRAP_TOKEN")
	m.CheckpointExportToken = os.Getenv("CAIRN_CHECKPOINT_EXPORT_TOKEN")
	switch {
	case m.CheckpointInterval <= 0 || m.CheckpointInterval > time.Second:
		return usageError{"--checkpoint-interval must be more than 0 and at most 1s (every acknowledged event is covered by a checkpoint within 1 s)"}
	case m.ReadRecordDelay < 0 || m.ReadRecordDelay > time.Second:
		return usageError{"--read-record-delay must be between 0 and 1s"}
	case m.CheckpointExportInterval < 0:
		return usageError{"--checkpoint-export-interval must not be negative"}
	case m.CheckpointExportInterval > 0 && m.CheckpointExport == "":
		return usageError{"--checkpoint-export-interval needs --checkpoint-export"}
	case m.CheckpointExportInterval == 0 && m.CheckpointExport != "":
		return usageError{"--checkpoint-export needs --checkpoint-export-interval"}
	}
	if m.CheckpointExport != "" {
		if _, err := anchor.NewSink(m.CheckpointExport, ""); err != nil {
			return usageError{"--checkpoint-export: " + cairn.ErrorMessage(err)}
		}
	}
	var level slog.Level
	if err := level.UnmarshalText([]byte(m.LogLevel)); err != nil {
		return usageError{fmt.Sprintf("bad --log-level %q", m.LogLevel)}
	}
	m.logger = slog.New(slog.NewJSONHandler(m.Stderr, &slog.HandlerOptions{Level: level}))
	return nil
}

func runServe(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	m := &Main{Stderr: stderr}
	if err := m.ParseFlags(args); err != nil {
		return err
	}
	tuneGC(m.logger)
	if err := m.Open(ctx); err != nil {
		m.Close()
		return err
	}
	<-ctx.Done()
	m.logger.Info("shutting down: draining in-flight requests")
	return m.Close()
}

// Open starts everything and begins serving.
func (m *Main) Open(ctx context.Context) error {
	var err error
	if usesPostgres(m.Store) {
		m.store, err = postgres.Open(ctx, postgres.Config{DSN: m.Store, Schema: m.StoreSchema, Logger: m.logger})
	} else {
		m.store, err = sqlite.Open(ctx, sqlite.Config{Path: filepath.Join(m.DataDir, "cairn.db"), Logger: m.logger})
	}
	if err != nil {
		m.store = nil
		return fmt.Errorf("open store: %w", err)
	}
	keys, err := m.signingKeys()
	if err != nil {
		return err
	}
	signer, err := merkle.NewSigner(keys[0], m.OriginHost, keys[1:]...)
	if err != nil {
		return fmt.Errorf("signing keys: %w", err)
	}
	if err := m.recordKeys(ctx, signer); err != nil {
		return err
	}
	if err := m.bootstrap(ctx); err != nil {
		return fmt.Errorf("bootstrap: %w", err)
	}

	if err := m.retracedState(ctx, keys[0]); err != nil {
		return err
	}

	reg := prometheus.NewRegistry()
	metrics := httpapi.NewMetrics(reg)
	if s, ok := m.store.(*sqlite.Store); ok {
		reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "cairn_search_index_lag_events",
			Help: "Committed events the embedded engine's search index does not hold yet; searches walk them.",
		}, func() float64 { return float64(s.IndexLag()) }))
	}
	m.witnesses, err = witness.New(witness.Config{Store: m.store, Signer: signer, Logger: m.logger,
		Metrics: witness.NewMetrics(reg)})
	if err != nil {
		return err
	}
	m.checkpointer, err = merkle.NewCheckpointer(merkle.Config{Store: m.store, Signer: signer, Logger: m.logger,
		Interval: m.CheckpointInterval, OnSign: m.witnesses.Signed})
	if err != nil {
		return err
	}
	var exporter *anchor.Exporter
	if m.CheckpointExportInterval > 0 {
		sink, err := anchor.NewSink(m.CheckpointExport, m.CheckpointExportToken)
		if err != nil {
			return fmt.Errorf("--checkpoint-export: %w", err)
		}
		exporter, err = anchor.New(anchor.Config{Source: m.store, Sink: sink, Interval: m.CheckpointExportInterval,
			Logger: m.logger, Registerer: reg})
		if err != nil {
			return err
		}
	}
	m.forwarders, err = forward.New(forward.Config{Store: m.store, Sinks: sinkTypes(),
		Guard: &forward.Guard{Allow: m.ForwardAllowCIDRs}, Logger: m.logger, Metrics: forward.NewMetrics(reg)})
	if err != nil {
		return err
	}
	m.committer = ingest.NewCommitter(ingest.CommitterConfig{
		Store: m.store,
		OnCommit: func(events int, took time.Duration) {
			metrics.ObserveCommit(events, took.Seconds())
			m.checkpointer.Notify()
			m.forwarders.Notify()
		},
	})
	readDelay := m.ReadRecordDelay
	if readDelay == 0 {
		readDelay = -1 // the Auditor's zero is its default
	}
	m.auditor = ingest.NewAuditor(ingest.AuditorConfig{Committer: m.committer, Logger: m.logger, Delay: readDelay})
	bgCtx, stop := context.WithCancel(context.WithoutCancel(ctx))
	m.stopBG = stop
	m.background(bgCtx, func(ctx context.Context) { m.checkpointer.Run(ctx) })
	m.background(bgCtx, func(ctx context.Context) { m.witnesses.Run(ctx) })
	m.background(bgCtx, func(ctx context.Context) { m.forwarders.Run(ctx) })
	if exporter != nil {
		m.background(bgCtx, func(ctx context.Context) { exporter.Run(ctx) })
	}
	m.background(bgCtx, func(ctx context.Context) { m.housekeeping(ctx, metrics) })

	apiCfg := httpapi.Config{
		Store: m.store, Committer: m.committer, Signer: signer, Logger: m.logger, Metrics: metrics,
		Ready: m.store.Ping, Witnessing: m.witnesses, KeyHistory: m.store.SigningKeys, Checkpoints: m.witnesses,
		Forwarding: m.forwarders, Compat: m.Compat,
		Access: accessStore(m.store), Auditor: m.auditor, TrustedProxies: m.TrustedProxies, SessionTTL: m.SessionTTL,
	}
	if err := apiCfg.Validate(); err != nil {
		return err
	}
	api := httpapi.New(apiCfg)
	m.listener, err = net.Listen("tcp", m.Addr)
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	m.server = &http.Server{
		Handler:           api,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       2 * time.Minute,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(m.logger.Handler(), slog.LevelWarn),
	}
	go func() {
		if err := m.server.Serve(m.listener); err != nil && !errors.Is(err, http.ErrServerClosed) {
			m.logger.Error("http server stopped", "err", err)
		}
	}()
	where := slog.String("data_dir", m.DataDir)
	if usesPostgres(m.Store) {
		where = slog.String("store", "postgres")
	}
	m.logger.Info("cairn listening", slog.String("addr", "http://"+m.listener.Addr().String()), where,
		slog.String("origin_host", m.OriginHost), slog.String("version", Version))
	return nil
}

func (m *Main) background(ctx context.Context, f func(context.Context)) {
	m.bg.Add(1)
	go func() {
		defer m.bg.Done()
		f(ctx)
	}()
}

// Close shuts down gracefully: stop accepting connections, let in-flight
// requests finish (their commits included), commit what is queued, sign a
// final checkpoint, stop the background services (forwarders cancel the
// delivery in flight: its batch is sent again after a restart), close the
// database.
func (m *Main) Close() error {
	var errs []error
	if m.server != nil {
		ctx, cancel := context.WithTimeout(context.Background(), m.ShutdownWait)
		errs = append(errs, m.server.Shutdown(ctx))
		cancel()
	}
	if m.auditor != nil {
		errs = append(errs, m.auditor.Close()) // the records of served reads, before the committer stops
	}
	if m.committer != nil {
		errs = append(errs, m.committer.Close())
	}
	if m.checkpointer != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		errs = append(errs, m.signAll(ctx))
		cancel()
	}
	if m.stopBG != nil {
		m.stopBG()
		m.bg.Wait()
	}
	if m.store != nil {
		errs = append(errs, m.store.Close())
	}
	return errors.Join(errs...)
}

// signAll signs every unsigned head once (used at shutdown).
func (m *Main) signAll(ctx context.Context) error {
	heads, err := m.store.UnsignedHeads(ctx)
	if err != nil {
		return err
	}
	var errs []error
	for _, h := range heads {
		if _, err := m.checkpointer.SignHead(ctx, h); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// signingKeys reads the configured keys, primary first, or the data
// directory's key, creating it on first start.
func (m *Main) signingKeys() ([]ed25519.PrivateKey, error) {
	if len(m.SigningKeyFiles) > 0 {
		var keys []ed25519.PrivateKey
		for _, path := range m.SigningKeyFiles {
			k, err := merkle.ReadKeyFile(path)
			if err != nil {
				return nil, fmt.Errorf("signing key: %w", err)
			}
			keys = append(keys, k)
		}
		return keys, nil
	}
	path := filepath.Join(m.DataDir, "signing.key")
	k, err := merkle.ReadKeyFile(path)
	if err == nil {
		return []ed25519.PrivateKey{k}, nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("signing key: %w", err)
	}
	k, err = merkle.GenerateKey(rand.Reader)
	if err != nil {
		return nil, err
	}
	if err := merkle.WriteKeyFile(path, k); err != nil {
		return nil, fmt.Errorf("write signing key: %w", err)
	}
	m.logger.Info("created a checkpoint signing key; back it up", "path", path)
	return []ed25519.PrivateKey{k}, nil
}

// recordKeys records the signing keys in the key history: keys not in use
// before are added, keys in use before and not configured now are retired.
func (m *Main) recordKeys(ctx context.Context, signer *merkle.Signer) error {
	var pubs [][]byte
	for _, p := range signer.PublicKeys() {
		pubs = append(pubs, p)
	}
	before, err := m.store.SigningKeys(ctx)
	if err != nil {
		return fmt.Errorf("signing key history: %w", err)
	}
	after, err := m.store.SyncSigningKeys(ctx, pubs, time.Now())
	if err != nil {
		return fmt.Errorf("signing key history: %w", err)
	}
	for i, k := range after {
		id := base64.StdEncoding.EncodeToString(k.PublicKey)
		switch {
		case i >= len(before):
			m.logger.Info("signing key added", slog.String("public_key", id))
		case before[i].RetiredAt.IsZero() && !k.RetiredAt.IsZero():
			m.logger.Warn("signing key retired: it no longer signs checkpoints", slog.String("public_key", id))
		}
	}
	return nil
}

// bootstrap creates the default org and an admin key on first start. A key
// given in CAIRN_BOOTSTRAP_TOKEN is (re-)registered on every start; a
// generated one is printed once, to stderr, and never again.
func (m *Main) bootstrap(ctx context.Context) error {
	orgs, err := m.store.ListOrgs(ctx)
	if err != nil {
		return err
	}
	first := len(orgs) == 0
	if first {
		_, err := m.store.CreateOrg(ctx, cairn.DefaultOrg)
		switch cairn.ErrorCode(err) {
		case "":
		case cairn.EConflict:
			first = false // another node sharing the database created it meanwhile
		default:
			return err
		}
	}
	now := time.Now()
	switch {
	case m.BootstrapToken != "":
		k := httpapi.KeyFromSecret(strings.TrimSpace(m.BootstrapToken), cairn.DefaultOrg, "bootstrap", true, now)
		if _, err := m.store.LookupAPIKey(ctx, k.Hash); cairn.ErrorCode(err) == cairn.ENotFound {
			if err := m.store.CreateAPIKey(ctx, k); cairn.ErrorCode(err) != cairn.EConflict {
				return err // nil, or a failure; a conflict means another node registered it
			}
		} else if err != nil {
			return err
		}
	case first:
		secret, k := httpapi.NewAPIKey(cairn.DefaultOrg, "bootstrap", true, now)
		if err := m.store.CreateAPIKey(ctx, k); err != nil {
			return err
		}
		fmt.Fprintf(m.Stderr, "\nCairn admin API key (shown once, store it now):\n\n    %s\n\n", secret)
	}
	return nil
}

// housekeeping refreshes log-size metrics and the query planner's
// statistics.
func (m *Main) housekeeping(ctx context.Context, metrics *httpapi.Metrics) {
	sizes := time.NewTicker(5 * time.Second)
	defer sizes.Stop()
	optimize := time.NewTicker(time.Hour)
	defer optimize.Stop()
	refresh := func() {
		orgs, err := m.store.ListOrgs(ctx)
		if err != nil {
			return
		}
		for _, o := range orgs {
			cs, err := m.store.ListContexts(ctx, o.Name)
			if err != nil {
				return
			}
			for _, c := range cs {
				metrics.SetLogSize(o.Name, c.Name, c.Size)
			}
		}
	}
	refresh()
	for {
		select {
		case <-ctx.Done():
			return
		case <-sizes.C:
			refresh()
		case <-optimize.C:
			if err := m.store.Optimize(ctx); err != nil {
				m.logger.Warn("optimize failed", "err", err)
			}
		}
	}
}

// parsePrefixes parses comma-separated addresses and CIDR prefixes.
func parsePrefixes(v string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, f := range strings.Split(v, ",") {
		if f = strings.TrimSpace(f); f == "" {
			continue
		}
		if p, err := netip.ParsePrefix(f); err == nil {
			out = append(out, p.Masked())
			continue
		}
		a, err := netip.ParseAddr(f)
		if err != nil {
			return nil, fmt.Errorf("%q is neither an address nor a CIDR prefix", f)
		}
		out = append(out, netip.PrefixFrom(a, a.BitLen()))
	}
	return out, nil
}

// retracedState gives the Retraced endpoints their state: viewer
// descriptors and enterprise tokens kept by the store (so that with several
// nodes over one PostgreSQL a token made on one works on all), and the key
// that signs viewer sessions, derived from the primary checkpoint signing
// key, which every node shares by configuration. Earlier versions kept the
// state in <data-dir>/retraced-state.json: that file is imported once and
// renamed.
func (m *Main) retracedState(ctx context.Context, signingKey ed25519.PrivateKey) error {
	st, ok := m.store.(retraced.State)
	if !ok {
		return fmt.Errorf("the %T store keeps no Retraced state", m.store)
	}
	m.Compat.Retraced = st
	secret, err := hkdf.Key(sha256.New, signingKey.Seed(), nil, "cairn retraced viewer session v1", 32)
	if err != nil {
		return fmt.Errorf("viewer session key: %w", err)
	}
	m.Compat.ViewerSecret = secret
	return m.importRetracedFile(ctx, st)
}

// importRetracedFile moves an earlier version's retraced-state.json into
// the store, then renames it so it is not imported again. Descriptors and
// tokens of orgs that no longer resolve are reported and left behind in
// the renamed file.
func (m *Main) importRetracedFile(ctx context.Context, st retraced.State) error {
	path := filepath.Join(m.DataDir, "retraced-state.json")
	if _, err := os.Stat(path); errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	old, err := retraced.OpenFileState(path)
	if err != nil {
		return err
	}
	viewers, tokens := old.Contents()
	var skipped int
	for _, d := range viewers {
		if time.Since(d.Created) > retraced.ViewerTTL {
			continue
		}
		if err := st.PutViewer(ctx, d); cairn.ErrorCode(err) == cairn.ENotFound {
			skipped++
		} else if err != nil {
			return fmt.Errorf("import %s: %w", path, err)
		}
	}
	for _, t := range tokens {
		if err := st.PutEnterprise(ctx, t); cairn.ErrorCode(err) == cairn.ENotFound {
			skipped++
		} else if err != nil {
			return fmt.Errorf("import %s: %w", path, err)
		}
	}
	if err := os.Rename(path, path+".imported"); err != nil {
		return fmt.Errorf("import %s: %w", path, err)
	}
	m.logger.Info("imported the Retraced viewer descriptors and enterprise tokens into the store",
		slog.String("file", path+".imported"), slog.Int("enterprise_tokens", len(tokens)), slog.Int("skipped", skipped))
	return nil
}
