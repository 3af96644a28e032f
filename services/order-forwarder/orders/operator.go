package orders

import (
	"context"
	"errors"
	"fmt"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/hipersync/hipersync/pkg/events"
	eventsv1 "github.com/hipersync/hipersync/pkg/gen/hipersync/events/v1"
	"github.com/hipersync/hipersync/pkg/hiper"
)

// ErrWrongState is an operator action the order's state does not allow.
var ErrWrongState = errors.New("not allowed in this state")

// ErrInvalidHiperID is a Hiper order id that is not a UUID.
var ErrInvalidHiperID = errors.New("hiper order id must be a UUID")

// Operator carries what `hipersync orders resolve` needs.
type Operator struct {
	Store     *Store
	Publisher *events.Publisher
	NS        events.Namespace
	// By names who acts, for the order's history.
	By  string
	Now func() time.Time
}

func (o Operator) now() time.Time {
	if o.Now != nil {
		return o.Now()
	}
	return time.Now()
}

// Resolve settles an order under review (or one that failed) that a person
// found in Hiper: it becomes accepted with hiperOrderID and order.accepted
// is published. If the store cancelled the order meanwhile, its
// cancellation is put back on the stream so the forwarder cancels it in
// Hiper.
func (o Operator) Resolve(ctx context.Context, tenant, orderID, hiperOrderID string) (*Record, error) {
	if !hiper.ValidID(hiperOrderID) {
		return nil, fmt.Errorf("resolve %s/%s: %w, got %q", tenant, orderID, ErrInvalidHiperID, hiperOrderID)
	}
	rec, _, err := o.Store.Mutate(ctx, tenant, orderID, func(r *Record) (*Record, error) {
		if r == nil {
			return nil, ErrNotFound
		}
		if r.State != StateNeedsReview && r.State != StateFailed {
			return nil, fmt.Errorf("%w: the order is %s; resolve settles needs_review or failed orders", ErrWrongState, r.State)
		}
		next := *r
		next.HiperOrderID = hiperOrderID
		// Why it needed review stays in the history; it no longer does.
		next.Reason, next.LastError = "", ""
		next.Move(StateAccepted, o.By, "resolved by an operator with Hiper id "+hiperOrderID, o.now())
		if err := next.Emit(&eventsv1.OrderAccepted{OrderId: r.OrderID, HiperOrderId: hiperOrderID,
			AcceptedAt: timestamppb.New(o.now())}, ""); err != nil {
			return nil, err
		}
		return &next, nil
	})
	if err != nil {
		return nil, fmt.Errorf("resolve %s/%s: %w", tenant, orderID, err)
	}
	if rec, err = o.Store.Publish(ctx, o.Publisher, o.NS, rec); err != nil {
		return rec, fmt.Errorf("resolve %s/%s: %w", tenant, orderID, err)
	}
	if rec.Cancel != nil && len(rec.Cancel.Event) > 0 {
		if err := o.requeueCancel(ctx, rec); err != nil {
			return rec, fmt.Errorf("resolve %s/%s: %w", tenant, orderID, err)
		}
	}
	return rec, nil
}

