package forwarder

import (
	"errors"
	"strings"
	"testing"

	"github.com/hipersync/hipersync/pkg/hiper"
	"github.com/hipersync/hipersync/pkg/testkit"
	"github.com/hipersync/hipersync/services/order-forwarder/orders"
)

// TestResendAfterHiperFailed: an order Hiper accepted and then processed
// with an error (its situation 3, announced by the invoice-watcher's
// order.failed) can be resent by support, once: it becomes a new Hiper
// order. An accepted order Hiper did not fail is never sent again, and
// neither is the new one until Hiper fails it too.
func TestResendAfterHiperFailed(t *testing.T) {
	t.Parallel()
	h := newHarness(t, harnessOptions{})
	h.forwarder(testConfig(), "r1")
	op := h.operator()
	ctx := t.Context()

	h.approve("acme", h.order("acme", "R1", 1), "store-R1")
	first := h.waitState("acme", "R1", orders.StateAccepted, wait)
	if _, err := op.Resend(ctx, "acme", "R1"); !errors.Is(err, orders.ErrWrongState) || !strings.Contains(err.Error(), "twice") {
		t.Fatalf("resend of an order Hiper holds: %v", err)
	}

	if err := h.st.Sim.Sim.FailOrder(h.st.Keys["acme"], first.HiperOrderID, "Produto sem estoque"); err != nil {
		t.Fatal(err)
	}
	h.hiperFailed("acme", "R1", first.HiperOrderID)
	testkit.WaitFor(t, wait, "the failure noted on the record", func() bool {
		rec, _, err := h.state.Get(ctx, "acme", "R1")
		return err == nil && rec.FailedInHiper()
	})
	h.hiperFailed("acme", "R1", first.HiperOrderID) // a duplicate notes nothing more

	rec, err := op.Resend(ctx, "acme", "R1")
	if err != nil {
		t.Fatalf("resend after Hiper failed the order: %v", err)
	}
	if rec.State != orders.StateReceived || rec.HiperFailure != nil || rec.Generation != first.Generation+1 {
		t.Fatalf("record after resend: %+v", rec)
	}
	var second *orders.Record
	testkit.WaitFor(t, wait, "the order accepted again, as a new Hiper order", func() bool {
		r, _, err := h.state.Get(ctx, "acme", "R1")
		second = r
		return err == nil && r.State == orders.StateAccepted && r.HiperOrderID != "" && r.HiperOrderID != first.HiperOrderID
	})
	sim := h.simOrders("acme", "R1")
	if len(sim) != 2 || sim[0].Status.Situation != hiper.SituationFailed || sim[1].ID != second.HiperOrderID {
		t.Fatalf("Hiper holds %+v; want the failed order and one new order", sim)
	}

	// Once: the new Hiper order is not failed, so no second resend; nor
	// does a late order.failed of the first one count for it.
	h.hiperFailed("acme", "R1", first.HiperOrderID)
	if _, err := op.Resend(ctx, "acme", "R1"); !errors.Is(err, orders.ErrWrongState) {
		t.Fatalf("second resend: %v", err)
	}
	if n := len(h.simOrders("acme", "R1")); n != 2 {
		t.Fatalf("Hiper holds %d orders for R1", n)
	}
}
