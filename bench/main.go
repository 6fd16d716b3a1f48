// Command bench is Cairn's load generator.
//
//	go run ./bench ingest [flags]   sustained ingest: events/s, request latency
//	go run ./bench load   [flags]   preload N events as fast as possible
//	go run ./bench query  [flags]   search and trail latency on loaded data
//
// It talks plain HTTP to a running server and imports no Cairn package.
// Run "go run ./bench <mode> -h" for the flags of a mode.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"
)

type config struct {
	Mode    string        `json:"mode"`
	Server  string        `json:"server"`
	Token   string        `json:"-"`
	Org     string        `json:"org"`
	Context string        `json:"context"`
	Clients int           `json:"clients"`
	Timeout time.Duration `json:"-"`
	Seed    uint64        `json:"seed"`
	Actors  int           `json:"actors"`
	Targets int           `json:"targets"`
	Groups  int           `json:"groups"`

	// ingest and load
	Batch    int           `json:"batch,omitempty"`
	Receipt  bool          `json:"receipt,omitempty"`
	Pool     int           `json:"pool,omitempty"`
	Progress time.Duration `json:"-"`

	// ingest and query
	Duration time.Duration `json:"-"`

	// load
	Events int64 `json:"events,omitempty"`

	// query
	TrailRatio float64 `json:"trail_ratio,omitempty"`
	Shapes     string  `json:"shapes,omitempty"`
	Limit      int     `json:"limit,omitempty"`

	JSON bool `json:"-"`
}

const usageText = `usage: go run ./bench <mode> [flags]

modes:
  ingest   clients post batches (or single events with --batch 1) for
           --duration; reports events/s, requests/s, per-request latency
  load     preloads --events events as fast as possible, with progress
  query    a mix of filtered searches and trail requests for --duration;
           reports latency per query shape

Run "go run ./bench <mode> -h" for a mode's flags.
`

func envOr(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}

