package forwarder

import (
	"context"
	"encoding/json"
	"errors"
	"slices"
	"testing"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/hipersync/hipersync/pkg/hiper"
	"github.com/hipersync/hipersync/pkg/syncstatus"
	"github.com/hipersync/hipersync/pkg/testkit"
	"github.com/hipersync/hipersync/services/order-forwarder/orders"
)

// stockRequests reads and clears the stock refresh requested for a tenant.
type stockRequests struct {
	t      *testing.T
	kv     jetstream.KeyValue
	tenant string
}

func newStockRequests(t *testing.T, h *harness, tenantID string) stockRequests {
	t.Helper()
	_, requests, err := syncstatus.EnsureBuckets(context.Background(), h.st.JS, h.st.NS)
	if err != nil {
		t.Fatal(err)
	}
	return stockRequests{t: t, kv: requests, tenant: tenantID}
}

// asked is the products the pending request names.
func (s stockRequests) asked() []string {
	e, err := s.kv.Get(context.Background(), syncstatus.StatusKey(s.tenant, syncstatus.Stock))
	if err != nil {
		return nil
	}
	var r syncstatus.Request
	_ = json.Unmarshal(e.Value(), &r)
	return r.Products
}

// clear drops the pending request, as a poll serving it does.
func (s stockRequests) clear() {
	s.t.Helper()
	if err := s.kv.Delete(context.Background(), syncstatus.StatusKey(s.tenant, syncstatus.Stock)); err != nil && !errors.Is(err, jetstream.ErrKeyNotFound) {
		s.t.Fatal(err)
	}
}

// orderProducts are the Hiper products of the store's order as Hiper received it.
func (h *harness) orderProducts(tenantID, orderID string) []string {
	var ids []string
	for _, it := range h.simOrders(tenantID, orderID)[0].Body.Items {
		ids = append(ids, it.ProductID)
	}
	return ids
}

// Creating an order in Hiper reserves its products' stock and cancelling it
// frees it (seed 001), and so may Hiper failing it: each asks the
// stock-poller for a refresh of those products at once, whether the store
// asked for the cancellation, the merchant cancelled the order in Hiper, or
// Hiper processed it with an error (the invoice-watcher's announcements
// name no product: the refresh comes from the order's record).
func TestOrderCreatedOrCancelledRefreshesItsStock(t *testing.T) {
	t.Parallel()
	for _, by := range []string{originStore, originHiper, "failed in hiper"} {
		t.Run("cancelled by "+by, func(t *testing.T) {
			t.Parallel()
			h := newHarness(t, harnessOptions{})
			h.forwarder(testConfig(), "r1")
			req := newStockRequests(t, h, "acme")
			h.approve("acme", h.order("acme", "7301", 2), "store-7301")
			acc := h.waitState("acme", "7301", orders.StateAccepted, wait)
			want := h.orderProducts("acme", "7301")
			testkit.WaitFor(t, wait, "a stock refresh of the order's products", func() bool {
				got := req.asked()
				for _, id := range want {
					if !slices.Contains(got, id) {
						return false
					}
				}
				return len(want) > 0
			})
			req.clear()
			switch by {
			case originStore:
				h.cancel("acme", "7301", "store-7301-cancel")
			case originHiper:
				if err := h.st.Sim.Sim.AddOrderEvent(h.st.Keys["acme"], acc.HiperOrderID, hiper.OrderEvent{Type: hiper.EventCancelled}); err != nil {
					t.Fatal(err)
				}
				h.merchantCancelled("acme", "7301", acc.HiperOrderID)
			default:
				// The forwarder's own order.failed (no Hiper order) asks
				// nothing; the invoice-watcher's does.
				h.hiperFailed("acme", "7300", "")
				h.hiperFailed("acme", "7301", acc.HiperOrderID)
				testkit.WaitFor(t, wait, "a stock refresh after Hiper failed the order", func() bool {
					return slices.Equal(req.asked(), want)
				})
				if rec := h.waitState("acme", "7301", orders.StateAccepted, wait); rec.HiperOrderID != acc.HiperOrderID {
					t.Errorf("record after Hiper failed the order: %+v", rec)
				}
				return
			}
			h.waitState("acme", "7301", orders.StateCancelled, wait)
			testkit.WaitFor(t, wait, "a stock refresh after the cancellation", func() bool {
				return slices.Equal(req.asked(), want)
			})
		})
	}
}
