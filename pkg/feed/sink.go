package feed

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/nats-io/nats.go"
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
	pub   *events.Publisher
	async *events.AsyncPublisher
	// tally, when set, counts what is published (Counting).
	tally *Tally
}

// NewSink returns a Sink publishing events with pub and key-value writes
// on nc, both through async, which bounds what is in flight.
func NewSink(pub *events.Publisher, async *events.AsyncPublisher) *Sink {
	return &Sink{pub: pub, async: async}
}

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
	p, err := k.sendEvents(ctx, changes)
	if err != nil {
		return 0, err
	}
	return k.confirmEvents(ctx, changes, p)
}

// write makes the changes' key-value writes and waits until they are all
// stored.
func (k *Sink) write(ctx context.Context, changes []Change) error {
	p, err := k.sendWrites(ctx, changes)
	if err != nil {
		return err
	}
	return p.confirmWrites(ctx)
}

// pending is what was sent and not acknowledged yet: the batch, and for
// writes the bucket of each.
type pending struct {
	batch   *events.Batch
	buckets []string
}

// sendEvents publishes the changes' events without waiting for the stream:
// confirmEvents does.
func (k *Sink) sendEvents(ctx context.Context, changes []Change) (pending, error) {
	p := pending{batch: k.async.NewBatch()}
	for _, c := range changes {
		for _, e := range c.Events {
			if err := k.pub.PublishBatch(ctx, p.batch, e.Subject, e.ID, e.Msg, events.WithEventSubject(subjectOf(e))); err != nil {
				return p, err
			}
		}
	}
	return p, nil
}

// confirmEvents waits until the stream has every event sendEvents sent.
func (k *Sink) confirmEvents(ctx context.Context, changes []Change, p pending) (int, error) {
	published, err := wait(ctx, p.batch, nil)
	if err != nil {
		return 0, fmt.Errorf("publish events: %w", err)
	}
	k.tally.add(changes)
	return published, nil
}

// sendWrites makes the changes' key-value writes without waiting for them:
// confirmWrites does. Writes sent on one connection are stored in the
// order sent, so a later unit's write of a record never lands before an
// earlier one's.
func (k *Sink) sendWrites(ctx context.Context, changes []Change) (pending, error) {
	p := pending{batch: k.async.NewBatch()}
	for _, c := range changes {
		for _, w := range c.Writes {
			// A raw publish on the bucket's subject is a KV put (or, with
			// the operation header, a delete) that need not wait for its
			// acknowledgement before the next one goes out.
			m := &nats.Msg{Subject: events.KeySubject(w.Bucket, w.Key), Data: w.Value}
			if w.Delete {
				m.Header = nats.Header{"KV-Operation": []string{"DEL"}}
				m.Data = nil
			}
			if err := p.batch.Publish(ctx, m); err != nil {
				return p, fmt.Errorf("write %s: %w", w.Key, err)
			}
			p.buckets = append(p.buckets, w.Bucket)
		}
	}
	return p, nil
}

// confirmWrites waits until every write sendWrites sent is stored.
func (p pending) confirmWrites(ctx context.Context) error {
	full := ""
	_, err := wait(ctx, p.batch, func(i int, err error) {
		if full == "" && events.Full(err) {
			full = p.buckets[i]
		}
	})
	switch {
	case full != "":
		events.CountFull("KV_" + full)
		return fmt.Errorf("record product states: %w: bucket %s is full; raise HIPERSYNC_BUCKET_MAX_BYTES "+
			"and roll the poller (docs/operations.md, \"HipersyncBucketFull\"); the sync then resumes from its saved cursor: %w",
			ErrStoreFull, full, err)
	case err != nil:
		return fmt.Errorf("record product states: %w", err)
	}
	return nil
}

// ErrStoreFull is a poll stopped because a bucket it writes (the product
// states, the barcode index) reached its bound: JetStream refuses every
// write until an operator makes room. The cursor saved so far stands, so
// the next poll after that resumes from it, losing nothing.
var ErrStoreFull = errors.New("bucket full")

// wait waits for every message of the batch and counts the stored ones
// that were not duplicates; failed, when set, hears of each one refused.
func wait(ctx context.Context, b *events.Batch, failed func(i int, err error)) (stored int, err error) {
	stored, failures, err := b.Wait(ctx, ackTimeout)
	if err != nil {
		return stored, err
	}
	if len(failures) == 0 {
		return stored, nil
	}
	slices.SortFunc(failures, func(a, b events.Failure) int { return a.Index - b.Index })
	errs := make([]error, 0, min(len(failures), 3))
	for _, f := range failures {
		if failed != nil {
			failed(f.Index, f.Err)
		}
		if len(errs) < 3 {
			errs = append(errs, f.Err)
		}
	}
	return stored, fmt.Errorf("%d of %d not stored: %w", len(failures), b.Len(), errors.Join(errs...))
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
