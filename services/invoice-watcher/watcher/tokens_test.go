package watcher_test

import (
	"context"
	"testing"

	"github.com/hipersync/hipersync/pkg/events"
	brokerv1 "github.com/hipersync/hipersync/pkg/gen/hipersync/broker/v1"
	"github.com/hipersync/hipersync/pkg/hipersim"
	"github.com/hipersync/hipersync/pkg/testkit"
)

// The watcher asks token-broker once per token, not before every poll: it
// keeps polling and publishing with token-broker down for a tenant whose
// token it holds, and asks again when Hiper refuses the token.
func TestPollsWithTokenBrokerDown(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	h.start("a", fast())
	id := h.newOrder("1020")
	testkit.WaitFor(t, waitLong, "five polls", func() bool { return h.calls.of(id) >= 5 })
	if n := h.st.TokenCalls(); n != 1 {
		t.Errorf("token-broker answered %d GetToken calls for %d polls, want 1", n, h.calls.of(id))
	}

	// Hiper forgets the token: the 401 sends the watcher to the broker.
	h.st.Sim.Sim.SetFaults(hipersim.Faults{ExpireTokensNow: true})
	polls := h.calls.of(id)
	testkit.WaitFor(t, waitLong, "a new token, and polls with it", func() bool {
		return h.st.TokenCalls() == 2 && h.calls.of(id) >= polls+4
	})
	if n := h.st.TokenCalls(); n != 2 {
		t.Errorf("token-broker answered %d GetToken calls after one 401, want 2", n)
	}

	// token-broker goes down (a rollout, an outage): the order is still
	// followed, and its invoice goes out.
	h.st.StopBroker()
	h.event(id, invoiceEvent("77"))
	inv := h.waitEvent("1020", events.KindInvoiceIssued)
	if got := inv.Msg.(interface{ GetNumber() string }).GetNumber(); got != "77" {
		t.Errorf("invoice number %q, want 77", got)
	}
	h.exactlyOnce("1020", events.KindInvoiceIssued)
}

// A paused tenant is not polled though the watcher holds its token: the
// directory, not token-broker's refusal, is what stops the polls.
func TestPausedTenantNotPolledWithTokenHeld(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	ctx := context.Background()
	r := h.start("a", fast())
	id := h.newOrder("1030")
	testkit.WaitFor(t, waitLong, "two polls", func() bool { return h.calls.of(id) >= 2 })
	if _, err := h.st.Broker.Tenants.PauseTenant(ctx, &brokerv1.PauseTenantRequest{TenantId: tenantID}); err != nil {
		t.Fatal(err)
	}
	// One order's turns follow one another: once one waited for the
	// pause, no poll of it is under way.
	testkit.WaitFor(t, waitLong, "the watcher to see the pause", func() bool {
		return r.counter("hipersync_invoice_watch_waits_total", "reason", "tenant_inactive") >= 1
	})
	polls, tokens := h.calls.of(id), h.st.TokenCalls()
	h.event(id, invoiceEvent("78"))
	testkit.WaitFor(t, waitLong, "turns waited while paused", func() bool {
		return r.counter("hipersync_invoice_watch_waits_total", "reason", "tenant_inactive") >= 4
	})
	if n := h.calls.of(id); n != polls {
		t.Errorf("%d polls of a paused tenant's order with its token held", n-polls)
	}
	if n := h.st.TokenCalls(); n != tokens {
		t.Errorf("%d tokens asked for a paused tenant", n-tokens)
	}
	h.resumeThenInvoice("1030")
}
