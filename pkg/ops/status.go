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
	"github.com/hipersync/hipersync/pkg/kvwatch"
	"github.com/hipersync/hipersync/pkg/syncstatus"
	"github.com/hipersync/hipersync/pkg/tenant"
)

// SyncView is one kind of sync of one tenant, with its freshness against
// its target interval.
type SyncView struct {
	LastSuccessAt *time.Time `json:"lastSuccessAt,omitempty"`
	LagSeconds    float64    `json:"lagSeconds"`
	Interval      string     `json:"interval,omitempty"`
	// ExpectInterval is, for invoices, how often the orders expecting their
	// invoice are polled at least (Interval is the others' ceiling).
	ExpectInterval string     `json:"expectInterval,omitempty"`
	Stale          bool       `json:"stale"`
	Running        bool       `json:"running"`
	ItemsPublished int64      `json:"itemsPublished"`
	LastError      string     `json:"lastError,omitempty"`
	LastErrorAt    *time.Time `json:"lastErrorAt,omitempty"`
	Held           string     `json:"held,omitempty"`
	// Owner is the replica running the sync, while Running.
	Owner string `json:"owner,omitempty"`
	// FullRunning: a full resync of the catalog is under way, at sync
	// point FullCursor of Hiper's feed; Products the poller knows.
	FullRunning bool  `json:"fullRunning,omitempty"`
	FullCursor  int64 `json:"fullCursor,omitempty"`
	Products    int64 `json:"products,omitempty"`

	// Target is the interval as a duration, Expect ExpectInterval, Lag
	// the lag.
	Target time.Duration `json:"-"`
	Expect time.Duration `json:"-"`
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
		err := kvwatch.ReadAll(ctx, kv, "list tenants", func(entry jetstream.KeyValueEntry) error {
			rec, err := tenant.DecodeRecord(entry.Value())
			if err != nil {
				return err
			}
			id := entry.Key()
			ts := &TenantStatus{Tenant: id, Syncs: map[string]*SyncView{}}
			ts.setTenant(rec.GetTenant())
			byTenant[id] = ts
			return nil
		})
		if err != nil {
			return nil, err
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
		Expect: time.Duration(st.ExpectInterval),
	}
	v.SetIntervals()
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
	if v.Running {
		v.Owner = st.Lease.Owner
	}
	v.FullRunning, v.FullCursor, v.Products = st.FullRunning, st.FullCursor, st.Products
	return v
}

// Progress is one line's part about a sync under way, as `hipersync sync`
// prints it while it waits: v is nil while no poller has run the kind.
func Progress(tenantID string, kind syncstatus.Kind, v *SyncView) string {
	switch {
	case v == nil:
		return string(kind) + ": waiting for a poller"
	case v.FullRunning:
		return fmt.Sprintf("%s: full resync at sync point %d of %s's feed, %d products known", kind, v.FullCursor, tenantID, v.Products)
	case v.Running:
		return fmt.Sprintf("%s: running (%s)", kind, v.Owner)
	default:
		return string(kind) + ": queued"
	}
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

// SetIntervals writes Target and Expect as the text the CLI prints.
func (v *SyncView) SetIntervals() {
	if v.Target > 0 {
		v.Interval = v.Target.String()
	}
	if v.Expect > 0 {
		v.ExpectInterval = v.Expect.String()
	}
}
