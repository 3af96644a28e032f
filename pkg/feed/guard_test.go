package feed

import (
	"testing"

	brokerv1 "github.com/hipersync/hipersync/pkg/gen/hipersync/broker/v1"
	"github.com/hipersync/hipersync/pkg/schedule"
	"github.com/hipersync/hipersync/pkg/tenant"
)

func TestGuardThresholds(t *testing.T) {
	t.Parallel()
	custom := &brokerv1.TenantSettings{GuardMaxDeactivatePercent: 5, GuardMaxPriceCuts: 2}
	for _, tc := range []struct {
		name     string
		settings *brokerv1.TenantSettings
		counts   Counts
		products int64
		held     bool
	}{
		{"20% deactivated is allowed", nil, Counts{Deactivated: 20}, 100, false},
		{"21% deactivated is held", nil, Counts{Deactivated: 21}, 100, true},
		{"running out of stock is never held", nil, Counts{Deactivated: 11, StockZeroed: 90}, 100, false},
		{"below the minimum catalogue", nil, Counts{Deactivated: 19}, 19, false},
		{"at the minimum catalogue", nil, Counts{Deactivated: 5}, 20, true},
		{"a tenant's own minimum", &brokerv1.TenantSettings{GuardMinProducts: 5}, Counts{Deactivated: 5}, 10, true},
		{"50 price cuts are allowed", nil, Counts{PriceCuts: 50}, 10_000, false},
		{"51 price cuts are held", nil, Counts{PriceCuts: 51}, 10_000, true},
		{"a reset is held", nil, Counts{Recreated: 30}, 30, true},
		{"a tenant's own percentage", custom, Counts{Deactivated: 6}, 100, true},
		{"a tenant's own price cuts", custom, Counts{PriceCuts: 3}, 100, true},
		{"price cuts below the minimum catalogue", nil, Counts{PriceCuts: 51}, 10, false},
		{"no products yet", nil, Counts{Deactivated: 5}, 0, false},
	} {
		p := &poll{run: &schedule.Run{Settings: tenant.SettingsOf(tc.settings)}, reset: tc.counts.Recreated > 0}
		if got := p.guard(tc.counts, tc.products); (len(got) > 0) != tc.held {
			t.Errorf("%s: guard says %q, want held %v", tc.name, got, tc.held)
		}
	}
}
