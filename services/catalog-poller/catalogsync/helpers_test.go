package catalogsync

import (
	"context"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/fieldmaskpb"

	"github.com/hipersync/hipersync/pkg/events"
	brokerv1 "github.com/hipersync/hipersync/pkg/gen/hipersync/broker/v1"
	eventsv1 "github.com/hipersync/hipersync/pkg/gen/hipersync/events/v1"
	"github.com/hipersync/hipersync/pkg/hiper"
	"github.com/hipersync/hipersync/pkg/schedule"
	"github.com/hipersync/hipersync/pkg/schedule/scheduletest"
	"github.com/hipersync/hipersync/pkg/syncstatus"
	"github.com/hipersync/hipersync/services/token-broker/brokertest"
)

// stack is a test's real world: NATS, token-broker, hiper-sim, and the
// events published so far.
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

func (s *stack) replica(t *testing.T, opts schedule.Options) *scheduletest.Replica {
	t.Helper()
	return scheduletest.StartReplica(t, s.env, Start, opts)
}

func (s *stack) status(t *testing.T, tenantID string) syncstatus.Status {
	t.Helper()
	return scheduletest.Status(t, s.JS, s.NS, tenantID, syncstatus.Catalog)
}

// waitSynced waits until a catalog poll that started after since ran.
func (s *stack) waitSynced(t *testing.T, tenantID string, since time.Time) syncstatus.Status {
	t.Helper()
	st := scheduletest.WaitSynced(t, s.JS, s.NS, tenantID, syncstatus.Catalog, since)
	s.events.CaughtUp(t) // the run's events are published; let the reader see them all
	return st
}

// upserts returns the product upserts published for a tenant, by product.
func (s *stack) upserts(tenantID string) map[string][]*eventsv1.CatalogProductUpserted {
	out := map[string][]*eventsv1.CatalogProductUpserted{}
	for _, e := range s.events.Events(tenantID, events.KindCatalogProductUpserted) {
		u := e.Msg.(*eventsv1.CatalogProductUpserted)
		out[u.GetProductId()] = append(out[u.GetProductId()], u)
	}
	return out
}

// products returns a tenant's catalog in hiper-sim, as the feed shows it.
func (s *stack) products(tenantID string) []hiper.Product {
	return s.Sim.Sim.Products(s.Keys[tenantID])
}

// change edits the tenant's products that pick selects, in hiper-sim, and
// returns them as changed.
func (s *stack) change(t *testing.T, tenantID string, pick func(hiper.Product) bool, edit func(*hiper.Product)) []hiper.Product {
	t.Helper()
	var out []hiper.Product
	for _, p := range s.products(tenantID) {
		if pick(p) {
			edit(&p)
			out = append(out, p)
		}
	}
	if len(out) == 0 {
		t.Fatal("change: no product picked")
	}
	if err := s.Sim.Sim.UpsertProducts(s.Keys[tenantID], out); err != nil {
		t.Fatal(err)
	}
	return out
}

// firstN picks the first n products that ok accepts.
func firstN(n int, ok func(hiper.Product) bool) func(hiper.Product) bool {
	return func(p hiper.Product) bool {
		if n > 0 && ok(p) {
			n--
			return true
		}
		return false
	}
}

// simple accepts products without variations that have a category.
func simple(p hiper.Product) bool { return !p.IsParent() && !p.IsVariation() && p.Category != "" }

// named accepts the product called name.
func named(name string) func(hiper.Product) bool {
	return func(p hiper.Product) bool { return p.Name == name }
}

// settings applies settings to a tenant.
func (s *stack) settings(t *testing.T, tenantID string, set *brokerv1.TenantSettings, paths ...string) {
	t.Helper()
	_, err := s.Broker.Tenants.UpdateTenantSettings(context.Background(), &brokerv1.UpdateTenantSettingsRequest{
		TenantId: tenantID, Settings: set, UpdateMask: &fieldmaskpb.FieldMask{Paths: paths},
	})
	if err != nil {
		t.Fatal(err)
	}
}

// request asks for a catalog sync now and waits until it ran.
func (s *stack) request(t *testing.T, tenantID string, r syncstatus.Request) syncstatus.Status {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	r, err := syncstatus.RequestSync(ctx, s.JS, s.NS, tenantID, syncstatus.Catalog, r)
	if err != nil {
		t.Fatal(err)
	}
	st, err := syncstatus.WaitServed(ctx, s.JS, s.NS, tenantID, syncstatus.Catalog, r)
	if err != nil {
		t.Fatalf("wait for the requested sync: %v", err)
	}
	return st
}

// catalogEvents counts a tenant's events other than the sync log's.
func (s *stack) catalogEvents(tenantID string) int {
	n := 0
	for _, e := range s.events.Events(tenantID, "") {
		if !strings.HasPrefix(string(e.Kind), "sync.") {
			n++
		}
	}
	return n
}
