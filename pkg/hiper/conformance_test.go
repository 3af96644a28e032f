package hiper_test

// Conformance: the client against hiper-sim, endpoint by endpoint and quirk
// by quirk of docs/hiper-api.md.

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	oteltrace "go.opentelemetry.io/otel/trace"

	"github.com/hipersync/hipersync/pkg/hiper"
	"github.com/hipersync/hipersync/pkg/hipersim"
	"github.com/hipersync/hipersync/pkg/hipersim/simtest"
	"github.com/hipersync/hipersync/pkg/testkit"
)

// epoch is where the tests' clocks start.
var epoch = time.Date(2026, 3, 2, 9, 30, 0, 0, hiper.Location)

// fixture is a hiper-sim and a client of it sharing one clock.
type fixture struct {
	srv    *simtest.Server
	clock  *simtest.Clock
	client *hiper.Client
}

// start runs a hiper-sim with cfg (its clock set to a fresh one starting at
// epoch) and returns a client of it.
func start(t *testing.T, cfg hipersim.Config, opts ...hiper.Option) *fixture {
	t.Helper()
	clock := simtest.NewClock(epoch)
	cfg.Now = clock.Now
	srv := simtest.Start(t, cfg)
	c, err := hiper.New(srv.URL, append([]hiper.Option{hiper.WithClock(clock.Now)}, opts...)...)
	if err != nil {
		t.Fatalf("new client: %v", err)
	}
	return &fixture{srv: srv, clock: clock, client: c}
}

func (f *fixture) sim() *hipersim.Sim { return f.srv.Sim }

// token gets a token of the demo account.
func (f *fixture) token(t *testing.T) string {
	t.Helper()
	tok, err := f.client.Token(t.Context(), hipersim.DemoKey)
	if err != nil {
		t.Fatalf("get token: %v", err)
	}
	return tok.Value
}

// requests is how many requests an endpoint of the sim has served.
func (f *fixture) requests(endpoint string) int { return f.sim().Stats().Requests[endpoint] }

func (f *fixture) tokensIssued() int { return f.sim().Stats().TokensIssued[hipersim.DemoKey] }

// simpleProduct returns an active product of the demo catalog without
// variations: one an order can name and whose change moves nothing else.
func (f *fixture) simpleProduct(t *testing.T, skip int) hiper.Product {
	t.Helper()
	for _, p := range f.sim().Products(hipersim.DemoKey) {
		if !bool(p.HasVariations) && !p.IsVariation() && bool(p.Active) && !bool(p.Removed) {
			if skip == 0 {
				return p
			}
			skip--
		}
	}
	t.Fatal("the demo catalog has no simple active product")
	return hiper.Product{}
}

func TestConformanceToken(t *testing.T) {
	t.Parallel()
	f := start(t, hipersim.Config{TokenTTL: 6 * time.Hour})

	tok, err := f.client.Token(t.Context(), hipersim.DemoKey)
	if err != nil {
		t.Fatalf("get token: %v", err)
	}
	if tok.Value == "" || !tok.ExpiresAt.Equal(epoch.Add(6*time.Hour)) {
		t.Fatalf("token expires at %v, want %v (the JWT's exp)", tok.ExpiresAt, epoch.Add(6*time.Hour))
	}
	if n := f.tokensIssued(); n != 1 {
		t.Fatalf("tokens issued = %d, want 1", n)
	}

	t.Run("malformed key is refused without a call", func(t *testing.T) {
		_, err := f.client.Token(t.Context(), "not-a-key")
		check{is: []error{hiper.ErrInvalidKey}, isNot: []error{hiper.ErrTransient}}.verify(t, err)
		if n := f.requests(hipersim.EndpointToken); n != 1 {
			t.Fatalf("token requests = %d, want 1", n)
		}
	})
	t.Run("unknown key", func(t *testing.T) {
		unknown := strings.Repeat("ab", 32)
		_, err := f.client.Token(t.Context(), unknown)
		check{is: []error{hiper.ErrInvalidKey}, isNot: []error{hiper.ErrTransient, hiper.ErrRejected}, status: http.StatusBadRequest,
			text: []string{"get token", "GET /auth/gerar-token/{chaveDeSeguranca}", "Chave de segurança inválida."}}.verify(t, err)
		if strings.Contains(err.Error(), unknown) {
			t.Fatalf("error holds the key: %v", err)
		}
	})
}

