package hipersim_test

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/hipersync/hipersync/pkg/hiper"
	"github.com/hipersync/hipersync/pkg/hipersim"
	"github.com/hipersync/hipersync/pkg/hipersim/simtest"
)

func TestCreateOrderValidation(t *testing.T) {
	t.Parallel()
	a := emptySim(t, nil, simpleProduct(1, "10"))
	tests := []struct {
		name      string
		mutate    func(o *hiper.SalesOrder)
		wantField string
	}{
		{"document missing", func(o *hiper.SalesOrder) { o.Customer.Document = "" }, "cliente.documento"},
		{"document of 12 digits", func(o *hiper.SalesOrder) { o.Customer.Document = "529982247251" }, "cliente.documento"},
		{"document with punctuation", func(o *hiper.SalesOrder) { o.Customer.Document = "529.982.247-25" }, "cliente.documento"},
		{"email missing", func(o *hiper.SalesOrder) { o.Customer.Email = " " }, "cliente.email"},
		{"email too long", func(o *hiper.SalesOrder) { o.Customer.Email = strings.Repeat("a", 69) + "@example.com" }, "cliente.email"},
		{"name missing", func(o *hiper.SalesOrder) { o.Customer.Name = "" }, "cliente.nomeDoCliente"},
		{"name of 81 characters", func(o *hiper.SalesOrder) { o.Customer.Name = strings.Repeat("á", 81) }, "cliente.nomeDoCliente"},
		{"CNPJ without trade name", func(o *hiper.SalesOrder) { o.Customer.Document = "11222333000181" }, "cliente.nomeFantasia"},
		{"state registration of letters", func(o *hiper.SalesOrder) { o.Customer.StateRegistration = "ISENTO" }, "cliente.inscricaoEstadual"},
		{"billing street missing", func(o *hiper.SalesOrder) { o.BillingAddress.Street = "" }, "enderecoDeCobranca.logradouro"},
		{"shipping number too long", func(o *hiper.SalesOrder) { o.ShippingAddress.Number = "12345678901" }, "enderecoDeEntrega.numero"},
		{"shipping district missing", func(o *hiper.SalesOrder) { o.ShippingAddress.District = "" }, "enderecoDeEntrega.bairro"},
		{"complement too long", func(o *hiper.SalesOrder) { o.ShippingAddress.Complement = strings.Repeat("x", 61) }, "enderecoDeEntrega.complemento"},
		{"CEP of 7 digits", func(o *hiper.SalesOrder) { o.ShippingAddress.PostalCode = "8835100" }, "enderecoDeEntrega.cep"},
		{"CEP with a dash", func(o *hiper.SalesOrder) { o.BillingAddress.PostalCode = "88351-001" }, "enderecoDeCobranca.cep"},
		{"IBGE code missing", func(o *hiper.SalesOrder) { o.BillingAddress.IBGECode = "" }, "enderecoDeCobranca.codigoIbge"},
		{"no items", func(o *hiper.SalesOrder) { o.Items = nil }, "itens"},
		{"item without product", func(o *hiper.SalesOrder) { o.Items[0].ProductID = "" }, "itens[0].produtoId"},
		{"item product not a uuid", func(o *hiper.SalesOrder) { o.Items[0].ProductID = "123" }, "itens[0].produtoId"},
		{"quantity zero", func(o *hiper.SalesOrder) { o.Items[0].Quantity = hiper.MustDecimal("0") }, "itens[0].quantidade"},
		{"quantity below 0.001", func(o *hiper.SalesOrder) { o.Items[0].Quantity = hiper.MustDecimal("0.0009") }, "itens[0].quantidade"},
		{"quantity too large", func(o *hiper.SalesOrder) { o.Items[0].Quantity = hiper.MustDecimal("10000000000000") }, "itens[0].quantidade"},
		{"installments zero", func(o *hiper.SalesOrder) { o.Payments[0].Installments = 0 }, "meiosDePagamento[0].parcelas"},
		{"payment below 0.01", func(o *hiper.SalesOrder) { o.Payments[0].Amount = hiper.MustDecimal("0.009") }, "meiosDePagamento[0].valor"},
		{"payment method missing", func(o *hiper.SalesOrder) { o.Payments[0].MethodID = 0 }, "meiosDePagamento[0].idMeioDePagamento"},
		{"negative freight", func(o *hiper.SalesOrder) { o.Freight = hiper.MustDecimal("-1") }, "valorDoFrete"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			o := validOrder(testID(1))
			tt.mutate(&o)
			var ans hiper.CreateOrderAnswer
			if st := a.call("POST", "/pedido-de-venda/", o, &ans); st != http.StatusBadRequest || ans.ID != "" {
				t.Fatalf("status %d, answer %+v; want 400 without id", st, ans)
			}
			if !hasError(ans.Errors, tt.wantField+":") {
				t.Errorf("errors %v do not name %s", ans.Errors, tt.wantField)
			}
		})
	}

	t.Run("every problem listed", func(t *testing.T) {
		t.Parallel()
		var ans hiper.CreateOrderAnswer
		if st := a.call("POST", "/pedido-de-venda/", `{}`, &ans); st != http.StatusBadRequest {
			t.Fatalf("status %d, want 400", st)
		}
		for _, field := range []string{"cliente.documento", "cliente.email", "cliente.nomeDoCliente",
			"enderecoDeCobranca.logradouro", "enderecoDeEntrega.cep", "itens"} {
			if !hasError(ans.Errors, field+":") {
				t.Errorf("errors %v do not name %s", ans.Errors, field)
			}
		}
	})
	for name, body := range map[string]string{
		"not JSON":       "pedido",
		"empty":          "",
		"array":          "[]",
		"wrong type":     `{"itens": "muitos"}`,
		"trailing data":  `{} {}`,
		"CEP as a float": `{"enderecoDeEntrega": {"cep": 8835.1001}}`,
	} {
		t.Run("garbage/"+name, func(t *testing.T) {
			t.Parallel()
			var ans hiper.CreateOrderAnswer
			if st := a.call("POST", "/pedido-de-venda/", body, &ans); st != http.StatusBadRequest || len(ans.Errors) == 0 {
				t.Fatalf("status %d, errors %v; want 400 with errors", st, ans.Errors)
			}
		})
	}
	if n := len(a.srv.Sim.Orders(a.key)); n != 0 {
		t.Errorf("%d orders created by invalid bodies", n)
	}
}

