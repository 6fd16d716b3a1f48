package main

import (
	"bufio"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"

	"github.com/cairn-audit/cairn/httpapi"
)

// sub is one subcommand of a client command: its flags are set up by
// flags and it gets the positional arguments.
type sub struct {
	name, args, help string
	flags            func(fs *flag.FlagSet) func(ctx context.Context, c *httpapi.Client, org string, pos []string, stdout io.Writer) error
	npos             int // number of positional arguments
}

// runSubs returns a command that dispatches to subs.
func runSubs(cmd string, subs []sub) func(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	usage := func() string {
		var b strings.Builder
		fmt.Fprintf(&b, "usage: cairn %s <subcommand> [flags]\n\nsubcommands:\n", cmd)
		for _, s := range subs {
			fmt.Fprintf(&b, "  %-28s %s\n", strings.TrimSpace(s.name+" "+s.args), s.help)
		}
		return b.String()
	}
	return func(ctx context.Context, args []string, stdout, stderr io.Writer) error {
		if len(args) == 0 {
			return usageError{usage()}
		}
		for _, s := range subs {
			if s.name != args[0] {
				continue
			}
			fs := flag.NewFlagSet(cmd+" "+s.name, flag.ContinueOnError)
			fs.SetOutput(stderr)
			var cf clientFlags
			cf.register(fs)
			run := s.flags(fs)
			fs.Usage = func() {
				fmt.Fprintf(stderr, "usage: cairn %s %s %s [flags]\n\n%s\n", cmd, s.name, s.args, s.help)
				fs.PrintDefaults()
			}
			pos, err := parseInterspersed(fs, args[1:])
			if err != nil {
				return flagError(err)
			}
			if len(pos) != s.npos {
				return usageError{fmt.Sprintf("usage: cairn %s %s %s", cmd, s.name, s.args)}
			}
			return run(ctx, cf.client(), cf.org, pos, stdout)
		}
		return usageError{fmt.Sprintf("unknown %s subcommand %q\n\n%s", cmd, args[0], usage())}
	}
}

// parseInterspersed parses flags that may come before or after the
// positional arguments.
func parseInterspersed(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		if fs.NArg() == 0 {
			return pos, nil
		}
		pos = append(pos, fs.Arg(0))
		args = fs.Args()[1:]
	}
}

// printRaw writes a server response indented.
func printRaw(w io.Writer, raw []byte) error {
	var v any
	if err := json.Unmarshal(raw, &v); err != nil {
		_, err := w.Write(raw)
		return err
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	return enc.Encode(v)
}

// call sends a request with an optional JSON body and prints the answer.
func call(ctx context.Context, c *httpapi.Client, w io.Writer, method, path string, q url.Values, body any) error {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		rd = strings.NewReader(string(b))
	}
	var out []byte
	status, err := c.Do(ctx, method, path, q, rd, nil, &out)
	if err != nil {
		return err
	}
	if status == http.StatusNoContent {
		return nil
	}
	return printRaw(w, out)
}

func orgPath(org string) string { return "/api/v1/orgs/" + url.PathEscape(org) }

// simple is a subcommand without flags of its own.
func simple(f func(ctx context.Context, c *httpapi.Client, org string, pos []string, stdout io.Writer) error) func(*flag.FlagSet) func(context.Context, *httpapi.Client, string, []string, io.Writer) error {
	return func(*flag.FlagSet) func(context.Context, *httpapi.Client, string, []string, io.Writer) error {
		return f
	}
}

// readSecret reads one line (a password) from stdin.
func readSecret() (string, error) {
	line, err := bufio.NewReader(os.Stdin).ReadString('\n')
	if err != nil && err != io.EOF {
		return "", err
	}
	return strings.TrimRight(line, "\r\n"), nil
}

var runOrgs = runSubs("orgs", []sub{
	{name: "list", help: "list orgs (server admin)", flags: simple(func(ctx context.Context, c *httpapi.Client, _ string, _ []string, w io.Writer) error {
		return call(ctx, c, w, "GET", "/api/v1/orgs", nil, nil)
	})},
	{name: "create", args: "NAME", npos: 1, help: "create an org with its built-in context (server admin)", flags: simple(func(ctx context.Context, c *httpapi.Client, _ string, pos []string, w io.Writer) error {
		return call(ctx, c, w, "POST", "/api/v1/orgs", nil, map[string]string{"name": pos[0]})
	})},
})

