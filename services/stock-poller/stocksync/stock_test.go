package stocksync

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/hipersync/hipersync/pkg/events"
	brokerv1 "github.com/hipersync/hipersync/pkg/gen/hipersync/broker/v1"
	eventsv1 "github.com/hipersync/hipersync/pkg/gen/hipersync/events/v1"
	"github.com/hipersync/hipersync/pkg/hiper"
	"github.com/hipersync/hipersync/pkg/hipersim"
	"github.com/hipersync/hipersync/pkg/schedule/scheduletest"
	"github.com/hipersync/hipersync/pkg/syncstatus"
	"github.com/hipersync/hipersync/pkg/testkit"
	"github.com/hipersync/hipersync/services/token-broker/brokertest"
)

// The demo catalog has 79 products, 4 of them parents of variations and 2
// without category and brand (skipped by the catalog, so no stock either).
const demoStocked = 73

type stack struct {
	*brokertest.Stack
	env    scheduletest.Env
	events *scheduletest.Collector
}

func newStack(t *testing.T, o brokertest.Options) *stack {
	t.Helper()
	st := brokertest.Start(t, o)
	return &stack{
		Stack:  st,
		env:    scheduletest.Env{NATS: st.NATS, Namespace: st.NS, Broker: st.Broker, HiperURL: st.Sim.URL},
		events: scheduletest.Collect(t, st.JS, st.NS),
	}
}

func (s *stack) waitSynced(t *testing.T, tenantID string, since time.Time) syncstatus.Status {
	t.Helper()
	st := scheduletest.WaitSynced(t, s.JS, s.NS, tenantID, syncstatus.Stock, since)
	s.events.CaughtUp(t) // the run's events are published; let the reader see them all
	return st
}

// levels returns the stock events of a tenant, by product.
func (s *stack) levels(tenantID string) map[string][]*eventsv1.StockChanged {
	out := map[string][]*eventsv1.StockChanged{}
	for _, e := range s.events.Events(tenantID, events.KindStockChanged) {
		sc := e.Msg.(*eventsv1.StockChanged)
		out[sc.GetProductId()] = append(out[sc.GetProductId()], sc)
	}
	return out
}

// stocked returns a tenant's first n products that have a stock of their
// own and some of it, and that the store gets.
func (s *stack) stocked(tenantID string, n int) []hiper.Product {
	var out []hiper.Product
	for _, p := range s.Sim.Sim.Products(s.Keys[tenantID]) {
		if len(out) < n && !p.IsParent() && p.Stock.IsPositive() && (p.Category != "" || p.Brand != "") {
			out = append(out, p)
		}
	}
	return out
}

func (s *stack) setStock(t *testing.T, tenantID string, products []hiper.Product, quantity string) {
	t.Helper()
	for _, p := range products {
		if err := s.Sim.Sim.SetStock(s.Keys[tenantID], p.ID, hiper.MustDecimal(quantity)); err != nil {
			t.Fatal(err)
		}
	}
}

func TestTwoReplicasThreeTenantsEachStockChangeOnce(t *testing.T) {
	t.Parallel()
	tenants := []string{"acme", "beta", "gama"}
	s := newStack(t, brokertest.Options{Tenants: tenants, Seed: hipersim.SeedDemo})
	start := time.Now()
	a := scheduletest.StartReplica(t, s.env, Start, scheduletest.Fast())
	b := scheduletest.StartReplica(t, s.env, Start, scheduletest.Fast())
	for _, id := range tenants {
		s.waitSynced(t, id, start)
		if got := s.levels(id); len(got) != demoStocked {
			t.Fatalf("%s: initial stock of %d products, want %d", id, len(got), demoStocked)
		}
	}
	if _, err := s.Broker.Tenants.PauseTenant(context.Background(), &brokerv1.PauseTenantRequest{TenantId: "gama"}); err != nil {
		t.Fatal(err)
	}
	scheduletest.WaitTenantState(t, "gama", brokerv1.TenantState_TENANT_STATE_PAUSED, a, b)
	testkit.WaitFor(t, 20*time.Second, "gama's poll to stop", func() bool {
		return !scheduletest.Status(t, s.JS, s.NS, "gama", syncstatus.Stock).Running(time.Now())
	})
	gamaBefore := len(s.events.Events("gama", ""))

	changed := time.Now()
	moved := map[string][]hiper.Product{}
	for _, id := range tenants {
		moved[id] = s.stocked(id, 4)
		s.setStock(t, id, moved[id][:3], "2.5")
		// The fourth: its minimum only. Another: its name only, no stock.
		p := moved[id][3]
		p.MinimumStock = hiper.MustDecimal("7")
		other := s.stocked(id, 5)[4]
		other.Name += " (novo)"
		if err := s.Sim.Sim.UpsertProducts(s.Keys[id], []hiper.Product{p, other}); err != nil {
			t.Fatal(err)
		}
	}
	for _, id := range []string{"acme", "beta"} {
		s.waitSynced(t, id, changed)
		got := s.levels(id)
		for i, p := range moved[id] {
			want := 2
			if len(got[p.ID]) != want {
				t.Fatalf("%s: %d stock events for %s, want %d", id, len(got[p.ID]), p.Name, want)
			}
			last := got[p.ID][1]
			if i < 3 && last.GetQuantity() != "2.5" || i == 3 && last.GetMinimumQuantity() != "7" {
				t.Fatalf("%s: %s now %v", id, p.Name, last)
			}
		}
		if n := len(s.events.Events(id, events.KindStockChanged)); n != demoStocked+4 {
			t.Fatalf("%s: %d stock events, want %d: a name change published stock", id, n, demoStocked+4)
		}
	}
	since := time.Now()
	s.waitSynced(t, "acme", since)
	s.waitSynced(t, "beta", since)
	if n := len(s.events.Events("gama", "")); n != gamaBefore {
		t.Fatalf("paused gama got %d events", n-gamaBefore)
	}
	// Changes seen without a per-product call.
	if n := s.Sim.Sim.Stats().Requests[hipersim.EndpointStock]; n != 0 {
		t.Fatalf("%d calls to the stock endpoint without a refresh asked for", n)
	}
}

