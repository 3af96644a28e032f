package orders

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/hipersync/hipersync/pkg/events"
	"github.com/hipersync/hipersync/pkg/tenant"
)

// Bucket is the name (before the namespace) of the order state bucket.
const Bucket = "orders"

// Errors of the store.
var (
	ErrNotFound = errors.New("order not found")
	// ErrConflict is a compare-and-set that lost: the record changed (or
	// was created) since it was read. Read it again and decide again.
	ErrConflict = events.ErrConflict
)

// ErrTooLarge is a record that would not fit in a NATS message.
var ErrTooLarge = errors.New("order record larger than the server's max_payload")

// Store reads and writes order records.
type Store struct {
	js jetstream.JetStream
	kv jetstream.KeyValue
	// maxRecord is the server's max_payload, measured when opened.
	maxRecord int
}

func newStore(js jetstream.JetStream, kv jetstream.KeyValue) *Store {
	return &Store{js: js, kv: kv, maxRecord: int(js.Conn().MaxPayload())}
}

// Open provisions the bucket of ns (idempotent) and returns its Store.
func Open(ctx context.Context, js jetstream.JetStream, ns events.Namespace) (*Store, error) {
	kv, err := events.EnsureKV(ctx, js, ns, Bucket,
		events.WithKVDescription("hipersync order-forwarder: per-order state, <tenant>.<order id>"))
	if err != nil {
		return nil, err
	}
	return newStore(js, kv), nil
}

// Attach opens the bucket of ns without creating it: for readers, such as
// the CLI, that must not provision a deployment by looking at it.
func Attach(ctx context.Context, js jetstream.JetStream, ns events.Namespace) (*Store, error) {
	kv, err := js.KeyValue(ctx, ns.Bucket(Bucket))
	if errors.Is(err, jetstream.ErrBucketNotFound) {
		return nil, fmt.Errorf("no order state in bucket %s: has order-forwarder run in this namespace? %w", ns.Bucket(Bucket), err)
	}
	if err != nil {
		return nil, fmt.Errorf("open bucket %s: %w", ns.Bucket(Bucket), err)
	}
	return newStore(js, kv), nil
}

// Get returns the record of a tenant's order and its revision, or an error
// matching ErrNotFound.
func (s *Store) Get(ctx context.Context, tenant, orderID string) (*Record, uint64, error) {
	key, err := Key(tenant, orderID)
	if err != nil {
		return nil, 0, fmt.Errorf("get order: %w", err)
	}
	rec, rev, found, err := events.Get(ctx, s.kv, key, codec)
	if err != nil {
		return nil, 0, fmt.Errorf("get order: %w", err)
	}
	if !found {
		return nil, 0, fmt.Errorf("get order %s: %w", key, ErrNotFound)
	}
	return rec, rev, nil
}

// Create stores a new record; ErrConflict when one exists already.
func (s *Store) Create(ctx context.Context, rec *Record) (uint64, error) {
	key, b, err := s.encode(rec)
	if err != nil {
		return 0, fmt.Errorf("create order: %w", err)
	}
	rev, err := s.kv.Create(ctx, key, b)
	if events.Conflict(err) {
		return 0, fmt.Errorf("create order %s: %w", key, ErrConflict)
	}
	if err != nil {
		return 0, fmt.Errorf("create order %s: %w", key, err)
	}
	return rev, nil
}

// Update replaces the record read at revision rev; ErrConflict when it
// changed since.
func (s *Store) Update(ctx context.Context, rec *Record, rev uint64) (uint64, error) {
	key, b, err := s.encode(rec)
	if err != nil {
		return 0, fmt.Errorf("update order: %w", err)
	}
	next, err := s.kv.Update(ctx, key, b, rev)
	if events.Conflict(err) {
		return 0, fmt.Errorf("update order %s: %w", key, ErrConflict)
	}
	if err != nil {
		return 0, fmt.Errorf("update order %s: %w", key, err)
	}
	return next, nil
}

