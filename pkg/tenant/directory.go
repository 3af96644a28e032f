package tenant

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"sync"

	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/protobuf/proto"

	brokerv1 "github.com/hipersync/hipersync/pkg/gen/hipersync/broker/v1"
)

// Change is one tenant's new state; Tenant is nil when the tenant was deleted.
type Change struct {
	TenantID string
	Tenant   *brokerv1.Tenant
}

// Directory is a live, read-only copy of every tenant, kept current by
// watching the tenants bucket: a service learns of a new, paused or
// disconnected tenant within moments, without polling. Sealed keys are not
// kept.
type Directory struct {
	log *slog.Logger

	mu        sync.RWMutex
	tenants   map[string]*brokerv1.Tenant
	listeners []func(Change)
	done      chan struct{}
	err       error
}

// WatchDirectory starts watching kv and returns once the current tenants are
// loaded. The watch stops when ctx is done; Done is closed then.
func WatchDirectory(ctx context.Context, kv jetstream.KeyValue, log *slog.Logger) (*Directory, error) {
	w, err := kv.WatchAll(ctx)
	if err != nil {
		return nil, fmt.Errorf("watch tenants: %w", err)
	}
	d := &Directory{log: log, tenants: map[string]*brokerv1.Tenant{}, done: make(chan struct{})}
	loaded := make(chan struct{})
	go d.run(ctx, w, loaded)
	select {
	case <-loaded:
		return d, nil
	case <-d.done:
		return nil, fmt.Errorf("watch tenants: %w", d.Err())
	case <-ctx.Done():
		return nil, fmt.Errorf("watch tenants: %w", ctx.Err())
	}
}

func (d *Directory) run(ctx context.Context, w jetstream.KeyWatcher, loaded chan struct{}) {
	defer close(d.done)
	defer func() { _ = w.Stop() }()
	initial := true
	for {
		select {
		case <-ctx.Done():
			return
		case entry, ok := <-w.Updates():
			if !ok {
				d.mu.Lock()
				if ctx.Err() == nil {
					d.err = errors.New("watcher closed")
				}
				d.mu.Unlock()
				return
			}
			if entry == nil {
				// The end of the initial values.
				if initial {
					initial = false
					close(loaded)
				}
				continue
			}
			d.apply(entry)
		}
	}
}

func (d *Directory) apply(entry jetstream.KeyValueEntry) {
	change := Change{TenantID: entry.Key()}
	if entry.Operation() == jetstream.KeyValuePut {
		rec, err := DecodeRecord(entry.Value())
		if err != nil {
			d.log.Error("skip undecodable tenant record", "tenant", entry.Key(), "err", err)
			return
		}
		change.Tenant = rec.GetTenant()
	}
	d.mu.Lock()
	if change.Tenant == nil {
		delete(d.tenants, change.TenantID)
	} else {
		d.tenants[change.TenantID] = change.Tenant
	}
	listeners := d.listeners
	d.mu.Unlock()
	for _, f := range listeners {
		f(change)
	}
}

// Get returns a copy of the tenant, if known.
func (d *Directory) Get(id string) (*brokerv1.Tenant, bool) {
	d.mu.RLock()
	defer d.mu.RUnlock()
	t, ok := d.tenants[id]
	if !ok {
		return nil, false
	}
	return proto.Clone(t).(*brokerv1.Tenant), true
}

// State returns the tenant's state without copying the tenant: the hot path
// of every token request asks it.
func (d *Directory) State(id string) (brokerv1.TenantState, bool) {
	d.mu.RLock()
	defer d.mu.RUnlock()
	t, ok := d.tenants[id]
	return t.GetState(), ok
}

// List returns copies of every tenant, sorted by id.
func (d *Directory) List() []*brokerv1.Tenant {
	d.mu.RLock()
	out := make([]*brokerv1.Tenant, 0, len(d.tenants))
	for _, t := range d.tenants {
		out = append(out, proto.Clone(t).(*brokerv1.Tenant))
	}
	d.mu.RUnlock()
	sort.Slice(out, func(i, j int) bool { return out[i].GetTenantId() < out[j].GetTenantId() })
	return out
}

// OnChange calls f, from the watching goroutine, for every change after now.
// f must return quickly; it sees changes in order.
func (d *Directory) OnChange(f func(Change)) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.listeners = append(d.listeners, f)
}

// Done is closed when the watch has stopped.
func (d *Directory) Done() <-chan struct{} { return d.done }

// Err says why the watch stopped early, if it did.
func (d *Directory) Err() error {
	d.mu.RLock()
	defer d.mu.RUnlock()
	return d.err
}

// Check is the directory's readiness check (telemetry.Health.AddCheck):
// an error once the watch has stopped.
func (d *Directory) Check(context.Context) error {
	select {
	case <-d.done:
		return fmt.Errorf("tenant watch stopped: %v", d.Err())
	default:
		return nil
	}
}

// Count is how many tenants are known.
func (d *Directory) Count() int {
	d.mu.RLock()
	defer d.mu.RUnlock()
	return len(d.tenants)
}
