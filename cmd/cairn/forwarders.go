package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/cairn-audit/cairn"
	"github.com/cairn-audit/cairn/httpapi"
)

const forwardersUsage = "usage: cairn forwarders list|get|create|update|delete|pause|resume|replay|test|status [flags] [NAME]"

func runForwarders(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		return usageError{forwardersUsage}
	}
	cmds := map[string]func(context.Context, []string, io.Writer, io.Writer) error{
		"list": fwdList, "get": fwdGet, "create": fwdCreate, "update": fwdUpdate, "delete": fwdDelete,
		"pause": fwdPause, "resume": fwdResume, "replay": fwdReplay, "test": fwdTest, "status": fwdStatus,
	}
	run, ok := cmds[args[0]]
	if !ok {
		return usageError{fmt.Sprintf("unknown forwarders command %q\n%s", args[0], forwardersUsage)}
	}
	return run(ctx, args[1:], stdout, stderr)
}

// fwdFlags parses a forwarders subcommand's flags; named commands take
// exactly one NAME argument.
func fwdFlags(name string, args []string, stderr io.Writer, named bool, define func(fs *flag.FlagSet)) (*clientFlags, *flag.FlagSet, string, error) {
	fs := flag.NewFlagSet("forwarders "+name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	cf := &clientFlags{}
	cf.register(fs)
	if define != nil {
		define(fs)
	}
	// Allow NAME before the flags (cairn forwarders get siem --org x).
	var fwd string
	if named && len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		fwd, args = args[0], args[1:]
	}
	if err := fs.Parse(args); err != nil {
		return nil, nil, "", flagError(err)
	}
	if named && fwd == "" && fs.NArg() > 0 {
		fwd = fs.Arg(0)
		fs = withArgs(fs, fs.Args()[1:])
	}
	switch {
	case named && fwd == "":
		return nil, nil, "", usageError{fmt.Sprintf("usage: cairn forwarders %s NAME [flags]", name)}
	case fs.NArg() > 0:
		return nil, nil, "", usageError{fmt.Sprintf("unexpected argument %q", fs.Arg(0))}
	}
	return cf, fs, fwd, nil
}

// withArgs re-parses the remaining arguments (flags after NAME).
func withArgs(fs *flag.FlagSet, rest []string) *flag.FlagSet {
	_ = fs.Parse(rest)
	return fs
}

