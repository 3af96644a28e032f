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

// maxConflicts bounds the compare-and-set retries of one update: writers of
// one record are its poller and the intake of its few events, so losing
// more than a handful of races in a row means something is wrong.
const maxConflicts = 16

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

// get returns a tenant's order record and its revision, or errNotFound.
func (s records) get(ctx context.Context, tenantID, orderID string) (*order.Record, uint64, error) {
	key, err := order.Key(tenantID, orderID)
	if err != nil {
		return nil, 0, err
	}
	e, err := s.kv.Get(ctx, key)
	if errors.Is(err, jetstream.ErrKeyNotFound) || errors.Is(err, jetstream.ErrKeyDeleted) {
		return nil, 0, fmt.Errorf("get %s: %w", key, errNotFound)
	}
	if err != nil {
		return nil, 0, fmt.Errorf("get %s: %w", key, err)
	}
	r, err := order.Decode(e.Value())
	if err != nil {
		return nil, 0, fmt.Errorf("get %s: %w", key, err)
	}
	return r, e.Revision(), nil
}

// update reads the record, lets change decide on it (nil when there is
// none yet) and writes what change returns, by compare-and-set; when
// another writer got there first it reads again and lets change decide
// again. A nil record from change writes nothing. It returns the record as
// stored (nil when there is none).
func (s records) update(ctx context.Context, tenantID, orderID string, change func(*order.Record) (*order.Record, error)) (*order.Record, error) {
	key, err := order.Key(tenantID, orderID)
	if err != nil {
		return nil, err
	}
	for range maxConflicts {
		cur, rev, err := s.get(ctx, tenantID, orderID)
		if err != nil && !errors.Is(err, errNotFound) {
			return nil, err
		}
		next, err := change(cur)
		if err != nil || next == nil {
			return cur, err
		}
		b, err := next.Encode()
		if err != nil {
			return nil, err
		}
		if cur == nil {
			_, err = s.kv.Create(ctx, key, b)
		} else {
			_, err = s.kv.Update(ctx, key, b, rev)
		}
		if err == nil {
			return next, nil
		}
		if !conflict(err) {
			return nil, fmt.Errorf("write %s: %w", key, err)
		}
	}
	return nil, fmt.Errorf("write %s: lost %d compare-and-set races in a row", key, maxConflicts)
}

// conflict reports whether a write lost a compare-and-set race.
func conflict(err error) bool {
	return errors.Is(err, jetstream.ErrKeyExists) || errors.Is(err, jetstream.ErrKeyRevisionMismatch)
}
