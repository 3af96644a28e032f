package cli

import (
	"fmt"
	"runtime"
	"runtime/debug"

	"github.com/spf13/cobra"
)

func (a *app) versionCmd() *cobra.Command {
	return &cobra.Command{Use: "version", Short: "print hipersync's version and build (also: hipersync --version)",
		Args: noArgs("version"), RunE: func(*cobra.Command, []string) error { return runVersion(a.e, a.asJSON) }}
}

// runVersion prints the module version and the commit the binary was built
// from, as Go records them.
func runVersion(e Env, asJSON bool) error {
	v := map[string]string{"version": "(devel)", "go": runtime.Version()}
	if bi, ok := debug.ReadBuildInfo(); ok {
		if bi.Main.Version != "" {
			v["version"] = bi.Main.Version
		}
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				v["commit"] = s.Value
			case "vcs.time":
				v["built"] = s.Value
			case "vcs.modified":
				v["modified"] = s.Value
			}
		}
	}
	if asJSON {
		return writeJSON(e.Stdout, v)
	}
	fmt.Fprintf(e.Stdout, "hipersync %s (%s", v["version"], v["go"])
	if c := v["commit"]; c != "" {
		fmt.Fprintf(e.Stdout, ", commit %.12s", c)
		if v["modified"] == "true" {
			fmt.Fprint(e.Stdout, "+dirty")
		}
	}
	fmt.Fprintln(e.Stdout, ")")
	return nil
}
