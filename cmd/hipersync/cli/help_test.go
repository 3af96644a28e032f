package cli

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/hipersync/hipersync/pkg/config"
)

// Every command and subcommand answers --help with its usage and flags,
// exit 0, touching nothing; completion scripts come from cobra.
func TestHelpOnEveryCommandAndFlag(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		args []string
		want []string
	}{
		{[]string{"tenant", "--help"}, []string{"hipersync tenant connect", `Use "hipersync tenant [command] --help"`}},
		{[]string{"tenant", "settings", "--help"}, []string{"Flags:", "--default-brand", "-update-images", "-catalog-interval"}},
		{[]string{"orders", "resolve", "-h"}, []string{"-hiper-id", "-resend"}},
		{[]string{"sync", "--help"}, []string{"-approve", "-full", "-product"}},
		{[]string{"events", "tail", "--help"}, []string{"-kind", "-follow", "-since"}},
		{[]string{"dlq", "list", "--help"}, []string{"-limit"}},
		{[]string{"status", "--help"}, []string{"-json", "-streams"}},
		{[]string{"dev", "--help"}, []string{"-console-addr", "-nats-port"}},
		{[]string{"version"}, []string{"hipersync ", "go1."}},
		{[]string{"--version"}, []string{"hipersync "}},
		{[]string{"completion", "bash"}, []string{"__start_hipersync", "complete -o default -F __start_hipersync hipersync"}},
		{[]string{"completion", "zsh"}, []string{"#compdef hipersync"}},
		{[]string{"completion", "fish"}, []string{"complete -c hipersync"}},
		// What the scripts ask: the subcommands of tenant, the flags of
		// tenant settings.
		{[]string{"__complete", "tenant", ""}, []string{"settings", "credentials", "disconnect"}},
		{[]string{"__complete", "tenant", "settings", "acme", "--update-"}, []string{"--update-images", "--update-brand"}},
		{[]string{"status", "--json", "--help"}, []string{"--streams"}},
	} {
		var out, errOut bytes.Buffer
		code := Run(context.Background(), Env{Stdout: &out, Stderr: &errOut, Getenv: config.Map(nil)}, tc.args)
		if code != 0 {
			t.Errorf("%v: exit %d, stderr %s", tc.args, code, errOut.String())
			continue
		}
		for _, w := range tc.want {
			if !strings.Contains(out.String(), w) {
				t.Errorf("%v: the output lacks %q:\n%s", tc.args, w, out.String())
			}
		}
	}
}
