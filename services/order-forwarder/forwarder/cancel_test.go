package forwarder

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/hipersync/hipersync/pkg/events"
	brokerv1 "github.com/hipersync/hipersync/pkg/gen/hipersync/broker/v1"
	eventsv1 "github.com/hipersync/hipersync/pkg/gen/hipersync/events/v1"
	"github.com/hipersync/hipersync/pkg/hipersim"
	"github.com/hipersync/hipersync/pkg/testkit"
	"github.com/hipersync/hipersync/services/order-forwarder/orders"
)

// TestCancelBeforeApproval: the cancellation overtakes the approval; the
// order is never sent, and order.cancelled goes out once.
func TestCancelBeforeApproval(t *testing.T) {
	t.Parallel()
	h := newHarness(t, harnessOptions{})
	h.forwarder(testConfig(), "r1")
	h.cancel("acme", "7001", "store-7001-cancel")
	c := h.waitEvent(events.KindOrderCancelled, "7001", wait).(*eventsv1.OrderCancelled)
	if c.GetHiperOrderId() != "" || c.GetOrigin() != "store" {
		t.Errorf("order.cancelled %v", c)
	}
	h.approve("acme", h.order("acme", "7001", 1), "store-7001")
	h.cancel("acme", "7001", "store-7001-cancel-again")
	testkit.WaitFor(t, wait, "every event handled", func() bool { return h.pending() == 0 })
	if h.posted() != 0 || len(h.seen.of(events.KindOrderCancelled, "7001")) != 1 {
		t.Fatalf("posted %d, %d order.cancelled", h.posted(), len(h.seen.of(events.KindOrderCancelled, "7001")))
	}
	if rec := h.record("acme", "7001"); rec.State != orders.StateCancelled || len(rec.Approval) != 0 {
		t.Errorf("record %s, approval kept %v", rec.State, len(rec.Approval) != 0)
	}
}

// TestCancelWhileWaiting: an order waiting for its paused tenant is
// cancelled and never sent, even after the tenant resumes.
func TestCancelWhileWaiting(t *testing.T) {
	t.Parallel()
	h := newHarness(t, harnessOptions{})
	f := h.forwarder(testConfig(), "r1")
	ctx := context.Background()
	h.pause(f, "acme")
	h.approve("acme", h.order("acme", "7101", 1), "store-7101")
	testkit.WaitFor(t, wait, "the order waiting", func() bool {
		_, _, err := h.state.Get(ctx, "acme", "7101")
		return err == nil
	})
	h.cancel("acme", "7101", "store-7101-cancel")
	h.waitState("acme", "7101", orders.StateCancelled, wait)
	if _, err := h.st.Broker.Tenants.ResumeTenant(ctx, &brokerv1.ResumeTenantRequest{TenantId: "acme"}); err != nil {
		t.Fatal(err)
	}
	testkit.WaitFor(t, wait, "every event handled", func() bool { return h.pending() == 0 })
	if h.posted() != 0 {
		t.Fatal("a cancelled order was sent")
	}
}

