// Package catalog holds what services share about a tenant's synced Hiper
// catalog. Today that is the barcode index: the catalog-poller writes, for
// every sellable product, its EAN/GTIN and Hiper product id into a key-value
// bucket, and the order-forwarder reads it to turn an order item given by
// `ean` into the `produtoId` Hiper wants.
//
// The contract of the bucket:
//
//   - name: IndexBucket ("catalog_ean"), namespaced (ns.Bucket), created by
//     EnsureIndex so that every service provisions it the same way;
//   - key: "<tenant>.<gtin14>": the tenant id, a dot, and the barcode as 14
//     digits, left-padded with zeros (NormalizeEAN), so that an EAN-13 and
//     the same product's GTIN-14 form meet. Build it with IndexKey only;
//   - value: the Hiper product id (a UUID) as plain text. A product with
//     variations is indexed by each variation's id, never the parent's: an
//     order item names the variation. Deactivated or removed products are
//     deleted (Forget), so an order naming them is rejected before Hiper is
//     called. When two products share a barcode, the last one written wins.
package catalog

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/hipersync/hipersync/pkg/events"
	"github.com/hipersync/hipersync/pkg/tenant"
)

// IndexBucket is the name (before the namespace) of the barcode index.
const IndexBucket = "catalog_ean"

// ErrNotIndexed is returned by Lookup for a barcode the index does not hold.
var ErrNotIndexed = errors.New("barcode not in the synced catalog")

// ErrInvalidEAN is returned for a barcode that is not 8 to 14 digits.
var ErrInvalidEAN = errors.New("invalid barcode: want 8 to 14 digits")

const gtinLen = 14

// NormalizeEAN returns the barcode as 14 digits (GTIN-14), left-padded with
// zeros; surrounding spaces are ignored. EAN-8, UPC-A (12), EAN-13 and
// GTIN-14 are accepted. Check digits are not verified: a barcode is only a
// key here, and a catalog with a mistyped one must still match the store's
// identical mistake.
func NormalizeEAN(ean string) (string, error) {
	s := strings.TrimSpace(ean)
	if len(s) < 8 || len(s) > gtinLen {
		return "", fmt.Errorf("%w, got %d characters", ErrInvalidEAN, len(s))
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return "", fmt.Errorf("%w, got %q at %d", ErrInvalidEAN, rune(s[i]), i)
		}
	}
	return strings.Repeat("0", gtinLen-len(s)) + s, nil
}

// IndexKey returns the key of a tenant's barcode.
func IndexKey(tenantID, ean string) (string, error) {
	if err := tenant.ValidID(tenantID); err != nil {
		return "", err
	}
	gtin, err := NormalizeEAN(ean)
	if err != nil {
		return "", err
	}
	return tenantID + "." + gtin, nil
}

// EnsureIndex creates the barcode index of ns, or updates it to this
// configuration, and returns it. Every service calls it at start. It is
// read with direct gets (events.DirectReads): the order-forwarder looks up
// every item of every order, and a look-up answered by a replica a moment
// behind publishes nothing twice.
func EnsureIndex(ctx context.Context, js jetstream.JetStream, ns events.Namespace) (jetstream.KeyValue, error) {
	kv, err := events.EnsureKV(ctx, js, ns, IndexBucket,
		events.WithKVDescription("hipersync: <tenant>.<gtin14> → Hiper product id of the synced catalog"))
	if err != nil {
		return nil, err
	}
	return events.DirectReads(kv), nil
}

// Put records that a tenant's barcode names productID.
func Put(ctx context.Context, kv jetstream.KeyValue, tenant, ean, productID string) error {
	key, err := IndexKey(tenant, ean)
	if err != nil {
		return fmt.Errorf("index barcode: %w", err)
	}
	if strings.TrimSpace(productID) == "" {
		return errors.New("index barcode: empty product id")
	}
	if _, err := kv.Put(ctx, key, []byte(strings.TrimSpace(productID))); err != nil {
		return fmt.Errorf("index barcode %s: %w", key, err)
	}
	return nil
}

// Forget removes a tenant's barcode from the index; an absent one is fine.
func Forget(ctx context.Context, kv jetstream.KeyValue, tenant, ean string) error {
	key, err := IndexKey(tenant, ean)
	if err != nil {
		return fmt.Errorf("forget barcode: %w", err)
	}
	if err := kv.Delete(ctx, key); err != nil && !errors.Is(err, jetstream.ErrKeyNotFound) {
		return fmt.Errorf("forget barcode %s: %w", key, err)
	}
	return nil
}

// Lookup returns the Hiper product id a tenant's barcode names. It returns
// an error matching ErrInvalidEAN for a malformed barcode and ErrNotIndexed
// for one the index does not hold; anything else is the bucket failing.
func Lookup(ctx context.Context, kv jetstream.KeyValue, tenant, ean string) (string, error) {
	key, err := IndexKey(tenant, ean)
	if err != nil {
		return "", fmt.Errorf("look up barcode: %w", err)
	}
	entry, err := kv.Get(ctx, key)
	if errors.Is(err, jetstream.ErrKeyNotFound) || errors.Is(err, jetstream.ErrKeyDeleted) {
		return "", fmt.Errorf("look up barcode %s: %w", key, ErrNotIndexed)
	}
	if err != nil {
		return "", fmt.Errorf("look up barcode %s: %w", key, err)
	}
	id := strings.TrimSpace(string(entry.Value()))
	if id == "" {
		return "", fmt.Errorf("look up barcode %s: %w", key, ErrNotIndexed)
	}
	return id, nil
}
