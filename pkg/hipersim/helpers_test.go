package hipersim_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/hipersync/hipersync/pkg/hiper"
	"github.com/hipersync/hipersync/pkg/hipersim"
	"github.com/hipersync/hipersync/pkg/hipersim/simtest"
)

// otherKey is a second valid security key.
const otherKey = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

// epoch is where test clocks start.
var epoch = time.Date(2026, 11, 23, 12, 0, 0, 0, hiper.Location)

// api calls one account of a running Sim over HTTP, as a Hiper client would.
type api struct {
	t     testing.TB
	srv   *simtest.Server
	key   string
	token string
}

// start runs a Sim and returns a caller holding a fresh token of key (the
// first configured key when key is "").
func start(t testing.TB, cfg hipersim.Config) *api {
	t.Helper()
	srv := simtest.Start(t, cfg)
	key := hipersim.DemoKey
	if len(cfg.Keys) > 0 {
		key = cfg.Keys[0]
	}
	return login(t, srv, key)
}

// login returns a caller of key's account on srv.
func login(t testing.TB, srv *simtest.Server, key string) *api {
	t.Helper()
	a := &api{t: t, srv: srv, key: key}
	var ans hiper.TokenAnswer
	if st := a.call("GET", "/auth/gerar-token/"+key, nil, &ans); st != http.StatusOK || ans.Token == "" {
		t.Fatalf("get token: status %d, answer %+v", st, ans)
	}
	a.token = ans.Token
	return a
}

// call sends an API request (path relative to /api/v1) and decodes the
// answer into out when out is not nil. body may be []byte (sent as is) or
// any value (sent as JSON).
func (a *api) call(method, path string, body, out any) int {
	a.t.Helper()
	st, _, raw := a.raw(method, a.srv.URL+path, body)
	decode(a.t, raw, out)
	return st
}

// control sends a control API request (path from the root, /_sim/...).
func (a *api) control(method, path string, body, out any) int {
	a.t.Helper()
	st, _, raw := a.raw(method, a.srv.Root+path, body)
	decode(a.t, raw, out)
	return st
}

func (a *api) raw(method, url string, body any) (int, http.Header, []byte) {
	a.t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case []byte:
		rd = bytes.NewReader(b)
	case string:
		rd = strings.NewReader(b)
	default:
		enc, err := json.Marshal(b)
		if err != nil {
			a.t.Fatalf("encode body: %v", err)
		}
		rd = bytes.NewReader(enc)
	}
	req, err := http.NewRequest(method, url, rd)
	if err != nil {
		a.t.Fatalf("new request: %v", err)
	}
	if a.token != "" {
		req.Header.Set("Authorization", "Bearer "+a.token)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		a.t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		a.t.Fatalf("read answer: %v", err)
	}
	return resp.StatusCode, resp.Header, raw
}

func decode(t testing.TB, raw []byte, out any) {
	t.Helper()
	if out == nil {
		return
	}
	if err := json.Unmarshal(raw, out); err != nil {
		t.Fatalf("decode %s: %v", raw, err)
	}
}

// page reads one feed page after cursor.
func (a *api) page(cursor int64) (int, hiper.ProductPage) {
	a.t.Helper()
	var p hiper.ProductPage
	st := a.call("GET", fmt.Sprintf("/produtos/pontoDeSincronizacao?pontoDeSincronizacao=%d", cursor), nil, &p)
	return st, p
}

// drain reads the feed after cursor until "nothing new", returning the
// products and the last cursor.
func (a *api) drain(cursor int64) ([]hiper.Product, int64) {
	a.t.Helper()
	var all []hiper.Product
	for range 10_000 {
		st, p := a.page(cursor)
		if st == http.StatusBadRequest {
			return all, cursor
		}
		if st != http.StatusOK || p.SyncPoint <= cursor {
			a.t.Fatalf("feed after %d: status %d, cursor %d", cursor, st, p.SyncPoint)
		}
		all = append(all, p.Products...)
		cursor = p.SyncPoint
	}
	a.t.Fatal("feed never ended")
	return nil, 0
}

// createOrder posts o and returns the new order's id.
func (a *api) createOrder(o hiper.SalesOrder) string {
	a.t.Helper()
	var ans hiper.CreateOrderAnswer
	if st := a.call("POST", "/pedido-de-venda/", o, &ans); st != http.StatusOK || ans.ID == "" || len(ans.Errors) > 0 {
		a.t.Fatalf("create order: status %d, answer %+v", st, ans)
	}
	return ans.ID
}

// orderStatus reads an order's state.
func (a *api) orderStatus(id string) hiper.OrderStatus {
	a.t.Helper()
	var st hiper.OrderStatus
	if code := a.call("GET", "/pedido-de-venda/eventos/"+id, nil, &st); code != http.StatusOK {
		a.t.Fatalf("order %s: status %d", id, code)
	}
	return st
}

// stock reads a product's stock level.
func (a *api) stock(id string) hiper.StockLevel {
	a.t.Helper()
	var lvl hiper.StockLevel
	if code := a.call("GET", "/estoques/pontoDeSincronizacao?pontoDeSincronizacao=0&ProdutoId="+id, nil, &lvl); code != http.StatusOK {
		a.t.Fatalf("stock of %s: status %d", id, code)
	}
	return lvl
}

// testID is a deterministic product id for tests.
func testID(n int) string { return fmt.Sprintf("00000000-0000-4000-8000-%012d", n) }

// simpleProduct is an active product without variations.
func simpleProduct(n int, stock string) hiper.Product {
	return hiper.Product{
		ID: testID(n), Code: int64(n), Name: fmt.Sprintf("Produto %d", n), Unit: "UN",
		Price: hiper.MustDecimal("10.50"), Active: true, Stock: hiper.MustDecimal(stock),
		ParentID: hiper.ZeroID, Brand: "Marca", Category: "Categoria",
	}
}

// validOrder is an order that passes every field rule, one unit of each
// product.
func validOrder(productIDs ...string) hiper.SalesOrder {
	addr := hiper.Address{Street: "Rua Principal", Number: "22", Complement: "Sala 2",
		District: "Centro", PostalCode: "88351001", IBGECode: "4202909"}
	o := hiper.SalesOrder{
		Customer:        hiper.Customer{Document: "52998224725", Email: "ana@example.com", Name: "Ana Souza"},
		BillingAddress:  addr,
		ShippingAddress: addr,
		Payments:        []hiper.Payment{{MethodID: hiper.PaymentPix, Installments: 1, Amount: hiper.MustDecimal("21.00")}},
		Freight:         hiper.MustDecimal("0"),
		StoreOrderID:    "1001",
	}
	for _, id := range productIDs {
		o.Items = append(o.Items, hiper.OrderItem{ProductID: id, Quantity: hiper.MustDecimal("1")})
	}
	return o
}

// emptySim starts a Sim without products but those given, with a clock.
func emptySim(t testing.TB, clock *simtest.Clock, products ...hiper.Product) *api {
	t.Helper()
	cfg := hipersim.Config{Seed: hipersim.SeedEmpty}
	if clock != nil {
		cfg.Now = clock.Now
	}
	a := start(t, cfg)
	if len(products) > 0 {
		if err := a.srv.Sim.UpsertProducts(a.key, products); err != nil {
			t.Fatal(err)
		}
	}
	return a
}

func hasError(errs []string, substr string) bool {
	for _, e := range errs {
		if strings.Contains(e, substr) {
			return true
		}
	}
	return false
}
