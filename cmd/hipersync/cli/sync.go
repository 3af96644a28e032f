package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"google.golang.org/protobuf/types/known/durationpb"

	adminv1 "github.com/hipersync/hipersync/pkg/gen/hipersync/admin/v1"
	"github.com/hipersync/hipersync/pkg/gen/hipersync/admin/v1/adminv1connect"
	"github.com/hipersync/hipersync/pkg/ops"
	"github.com/hipersync/hipersync/pkg/syncstatus"
	"github.com/hipersync/hipersync/pkg/tenant"
	"github.com/hipersync/hipersync/services/console/admin"
)

const syncUsage = `usage:
  hipersync sync <tenant> [--catalog] [--stock] [--full] [--approve] [--product ID ...] [--no-wait] [--timeout D]
    runs the tenant's catalog and stock polls now (only one with --catalog or --stock);
    --full re-reads the whole catalog, publishing only what really changed;
    --approve releases a mass change the guardrail holds;
    --product refreshes a product's stock from Hiper's stock endpoint (repeatable)`

// products is a repeatable --product flag.
type products []string

func (p *products) String() string { return strings.Join(*p, ",") }

func (p *products) Type() string { return "ID" }

func (p *products) Set(v string) error {
	for _, id := range strings.Split(v, ",") {
		if id = strings.TrimSpace(id); id != "" {
			*p = append(*p, id)
		}
	}
	return nil
}

// syncFlags are the flags of `sync`.
type syncFlags struct {
	catalog, stock, full, approve, noWait bool
	timeout                               time.Duration
	refresh                               products
}

func (a *app) syncCmd() *cobra.Command {
	c := &cobra.Command{Use: "sync <tenant>", Short: "run a catalog or stock sync now; approve a held mass change",
		Long: "run a catalog or stock sync now; approve a held mass change\n\n" + syncUsage}
	var f syncFlags
	fs := c.Flags()
	fs.BoolVar(&f.catalog, "catalog", false, "the catalog poll")
	fs.BoolVar(&f.stock, "stock", false, "the stock poll")
	fs.BoolVar(&f.full, "full", false, "a full resync")
	fs.BoolVar(&f.approve, "approve", false, "release a held mass change")
	fs.BoolVar(&f.noWait, "no-wait", false, "return once the sync is asked for")
	fs.DurationVar(&f.timeout, "timeout", 2*time.Minute, "how long to wait for the pollers")
	fs.Var(&f.refresh, "product", "refresh this product's stock (repeatable)")
	c.RunE = func(_ *cobra.Command, pos []string) error { return a.runSync(pos, f, a.asJSON) }
	return c
}

func (a *app) runSync(pos []string, f syncFlags, asJSON bool) error {
	ctx, e := a.ctx, a.e
	catalog, stock, full, approve, noWait, timeout, refresh := &f.catalog, &f.stock, &f.full, &f.approve, &f.noWait, &f.timeout, f.refresh
	if len(pos) != 1 {
		return usagef("sync: want one tenant, got %d arguments\n%s", len(pos), syncUsage)
	}
	id := pos[0]
	if err := tenant.ValidID(id); err != nil {
		return usagef("sync: %v", err)
	}
	if len(refresh) > 0 && *catalog {
		return usagef("sync: --product refreshes stock; it does not go with --catalog")
	}
	var kinds []syncstatus.Kind
	switch {
	case *catalog && *stock:
		kinds = []syncstatus.Kind{syncstatus.Catalog, syncstatus.Stock}
	case *catalog:
		kinds = []syncstatus.Kind{syncstatus.Catalog}
	case *stock, len(refresh) > 0:
		kinds = []syncstatus.Kind{syncstatus.Stock}
	}

	if *approve && (*full || len(refresh) > 0) {
		return usagef("sync: --approve releases what the guardrail holds; it goes alone, or with --catalog or --stock")
	}
	// The server waits up to timeout; the call a little longer, so the
	// answer (a timeout outcome) comes back rather than a dropped call.
	ctx, cancel := context.WithTimeout(ctx, *timeout+15*time.Second)
	defer cancel()
	c, err := a.admin(needs{})
	if err != nil {
		return err
	}
	defer c.Close()
	names := make([]string, 0, len(kinds))
	for _, k := range kinds {
		names = append(names, string(k))
	}
	if !asJSON && !*noWait {
		// Progress, as the pollers record it, while the call waits: read
		// from their status store, or asked of the console.
		watched := kinds
		if len(watched) == 0 {
			watched = syncstatus.Kinds
		}
		read := remoteViews(c.AdminServiceClient, id)
		if c.local != nil {
			read = localViews(c.local, id, watched)
		}
		stop := make(chan struct{})
		done := make(chan struct{})
		go func() {
			defer close(done)
			showProgress(ctx, e.Stderr, read, id, watched, 2*time.Second, stop)
		}()
		defer func() { close(stop); <-done }()
	}
	var got []*adminv1.SyncResult
	if *approve {
		resp, err := c.ApproveHeldChange(ctx, &adminv1.ApproveHeldChangeRequest{TenantId: id, Kinds: names, Wait: !*noWait,
			Timeout: durationpb.New(*timeout)})
		if err != nil {
			return apiError(err)
		}
		got = resp.GetResults()
	} else {
		resp, err := c.SyncNow(ctx, &adminv1.SyncNowRequest{TenantId: id, Kinds: names, Full: *full, Products: refresh,
			Wait: !*noWait, Timeout: durationpb.New(*timeout)})
		if err != nil {
			return apiError(err)
		}
		got = resp.GetResults()
	}
	results := make([]ops.SyncResult, 0, len(got))
	for _, r := range got {
		var res ops.SyncResult
		if err := json.Unmarshal([]byte(r.GetResultJson()), &res); err != nil {
			return fmt.Errorf("the admin API's %s result: %w", r.GetKind(), err)
		}
		results = append(results, res)
	}
	return reportSync(e, id, results, asJSON, *timeout)
}

