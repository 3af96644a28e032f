package stocksync

import (
	"fmt"
	"testing"
	"time"

	brokerv1 "github.com/hipersync/hipersync/pkg/gen/hipersync/broker/v1"
	"github.com/hipersync/hipersync/pkg/hiper"
	"github.com/hipersync/hipersync/pkg/schedule/scheduletest"
	"github.com/hipersync/hipersync/pkg/syncstatus"
	"github.com/hipersync/hipersync/pkg/testkit"
	"github.com/hipersync/hipersync/services/token-broker/brokertest"
	"google.golang.org/protobuf/types/known/fieldmaskpb"
)

func uid(n int) string { return fmt.Sprintf("6b1e0000-0000-4000-8000-%012d", n) }

func item(n int, stock string) hiper.Product {
	return hiper.Product{
		ID: uid(n), Name: fmt.Sprintf("Produto %d", n), Category: "Diversos", Brand: "Marca",
		Unit: "UN", Price: hiper.MustDecimal("10"), Active: true, Stock: hiper.MustDecimal(stock),
	}
}

func (s *stack) settings(t *testing.T, tenantID string, set *brokerv1.TenantSettings, paths ...string) {
	t.Helper()
	if _, err := s.Broker.Tenants.UpdateTenantSettings(t.Context(), &brokerv1.UpdateTenantSettingsRequest{
		TenantId: tenantID, Settings: set, UpdateMask: &fieldmaskpb.FieldMask{Paths: paths},
	}); err != nil {
		t.Fatal(err)
	}
}

// quantity is the last quantity published for a product, "" if none.
func (s *stack) quantity(tenantID, id string) string {
	l := s.levels(tenantID)[id]
	if len(l) == 0 {
		return ""
	}
	return l[len(l)-1].GetQuantity()
}

// Seeds 003/004: per tenant, stock sync on or off, and the physical or the
// available balance; seed 000: a product the store does not get (no
// category, no brand) publishes no stock.
func TestStockSwitchBalanceAndSkippedProducts(t *testing.T) {
	t.Parallel()
	tenants := []string{"phys", "avail", "off"}
	s := newStack(t, brokertest.Options{Tenants: tenants})
	parent := item(1, "0")
	parent.HasVariations = true
	kid := item(2, "10")
	kid.ParentID, kid.HasVariations = parent.ID, true
	simple := item(3, "4")
	nameless := item(4, "6")
	nameless.Category, nameless.Brand = "", ""
	for _, id := range tenants {
		if err := s.Sim.Sim.UpsertProducts(s.Keys[id], []hiper.Product{parent, kid, simple, nameless}); err != nil {
			t.Fatal(err)
		}
		if err := s.Sim.Sim.SetReserved(s.Keys[id], kid.ID, hiper.MustDecimal("3")); err != nil {
			t.Fatal(err)
		}
	}
	s.settings(t, "avail", &brokerv1.TenantSettings{StockBalance: brokerv1.StockBalance_STOCK_BALANCE_AVAILABLE}, "stock_balance")
	s.settings(t, "off", &brokerv1.TenantSettings{StockSyncOff: true}, "stock_sync_off")
	start := time.Now()
	scheduletest.StartReplica(t, s.env, Start, scheduletest.Fast())
	s.waitSynced(t, "phys", start)
	s.waitSynced(t, "avail", start)
	testkit.WaitFor(t, 10*time.Second, "a run of the tenant with stock sync off", func() bool {
		return scheduletest.Status(t, s.JS, s.NS, "off", syncstatus.Stock).LastRunAt.After(start)
	})

	for _, tc := range []struct{ tenant, kid, simple string }{{"phys", "10", "4"}, {"avail", "7", "4"}, {"off", "", ""}} {
		if got := s.quantity(tc.tenant, kid.ID); got != tc.kid {
			t.Errorf("%s: variation quantity %q, want %q", tc.tenant, got, tc.kid)
		}
		if got := s.quantity(tc.tenant, simple.ID); got != tc.simple {
			t.Errorf("%s: simple quantity %q, want %q", tc.tenant, got, tc.simple)
		}
		if got := s.quantity(tc.tenant, nameless.ID); got != "" {
			t.Errorf("%s: a product without category and brand published stock %q", tc.tenant, got)
		}
	}

	// The reservation grows: only the available balance moves.
	for _, id := range tenants {
		if err := s.Sim.Sim.SetReserved(s.Keys[id], kid.ID, hiper.MustDecimal("5")); err != nil {
			t.Fatal(err)
		}
	}
	s.waitSynced(t, "avail", time.Now())
	s.waitSynced(t, "phys", time.Now())
	if got := s.quantity("avail", kid.ID); got != "5" {
		t.Errorf("available balance after a reservation: %q, want 5", got)
	}
	if n := len(s.levels("phys")[kid.ID]); n != 1 {
		t.Errorf("a reservation moved the physical balance: %d events", n)
	}

	// Turned on: it goes on from where it stopped.
	s.settings(t, "off", &brokerv1.TenantSettings{}, "stock_sync_off")
	testkit.WaitFor(t, 10*time.Second, "stock of the tenant turned on", func() bool {
		return s.quantity("off", simple.ID) == "4"
	})
}
