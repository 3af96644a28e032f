package feed

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/protobuf/proto"

	"github.com/hipersync/hipersync/pkg/events"
)

// Change is what one product's new state means: the events that tell the
// store, the key-value writes that record it, and what it counts for the
// guardrail.
type Change struct {
	Events []Event
	Writes []Write
	// New is set for a product the poller had no state for: it counts into
	// the tenant's products, the guardrail's base.
	New bool
	// Deactivated: a published, active product became inactive or removed.
	Deactivated bool
	// StockZeroed: a product in stock ran out (quantity 0 or less).
	StockZeroed bool
	// PriceCut: a price fell below half of the published one.
	PriceCut bool
	// Recreated: a product the store has is published anew, as created
	// (catalog reset or unlink).
	Recreated bool
}

// Event is an event to publish, under a deterministic id.
type Event struct {
	Subject string
	ID      string
	Msg     proto.Message
}

// Write is a key-value write: a Put of Value, or a Delete.
type Write struct {
	// Bucket is the bucket's full (namespaced) name.
	Bucket string
	Key    string
	Value  []byte
	Delete bool
}

// ackTimeout bounds the wait for one unit's acknowledgements.
const ackTimeout = 30 * time.Second

// Sink stores changes: first every event (and waits until the stream has
// them all), then every write. A product's state is thus never recorded
// before the events that announce it, and a failure in between publishes
// them again next time, under the same ids.
type Sink struct {
	js  jetstream.JetStream
	pub *events.Publisher
	// tally, when set, counts what is published (Counting).
	tally *Tally
}

// NewSink returns a Sink publishing with pub and writing through js, which
// should allow many asynchronous publishes in flight
// (jetstream.WithPublishAsyncMaxPending).
func NewSink(js jetstream.JetStream, pub *events.Publisher) *Sink { return &Sink{js: js, pub: pub} }

// Apply stores changes and returns how many events the stream took (a
// duplicate of one already stored does not count).
func (k *Sink) Apply(ctx context.Context, changes []Change) (published int, err error) {
	if published, err = k.publish(ctx, changes); err != nil {
		return 0, err
	}
	return published, k.write(ctx, changes)
}

// publish publishes the changes' events and waits until the stream has
// them all.
func (k *Sink) publish(ctx context.Context, changes []Change) (int, error) {
	var futures []jetstream.PubAckFuture
	for _, c := range changes {
		for _, e := range c.Events {
			f, err := k.pub.PublishAsync(ctx, e.Subject, e.ID, e.Msg, events.WithEventSubject(subjectOf(e)))
			if err != nil {
				return 0, err
			}
			futures = append(futures, f)
		}
	}
	published, err := wait(ctx, futures)
	if err != nil {
		return 0, fmt.Errorf("publish events: %w", err)
	}
	k.tally.add(changes)
	return published, nil
}

// write makes the changes' key-value writes and waits until they are all
// stored.
func (k *Sink) write(ctx context.Context, changes []Change) error {
	var futures []jetstream.PubAckFuture
	for _, c := range changes {
		for _, w := range c.Writes {
			// A raw publish on the bucket's subject is a KV put (or, with
			// the operation header, a delete) that need not wait for its
			// acknowledgement before the next one goes out.
			m := &nats.Msg{Subject: "$KV." + w.Bucket + "." + w.Key, Data: w.Value}
			if w.Delete {
				m.Header = nats.Header{"KV-Operation": []string{"DEL"}}
				m.Data = nil
			}
			f, err := k.js.PublishMsgAsync(m)
			if err != nil {
				return fmt.Errorf("write %s: %w", w.Key, err)
			}
			futures = append(futures, f)
		}
	}
	if _, err := wait(ctx, futures); err != nil {
		return fmt.Errorf("record product states: %w", err)
	}
	return nil
}

// wait waits for every future and counts the stored messages that were not
// duplicates.
func wait(ctx context.Context, futures []jetstream.PubAckFuture) (stored int, err error) {
	timeout := time.NewTimer(ackTimeout)
	defer timeout.Stop()
	var errs []error
	for _, f := range futures {
		select {
		case ack := <-f.Ok():
			if !ack.Duplicate {
				stored++
			}
		case err := <-f.Err():
			errs = append(errs, err)
		case <-ctx.Done():
			return stored, ctx.Err()
		case <-timeout.C:
			return stored, fmt.Errorf("no acknowledgement within %s", ackTimeout)
		}
	}
	if len(errs) > 0 {
		return stored, fmt.Errorf("%d of %d not stored: %w", len(errs), len(futures), errors.Join(errs[:min(len(errs), 3)]...))
	}
	return stored, nil
}

// subjectOf is the event's ce-subject: the product it is about, when it is
// about one.
func subjectOf(e Event) string {
	type aboutProduct interface{ GetProductId() string }
	if p, ok := e.Msg.(aboutProduct); ok {
		return p.GetProductId()
	}
	return ""
}