func TestCreateOrderUnsellableProduct(t *testing.T) {
	t.Parallel()
	inactive := simpleProduct(2, "5")
	inactive.Active = false
	removed := simpleProduct(3, "5")
	removed.Removed = true
	parent := simpleProduct(4, "0")
	child := simpleProduct(5, "1")
	child.ParentID = testID(4)
	a := emptySim(t, nil, simpleProduct(1, "5"), inactive, removed, parent, child)

	for name, id := range map[string]string{
		"unknown": testID(99), "inactive": testID(2), "removed": testID(3), "parent with variations": testID(4),
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			var raw map[string]any
			// Hiper's quirk: the failure comes with status 200.
			if st := a.call("POST", "/pedido-de-venda/", validOrder(testID(1), id), &raw); st != http.StatusOK {
				t.Fatalf("status %d, want 200", st)
			}
			if raw["id"] != nil {
				t.Errorf("answer has id %v", raw["id"])
			}
			if errs, _ := raw["errors"].([]any); len(errs) != 1 || !strings.Contains(errs[0].(string), "itens[1].produtoId") {
				t.Errorf("errors %v, want one naming itens[1].produtoId", raw["errors"])
			}
		})
	}
	t.Cleanup(func() {
		if n := len(a.srv.Sim.Orders(a.key)); n != 0 {
			t.Errorf("%d orders created for unsellable products", n)
		}
		if s := a.srv.Sim.Products(a.key)[0].Stock.String(); s != "5" {
			t.Errorf("stock of the sellable item is %s after rejected orders, want 5", s)
		}
	})
}