func TestConformanceExpiredToken(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		expire func(*fixture)
		text   string
	}{
		{name: "past its exp", expire: func(f *fixture) { f.clock.Advance(time.Hour) }, text: "expirado"},
		{name: "expired by Hiper", expire: func(f *fixture) { f.sim().SetFaults(hipersim.Faults{ExpireTokensNow: true}) }, text: "inválido"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f := start(t, hipersim.Config{TokenTTL: time.Hour})
			token := f.token(t)
			if _, err := f.client.Products(t.Context(), token, 0); err != nil {
				t.Fatalf("get products with a fresh token: %v", err)
			}
			tt.expire(f)
			_, err := f.client.Products(t.Context(), token, 0)
			check{is: []error{hiper.ErrUnauthorized}, isNot: []error{hiper.ErrTransient, hiper.ErrInvalidKey},
				status: http.StatusUnauthorized, text: []string{tt.text}}.verify(t, err)
			if strings.Contains(err.Error(), token) {
				t.Fatalf("error holds the token: %v", err)
			}
		})
	}
	t.Run("no such token", func(t *testing.T) {
		t.Parallel()
		f := start(t, hipersim.Config{})
		_, err := f.client.SalesOrderStatus(t.Context(), "eyJhbGciOiJIUzI1NiJ9.e30.c2ln", "6b1f8a52-9d0e-4c1b-8f7a-0e5d2c3b4a19")
		check{is: []error{hiper.ErrUnauthorized}, status: http.StatusUnauthorized}.verify(t, err)
	})
}

// spySource is a TokenSource that records what the Session does with it.
type spySource struct {
	hiper.TokenSource
	mu          sync.Mutex
	handed      []string
	invalidated []string
}

func (s *spySource) Token(ctx context.Context) (string, error) {
	tok, err := s.TokenSource.Token(ctx)
	s.mu.Lock()
	s.handed = append(s.handed, tok)
	s.mu.Unlock()
	return tok, err
}

func (s *spySource) Invalidate(ctx context.Context, token string) error {
	s.mu.Lock()
	s.invalidated = append(s.invalidated, token)
	s.mu.Unlock()
	return s.TokenSource.Invalidate(ctx, token)
}

// fixedSource hands out one token forever.
type fixedSource string

func (s fixedSource) Token(context.Context) (string, error)    { return string(s), nil }
func (s fixedSource) Invalidate(context.Context, string) error { return nil }

func TestConformanceSessionRenewsTheTokenOnce(t *testing.T) {
	t.Parallel()
	f := start(t, hipersim.Config{Seed: hipersim.SeedEmpty})
	spy := &spySource{TokenSource: hiper.NewKeySource(f.client, hipersim.DemoKey)}
	session := f.client.Session(spy)

	if _, err := session.Products(t.Context(), 0); !errors.Is(err, hiper.ErrNothingNew) {
		t.Fatalf("get products = %v, want nothing new", err)
	}
	f.sim().SetFaults(hipersim.Faults{ExpireTokensNow: true})
	if _, err := session.Products(t.Context(), 0); !errors.Is(err, hiper.ErrNothingNew) {
		t.Fatalf("get products after the token expired = %v, want nothing new", err)
	}
	if n := f.tokensIssued(); n != 2 {
		t.Fatalf("tokens issued = %d, want 2", n)
	}
	if n := f.requests(hipersim.EndpointProducts); n != 3 {
		t.Fatalf("product requests = %d, want 3 (one, a 401, its retry)", n)
	}
	if len(spy.handed) != 3 || len(spy.invalidated) != 1 || spy.invalidated[0] != spy.handed[1] || spy.handed[2] == spy.handed[1] {
		t.Fatalf("handed %d tokens, invalidated %d; want the expired one invalidated and replaced", len(spy.handed), len(spy.invalidated))
	}

	t.Run("gives up after one retry", func(t *testing.T) {
		spy := &spySource{TokenSource: fixedSource("eyJhbGciOiJIUzI1NiJ9.e30.c2ln")}
		before := f.requests(hipersim.EndpointCancelOrder)
		err := f.client.Session(spy).CancelSalesOrder(t.Context(), "6b1f8a52-9d0e-4c1b-8f7a-0e5d2c3b4a19")
		check{is: []error{hiper.ErrUnauthorized}, status: http.StatusUnauthorized, text: []string{"cancel sales order"}}.verify(t, err)
		if n := f.requests(hipersim.EndpointCancelOrder) - before; n != 2 || len(spy.invalidated) != 1 {
			t.Fatalf("%d calls and %d invalidations, want 2 and 1", n, len(spy.invalidated))
		}
	})
}

