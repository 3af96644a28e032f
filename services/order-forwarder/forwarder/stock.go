package forwarder

import (
	"context"
	"slices"

	"github.com/hipersync/hipersync/pkg/hiper"
	"github.com/hipersync/hipersync/pkg/syncstatus"
)

// orderProducts are the distinct Hiper products of a sales order.
func orderProducts(so hiper.SalesOrder) []string {
	var ids []string
	for _, it := range so.Items {
		if !slices.Contains(ids, it.ProductID) {
			ids = append(ids, it.ProductID)
		}
	}
	return ids
}

// refreshStock asks the stock-poller to refresh the products of an order
// Hiper just created or cancelled: creating reserves their stock and
// cancelling frees it (seed 001), so the store sees the new balance in
// seconds rather than at the next poll. Requests of one tenant made before
// the poller runs merge into one (syncstatus.RequestSync). A failure only
// costs the wait for the next poll: it is logged, not retried.
func (f *Forwarder) refreshStock(o *order, products []string) {
	if len(products) == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), f.cfg.lease())
	defer cancel()
	if _, err := syncstatus.RequestSync(ctx, f.js, f.ns, o.tenant, syncstatus.Stock, syncstatus.Request{Products: products}); err != nil {
		o.log.Warn("could not ask for a stock refresh of the order's products", "error", err)
	}
}
