package cli

import (
	"context"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/hipersync/hipersync/pkg/events"
	"github.com/hipersync/hipersync/pkg/tenant"
	"github.com/hipersync/hipersync/services/console/admin"
)

// provisioned is one line of `provision`.
type provisioned struct {
	Stream string `json:"stream"`
	Action string `json:"action"`
}

// runProvision creates or updates the namespace's streams, the tenants
// bucket and the console's audit stream with this environment's settings, once: a Kubernetes Job or an
// init step for upgrades that change stream limits or replicas
// (docs/operations.md, "Provisioning").
func (a *app) provisionCmd() *cobra.Command {
	c := &cobra.Command{Use: "provision", Short: "create or update the streams with this environment's settings (a Job for upgrades)",
		Args: noArgs("provision")}
	timeout := c.Flags().Duration("timeout", 2*time.Minute, "how long to retry while JetStream cannot be reached")
	c.RunE = func(*cobra.Command, []string) error { return runProvision(a.ctx, a.e, *timeout, a.asJSON) }
	return c
}

func runProvision(ctx context.Context, e Env, timeout time.Duration, asJSON bool) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	s, err := connectNATS(e)
	if err != nil {
		return err
	}
	defer s.Close()
	var done []provisioned
	if err := events.EnsureStreams(ctx, s.js, s.ns, events.WithReport(func(stream, action string) {
		done = append(done, provisioned{stream, action})
	})); err != nil {
		return err
	}
	if _, err := events.EnsureKV(ctx, s.js, s.ns, tenant.Bucket); err != nil {
		return err
	}
	done = append(done, provisioned{"KV_" + s.ns.Bucket(tenant.Bucket), "ensured"})
	// The console's audit log, so a new bound applies before the console
	// rolls too.
	if _, err := admin.EnsureAuditStream(ctx, s.js, s.ns); err != nil {
		return err
	}
	done = append(done, provisioned{s.ns.Stream(admin.AuditStream), "ensured"})
	if asJSON {
		return writeJSON(e.Stdout, done)
	}
	tw := tabwriter.NewWriter(e.Stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "STREAM\tACTION")
	for _, p := range done {
		fmt.Fprintf(tw, "%s\t%s\n", p.Stream, p.Action)
	}
	return tw.Flush()
}

// printUsage writes the streams' and buckets' size against their bounds.
func printUsage(w io.Writer, usage []events.StreamUsage) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "STREAM\tMESSAGES\tSIZE\tBOUND\tUSED\tMAX AGE\tREPLICAS")
	for _, u := range usage {
		bound, used := "none", "-"
		if u.MaxBytes > 0 {
			bound, used = size(u.MaxBytes), fmt.Sprintf("%.0f%%", 100*u.Used())
			if u.Used() >= 0.8 {
				used += " HIGH"
			}
		}
		age := "none"
		if u.MaxAge > 0 {
			age = roundAge(u.MaxAge)
		}
		fmt.Fprintf(tw, "%s\t%d\t%s\t%s\t%s\t%s\t%d\n", u.Stream, u.Messages, size(int64(u.Bytes)), bound, used, age, u.Replicas)
	}
	return tw.Flush()
}

// size is n bytes in the largest binary unit that keeps it at least 1.
func size(n int64) string {
	units := []string{"B", "KiB", "MiB", "GiB", "TiB"}
	f, i := float64(n), 0
	for f >= 1024 && i < len(units)-1 {
		f /= 1024
		i++
	}
	s := fmt.Sprintf("%.1f", f)
	return strings.TrimSuffix(s, ".0") + units[i]
}