func TestConformanceKeySource(t *testing.T) {
	t.Parallel()
	f := start(t, hipersim.Config{TokenTTL: time.Hour, Seed: hipersim.SeedEmpty})
	ks := hiper.NewKeySource(f.client, hipersim.DemoKey)

	// Concurrent callers share one token call.
	const callers = 16
	tokens := make([]string, callers)
	var wg sync.WaitGroup
	for i := range callers {
		wg.Go(func() {
			tok, err := ks.Token(t.Context())
			if err != nil {
				t.Errorf("get token: %v", err)
			}
			tokens[i] = tok
		})
	}
	testkit.Wait(t, &wg, time.Minute, "the concurrent callers")
	first := tokens[0]
	if n := f.tokensIssued(); n != 1 || slices.IndexFunc(tokens, func(s string) bool { return s != first }) >= 0 {
		t.Fatalf("tokens issued = %d for %d concurrent callers, want 1 shared", n, callers)
	}

	// Cached until shortly before it expires.
	f.clock.Advance(58 * time.Minute)
	if tok, _ := ks.Token(t.Context()); tok != first || f.tokensIssued() != 1 {
		t.Fatal("the token was renewed two minutes before expiry, want it kept")
	}
	f.clock.Advance(90 * time.Second)
	second, err := ks.Token(t.Context())
	if err != nil || second == first || f.tokensIssued() != 2 {
		t.Fatalf("30 s before expiry: same token %v, tokens issued %d, err %v; want a renewal", second == first, f.tokensIssued(), err)
	}

	// Invalidating a token already replaced keeps the new one.
	if err := ks.Invalidate(t.Context(), first); err != nil {
		t.Fatal(err)
	}
	if tok, _ := ks.Token(t.Context()); tok != second {
		t.Fatal("invalidating a stale token discarded the current one")
	}
	if err := ks.Invalidate(t.Context(), second); err != nil {
		t.Fatal(err)
	}
	if tok, _ := ks.Token(t.Context()); tok == second || f.tokensIssued() != 3 {
		t.Fatal("an invalidated token was handed out again")
	}

	t.Run("invalid key", func(t *testing.T) {
		_, err := hiper.NewKeySource(f.client, strings.Repeat("cd", 32)).Token(t.Context())
		check{is: []error{hiper.ErrInvalidKey}, status: http.StatusBadRequest}.verify(t, err)
	})
}

// feed reads a whole product feed.
func feed(t *testing.T, seq func(func(hiper.ProductBatch, error) bool)) []hiper.ProductBatch {
	t.Helper()
	var batches []hiper.ProductBatch
	for batch, err := range seq {
		if err != nil {
			t.Fatalf("product feed: %v", err)
		}
		batches = append(batches, batch)
	}
	return batches
}

