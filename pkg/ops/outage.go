package ops

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/hipersync/hipersync/pkg/events"
)

// OutageBucket is the bucket (before the namespace) where each replica
// notes the Hiper outages it sees, for `hipersync status`: key
// "<scope>.<name>.<replica>", value an Outage. Entries expire unless
// refreshed, so a replica that died leaves nothing behind for long.
const OutageBucket = "hiper_outages"

// OutageTTL is how long an outage entry lives without a refresh; every
// failed probe refreshes it, and probes are at most CircuitProbeMax apart.
const OutageTTL = 15 * time.Minute

// Scopes of a circuit.
const (
	// ScopeEndpoint is Hiper's create endpoint, for every tenant: Hiper
	// itself is down.
	ScopeEndpoint = "endpoint"
	// ScopeTenant is one tenant's Hiper account.
	ScopeTenant = "tenant"
)

// Outage is what `hipersync status` reads of an open circuit.
type Outage struct {
	Scope string `json:"scope"`
	// Name is the tenant, or the endpoint ("POST /pedido-de-venda/").
	Name      string    `json:"name"`
	Since     time.Time `json:"since"`
	NextProbe time.Time `json:"nextProbe"`
	LastError string    `json:"lastError"`
	Replica   string    `json:"replica"`
}

// OutageKey is the key of an outage entry.
func OutageKey(o Outage) string {
	clean := func(s string) string {
		return strings.Map(func(r rune) rune {
			if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_' {
				return r
			}
			return '_'
		}, s)
	}
	return o.Scope + "." + clean(o.Name) + "." + clean(o.Replica)
}

// outages reads the Hiper outages the order-forwarder replicas noted, by
// "tenant.<id>" and "endpoint", keeping the oldest of each.
func outages(ctx context.Context, js jetstream.JetStream, ns events.Namespace) (map[string]Outage, error) {
	out := map[string]Outage{}
	kv, err := js.KeyValue(ctx, ns.Bucket(OutageBucket))
	if errors.Is(err, jetstream.ErrBucketNotFound) {
		return out, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read hiper outages: %w", err)
	}
	keys, err := kv.ListKeys(ctx)
	if err != nil {
		return nil, fmt.Errorf("list hiper outages: %w", err)
	}
	for k := range keys.Keys() {
		entry, err := kv.Get(ctx, k)
		if err != nil {
			continue // closed since listed
		}
		var o Outage
		if err := json.Unmarshal(entry.Value(), &o); err != nil {
			continue
		}
		key := o.Scope
		if o.Scope == ScopeTenant {
			key += "." + o.Name
		}
		if prev, ok := out[key]; !ok || o.Since.Before(prev.Since) {
			out[key] = o
		}
	}
	return out, nil
}
