package watcher

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/hipersync/hipersync/pkg/events"
	eventsv1 "github.com/hipersync/hipersync/pkg/gen/hipersync/events/v1"
	"github.com/hipersync/hipersync/services/invoice-watcher/order"
)

// accepted handles hiper.<tenant>.order.accepted: the order is followed
// from now on, once however often the event comes.
func (w *Watcher) accepted(ctx context.Context, m *events.Message) error {
	var a eventsv1.OrderAccepted
	if err := m.Decode(&a); err != nil {
		return err
	}
	orderID, hiperID := a.GetOrderId(), strings.TrimSpace(a.GetHiperOrderId())
	if orderID == "" || hiperID == "" {
		return events.Permanent("missing_order_id", errors.New("order.accepted without orderId or hiperOrderId cannot be followed"))
	}
	now := w.now()
	at := m.Published
	if a.GetAcceptedAt().IsValid() {
		at = a.GetAcceptedAt().AsTime()
	}
	if at.IsZero() || at.After(now) {
		at = now
	}
	started := false
	rec, err := w.records.update(ctx, m.Tenant, orderID, func(cur *order.Record) (*order.Record, error) {
		switch {
		case cur == nil:
			cur = &order.Record{Tenant: m.Tenant, OrderID: orderID}
		case cur.Accepted() && strings.EqualFold(cur.HiperOrderID, hiperID):
			return nil, nil // a duplicate
		case cur.Final == order.Failed:
			// Hiper failed the order it held, and an operator resent the
			// store's order: a new Hiper order, followed afresh.
			next, ok := cur.FollowNext(hiperID)
			if !ok {
				return nil, nil
			}
			cur = next
		case cur.Accepted():
			return nil, events.Permanent("conflicting_hiper_order", fmt.Errorf(
				"order %s is followed as Hiper order %s; this order.accepted names %s", orderID, cur.HiperOrderID, hiperID))
		}
		started = true
		cur.HiperOrderID, cur.AcceptedAt, cur.ChangedAt, cur.WrittenAt = hiperID, at.UTC(), at.UTC(), now.UTC()
		return cur, nil
	})
	if err != nil {
		return err
	}
	if rec.Final != "" {
		return nil
	}
	// The task goes in after the record, so a task always finds its record;
	// a crash in between redelivers the event, and this puts the task in.
	if err := w.ensureTask(ctx, rec); err != nil {
		return err
	}
	if started {
		w.m.started.Inc()
		events.LoggerFrom(ctx).Info("following order in Hiper", "order_id", orderID, "hiper_order_id", hiperID)
	}
	return nil
}

// cancelRequested handles the order-forwarder's hiper.<tenant>.order.cancelled
// with origin store: Hiper took the store's cancellation and the forwarder
// announced it, so when Hiper shows the order cancelled the watcher does
// not. It may come before the order's acceptance. The store's own
// store.<tenant>.order.cancelled is not enough (Hiper may refuse it).
func (w *Watcher) cancelRequested(ctx context.Context, m *events.Message) error {
	var orderID string
	switch m.Source {
	case events.SourceStore:
		// The store's request alone proves nothing: Hiper may refuse it
		// and the merchant cancel the order by hand later, which must
		// then be announced (origin hiper). Only the forwarder's
		// order.cancelled, once Hiper took the cancellation, counts.
		return nil
	default:
		var c eventsv1.OrderCancelled
		if err := m.Decode(&c); err != nil {
			return err
		}
		if c.GetOrigin() != order.OriginStore {
			return nil // the watcher's own, or another's
		}
		orderID = c.GetOrderId()
	}
	if orderID == "" {
		return events.Permanent("missing_order_id", errors.New("a cancellation without orderId names no order"))
	}
	now := w.now().UTC()
	_, err := w.records.update(ctx, m.Tenant, orderID, func(cur *order.Record) (*order.Record, error) {
		if cur == nil {
			cur = &order.Record{Tenant: m.Tenant, OrderID: orderID}
		} else if !cur.StoreCancelAt.IsZero() {
			return nil, nil
		}
		cur.StoreCancelAt, cur.WrittenAt = now, now
		return cur, nil
	})
	return err
}
