package forwarder

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/hipersync/hipersync/pkg/events"
	eventsv1 "github.com/hipersync/hipersync/pkg/gen/hipersync/events/v1"
	"github.com/hipersync/hipersync/services/order-forwarder/orders"
)

// ReasonRepeatedError is the dead-letter code of an order event whose
// handling failed MaxErrors times in a row.
const ReasonRepeatedError = "repeated_error"

// repeats counts, per message, the failures in a row that are no
// deliberate wait. It is per replica: with several replicas an event may
// fail a few more times before one of them gives up, never forever.
type repeats struct {
	mu sync.Mutex
	n  map[uint64]int
}

func (r *repeats) add(seq uint64) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.n[seq]++
	return r.n[seq]
}

func (r *repeats) forget(seq uint64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	delete(r.n, seq)
}

// repeated reports whether a handler's error is one that must not repeat
// forever: not a success, not already the end of the message, and not a
// wait the forwarder chose (a paused tenant, a Hiper outage, a lease, a busy
// tenant, a retry whose attempts are bounded by the order itself).
func repeated(err error) bool {
	if err == nil || errors.Is(err, events.ErrPermanent) || errors.Is(err, events.ErrMalformed) {
		return false
	}
	_, wait := errors.AsType[*events.RetryAfterError](err)
	return !wait
}

// giveUp ends an event whose handling failed n times in a row: an order
// that is not settled yet is marked failed with order.failed (a person is
// told, the approval stays in the record and the dead letter to be resent),
// and the event becomes a dead letter.
func (f *Forwarder) giveUp(ctx context.Context, m *events.Message, n int, cause error) (string, error) {
	log := events.LoggerFrom(ctx)
	dead := events.Permanent(ReasonRepeatedError, fmt.Errorf("failed %d times in a row: %w", n, cause))
	if m.Kind != events.KindOrderApproved {
		log.Error("order event failed again and again; dead-lettered", "errors", n, "error", cause)
		return outError, dead
	}
	a := &eventsv1.StoreOrderApproved{}
	if err := m.Decode(a); err != nil || a.GetOrderId() == "" {
		return outError, dead
	}
	o := f.newOrder(ctx, m, a.GetOrderId())
	reason := fmt.Sprintf("Não foi possível processar o pedido: o mesmo erro se repetiu %d vezes (%s). Ele não foi enviado ao Hiper; "+
		"corrija a causa e reenvie-o com `hipersync dlq retry` ou `hipersync orders resolve %s %s --resend`.", n, shortError(cause), o.tenant, o.id)
	failed := &eventsv1.OrderFailed{OrderId: o.id, Message: reason, Code: ReasonRepeatedError}
	rec, rev, err := f.store.Mutate(ctx, o.tenant, o.id, func(r *orders.Record) (*orders.Record, error) {
		if r == nil || r.State != orders.StateReceived {
			return nil, nil
		}
		next := *r
		next.Reason, next.LastError = reason, cause.Error()
		next.Move(orders.StateFailed, f.owner, "the same error repeated", f.now())
		return &next, next.Emit(failed, "")
	})
	switch {
	case err == nil && rec != nil && rec.State == orders.StateFailed:
		if perr := o.publish(ctx, rec, rev); perr != nil {
			return outError, perr // the failure is recorded; the next delivery publishes it
		}
	case err == nil && rec != nil:
		// Settled or being sent: its own outcome stands.
		log.Error("order event failed again and again; dead-lettered, the order stays "+string(rec.State), "errors", n, "error", cause)
		return outError, dead
	default:
		// No record, or one that cannot be written (the failure itself):
		// the event goes out on its own, with an id of this message.
		key, kerr := orders.Key(o.tenant, o.id)
		if kerr != nil {
			return outError, dead
		}
		if _, perr := f.pub.Publish(ctx, f.ns.HiperSubject(o.tenant, events.KindOrderFailed),
			fmt.Sprintf("order.%s.error.%d", key, m.StreamSeq), failed, events.WithEventSubject(o.id)); perr != nil {
			return outError, fmt.Errorf("publish order.failed after %d errors: %w", n, perr)
		}
		f.metrics.eventsOut.WithLabelValues(string(events.KindOrderFailed)).Inc()
	}
	log.Error("order failed: the same error repeated; dead-lettered", "errors", n, "error", cause)
	return outFailed, dead
}