func fwdList(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var asJSON bool
	cf, _, _, err := fwdFlags("list", args, stderr, false, func(fs *flag.FlagSet) {
		fs.BoolVar(&asJSON, "json", false, "print JSON instead of a table")
	})
	if err != nil {
		return err
	}
	items, err := cf.client().ListForwarders(ctx, cf.org)
	if err != nil {
		return err
	}
	if asJSON {
		return printJSON(stdout, map[string]any{"items": items})
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tSINK\tFORMAT\tSTATE\tLAG\tLAST SUCCESS\tLAST ERROR")
	for _, f := range items {
		st := f.Status
		if st == nil {
			st = &httpapi.ForwarderStatusView{}
		}
		last, lastErr := "-", "-"
		if st.LastSuccess != nil {
			last = st.LastSuccess.Format(time.RFC3339)
		}
		if st.LastError != nil {
			lastErr = st.LastError.Code + ": " + st.LastError.Message
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d (%.1fs)\t%s\t%s\n", f.Name, f.Sink.Type, f.Format, st.State,
			st.LagEvents, st.LagSeconds, last, lastErr)
	}
	return tw.Flush()
}

func fwdGet(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	cf, _, name, err := fwdFlags("get", args, stderr, true, nil)
	if err != nil {
		return err
	}
	v, err := cf.client().GetForwarder(ctx, cf.org, name)
	if err != nil {
		return err
	}
	return printJSON(stdout, v)
}

func fwdStatus(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	cf, _, name, err := fwdFlags("status", args, stderr, true, nil)
	if err != nil {
		return err
	}
	v, err := cf.client().ForwarderStatus(ctx, cf.org, name)
	if err != nil {
		return err
	}
	return printJSON(stdout, v)
}

func fwdDelete(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	cf, _, name, err := fwdFlags("delete", args, stderr, true, nil)
	if err != nil {
		return err
	}
	return cf.client().DeleteForwarder(ctx, cf.org, name)
}

func fwdPause(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	return fwdToggle(ctx, "pause", args, stdout, stderr)
}

func fwdResume(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	return fwdToggle(ctx, "resume", args, stdout, stderr)
}

func fwdToggle(ctx context.Context, op string, args []string, stdout, stderr io.Writer) error {
	cf, _, name, err := fwdFlags(op, args, stderr, true, nil)
	if err != nil {
		return err
	}
	c := cf.client()
	call := c.PauseForwarder
	if op == "resume" {
		call = c.ResumeForwarder
	}
	v, err := call(ctx, cf.org, name)
	if err != nil {
		return err
	}
	return printJSON(stdout, v)
}

func fwdReplay(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var seq int64
	var at, ctxName string
	cf, fs, name, err := fwdFlags("replay", args, stderr, true, func(fs *flag.FlagSet) {
		fs.Int64Var(&seq, "seq", 0, "replay from this seq (with --context: in that context only)")
		fs.StringVar(&at, "time", "", "replay from the first event received at or after this RFC 3339 time")
		fs.StringVar(&ctxName, "context", "", "replay only this context")
	})
	if err != nil {
		return err
	}
	in := httpapi.ReplayInput{Context: ctxName}
	seqSet := false
	fs.Visit(func(f *flag.Flag) { seqSet = seqSet || f.Name == "seq" })
	switch {
	case seqSet == (at != ""):
		return usageError{"replay needs exactly one of --seq and --time"}
	case seqSet:
		in.Seq = &seq
	default:
		t, err := time.Parse(time.RFC3339Nano, at)
		if err != nil {
			return usageError{fmt.Sprintf("--time %q: not an RFC 3339 time", at)}
		}
		in.Time = &t
	}
	v, err := cf.client().ReplayForwarder(ctx, cf.org, name, in)
	if err != nil {
		return err
	}
	return printJSON(stdout, v)
}

// fwdTest prints the sink's answer; a failed delivery exits 1 with its
// code.
func fwdTest(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	cf, _, name, err := fwdFlags("test", args, stderr, true, nil)
	if err != nil {
		return err
	}
	v, err := cf.client().TestForwarder(ctx, cf.org, name)
	if err != nil {
		return err
	}
	if err := printJSON(stdout, v); err != nil {
		return err
	}
	if !v.OK && v.Error != nil {
		return &cairn.Error{Code: cairn.EInvalid, Message: "the sink refused the test event: " + v.Error.Code + ": " + v.Error.Message}
	}
	return nil
}

// spec holds the flags that describe a forwarder (create and update).
type spec struct {
	file, name, typ, format, action, group string
	contexts, set, setJSON, setFile        listFlag
	maxEvents, maxBytes, maxAttempts       int
	maxDelay, minBackoff, maxBackoff       string
	disabled                               bool
}

func (s *spec) define(fs *flag.FlagSet, create bool) {
	fs.StringVar(&s.file, "file", "", "a JSON forwarder (create) or JSON merge patch (update); - for stdin")
	if create {
		fs.StringVar(&s.name, "name", "", "forwarder name")
	}
	fs.StringVar(&s.typ, "type", "", "sink type: webhook, splunk_hec, elastic, syslog, kafka or nats")
	fs.Var(&s.set, "set", "sink setting KEY=VALUE (a string); repeatable")
	fs.Var(&s.setJSON, "set-json", "sink setting KEY=JSON (numbers, lists, objects); repeatable")
	fs.Var(&s.setFile, "set-file", "sink setting KEY=PATH, the value read from a file (keeps secrets out of the process list); repeatable")
	fs.Var(&s.contexts, "context", "a context to forward; repeatable (none: every context)")
	fs.StringVar(&s.action, "action", "", "action filter, exact or prefix.*")
	fs.StringVar(&s.group, "group", "", "group id filter, exact or prefix.*")
	fs.StringVar(&s.format, "format", "", "body format: json, ocsf, ecs or cef (default: the sink's)")
	fs.IntVar(&s.maxEvents, "max-events", 0, "most events per batch (default 500)")
	fs.IntVar(&s.maxBytes, "max-bytes", 0, "most body bytes per batch (default 1 MiB)")
	fs.StringVar(&s.maxDelay, "max-delay", "", "longest an event waits for its batch to fill, e.g. 200ms")
	fs.IntVar(&s.maxAttempts, "max-attempts", 0, "consecutive failed deliveries before the forwarder is parked (default 20)")
	fs.StringVar(&s.minBackoff, "min-backoff", "", "first retry delay, e.g. 1s")
	fs.StringVar(&s.maxBackoff, "max-backoff", "", "longest retry delay, e.g. 5m")
	fs.BoolVar(&s.disabled, "disabled", false, "create it paused")
}

func readBody(path string) ([]byte, error) {
	if path == "-" {
		return io.ReadAll(os.Stdin)
	}
	return os.ReadFile(path)
}

// settings turns --set, --set-json and --set-file into sink settings.
func (s *spec) settings() (map[string]any, error) {
	out := map[string]any{}
	for _, kv := range s.set.values {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || k == "" {
			return nil, usageError{fmt.Sprintf("--set %q: want KEY=VALUE", kv)}
		}
		out[k] = v
	}
	for _, kv := range s.setJSON.values {
		k, v, ok := strings.Cut(kv, "=")
		var val any
		if !ok || k == "" || json.Unmarshal([]byte(v), &val) != nil {
			return nil, usageError{fmt.Sprintf("--set-json %q: want KEY=<JSON value>", kv)}
		}
		out[k] = val
	}
	for _, kv := range s.setFile.values {
		k, path, ok := strings.Cut(kv, "=")
		if !ok || k == "" {
			return nil, usageError{fmt.Sprintf("--set-file %q: want KEY=PATH", kv)}
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return nil, err
		}
		out[k] = strings.TrimRight(string(b), "\r\n")
	}
	return out, nil
}

// apply sets the flags that were given (visited) on v.
func (s *spec) apply(fs *flag.FlagSet, v *httpapi.ForwarderView) error {
	settings, err := s.settings()
	if err != nil {
		return err
	}
	if v.Sink.Settings == nil {
		v.Sink.Settings = map[string]any{}
	}
	for k, val := range settings {
		v.Sink.Settings[k] = val
	}
	var visitErr error
	fs.Visit(func(f *flag.Flag) {
		switch f.Name {
		case "type":
			if v.Sink.Type != "" && v.Sink.Type != s.typ {
				v.Sink.Settings = settings // a new sink type starts from the given settings only
			}
			v.Sink.Type = s.typ
		case "context":
			v.Contexts = s.contexts.values
		case "action":
			v.ActionFilter = s.action
		case "group":
			v.GroupFilter = s.group
		case "format":
			v.Format = s.format
		case "max-events":
			v.Batch.MaxEvents = s.maxEvents
		case "max-bytes":
			v.Batch.MaxBytes = s.maxBytes
		case "max-delay":
			v.Batch.MaxDelay = s.maxDelay
		case "max-attempts":
			v.Retry.MaxAttempts = s.maxAttempts
		case "min-backoff":
			v.Retry.MinBackoff = s.minBackoff
		case "max-backoff":
			v.Retry.MaxBackoff = s.maxBackoff
		case "disabled":
			enabled := !s.disabled
			v.Enabled = &enabled
		}
	})
	return visitErr
}

func fwdCreate(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var s spec
	cf, fs, _, err := fwdFlags("create", args, stderr, false, func(fs *flag.FlagSet) { s.define(fs, true) })
	if err != nil {
		return err
	}
	var v httpapi.ForwarderView
	if s.file != "" {
		b, err := readBody(s.file)
		if err != nil {
			return err
		}
		if err := json.Unmarshal(b, &v); err != nil {
			return usageError{fmt.Sprintf("--file: %v", err)}
		}
	}
	if s.name != "" {
		v.Name = s.name
	}
	if err := s.apply(fs, &v); err != nil {
		return err
	}
	if v.Name == "" || v.Sink.Type == "" {
		return usageError{"create needs --name and --type (or a --file with both)"}
	}
	out, err := cf.client().CreateForwarder(ctx, cf.org, v)
	if err != nil {
		return err
	}
	return printJSON(stdout, out)
}

// fwdUpdate changes a forwarder: with --file, the file is a JSON merge
// patch; otherwise the given flags are applied to the current view (whose
// secrets read "***" and are kept).
func fwdUpdate(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var s spec
	cf, fs, name, err := fwdFlags("update", args, stderr, true, func(fs *flag.FlagSet) { s.define(fs, false) })
	if err != nil {
		return err
	}
	c := cf.client()
	if s.file != "" {
		b, err := readBody(s.file)
		if err != nil {
			return err
		}
		var patch map[string]any
		if err := json.Unmarshal(b, &patch); err != nil {
			return usageError{fmt.Sprintf("--file: %v", err)}
		}
		out, err := c.PatchForwarder(ctx, cf.org, name, patch)
		if err != nil {
			return err
		}
		return printJSON(stdout, out)
	}
	v, err := c.GetForwarder(ctx, cf.org, name)
	if err != nil {
		return err
	}
	if err := s.apply(fs, v); err != nil {
		return err
	}
	v.Status = nil
	out, err := c.PutForwarder(ctx, cf.org, name, *v)
	if err != nil {
		return err
	}
	return printJSON(stdout, out)
}
