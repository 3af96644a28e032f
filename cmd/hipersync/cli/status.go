package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/hipersync/hipersync/pkg/events"
	adminv1 "github.com/hipersync/hipersync/pkg/gen/hipersync/admin/v1"
	"github.com/hipersync/hipersync/pkg/ops"
	"github.com/hipersync/hipersync/services/console/admin"
)

// statusKinds are the columns of `status`, in order.
var statusKinds = ops.StatusKinds

func (a *app) statusCmd() *cobra.Command {
	c := &cobra.Command{Use: "status [tenant]", Short: "per tenant: state, last sync per kind, lag, last error; the streams' usage",
		Long: `per tenant: state, last sync per kind against its interval, Hiper's health, the last error;
without a tenant, also how full each stream and bucket is (--streams: only that)`}
	onlyStreams := c.Flags().Bool("streams", false, "only the streams' and buckets' usage against their bounds")
	c.RunE = func(_ *cobra.Command, pos []string) error { return a.runStatus(pos, *onlyStreams, a.asJSON) }
	return c
}

func (a *app) runStatus(pos []string, onlyStreams, asJSON bool) error {
	ctx, e := a.ctx, a.e
	if len(pos) > 1 || onlyStreams && len(pos) > 0 {
		return usagef("usage: hipersync status [tenant] | hipersync status --streams")
	}
	ctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	c, err := a.admin(needs{})
	if err != nil {
		return err
	}
	defer c.Close()
	if onlyStreams {
		usage, err := streamUsage(ctx, c)
		if err != nil {
			return err
		}
		if asJSON {
			return writeJSON(e.Stdout, usage)
		}
		return printUsage(e.Stdout, usage)
	}
	now := time.Now()
	req := &adminv1.GetStatusRequest{}
	if len(pos) == 1 {
		req.TenantId = pos[0]
	}
	resp, err := c.GetStatus(ctx, req)
	if err != nil {
		return apiError(err)
	}
	views := make([]ops.TenantStatus, 0, len(resp.GetTenants()))
	for _, ts := range resp.GetTenants() {
		views = append(views, admin.TenantStatusOf(ts))
	}
	if asJSON {
		return writeJSON(e.Stdout, views)
	}
	if len(views) == 0 {
		fmt.Fprintln(e.Stdout, "no tenants yet: connect one with `hipersync tenant connect <tenant> --key-file FILE`")
	} else if err := printTenants(e.Stdout, views, now); err != nil {
		return err
	}
	if len(pos) == 0 {
		// The whole deployment: how full its streams are (operators
		// only; a store's key sees its own status alone).
		usage, err := streamUsage(ctx, c)
		var f apiFailure
		if errors.As(err, &f) && f.refused {
			return nil
		}
		if err != nil {
			return err
		}
		fmt.Fprintln(e.Stdout)
		return printUsage(e.Stdout, usage)
	}
	return nil
}

func streamUsage(ctx context.Context, c *adminAPI) ([]events.StreamUsage, error) {
	resp, err := c.GetStreamUsage(ctx, &adminv1.GetStreamUsageRequest{})
	if err != nil {
		return nil, fmt.Errorf("read stream usage: %w", apiError(err))
	}
	usage := make([]events.StreamUsage, 0, len(resp.GetStreams()))
	for _, u := range resp.GetStreams() {
		usage = append(usage, admin.StreamUsageOf(u))
	}
	return usage, nil
}

// printTenants writes one line per tenant: state, syncs, last error.
func printTenants(w io.Writer, views []ops.TenantStatus, now time.Time) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	header := []string{"TENANT", "STATE"}
	for _, k := range statusKinds {
		header = append(header, strings.ToUpper(string(k)))
	}
	fmt.Fprintln(tw, strings.Join(append(header, "HIPER", "LAST ERROR"), "\t"))
	for _, v := range views {
		state := v.State
		if v.StateReasonCode != "" {
			state += " (" + v.StateReasonCode + ")"
		}
		cols := []string{v.Tenant, state}
		lastErr, lastAt := "", time.Time{}
		for _, k := range statusKinds {
			sv := v.Syncs[string(k)]
			cols = append(cols, describe(sv))
			if sv != nil && sv.LastError != "" && sv.LastErrorAt != nil && sv.LastErrorAt.After(lastAt) {
				lastErr, lastAt = string(k)+": "+sv.LastError, *sv.LastErrorAt
			}
		}
		if lastErr != "" {
			lastErr = fmt.Sprintf("%s ago, %s", roundAge(now.Sub(lastAt)), lastErr)
		}
		fmt.Fprintln(tw, strings.Join(append(cols, hiperCell(v.HiperOutage, now), oneLineCut(lastErr, 100)), "\t"))
	}
	return tw.Flush()
}

// hiperCell says whether the order-forwarder finds Hiper answering.
func hiperCell(o *ops.Outage, now time.Time) string {
	if o == nil {
		return "ok"
	}
	cell := fmt.Sprintf("down %s (%s): orders wait", roundAge(now.Sub(o.Since)), oneLineCut(o.LastError, 60))
	if o.Scope == ops.ScopeTenant {
		cell = "account " + cell
	}
	return cell
}

// describe is one sync's cell: how long ago it last succeeded against its
// interval, and whether something needs a person.
func describe(v *ops.SyncView) string {
	if v == nil {
		return "never"
	}
	var b strings.Builder
	switch {
	case v.LastSuccessAt == nil:
		b.WriteString("never ok")
	default:
		b.WriteString(roundAge(time.Duration(v.LagSeconds*float64(time.Second))) + " ago")
	}
	switch {
	case v.ExpectInterval != "" && v.Interval != "":
		// Invoices: orders expecting theirs, then the others' ceiling.
		b.WriteString(" /" + v.ExpectInterval + " expecting, " + v.Interval)
	case v.Interval != "":
		b.WriteString(" /" + v.Interval)
	}
	switch {
	case v.Held != "":
		b.WriteString(" HELD")
	case v.Stale:
		b.WriteString(" STALE")
	case v.Running:
		b.WriteString(" running")
	}
	return b.String()
}

func roundAge(d time.Duration) string {
	switch {
	case d < time.Minute:
		return d.Round(time.Second).String()
	case d < time.Hour:
		return d.Round(time.Minute).String()
	default:
		return d.Round(time.Hour).String()
	}
}

func oneLineCut(s string, n int) string {
	s = strings.Join(strings.Fields(s), " ")
	if len(s) > n {
		return s[:n-1] + "…"
	}
	return s
}
