package forwarder

import (
	"strings"
	"testing"
	"time"

	"github.com/hipersync/hipersync/pkg/hipersim"
	"github.com/hipersync/hipersync/services/order-forwarder/orders"
	"github.com/hipersync/hipersync/services/token-broker/brokertest"
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
		brokertest.WaitFor(t, wait, "a spent lease noticed", func() bool {
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
