package forwarder

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/hipersync/hipersync/pkg/events"
	eventsv1 "github.com/hipersync/hipersync/pkg/gen/hipersync/events/v1"
	"github.com/hipersync/hipersync/services/order-forwarder/orders"
)

// order is one store order being handled by one delivery of one event.
type order struct {
	f      *Forwarder
	m      *events.Message
	tenant string
	id     string
	log    *slog.Logger
	// received is set when the record being built starts an order (or a
	// new generation of it), for the metrics: "received" counts orders,
	// not retries.
	received bool
}

func (f *Forwarder) newOrder(ctx context.Context, m *events.Message, orderID string) *order {
	return &order{f: f, m: m, tenant: m.Tenant, id: orderID,
		log: events.LoggerFrom(ctx).With("order_id", orderID)}
}

// load reads the order's record; nil when there is none yet.
func (o *order) load(ctx context.Context) (*orders.Record, uint64, error) {
	rec, rev, err := o.f.store.Get(ctx, o.tenant, o.id)
	if errors.Is(err, orders.ErrNotFound) {
		return nil, 0, nil
	}
	return rec, rev, err
}

// errAgain asks decide to read the order again and decide again.
var errAgain = errors.New("order changed; deciding again")

// decide runs step on the order's current record until step has decided:
// a lost compare-and-set (someone moved the order meanwhile) or a state
// step changed itself means reading the order again. An outcome event the
// record still owes is published first, so that no later state can bury
// it. optimistic skips the first read, for an event that most likely
// starts the order's record: every write step makes for an absent record
// is a create, which fails when there is one after all.
func (o *order) decide(ctx context.Context, optimistic bool, step func(rec *orders.Record, rev uint64) (string, error)) (string, error) {
	for {
		var (
			rec *orders.Record
			rev uint64
			err error
		)
		if !optimistic {
			if rec, rev, err = o.load(ctx); err != nil {
				return outError, err
			}
		}
		optimistic = false
		o.received = false
		if rec != nil {
			if err := o.publish(ctx, rec, rev); err != nil {
				return outError, err
			}
		}
		out, err := step(rec, rev)
		if errors.Is(err, orders.ErrConflict) || errors.Is(err, errAgain) {
			continue
		}
		return out, err
	}
}

// start returns the record an attempt of generation gen works on: a copy
// of rec, a new record when there is none, or a fresh start of rec when
// gen is a new generation (a corrected approval, a retry after failing).
func (o *order) start(a *eventsv1.StoreOrderApproved, rec *orders.Record, gen int) (*orders.Record, error) {
	now := o.f.now().UTC()
	var r orders.Record
	if rec != nil {
		r = *rec
	} else {
		r = orders.Record{Tenant: o.tenant, OrderID: o.id, CreatedAt: now}
		r.Move(orders.StateReceived, o.f.owner, "approval received", now)
	}
	o.received = rec == nil || gen != rec.Generation
	if rec != nil && gen != rec.Generation {
		r.Generation = gen
		r.Attempts, r.Reasons, r.Reason, r.LastError, r.Outbox = 0, nil, "", "", nil
		r.Approval = nil
	}
	if len(r.Approval) == 0 {
		if err := r.SetApproval(a); err != nil {
			return nil, err
		}
	}
	return &r, nil
}

// write stores r: a create when it is new (created), else a
// compare-and-set on rev. A lost race returns orders.ErrConflict.
func (o *order) write(ctx context.Context, r *orders.Record, created bool, rev uint64) (uint64, error) {
	var (
		next uint64
		err  error
	)
	if created {
		next, err = o.f.store.Create(ctx, r)
	} else {
		next, err = o.f.store.Update(ctx, r, rev)
	}
	if err == nil {
		o.written(r)
	}
	return next, err
}

// queuedWriteWait bounds the wait for the server's answer to a write
// handed to the connection (writeQueued), as a synchronous write's
// request is bounded.
const queuedWriteWait = 5 * time.Second

