package forwarder

import (
	"context"
	"testing"

	"github.com/hipersync/hipersync/pkg/events"
	brokerv1 "github.com/hipersync/hipersync/pkg/gen/hipersync/broker/v1"
	"github.com/hipersync/hipersync/pkg/testkit"
)

// TestTokenHeldThenDisconnected: the replica holds a token that Hiper still
// accepts, but the tenant is disconnected; its next order is not posted
// with it. The broker, asked past the cache, refuses, and the order fails
// as it always did.
func TestTokenHeldThenDisconnected(t *testing.T) {
	t.Parallel()
	h := newHarness(t, harnessOptions{})
	cfg := testConfig()
	cfg.MaxAttempts = 1
	f := h.forwarder(cfg, "r1")
	h.approve("acme", h.order("acme", "7001", 1), "store-7001")
	h.exactlyOnce("acme", []string{"7001"})
	if _, ok := f.tokens.Cached("acme"); !ok {
		t.Fatal("no token held after an order went through")
	}
	calls := h.st.TokenCalls()

	if _, err := h.st.Broker.Tenants.DisconnectTenant(context.Background(), &brokerv1.DisconnectTenantRequest{TenantId: "acme"}); err != nil {
		t.Fatal(err)
	}
	testkit.WaitFor(t, wait, "the disconnection seen", func() bool {
		s, _ := f.dir.State("acme")
		return s == brokerv1.TenantState_TENANT_STATE_NOT_CONNECTED
	})
	h.approve("acme", h.order("acme", "7002", 1), "store-7002")
	h.waitEvent(events.KindOrderFailed, "7002", wait)
	if got := h.simOrders("acme", "7002"); len(got) != 0 {
		t.Errorf("posted to Hiper for a disconnected tenant with the token held: %v", got)
	}
	if h.st.TokenCalls() == calls {
		t.Error("token-broker was not asked for the disconnected tenant's token")
	}
	if _, ok := f.tokens.Cached("acme"); ok {
		t.Error("the disconnected tenant's token is still held")
	}
}
