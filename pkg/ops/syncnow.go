package ops

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/hipersync/hipersync/pkg/events"
	"github.com/hipersync/hipersync/pkg/syncstatus"
	"github.com/hipersync/hipersync/pkg/tenant"
)

// SyncResult is one kind's outcome of a sync asked for now.
type SyncResult struct {
	Kind    syncstatus.Kind    `json:"kind"`
	Request syncstatus.Request `json:"request"`
	// Outcome is requested (no wait), ok, held, failed or timeout.
	Outcome string             `json:"outcome"`
	Status  *syncstatus.Status `json:"status,omitempty"`
}

// SyncRequest is a "sync now".
type SyncRequest struct {
	Tenant string
	// Kinds to run; empty for every kind a poller runs (catalog, stock).
	Kinds    []syncstatus.Kind
	Full     bool
	Products []string
	// Approve releases held changes; with no Kinds, of every kind that
	// holds one.
	Approve bool
	// Wait waits until a poller ran each kind, or ctx ends (timeout).
	Wait bool
	// Unlink (catalog): products the store is to get anew, as created
	// (`hipersync catalog unlink`); Reset (catalog): every product
	// (`hipersync catalog reset`). Both run a full resync.
	Unlink []string
	Reset  bool
}

// ErrNothingHeld is an approval with nothing to approve.
var ErrNothingHeld = errors.New("nothing is held")

// ErrNotSyncing is a sync asked of a tenant that is not active.
var ErrNotSyncing = errors.New("tenant is not active")

// SyncNow asks the pollers to run a tenant's syncs now and, with Wait,
// waits for each. progress, when set, runs until the waits end.
func SyncNow(ctx context.Context, js jetstream.JetStream, ns events.Namespace, r SyncRequest, progress func(kinds []syncstatus.Kind, stop <-chan struct{})) ([]SyncResult, error) {
	if err := tenant.ValidID(r.Tenant); err != nil {
		return nil, err
	}
	for _, k := range r.Kinds {
		if k != syncstatus.Catalog && k != syncstatus.Stock {
			return nil, fmt.Errorf("unknown sync %q: want catalog or stock", k)
		}
	}
	if err := CheckSyncs(ctx, js, ns, r.Tenant); err != nil {
		return nil, err
	}
	kinds := r.Kinds
	if len(kinds) == 0 {
		kinds = syncstatus.Kinds
	}
	if r.Approve {
		var err error
		if kinds, err = HeldKinds(ctx, js, ns, r.Tenant, kinds, len(r.Kinds) > 0); err != nil {
			return nil, err
		}
	}
	results := make([]SyncResult, len(kinds))
	for i, k := range kinds {
		req := syncstatus.Request{Full: r.Full, Approve: r.Approve}
		if k == syncstatus.Stock {
			req.Products = r.Products
		}
		if k == syncstatus.Catalog && (len(r.Unlink) > 0 || r.Reset) {
			req.Full, req.Unlink, req.Reset = true, r.Unlink, r.Reset
		}
		var err error
		if results[i].Request, err = syncstatus.RequestSync(ctx, js, ns, r.Tenant, k, req); err != nil {
			return nil, err
		}
		results[i].Kind, results[i].Outcome = k, "requested"
	}
	if !r.Wait {
		return results, nil
	}
	var wg sync.WaitGroup
	for i := range results {
		wg.Go(func() { results[i].wait(ctx, js, ns, r.Tenant) })
	}
	stop := make(chan struct{})
	if progress != nil {
		go progress(kinds, stop)
	}
	wg.Wait()
	close(stop)
	return results, nil
}

// wait waits until a poller ran the request, and records how it went.
func (r *SyncResult) wait(ctx context.Context, js jetstream.JetStream, ns events.Namespace, id string) {
	st, err := syncstatus.WaitServed(ctx, js, ns, id, r.Kind, r.Request)
	switch {
	case err != nil:
		r.Outcome = "timeout"
		return
	case st.LastRequest != r.Request.ID && !st.LastRequestAt.After(r.Request.At):
		r.Outcome = "failed"
	case st.Held != nil:
		r.Outcome = "held"
	default:
		r.Outcome = "ok"
	}
	r.Status = &st
}

// Failures says in one line what went wrong with results, or "" when
// nothing did.
func Failures(results []SyncResult, timeout time.Duration) string {
	var failed []string
	for _, r := range results {
		switch r.Outcome {
		case "failed":
			failed = append(failed, fmt.Sprintf("the %s sync failed (%s); the poller retries it", r.Kind, r.Status.LastError))
		case "timeout":
			failed = append(failed, fmt.Sprintf("no %s-poller ran the %s sync within %s; is one running?", r.Kind, r.Kind, timeout))
		}
	}
	return strings.Join(failed, "; ")
}

// CheckSyncs fails unless the tenant is registered and active: a request
// for a paused tenant would wait for nothing.
func CheckSyncs(ctx context.Context, js jetstream.JetStream, ns events.Namespace, id string) error {
	var kv jetstream.KeyValue
	err := events.Retry(ctx, "open tenants", func(ctx context.Context) error {
		var err error
		kv, err = js.KeyValue(ctx, ns.Bucket(tenant.Bucket))
		return err
	})
	if errors.Is(err, jetstream.ErrBucketNotFound) {
		return fmt.Errorf("tenant %s: %w", id, tenant.ErrUnknown)
	}
	if err != nil {
		return fmt.Errorf("read tenants: %w", err)
	}
	var entry jetstream.KeyValueEntry
	err = events.Retry(ctx, "read tenant "+id, func(ctx context.Context) error {
		entry, err = kv.Get(ctx, id)
		return err
	})
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return fmt.Errorf("tenant %s: %w", id, tenant.ErrUnknown)
	}
	if err != nil {
		return fmt.Errorf("read tenant %s: %w", id, err)
	}
	rec, err := tenant.DecodeRecord(entry.Value())
	if err != nil {
		return err
	}
	if st := rec.GetTenant().GetState(); !tenant.Syncs(st) {
		return fmt.Errorf("tenant %s is %s: nothing syncs until it is active: %w", id, tenant.StateName(st), ErrNotSyncing)
	}
	return nil
}

// HeldKinds keeps the kinds whose sync the guardrail holds; asked for
// explicitly, each must be.
func HeldKinds(ctx context.Context, js jetstream.JetStream, ns events.Namespace, id string, kinds []syncstatus.Kind, explicit bool) ([]syncstatus.Kind, error) {
	var held []syncstatus.Kind
	for _, k := range kinds {
		st, _, err := syncstatus.GetStatus(ctx, js, ns, id, k)
		if err != nil {
			return nil, err
		}
		switch {
		case st.Held != nil:
			held = append(held, k)
		case explicit:
			return nil, fmt.Errorf("nothing of the %s sync of %s is held: %w", k, id, ErrNothingHeld)
		}
	}
	if len(held) == 0 {
		return nil, fmt.Errorf("nothing of %s is held: there is nothing to approve: %w", id, ErrNothingHeld)
	}
	return held, nil
}
