package ops

import (
	"context"
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/hipersync/hipersync/pkg/events"
	brokerv1 "github.com/hipersync/hipersync/pkg/gen/hipersync/broker/v1"
	"github.com/hipersync/hipersync/pkg/syncstatus"
	"github.com/hipersync/hipersync/pkg/tenant"
	"github.com/hipersync/hipersync/pkg/testkit"
)

// env is one test's namespace on the real NATS: the tenants bucket and the
// pollers' buckets, removed when the test ends.
type env struct {
	js              jetstream.JetStream
	ns              events.Namespace
	tenants, status jetstream.KeyValue
	requests        jetstream.KeyValue
}

func newEnv(t *testing.T) *env {
	t.Helper()
	_, js := testkit.Connect(t)
	e := &env{js: js, ns: events.Namespace{Prefix: testkit.Prefix(t)}}
	var err error
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		for name := range js.StreamNames(ctx).Name() {
			if strings.HasPrefix(name, "KV_"+e.ns.Prefix+"_") {
				_ = js.DeleteStream(ctx, name)
			}
		}
	})
	if e.tenants, err = events.EnsureKV(t.Context(), js, e.ns, tenant.Bucket); err != nil {
		t.Fatal(err)
	}
	if e.status, e.requests, err = syncstatus.EnsureBuckets(t.Context(), js, e.ns); err != nil {
		t.Fatal(err)
	}
	return e
}