func TestConformanceProductFeed(t *testing.T) {
	t.Parallel()
	const batch = 7
	f := start(t, hipersim.Config{Batch: batch})
	session := f.client.Session(hiper.NewKeySource(f.client, hipersim.DemoKey))
	catalog := f.sim().Products(hipersim.DemoKey)
	if len(catalog) <= 2*batch {
		t.Fatalf("the demo catalog has %d products, too few to span batches of %d", len(catalog), batch)
	}

	// A full read follows the batches until "nothing new".
	batches := feed(t, session.ProductFeed(t.Context(), 0))
	seen := map[string]bool{}
	cursor := int64(0)
	for i, b := range batches {
		if b.SyncPoint <= cursor {
			t.Fatalf("batch %d: cursor %d after %d", i, b.SyncPoint, cursor)
		}
		if len(b.Products) == 0 || len(b.Products) > batch {
			t.Fatalf("batch %d has %d products, want 1 to %d", i, len(b.Products), batch)
		}
		cursor = b.SyncPoint
		for _, p := range b.Products {
			seen[p.ID] = true
		}
	}
	if len(seen) != len(catalog) {
		t.Fatalf("the feed carried %d products, the catalog has %d", len(seen), len(catalog))
	}
	if n, want := f.requests(hipersim.EndpointProducts), len(batches)+1; n != want {
		t.Fatalf("product requests = %d, want %d (one per batch and the final nothing new)", n, want)
	}

	// Nothing new is a 400 the client turns into ErrNothingNew, never a
	// cursor of 0.
	_, err := session.Products(t.Context(), cursor)
	check{is: []error{hiper.ErrNothingNew}, isNot: []error{hiper.ErrRejected}, status: http.StatusBadRequest,
		text: []string{"Nenhum produto encontrado"}}.verify(t, err)
	if again := feed(t, session.ProductFeed(t.Context(), cursor)); len(again) != 0 {
		t.Fatalf("a feed with nothing new yielded %d batches", len(again))
	}

	// A product changed after the full read comes alone.
	changed := f.simpleProduct(t, 0)
	changed.Price = hiper.MustDecimal("123.45")
	if err := f.sim().UpsertProducts(hipersim.DemoKey, []hiper.Product{changed}); err != nil {
		t.Fatal(err)
	}
	next := feed(t, session.ProductFeed(t.Context(), cursor))
	if len(next) != 1 || len(next[0].Products) != 1 || next[0].Products[0].ID != changed.ID || next[0].SyncPoint <= cursor {
		t.Fatalf("after one change the feed yielded %+v, want that product alone past cursor %d", next, cursor)
	}
	if got := next[0].Products[0].Price; !got.Equal(changed.Price.Decimal) || got.String() != "123.45" {
		t.Fatalf("price = %s, want 123.45 exactly", got)
	}

	t.Run("the consumer can stop", func(t *testing.T) {
		before := f.requests(hipersim.EndpointProducts)
		for range session.ProductFeed(t.Context(), 0) {
			break
		}
		if n := f.requests(hipersim.EndpointProducts) - before; n != 1 {
			t.Fatalf("a feed stopped after one batch made %d calls", n)
		}
	})
	t.Run("empty catalog", func(t *testing.T) {
		f := start(t, hipersim.Config{Seed: hipersim.SeedEmpty})
		token := f.token(t)
		if got := feed(t, f.client.ProductFeed(t.Context(), token, 0)); len(got) != 0 {
			t.Fatalf("an empty catalog yielded %d batches", len(got))
		}
	})
}

