package orders

import (
	"context"
	"errors"
	"fmt"

	"github.com/hipersync/hipersync/pkg/events"
)

// Publish publishes the record's outbox event, if it is still pending, and
// marks it published. The event id is the outbox's, so a publish repeated
// after a crash is dropped by the stream's duplicate window; marking it
// published keeps a much later duplicate approval from publishing again.
// It returns the record as stored after marking.
func (s *Store) Publish(ctx context.Context, pub *events.Publisher, ns events.Namespace, rec *Record, rev uint64) (*Record, uint64, error) {
	if rec.Outbox == nil || rec.Outbox.Published {
		return rec, rev, nil
	}
	msg, err := rec.Outbox.OutboxMessage()
	if err != nil {
		return rec, rev, err
	}
	out := rec.Outbox
	if _, err := pub.Publish(ctx, ns.HiperSubject(rec.Tenant, out.Kind), out.ID, msg,
		events.WithEventSubject(rec.OrderID)); err != nil {
		return rec, rev, err
	}
	marked := *rec
	o := *out
	o.Published = true
	marked.Outbox = &o
	next, err := s.Update(ctx, &marked, rev)
	if err == nil {
		return &marked, next, nil
	}
	if !errors.Is(err, ErrConflict) {
		return rec, rev, fmt.Errorf("mark %s published: %w", out.ID, err)
	}
	// Someone changed the record meanwhile (another replica marking the same
	// event, or a new state with its own outbox): the event is out either
	// way, and the record as it is now is theirs to settle.
	cur, curRev, gerr := s.Get(ctx, rec.Tenant, rec.OrderID)
	if gerr != nil {
		return rec, rev, gerr
	}
	if cur.Outbox != nil && cur.Outbox.ID == out.ID && !cur.Outbox.Published {
		return s.Publish(ctx, pub, ns, cur, curRev)
	}
	return cur, curRev, nil
}
