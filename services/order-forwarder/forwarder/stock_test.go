package forwarder

import (
	"context"
	"encoding/json"
	"slices"
	"testing"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/hipersync/hipersync/pkg/events"
	"github.com/hipersync/hipersync/pkg/syncstatus"
	"github.com/hipersync/hipersync/services/order-forwarder/orders"
	"github.com/hipersync/hipersync/services/token-broker/brokertest"
)

// Creating an order in Hiper reserves its products' stock and cancelling it
// frees it (seed 001): each asks the stock-poller for a refresh of those
// products at once.
func TestOrderCreatedOrCancelledRefreshesItsStock(t *testing.T) {
	t.Parallel()
	h := newHarness(t, harnessOptions{})
	h.forwarder(testConfig(), "r1")
	ctx := context.Background()
	_, requests, err := syncstatus.EnsureBuckets(ctx, h.st.JS, h.st.NS)
	if err != nil {
		t.Fatal(err)
	}
	asked := func() []string {
		e, err := requests.Get(ctx, syncstatus.StatusKey("acme", syncstatus.Stock))
		if err != nil {
			return nil
		}
		var r syncstatus.Request
		_ = json.Unmarshal(e.Value(), &r)
		return r.Products
	}
	h.approve("acme", h.order("acme", "7301", 2), "store-7301")
	h.waitEvent(events.KindOrderAccepted, "7301", wait)
	inHiper := h.simOrders("acme", "7301")
	var want []string
	for _, it := range inHiper[0].Body.Items {
		want = append(want, it.ProductID)
	}
	brokertest.WaitFor(t, wait, "a stock refresh of the order's products", func() bool {
		got := asked()
		for _, id := range want {
			if !slices.Contains(got, id) {
				return false
			}
		}
		return len(want) > 0
	})
	if err := requests.Delete(ctx, syncstatus.StatusKey("acme", syncstatus.Stock)); err != nil && err != jetstream.ErrKeyNotFound {
		t.Fatal(err)
	}
	h.cancel("acme", "7301", "store-7301-cancel")
	h.waitState("acme", "7301", orders.StateCancelled, wait)
	brokertest.WaitFor(t, wait, "a stock refresh after the cancellation", func() bool {
		return slices.Equal(asked(), want)
	})
}