var runContexts = runSubs("contexts", []sub{
	{name: "list", help: "list the audit contexts you may view", flags: simple(func(ctx context.Context, c *httpapi.Client, org string, _ []string, w io.Writer) error {
		return call(ctx, c, w, "GET", orgPath(org)+"/contexts", nil, nil)
	})},
	{name: "get", args: "NAME", npos: 1, help: "show an audit context", flags: simple(func(ctx context.Context, c *httpapi.Client, org string, pos []string, w io.Writer) error {
		return call(ctx, c, w, "GET", orgPath(org)+"/contexts/"+url.PathEscape(pos[0]), nil, nil)
	})},
	{name: "create", args: "NAME", npos: 1, help: "create an audit context", flags: func(fs *flag.FlagSet) func(context.Context, *httpapi.Client, string, []string, io.Writer) error {
		desc := fs.String("description", "", "description")
		body := fs.String("json", "", "extra JSON members of the body, e.g. {\"redaction\":[...]}")
		return func(ctx context.Context, c *httpapi.Client, org string, pos []string, w io.Writer) error {
			in := map[string]any{}
			if *body != "" {
				if err := json.Unmarshal([]byte(*body), &in); err != nil {
					return usageError{"--json: " + err.Error()}
				}
			}
			in["name"] = pos[0]
			if *desc != "" {
				in["description"] = *desc
			}
			return call(ctx, c, w, "POST", orgPath(org)+"/contexts", nil, in)
		}
	}},
	{name: "edit", args: "NAME", npos: 1, help: "edit an audit context (description, tags, redaction, witnesses)", flags: func(fs *flag.FlagSet) func(context.Context, *httpapi.Client, string, []string, io.Writer) error {
		desc := fs.String("description", "", "new description")
		body := fs.String("json", "", "JSON members to change, e.g. {\"redaction\":[{\"field\":\"ssn\",\"mode\":\"mask\"}]}")
		return func(ctx context.Context, c *httpapi.Client, org string, pos []string, w io.Writer) error {
			in := map[string]any{}
			if *body != "" {
				if err := json.Unmarshal([]byte(*body), &in); err != nil {
					return usageError{"--json: " + err.Error()}
				}
			}
			if *desc != "" {
				in["description"] = *desc
			}
			return call(ctx, c, w, "PATCH", orgPath(org)+"/contexts/"+url.PathEscape(pos[0]), nil, in)
		}
	}},
})