// Resend puts an order back to received and its stored approval back on
// the stream, for the forwarder to send to Hiper again: for an order under
// review that a person checked is not in Hiper, one that failed or was
// rejected (e.g. after its payment map or currency quote was fixed), or one
// Hiper accepted and then processed with an error (FailedInHiper). An
// order the store cancelled meanwhile is marked cancelled instead and never
// sent.
func (o Operator) Resend(ctx context.Context, tenant, orderID string) (*Record, error) {
	var requeue bool
	rec, _, err := o.Store.Mutate(ctx, tenant, orderID, func(r *Record) (*Record, error) {
		if r == nil {
			return nil, ErrNotFound
		}
		note := "resent by an operator"
		switch {
		case r.State == StateNeedsReview, r.State == StateFailed, r.State == StateRejected, r.State == StateReceived:
		case r.FailedInHiper():
			// Hiper holds this order, failed: it will not invoice, ship or
			// reserve anything for it, so a new create is the only way the
			// order gets done. Once: the record forgets the failure, and the
			// new Hiper order may be resent only when Hiper fails it too.
			note = "resent by an operator after Hiper failed order " + r.HiperOrderID
		case r.State == StateAccepted:
			return nil, fmt.Errorf("%w: the order is accepted, Hiper order %s: sending it again would create it twice in Hiper; "+
				"resend takes an accepted order only once Hiper reports it failed (order.failed)", ErrWrongState, r.HiperOrderID)
		default:
			return nil, fmt.Errorf("%w: the order is %s; resend takes needs_review, failed, rejected or received orders, "+
				"or an accepted one Hiper failed", ErrWrongState, r.State)
		}
		next := *r
		next.Generation++
		next.Attempts, next.Reasons, next.Reason, next.LastError, next.HiperOrderID = 0, nil, "", "", ""
		next.HiperFailure = nil
		if r.Cancel != nil {
			requeue = false
			next.CancelOrigin = "store"
			next.Move(StateCancelled, o.By, "resend asked, but the store cancelled the order: cancelled without sending", o.now())
			return &next, next.Emit(&eventsv1.OrderCancelled{OrderId: r.OrderID, Origin: "store",
				CancelledAt: timestamppb.New(r.Cancel.RequestedAt)}, "")
		}
		if len(r.Approval) == 0 {
			return nil, fmt.Errorf("%w: no approval stored to resend", ErrWrongState)
		}
		requeue = true
		next.Outbox = nil
		next.Move(StateReceived, o.By, note, o.now())
		return &next, nil
	})
	if err != nil {
		return nil, fmt.Errorf("resend %s/%s: %w", tenant, orderID, err)
	}
	if !requeue {
		rec, err = o.Store.Publish(ctx, o.Publisher, o.NS, rec)
		if err != nil {
			return rec, fmt.Errorf("resend %s/%s: %w", tenant, orderID, err)
		}
		return rec, nil
	}
	approval, err := rec.ApprovalMessage()
	if err != nil {
		return rec, fmt.Errorf("resend %s/%s: %w", tenant, orderID, err)
	}
	if err := o.requeue(ctx, rec, events.KindOrderApproved, "resend", approval); err != nil {
		return rec, fmt.Errorf("resend %s/%s: %w", tenant, orderID, err)
	}
	return rec, nil
}

// RequeueReceived puts the stored approval of every received order of
// tenant back on the stream: for orders whose message the stream dropped
// (its retention ended while the tenant was paused) or that nothing drives
// any more. tag makes the message ids one per occasion (e.g. the resume's
// time), so replicas doing the same sweep publish each order once; a
// message still on the stream meanwhile is harmless, as the state machine
// sends an order once whatever the deliveries.
func (o Operator) RequeueReceived(ctx context.Context, tenant, tag string) (int, error) {
	recs, err := o.Store.List(ctx, tenant)
	if err != nil {
		return 0, err
	}
	n := 0
	for _, rec := range recs {
		if rec.State != StateReceived || len(rec.Approval) == 0 {
			continue
		}
		approval, err := rec.ApprovalMessage()
		if err != nil {
			return n, fmt.Errorf("requeue %s/%s: %w", tenant, rec.OrderID, err)
		}
		if err := o.requeue(ctx, rec, events.KindOrderApproved, "requeue."+tag, approval); err != nil {
			return n, fmt.Errorf("requeue %s/%s: %w", tenant, rec.OrderID, err)
		}
		n++
	}
	return n, nil
}

func (o Operator) requeueCancel(ctx context.Context, rec *Record) error {
	c := &eventsv1.StoreOrderCancelled{}
	if err := proto.Unmarshal(rec.Cancel.Event, c); err != nil {
		return fmt.Errorf("decode stored cancellation: %w", err)
	}
	return o.requeue(ctx, rec, events.KindOrderCancelled, "recancel", c)
}

// requeue publishes msg on the order's store subject with an id new to the
// stream (the generation is in it) yet the same if the operator repeats
// the command after a crash.
func (o Operator) requeue(ctx context.Context, rec *Record, kind events.Kind, what string, msg proto.Message) error {
	key, err := Key(rec.Tenant, rec.OrderID)
	if err != nil {
		return err
	}
	id := fmt.Sprintf("%s.%s.%d", what, key, rec.Generation)
	if _, err := o.Publisher.Publish(ctx, o.NS.StoreSubject(rec.Tenant, kind), id, msg,
		events.WithEventSubject(rec.OrderID)); err != nil {
		return fmt.Errorf("re-queue %s: %w", kind, err)
	}
	return nil
}
