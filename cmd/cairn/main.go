// Command cairn is Cairn's one binary: the server (serve) and the client
// commands that talk to it. Configuration is parsed here and only here.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime/debug"
	"strings"
	"syscall"
	"time"

	"github.com/cairn-audit/cairn"
)

// Version is set at build time with -ldflags "-X main.Version=…".
var Version = "dev"

type command struct {
	name, usage string
	run         func(ctx context.Context, args []string, stdout, stderr io.Writer) error
}

var commands = []command{
	{"serve", "run the Cairn server", runServe},
	{"agent", "run the loopback agent: workloads post audit events to it without credentials; it journals and forwards them", runAgent},
	{"version", "print the version", runVersion},
	{"events", "write, query and trail events on a server (events write|query|trail)", runEvents},
	{"export", "download a context's log as a self-contained bundle for offline verification", runExport},
	{"verify", "verify a log, a receipt or two checkpoints offline (verify log|receipt|consistency)", runVerify},
	{"fsck", "check a stopped server's database", runFsck},
	{"keys", "API keys (keys create|list|revoke) and checkpoint signing keys offline (keys add-signing)", runKeyCommands},
	{"login", "log in and store a token for the other client commands", runLogin},
	{"orgs", "orgs on a server (orgs create|list; server admin)", runOrgs},
	{"contexts", "audit contexts (contexts create|list|get|edit)", runContexts},
	{"users", "local users (users create|list|get|edit|delete)", principalCommand("user", "users")},
	{"serviceaccounts", "service accounts (serviceaccounts create|list|get|edit|delete)", principalCommand("serviceaccount", "serviceaccounts")},
	{"identities", "workload identities (identities create|list|get|edit|delete)", principalCommand("identity", "identities")},
	{"groups", "groups of principals (groups create|list|get|edit|delete|add-member|remove-member)", principalCommand("group", "groups")},
	{"policies", "policies (policies create|put|list|get|delete)", runPolicies},
	{"access", "access report of a context: who holds which permission and why", runAccess},
	{"forwarders", "manage forwarders on a server (forwarders list|get|create|update|delete|pause|resume|replay|test|status)", runForwarders},
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	os.Exit(run(ctx, os.Args[1:], os.Stdout, os.Stderr))
}

// run executes a command line and returns the process exit code.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		usage(stderr)
		if len(args) == 0 {
			return 2
		}
		return 0
	}
	for _, c := range commands {
		if c.name == args[0] {
			err := c.run(ctx, args[1:], stdout, stderr)
			var ue usageError
			if len(args) > 1 && isHelp(args[1]) && errors.As(err, &ue) {
				// A command group (events, verify, …) asked for help: its
				// usage line is the answer, not an error.
				msg := ue.msg
				if i := strings.Index(msg, "usage:"); i >= 0 {
					msg = msg[i:]
				}
				fmt.Fprintln(stdout, msg)
				return 0
			}
			if err != nil && !errors.Is(err, flag.ErrHelp) {
				fmt.Fprintf(stderr, "cairn %s: %s\n", c.name, message(err))
			}
			return exitCode(err)
		}
	}
	fmt.Fprintf(stderr, "cairn: unknown command %q\n\n", args[0])
	usage(stderr)
	return 2
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "usage: cairn <command> [flags]\n\ncommands:")
	for _, c := range commands {
		fmt.Fprintf(w, "  %-16s %s\n", c.name, c.usage)
	}
	fmt.Fprintln(w, "\nRun 'cairn <command> -h' for a command's flags.")
}

// flagError turns a flag parse error into a usage error; -h stays a request
// for help (exit 0, the flags already printed).
func flagError(err error) error {
	if errors.Is(err, flag.ErrHelp) {
		return err
	}
	return usageError{err.Error()}
}

func isHelp(arg string) bool {
	return arg == "-h" || arg == "--help" || arg == "-help" || arg == "help"
}

// usageError marks errors in how the command was invoked.
type usageError struct{ msg string }

func (e usageError) Error() string { return e.msg }

// exitCode is the one place errors become exit codes: 0 success, 1 a
// failure reported by the server or the operation (for verify and fsck: a
// verification failure), 2 usage errors (for verify and fsck: also I/O
// errors, verification could not run), 3 the server could not be reached
// or is unavailable.
func exitCode(err error) int {
	var ue usageError
	var ie ioError
	var vf verifyFailed
	switch {
	case err == nil || errors.Is(err, flag.ErrHelp):
		return 0
	case errors.As(err, &vf):
		return 1
	case errors.As(err, &ue), errors.As(err, &ie):
		return 2
	case cairn.ErrorCode(err) == cairn.EUnavailable:
		return 3
	default:
		return 1
	}
}

func message(err error) string {
	var e *cairn.Error
	if errors.As(err, &e) {
		if e.Code == cairn.EInternal && e.Err != nil {
			return err.Error()
		}
		return e.Code + ": " + e.Message
	}
	return err.Error()
}

func runVersion(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	v := Version
	if bi, ok := debug.ReadBuildInfo(); ok && v == "dev" && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		v = bi.Main.Version
	}
	fmt.Fprintf(stdout, "cairn %s\n", v)
	return nil
}

// envOr returns the environment variable's value, or def when it is unset.
func envOr(name, def string) string {
	if v, ok := os.LookupEnv(name); ok {
		return v
	}
	return def
}

// listFlag is a repeatable string flag. Values from the environment are
// the default; the first use on the command line replaces them.
type listFlag struct {
	values []string
	set    bool
}

func (l *listFlag) String() string { return strings.Join(l.values, ",") }

func (l *listFlag) Set(v string) error {
	if !l.set {
		l.values, l.set = nil, true
	}
	l.values = append(l.values, v)
	return nil
}

// splitList splits a comma-separated environment value, dropping blanks.
func splitList(v string) []string {
	var out []string
	for _, p := range strings.Split(v, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

// signingKeyFilesFromEnv reads CAIRN_SIGNING_KEY_FILES (comma-separated,
// primary first) or, if unset, CAIRN_SIGNING_KEY_FILE.
func signingKeyFilesFromEnv() []string {
	if v := os.Getenv("CAIRN_SIGNING_KEY_FILES"); v != "" {
		var out []string
		for _, p := range strings.Split(v, ",") {
			if p = strings.TrimSpace(p); p != "" {
				out = append(out, p)
			}
		}
		return out
	}
	if v := os.Getenv("CAIRN_SIGNING_KEY_FILE"); v != "" {
		return []string{v}
	}
	return nil
}

// durationEnv parses a duration environment variable; unset or empty is 0.
func durationEnv(name string) (time.Duration, error) {
	v := os.Getenv(name)
	if v == "" {
		return 0, nil
	}
	d, err := time.ParseDuration(v)
	if err != nil {
		return 0, usageError{fmt.Sprintf("%s: %v", name, err)}
	}
	return d, nil
}

// printJSON writes v as indented JSON, the --json output of every command.
func printJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	return enc.Encode(v)
}
