package forwarder

import (
	"context"
	"errors"
	"fmt"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/hipersync/hipersync/pkg/events"
	brokerv1 "github.com/hipersync/hipersync/pkg/gen/hipersync/broker/v1"
	eventsv1 "github.com/hipersync/hipersync/pkg/gen/hipersync/events/v1"
	"github.com/hipersync/hipersync/pkg/hiper"
	"github.com/hipersync/hipersync/pkg/tenant"
	"github.com/hipersync/hipersync/services/order-forwarder/orders"
)

// cancelled handles store.<tenant>.order.cancelled: an order in Hiper is
// cancelled there once; one not sent yet never will be, even when its
// approval comes later.
func (f *Forwarder) cancelled(ctx context.Context, m *events.Message) (string, error) {
	c := &eventsv1.StoreOrderCancelled{}
	if err := decodeOrderEvent(m, c, "a cancellation"); err != nil {
		return outError, err
	}
	o := f.newOrder(ctx, m, c.GetOrderId())
	return o.decide(ctx, false, func(rec *orders.Record, rev uint64) (string, error) {
		return o.cancel(ctx, c, rec, rev)
	})
}

// cancel decides by the order's state what the store's cancellation calls
// for.
func (o *order) cancel(ctx context.Context, c *eventsv1.StoreOrderCancelled, rec *orders.Record, rev uint64) (string, error) {
	now := o.f.now()
	req, err := cancelRequest(c, now)
	if err != nil {
		return outError, err
	}
	if rec == nil {
		r := &orders.Record{Tenant: o.tenant, OrderID: o.id, CreatedAt: now.UTC(), Cancel: req}
		return o.cancelUnsent(ctx, r, true, 0, "cancelled by the store before its approval arrived")
	}
	switch rec.State {
	case orders.StateReceived, orders.StateRejected, orders.StateFailed:
		next := *rec
		next.Cancel = req
		return o.cancelUnsent(ctx, &next, false, rev, "cancelled by the store before it was sent")
	case orders.StateSending, orders.StateCancelling:
		if rec.Leased(now) {
			return outWaiting, events.RetryAfter(o.answerWait(rec), errLeased)
		}
		if err := o.expire(ctx, rec, rev); err != nil {
			return outError, err
		}
		return "", errAgain
	case orders.StateAccepted:
		return o.cancelInHiper(ctx, req, rec, rev)
	case orders.StateNeedsReview:
		if rec.Cancel != nil {
			break
		}
		next := *rec
		next.Cancel = req
		next.Move(orders.StateNeedsReview, o.f.owner, "cancellation requested by the store", now)
		msg := "A loja cancelou este pedido enquanto ele aguarda revisão. " + rec.Reason +
			" Se o pedido estiver no Hiper, resolva-o com --hiper-id e o cancelamento será enviado ao Hiper; se não estiver, --resend o marca como cancelado sem enviá-lo."
		if err := next.Emit(&eventsv1.OrderNeedsReview{OrderId: o.id, Reason: msg, Code: ReviewCancelUnderReview}, "cancel"); err != nil {
			return outError, err
		}
		if err := o.settleAndPublish(ctx, &next, false, rev); err != nil {
			return outError, err
		}
		o.log.Warn("store cancelled an order under review; recorded for the operator")
		return outNeedsReview, nil
	}
	// Cancelled already (or under review with the request recorded): a
	// duplicate, whose event decide has published if it was still owed.
	return outDuplicate, nil
}

// cancelRequest is the store's cancellation as the record keeps it.
func cancelRequest(c *eventsv1.StoreOrderCancelled, now time.Time) (*orders.CancelRequest, error) {
	ev, err := proto.MarshalOptions{Deterministic: true}.Marshal(c)
	if err != nil {
		return nil, fmt.Errorf("encode cancellation: %w", err)
	}
	at := now.UTC()
	if c.GetCancelledAt().IsValid() {
		at = c.GetCancelledAt().AsTime()
	}
	return &orders.CancelRequest{Reason: c.GetReason(), RequestedAt: at, Event: ev}, nil
}

// cancelUnsent cancels an order that never reached Hiper.
func (o *order) cancelUnsent(ctx context.Context, r *orders.Record, created bool, rev uint64, note string) (string, error) {
	r.CancelOrigin = originStore
	r.Move(orders.StateCancelled, o.f.owner, note, o.f.now())
	if err := r.Emit(&eventsv1.OrderCancelled{OrderId: o.id, Origin: originStore,
		CancelledAt: timestamppb.New(r.Cancel.RequestedAt)}, ""); err != nil {
		return outError, err
	}
	if err := o.settleAndPublish(ctx, r, created, rev); err != nil {
		return outError, err
	}
	o.log.Info("order cancelled before reaching Hiper")
	return outCancelled, nil
}

// Origins of OrderCancelled: the store asked, or the merchant cancelled the
// order in Hiper (the invoice-watcher announces those).
const (
	originStore = "store"
	originHiper = "hiper"
)