// principalCommand is the command for one principal kind.
func principalCommand(kind, coll string) func(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	base := func(org string) string { return orgPath(org) + "/" + coll }
	subs := []sub{
		{name: "list", help: "list " + coll, flags: simple(func(ctx context.Context, c *httpapi.Client, org string, _ []string, w io.Writer) error {
			return call(ctx, c, w, "GET", base(org), nil, nil)
		})},
		{name: "get", args: "NAME", npos: 1, help: "show a " + kind, flags: simple(func(ctx context.Context, c *httpapi.Client, org string, pos []string, w io.Writer) error {
			return call(ctx, c, w, "GET", base(org)+"/"+url.PathEscape(pos[0]), nil, nil)
		})},
		{name: "delete", args: "NAME", npos: 1, help: "delete a " + kind + " (its keys are revoked)", flags: simple(func(ctx context.Context, c *httpapi.Client, org string, pos []string, w io.Writer) error {
			return call(ctx, c, w, "DELETE", base(org)+"/"+url.PathEscape(pos[0]), nil, nil)
		})},
		{name: "create", args: "NAME", npos: 1, help: "create a " + kind, flags: func(fs *flag.FlagSet) func(context.Context, *httpapi.Client, string, []string, io.Writer) error {
			desc := fs.String("description", "", "description")
			var email *string
			var pwStdin *bool
			if kind == "user" {
				email = fs.String("email", "", "email address")
				pwStdin = fs.Bool("password-stdin", false, "read the user's password from stdin")
			}
			return func(ctx context.Context, c *httpapi.Client, org string, pos []string, w io.Writer) error {
				in := map[string]any{"name": pos[0], "description": *desc}
				if email != nil && *email != "" {
					in["email"] = *email
				}
				if pwStdin != nil && *pwStdin {
					pw, err := readSecret()
					if err != nil {
						return err
					}
					in["password"] = pw
				}
				return call(ctx, c, w, "POST", base(org), nil, in)
			}
		}},
		{name: "edit", args: "NAME", npos: 1, help: "edit a " + kind, flags: func(fs *flag.FlagSet) func(context.Context, *httpapi.Client, string, []string, io.Writer) error {
			desc := fs.String("description", "", "new description")
			disable := fs.Bool("disable", false, "disable (its keys and sessions stop working)")
			enable := fs.Bool("enable", false, "enable again")
			var email *string
			var pwStdin *bool
			if kind == "user" {
				email = fs.String("email", "", "new email address")
				pwStdin = fs.Bool("password-stdin", false, "read a new password from stdin")
			}
			return func(ctx context.Context, c *httpapi.Client, org string, pos []string, w io.Writer) error {
				in := map[string]any{}
				if *desc != "" {
					in["description"] = *desc
				}
				if *disable || *enable {
					in["disabled"] = *disable
				}
				if email != nil && *email != "" {
					in["email"] = *email
				}
				if pwStdin != nil && *pwStdin {
					pw, err := readSecret()
					if err != nil {
						return err
					}
					in["password"] = pw
				}
				return call(ctx, c, w, "PATCH", base(org)+"/"+url.PathEscape(pos[0]), nil, in)
			}
		}},
	}
	if kind == "group" {
		subs = append(subs,
			sub{name: "add-member", args: "GROUP KIND/NAME", npos: 2, help: "add a principal to a group", flags: simple(func(ctx context.Context, c *httpapi.Client, org string, pos []string, w io.Writer) error {
				return call(ctx, c, w, "POST", base(org)+"/"+url.PathEscape(pos[0])+"/members", nil, map[string]string{"principal": pos[1]})
			})},
			sub{name: "remove-member", args: "GROUP KIND/NAME", npos: 2, help: "remove a principal from a group", flags: simple(func(ctx context.Context, c *httpapi.Client, org string, pos []string, w io.Writer) error {
				kind, name, ok := strings.Cut(pos[1], "/")
				if !ok {
					return usageError{"the member is KIND/NAME, e.g. user/ann"}
				}
				return call(ctx, c, w, "DELETE", base(org)+"/"+url.PathEscape(pos[0])+"/members/"+url.PathEscape(kind)+"/"+url.PathEscape(name), nil, nil)
			})},
		)
	}
	return runSubs(coll, subs)
}

var apiKeySubs = []sub{
	{name: "list", help: "list API keys and sessions (prefixes only)", flags: func(fs *flag.FlagSet) func(context.Context, *httpapi.Client, string, []string, io.Writer) error {
		p := fs.String("principal", "", "only the keys of this principal, e.g. serviceaccount/ci")
		return func(ctx context.Context, c *httpapi.Client, org string, _ []string, w io.Writer) error {
			var q url.Values
			if *p != "" {
				q = url.Values{"principal": {*p}}
			}
			return call(ctx, c, w, "GET", orgPath(org)+"/keys", q, nil)
		}
	}},
	{name: "create", help: "create an API key for a service account or identity; the secret is shown once", flags: func(fs *flag.FlagSet) func(context.Context, *httpapi.Client, string, []string, io.Writer) error {
		p := fs.String("principal", "", "serviceaccount/NAME or identity/NAME (required)")
		name := fs.String("name", "", "key name (required)")
		exp := fs.String("expires-in", "", "lifetime, e.g. 720h (default: no expiry)")
		return func(ctx context.Context, c *httpapi.Client, org string, _ []string, w io.Writer) error {
			if *p == "" || *name == "" {
				return usageError{"--principal and --name are required"}
			}
			in := map[string]string{"principal": *p, "name": *name}
			if *exp != "" {
				in["expires_in"] = *exp
			}
			return call(ctx, c, w, "POST", orgPath(org)+"/keys", nil, in)
		}
	}},
	{name: "revoke", args: "KEY_ID", npos: 1, help: "revoke an API key or session", flags: simple(func(ctx context.Context, c *httpapi.Client, org string, pos []string, w io.Writer) error {
		return call(ctx, c, w, "POST", orgPath(org)+"/keys/"+url.PathEscape(pos[0])+"/revoke", nil, nil)
	})},
}