func TestCreateOrderAcceptsNumericCodes(t *testing.T) {
	t.Parallel()
	a := emptySim(t, nil, simpleProduct(1, "5"))
	body := `{"cliente":{"documento":52998224725,"email":"ana@example.com","nomeDoCliente":"Ana"},
	"enderecoDeCobranca":{"logradouro":"Rua A","numero":"1","bairro":"Centro","cep":88351001,"codigoIbge":4202909},
	"enderecoDeEntrega":{"logradouro":"Rua A","numero":"1","bairro":"Centro","cep":"88351001","codigoIbge":"4202909"},
	"itens":[{"produtoId":"` + testID(1) + `","quantidade":"1.5","precoUnitarioBruto":10.5,"precoUnitarioLiquido":10.5}],
	"meiosDePagamento":[{"idMeioDePagamento":12,"parcelas":1,"valor":15.75}],"valorDoFrete":0.00,
	"numeroPedidoDeVenda":"1001","campoQueOHiperIgnora":true}`
	var ans hiper.CreateOrderAnswer
	if st := a.call("POST", "/pedido-de-venda", body, &ans); st != http.StatusOK || ans.ID == "" {
		t.Fatalf("status %d, answer %+v", st, ans)
	}
	if ans.Message == nil || *ans.Message != "Pedido recebido e em processamento." || ans.Errors == nil {
		t.Errorf("answer %+v", ans)
	}
	if got := a.srv.Sim.Orders(a.key)[0].Body.BillingAddress.PostalCode; got != "88351001" {
		t.Errorf("stored CEP %q", got)
	}
}

func TestOrderLifecycle(t *testing.T) {
	t.Parallel()
	clock := simtest.NewClock(epoch)
	a := emptySim(t, clock, simpleProduct(1, "10"), simpleProduct(2, "0.5"))
	order := validOrder(testID(1), testID(2))
	order.Items[1].Quantity = hiper.MustDecimal("1.25")

	id := a.createOrder(order)
	st := a.orderStatus(id)
	if st.Situation != hiper.SituationProcessing || len(st.Events) != 0 || st.Cancelled || st.ID != id ||
		st.Code != "LV00000000001" || !st.Date.Equal(epoch) || st.Events == nil {
		t.Fatalf("new order: %+v; want situation 1, no events, code LV00000000001", st)
	}
	if q := a.stock(testID(1)).Quantity.String(); q != "9" {
		t.Errorf("stock after the order %s, want 9 (reserved)", q)
	}
	if q := a.stock(testID(2)).Quantity.String(); q != "-0.75" {
		t.Errorf("stock after the order %s, want -0.75 (reserved, may go negative)", q)
	}

	clock.Advance(time.Second - time.Millisecond)
	if s := a.orderStatus(id).Situation; s != hiper.SituationProcessing {
		t.Fatalf("situation %d just before the processing delay, want 1", s)
	}
	clock.Advance(time.Millisecond)
	st = a.orderStatus(id)
	if st.Situation != hiper.SituationProcessed || len(st.Events) != 1 || st.Events[0].Type != hiper.EventProcessed ||
		st.Events[0].Note != "Pedido processado" || !st.Events[0].Date.Equal(epoch.Add(time.Second)) {
		t.Fatalf("processed order: %+v", st)
	}

	// No idempotency: the same body again is a second order.
	second := a.createOrder(order)
	if second == id || a.orderStatus(second).Code != "LV00000000002" {
		t.Errorf("second order: id %s (first %s), code %s", second, id, a.orderStatus(second).Code)
	}

	for range 2 { // cancelling twice answers the same and adds one event 99
		var ans hiper.CancelAnswer
		if code := a.call("PUT", "/pedido-de-venda/cancelar/"+id, nil, &ans); code != http.StatusOK ||
			len(ans.Errors) != 0 || ans.Message == nil || *ans.Message != "Cancelamento recebido e em processamento." {
			t.Fatalf("cancel: status %d, answer %+v", code, ans)
		}
	}
	st = a.orderStatus(id)
	if !st.Cancelled || len(st.Events) != 2 || st.Events[1].Type != hiper.EventCancelled ||
		st.Events[1].Note != "Cancelamento efetuado pela integração com e-commerce." {
		t.Fatalf("cancelled order: %+v; want cancelado and one event 99", st)
	}
	if q := a.stock(testID(1)).Quantity.String(); q != "9" {
		t.Errorf("stock after cancelling one of two orders %s, want 9", q)
	}

	for _, path := range []string{"/pedido-de-venda/eventos/" + testID(77), "/pedido-de-venda/cancelar/" + testID(77)} {
		method := "GET"
		if strings.Contains(path, "cancelar") {
			method = "PUT"
		}
		var ans hiper.Answer
		if code := a.call(method, path, nil, &ans); code != http.StatusNotFound || len(ans.Errors) == 0 {
			t.Errorf("%s %s: status %d, errors %v; want 404", method, path, code, ans.Errors)
		}
	}
}