// writeQueued is write of an update that calls queued once the write is on
// the connection, before waiting for the server: a write of this
// connection issued after queued lands behind it.
func (o *order) writeQueued(ctx context.Context, r *orders.Record, rev uint64, queued func()) (uint64, error) {
	wait, err := o.f.store.UpdateAsync(r, rev)
	if err != nil {
		return 0, err
	}
	queued()
	// The connection gives up on the write's answer after queuedWriteWait
	// (Start's jetstream.WithPublishAsyncTimeout): no timer of its own.
	next, err := wait(ctx)
	if err == nil {
		o.written(r)
	}
	return next, err
}

// written counts the states r entered.
func (o *order) written(r *orders.Record) {
	if o.received {
		o.received = false
		o.f.metrics.transitions.WithLabelValues(string(orders.StateReceived)).Inc()
	}
	if r.State != orders.StateReceived {
		o.f.metrics.transitions.WithLabelValues(string(r.State)).Inc()
	}
}

// publish sends the record's pending outcome event, and marks it
// published in the background: the mark only spares a much later duplicate
// a second publish, so no handler waits for it. rev is the record's
// revision as rec was read or written (0: unknown), which spares the mark
// a read.
func (o *order) publish(ctx context.Context, rec *orders.Record, rev uint64) error {
	sent, err := orders.PublishOutbox(ctx, o.f.pub, o.f.ns, rec)
	if err != nil {
		return fmt.Errorf("publish the outcome of order %s: %w", o.id, err)
	}
	if sent {
		o.f.metrics.eventsOut.WithLabelValues(string(rec.Outbox.Kind)).Inc()
		o.f.markPublished(rec, rev)
	}
	return nil
}

// settleAndPublish writes r and publishes its outcome event.
func (o *order) settleAndPublish(ctx context.Context, r *orders.Record, created bool, rev uint64) error {
	next, err := o.write(ctx, r, created, rev)
	if err != nil {
		return err
	}
	return o.publish(ctx, r, next)
}

// expire settles an order found in sending or cancelling after its
// holder's lease ran out: the holder stopped mid-call, so whether Hiper
// acted cannot be known. A create becomes needs_review; a cancellation
// (which Hiper takes twice without harm) goes back to accepted to be asked
// again.
func (o *order) expire(ctx context.Context, rec *orders.Record, rev uint64) error {
	now := o.f.now()
	next := *rec
	if rec.State == orders.StateCancelling {
		next.Move(orders.StateAccepted, o.f.owner, "cancellation by "+rec.Owner+" interrupted; to be asked again", now)
		_, err := o.write(ctx, &next, false, rev)
		return err
	}
	next.Answer = "nenhuma: a réplica " + rec.Owner + " parou durante o envio"
	next.Reason = next.ReviewText("O envio ao Hiper foi interrompido", next.Answer)
	next.Move(orders.StateNeedsReview, o.f.owner, "lease of "+rec.Owner+" expired during a send", now)
	if err := next.Emit(&eventsv1.OrderNeedsReview{OrderId: o.id, Reason: next.Reason, Code: ReviewSendInterrupted}, ""); err != nil {
		return err
	}
	o.log.Warn("order needs review: a replica stopped while sending it", "holder", rec.Owner, "attempt", rec.Attempts)
	return o.settleAndPublish(ctx, &next, false, rev)
}

// answerWait is how long a cancellation waits before looking again at an
// order another handler is sending (or cancelling): the holder records
// Hiper's answer long before its lease ends, and the store's cancellation
// should follow that answer, not the lease. It looks again sooner at
// first and no later than the lease's end (busyBackoff by delivery).
func (o *order) answerWait(rec *orders.Record) time.Duration {
	return min(o.leaseWait(rec), busyDelay(o.m.Deliveries))
}

// leaseWait is how long to wait for the holder of a lease to finish.
func (o *order) leaseWait(rec *orders.Record) time.Duration {
	return max(rec.LeaseUntil.Sub(o.f.now()), 0) + busyDelay(1)
}

// errLeased is the reason a message waits for another handler's call.
var errLeased = errors.New("another handler is calling Hiper for this order")
