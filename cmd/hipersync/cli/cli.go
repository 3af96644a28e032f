// Package cli is the hipersync operator CLI: every command of the README's
// "Operator CLI" section. Run is the whole program, so tests drive it as a
// user would: arguments in, output and exit code out.
package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"

	"github.com/hipersync/hipersync/pkg/config"
)

// Env is what a command runs with.
type Env struct {
	Stdout io.Writer
	Stderr io.Writer
	Stdin  io.Reader
	Getenv config.Env
}

type command struct {
	name    string
	summary string
	run     func(ctx context.Context, e Env, args []string) error
}

func commands() []command {
	return []command{
		{"tenant", "connect, list, show, pause, resume, disconnect stores; change their settings", runTenant},
		{"sync", "run a catalog or stock sync now; approve a held mass change", runSync},
		{"catalog", "unlink a product or reset a store's catalogue, so they are published anew", runCatalog},
		{"status", "per tenant: state, last sync per kind, lag, last error", runStatus},
		{"orders", "list, show and resolve orders", runOrders},
		{"events", "tail the sync log", runEvents},
		{"dlq", "list and retry dead letters", runDLQ},
		{"publish", "publish a JSON event as a store's plain NATS client would", runPublish},
		{"provision", "create or update the streams with this environment's settings (a Job for upgrades)", runProvision},
		{"dev", "the whole system on this machine (what `make run` runs)", runDev},
		{"version", "print hipersync's version and build", runVersion},
		{"completion", "print a bash completion script (source <(hipersync completion bash))", runCompletion},
	}
}

// Run runs the command in args (without the program name) and returns the
// process exit code. Failures are one line on stderr.
func Run(ctx context.Context, e Env, args []string) int {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		usage(e.Stdout)
		if len(args) == 0 {
			return 2
		}
		return 0
	}
	if args[0] == "--version" {
		args[0] = "version"
	}
	for _, c := range commands() {
		if c.name == args[0] {
			if u, ok := usages[c.name]; ok && len(args) > 1 && isHelp(args[1]) {
				fmt.Fprintf(e.Stdout, "hipersync %s: %s\n\n%s\n\nEach subcommand takes --help for its flags.\n", c.name, c.summary, u)
				return 0
			}
			if err := c.run(ctx, e, args[1:]); err != nil {
				var h helpRequest
				if errors.As(err, &h) {
					h.print(e.Stdout, c)
					return 0
				}
				if errors.Is(err, flag.ErrHelp) {
					return 0
				}
				fmt.Fprintln(e.Stderr, "hipersync:", oneLine(err))
				var u usageError
				if errors.As(err, &u) {
					return 2
				}
				return 1
			}
			return 0
		}
	}
	fmt.Fprintf(e.Stderr, "hipersync: unknown command %q (see hipersync --help)\n", args[0])
	return 2
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "hipersync: operate a hipersync deployment. Every command takes --json.")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "commands:")
	for _, c := range commands() {
		fmt.Fprintf(w, "  %-9s %s\n", c.name, c.summary)
	}
	fmt.Fprintln(w)
	fmt.Fprintln(w, "It reaches token-broker at TOKEN_BROKER_ADDR and NATS at NATS_URL.")
}

func oneLine(err error) string { return strings.Join(strings.Fields(err.Error()), " ") }

// usages are the commands' usage texts.
var usages = map[string]string{
	"tenant": tenantUsage, "sync": syncUsage, "catalog": catalogUsage, "orders": ordersUsage,
	"events": eventsUsage, "dlq": dlqUsage, "publish": publishUsage,
}

func isHelp(arg string) bool { return arg == "-h" || arg == "--help" || arg == "help" }

// helpRequest is --help given to a command: Run prints the command's usage
// and every flag it takes, and exits 0.
type helpRequest struct{ fs *flag.FlagSet }

func (h helpRequest) Error() string { return "help requested" }
func (h helpRequest) Unwrap() error { return flag.ErrHelp }

func (h helpRequest) print(w io.Writer, c command) {
	fmt.Fprintf(w, "hipersync %s: %s\n\n", h.fs.Name(), c.summary)
	if u, ok := usages[c.name]; ok {
		fmt.Fprintf(w, "%s\n\n", u)
	}
	fmt.Fprintln(w, "flags:")
	h.fs.SetOutput(w)
	h.fs.PrintDefaults()
}

// usageError is a mistake in the command line (exit 2).
type usageError struct{ msg string }

func (u usageError) Error() string { return u.msg }

func usagef(format string, args ...any) error { return usageError{fmt.Sprintf(format, args...)} }

// parse parses flags anywhere among args ("connect acme --key-file k" and
// "connect --key-file k acme" alike) and returns the positional arguments.
func parse(fs *flag.FlagSet, args []string) ([]string, error) {
	fs.SetOutput(io.Discard)
	args = joinBoolValues(fs, args)
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return nil, helpRequest{fs}
			}
			return nil, usagef("%s: %v", fs.Name(), err)
		}
		args = fs.Args()
		if len(args) == 0 {
			return pos, nil
		}
		pos = append(pos, args[0])
		args = args[1:]
	}
}

// joinBoolValues lets a boolean flag take its value as the next argument,
// as merchants type it: "--update-images false" reads as
// "--update-images=false" (the flag package alone would take "false" for a
// positional argument and set the flag to true).
func joinBoolValues(fs *flag.FlagSet, args []string) []string {
	out := make([]string, 0, len(args))
	for i := 0; i < len(args); i++ {
		a := args[i]
		name := strings.TrimLeft(a, "-")
		if a == "--" {
			return append(out, args[i:]...)
		}
		if strings.HasPrefix(a, "-") && !strings.Contains(name, "=") && i+1 < len(args) {
			if f := fs.Lookup(name); f != nil {
				if b, ok := f.Value.(interface{ IsBoolFlag() bool }); ok && b.IsBoolFlag() {
					if _, err := strconv.ParseBool(args[i+1]); err == nil {
						out = append(out, a+"="+args[i+1])
						i++
						continue
					}
				}
			}
		}
		out = append(out, a)
	}
	return out
}

// pairs is a repeatable KEY=VALUE flag.
type pairs map[string]string

func (p pairs) String() string {
	keys := make([]string, 0, len(p))
	for k := range p {
		keys = append(keys, k+"="+p[k])
	}
	sort.Strings(keys)
	return strings.Join(keys, ",")
}

// Set takes KEY=VALUE[,KEY=VALUE…]; KEY= (no value) names a key to remove.
func (p pairs) Set(v string) error {
	for _, item := range strings.Split(v, ",") {
		k, val, ok := strings.Cut(strings.TrimSpace(item), "=")
		if !ok || k == "" {
			return fmt.Errorf("want KEY=VALUE, got %q", item)
		}
		p[strings.ToUpper(strings.TrimSpace(k))] = strings.TrimSpace(val)
	}
	return nil
}
