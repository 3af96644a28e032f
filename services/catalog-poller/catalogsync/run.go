// Package catalogsync is the catalog-poller: for every active tenant, on one
// replica at a time, it follows Hiper's product feed, applies the tenant's
// catalog rules and publishes what really changed (catalog.product.upserted,
// catalog.product.skipped, catalog.price.changed, catalog.guard.held), and
// keeps the barcode index (pkg/catalog) the order-forwarder reads. The
// scheduling is pkg/schedule's and the feed handling pkg/feed's; the rules
// are this package's own.
package catalogsync

import (
	"context"
	"io"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/hipersync/hipersync/pkg/catalog"
	"github.com/hipersync/hipersync/pkg/config"
	"github.com/hipersync/hipersync/pkg/events"
	"github.com/hipersync/hipersync/pkg/feed"
	"github.com/hipersync/hipersync/pkg/poller"
	"github.com/hipersync/hipersync/pkg/schedule"
	"github.com/hipersync/hipersync/pkg/syncstatus"
)

// Service is the service's name, in logs and in ce-source.
const Service = "catalog-poller"

// StateBucket (before the namespace) holds what the catalog-poller last
// published of each product: one record per product family (a product with
// variations and its variations, under the parent's id) or per product
// without variations, under "<tenant>.<record>".
const StateBucket = "catalog_state"

// Start provisions the catalog-poller's buckets and returns its scheduler,
// which the caller runs. The dev run and tests start it in-process.
func Start(ctx context.Context, d poller.Deps) (*schedule.Scheduler, error) {
	return feed.Start(ctx, d, feed.Poller{
		Service:          Service,
		Kind:             syncstatus.Catalog,
		StateBucket:      StateBucket,
		StateDescription: "hipersync: <tenant>.<product or parent id> → what the catalog-poller last published of the product (family)",
		Provision: func(ctx context.Context, js jetstream.JetStream, ns events.Namespace) error {
			_, err := catalog.EnsureIndex(ctx, js, ns)
			return err
		},
		NewProcessor: func(r *schedule.Run, states *feed.States) feed.Processor {
			p := &processor{
				tenant: r.Tenant, settings: r.Settings, allowed: allowed(r.Settings),
				ns: d.Namespace, states: states, indexBucket: d.Namespace.Bucket(catalog.IndexBucket),
				reset: feed.Resetting(r),
			}
			if feed.FullPass(r) {
				p.seen = map[string]bool{}
			}
			if r.Request != nil {
				p.unlink = r.Request.Unlink
			}
			return p
		},
	})
}

// Main runs the catalog-poller until ctx is done (README, "Configuration").
func Main(ctx context.Context, getenv config.Env, logOut io.Writer) error {
	return poller.Main(ctx, Service, getenv, logOut, Start)
}