// A product running out of stock is never held by the guardrail:
// overselling is worse than a false alarm.
func TestMassStockOutIsNeverHeld(t *testing.T) {
	t.Parallel()
	s := newStack(t, brokertest.Options{Seed: hipersim.SeedDemo})
	scheduletest.StartReplica(t, s.env, Start, scheduletest.Fast())
	s.waitSynced(t, "acme", time.Now())
	out := s.stocked("acme", 40) // 40 of 79 products: far over 20%
	s.setStock(t, "acme", out, "0")
	st := s.waitSynced(t, "acme", time.Now())
	if st.Held != nil || len(s.events.Events("acme", events.KindCatalogGuardHeld)) != 0 {
		t.Fatalf("stock running out was held: %+v", st.Held)
	}
	got := s.levels("acme")
	for _, p := range out {
		if l := got[p.ID]; len(l) != 2 || l[1].GetQuantity() != "0" {
			t.Fatalf("%s: %v", p.Name, l)
		}
	}
}

func TestTargetedRefreshAsksTheStockEndpoint(t *testing.T) {
	t.Parallel()
	s := newStack(t, brokertest.Options{Seed: hipersim.SeedDemo})
	scheduletest.StartReplica(t, s.env, Start, scheduletest.Fast())
	s.waitSynced(t, "acme", time.Now())
	p := s.stocked("acme", 1)[0]
	var parent hiper.Product
	for _, q := range s.Sim.Sim.Products(s.Keys["acme"]) {
		if q.IsParent() {
			parent = q
		}
	}
	ctx := context.Background()
	r, err := syncstatus.RequestSync(ctx, s.JS, s.NS, "acme", syncstatus.Stock, syncstatus.Request{
		Products: []string{p.ID, parent.ID, "0b5e6f7a-1111-4222-8333-944455556666"},
	})
	if err != nil {
		t.Fatal(err)
	}
	st, err := syncstatus.WaitServed(ctx, s.JS, s.NS, "acme", syncstatus.Stock, r)
	if err != nil || st.LastError != "" {
		t.Fatalf("refresh: %+v, %v", st, err)
	}
	// Only the product the poller follows is asked for; unchanged, it
	// publishes nothing.
	if n := s.Sim.Sim.Stats().Requests[hipersim.EndpointStock]; n != 1 {
		t.Fatalf("%d stock endpoint calls, want 1", n)
	}
	if n := len(s.levels("acme")[p.ID]); n != 1 {
		t.Fatalf("%d stock events for an unchanged product", n)
	}
}

// A stock back to an earlier level (a sale, then its cancellation) reaches
// a store that reads the stream with a durable consumer; a change whose
// event went out but whose state was not recorded (the poller died between
// the two) still reaches it once.
func TestEveryStockChangeReachesTheStoreOnce(t *testing.T) {
	t.Parallel()
	s := newStack(t, brokertest.Options{Seed: hipersim.SeedDemo})
	scheduletest.StartReplica(t, s.env, Start, scheduletest.Fast())
	s.waitSynced(t, "acme", time.Now())
	store := scheduletest.ConsumeAsStore(t, s.JS, s.NS, "acme")
	p := s.stocked("acme", 1)[0]
	was := p.Stock.String()

	for _, q := range []string{"3", was} {
		since := time.Now()
		s.setStock(t, "acme", []hiper.Product{p}, q)
		s.waitSynced(t, "acme", since)
	}
	store.CaughtUp(t)
	if got, want := quantities(store, p.ID), []string{"3", was}; !slices.Equal(got, want) {
		t.Fatalf("the store read the stock of %s as %v, want %v", p.Name, got, want)
	}

	// The poller publishes the change, then cannot record it.
	thaw := scheduletest.FreezeBucket(t, s.JS, s.NS, StateBucket)
	since := time.Now()
	s.setStock(t, "acme", []hiper.Product{p}, "3")
	testkit.WaitFor(t, 10*time.Second, "a poll to publish the change and fail to record it", func() bool {
		st := scheduletest.Status(t, s.JS, s.NS, "acme", syncstatus.Stock)
		return st.LastErrorAt.After(since) && len(quantities(store, p.ID)) == 3
	})
	thaw()
	s.waitSynced(t, "acme", time.Now())

	store.CaughtUp(t)
	want := []string{"3", was, "3"}
	if got := quantities(store, p.ID); !slices.Equal(got, want) {
		t.Fatalf("the store read the stock of %s as %v, want %v", p.Name, got, want)
	}
}

// quantities returns the quantities a store read for a product, in order.
func quantities(store *scheduletest.StoreConsumer, productID string) []string {
	var out []string
	for _, e := range store.Events(events.KindStockChanged) {
		if sc := e.Msg.(*eventsv1.StockChanged); sc.GetProductId() == productID {
			out = append(out, sc.GetQuantity())
		}
	}
	return out
}