func TestConformanceStock(t *testing.T) {
	t.Parallel()
	f := start(t, hipersim.Config{})
	token := f.token(t)
	p := f.simpleProduct(t, 0)
	quantity := hiper.MustDecimal("-2.375") // Hiper allows negative and fractional stock.
	if err := f.sim().SetStock(hipersim.DemoKey, p.ID, quantity); err != nil {
		t.Fatal(err)
	}
	level, err := f.client.Stock(t.Context(), token, 0, p.ID)
	if err != nil {
		t.Fatalf("get stock: %v", err)
	}
	if level.ProductID != p.ID || !level.Quantity.Equal(quantity.Decimal) || level.SyncPoint <= 0 {
		t.Fatalf("stock = %+v, want %s of %s", level, quantity, p.ID)
	}

	_, err = f.client.Stock(t.Context(), token, 0, "6b1f8a52-9d0e-4c1b-8f7a-0e5d2c3b4a19")
	check{is: []error{hiper.ErrNotFound}, status: http.StatusNotFound, text: []string{"get stock", "não encontrado"}}.verify(t, err)
}

// validOrder is a sales order Hiper accepts, naming product.
func validOrder(product string) hiper.SalesOrder {
	addr := hiper.Address{Street: "Rua XV de Novembro", Number: "1000", District: "Centro", PostalCode: "89010001", IBGECode: "4202404"}
	return hiper.SalesOrder{
		Customer:        hiper.Customer{Document: "12345678909", Email: "ana@example.com", Name: "Ana Souza"},
		BillingAddress:  addr,
		ShippingAddress: addr,
		Items:           []hiper.OrderItem{{ProductID: product, Quantity: hiper.MustDecimal("1.5")}},
		Payments:        []hiper.Payment{{MethodID: hiper.PaymentPix, Installments: 1, Amount: hiper.MustDecimal("74.85")}},
		Freight:         hiper.MustDecimal("0"),
		StoreOrderID:    "1001",
	}
}

func TestConformanceOrderLifecycle(t *testing.T) {
	t.Parallel()
	f := start(t, hipersim.Config{ProcessingDelay: time.Minute})
	session := f.client.Session(hiper.NewKeySource(f.client, hipersim.DemoKey))
	order := validOrder(f.simpleProduct(t, 0).ID)

	id, err := session.CreateSalesOrder(t.Context(), order)
	if err != nil {
		t.Fatalf("post sales order: %v", err)
	}
	orders := f.sim().Orders(hipersim.DemoKey)
	if len(orders) != 1 || orders[0].ID != id || orders[0].Body.Customer.Document != "12345678909" ||
		orders[0].Body.Items[0].Quantity.String() != "1.5" || orders[0].Body.Payments[0].Amount.String() != "74.85" {
		t.Fatalf("Hiper holds %+v, want the order posted as %s", orders, id)
	}

	st, err := session.SalesOrderStatus(t.Context(), id)
	if err != nil {
		t.Fatalf("get sales order status: %v", err)
	}
	if st.ID != id || st.Situation != hiper.SituationProcessing || st.Cancelled || !st.Date.Equal(epoch) || !strings.HasPrefix(st.Code, "LV") {
		t.Fatalf("status right after posting = %+v", st)
	}

	f.clock.Advance(2 * time.Minute)
	invoice := hiper.OrderEvent{Type: hiper.EventInvoiceIssued, Note: "NF-e 123", FiscalKey: strings.Repeat("3", 44),
		FiscalType: "NFe", FiscalXMLURL: "https://hiper.example/nfe.xml"}
	if err := f.sim().AddOrderEvent(hipersim.DemoKey, id, invoice); err != nil {
		t.Fatal(err)
	}
	st, err = session.SalesOrderStatus(t.Context(), id)
	if err != nil {
		t.Fatalf("get sales order status: %v", err)
	}
	if st.Situation != hiper.SituationProcessed || len(st.Events) != 2 || st.Events[0].Type != hiper.EventProcessed ||
		st.Events[1].Type != hiper.EventInvoiceIssued || st.Events[1].FiscalKey != invoice.FiscalKey || st.Events[1].Date.IsZero() {
		t.Fatalf("status after processing and invoicing = %+v", st)
	}

	if err := session.CancelSalesOrder(t.Context(), id); err != nil {
		t.Fatalf("cancel sales order: %v", err)
	}
	st, err = session.SalesOrderStatus(t.Context(), id)
	if err != nil {
		t.Fatalf("get sales order status: %v", err)
	}
	if !st.Cancelled || st.Events[len(st.Events)-1].Type != hiper.EventCancelled {
		t.Fatalf("status after cancelling = %+v", st)
	}

	t.Run("processed with error", func(t *testing.T) {
		id, err := session.CreateSalesOrder(t.Context(), validOrder(f.simpleProduct(t, 1).ID))
		if err != nil {
			t.Fatalf("post sales order: %v", err)
		}
		if err := f.sim().FailOrder(hipersim.DemoKey, id, "Cliente bloqueado"); err != nil {
			t.Fatal(err)
		}
		st, err := session.SalesOrderStatus(t.Context(), id)
		if err != nil {
			t.Fatalf("get sales order status: %v", err)
		}
		if st.Situation != hiper.SituationFailed || !slices.ContainsFunc(st.Events, func(e hiper.OrderEvent) bool { return e.Note == "Cliente bloqueado" }) {
			t.Fatalf("status of a failed order = %+v", st)
		}
	})
}

