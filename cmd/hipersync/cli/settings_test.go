package cli

import (
	"context"
	"testing"

	brokerv1 "github.com/hipersync/hipersync/pkg/gen/hipersync/broker/v1"
	"github.com/hipersync/hipersync/services/token-broker/brokertest"
)

// Settings as merchants type them: "--update-images false", one quote (or
// payment id, or status) added, changed or removed at a time, and the seed
// settings.
func TestSettingsAsMerchantsTypeThem(t *testing.T) {
	t.Parallel()
	st := brokertest.Start(t, brokertest.Options{})
	get := func() *brokerv1.TenantSettings {
		t.Helper()
		resp, err := st.Broker.Tenants.GetTenant(context.Background(), &brokerv1.GetTenantRequest{TenantId: "acme"})
		if err != nil {
			t.Fatal(err)
		}
		return resp.GetTenant().GetSettings()
	}
	set := func(args ...string) {
		t.Helper()
		if r := run(t, st, "", append([]string{"tenant", "settings", "acme"}, args...)...); r.code != 0 {
			t.Fatalf("%v: %+v", args, r)
		}
	}
	set("--update-images", "--update-title=true", "--quote", "USD=5.40", "--quote", "EUR=6.00", "--payment-map", "PIX=12")
	if s := get(); !s.GetUpdateImages() || !s.GetUpdateTitle() || len(s.GetCurrencyQuotes()) != 2 {
		t.Fatalf("first settings: %v", s)
	}
	set("--update-images", "false", "--update-title", "false", "--quote", "EUR=6.10")
	s := get()
	if s.GetUpdateImages() || s.GetUpdateTitle() {
		t.Fatalf("--update-images false left images %v, title %v", s.GetUpdateImages(), s.GetUpdateTitle())
	}
	if q := s.GetCurrencyQuotes(); q["USD"] != "5.40" || q["EUR"] != "6.10" {
		t.Fatalf("one quote changed: %v", q)
	}
	set("--quote", "EUR=", "--payment-map", "CASH=1")
	s = get()
	if q := s.GetCurrencyQuotes(); len(q) != 1 || q["USD"] != "5.40" {
		t.Fatalf("EUR= should remove one quote: %v", q)
	}
	if m := s.GetPaymentMap(); m["PIX"] != 12 || m["CASH"] != 1 {
		t.Fatalf("payment map: %v", m)
	}
	set("--payment-map", "PIX=")
	if m := get().GetPaymentMap(); len(m) != 1 || m["CASH"] != 1 {
		t.Fatalf("PIX= should remove one payment id: %v", m)
	}

	set("--update-brand", "true", "--guard-min-products", "50", "--stock-sync", "off", "--stock-balance", "available",
		"--status-map", "paid=approved,canceled=cancelled,refunded=cancelled")
	s = get()
	if !s.GetUpdateBrand() || s.GetGuardMinProducts() != 50 || !s.GetStockSyncOff() ||
		s.GetStockBalance() != brokerv1.StockBalance_STOCK_BALANCE_AVAILABLE || len(s.GetStatusMap()) != 3 || s.GetStatusMap()["paid"] != "approved" {
		t.Fatalf("seed settings: %v", s)
	}
	set("--stock-sync", "on", "--status-map", "refunded=")
	if s = get(); s.GetStockSyncOff() || len(s.GetStatusMap()) != 2 {
		t.Fatalf("stock sync on, refunded removed: %v", s)
	}
	if r := run(t, st, "", "tenant", "settings", "acme", "--status-map", "paid=shipped"); r.code == 0 {
		t.Fatalf("a status mapped to an unknown action was accepted: %+v", r)
	}
	if r := run(t, st, "", "tenant", "settings", "acme", "--stock-balance", "virtual"); r.code != 2 {
		t.Fatalf("a bad balance: %+v", r)
	}
}
