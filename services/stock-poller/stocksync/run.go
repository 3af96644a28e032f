// Package stocksync is the stock-poller: for every active tenant, on one
// replica at a time, it publishes stock.changed when a product's quantity or
// minimum changes — and only then.
//
// It notices changes without one Hiper call per product per interval: any
// stock change moves the product's sync point in Hiper's product feed, which
// carries quantidadeEmEstoque and quantidadeMinimaEmEstoque, so the poller
// follows the feed by a cursor of its own and compares each product it
// brings with the level it last published. The per-product stock endpoint
// serves targeted refreshes only: products named in a sync request
// (`hipersync sync <tenant> --stock --product ID`, or a service asking for a
// product named in an order). docs/sync.md explains the choice.
package stocksync

import (
	"context"
	"io"

	"github.com/hipersync/hipersync/pkg/config"
	"github.com/hipersync/hipersync/pkg/feed"
	"github.com/hipersync/hipersync/pkg/poller"
	"github.com/hipersync/hipersync/pkg/schedule"
	"github.com/hipersync/hipersync/pkg/syncstatus"
	"github.com/hipersync/hipersync/pkg/tenant"
)

// Service is the service's name, in logs and in ce-source.
const Service = "stock-poller"

// StateBucket (before the namespace) holds the stock level last published
// of each product, under "<tenant>.<product id>".
const StateBucket = "stock_state"

// Start provisions the stock-poller's bucket and returns its scheduler,
// which the caller runs. The dev run and tests start it in-process.
func Start(ctx context.Context, d poller.Deps) (*schedule.Scheduler, error) {
	return feed.Start(ctx, d, feed.Poller{
		Service:          Service,
		Kind:             syncstatus.Stock,
		StateBucket:      StateBucket,
		StateDescription: "hipersync: <tenant>.<product id> → the stock level last published (quantity|minimum)",
		NewProcessor: func(r *schedule.Run, states *feed.States) feed.Processor {
			return &processor{tenant: r.Tenant, settings: r.Settings, ns: d.Namespace, states: states}
		},
		Refresh: refresh(d.Namespace),
		// Seed 004's "Sincronizar Estoque" switch.
		Enabled: func(s tenant.Settings) bool { return !s.GetStockSyncOff() },
	})
}

// Main runs the stock-poller until ctx is done (README, "Configuration").
func Main(ctx context.Context, getenv config.Env, logOut io.Writer) error {
	return poller.Main(ctx, Service, getenv, logOut, Start)
}
