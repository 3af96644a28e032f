package forwarder

import (
	"context"
	"slices"
	"sync"
	"time"

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
// Hiper just created or cancelled (by the store's request or by the
// merchant): creating reserves their stock and cancelling frees it (seed
// 001), so the store sees the new balance in seconds rather than at the
// next poll. Requests are coalesced per tenant: the first product starts a
// timer of refreshCoalesce, and every product asked for before it fires
// goes in the same request (syncstatus.RequestSync merges it with any
// request the poller has not run yet). A failure only costs the wait for
// the next poll: it is logged, not retried. It runs beside the order's
// handling, which it must not slow down.
func (f *Forwarder) refreshStock(o *order, products []string) {
	if len(products) == 0 {
		return
	}
	r := &f.refresh
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.pending == nil {
		r.pending = map[string][]string{}
	}
	ids, waiting := r.pending[o.tenant]
	for _, id := range products {
		if !slices.Contains(ids, id) {
			ids = append(ids, id)
		}
	}
	r.pending[o.tenant] = ids
	if waiting {
		return // the tenant's timer takes them in its request
	}
	f.calls.Add(1) // the request is written before the connection closes
	time.AfterFunc(refreshCoalesce, func() {
		defer f.calls.Done()
		f.flushRefresh(o)
	})
}

// refreshCoalesce is how long a tenant's refresh request gathers products
// before it is written. Without it a busy store keeps one KV update in flight
// at all times beside its orders (a quarter of the forwarder's throughput
// against an instant Hiper); a quarter second is nothing next to a poll.
const refreshCoalesce = 250 * time.Millisecond

// flushRefresh writes the request for the products the tenant's timer
// gathered; products asked for from now on start a new timer.
func (f *Forwarder) flushRefresh(o *order) {
	r := &f.refresh
	r.mu.Lock()
	ids := r.pending[o.tenant]
	delete(r.pending, o.tenant)
	r.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), f.cfg.lease())
	defer cancel()
	if _, err := syncstatus.RequestSync(ctx, f.js, f.ns, o.tenant, syncstatus.Stock, syncstatus.Request{Products: ids}); err != nil {
		o.log.Warn("could not ask for a stock refresh of the orders' products", "error", err, "products", len(ids))
	}
}

// stockRefresh is the products waiting for a stock refresh request, by
// tenant; a tenant present has its timer running.
type stockRefresh struct {
	mu      sync.Mutex
	pending map[string][]string
}