// UpdateAsync is Update without waiting for the server: when it returns,
// the write is on the connection, so any later write of this connection to
// the bucket lands behind it. wait gives its outcome as Update would
// (ErrConflict when the record changed since rev); ctx bounds the wait.
// The write is not sent again on its own (no retry when the stream has no
// leader for a moment): the caller decides, knowing what else it wrote.
func (s *Store) UpdateAsync(rec *Record, rev uint64) (wait func(ctx context.Context) (uint64, error), err error) {
	key, b, err := s.encode(rec)
	if err != nil {
		return nil, fmt.Errorf("update order: %w", err)
	}
	m := &nats.Msg{Subject: events.KeySubject(s.kv.Bucket(), key), Data: b}
	f, err := s.js.PublishMsgAsync(m, jetstream.WithExpectLastSequencePerSubject(rev), jetstream.WithRetryAttempts(0))
	if err != nil {
		return nil, fmt.Errorf("update order %s: %w", key, err)
	}
	return func(ctx context.Context) (uint64, error) {
		select {
		case ack := <-f.Ok():
			return ack.Sequence, nil
		case err := <-f.Err():
			if events.Conflict(err) {
				return 0, fmt.Errorf("update order %s: %w", key, ErrConflict)
			}
			return 0, fmt.Errorf("update order %s: %w", key, err)
		case <-ctx.Done():
			return 0, fmt.Errorf("update order %s: %w", key, ctx.Err())
		}
	}, nil
}

// Mutate applies change to the current record (nil when there is none)
// and writes the result with compare-and-set (events.Update), trying again
// on a conflict. change returns the record to write, or nil to write
// nothing; an error from change stops it and is returned as is.
func (s *Store) Mutate(ctx context.Context, tenant, orderID string, change func(rec *Record) (*Record, error)) (*Record, uint64, error) {
	key, err := Key(tenant, orderID)
	if err != nil {
		return nil, 0, fmt.Errorf("mutate order: %w", err)
	}
	return events.Update(ctx, s.kv, key, codec, func(cur *Record) (*Record, error) {
		next, err := change(cur)
		if err == nil && next == nil {
			return nil, events.ErrNoChange
		}
		return next, err
	})
}

// List returns every record of tenant, sorted by creation time.
func (s *Store) List(ctx context.Context, tenantID string) ([]*Record, error) {
	if err := tenant.ValidID(tenantID); err != nil {
		return nil, fmt.Errorf("list orders: %w", err)
	}
	w, err := s.kv.Watch(ctx, TenantPrefix(tenantID), jetstream.IgnoreDeletes())
	if err != nil {
		return nil, fmt.Errorf("list orders of %s: %w", tenantID, err)
	}
	defer func() { _ = w.Stop() }()
	var out []*Record
	for {
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("list orders of %s: %w", tenantID, ctx.Err())
		case entry := <-w.Updates():
			if entry == nil {
				sort.SliceStable(out, func(i, j int) bool { return out[i].CreatedAt.Before(out[j].CreatedAt) })
				return out, nil
			}
			rec, err := decode(entry.Value())
			if err != nil {
				return nil, fmt.Errorf("list orders: %s: %w", entry.Key(), err)
			}
			out = append(out, rec)
		}
	}
}

func (s *Store) encode(rec *Record) (string, []byte, error) {
	key, err := Key(rec.Tenant, rec.OrderID)
	if err != nil {
		return "", nil, err
	}
	b, err := encode(rec)
	if err != nil {
		return "", nil, fmt.Errorf("encode %s: %w", key, err)
	}
	if s.maxRecord > 0 && len(b) > s.maxRecord {
		return "", nil, fmt.Errorf("encode %s: %d bytes, max_payload %d: %w", key, len(b), s.maxRecord, ErrTooLarge)
	}
	return key, b, nil
}

// codec is how a record is stored.
var codec = events.Codec[*Record]{Encode: encode, Decode: decode}

// encode is json.Marshal of r, without reflection (appendJSON), into a
// buffer sized for the record.
func encode(r *Record) ([]byte, error) {
	size := 512 + len(r.Approval)*4/3 + 160*len(r.History)
	if r.Outbox != nil {
		size += 128 + len(r.Outbox.Payload)*4/3
	}
	return r.appendJSON(make([]byte, 0, size))
}

func decode(b []byte) (*Record, error) {
	var rec Record
	if err := json.Unmarshal(b, &rec); err != nil {
		return nil, fmt.Errorf("decode order record: %w", err)
	}
	return &rec, nil
}