func TestConformanceOrderRefusals(t *testing.T) {
	t.Parallel()
	f := start(t, hipersim.Config{})
	token := f.token(t)
	unknownID := "6b1f8a52-9d0e-4c1b-8f7a-0e5d2c3b4a19"

	invalid := validOrder(f.simpleProduct(t, 0).ID)
	invalid.Customer.Document = ""
	invalid.Payments[0].Installments = 0
	_, err := f.client.CreateSalesOrder(t.Context(), token, invalid)
	check{is: []error{hiper.ErrRejected}, isNot: []error{hiper.ErrTransient, hiper.ErrOutcomeUnknown}, status: http.StatusBadRequest,
		text: []string{"post sales order", "POST /pedido-de-venda/", "cliente.documento", "parcelas"}}.verify(t, err)
	var rej *hiper.RejectedError
	if !errors.As(err, &rej) || rej.Status != http.StatusBadRequest || len(rej.Errors) != 2 {
		t.Fatalf("rejection = %+v, want Hiper's two texts", rej)
	}

	// An unknown product is refused with HTTP 200 and errors.
	_, err = f.client.CreateSalesOrder(t.Context(), token, validOrder(unknownID))
	check{is: []error{hiper.ErrRejected}, isNot: []error{hiper.ErrOutcomeUnknown}, status: http.StatusOK,
		text: []string{unknownID, "não encontrado"}}.verify(t, err)
	if n := len(f.sim().Orders(hipersim.DemoKey)); n != 0 {
		t.Fatalf("Hiper holds %d orders after two refusals", n)
	}

	_, err = f.client.SalesOrderStatus(t.Context(), token, unknownID)
	check{is: []error{hiper.ErrNotFound}, status: http.StatusNotFound, text: []string{"GET /pedido-de-venda/eventos/{id}"}}.verify(t, err)
	err = f.client.CancelSalesOrder(t.Context(), token, unknownID)
	check{is: []error{hiper.ErrNotFound}, status: http.StatusNotFound, text: []string{"PUT /pedido-de-venda/cancelar/{id}"}}.verify(t, err)
}

