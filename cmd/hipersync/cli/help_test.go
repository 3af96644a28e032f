package cli

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/hipersync/hipersync/pkg/config"
)

// Every command and subcommand answers --help with its usage and flags,
// exit 0, touching nothing.
func TestHelpOnEveryCommandAndFlag(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		args []string
		want []string
	}{
		{[]string{"tenant", "--help"}, []string{"hipersync tenant connect", "--help for its flags"}},
		{[]string{"tenant", "settings", "--help"}, []string{"flags:", "-default-brand", "-update-images", "-catalog-interval"}},
		{[]string{"orders", "resolve", "-h"}, []string{"-hiper-id", "-resend"}},
		{[]string{"sync", "--help"}, []string{"-approve", "-full", "-product"}},
		{[]string{"events", "tail", "--help"}, []string{"-kind", "-follow", "-since"}},
		{[]string{"dlq", "list", "--help"}, []string{"-limit"}},
		{[]string{"status", "--help"}, []string{"-json", "-streams"}},
		{[]string{"dev", "--help"}, []string{"-console-addr", "-nats-port"}},
		{[]string{"version"}, []string{"hipersync ", "go1."}},
		{[]string{"--version"}, []string{"hipersync "}},
		{[]string{"completion", "bash"}, []string{"complete -F _hipersync hipersync", "tenant)", "settings"}},
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