// TestCancelInHiper: an accepted order is cancelled in Hiper once, through
// a storm of 503s on the cancel endpoint, and a duplicate does nothing.
func TestCancelInHiper(t *testing.T) {
	t.Parallel()
	h := newHarness(t, harnessOptions{})
	h.forwarder(testConfig(), "r1")
	h.approve("acme", h.order("acme", "7201", 1), "store-7201")
	acc := h.waitEvent(events.KindOrderAccepted, "7201", wait).(*eventsv1.OrderAccepted)

	h.st.Sim.Sim.SetFaults(hipersim.Faults{ErrorRate: 1, ErrorStatus: 503, Endpoints: []string{hipersim.EndpointCancelOrder}})
	h.cancel("acme", "7201", "store-7201-cancel")
	testkit.WaitFor(t, wait, "a failed cancellation", func() bool {
		rec, _, err := h.state.Get(context.Background(), "acme", "7201")
		return err == nil && rec.Cancel != nil && rec.Cancel.Attempts >= 1
	})
	h.st.Sim.Sim.SetFaults(hipersim.Faults{})
	c := h.waitEvent(events.KindOrderCancelled, "7201", wait).(*eventsv1.OrderCancelled)
	if c.GetHiperOrderId() != acc.GetHiperOrderId() || c.GetOrigin() != "store" {
		t.Errorf("order.cancelled %v", c)
	}
	h.waitState("acme", "7201", orders.StateCancelled, wait)
	inHiper := h.simOrders("acme", "7201")
	if len(inHiper) != 1 || !inHiper[0].Status.Cancelled {
		t.Fatalf("in Hiper: %+v", inHiper)
	}
	calls := h.cancels()
	h.cancel("acme", "7201", "store-7201-cancel-again")
	h.approve("acme", h.order("acme", "7201", 1), "store-7201-late")
	testkit.WaitFor(t, wait, "every event handled", func() bool { return h.pending() == 0 })
	if h.cancels() != calls || len(h.seen.of(events.KindOrderCancelled, "7201")) != 1 || h.posted() != 1 {
		t.Errorf("after duplicates: %d cancel calls (was %d), %d order.cancelled, %d creates",
			h.cancels(), calls, len(h.seen.of(events.KindOrderCancelled, "7201")), h.posted())
	}
}

// TestCancelRefusedByHiper: Hiper does not know the order it is asked to
// cancel; a person is told, and the order stays accepted.
func TestCancelRefusedByHiper(t *testing.T) {
	t.Parallel()
	h := newHarness(t, harnessOptions{})
	h.forwarder(testConfig(), "r1")
	now := time.Now()
	rec := &orders.Record{Tenant: "acme", OrderID: "7301", State: orders.StateAccepted,
		HiperOrderID: "00000000-0000-4000-8000-0000000000aa", CreatedAt: now}
	if _, err := h.state.Create(context.Background(), rec); err != nil {
		t.Fatal(err)
	}
	h.cancel("acme", "7301", "store-7301-cancel")
	nr := h.waitEvent(events.KindOrderNeedsReview, "7301", wait).(*eventsv1.OrderNeedsReview)
	if !strings.Contains(nr.GetReason(), "recusou o cancelamento") || nr.GetCode() != ReviewCancelRefused {
		t.Errorf("reason %q, code %q", nr.GetReason(), nr.GetCode())
	}
	got := h.waitState("acme", "7301", orders.StateAccepted, wait)
	if got.Cancel == nil || got.Cancel.Error == "" {
		t.Errorf("cancel not recorded: %+v", got.Cancel)
	}
}

// TestCancelUnderReview: the store cancels an order whose outcome is
// unknown. Nothing is sent to Hiper without its id; the operator is told,
// and resolving the order with the id found in Hiper cancels it there.
func TestCancelUnderReview(t *testing.T) {
	t.Parallel()
	h := newHarness(t, harnessOptions{})
	h.forwarder(testConfig(), "r1")
	h.underReview("7401", losing(502))

	h.cancel("acme", "7401", "store-7401-cancel")
	testkit.WaitFor(t, wait, "the operator told", func() bool { return len(h.seen.of(events.KindOrderNeedsReview, "7401")) == 2 })
	msg := h.seen.of(events.KindOrderNeedsReview, "7401")[1].msg.(*eventsv1.OrderNeedsReview)
	if !strings.Contains(msg.GetReason(), "A loja cancelou") || msg.GetCode() != ReviewCancelUnderReview {
		t.Errorf("reason %q, code %q", msg.GetReason(), msg.GetCode())
	}
	namesNoCustomer(t, msg.GetReason())
	rec := h.waitState("acme", "7401", orders.StateNeedsReview, wait)
	if rec.Cancel == nil || h.cancels() != 0 {
		t.Fatalf("cancel %+v, %d cancel calls", rec.Cancel, h.cancels())
	}

	inHiper := h.simOrders("acme", "7401")
	if len(inHiper) != 1 {
		t.Fatalf("%d in Hiper", len(inHiper))
	}
	if _, err := h.operator().Resolve(context.Background(), "acme", "7401", inHiper[0].ID); err != nil {
		t.Fatal(err)
	}
	c := h.waitEvent(events.KindOrderCancelled, "7401", wait).(*eventsv1.OrderCancelled)
	if c.GetHiperOrderId() != inHiper[0].ID {
		t.Errorf("order.cancelled %v", c)
	}
	if len(h.seen.of(events.KindOrderAccepted, "7401")) != 1 || !h.simOrders("acme", "7401")[0].Status.Cancelled {
		t.Error("not accepted then cancelled in Hiper")
	}
}

