package watcher

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
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
	key, err := s.key(ctx, tenantID, orderID)
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
	key, err := s.key(ctx, tenantID, orderID)
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

// key is the order's key (order.Key), once a record stored under its legacy
// key has been moved there.
func (s records) key(ctx context.Context, tenantID, orderID string) (string, error) {
	key, err := order.Key(tenantID, orderID)
	if err != nil {
		return "", err
	}
	old := tenantID + "." + legacyToken(orderID)
	if old == key {
		return key, nil
	}
	e, err := s.kv.Get(ctx, old)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return key, nil
	}
	if err != nil {
		return "", fmt.Errorf("read legacy order key %s: %w", old, err)
	}
	return key, s.move(ctx, e, key)
}

// move puts the record of entry e under key and removes it from e's key.
// A record under key already (another replica moved it, or wrote a newer
// one) stays as it is.
func (s records) move(ctx context.Context, e jetstream.KeyValueEntry, key string) error {
	if _, err := s.kv.Create(ctx, key, e.Value()); err != nil && !errors.Is(err, jetstream.ErrKeyExists) {
		return fmt.Errorf("move order record %s to %s: %w", e.Key(), key, err)
	}
	// Only the revision moved: one written since (an older replica still
	// running) is moved on its next read.
	if err := s.kv.Delete(ctx, e.Key(), jetstream.LastRevision(e.Revision())); err != nil && !events.Conflict(err) {
		return fmt.Errorf("remove moved order record %s: %w", e.Key(), err)
	}
	return nil
}

// migrate moves every record stored under a legacy key (legacyToken) to
// its key, and returns how many it moved. Records are also moved when they
// are read (key), so a replica of the previous version writing legacy keys
// during a rolling update loses nothing.
func (s records) migrate(ctx context.Context) (int, error) {
	lister, err := s.kv.ListKeys(ctx)
	if err != nil {
		return 0, fmt.Errorf("list order records: %w", err)
	}
	defer func() { _ = lister.Stop() }()
	moved := 0
	for k := range lister.Keys() {
		// Only the legacy digests differ from the key: "=" and 40 hex
		// digits.
		if _, tok, ok := strings.Cut(k, "."); !ok || !strings.HasPrefix(tok, "=") {
			continue
		}
		e, err := s.kv.Get(ctx, k)
		if errors.Is(err, jetstream.ErrKeyNotFound) {
			continue
		}
		if err != nil {
			return moved, fmt.Errorf("read order record %s: %w", k, err)
		}
		r, err := order.Decode(e.Value())
		if err != nil {
			continue // not a record: left alone
		}
		key, err := order.Key(r.Tenant, r.OrderID)
		if err != nil || key == k {
			continue
		}
		if err := s.move(ctx, e, key); err != nil {
			return moved, err
		}
		moved++
	}
	return moved, nil
}

// legacyToken is the order id's part of the key the invoice-watcher used
// before it shared the order-forwarder's (tenant.OrderKey): an id of
// letters, digits, '-' and '_' up to 64 as it is, any other "=" and a
// digest. Records and poll tasks are moved off it (records.key,
// records.migrate, Watcher.poll); it can go once no deployment has a
// record older than that move plus RecordTTL.
func legacyToken(orderID string) string {
	plain := len(orderID) <= 64
	for i := 0; plain && i < len(orderID); i++ {
		c := orderID[i]
		plain = 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_'
	}
	if plain {
		return orderID
	}
	sum := sha256.Sum256([]byte(orderID))
	return "=" + hex.EncodeToString(sum[:20])
}
