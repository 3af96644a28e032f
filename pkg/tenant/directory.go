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
	"github.com/hipersync/hipersync/pkg/kvwatch"
)

// Change is one tenant's new state; Tenant is nil when the tenant was deleted.
type Change struct {
	TenantID string
	Tenant   *brokerv1.Tenant
}

// Directory is a live, read-only copy of every tenant, kept current by
// watching the tenants bucket: a service learns of a new, paused or
// disconnected tenant within moments, without polling. The watch survives
// the NATS server it lives on (package kvwatch starts it again, with
// backoff, when it ends or falls behind). Sealed keys are not kept.
type Directory struct {
	log   *slog.Logger
	watch *kvwatch.Watch

	mu        sync.RWMutex
	tenants   map[string]*brokerv1.Tenant
	listeners []func(Change)
	// reloading holds the tenants a restarted watch has delivered so far;
	// nil when no restart is being reloaded.
	reloading map[string]struct{}
}

// WatchDirectory starts watching kv and returns once the current tenants are
// loaded. The watch stops when ctx is done; Done is closed then.
func WatchDirectory(ctx context.Context, kv jetstream.KeyValue, log *slog.Logger) (*Directory, error) {
	return watchDirectory(ctx, kv, log, kvwatch.Config{})
}

// watchDirectory is WatchDirectory with the watch's tuning (tests).
func watchDirectory(ctx context.Context, kv jetstream.KeyValue, log *slog.Logger, cfg kvwatch.Config) (*Directory, error) {
	d := &Directory{log: log, tenants: map[string]*brokerv1.Tenant{}}
	loaded := make(chan struct{})
	var once sync.Once
	cfg.Entry, cfg.Log = d.apply, log
	cfg.Restarting = d.restarting
	cfg.Synced = func() {
		d.reloaded()
		once.Do(func() { close(loaded) })
	}
	w, err := kvwatch.Start(ctx, kv, cfg)
	if err != nil {
		return nil, fmt.Errorf("watch tenants: %w", err)
	}
	d.watch = w
	select {
	case <-loaded:
		return d, nil
	case <-ctx.Done():
		return nil, fmt.Errorf("watch tenants: %w", ctx.Err())
	}
}

// restarting: a new watch is about to deliver every tenant again.
func (d *Directory) restarting() {
	d.mu.Lock()
	d.reloading = map[string]struct{}{}
	d.mu.Unlock()
}

// reloaded: a restarted watch delivered every tenant there is; those it did
// not deliver were deleted while the watch was down.
func (d *Directory) reloaded() {
	d.mu.Lock()
	var gone []string
	if d.reloading != nil {
		for id := range d.tenants {
			if _, ok := d.reloading[id]; !ok {
				gone = append(gone, id)
			}
		}
		d.reloading = nil
	}
	d.mu.Unlock()
	for _, id := range gone {
		d.set(Change{TenantID: id})
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
	if d.reloading != nil {
		d.reloading[change.TenantID] = struct{}{}
	}
	d.mu.Unlock()
	d.set(change)
}

// set records a tenant's new state and tells the listeners, unless it is the
// state known already (a restarted watch delivers every tenant again).
func (d *Directory) set(change Change) {
	d.mu.Lock()
	old, known := d.tenants[change.TenantID]
	if change.Tenant == nil && !known || change.Tenant != nil && known && proto.Equal(old, change.Tenant) {
		d.mu.Unlock()
		return
	}
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

// Done is closed when the watch has stopped (its context ended).
func (d *Directory) Done() <-chan struct{} { return d.watch.Done() }

// Err says why the watch last had to start again, if it did.
func (d *Directory) Err() error { return d.watch.Err() }

// Check is the directory's readiness check (telemetry.Health.AddCheck):
// an error once the watch has stopped. A watch being started again after a
// NATS server failed does not fail it: every replica would go unready at
// once, while the tenants they know are still right.
func (d *Directory) Check(context.Context) error {
	select {
	case <-d.watch.Done():
		return errors.New("tenant watch stopped")
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
