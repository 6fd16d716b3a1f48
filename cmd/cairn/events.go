package main

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"io"
	"net/url"
	"os"
	"strings"

	"github.com/cairn-audit/cairn/httpapi"
)

// clientFlags are shared by every command that talks to a server.
type clientFlags struct {
	server, token, org string
}

func (c *clientFlags) register(fs *flag.FlagSet) {
	saved, _ := loadCredentials()
	server, org := "http://127.0.0.1:8080", "default"
	if saved != nil {
		server, org = saved.Server, saved.Org
	}
	fs.StringVar(&c.server, "server", envOr("CAIRN_SERVER", server), "server URL (CAIRN_SERVER; default: the one of cairn login)")
	// No default from the environment: -h would print the secret.
	fs.StringVar(&c.token, "token", "", "API key or session token (default: CAIRN_TOKEN, else the one stored by cairn login)")
	fs.StringVar(&c.org, "org", envOr("CAIRN_ORG", org), "org (CAIRN_ORG; default: the one of cairn login)")
}

// client returns a client for the server. Without --token or CAIRN_TOKEN
// it uses the token cairn login stored for the same server.
func (c *clientFlags) client() *httpapi.Client {
	token := tokenOrEnv(c.token)
	if token == "" {
		if saved, err := loadCredentials(); err == nil && saved != nil && saved.Server == c.server {
			token = saved.Token
		}
	}
	return &httpapi.Client{BaseURL: c.server, Token: token}
}

// tokenOrEnv is the API key given by flag, else CAIRN_TOKEN.
func tokenOrEnv(flagValue string) string {
	if flagValue != "" {
		return flagValue
	}
	return os.Getenv("CAIRN_TOKEN")
}

func runEvents(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		return usageError{"usage: cairn events write|query|trail [flags]"}
	}
	switch args[0] {
	case "write":
		return eventsWrite(ctx, args[1:], stdout, stderr)
	case "query":
		return eventsQuery(ctx, args[1:], stdout, stderr)
	case "trail":
		return eventsTrail(ctx, args[1:], stdout, stderr)
	}
	return usageError{fmt.Sprintf("unknown events command %q\nusage: cairn events write|query|trail [flags]", args[0])}
}

func eventsWrite(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("events write", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var cf clientFlags
	cf.register(fs)
	ctxName := fs.String("context", "", "audit context to write to (required)")
	file := fs.String("file", "-", "file with one event (JSON object), a JSON array, or NDJSON; - for stdin")
	async := fs.Bool("async", false, "return once durably accepted (202)")
	idem := fs.String("idempotency-key", "", "Idempotency-Key header")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: cairn events write --context CTX [--file F] [flags]\n\nWrites events read from a file or stdin.")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return flagError(err)
	}
	if *ctxName == "" {
		return usageError{"--context is required"}
	}
	var body []byte
	var err error
	if *file == "-" {
		body, err = io.ReadAll(os.Stdin)
	} else {
		body, err = os.ReadFile(*file)
	}
	if err != nil {
		return err
	}
	ct := "application/json"
	if t := bytes.TrimSpace(body); len(t) > 0 && t[0] == '{' && bytes.Contains(t, []byte("}\n{")) {
		ct = "application/x-ndjson"
	}
	_, resp, err := cf.client().WriteEvents(ctx, cf.org, *ctxName, body,
		httpapi.WriteOptions{ContentType: ct, Async: *async, IdempotencyKey: *idem})
	if err != nil {
		return err
	}
	_, err = stdout.Write(resp)
	return err
}

// queryFlags maps CLI flags onto the search endpoint's parameters.
var queryFlags = []struct{ flag, param, help string }{
	{"context", "context", "audit context"},
	{"action", "action", "action, exact or prefix.*"},
	{"kind", "kind", "create, read, update, delete, access, login, login_failed or other"},
	{"outcome", "outcome", "success or failure"},
	{"actor-id", "actor.id", "actor id"},
	{"actor-type", "actor.type", "actor type"},
	{"actor-email", "actor.email", "actor email"},
	{"target-type", "target.type", "target type"},
	{"target-id", "target.id", "target id"},
	{"group-id", "group.id", "group id"},
	{"group-prefix", "group.prefix", "group ids under a path prefix, e.g. acme/finance"},
	{"since", "since", "RFC 3339 time, inclusive"},
	{"until", "until", "RFC 3339 time, exclusive"},
	{"q", "q", "free text"},
}

func eventsQuery(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("events query", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var cf clientFlags
	cf.register(fs)
	vals := make([]*string, len(queryFlags))
	for i, q := range queryFlags {
		vals[i] = fs.String(q.flag, "", q.help)
	}
	limit := fs.Int("limit", 50, "events to print (0: all)")
	if err := fs.Parse(args); err != nil {
		return flagError(err)
	}
	q := url.Values{}
	for i, f := range queryFlags {
		if *vals[i] != "" {
			q.Set(f.param, *vals[i])
		}
	}
	c := cf.client()
	return printPages(ctx, stdout, *limit, q, func(q url.Values) (*httpapi.EventPage, error) {
		return c.Search(ctx, cf.org, q)
	})
}

func eventsTrail(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("events trail", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var cf clientFlags
	cf.register(fs)
	limit := fs.Int("limit", 0, "events to print (0: all)")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: cairn events trail [flags] TARGET_TYPE TARGET_ID\n\nPrints an object's history, newest first.")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return flagError(err)
	}
	if fs.NArg() != 2 {
		return usageError{"usage: cairn events trail [flags] TARGET_TYPE TARGET_ID"}
	}
	c := cf.client()
	return printPages(ctx, stdout, *limit, url.Values{}, func(q url.Values) (*httpapi.EventPage, error) {
		return c.Trail(ctx, cf.org, fs.Arg(0), fs.Arg(1), q)
	})
}

// printPages follows cursors and prints one event per line (NDJSON).
func printPages(ctx context.Context, w io.Writer, limit int, q url.Values, page func(url.Values) (*httpapi.EventPage, error)) error {
	printed := 0
	for {
		n := httpapi.MaxLimit
		if limit > 0 {
			n = min(n, limit-printed)
		}
		q.Set("limit", fmt.Sprint(n))
		p, err := page(q)
		if err != nil {
			return err
		}
		for _, item := range p.Items {
			fmt.Fprintf(w, "%s\n", strings.TrimSpace(string(item)))
			printed++
		}
		if p.NextCursor == nil || (limit > 0 && printed >= limit) || ctx.Err() != nil {
			return ctx.Err()
		}
		q.Set("cursor", *p.NextCursor)
	}
}