// register writes a tenant's registry record, as token-broker does.
func (e *env) register(t *testing.T, id string, state brokerv1.TenantState) {
	t.Helper()
	b, err := tenant.EncodeRecord(&brokerv1.TenantRecord{Tenant: &brokerv1.Tenant{TenantId: id, State: state,
		StateChangedAt: timestamppb.New(time.Now().Add(-time.Hour))}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.tenants.Put(t.Context(), id, b); err != nil {
		t.Fatal(err)
	}
}

// poller writes a sync's status, as a poller does.
func (e *env) poller(t *testing.T, id string, k syncstatus.Kind, change func(*syncstatus.Status)) {
	t.Helper()
	if err := syncstatus.UpdateStatus(t.Context(), e.status, id, k, change); err != nil {
		t.Fatal(err)
	}
}

// requested is the request stored for tenant's sync of kind k, if any.
func (e *env) requested(t *testing.T, id string, k syncstatus.Kind) (syncstatus.Request, bool) {
	t.Helper()
	r, ok, err := e.lookup(id, k)
	if err != nil {
		t.Fatal(err)
	}
	return r, ok
}

func (e *env) lookup(id string, k syncstatus.Kind) (r syncstatus.Request, ok bool, err error) {
	entry, err := e.requests.Get(context.Background(), syncstatus.StatusKey(id, k))
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return r, false, nil
	}
	if err != nil {
		return r, false, err
	}
	return r, true, json.Unmarshal(entry.Value(), &r)
}

// A sync asked of a tenant that would wait for nothing is refused, and no
// request is left for a poller to find later.
func TestSyncNowRefusesATenantThatDoesNotSync(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.register(t, "paused", brokerv1.TenantState_TENANT_STATE_PAUSED)
	e.register(t, "nokey", brokerv1.TenantState_TENANT_STATE_INVALID_KEY)
	e.register(t, "acme", brokerv1.TenantState_TENANT_STATE_ACTIVE)
	ctx := t.Context()

	for _, tc := range []struct {
		tenant string
		kinds  []syncstatus.Kind
		want   error
	}{
		{"ghost", nil, tenant.ErrUnknown},
		{"paused", nil, ErrNotSyncing},
		{"nokey", nil, ErrNotSyncing},
		{"Not A Tenant", nil, tenant.ErrInvalidID},
	} {
		if _, err := SyncNow(ctx, e.js, e.ns, SyncRequest{Tenant: tc.tenant, Kinds: tc.kinds}, nil); !errors.Is(err, tc.want) {
			t.Errorf("SyncNow(%s) = %v; want %v", tc.tenant, err, tc.want)
		}
		for _, k := range syncstatus.Kinds {
			if tenant.ValidID(tc.tenant) != nil {
				continue
			}
			if _, ok := e.requested(t, tc.tenant, k); ok {
				t.Errorf("SyncNow(%s) left a %s request", tc.tenant, k)
			}
		}
	}
	// Invoices are watched, not polled: no "sync now" for them.
	if _, err := SyncNow(ctx, e.js, e.ns, SyncRequest{Tenant: "acme", Kinds: []syncstatus.Kind{syncstatus.Invoices}}, nil); err == nil {
		t.Error("SyncNow(acme, invoices) was accepted")
	}

	// An active tenant: one request per polled kind, stock with its products.
	res, err := SyncNow(ctx, e.js, e.ns, SyncRequest{Tenant: "acme", Full: true, Products: []string{"p1"}}, nil)
	if err != nil || len(res) != 2 {
		t.Fatalf("SyncNow(acme) = %+v, %v", res, err)
	}
	cat, _ := e.requested(t, "acme", syncstatus.Catalog)
	stock, _ := e.requested(t, "acme", syncstatus.Stock)
	if !cat.Full || len(cat.Products) != 0 || !stock.Full || !slices.Equal(stock.Products, []string{"p1"}) {
		t.Fatalf("requests: catalog %+v, stock %+v", cat, stock)
	}
	for _, r := range res {
		if r.Outcome != "requested" {
			t.Errorf("%s: outcome %q without waiting", r.Kind, r.Outcome)
		}
	}
}

// Approving releases only what the guardrail holds; naming a kind that
// holds nothing, or approving when nothing is held, is refused.
func TestApproveReleasesOnlyHeldChanges(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.register(t, "acme", brokerv1.TenantState_TENANT_STATE_ACTIVE)
	ctx := t.Context()

	if _, err := SyncNow(ctx, e.js, e.ns, SyncRequest{Tenant: "acme", Approve: true}, nil); !errors.Is(err, ErrNothingHeld) {
		t.Fatalf("approve with nothing held = %v; want ErrNothingHeld", err)
	}
	e.poller(t, "acme", syncstatus.Catalog, func(s *syncstatus.Status) {
		s.Held = &syncstatus.Held{Since: time.Now(), Summary: "40% deactivated"}
	})
	e.poller(t, "acme", syncstatus.Stock, func(s *syncstatus.Status) { s.LastSuccessAt = time.Now() })
	if _, err := SyncNow(ctx, e.js, e.ns, SyncRequest{Tenant: "acme", Approve: true, Kinds: []syncstatus.Kind{syncstatus.Stock}}, nil); !errors.Is(err, ErrNothingHeld) {
		t.Fatalf("approve stock, which holds nothing = %v; want ErrNothingHeld", err)
	}
	if _, ok := e.requested(t, "acme", syncstatus.Stock); ok {
		t.Fatal("a refused approval left a stock request")
	}
	res, err := SyncNow(ctx, e.js, e.ns, SyncRequest{Tenant: "acme", Approve: true}, nil)
	if err != nil || len(res) != 1 || res[0].Kind != syncstatus.Catalog || !res[0].Request.Approve {
		t.Fatalf("approve = %+v, %v; want the catalog approved only", res, err)
	}
	if _, ok := e.requested(t, "acme", syncstatus.Stock); ok {
		t.Fatal("approving the catalog asked for a stock sync")
	}
}

// Waiting reports what the poller did with the request: ok, held, failed,
// or timeout when no poller ran it.
func TestSyncNowWaitReportsThePollersAnswer(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.register(t, "acme", brokerv1.TenantState_TENANT_STATE_ACTIVE)

	// No poller: the wait ends with the context, cancelled once the wait
	// began (progress runs then), not by a deadline a loaded machine could
	// pass before the request is even written.
	ctx, cancel := context.WithCancel(t.Context())
	res, err := SyncNow(ctx, e.js, e.ns, SyncRequest{Tenant: "acme", Kinds: []syncstatus.Kind{syncstatus.Stock}, Wait: true},
		func([]syncstatus.Kind, <-chan struct{}) { cancel() })
	cancel()
	if err != nil || len(res) != 1 || res[0].Outcome != "timeout" {
		t.Fatalf("no poller: %+v, %v; want timeout", res, err)
	}
	if msg := Failures(res, time.Second); !strings.Contains(msg, "no stock-poller ran the stock sync") {
		t.Errorf("Failures = %q", msg)
	}

	// A poller serves the next request made as the test says.
	serve := func(k syncstatus.Kind, how func(*syncstatus.Status, syncstatus.Request)) {
		since := time.Now()
		go testkit.Until(10*time.Second, func() bool {
			r, ok, _ := e.lookup("acme", k)
			if !ok || !r.At.After(since) {
				return false
			}
			// The request goes before the answer: SyncNow returns on the
			// answer, and a delete after it could remove the next request.
			_ = e.requests.Delete(context.Background(), syncstatus.StatusKey("acme", k))
			_ = syncstatus.UpdateStatus(context.Background(), e.status, "acme", k, func(s *syncstatus.Status) {
				s.LastRunAt = time.Now()
				how(s, r)
			})
			return true
		})
	}
	for _, tc := range []struct {
		want string
		how  func(*syncstatus.Status, syncstatus.Request)
	}{
		{"ok", func(s *syncstatus.Status, r syncstatus.Request) {
			s.LastRequest, s.LastRequestAt, s.LastSuccessAt, s.Held = r.ID, time.Now(), time.Now(), nil
		}},
		{"held", func(s *syncstatus.Status, r syncstatus.Request) {
			s.LastRequest, s.LastRequestAt, s.Held = r.ID, time.Now(), &syncstatus.Held{Since: time.Now(), Summary: "held"}
		}},
		{"failed", func(s *syncstatus.Status, _ syncstatus.Request) {
			s.LastError, s.LastErrorAt, s.Held = "hiper_unavailable", time.Now(), nil
		}},
	} {
		serve(syncstatus.Catalog, tc.how)
		ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
		res, err := SyncNow(ctx, e.js, e.ns, SyncRequest{Tenant: "acme", Kinds: []syncstatus.Kind{syncstatus.Catalog}, Wait: true}, nil)
		cancel()
		if err != nil || len(res) != 1 || res[0].Outcome != tc.want || res[0].Status == nil {
			t.Fatalf("served as %s: %+v, %v", tc.want, res, err)
		}
		if tc.want == "failed" && !strings.Contains(Failures(res, time.Second), "hiper_unavailable") {
			t.Errorf("Failures = %q; want the poller's error", Failures(res, time.Second))
		}
	}
}

// Status joins the registry with the pollers' status and the Hiper
// outages: every registered tenant, one polled since removed as unknown,
// each tenant's own outage before Hiper's, the oldest replica's note.
func TestStatusJoinsRegistrySyncsAndOutages(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := t.Context()
	now := time.Now()
	e.register(t, "acme", brokerv1.TenantState_TENANT_STATE_ACTIVE)
	e.register(t, "beta", brokerv1.TenantState_TENANT_STATE_PAUSED)
	e.poller(t, "acme", syncstatus.Catalog, func(s *syncstatus.Status) {
		s.TargetInterval = syncstatus.Duration(5 * time.Minute)
		s.LastSuccessAt, s.LastRunAt = now.Add(-20*time.Minute), now.Add(-20*time.Minute)
	})
	e.poller(t, "acme", syncstatus.Stock, func(s *syncstatus.Status) {
		s.TargetInterval = syncstatus.Duration(5 * time.Minute)
		s.LastSuccessAt, s.LastRunAt = now.Add(-time.Minute), now.Add(-time.Minute)
	})
	e.poller(t, "gone", syncstatus.Stock, func(s *syncstatus.Status) { s.LastRunAt = now })

	outages, err := events.EnsureKV(ctx, e.js, e.ns, OutageBucket)
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range []Outage{
		{Scope: ScopeEndpoint, Name: "POST /pedido-de-venda/", Since: now.Add(-2 * time.Minute), Replica: "r1", LastError: "503"},
		{Scope: ScopeEndpoint, Name: "POST /pedido-de-venda/", Since: now.Add(-5 * time.Minute), Replica: "r2", LastError: "503"},
		{Scope: ScopeTenant, Name: "acme", Since: now.Add(-time.Minute), Replica: "r1", LastError: "invalid key"},
	} {
		b, _ := json.Marshal(o)
		if _, err := outages.Put(ctx, OutageKey(o), b); err != nil {
			t.Fatal(err)
		}
	}

	all, err := Status(ctx, e.js, e.ns, now)
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	byID := map[string]TenantStatus{}
	for _, ts := range all {
		ids, byID[ts.Tenant] = append(ids, ts.Tenant), ts
	}
	if !slices.Equal(ids, []string{"acme", "beta", "gone"}) {
		t.Fatalf("Status lists %v; want acme, beta, gone in order", ids)
	}
	acme := byID["acme"]
	if acme.State != "active" || !acme.Syncs["catalog"].Stale || acme.Syncs["stock"].Stale {
		t.Errorf("acme: state %s, catalog stale %v, stock stale %v; want active, the catalog 20 min behind a 5 min target stale",
			acme.State, acme.Syncs["catalog"].Stale, acme.Syncs["stock"].Stale)
	}
	if acme.HiperOutage == nil || acme.HiperOutage.Scope != ScopeTenant {
		t.Errorf("acme's outage = %+v; want its own account's", acme.HiperOutage)
	}
	if o := byID["beta"].HiperOutage; o == nil || o.Scope != ScopeEndpoint || o.Replica != "r2" {
		t.Errorf("beta's outage = %+v; want Hiper's, as the replica that saw it first noted it", o)
	}
	if byID["beta"].State != "paused" || byID["gone"].State != "unknown" {
		t.Errorf("beta is %s, gone is %s; want paused and unknown", byID["beta"].State, byID["gone"].State)
	}

	// One tenant by key says the same as the whole list.
	one, ok, err := StatusOf(ctx, e.js, e.ns, "acme", now)
	if err != nil || !ok || one.State != acme.State || len(one.Syncs) != 2 || one.HiperOutage.Scope != ScopeTenant {
		t.Errorf("StatusOf(acme) = %+v, %v, %v; want what Status says", one, ok, err)
	}
	if _, ok, err := StatusOf(ctx, e.js, e.ns, "nobody", now); ok || err != nil {
		t.Errorf("StatusOf(nobody) = ok %v, %v; want not found", ok, err)
	}
}

// The sync log's filters: an outcome keeps hipersync's events only (a
// store's event has none), failures by FailedKinds; order and product by
// the event's ids; text and until as given.
func TestLogFilterKeeps(t *testing.T) {
	t.Parallel()
	ns := events.Namespace{Prefix: "x"}
	at := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	store := LogLine{Time: at, Stream: ns.Stream(events.StreamStore), Kind: string(events.KindOrderApproved), Event: json.RawMessage(`{"orderId":"7"}`)}
	accepted := LogLine{Time: at, Stream: ns.Stream(events.StreamHiper), Kind: string(events.KindOrderAccepted), Event: json.RawMessage(`{"orderId":"7"}`)}
	failed := LogLine{Time: at, Stream: ns.Stream(events.StreamHiper), Kind: string(events.KindSyncFailed), Event: json.RawMessage(`{"productId":"p9","reason":"hiper_unavailable"}`)}
	for _, tc := range []struct {
		name string
		f    LogFilter
		want []bool // store, accepted, failed
	}{
		{"no filter", LogFilter{}, []bool{true, true, true}},
		{"outcome ok", LogFilter{Outcome: "ok"}, []bool{false, true, false}},
		{"outcome failed", LogFilter{Outcome: "failed"}, []bool{false, false, true}},
		{"order", LogFilter{Order: "7"}, []bool{true, true, false}},
		{"product", LogFilter{Product: "p9"}, []bool{false, false, true}},
		{"text", LogFilter{Contains: "hiper_unavailable"}, []bool{false, false, true}},
		{"until before", LogFilter{Until: at.Add(-time.Second)}, []bool{false, false, false}},
	} {
		var got []bool
		for _, l := range []LogLine{store, accepted, failed} {
			got = append(got, tc.f.keep(l))
		}
		if !slices.Equal(got, tc.want) {
			t.Errorf("%s keeps %v of store, accepted, failed; want %v", tc.name, got, tc.want)
		}
	}
	if _, err := ParseOutcome("falha"); err == nil {
		t.Error("ParseOutcome(falha) accepted")
	}
	if err := (LogFilter{Tenant: "Bad Tenant"}).Validate(); !errors.Is(err, tenant.ErrInvalidID) {
		t.Errorf("Validate(Bad Tenant) = %v", err)
	}
}