func parseFlags(mode string, args []string, stderr io.Writer) (*config, error) {
	cfg := &config{Mode: mode}
	fs := flag.NewFlagSet(mode, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(stderr, "usage: go run ./bench %s [flags]\n\nflags:\n", mode)
		fs.PrintDefaults()
	}

	fs.StringVar(&cfg.Server, "server", envOr("CAIRN_SERVER", "http://127.0.0.1:8080"), "server base URL (env CAIRN_SERVER)")
	fs.StringVar(&cfg.Token, "token", "", "API bearer token (default: env CAIRN_TOKEN)")
	fs.StringVar(&cfg.Org, "org", "default", "org")
	fs.StringVar(&cfg.Context, "context", "bench", "context to write to (query: used by the context-filtered shape)")
	fs.DurationVar(&cfg.Timeout, "timeout", 2*time.Minute, "per-request timeout")
	fs.Uint64Var(&cfg.Seed, "seed", 1, "random seed (data and query mix)")
	fs.IntVar(&cfg.Actors, "actors", 5000, "distinct actors")
	fs.IntVar(&cfg.Targets, "targets", 200000, "distinct targets")
	fs.IntVar(&cfg.Groups, "groups", 50, "distinct groups (tenants)")
	fs.BoolVar(&cfg.JSON, "json", false, "print a JSON summary to stdout (the table goes to stderr)")

	switch mode {
	case "ingest", "load":
		fs.IntVar(&cfg.Clients, "clients", 4, "concurrent clients (connections)")
		fs.IntVar(&cfg.Batch, "batch", 1000, "events per request; 1 posts single objects, not arrays")
		fs.IntVar(&cfg.Pool, "pool", 0, "pre-generated request bodies (0: max(64, clients, 16384/batch))")
		fs.DurationVar(&cfg.Progress, "progress", 10*time.Second, "progress line interval on stderr (0: off)")
		if mode == "ingest" {
			fs.DurationVar(&cfg.Duration, "duration", 30*time.Second, "run time")
			fs.BoolVar(&cfg.Receipt, "receipt", false, "write with ?receipt=true: each response waits for the checkpoint covering it")
		} else {
			fs.Int64Var(&cfg.Events, "events", 10_000_000, "events to load")
		}
	case "query":
		fs.IntVar(&cfg.Clients, "clients", 1, "concurrent clients (connections)")
		fs.DurationVar(&cfg.Duration, "duration", 30*time.Second, "run time")
		fs.Float64Var(&cfg.TrailRatio, "trail-ratio", 0.25, "share of requests that are trail requests (0..1)")
		fs.StringVar(&cfg.Shapes, "shapes", "", "comma-separated search shapes to run (default: all; see the report)")
		fs.IntVar(&cfg.Limit, "limit", 50, "page size (limit=)")
	}
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if cfg.Token == "" {
		cfg.Token = os.Getenv("CAIRN_TOKEN")
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected arguments: %q", fs.Args())
	}

	var bad []string
	check := func(ok bool, msg string) {
		if !ok {
			bad = append(bad, msg)
		}
	}
	check(cfg.Clients >= 1, "--clients must be ≥ 1")
	check(cfg.Actors >= 1, "--actors must be ≥ 1")
	check(cfg.Targets >= 4, "--targets must be ≥ 4 (one per target type)")
	check(cfg.Groups >= 1, "--groups must be ≥ 1")
	check(cfg.Timeout > 0, "--timeout must be > 0")
	switch mode {
	case "ingest", "load":
		check(cfg.Batch >= 1, "--batch must be ≥ 1")
		check(cfg.Pool >= 0, "--pool must be ≥ 0")
		if mode == "ingest" {
			check(cfg.Duration > 0, "--duration must be > 0")
		} else {
			check(cfg.Events >= 1, "--events must be ≥ 1")
		}
		if cfg.Pool == 0 {
			cfg.Pool = max(64, cfg.Clients, (16384+cfg.Batch-1)/cfg.Batch)
		}
		cfg.Pool = max(cfg.Pool, cfg.Clients)
	case "query":
		check(cfg.Duration > 0, "--duration must be > 0")
		check(cfg.TrailRatio >= 0 && cfg.TrailRatio <= 1, "--trail-ratio must be within 0..1")
		check(cfg.Limit >= 1, "--limit must be ≥ 1")
	}
	if len(bad) > 0 {
		return nil, errors.New(strings.Join(bad, "; "))
	}
	return cfg, nil
}

func main() {
	if len(os.Args) < 2 {
		fmt.Fprint(os.Stderr, usageText)
		os.Exit(2)
	}
	mode := os.Args[1]
	switch mode {
	case "ingest", "load", "query":
	case "-h", "-help", "--help", "help":
		fmt.Print(usageText)
		return
	default:
		fmt.Fprintf(os.Stderr, "unknown mode %q\n\n%s", mode, usageText)
		os.Exit(2)
	}
	cfg, err := parseFlags(mode, os.Args[2:], os.Stderr)
	if errors.Is(err, flag.ErrHelp) {
		return
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(2)
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	table := io.Writer(os.Stdout)
	if cfg.JSON {
		table = os.Stderr
	}
	rep := newReport(cfg, os.Args[1:])
	rep.printHeader(table)
	err = run(ctx, cfg, rep, os.Stderr)
	if rep.Ingest != nil || rep.Query != nil {
		rep.printResult(table)
		if cfg.JSON {
			if jerr := rep.writeJSON(os.Stdout); jerr != nil && err == nil {
				err = jerr
			}
		}
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

// run executes one mode and fills rep. Progress and warnings go to log.
func run(ctx context.Context, cfg *config, rep *report, log io.Writer) error {
	a := newAPI(cfg)
	defer a.close()
	switch cfg.Mode {
	case "ingest", "load":
		return runIngest(ctx, cfg, a, rep, log)
	case "query":
		return runQuery(ctx, cfg, a, rep, log)
	}
	return fmt.Errorf("unknown mode %q", cfg.Mode)
}
