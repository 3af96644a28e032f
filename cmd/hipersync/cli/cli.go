// Package cli is the hipersync operator CLI: every command of the README's
// "Operator CLI" section, on cobra (help on every command and flag, shell
// completion). Run is the whole program, so tests drive it as a user
// would: arguments in, output and exit code out.
package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/hipersync/hipersync/pkg/config"
	"github.com/hipersync/hipersync/services/console/admin"
)

// Env is what a command runs with.
type Env struct {
	Stdout io.Writer
	Stderr io.Writer
	Stdin  io.Reader
	Getenv config.Env
}

// app is one run of the CLI: the environment, and the flags every command
// shares.
type app struct {
	ctx    context.Context
	e      Env
	asJSON bool
}

const rootLong = `hipersync: operate a hipersync deployment. Every command takes --json.

The admin commands (tenant, status, sync, orders, events, dlq) talk to the
admin API at HIPERSYNC_API with the token HIPERSYNC_TOKEN (an API key or an
OIDC bearer token). Without HIPERSYNC_API they serve the same API in this
process, as an operator, over NATS at NATS_URL and token-broker at
TOKEN_BROKER_ADDR, and write the console's audit log as cli:<user>@<host>.
catalog, publish, provision and dev work on NATS directly. Exit codes:
0 done, 1 failed, 2 a mistake in the command line, 3 refused by the admin
API. A failed admin call prints the API's Portuguese text, its code in
brackets and the English message; with --json, a failure is one JSON
object on stderr (error, and from the admin API code and message).`

// root is the command tree.
func (a *app) root() *cobra.Command {
	root := &cobra.Command{
		Use:           "hipersync",
		Short:         "operate a hipersync deployment",
		Long:          rootLong,
		SilenceErrors: true,
		SilenceUsage:  true,
		// Completion scripts for bash, zsh, fish and powershell
		// (hipersync completion --help).
		CompletionOptions: cobra.CompletionOptions{HiddenDefaultCmd: false},
	}
	root.PersistentFlags().BoolVar(&a.asJSON, "json", false, "machine-readable output (JSON)")
	root.SetFlagErrorFunc(flagError)
	root.AddCommand(
		a.tenantCmd(),
		a.syncCmd(),
		a.catalogCmd(),
		a.statusCmd(),
		a.ordersCmd(),
		a.eventsCmd(),
		a.dlqCmd(),
		a.publishCmd(),
		a.provisionCmd(),
		a.devCmd(),
		a.versionCmd(),
	)
	return root
}

// Run runs the command in args (without the program name) and returns the
// process exit code: 0, 1 when the command failed, 2 for a mistake in the
// command line, 3 when the admin API refused the token or the tenant.
// Failures are one line on stderr.
func Run(ctx context.Context, e Env, args []string) int {
	a := &app{ctx: ctx, e: e}
	root := a.root()
	root.SetOut(e.Stdout)
	root.SetErr(e.Stderr)
	root.SetIn(e.Stdin)
	if len(args) == 0 {
		_ = root.Help()
		return 2
	}
	if args[0] == "--version" {
		args = append([]string{"version"}, args[1:]...)
	}
	if c, _, err := root.Find(args); err == nil {
		args = joinBoolValues(c, args)
	}
	root.SetArgs(args)
	err := root.ExecuteContext(ctx)
	if err == nil {
		return 0
	}
	var f apiFailure
	errors.As(err, &f)
	printFailure(e.Stderr, a.asJSON, oneLine(err), f.why)
	var u usageError
	switch {
	case errors.As(err, &u) || strings.HasPrefix(err.Error(), "unknown command"):
		return 2
	case f.refused:
		return exitRefused
	}
	return 1
}

func oneLine(err error) string { return strings.Join(strings.Fields(err.Error()), " ") }

// printFailure writes a failure to w on one line: with the admin API's
// code, its Portuguese text first, the code, then the English message; with
// --json, an object whose error is the message and, from the admin API,
// code and message the code and the Portuguese text.
func printFailure(w io.Writer, asJSON bool, msg string, why admin.Refusal) {
	if asJSON {
		b, _ := json.Marshal(struct {
			Error   string `json:"error"`
			Code    string `json:"code,omitempty"`
			Message string `json:"message,omitempty"`
		}{msg, why.Code, why.Text})
		fmt.Fprintln(w, string(b))
		return
	}
	switch {
	case why.Text != "":
		msg = fmt.Sprintf("%s [%s] (%s)", why.Text, why.Code, msg)
	case why.Code != "":
		msg = fmt.Sprintf("[%s] %s", why.Code, msg)
	}
	fmt.Fprintln(w, "hipersync:", msg)
}

// group is a command whose subcommands do the work; alone, or with an
// unknown subcommand, it is a usage error.
func group(use, short, usage string, subs ...*cobra.Command) *cobra.Command {
	c := &cobra.Command{Use: use, Short: short, Long: short + "\n\n" + usage,
		RunE: func(_ *cobra.Command, args []string) error {
			if len(args) == 0 {
				return usagef("%s: missing subcommand\n%s", use, usage)
			}
			return usagef("%s: unknown subcommand %q\n%s", use, args[0], usage)
		}}
	c.AddCommand(subs...)
	return c
}

// flagError is a mistake in a command's flags (exit 2); a flag of a
// sibling subcommand says which one takes it.
func flagError(c *cobra.Command, err error) error {
	path := strings.TrimPrefix(c.CommandPath(), "hipersync ")
	if name, ok := strings.CutPrefix(err.Error(), "unknown flag: --"); ok && c.HasParent() {
		for _, sib := range c.Parent().Commands() {
			if sib != c && sib.Flags().Lookup(name) != nil {
				return usagef("%s: %s flags go with %s (hipersync %s --%s)", path, sib.Name(), sib.Name(),
					strings.TrimPrefix(sib.CommandPath(), "hipersync "), name)
			}
		}
	}
	return usagef("%s: %v", path, err)
}

// usageError is a mistake in the command line (exit 2).
type usageError struct{ msg string }

func (u usageError) Error() string { return u.msg }

func usagef(format string, args ...any) error { return usageError{fmt.Sprintf(format, args...)} }

// joinBoolValues lets a boolean flag take its value as the next argument,
// as merchants type it: "--update-images false" reads as
// "--update-images=false" (pflag alone would take "false" for a positional
// argument and set the flag to true).
func joinBoolValues(c *cobra.Command, args []string) []string {
	lookup := func(name string) *pflag.Flag {
		if f := c.Flags().Lookup(name); f != nil {
			return f
		}
		return c.InheritedFlags().Lookup(name)
	}
	out := make([]string, 0, len(args))
	for i := 0; i < len(args); i++ {
		a := args[i]
		name := strings.TrimLeft(a, "-")
		if a == "--" {
			return append(out, args[i:]...)
		}
		if strings.HasPrefix(a, "-") && !strings.Contains(name, "=") && i+1 < len(args) {
			if f := lookup(name); f != nil && f.Value.Type() == "bool" {
				if _, err := strconv.ParseBool(args[i+1]); err == nil {
					out = append(out, "--"+name+"="+args[i+1])
					i++
					continue
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

func (p pairs) Type() string { return "KEY=VALUE" }

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

// noArgs is a command that takes no positional arguments.
func noArgs(name string) cobra.PositionalArgs {
	return func(_ *cobra.Command, args []string) error {
		if len(args) > 0 {
			return usagef("%s takes no arguments, got %q", name, args)
		}
		return nil
	}
}