// TestResendOfACancelledReview: resending an order the store cancelled
// while it was under review marks it cancelled instead of sending it.
func TestResendOfACancelledReview(t *testing.T) {
	t.Parallel()
	h := newHarness(t, harnessOptions{})
	h.forwarder(testConfig(), "r1")
	h.underReview("7501", failingAsProxy(504))
	h.cancel("acme", "7501", "store-7501-cancel")
	testkit.WaitFor(t, wait, "the cancel recorded", func() bool { return h.record("acme", "7501").Cancel != nil })
	rec, err := h.operator().Resend(context.Background(), "acme", "7501")
	if err != nil || rec.State != orders.StateCancelled {
		t.Fatalf("Resend: %+v %v", rec, err)
	}
	h.waitEvent(events.KindOrderCancelled, "7501", wait)
	testkit.WaitFor(t, wait, "every event handled", func() bool { return h.pending() == 0 })
	if h.posted() != 1 {
		t.Errorf("%d create calls, want the first only", h.posted())
	}
}

// TestCancelAfterApprovalUnderConcurrency: one store whose orders go to
// Hiper four at a time per replica, two replicas, Hiper 50 ms away; the
// store cancels every order right after approving it, so cancellations meet
// their orders before, while and after they are sent. A cancellation is
// never sent before its order's create finished: afterwards each order is
// either not in Hiper at all (cancelled before it was sent) or in Hiper once
// and cancelled there, every cancel hiper-sim received named an order it
// had, and none is left standing in Hiper.
func TestCancelAfterApprovalUnderConcurrency(t *testing.T) {
	t.Parallel()
	const n = 40
	h := newHarness(t, harnessOptions{})
	h.st.Sim.Sim.SetFaults(hipersim.Faults{LatencyMs: 50, Endpoints: []string{hipersim.EndpointCreateOrder}})
	cfg := testConfig()
	cfg.TenantInflight = 4
	h.forwarder(cfg, "r1")
	h.forwarder(cfg, "r2")
	ids := make([]string, n)
	for i := range n {
		ids[i] = fmt.Sprintf("7%03d", i)
		h.approve("acme", h.order("acme", ids[i], 1+i%2), "store-"+ids[i])
		h.cancel("acme", ids[i], "store-"+ids[i]+"-cancel")
	}
	testkit.WaitFor(t, 3*wait, "every order cancelled", func() bool { return h.seen.count(events.KindOrderCancelled) >= n })

	inHiper := 0
	for _, id := range ids {
		rec := h.record("acme", id)
		if rec.State != orders.StateCancelled {
			t.Errorf("order %s: %s (%s), want cancelled", id, rec.State, rec.LastError)
			continue
		}
		got := h.simOrders("acme", id)
		evs := h.seen.of(events.KindOrderCancelled, id)
		if len(evs) != 1 {
			t.Errorf("order %s: %d order.cancelled, want 1", id, len(evs))
			continue
		}
		c := evs[0].msg.(*eventsv1.OrderCancelled)
		switch {
		case len(got) == 0 && c.GetHiperOrderId() == "":
			// cancelled before it was sent: never sent
		case len(got) == 1 && got[0].Status.Cancelled && c.GetHiperOrderId() == got[0].ID:
			inHiper++
		default:
			t.Errorf("order %s: %d in Hiper (cancelled there: %v), order.cancelled names %q", id, len(got),
				len(got) == 1 && got[0].Status.Cancelled, c.GetHiperOrderId())
		}
	}
	if h.posted() != inHiper || h.cancels() != inHiper {
		t.Errorf("hiper-sim received %d creates and %d cancels for %d orders it holds, cancelled", h.posted(), h.cancels(), inHiper)
	}
	t.Logf("%d orders: %d created then cancelled in Hiper, %d cancelled before they were sent", n, inHiper, n-inHiper)
}
