package forwarder

import (
	"context"
	"testing"

	"github.com/nats-io/nats.go"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	"github.com/hipersync/hipersync/pkg/events"
	brokerv1 "github.com/hipersync/hipersync/pkg/gen/hipersync/broker/v1"
	eventsv1 "github.com/hipersync/hipersync/pkg/gen/hipersync/events/v1"
	"github.com/hipersync/hipersync/pkg/testkit"
	"github.com/hipersync/hipersync/services/order-forwarder/orders"
)

// Stores name statuses their own way (seeds 002, 004): the tenant's status
// map says what store.<tenant>.order.<status> means; a status it does not
// map is acknowledged and noted, never dead-lettered, and never reaches
// Hiper (seed 000: approved orders only).
func TestStatusMap(t *testing.T) {
	t.Parallel()
	h := newHarness(t, harnessOptions{settings: &brokerv1.TenantSettings{
		StatusMap: map[string]string{"paid": "approved", "canceled": "cancelled", "refunded": "cancelled"},
	}})
	h.forwarder(testConfig(), "r1")
	ctx := context.Background()
	// As a store's plain NATS client publishes: JSON, its own subject.
	publish := func(status, msgID string, msg proto.Message) {
		t.Helper()
		b, err := protojson.Marshal(msg)
		if err != nil {
			t.Fatal(err)
		}
		m := &nats.Msg{Subject: h.st.NS.StoreSubject("acme", events.Kind("order."+status)), Data: b,
			Header: nats.Header{"Content-Type": []string{"application/json"}, "Nats-Msg-Id": []string{msgID}}}
		if _, err := h.st.JS.PublishMsg(ctx, m); err != nil {
			t.Fatal(err)
		}
	}
	publish("pending", "store-7401-pending", h.order("acme", "7401", 1))
	publish("paid", "store-7401-paid", h.order("acme", "7401", 1))
	h.waitEvent(events.KindOrderAccepted, "7401", wait)
	ign := h.waitEvent(events.KindOrderStatusIgnored, "7401", wait).(*eventsv1.OrderStatusIgnored)
	if ign.GetStatus() != "pending" || ign.GetReason() != ReasonStatusNotMapped || ign.GetMessage() == "" {
		t.Fatalf("order.status_ignored = %v", ign)
	}
	publish("canceled", "store-7401-canceled", &eventsv1.StoreOrderCancelled{OrderId: "7401", Reason: "cliente desistiu"})
	h.waitState("acme", "7401", orders.StateCancelled, wait)
	testkit.WaitFor(t, wait, "every event handled", func() bool { return h.pending() == 0 })
	if n := len(h.deadLetters()); n != 0 {
		t.Fatalf("%d dead letters", n)
	}
	if n := len(h.simOrders("acme", "7401")); n != 1 || h.posted() != 1 {
		t.Fatalf("orders in Hiper: %d, creates %d", n, h.posted())
	}
}