// hiperFailed handles hiper.<tenant>.order.failed of an order that reached
// Hiper (the invoice-watcher's; the forwarder's own names no Hiper order):
// Hiper processed it with an error and may have released the stock it had
// reserved, so its products get a stock refresh, as after a cancellation.
// The record stays accepted (Hiper answered) and notes the failure, which
// lets an operator resend the order (orders.Operator.Resend).
func (f *Forwarder) hiperFailed(ctx context.Context, m *events.Message) error {
	failed := &eventsv1.OrderFailed{}
	if err := m.Decode(failed); err != nil {
		return err
	}
	if failed.GetHiperOrderId() == "" || failed.GetOrderId() == "" {
		return nil // the forwarder's own: the order never reached Hiper
	}
	o := f.newOrder(ctx, m, failed.GetOrderId())
	rec, _, err := o.load(ctx)
	switch {
	case err != nil:
		return err
	case rec == nil || rec.HiperOrderID != failed.GetHiperOrderId():
		return nil // not an order this forwarder sent, or another one
	}
	if _, _, err := f.store.Mutate(ctx, o.tenant, o.id, func(cur *orders.Record) (*orders.Record, error) {
		if cur == nil || cur.State != orders.StateAccepted || cur.HiperOrderID != failed.GetHiperOrderId() || cur.FailedInHiper() {
			return nil, nil // moved on (cancelled, resent) or noted already
		}
		next := *cur
		next.HiperFailure = &orders.HiperFailure{HiperOrderID: cur.HiperOrderID, At: f.now().UTC(), Message: failed.GetMessage()}
		next.Move(orders.StateAccepted, f.owner, "Hiper processed the order with an error: it may be resent", f.now())
		return &next, nil
	}); err != nil {
		return err
	}
	f.refreshStock(o, rec.Products)
	o.log.Info("Hiper failed the order; its products' stock is refreshed", "hiper_order_id", rec.HiperOrderID)
	return nil
}

// hiperCancelled handles hiper.<tenant>.order.cancelled with origin hiper:
// the invoice-watcher saw the merchant cancel the order in Hiper and
// announced it. The record follows, so that it stays the one truth about
// the order (`orders show` agrees with the events) and a store cancellation
// arriving later finds the order cancelled and announces nothing twice.
// Nothing is published: the watcher's event is the announcement. The
// order's products get a stock refresh, as after the store's cancellation:
// the watcher does not know them, the record does.
func (f *Forwarder) hiperCancelled(ctx context.Context, m *events.Message) error {
	c := &eventsv1.OrderCancelled{}
	if err := m.Decode(c); err != nil {
		return err
	}
	if c.GetOrigin() != originHiper || c.GetOrderId() == "" {
		return nil // ours (origin store), or nothing to follow
	}
	o := f.newOrder(ctx, m, c.GetOrderId())
	_, err := o.decide(ctx, false, func(rec *orders.Record, rev uint64) (string, error) {
		now := f.now()
		switch {
		case rec == nil || rec.State == orders.StateCancelled:
			return outDuplicate, nil
		case rec.HiperOrderID != "" && c.GetHiperOrderId() != "" && rec.HiperOrderID != c.GetHiperOrderId():
			o.log.Warn("Hiper cancelled another order than the one recorded; ignored",
				"hiper_order_id", rec.HiperOrderID, "cancelled", c.GetHiperOrderId())
			return outDuplicate, nil
		case rec.Leased(now):
			return outWaiting, events.RetryAfter(o.answerWait(rec), errLeased)
		}
		next := *rec
		if next.HiperOrderID == "" {
			next.HiperOrderID = c.GetHiperOrderId() // an order under review: Hiper had it
		}
		next.CancelOrigin, next.Reason = originHiper, ""
		if next.Cancel != nil {
			cr := *next.Cancel
			cr.Error = ""
			next.Cancel = &cr
		}
		// The watcher's event is this state's announcement: recorded as
		// already published, under its own id.
		if err := next.Emit(c, originHiper); err != nil {
			return outError, err
		}
		next.Outbox.Published = true
		next.Move(orders.StateCancelled, f.owner, "cancelled by the merchant in Hiper", now)
		if _, err := o.write(ctx, &next, false, rev); err != nil {
			return outError, err
		}
		// The cancellation freed the order's stock in Hiper.
		f.refreshStock(o, next.Products)
		o.log.Info("order cancelled in Hiper by the merchant", "hiper_order_id", next.HiperOrderID, "was", rec.State)
		return outCancelled, nil
	})
	return err
}

