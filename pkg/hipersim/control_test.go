package hipersim_test

import (
	"context"
	"errors"
	"net/http"
	"testing"

	"github.com/hipersync/hipersync/pkg/hiper"
	"github.com/hipersync/hipersync/pkg/hipersim"
	"github.com/hipersync/hipersync/pkg/hipersim/simtest"
)

func TestControlUnknownAccount(t *testing.T) {
	t.Parallel()
	a := start(t, hipersim.Config{})
	base := "/_sim/accounts/" + otherKey
	for _, c := range []struct{ method, path, body string }{
		{"PUT", base + "/products", `[]`},
		{"GET", base + "/products", ``},
		{"POST", base + "/stock", `{"produtoId":"` + testID(1) + `","quantidade":1}`},
		{"POST", base + "/orders/" + testID(1) + "/events", `{"codigoDoTipoDeEvento":3}`},
		{"POST", base + "/orders/" + testID(1) + "/fail", `{}`},
		{"GET", base + "/orders", ``},
	} {
		t.Run(c.method+" "+c.path, func(t *testing.T) {
			t.Parallel()
			var ans hiper.Answer
			if st := a.control(c.method, c.path, c.body, &ans); st != http.StatusNotFound || !hasError(ans.Errors, "unknown account") {
				t.Fatalf("status %d, errors %v; want 404 naming the unknown account", st, ans.Errors)
			}
		})
	}
}

func TestControlCreateAccount(t *testing.T) {
	t.Parallel()
	a := start(t, hipersim.Config{})
	tests := []struct {
		name, key, body string
		want            int
		wantProducts    bool
	}{
		{"empty by default", otherKey, ``, http.StatusCreated, false},
		{"demo seed", "f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0", `{"seed":"demo"}`, http.StatusCreated, true},
		{"existing", hipersim.DemoKey, ``, http.StatusConflict, false},
		{"malformed key", "abc", ``, http.StatusBadRequest, false},
		{"unknown seed", "e0e0e0e0e0e0e0e0e0e0e0e0e0e0e0e0e0e0e0e0e0e0e0e0e0e0e0e0e0e0e0e0", `{"seed":"full"}`, http.StatusBadRequest, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if st := a.control("POST", "/_sim/accounts/"+tt.key, tt.body, nil); st != tt.want {
				t.Fatalf("status %d, want %d", st, tt.want)
			}
			if tt.want != http.StatusCreated {
				return
			}
			fresh := login(t, a.srv, tt.key)
			st, p := fresh.page(0)
			if got := st == http.StatusOK && len(p.Products) > 0; got != tt.wantProducts {
				t.Errorf("feed status %d with %d products; want products: %v", st, len(p.Products), tt.wantProducts)
			}
		})
	}
}

func TestControlProductsAndStock(t *testing.T) {
	t.Parallel()
	a := start(t, hipersim.Config{Seed: hipersim.SeedEmpty})
	base := "/_sim/accounts/" + a.key
	var up struct{ Upserted int }
	if st := a.control("PUT", base+"/products", []hiper.Product{simpleProduct(1, "2"), simpleProduct(2, "3")}, &up); st != http.StatusOK || up.Upserted != 2 {
		t.Fatalf("upsert: status %d, %+v", st, up)
	}
	for name, tt := range map[string]struct {
		method, path, body string
		want               int
	}{
		"products not an array":  {"PUT", base + "/products", `{"id":"x"}`, http.StatusBadRequest},
		"product without uuid":   {"PUT", base + "/products", `[{"id":"42","nome":"x"}]`, http.StatusBadRequest},
		"stock of 7.5":           {"POST", base + "/stock", `{"produtoId":"` + testID(2) + `","quantidade":"7.5"}`, http.StatusOK},
		"stock unknown product":  {"POST", base + "/stock", `{"produtoId":"` + testID(9) + `","quantidade":1}`, http.StatusNotFound},
		"stock without quantity": {"POST", base + "/stock", `{"produtoId":"` + testID(1) + `"}`, http.StatusBadRequest},
		"stock garbage":          {"POST", base + "/stock", `]`, http.StatusBadRequest},
		"no such control path":   {"GET", "/_sim/nothing", ``, http.StatusNotFound},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			if st := a.control(tt.method, tt.path, tt.body, nil); st != tt.want {
				t.Fatalf("status %d, want %d", st, tt.want)
			}
		})
	}
	t.Cleanup(func() {
		var products []hiper.Product
		a.control("GET", base+"/products", nil, &products)
		if len(products) != 2 || products[1].ID != testID(2) || products[1].Stock.String() != "7.5" {
			t.Errorf("catalog %+v, want 2 products, the second with stock 7.5 and last in sync order", products)
		}
	})
}

