package forwarder

import (
	"context"
	"fmt"
	"strings"

	"github.com/hipersync/hipersync/pkg/events"
	eventsv1 "github.com/hipersync/hipersync/pkg/gen/hipersync/events/v1"
	"github.com/hipersync/hipersync/pkg/tenant"
)

// ReasonStatusNotMapped is why a store status was ignored.
const ReasonStatusNotMapped = "status_not_mapped"

// statusAction is what the tenant's status map makes of the store status in
// m's subject (store.<tenant>.order.<status>): "approved", "cancelled" or
// "" to ignore it.
func (f *Forwarder) statusAction(m *events.Message) string {
	status, ok := strings.CutPrefix(string(m.Kind), "order.")
	if !ok {
		return ""
	}
	t, _ := f.dir.Get(m.Tenant)
	return tenant.SettingsOf(t.GetSettings()).StatusAction(status)
}

// ignoreStatus acknowledges a store status the tenant does not map and
// notes it in the sync log (order.status_ignored), never dead-lettering
// it: a store platform publishes every status it has (seeds 002, 004),
// and only approved orders go to Hiper (seed 000).
func (f *Forwarder) ignoreStatus(ctx context.Context, m *events.Message) (string, error) {
	status := strings.TrimPrefix(string(m.Kind), "order.")
	// Whatever the payload, its orderId is field 1 / "orderId" of both
	// store messages; the rest may not decode as either.
	named := storeOrderID(m)
	ev := &eventsv1.OrderStatusIgnored{
		OrderId: named, Status: status, Reason: ReasonStatusNotMapped,
		Message: fmt.Sprintf("A loja enviou o pedido %s com a situação %q, que a integração não mapeia: nada foi feito no Hiper. "+
			"Para que essa situação aprove ou cancele pedidos, mapeie-a (hipersync tenant settings --status-map %s=approved).",
			named, status, status),
	}
	id := fmt.Sprintf("%s:ignored:%s", m.Tenant, m.ID())
	if m.ID() == "" {
		id = fmt.Sprintf("%s:ignored:%d", m.Tenant, m.StreamSeq)
	}
	if _, err := f.pub.Publish(ctx, f.ns.HiperSubject(m.Tenant, events.KindOrderStatusIgnored), id, ev); err != nil {
		return "", err
	}
	events.LoggerFrom(ctx).Info("store order status not mapped; acknowledged and noted", "status", status, "order_id", named)
	return "ignored", nil
}

// storeOrderID reads the order id of a store message of any status.
func storeOrderID(m *events.Message) string {
	var a eventsv1.StoreOrderApproved
	if m.Decode(&a) == nil && a.GetOrderId() != "" {
		return a.GetOrderId()
	}
	var c eventsv1.StoreOrderCancelled
	_ = m.Decode(&c)
	return c.GetOrderId()
}