func TestConformanceFaults(t *testing.T) {
	t.Parallel()
	products := func(t *testing.T, f *fixture, token string) error {
		_, err := f.client.Products(t.Context(), token, 0)
		return err
	}
	create := func(t *testing.T, f *fixture, token string) error {
		_, err := f.client.CreateSalesOrder(t.Context(), token, validOrder(f.simpleProduct(t, 0).ID))
		return err
	}
	tests := []struct {
		name    string
		faults  hipersim.Faults
		opts    []hiper.Option
		call    func(*testing.T, *fixture, string) error
		want    check
		created int // orders Hiper holds afterwards
	}{
		{
			name:   "rate limited",
			faults: hipersim.Faults{RateLimitPerSecond: 1, Endpoints: []string{hipersim.EndpointProducts}},
			call: func(t *testing.T, f *fixture, token string) error {
				// The clock stands still: the bucket's one token is gone for good.
				if err := products(t, f, token); err != nil {
					return fmt.Errorf("first call: %w", err)
				}
				return products(t, f, token)
			},
			want: check{is: []error{hiper.ErrRateLimited}, isNot: []error{hiper.ErrTransient}, status: http.StatusTooManyRequests,
				retry: time.Second, retryOK: true, text: []string{"Muitas requisições"}},
		},
		{
			name:   "unavailable",
			faults: hipersim.Faults{ErrorRate: 1, Endpoints: []string{hipersim.EndpointProducts}},
			call:   products,
			want: check{is: []error{hiper.ErrTransient}, isNot: []error{hiper.ErrRejected}, status: http.StatusServiceUnavailable,
				text: []string{"get products", "503", "Serviço indisponível (simulado)"}},
		},
		{
			name:   "slower than the call's timeout",
			faults: hipersim.Faults{LatencyMs: 60_000, Endpoints: []string{hipersim.EndpointProducts}},
			opts:   []hiper.Option{hiper.WithTimeout(100 * time.Millisecond)},
			call:   products,
			want:   check{is: []error{hiper.ErrTransient, context.DeadlineExceeded}, text: []string{"no answer within 100ms"}},
		},
		{
			name:   "order post failing before Hiper acts",
			faults: hipersim.Faults{ErrorRate: 1, ErrorStatus: http.StatusInternalServerError, Endpoints: []string{hipersim.EndpointCreateOrder}},
			call:   create,
			// Hiper's own envelope with its errors and no id: it refused.
			want: check{is: []error{hiper.ErrTransient}, isNot: []error{hiper.ErrOutcomeUnknown}, status: http.StatusInternalServerError},
		},
		{
			name:    "order answer lost after Hiper created it",
			faults:  hipersim.Faults{FailAfterCommitRate: 1, Endpoints: []string{hipersim.EndpointCreateOrder}},
			call:    create,
			want:    check{is: []error{hiper.ErrTransient, hiper.ErrOutcomeUnknown}, status: http.StatusServiceUnavailable},
			created: 1,
		},
		{
			name:    "order stored, then a proxy's 504 page",
			faults:  hipersim.Faults{FailAfterCommitRate: 1, ErrorStatus: http.StatusGatewayTimeout, Answer: hipersim.AnswerProxy, Endpoints: []string{hipersim.EndpointCreateOrder}},
			call:    create,
			want:    check{is: []error{hiper.ErrTransient, hiper.ErrOutcomeUnknown}, status: http.StatusGatewayTimeout, text: []string{"504 Gateway Timeout"}},
			created: 1,
		},
		{
			name:    "order stored, then the connection reset",
			faults:  hipersim.Faults{FailAfterCommitRate: 1, Answer: hipersim.AnswerReset, Endpoints: []string{hipersim.EndpointCreateOrder}},
			call:    create,
			want:    check{is: []error{hiper.ErrTransient, hiper.ErrOutcomeUnknown}},
			created: 1,
		},
		{
			name:   "connection reset before Hiper acted, after the request was written",
			faults: hipersim.Faults{ErrorRate: 1, Answer: hipersim.AnswerReset, Endpoints: []string{hipersim.EndpointCreateOrder}},
			call:   create,
			want:   check{is: []error{hiper.ErrTransient, hiper.ErrOutcomeUnknown}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f := start(t, hipersim.Config{}, tt.opts...)
			token := f.token(t)
			f.sim().SetFaults(tt.faults)
			err := tt.call(t, f, token)
			tt.want.verify(t, err)
			if !hiper.IsTransient(err) {
				t.Errorf("IsTransient(%v) = false", err)
			}
			if n := len(f.sim().Orders(hipersim.DemoKey)); n != tt.created {
				t.Errorf("Hiper holds %d orders, want %d", n, tt.created)
			}
		})
	}
}

