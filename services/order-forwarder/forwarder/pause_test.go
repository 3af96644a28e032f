package forwarder

import (
	"context"
	"testing"
	"time"

	"github.com/hipersync/hipersync/pkg/events"
	brokerv1 "github.com/hipersync/hipersync/pkg/gen/hipersync/broker/v1"
	"github.com/hipersync/hipersync/pkg/testkit"
	"github.com/hipersync/hipersync/services/order-forwarder/orders"
)

// TestPauseLongerThanRetention: a tenant stays paused longer than the
// STORE stream keeps messages (a retention shortened to one second here), so
// its approvals are gone from the stream; on resume every received order is
// sent, once.
func TestPauseLongerThanRetention(t *testing.T) {
	t.Parallel()
	h := newHarness(t, harnessOptions{})
	f := h.forwarder(testConfig(), "r1")
	ctx := context.Background()
	h.pause(f, "acme")
	ids := h.publishMany("acme", "W", 8)
	for _, id := range ids {
		h.waitState("acme", id, orders.StateReceived, wait)
	}

	stream, err := h.st.JS.Stream(ctx, h.st.NS.Stream(events.StreamStore))
	if err != nil {
		t.Fatal(err)
	}
	info, err := stream.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	cfg := info.Config
	cfg.MaxAge, cfg.Duplicates = time.Second, time.Second
	if _, err := h.st.JS.UpdateStream(ctx, cfg); err != nil {
		t.Fatal(err)
	}
	testkit.WaitFor(t, wait, "the retention dropping the approvals", func() bool {
		info, err := stream.Info(ctx)
		return err == nil && info.State.Msgs == 0
	})

	if _, err := h.st.Broker.Tenants.ResumeTenant(ctx, &brokerv1.ResumeTenantRequest{TenantId: "acme"}); err != nil {
		t.Fatal(err)
	}
	h.exactlyOnce("acme", ids)
}
