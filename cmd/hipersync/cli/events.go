package cli

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/hipersync/hipersync/pkg/events"
	adminv1 "github.com/hipersync/hipersync/pkg/gen/hipersync/admin/v1"
	"github.com/hipersync/hipersync/pkg/ops"
	"github.com/hipersync/hipersync/pkg/tenant"
	"github.com/hipersync/hipersync/services/console/admin"
)

const eventsUsage = `usage:
  hipersync events tail [--tenant T] [--kind K] [--since DURATION] [--until TIME] [--outcome ok|failed]
      [--order ID] [--product ID] [--source store|hiper|all] [--follow] [--reveal]
    K is a kind such as order.accepted, or a prefix such as order.> or catalog.>;
    TIME is RFC 3339 (2026-05-28T18:00:00Z) or a duration ago (30m);
    a store order's customer data (CPF/CNPJ, e-mail, names, addresses, notes) is
    masked in --json unless --reveal (written to the audit log), and never in a text line`

// tailFlags are the flags of `events tail`.
type tailFlags struct {
	tenant, kind, source string
	since                time.Duration
	follow, reveal       bool
	lf                   *logFilters
}

func (a *app) eventsCmd() *cobra.Command {
	c := &cobra.Command{Use: "tail", Short: "print the sync log (--json: one JSON object a line); --follow keeps printing",
		Long: "print the sync log: what stores sent and what hipersync published\n\n" + eventsUsage, Args: noArgs("events tail")}
	var f tailFlags
	fs := c.Flags()
	fs.StringVar(&f.tenant, "tenant", "", "only this tenant")
	fs.StringVar(&f.kind, "kind", "", "only this kind (order.accepted) or prefix (order.>)")
	fs.DurationVar(&f.since, "since", time.Hour, "how far back to start")
	fs.StringVar(&f.source, "source", "all", "store (what stores sent), hiper (what hipersync published) or all")
	fs.BoolVar(&f.follow, "follow", false, "keep printing new events until interrupted")
	fs.BoolVar(&f.reveal, "reveal", false, "with --json, print a store order's customer data as sent (personal data; masked otherwise; written to the audit log)")
	f.lf = logFilterFlags(fs)
	c.RunE = func(*cobra.Command, []string) error { return a.runEvents(f, a.asJSON) }
	return group("events", "tail the sync log", eventsUsage, c)
}

func (a *app) runEvents(fl tailFlags, asJSON bool) error {
	ctx, e := a.ctx, a.e
	tenantID, kind, since, source, follow, lf := &fl.tenant, &fl.kind, &fl.since, &fl.source, &fl.follow, fl.lf
	if *tenantID != "" {
		if err := tenant.ValidID(*tenantID); err != nil {
			return usagef("--tenant: %v", err)
		}
	}
	sources, err := ops.ParseSource(*source)
	if err != nil {
		return usagef("--source: %v", err)
	}

	f := &adminv1.EventFilter{TenantId: *tenantID, Kind: *kind, Since: durationpb.New(*since), Source: sourceOf(sources), Reveal: fl.reveal}
	if err := lf.apply(f); err != nil {
		return err
	}
	c, err := a.admin(needs{})
	if err != nil {
		return err
	}
	defer c.Close()
	print := printer(e.Stdout, asJSON)
	if *follow {
		// Until interrupted: the end of ctx is the normal end.
		stream, err := c.StreamEvents(ctx, &adminv1.StreamEventsRequest{Filter: f})
		if err != nil && ctx.Err() == nil {
			return apiError(err)
		}
		if err != nil {
			return nil
		}
		defer stream.Close()
		for stream.Receive() {
			print(admin.LogLine(stream.Msg().GetEvent()))
		}
		if err := stream.Err(); err != nil && ctx.Err() == nil {
			return apiError(err)
		}
		return nil
	}
	resp, err := c.QueryEvents(ctx, &adminv1.QueryEventsRequest{Filter: f, Limit: math.MaxInt32})
	if err != nil {
		return apiError(err)
	}
	for _, l := range resp.GetEvents() {
		print(admin.LogLine(l))
	}
	if len(resp.GetEvents()) == 0 && !asJSON {
		fmt.Fprintf(e.Stdout, "no events since %s\n", time.Now().Add(-*since).Format(time.RFC3339))
	}
	return nil
}

// sourceOf is the API's name of the sources --source names.
func sourceOf(sources []events.Source) adminv1.EventSource {
	if len(sources) != 1 {
		return adminv1.EventSource_EVENT_SOURCE_UNSPECIFIED
	}
	if sources[0] == events.SourceStore {
		return adminv1.EventSource_EVENT_SOURCE_STORE
	}
	return adminv1.EventSource_EVENT_SOURCE_HIPER
}

func printer(w io.Writer, asJSON bool) func(ops.LogLine) {
	if asJSON {
		enc := json.NewEncoder(w)
		return func(l ops.LogLine) { _ = enc.Encode(l) }
	}
	return func(l ops.LogLine) {
		what := l.Summary
		if l.Error != "" {
			what = "undecodable: " + l.Error
		}
		fmt.Fprintf(w, "%s  %-12s  %-26s  %s\n", l.Time.UTC().Format(time.RFC3339), l.Tenant, l.Kind, strings.TrimSpace(what))
	}
}

// logFilters are the sync log filters of seed 004 ("realizar os filtros de
// consulta"): up to when, by outcome, by order, by product.
type logFilters struct {
	until, outcome, order, product *string
}

func logFilterFlags(fs *pflag.FlagSet) *logFilters {
	return &logFilters{
		until:   fs.String("until", "", "only events up to this time (RFC 3339, or a duration ago such as 30m)"),
		outcome: fs.String("outcome", "", "only hipersync's events of this outcome: ok or failed"),
		order:   fs.String("order", "", "only events about this store order id"),
		product: fs.String("product", "", "only events about this Hiper product id"),
	}
}

func (lf *logFilters) apply(f *adminv1.EventFilter) error {
	if v := *lf.until; v != "" {
		if d, err := time.ParseDuration(v); err == nil {
			f.Until = timestamppb.New(time.Now().Add(-d))
		} else if t, err := time.Parse(time.RFC3339, v); err == nil {
			f.Until = timestamppb.New(t)
		} else {
			return usagef("--until %s: want RFC 3339 (2026-05-28T18:00:00Z) or a duration such as 30m", v)
		}
	}
	outcome, err := ops.ParseOutcome(*lf.outcome)
	if err != nil {
		return usagef("--outcome: %v", err)
	}
	f.Outcome, f.OrderId, f.ProductId = outcome, *lf.order, *lf.product
	return nil
}