func TestConformanceCallerGivingUpIsNotTransient(t *testing.T) {
	t.Parallel()
	f := start(t, hipersim.Config{})
	token := f.token(t)
	f.sim().SetFaults(hipersim.Faults{LatencyMs: 60_000, Endpoints: []string{hipersim.EndpointStock}})
	ctx, cancel := context.WithTimeout(t.Context(), 100*time.Millisecond)
	defer cancel()
	_, err := f.client.Stock(ctx, token, 0, f.simpleProduct(t, 0).ID)
	check{is: []error{context.DeadlineExceeded}, isNot: []error{hiper.ErrTransient}, text: []string{"get stock"}}.verify(t, err)
}

func TestConformanceWithHTTPClient(t *testing.T) {
	t.Parallel()
	var calls atomic.Int64
	hc := &http.Client{Transport: roundTripFunc(func(r *http.Request) (*http.Response, error) {
		calls.Add(1)
		return http.DefaultTransport.RoundTrip(r)
	})}
	f := start(t, hipersim.Config{}, hiper.WithHTTPClient(hc), hiper.WithUserAgent("hipersync-test"))
	f.token(t)
	if calls.Load() != 1 {
		t.Fatalf("%d calls went through the given client, want 1", calls.Load())
	}
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// TestConformanceSecretsStayOutOfTelemetry checks that the key reaches Hiper
// (the sim accepts it) and nothing else: no span name or attribute, no log
// line, no error.
func TestConformanceSecretsStayOutOfTelemetry(t *testing.T) {
	t.Parallel()
	var logBuf testkit.SyncBuffer
	rec := tracetest.NewSpanRecorder()
	f := start(t, hipersim.Config{},
		hiper.WithTracerProvider(trace.NewTracerProvider(trace.WithSpanProcessor(rec))),
		hiper.WithLogger(slog.New(slog.NewJSONHandler(&logBuf, &slog.HandlerOptions{Level: slog.LevelDebug}))))
	token := f.token(t)
	f.sim().SetFaults(hipersim.Faults{ExpireTokensNow: true})
	_, err := f.client.Products(t.Context(), token, 0)
	check{is: []error{hiper.ErrUnauthorized}, status: http.StatusUnauthorized}.verify(t, err)
	_, err = f.client.Token(t.Context(), strings.Repeat("ef", 32))
	check{is: []error{hiper.ErrInvalidKey}, status: http.StatusBadRequest}.verify(t, err)

	secrets := []string{hipersim.DemoKey, strings.Repeat("ef", 32), token}
	names := map[string]bool{}
	for _, span := range rec.Ended() {
		names[span.Name()] = true
		attrs := map[string]string{}
		for _, kv := range span.Attributes() {
			attrs[string(kv.Key)] = kv.Value.String()
		}
		if span.SpanKind() != oteltrace.SpanKindClient || attrs["http.request.method"] != "GET" ||
			!strings.HasPrefix(attrs["url.full"], f.srv.URL) || attrs["http.response.status_code"] == "" {
			t.Errorf("span %q: kind %s, attributes %v; want a client span with the method, the URL and the status", span.Name(), span.SpanKind(), attrs)
		}
		text := span.Name() + fmt.Sprint(span.Attributes()) + span.Status().Description
		for _, ev := range span.Events() {
			text += fmt.Sprint(ev.Attributes)
		}
		for _, s := range secrets {
			if strings.Contains(text, s) {
				t.Errorf("span %q holds a secret: %s", span.Name(), text)
			}
		}
	}
	for _, want := range []string{"hiper GET /auth/gerar-token/{chaveDeSeguranca}", "hiper GET /produtos/pontoDeSincronizacao"} {
		if !names[want] {
			t.Errorf("no span %q among %v", want, names)
		}
	}
	logs := logBuf.String()
	if !strings.Contains(logs, "GET /produtos/pontoDeSincronizacao") {
		t.Errorf("no call logged: %s", logs)
	}
	for _, s := range secrets {
		if strings.Contains(logs, s) {
			t.Errorf("log holds a secret: %s", logs)
		}
	}
}
