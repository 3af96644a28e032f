package cli

import (
	"context"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/hipersync/hipersync/pkg/events"
	eventsv1 "github.com/hipersync/hipersync/pkg/gen/hipersync/events/v1"
	"github.com/hipersync/hipersync/pkg/testkit"
	"github.com/hipersync/hipersync/services/token-broker/brokertest"
)

// Seed 004's sync log filters: up to when, by outcome, by order, by
// product.
func TestEventsTailFilters(t *testing.T) {
	t.Parallel()
	st := brokertest.Start(t, brokertest.Options{})
	ctx := context.Background()
	env := st.Env()
	pub := events.NewPublisher(st.JS, st.NS, "hipersync/test", events.FormatProtobuf)
	publish := func(kind events.Kind, id string, m proto.Message) {
		t.Helper()
		if _, err := pub.Publish(ctx, st.NS.HiperSubject("acme", kind), id, m); err != nil {
			t.Fatal(err)
		}
	}
	publish(events.KindOrderAccepted, "a1", &eventsv1.OrderAccepted{OrderId: "1001", HiperOrderId: "h-1"})
	publish(events.KindOrderRejected, "r1", &eventsv1.OrderRejected{OrderId: "1002"})
	publish(events.KindSyncFailed, "f1", &eventsv1.SyncFailed{Kind: "catalog", Reason: "hiper_unavailable"})
	publish(events.KindStockChanged, "s1", &eventsv1.StockChanged{ProductId: "p-1", Quantity: "3"})
	publish(events.KindStockChanged, "s2", &eventsv1.StockChanged{ProductId: "p-2", Quantity: "4"})
	mid := time.Now().UTC()
	testkit.WaitFor(t, 5*time.Second, "a later timestamp", func() bool { return time.Now().After(mid.Add(10 * time.Millisecond)) })
	publish(events.KindOrderShipped, "x1", &eventsv1.OrderShipped{OrderId: "1001", TrackingCode: "BR1"})

	tail := func(args ...string) string {
		t.Helper()
		r := runEnv(t, env, append([]string{"events", "tail", "--source", "hiper"}, args...)...)
		if r.code != 0 {
			t.Fatalf("%v: %+v", args, r)
		}
		return r.stdout
	}
	lines := func(out string) int { return strings.Count(out, "\n") }
	if out := tail("--outcome", "failed"); lines(out) != 2 || !strings.Contains(out, "order.rejected") || !strings.Contains(out, "sync.failed") {
		t.Fatalf("--outcome failed:\n%s", out)
	}
	if out := tail("--outcome", "ok"); lines(out) != 4 || strings.Contains(out, "rejected") {
		t.Fatalf("--outcome ok:\n%s", out)
	}
	if out := tail("--order", "1001"); lines(out) != 2 || !strings.Contains(out, "order.accepted") || !strings.Contains(out, "order.shipped") {
		t.Fatalf("--order 1001:\n%s", out)
	}
	if out := tail("--product", "p-2"); lines(out) != 1 || !strings.Contains(out, "p-2") {
		t.Fatalf("--product p-2:\n%s", out)
	}
	if out := tail("--until", mid.Format(time.RFC3339Nano), "--order", "1001"); lines(out) != 1 || strings.Contains(out, "shipped") {
		t.Fatalf("--until:\n%s", out)
	}
	if r := runEnv(t, env, "events", "tail", "--outcome", "maybe"); r.code != 2 {
		t.Fatalf("a bad outcome: %+v", r)
	}
}