func TestOrderProcessedAtOnce(t *testing.T) {
	t.Parallel()
	a := start(t, hipersim.Config{Seed: hipersim.SeedEmpty, ProcessingDelay: -1})
	if err := a.srv.Sim.UpsertProducts(a.key, []hiper.Product{simpleProduct(1, "1")}); err != nil {
		t.Fatal(err)
	}
	if st := a.orderStatus(a.createOrder(validOrder(testID(1)))); st.Situation != hiper.SituationProcessed {
		t.Errorf("situation %d with a negative delay, want 2", st.Situation)
	}
}

func TestOrderEventsFromHiper(t *testing.T) {
	t.Parallel()
	clock := simtest.NewClock(epoch)
	a := emptySim(t, clock, simpleProduct(1, "10"))
	orders := func(path string) string { return "/_sim/accounts/" + a.key + "/orders/" + path }

	t.Run("invoice then shipping", func(t *testing.T) {
		id := a.createOrder(validOrder(testID(1)))
		clock.Advance(time.Minute) // an invoice comes after processing
		invoice := `{"codigoDoTipoDeEvento":3,"observacao":"NF-e 1234","chaveDocumentoFiscal":"42261112345678000199550010000012341000012345","tipoDocumentoFiscal":"NFe","urlArquivoXml":"https://example.com/nfe.xml"}`
		if code := a.control("POST", orders(id+"/events"), invoice, nil); code != http.StatusOK {
			t.Fatalf("invoice event: status %d", code)
		}
		if err := a.srv.Sim.AddOrderEvent(a.key, id, hiper.OrderEvent{Type: hiper.EventShipped, Note: "BR123456789"}); err != nil {
			t.Fatal(err)
		}
		st := a.orderStatus(id)
		if len(st.Events) != 3 || st.Situation != hiper.SituationProcessed {
			t.Fatalf("events %+v, want processed, invoice, shipped", st.Events)
		}
		inv, ship := st.Events[1], st.Events[2]
		if inv.Type != 3 || inv.Note != "NF-e 1234" || inv.FiscalType != "NFe" || len(inv.FiscalKey) != 44 ||
			inv.FiscalXMLURL == "" || !inv.Date.Equal(clock.Now()) {
			t.Errorf("invoice event %+v", inv)
		}
		if ship.Type != 4 || ship.Note != "BR123456789" || st.Cancelled {
			t.Errorf("shipping event %+v", ship)
		}
	})
	t.Run("cancelled by the merchant", func(t *testing.T) {
		id := a.createOrder(validOrder(testID(1)))
		before := a.stock(testID(1)).Quantity.String()
		// Still processing: the cancellation settles processing first.
		if code := a.control("POST", orders(id+"/events"), `{"codigoDoTipoDeEvento":99,"observacao":"Cliente desistiu"}`, nil); code != http.StatusOK {
			t.Fatalf("cancel event: status %d", code)
		}
		st := a.orderStatus(id)
		if !st.Cancelled || len(st.Events) != 2 || st.Events[0].Type != 1 || st.Events[1].Type != 99 || st.Events[1].Note != "Cliente desistiu" {
			t.Fatalf("order %+v, want processed then cancelled", st)
		}
		if after := a.stock(testID(1)).Quantity.String(); after == before {
			t.Errorf("stock %s unchanged by the cancellation", after)
		}
	})
	t.Run("processing fails", func(t *testing.T) {
		id := a.createOrder(validOrder(testID(1)))
		reserved := a.stock(testID(1)).Quantity
		if code := a.control("POST", orders(id+"/fail"), `{"observacao":"Cliente bloqueado no Hiper"}`, nil); code != http.StatusOK {
			t.Fatalf("fail: status %d", code)
		}
		st := a.orderStatus(id)
		if st.Situation != hiper.SituationFailed || len(st.Events) != 1 || st.Events[0].Note != "Cliente bloqueado no Hiper" {
			t.Fatalf("failed order %+v, want situation 3 with the error in an event", st)
		}
		clock.Advance(time.Hour)
		if s := a.orderStatus(id).Situation; s != hiper.SituationFailed {
			t.Errorf("situation %d after the processing delay, want 3 to stay", s)
		}
		if got := a.stock(testID(1)).Quantity; !got.Equal(reserved.Add(hiper.MustDecimal("1").Decimal)) {
			t.Errorf("stock %s after failing, want the reservation back", got)
		}
	})
	t.Run("unknown order or event", func(t *testing.T) {
		id := a.createOrder(validOrder(testID(1)))
		for name, tt := range map[string]struct {
			path, body string
			want       int
		}{
			"events of an unknown order": {orders(testID(9) + "/events"), `{"codigoDoTipoDeEvento":3}`, http.StatusNotFound},
			"fail of an unknown order":   {orders(testID(9) + "/fail"), `{}`, http.StatusNotFound},
			"unknown event type":         {orders(id + "/events"), `{"codigoDoTipoDeEvento":7}`, http.StatusBadRequest},
			"misspelt field":             {orders(id + "/events"), `{"codigoDoTipoEvento":3}`, http.StatusBadRequest},
		} {
			var ans hiper.Answer
			if code := a.control("POST", tt.path, tt.body, &ans); code != tt.want || len(ans.Errors) == 0 {
				t.Errorf("%s: status %d, errors %v; want %d", name, code, ans.Errors, tt.want)
			}
		}
	})
}

// The in-process CreateOrder takes an order as the API does: Hiper answers
// about it, and an invalid one is refused with the API's problems.
func TestCreateOrderInProcess(t *testing.T) {
	t.Parallel()
	a := start(t, hipersim.Config{Seed: hipersim.SeedEmpty, ProcessingDelay: -1})
	if err := a.srv.Sim.UpsertProducts(a.key, []hiper.Product{simpleProduct(1, "1")}); err != nil {
		t.Fatal(err)
	}
	id, err := a.srv.Sim.CreateOrder(a.key, validOrder(testID(1)))
	if err != nil {
		t.Fatal(err)
	}
	if st := a.orderStatus(id); st.Situation != hiper.SituationProcessed {
		t.Errorf("situation %d, want 2", st.Situation)
	}
	bad := validOrder(testID(1))
	bad.Customer.Email = ""
	if _, err := a.srv.Sim.CreateOrder(a.key, bad); err == nil {
		t.Error("an order without the customer's e-mail was taken")
	}
}
