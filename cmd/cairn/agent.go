package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/cairn-audit/cairn"
	"github.com/cairn-audit/cairn/agent"
	"github.com/cairn-audit/cairn/httpapi"
	"github.com/cairn-audit/cairn/ingest"
)

// parseAgentFlags reads the agent's flags, with CAIRN_* environment
// variables as defaults.
func parseAgentFlags(args []string, stderr io.Writer) (agent.Config, error) {
	var cfg agent.Config
	fs := flag.NewFlagSet("agent", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&cfg.Listen, "listen", envOr("CAIRN_AGENT_LISTEN", agent.DefaultListen), "loopback address to accept writes on, without credentials (CAIRN_AGENT_LISTEN)")
	fs.StringVar(&cfg.Server, "server", envOr("CAIRN_SERVER", "http://127.0.0.1:8080"), "Cairn server URL (CAIRN_SERVER)")
	fs.StringVar(&cfg.Token, "token", envOr("CAIRN_TOKEN", ""), "API key of the workload identity, which must hold writeAudit (CAIRN_TOKEN)")
	fs.StringVar(&cfg.Org, "org", envOr("CAIRN_ORG", cairn.DefaultOrg), "the workload's org (CAIRN_ORG)")
	fs.StringVar(&cfg.Journal, "journal", envOr("CAIRN_AGENT_JOURNAL", "./cairn-agent-journal"), "directory of the durable journal (CAIRN_AGENT_JOURNAL)")
	fs.StringVar(&cfg.ReplicatedContext, "replicated-context", envOr("CAIRN_REPLICATED_CONTEXT", httpapi.DefaultReplicatedContext), "context that Replicated events (POST /audit/v1/event) go to (CAIRN_REPLICATED_CONTEXT)")
	logLevel := fs.String("log-level", envOr("CAIRN_LOG_LEVEL", "info"), "debug, info, warn or error (CAIRN_LOG_LEVEL)")
	if err := fs.Parse(args); err != nil {
		return cfg, usageError{err.Error()}
	}
	if fs.NArg() > 0 {
		return cfg, usageError{fmt.Sprintf("unexpected argument %q", fs.Arg(0))}
	}
	var level slog.Level
	if err := level.UnmarshalText([]byte(*logLevel)); err != nil {
		return cfg, usageError{fmt.Sprintf("bad --log-level %q", *logLevel)}
	}
	cfg.Logger = slog.New(slog.NewJSONHandler(stderr, &slog.HandlerOptions{Level: level}))
	cfg.Check = checkCompatBody
	if err := cfg.Validate(); err != nil {
		return cfg, usageError{cairn.ErrorMessage(err)}
	}
	return cfg, nil
}

// checkCompatBody applies the server's decoding and validation rules to a
// body before the agent journals it, so that what the agent accepts the
// server accepts too.
func checkCompatBody(kind string, body []byte) error {
	var in *ingest.Input
	var err error
	switch kind {
	case agent.KindControlPlane:
		var ev *httpapi.CPEvent
		if ev, err = httpapi.DecodeCPEvent(body); err == nil {
			in, err = ev.Input("org", "context", &cairn.Source{})
		}
	case agent.KindReplicated:
		in, err = httpapi.DecodeReplicatedEvent(body)
	default:
		return cairn.Errorf(cairn.EInternal, "unknown kind %q", kind)
	}
	if err != nil {
		return err
	}
	e, err := ingest.Normalize(in, "org", "context", "00000000-0000-7000-8000-000000000000", time.Now(), nil)
	if err != nil {
		return err
	}
	_, err = ingest.Canonical(e)
	return err
}

func runAgent(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	cfg, err := parseAgentFlags(args, stderr)
	if err != nil {
		return err
	}
	a, err := agent.Open(ctx, cfg)
	if err != nil {
		return err
	}
	<-ctx.Done()
	cfg.Logger.Info("agent shutting down", slog.Int("pending", a.Pending()))
	return a.Close()
}
