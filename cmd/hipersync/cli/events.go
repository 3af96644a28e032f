package cli

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/hipersync/hipersync/pkg/ops"
	"github.com/hipersync/hipersync/pkg/tenant"
)

const eventsUsage = `usage:
  hipersync events tail [--tenant T] [--kind K] [--since DURATION] [--until TIME] [--outcome ok|failed]
      [--order ID] [--product ID] [--source store|hiper|all] [--follow]
    K is a kind such as order.accepted, or a prefix such as order.> or catalog.>;
    TIME is RFC 3339 (2026-05-28T18:00:00Z) or a duration ago (30m)`

func runEvents(ctx context.Context, e Env, args []string) error {
	if len(args) == 0 || args[0] != "tail" {
		return usagef("events: want `events tail`\n%s", eventsUsage)
	}
	fs := flag.NewFlagSet("events tail", flag.ContinueOnError)
	asJSON := fs.Bool("json", false, "one JSON object a line")
	tenantID := fs.String("tenant", "", "only this tenant")
	kind := fs.String("kind", "", "only this kind (order.accepted) or prefix (order.>)")
	since := fs.Duration("since", time.Hour, "how far back to start")
	source := fs.String("source", "all", "store (what stores sent), hiper (what hipersync published) or all")
	follow := fs.Bool("follow", false, "keep printing new events until interrupted")
	lf := logFilterFlags(fs)
	pos, err := parse(fs, args[1:])
	if err != nil {
		return err
	}
	if len(pos) != 0 {
		return usagef("events tail takes no arguments\n%s", eventsUsage)
	}
	if *tenantID != "" {
		if err := tenant.ValidID(*tenantID); err != nil {
			return usagef("--tenant: %v", err)
		}
	}
	sources, err := ops.ParseSource(*source)
	if err != nil {
		return usagef("--source: %v", err)
	}

	s, err := connectNATS(e)
	if err != nil {
		return err
	}
	defer s.Close()
	f := ops.LogFilter{Tenant: *tenantID, Kind: *kind, Start: time.Now().Add(-*since), Sources: sources}
	if err := lf.apply(&f); err != nil {
		return err
	}
	print := printer(e.Stdout, *asJSON)
	if *follow {
		return ops.FollowLog(ctx, s.js, s.ns, f, print)
	}
	lines, err := ops.ReadLog(ctx, s.js, s.ns, f)
	if err != nil {
		return err
	}
	for _, l := range lines {
		print(l)
	}
	if len(lines) == 0 && !*asJSON {
		fmt.Fprintf(e.Stdout, "no events since %s\n", f.Start.Format(time.RFC3339))
	}
	return nil
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

func logFilterFlags(fs *flag.FlagSet) *logFilters {
	return &logFilters{
		until:   fs.String("until", "", "only events up to this time (RFC 3339, or a duration ago such as 30m)"),
		outcome: fs.String("outcome", "", "only hipersync's events of this outcome: ok or failed"),
		order:   fs.String("order", "", "only events about this store order id"),
		product: fs.String("product", "", "only events about this Hiper product id"),
	}
}

func (lf *logFilters) apply(f *ops.LogFilter) error {
	if v := *lf.until; v != "" {
		if d, err := time.ParseDuration(v); err == nil {
			f.Until = time.Now().Add(-d)
		} else if t, err := time.Parse(time.RFC3339, v); err == nil {
			f.Until = t
		} else {
			return usagef("--until %s: want RFC 3339 (2026-05-28T18:00:00Z) or a duration such as 30m", v)
		}
	}
	outcome, err := ops.ParseOutcome(*lf.outcome)
	if err != nil {
		return usagef("--outcome: %v", err)
	}
	f.Outcome, f.Order, f.Product = outcome, *lf.order, *lf.product
	return nil
}
