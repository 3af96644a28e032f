package orders

import (
	"context"
	"errors"

	"github.com/hipersync/hipersync/pkg/events"
)

// PublishOutbox publishes the record's outbox event unless it is known to
// be out already, and reports whether it sent it. The event id is the
// outbox's, so a publish repeated after a crash (or by two replicas) is
// dropped by the stream's duplicate window.
func PublishOutbox(ctx context.Context, pub *events.Publisher, ns events.Namespace, rec *Record) (bool, error) {
	out := rec.Outbox
	if out == nil || out.Published {
		return false, nil
	}
	msg, err := out.OutboxMessage()
	if err != nil {
		return false, err
	}
	if _, err := pub.Publish(ctx, ns.HiperSubject(rec.Tenant, out.Kind), out.ID, msg,
		events.WithEventSubject(rec.OrderID)); err != nil {
		return false, err
	}
	return true, nil
}

// MarkPublished records that the outbox event id went out, so that a much
// later duplicate, past the stream's duplicate window, does not publish it
// again. A record whose outbox is another by now is left alone.
func (s *Store) MarkPublished(ctx context.Context, tenant, orderID, id string) error {
	_, _, err := s.Mutate(ctx, tenant, orderID, func(r *Record) (*Record, error) {
		if r == nil || r.Outbox == nil || r.Outbox.ID != id || r.Outbox.Published {
			return nil, nil
		}
		next := *r
		o := *r.Outbox
		o.Published = true
		next.Outbox = &o
		return &next, nil
	})
	return err
}

// MarkPublishedAt is MarkPublished for rec as written at revision rev: one
// compare-and-set write instead of a read and a write, the common case of
// a handler marking the event of the record it just wrote. When the record
// moved on meanwhile it falls back to MarkPublished.
func (s *Store) MarkPublishedAt(ctx context.Context, rec *Record, rev uint64) error {
	if rec.Outbox == nil || rec.Outbox.Published {
		return nil
	}
	if rev > 0 {
		next := *rec
		o := *rec.Outbox
		o.Published = true
		next.Outbox = &o
		_, err := s.Update(ctx, &next, rev)
		if !errors.Is(err, ErrConflict) {
			return err
		}
	}
	return s.MarkPublished(ctx, rec.Tenant, rec.OrderID, rec.Outbox.ID)
}

// Publish publishes the record's pending outbox event and marks it
// published, and returns the record as it then is.
func (s *Store) Publish(ctx context.Context, pub *events.Publisher, ns events.Namespace, rec *Record) (*Record, error) {
	sent, err := PublishOutbox(ctx, pub, ns, rec)
	if err != nil || !sent {
		return rec, err
	}
	if err := s.MarkPublished(ctx, rec.Tenant, rec.OrderID, rec.Outbox.ID); err != nil {
		return rec, err
	}
	cur, _, err := s.Get(ctx, rec.Tenant, rec.OrderID)
	return cur, err
}
