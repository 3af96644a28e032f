package ops

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/hipersync/hipersync/pkg/events"
	brokerv1 "github.com/hipersync/hipersync/pkg/gen/hipersync/broker/v1"
	"github.com/hipersync/hipersync/pkg/syncstatus"
	"github.com/hipersync/hipersync/pkg/tenant"
)

// SyncView is one kind of sync of one tenant, with its freshness against
// its target interval.
type SyncView struct {
	LastSuccessAt  *time.Time `json:"lastSuccessAt,omitempty"`
	LagSeconds     float64    `json:"lagSeconds"`
	Interval       string     `json:"interval,omitempty"`
	Stale          bool       `json:"stale"`
	Running        bool       `json:"running"`
	ItemsPublished int64      `json:"itemsPublished"`
	LastError      string     `json:"lastError,omitempty"`
	LastErrorAt    *time.Time `json:"lastErrorAt,omitempty"`
	Held           string     `json:"held,omitempty"`

	// Target is the interval as a duration, Lag the lag.
	Target time.Duration `json:"-"`
	Lag    time.Duration `json:"-"`
}

// TenantStatus is one tenant's registry state joined with its syncs.
type TenantStatus struct {
	Tenant string `json:"tenant"`
	State  string `json:"state"`
	// StateReason is why, in Portuguese; StateReasonCode its stable code
	// (tenant.Reason*).
	StateReason     string               `json:"stateReason,omitempty"`
	StateReasonCode string               `json:"stateReasonCode,omitempty"`
	Since           time.Time            `json:"since"`
	Syncs           map[string]*SyncView `json:"syncs"`
	// HiperOutage is set while the order-forwarder finds Hiper (or this
	// tenant's Hiper account) failing every call: orders wait for it.
	HiperOutage *Outage `json:"hiperOutage,omitempty"`
}

// StatusKinds are the kinds a status shows, in order.
var StatusKinds = []syncstatus.Kind{syncstatus.Catalog, syncstatus.Stock, syncstatus.Invoices}

// Status joins each tenant's registry state with the pollers' status store,
// sorted by tenant.
func Status(ctx context.Context, js jetstream.JetStream, ns events.Namespace, now time.Time) ([]TenantStatus, error) {
	byTenant := map[string]*TenantStatus{}
	kv, err := js.KeyValue(ctx, ns.Bucket(tenant.Bucket))
	switch {
	case errors.Is(err, jetstream.ErrBucketNotFound):
	case err != nil:
		return nil, fmt.Errorf("read tenants: %w", err)
	default:
		// One watch reads every record in a single pass; a Get per tenant
		// would be 2,000 round trips for 2,000 stores.
		w, err := kv.WatchAll(ctx, jetstream.IgnoreDeletes())
		if err != nil {
			return nil, fmt.Errorf("list tenants: %w", err)
		}
		defer func() { _ = w.Stop() }()
	read:
		for {
			select {
			case <-ctx.Done():
				return nil, fmt.Errorf("list tenants: %w", ctx.Err())
			case entry, ok := <-w.Updates():
				if !ok {
					return nil, errors.New("list tenants: watch closed")
				}
				if entry == nil {
					break read
				}
				rec, err := tenant.DecodeRecord(entry.Value())
				if err != nil {
					return nil, err
				}
				id := entry.Key()
				ts := &TenantStatus{Tenant: id, Syncs: map[string]*SyncView{}}
				ts.setTenant(rec.GetTenant())
				byTenant[id] = ts
			}
		}
	}
	syncs, err := syncstatus.ListStatus(ctx, js, ns)
	if err != nil {
		return nil, err
	}
	for _, st := range syncs {
		ts := byTenant[st.Tenant]
		if ts == nil {
			// Polled once, since removed from the registry.
			ts = &TenantStatus{Tenant: st.Tenant, State: "unknown", Syncs: map[string]*SyncView{}}
			byTenant[st.Tenant] = ts
		}
		ts.Syncs[string(st.Kind)] = ViewOf(st, now)
	}
	down, err := outages(ctx, js, ns)
	if err != nil {
		return nil, err
	}
	out := make([]TenantStatus, 0, len(byTenant))
	for id, ts := range byTenant {
		ts.HiperOutage = outageOf(down, id)
		out = append(out, *ts)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Tenant < out[j].Tenant })
	return out, nil
}

// ViewOf is one sync's status as of now.
func ViewOf(st syncstatus.Status, now time.Time) *SyncView {
	lag := st.Lag(now)
	v := &SyncView{
		LagSeconds: lag.Seconds(), Lag: lag, Stale: st.Stale(now), Running: st.Running(now),
		ItemsPublished: st.ItemsPublished, LastError: st.LastError, Target: time.Duration(st.TargetInterval),
	}
	if v.Target > 0 {
		v.Interval = v.Target.String()
	}
	if !st.LastSuccessAt.IsZero() {
		at := st.LastSuccessAt
		v.LastSuccessAt = &at
	}
	if !st.LastErrorAt.IsZero() {
		at := st.LastErrorAt
		v.LastErrorAt = &at
	}
	if st.Held != nil {
		v.Held = st.Held.Summary
	}
	return v
}

// setTenant takes the tenant's state from its registry record.
func (ts *TenantStatus) setTenant(t *brokerv1.Tenant) {
	ts.State, ts.Since = tenant.StateName(t.GetState()), t.GetStateChangedAt().AsTime()
	ts.StateReason, ts.StateReasonCode = t.GetStateReason(), t.GetStateReasonCode()
}

// StatusOf is one tenant's status: its registry record and its syncs, read
// by key (a few reads, however many tenants there are). ok is false when
// the tenant is neither registered nor ever polled.
func StatusOf(ctx context.Context, js jetstream.JetStream, ns events.Namespace, id string, now time.Time) (ts TenantStatus, ok bool, err error) {
	ts = TenantStatus{Tenant: id, State: "unknown", Syncs: map[string]*SyncView{}}
	kv, err := js.KeyValue(ctx, ns.Bucket(tenant.Bucket))
	switch {
	case errors.Is(err, jetstream.ErrBucketNotFound):
	case err != nil:
		return ts, false, fmt.Errorf("read tenants: %w", err)
	default:
		entry, err := kv.Get(ctx, id)
		switch {
		case errors.Is(err, jetstream.ErrKeyNotFound):
		case err != nil:
			return ts, false, fmt.Errorf("read tenant %s: %w", id, err)
		default:
			rec, err := tenant.DecodeRecord(entry.Value())
			if err != nil {
				return ts, false, err
			}
			ts.setTenant(rec.GetTenant())
			ok = true
		}
	}
	for _, k := range StatusKinds {
		st, found, err := syncstatus.GetStatus(ctx, js, ns, id, k)
		if err != nil {
			return ts, false, err
		}
		if found {
			ts.Syncs[string(k)], ok = ViewOf(st, now), true
		}
	}
	down, err := outages(ctx, js, ns)
	if err != nil {
		return ts, false, err
	}
	ts.HiperOutage = outageOf(down, id)
	return ts, ok, nil
}

// outageOf is the outage a tenant's orders wait for: its own account's
// first, else Hiper's endpoint's; nil when Hiper answers.
func outageOf(down map[string]Outage, id string) *Outage {
	for _, key := range []string{ScopeTenant + "." + id, ScopeEndpoint} {
		if o, ok := down[key]; ok {
			return &o
		}
	}
	return nil
}
