package watcher

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/hipersync/hipersync/pkg/events"
	"github.com/hipersync/hipersync/services/invoice-watcher/order"
)

// Bucket is the name (before the namespace) of the bucket of order records.
const Bucket = "invoice_watch"

// errNotFound is a record that does not exist.
var errNotFound = errors.New("order record not found")

// records reads and writes order records, always by compare-and-set.
type records struct {
	kv jetstream.KeyValue
}

func openRecords(ctx context.Context, js jetstream.JetStream, ns events.Namespace, ttl time.Duration) (records, error) {
	kv, err := events.EnsureKV(ctx, js, ns, Bucket, events.WithKVTTL(ttl),
		events.WithKVDescription("hipersync invoice-watcher: per-order watch state, <tenant>.<order id>"))
	if err != nil {
		return records{}, err
	}
	return records{kv: kv}, nil
}

// codec is how a record is stored.
var codec = events.Codec[*order.Record]{Encode: (*order.Record).Encode, Decode: order.Decode}

// get returns a tenant's order record and its revision, or errNotFound.
func (s records) get(ctx context.Context, tenantID, orderID string) (*order.Record, uint64, error) {
	key, err := order.Key(tenantID, orderID)
	if err != nil {
		return nil, 0, err
	}
	r, rev, found, err := events.Get(ctx, s.kv, key, codec)
	if err != nil {
		return nil, 0, err
	}
	if !found {
		return nil, 0, fmt.Errorf("get %s: %w", key, errNotFound)
	}
	return r, rev, nil
}

// update reads the record, lets change decide on it (nil when there is
// none yet) and writes what change returns, by compare-and-set
// (events.Update); when another writer got there first it reads again and
// lets change decide again. A nil record from change writes nothing. It
// returns the record as stored (nil when there is none).
func (s records) update(ctx context.Context, tenantID, orderID string, change func(*order.Record) (*order.Record, error)) (*order.Record, error) {
	key, err := order.Key(tenantID, orderID)
	if err != nil {
		return nil, err
	}
	rec, _, err := events.Update(ctx, s.kv, key, codec, func(cur *order.Record) (*order.Record, error) {
		next, err := change(cur)
		if err == nil && next == nil {
			return nil, events.ErrNoChange
		}
		return next, err
	})
	return rec, err
}