// cancelInHiper asks Hiper to cancel an accepted order. Hiper takes a
// repeated cancellation without harm, so unlike a create it is simply
// asked again after any failure that is not a refusal.
func (o *order) cancelInHiper(ctx context.Context, req *orders.CancelRequest, rec *orders.Record, rev uint64) (string, error) {
	f := o.f
	t, known := f.dir.Get(o.tenant)
	if known && t.GetState() == brokerv1.TenantState_TENANT_STATE_PAUSED {
		return outWaiting, events.RetryAfter(f.cfg.PausedRetry, errPausedCancel)
	}
	if rec.Cancel != nil {
		req.Attempts = rec.Cancel.Attempts
	}
	if err := f.pace.Wait(ctx, o.tenant); err != nil {
		return outWaiting, events.RetryAfter(busyDelay(o.m.Deliveries), err)
	}
	now := f.now()
	next := *rec
	next.Cancel = req
	next.Owner, next.LeaseUntil = f.owner, now.Add(f.cfg.lease()).UTC()
	next.Move(orders.StateCancelling, f.owner, "cancellation requested by the store", now)
	f.calls.Add(1) // before the write: once it lands, the call must be seen through
	defer f.calls.Done()
	srev, err := o.write(ctx, &next, false, rev)
	if err != nil {
		return outError, err
	}

	detached := context.WithoutCancel(ctx)
	// The call's deadline comes from the lease written (an expired one
	// fails at once, and a cancellation is safe to ask again).
	pctx, cancel := context.WithTimeout(detached, f.cfg.callWindow(next.LeaseUntil, f.now()))
	perr := f.hiper.Session(f.tokenSource(o.tenant, known && tenant.Syncs(t.GetState()))).CancelSalesOrder(pctx, rec.HiperOrderID)
	cancel()
	rctx, cancel := context.WithTimeout(detached, f.cfg.lease())
	defer cancel()

	var (
		outcome string
		retry   error
	)
	apply := func(r *orders.Record) error {
		now := f.now()
		c := *r.Cancel
		r.Cancel = &c
		if perr == nil {
			c.Error = ""
			r.CancelOrigin = originStore
			r.Move(orders.StateCancelled, f.owner, "cancelled in Hiper", now)
			outcome = outCancelled
			return r.Emit(&eventsv1.OrderCancelled{OrderId: o.id, HiperOrderId: r.HiperOrderID, Origin: originStore,
				CancelledAt: timestamppb.New(c.RequestedAt)}, "")
		}
		c.Error = shortError(perr)
		v := judge(perr)
		if errors.Is(perr, hiper.ErrNotFound) {
			v = refused
		}
		switch v {
		case refused:
			r.Move(orders.StateAccepted, f.owner, "Hiper refused the cancellation", now)
			outcome = outCancelRefused
			return r.Emit(&eventsv1.OrderNeedsReview{OrderId: o.id, Code: ReviewCancelRefused, Reason: fmt.Sprintf(
				"O Hiper recusou o cancelamento do pedido %s: %s. Cancele-o no Hiper.", r.HiperOrderID, c.Error)}, "cancel-refused")
		case paused:
			r.Move(orders.StateAccepted, f.owner, "tenant paused", now)
			outcome, retry = outWaiting, events.RetryAfter(f.cfg.PausedRetry, perr)
			return nil
		}
		c.Attempts++
		if c.Attempts >= f.cfg.MaxAttempts {
			r.Move(orders.StateAccepted, f.owner, "cancellation attempts exhausted", now)
			outcome, retry = outFailed, events.Permanent(events.ReasonRetriesExhausted, perr)
			return r.Emit(&eventsv1.OrderNeedsReview{OrderId: o.id, Code: ReviewCancelUnconfirmed, Reason: fmt.Sprintf(
				"O cancelamento do pedido %s não foi confirmado pelo Hiper após %d tentativas (%s). Cancele-o no Hiper, ou use `hipersync dlq retry` para tentar de novo.",
				r.HiperOrderID, c.Attempts, c.Error)}, "cancel-failed")
		}
		r.Move(orders.StateAccepted, f.owner, "cancellation not confirmed: "+c.Error, now)
		outcome, retry = outRetry, events.RetryAfter(f.cfg.backoff(c.Attempts, perr), perr)
		return nil
	}
	done, drev, err := o.recordAnswer(rctx, &next, srev, apply, orders.StateAccepted, nil)
	if err != nil {
		return outError, err
	}
	switch outcome {
	case outCancelled:
		f.refreshStock(o, done.Products)
		o.log.Info("order cancelled in Hiper", "hiper_order_id", done.HiperOrderID)
	case outCancelRefused:
		o.log.Warn("Hiper refused to cancel the order", "hiper_order_id", done.HiperOrderID, "error", perr)
	default:
		o.log.Warn("cancellation not confirmed by Hiper", "hiper_order_id", done.HiperOrderID, "attempt", done.Cancel.Attempts, "error", perr)
	}
	if err := o.publish(rctx, done, drev); err != nil {
		return outError, err
	}
	return outcome, retry
}

var errPausedCancel = errors.New("tenant paused; the cancellation waits")