func TestStats(t *testing.T) {
	t.Parallel()
	a := emptySim(t, nil, simpleProduct(1, "5"))
	id := a.createOrder(validOrder(testID(1)))
	a.orderStatus(id)
	a.orderStatus(id)
	a.call("PUT", "/pedido-de-venda/cancelar/"+id, nil, nil)
	a.page(0)
	a.stock(testID(1))
	login(t, a.srv, a.key)

	var st hipersim.Stats
	if code := a.control("GET", "/_sim/stats", nil, &st); code != http.StatusOK {
		t.Fatalf("stats: status %d", code)
	}
	want := map[string]int{
		"GET /auth/gerar-token/{chaveDeSeguranca}": 2,
		"POST /pedido-de-venda/":                   1,
		"GET /pedido-de-venda/eventos/{id}":        2,
		"PUT /pedido-de-venda/cancelar/{id}":       1,
		"GET /produtos/pontoDeSincronizacao":       1,
		"GET /estoques/pontoDeSincronizacao":       1,
	}
	for k, n := range want {
		if st.Requests[k] != n {
			t.Errorf("requests[%q] = %d, want %d (all: %v)", k, st.Requests[k], n, st.Requests)
		}
	}
	if st.TokensIssued[a.key] != 2 {
		t.Errorf("tokens issued %v, want 2", st.TokensIssued)
	}
}

func TestControlClient(t *testing.T) {
	t.Parallel()
	clock := simtest.NewClock(epoch)
	srv := simtest.Start(t, hipersim.Config{Seed: hipersim.SeedEmpty, Now: clock.Now})
	cc := hipersim.NewControlClient(srv.Root+"/", nil)
	ctx := context.Background()

	if err := cc.AddAccount(ctx, otherKey, hipersim.SeedEmpty); err != nil {
		t.Fatal(err)
	}
	if err := cc.AddAccount(ctx, otherKey, ""); !errors.Is(err, hipersim.ErrAccountExists) {
		t.Errorf("adding an account twice: %v, want ErrAccountExists", err)
	}
	if err := cc.UpsertProducts(ctx, otherKey, []hiper.Product{simpleProduct(1, "3")}); err != nil {
		t.Fatal(err)
	}
	if err := cc.SetStock(ctx, otherKey, testID(1), hiper.MustDecimal("8")); err != nil {
		t.Fatal(err)
	}
	if err := cc.SetStock(ctx, otherKey, testID(2), hiper.MustDecimal("8")); !errors.Is(err, hipersim.ErrUnknownProduct) {
		t.Errorf("stock of an unknown product: %v, want ErrUnknownProduct", err)
	}
	products, err := cc.Products(ctx, otherKey)
	if err != nil || len(products) != 1 || products[0].Stock.String() != "8" {
		t.Fatalf("products %+v, %v", products, err)
	}

	a := login(t, srv, otherKey)
	id := a.createOrder(validOrder(testID(1)))
	if err := cc.AddOrderEvent(ctx, otherKey, id, hiper.OrderEvent{Type: hiper.EventInvoiceIssued, Note: "NF 1"}); err != nil {
		t.Fatal(err)
	}
	if err := cc.FailOrder(ctx, otherKey, testID(5), "x"); !errors.Is(err, hipersim.ErrUnknownOrder) {
		t.Errorf("failing an unknown order: %v, want ErrUnknownOrder", err)
	}
	orders, err := cc.Orders(ctx, otherKey)
	if err != nil || len(orders) != 1 || orders[0].ID != id || len(orders[0].Status.Events) != 2 ||
		orders[0].Body.Customer.Email != "ana@example.com" || !orders[0].Created.Equal(epoch) {
		t.Fatalf("orders %+v, %v", orders, err)
	}
	if _, err := cc.Orders(ctx, "f1f1f1f1f1f1f1f1f1f1f1f1f1f1f1f1f1f1f1f1f1f1f1f1f1f1f1f1f1f1f1f1"); !errors.Is(err, hipersim.ErrUnknownAccount) {
		t.Errorf("orders of an unknown account: %v, want ErrUnknownAccount", err)
	}

	if err := cc.SetFaults(ctx, hipersim.Faults{LatencyMs: 1, Endpoints: []string{hipersim.EndpointStock}}); err != nil {
		t.Fatal(err)
	}
	if err := cc.SetFaults(ctx, hipersim.Faults{ErrorRate: 3}); !errors.Is(err, hipersim.ErrInvalid) {
		t.Errorf("invalid faults: %v, want ErrInvalid", err)
	}
	if f, err := cc.Faults(ctx); err != nil || f.LatencyMs != 1 || len(f.Endpoints) != 1 {
		t.Errorf("faults %+v, %v", f, err)
	}
	if st, err := cc.Stats(ctx); err != nil || st.Requests[hipersim.EndpointCreateOrder] != 1 || st.TokensIssued[otherKey] != 1 {
		t.Errorf("stats %+v, %v", st, err)
	}
}
