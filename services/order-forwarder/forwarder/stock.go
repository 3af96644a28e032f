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
// Hiper just created or cancelled: creating reserves their stock and
// cancelling frees it (seed 001), so the store sees the new balance in
// seconds rather than at the next poll. Requests are coalesced per tenant:
// while one is being written, the products of the orders that follow wait
// and go together in the next (and syncstatus.RequestSync merges them with
// any request the poller has not run yet). A failure only costs the wait
// for the next poll: it is logged, not retried. It runs beside the order's
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
	_, flushing := r.pending[o.tenant]
	for _, id := range products {
		if !slices.Contains(r.pending[o.tenant], id) {
			r.pending[o.tenant] = append(r.pending[o.tenant], id)
		}
	}
	if flushing {
		return // the tenant's flusher takes them in its next request
	}
	f.calls.Go(func() { f.flushRefresh(o) })
}

// refreshCoalesce is how long a tenant's refresh request gathers products
// before it is written. Without it a busy store keeps one KV update in flight
// at all times beside its orders (a quarter of the forwarder's throughput
// against an instant Hiper); a quarter second is nothing next to a poll.
const refreshCoalesce = 250 * time.Millisecond

// flushRefresh writes the tenant's pending refresh requests until none is
// left.
func (f *Forwarder) flushRefresh(o *order) {
	r := &f.refresh
	for {
		time.Sleep(refreshCoalesce)
		r.mu.Lock()
		ids := r.pending[o.tenant]
		if len(ids) == 0 {
			delete(r.pending, o.tenant)
			r.mu.Unlock()
			return
		}
		r.pending[o.tenant] = []string{} // present and empty: a flush runs
		r.mu.Unlock()
		ctx, cancel := context.WithTimeout(context.Background(), f.cfg.lease())
		if _, err := syncstatus.RequestSync(ctx, f.js, f.ns, o.tenant, syncstatus.Stock, syncstatus.Request{Products: ids}); err != nil {
			o.log.Warn("could not ask for a stock refresh of the orders' products", "error", err, "products", len(ids))
		}
		cancel()
	}
}

// stockRefresh is the products waiting for a stock refresh request, by
// tenant; a tenant present has a flush running.
type stockRefresh struct {
	mu      sync.Mutex
	pending map[string][]string
}