// runKeyCommands is "cairn keys": API keys on a server, and add-signing
// for checkpoint signing keys offline.
func runKeyCommands(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) > 0 && args[0] == "add-signing" {
		return runKeys(ctx, args, stdout, stderr)
	}
	subs := append(apiKeySubs, sub{name: "add-signing", help: "create a checkpoint signing key file offline (see cairn keys add-signing -h)"})
	return runSubs("keys", subs)(ctx, args, stdout, stderr)
}

var runPolicies = runSubs("policies", []sub{
	{name: "list", help: "list policies", flags: simple(func(ctx context.Context, c *httpapi.Client, org string, _ []string, w io.Writer) error {
		return call(ctx, c, w, "GET", orgPath(org)+"/policies", nil, nil)
	})},
	{name: "get", args: "NAME", npos: 1, help: "show a policy", flags: simple(func(ctx context.Context, c *httpapi.Client, org string, pos []string, w io.Writer) error {
		return call(ctx, c, w, "GET", orgPath(org)+"/policies/"+url.PathEscape(pos[0]), nil, nil)
	})},
	{name: "delete", args: "NAME", npos: 1, help: "delete a policy", flags: simple(func(ctx context.Context, c *httpapi.Client, org string, pos []string, w io.Writer) error {
		return call(ctx, c, w, "DELETE", orgPath(org)+"/policies/"+url.PathEscape(pos[0]), nil, nil)
	})},
	{name: "create", args: "NAME", npos: 1, help: "create a policy from flags (one binding) or --file", flags: policyFlags("POST")},
	{name: "put", args: "NAME", npos: 1, help: "create or replace a policy from flags (one binding) or --file", flags: policyFlags("PUT")},
})

func policyFlags(method string) func(fs *flag.FlagSet) func(context.Context, *httpapi.Client, string, []string, io.Writer) error {
	return func(fs *flag.FlagSet) func(context.Context, *httpapi.Client, string, []string, io.Writer) error {
		file := fs.String("file", "", "JSON policy {context, description, bindings:[{permissions, principals, event_groups, group_prefixes}]}")
		target := fs.String("context", "", "context the policy applies to, or * for all")
		desc := fs.String("description", "", "description")
		var perms, principals, groups, prefixes listFlag
		fs.Var(&perms, "permission", "permission to grant (repeatable): create, edit, manage, readAudit, view, writeAudit")
		fs.Var(&principals, "principal", "principal to grant it to (repeatable), e.g. user/ann or group/auditors")
		fs.Var(&groups, "event-group", "limit readAudit to this event group id (repeatable)")
		fs.Var(&prefixes, "group-prefix", "limit readAudit to event groups under this path prefix (repeatable)")
		return func(ctx context.Context, c *httpapi.Client, org string, pos []string, w io.Writer) error {
			in := map[string]any{}
			if *file != "" {
				b, err := os.ReadFile(*file)
				if err != nil {
					return err
				}
				if err := json.Unmarshal(b, &in); err != nil {
					return usageError{"--file: " + err.Error()}
				}
			} else {
				in["bindings"] = []map[string]any{{"permissions": perms.values, "principals": principals.values,
					"event_groups": groups.values, "group_prefixes": prefixes.values}}
			}
			in["name"] = pos[0]
			if *target != "" {
				in["context"] = *target
			}
			if *desc != "" {
				in["description"] = *desc
			}
			path := orgPath(org) + "/policies"
			if method == "PUT" {
				path += "/" + url.PathEscape(pos[0])
			}
			return call(ctx, c, w, method, path, nil, in)
		}
	}
}

func runAccess(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("access", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var cf clientFlags
	cf.register(fs)
	pos, err := parseInterspersed(fs, args)
	if err != nil {
		return flagError(err)
	}
	if len(pos) != 1 {
		return usageError{"usage: cairn access CONTEXT [flags]"}
	}
	return call(ctx, cf.client(), stdout, "GET", orgPath(cf.org)+"/contexts/"+url.PathEscape(pos[0])+"/access", nil, nil)
}
