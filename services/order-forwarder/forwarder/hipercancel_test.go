package forwarder

import (
	"context"
	"testing"

	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/hipersync/hipersync/pkg/events"
	eventsv1 "github.com/hipersync/hipersync/pkg/gen/hipersync/events/v1"
	"github.com/hipersync/hipersync/pkg/hipersim"
	"github.com/hipersync/hipersync/pkg/testkit"
	"github.com/hipersync/hipersync/services/order-forwarder/orders"
)

// merchantCancelled publishes what the invoice-watcher announces when the
// merchant cancelled an order in Hiper.
func (h *harness) merchantCancelled(tenant, orderID, hiperID string) {
	h.t.Helper()
	pub := events.NewPublisher(h.st.JS, h.st.NS, "invoice-watcher", events.FormatProtobuf)
	if _, err := pub.Publish(context.Background(), h.st.NS.HiperSubject(tenant, events.KindOrderCancelled),
		tenant+":"+orderID+":order.cancelled", &eventsv1.OrderCancelled{OrderId: orderID, HiperOrderId: hiperID, Origin: originHiper,
			CancelledAt: timestamppb.Now()}, events.WithEventSubject(orderID)); err != nil {
		h.t.Fatal(err)
	}
}

// hiperFailed publishes an order.failed: the invoice-watcher's when hiperID
// is set (Hiper processed the order with an error), else one like the
// forwarder's own (the order never reached Hiper).
func (h *harness) hiperFailed(tenant, orderID, hiperID string) {
	h.t.Helper()
	pub := events.NewPublisher(h.st.JS, h.st.NS, "invoice-watcher", events.FormatProtobuf)
	if _, err := pub.Publish(context.Background(), h.st.NS.HiperSubject(tenant, events.KindOrderFailed),
		tenant+":"+orderID+":order.failed", &eventsv1.OrderFailed{OrderId: orderID, HiperOrderId: hiperID, Message: "Produto sem estoque"},
		events.WithEventSubject(orderID)); err != nil {
		h.t.Fatal(err)
	}
}

// TestStoreCancelAfterHiperCancel: the merchant cancelled the order in
// Hiper (the invoice-watcher announced it), then the store's cancellation
// arrives: the record says cancelled by Hiper, nothing is asked of Hiper,
// and there is exactly one order.cancelled, of origin hiper.
func TestStoreCancelAfterHiperCancel(t *testing.T) {
	t.Parallel()
	h := newHarness(t, harnessOptions{})
	h.forwarder(testConfig(), "r1")
	h.approve("acme", h.order("acme", "H1", 1), "store-H1")
	acc := h.waitState("acme", "H1", orders.StateAccepted, wait)
	h.merchantCancelled("acme", "H1", acc.HiperOrderID)
	rec := h.waitState("acme", "H1", orders.StateCancelled, wait)
	if rec.CancelOrigin != originHiper {
		t.Errorf("record cancelled by %q", rec.CancelOrigin)
	}
	h.cancel("acme", "H1", "store-H1-cancel")
	testkit.WaitFor(t, wait, "the store's cancellation handled", func() bool { return h.pending() == 0 })
	if got := h.seen.of(events.KindOrderCancelled, "H1"); len(got) != 1 || got[0].msg.(*eventsv1.OrderCancelled).GetOrigin() != originHiper {
		t.Errorf("order.cancelled events %v, want one of origin hiper", got)
	}
	if h.cancels() != 0 {
		t.Errorf("%d cancel calls to Hiper", h.cancels())
	}
	if rec := h.record("acme", "H1"); rec.State != orders.StateCancelled || rec.CancelOrigin != originHiper {
		t.Errorf("record %s by %q after the store's cancellation", rec.State, rec.CancelOrigin)
	}
}

// TestRefusedCancelMadeByHand: Hiper refuses the store's cancellation (a
// person is told), the merchant cancels the order by hand in Hiper and the
// invoice-watcher announces it: one order.cancelled, of origin hiper, and
// the record agrees.
func TestRefusedCancelMadeByHand(t *testing.T) {
	t.Parallel()
	h := newHarness(t, harnessOptions{})
	h.forwarder(testConfig(), "r1")
	h.approve("acme", h.order("acme", "H2", 1), "store-H2")
	acc := h.waitState("acme", "H2", orders.StateAccepted, wait)
	h.st.Sim.Sim.SetFaults(hipersim.Faults{ErrorRate: 1, ErrorStatus: 409, Endpoints: []string{hipersim.EndpointCancelOrder}})
	h.cancel("acme", "H2", "store-H2-cancel")
	h.waitEvent(events.KindOrderNeedsReview, "H2", wait)
	if rec := h.record("acme", "H2"); rec.State != orders.StateAccepted || rec.Cancel == nil || rec.Cancel.Error == "" {
		t.Fatalf("after the refusal: %s, cancel %+v", rec.State, rec.Cancel)
	}
	h.st.Sim.Sim.SetFaults(hipersim.Faults{})
	h.merchantCancelled("acme", "H2", acc.HiperOrderID)
	rec := h.waitState("acme", "H2", orders.StateCancelled, wait)
	if rec.CancelOrigin != originHiper || rec.Cancel.Error != "" {
		t.Errorf("record cancelled by %q, cancel error %q", rec.CancelOrigin, rec.Cancel.Error)
	}
	if got := h.seen.of(events.KindOrderCancelled, "H2"); len(got) != 1 {
		t.Errorf("%d order.cancelled events, want 1", len(got))
	}
}
