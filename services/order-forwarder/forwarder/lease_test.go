package forwarder

import (
	"strings"
	"testing"
	"time"

	"github.com/hipersync/hipersync/pkg/hipersim"
	"github.com/hipersync/hipersync/pkg/testkit"
	"github.com/hipersync/hipersync/services/order-forwarder/orders"
)

// TestCallWindow: the POST's deadline is the lease written less the time to
// record the answer, by the replica's clock, never more than the call's
// budget; a spent lease leaves no window.
func TestCallWindow(t *testing.T) {
	t.Parallel()
	c := Config{HiperTimeout: 10 * time.Second}.withDefaults()
	now := time.Unix(1_800_000_000, 0)
	for _, tc := range []struct {
		lease time.Duration
		want  time.Duration
	}{
		{c.lease(), c.callBudget()},                                 // written just now: the whole budget
		{c.lease() - 3*time.Second, c.callBudget() - 3*time.Second}, // the write took 3s
		{c.recordBudget() + time.Second, time.Second},
		{c.recordBudget(), 0},
		{time.Second, time.Second - c.recordBudget()},
	} {
		if got := c.callWindow(now.Add(tc.lease), now); got != tc.want {
			t.Errorf("lease %s left: window %s, want %s", tc.lease, got, tc.want)
		}
	}
}

// TestLeaseBoundsThePost: a create whose lease leaves no window is not
// posted at all (and spends no attempt); one whose window is shorter than
// Hiper takes is cut at the window, so its answer is recorded before the
// lease ends and no other replica can take the order for dead meanwhile.
func TestLeaseBoundsThePost(t *testing.T) {
	t.Parallel()
	t.Run("spent", func(t *testing.T) {
		t.Parallel()
		h := newHarness(t, harnessOptions{})
		cfg := testConfig()
		cfg.testLease = cfg.withDefaults().recordBudget() // nothing left for the call
		h.forwarder(cfg, "r1")
		h.approve("acme", h.order("acme", "L1", 1), "store-L1")
		testkit.WaitFor(t, wait, "a spent lease noticed", func() bool {
			rec, _, err := h.state.Get(t.Context(), "acme", "L1")
			return err == nil && strings.Contains(rec.LastError, "lease was spent")
		})
		if rec := h.record("acme", "L1"); rec.Attempts != 0 || (rec.State != orders.StateReceived && rec.State != orders.StateSending) {
			t.Errorf("order %s with %d attempts", rec.State, rec.Attempts)
		}
		if h.posted() != 0 {
			t.Errorf("%d create calls on a spent lease", h.posted())
		}
	})
	t.Run("short", func(t *testing.T) {
		t.Parallel()
		h := newHarness(t, harnessOptions{})
		cfg := testConfig()
		cfg.HiperTimeout = 20 * time.Second
		cfg.testLease = cfg.withDefaults().recordBudget() + 700*time.Millisecond
		h.forwarder(cfg, "r1")
		h.st.Sim.Sim.SetFaults(hipersim.Faults{LatencyMs: 5000, Endpoints: []string{hipersim.EndpointCreateOrder}})
		h.approve("acme", h.order("acme", "L2", 1), "store-L2")
		rec := h.waitState("acme", "L2", orders.StateNeedsReview, wait)
		if took := rec.UpdatedAt.Sub(rec.SentAt); took > cfg.testLease {
			t.Errorf("answer recorded %s after sending, past the %s lease", took, cfg.testLease)
		}
		if !strings.Contains(rec.Answer, "prazo") {
			t.Errorf("answer %q", rec.Answer)
		}
	})
}

// TestHeldBackBehindAnUnrecordedAnswer: the next order of a slot writes its
// sending right behind the previous order's answer, but is posted only once
// that answer is recorded. Here the answer cannot be recorded (the order
// moved on while Hiper answered): the next order is not posted on that
// turn; it goes back to received without spending an attempt and is sent,
// once, on its next try.
func TestHeldBackBehindAnUnrecordedAnswer(t *testing.T) {
	t.Parallel()
	h := newHarness(t, harnessOptions{})
	h.forwarder(testConfig(), "r1")
	h.st.Sim.Sim.SetFaults(hipersim.Faults{LatencyMs: 1000, Endpoints: []string{hipersim.EndpointCreateOrder}})
	h.approve("acme", h.order("acme", "P1", 1), "store-P1")
	h.waitState("acme", "P1", orders.StateSending, wait)
	// P2 waits for the slot P1 holds while Hiper takes its time.
	h.approve("acme", h.order("acme", "P2", 1), "store-P2")
	rec, rev, err := h.state.Get(t.Context(), "acme", "P1")
	if err != nil {
		t.Fatal(err)
	}
	rec.Move(orders.StateRejected, "test", "moved on while Hiper answered", time.Now())
	if _, err := h.state.Update(t.Context(), rec, rev); err != nil {
		t.Fatal(err)
	}

	p2 := h.waitState("acme", "P2", orders.StateAccepted, wait)
	held := false
	for _, tr := range p2.History {
		held = held || tr.To == orders.StateReceived && strings.Contains(tr.Note, errHeldBack.Error())
	}
	if !held {
		t.Errorf("P2 was not held back behind P1's unrecorded answer: %+v", p2.History)
	}
	if p2.Attempts != 1 {
		t.Errorf("P2 took %d attempts; a hold-back spends none", p2.Attempts)
	}
	if n := len(h.simOrders("acme", "P2")); n != 1 {
		t.Errorf("P2 is in Hiper %d times", n)
	}
	if p1 := h.record("acme", "P1"); p1.State != orders.StateRejected {
		t.Errorf("P1's late answer overwrote the state it moved on to: %s", p1.State)
	}
}