func writeSyncTable(w io.Writer, id string, results []ops.SyncResult) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "TENANT\tKIND\tOUTCOME\tPUBLISHED\tCURSOR\tDETAIL")
	for _, r := range results {
		published, cursor, detail := "-", "-", ""
		if st := r.Status; st != nil {
			published, cursor = fmt.Sprint(st.LastPublished), fmt.Sprint(st.Cursor)
			switch r.Outcome {
			case "failed":
				detail = st.LastError
			case "held":
				detail = st.Held.Summary
			}
		}
		if r.Outcome == "requested" {
			detail = "request " + r.Request.ID
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", id, r.Kind, r.Outcome, published, cursor, detail)
	}
	return tw.Flush()
}

// syncViews reads a tenant's syncs for the progress lines: kinds absent
// have not been run by any poller yet.
type syncViews func(ctx context.Context) (map[string]*ops.SyncView, error)

// localViews reads the pollers' status store directly.
func localViews(s *streams, id string, kinds []syncstatus.Kind) syncViews {
	return func(ctx context.Context) (map[string]*ops.SyncView, error) {
		out := map[string]*ops.SyncView{}
		for _, k := range kinds {
			if st, ok, err := syncstatus.GetStatus(ctx, s.js, s.ns, id, k); err == nil && ok {
				out[string(k)] = ops.ViewOf(st, time.Now())
			}
		}
		return out, nil
	}
}

// remoteViews asks the console (HIPERSYNC_API) for the tenant's status.
func remoteViews(c adminv1connect.AdminServiceClient, id string) syncViews {
	return func(ctx context.Context) (map[string]*ops.SyncView, error) {
		resp, err := c.GetStatus(ctx, &adminv1.GetStatusRequest{TenantId: id})
		if err != nil {
			return nil, err
		}
		for _, ts := range resp.GetTenants() {
			if ts.GetTenantId() == id {
				return admin.TenantStatusOf(ts).Syncs, nil
			}
		}
		return map[string]*ops.SyncView{}, nil
	}
}

// showProgress prints, every so often until stop, how the tenant's syncs
// are going, so a long run (a full resync of a large catalog) is not silent.
// A read that fails (the console out of reach for a moment) prints nothing.
func showProgress(ctx context.Context, w io.Writer, read syncViews, id string, kinds []syncstatus.Kind, every time.Duration, stop <-chan struct{}) {
	t := time.NewTicker(every)
	defer t.Stop()
	began := time.Now()
	for {
		select {
		case <-stop:
			return
		case <-ctx.Done():
			return
		case <-t.C:
		}
		views, err := read(ctx)
		if err != nil {
			continue
		}
		parts := make([]string, 0, len(kinds))
		for _, k := range kinds {
			parts = append(parts, ops.Progress(id, k, views[string(k)]))
		}
		fmt.Fprintf(w, "%s  %s\n", time.Since(began).Round(time.Second), strings.Join(parts, "; "))
	}
}

// reportSync prints what a sync request came to, as a table or JSON, and
// fails when a kind failed or did not finish within timeout.
func reportSync(e Env, id string, results []ops.SyncResult, asJSON bool, timeout time.Duration) error {
	if asJSON {
		if err := writeJSON(e.Stdout, results); err != nil {
			return err
		}
	} else if err := writeSyncTable(e.Stdout, id, results); err != nil {
		return err
	}
	if failed := ops.Failures(results, timeout); failed != "" {
		return errors.New(failed)
	}
	return nil
}
