package forwarder

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/hipersync/hipersync/pkg/catalog"
	"github.com/hipersync/hipersync/pkg/events"
	brokerv1 "github.com/hipersync/hipersync/pkg/gen/hipersync/broker/v1"
	eventsv1 "github.com/hipersync/hipersync/pkg/gen/hipersync/events/v1"
	"github.com/hipersync/hipersync/pkg/hiper"
	"github.com/hipersync/hipersync/pkg/tenant"
	"github.com/hipersync/hipersync/pkg/testkit"
)

const (
	knownEAN       = "7891234567895"
	knownEANTarget = "0b7b5f39-2a1e-4f9b-9a55-7e3c2d1a0f42"
)

// testIndex is a barcode index of its own on the real NATS, holding
// knownEAN for tenant "acme", as the catalog-poller would fill it.
func testIndex(t testing.TB) Catalog {
	t.Helper()
	_, js := testkit.Connect(t)
	ns := events.Namespace{Prefix: testkit.Prefix(t)}
	ctx := context.Background()
	kv, err := catalog.EnsureIndex(ctx, js, ns)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = js.DeleteKeyValue(context.Background(), ns.Bucket(catalog.IndexBucket)) })
	if err := catalog.Put(ctx, kv, "acme", knownEAN, knownEANTarget); err != nil {
		t.Fatal(err)
	}
	return KVCatalog{KV: kv}
}

type problem struct{ code, field string }

func TestValidateRules(t *testing.T) {
	t.Parallel()
	cat := testIndex(t)
	settings := tenant.SettingsOf(&brokerv1.TenantSettings{CurrencyQuotes: map[string]string{"USD": "5.40"}})
	long := func(n int) string { return strings.Repeat("a", n) }

	tests := []struct {
		name   string
		change func(o *eventsv1.StoreOrderApproved)
		want   []problem
	}{
		{"valid", func(o *eventsv1.StoreOrderApproved) {}, nil},
		{"missing document", func(o *eventsv1.StoreOrderApproved) { o.Customer.Document = " " }, []problem{{"required", "customer.document"}}},
		{"CPF check digit", func(o *eventsv1.StoreOrderApproved) { o.Customer.Document = "529.982.247-24" }, []problem{{"invalid_document", "customer.document"}}},
		{"CPF of one repeated digit", func(o *eventsv1.StoreOrderApproved) { o.Customer.Document = "111.111.111-11" }, []problem{{"invalid_document", "customer.document"}}},
		{"12 digits", func(o *eventsv1.StoreOrderApproved) { o.Customer.Document = "529982247251" }, []problem{{"invalid_document", "customer.document"}}},
		{"letters in document", func(o *eventsv1.StoreOrderApproved) { o.Customer.Document = "5299822472X" }, []problem{{"invalid_document", "customer.document"}}},
		{"CNPJ with trade name", func(o *eventsv1.StoreOrderApproved) {
			o.Customer.Document, o.Customer.TradeName = "11.222.333/0001-81", "Loja da Ana"
		}, nil},
		{"CNPJ without trade name", func(o *eventsv1.StoreOrderApproved) { o.Customer.Document = "11.222.333/0001-81" },
			[]problem{{"missing_trade_name", "customer.tradeName"}}},
		{"alphanumeric CNPJ (Receita's example)", func(o *eventsv1.StoreOrderApproved) {
			o.Customer.Document, o.Customer.TradeName = "12.ABC.345/01DE-35", "Loja"
		}, nil},
		{"alphanumeric CNPJ in lowercase", func(o *eventsv1.StoreOrderApproved) {
			o.Customer.Document, o.Customer.TradeName = "12abc34501de35", "Loja"
		}, nil},
		{"alphanumeric CNPJ check digit", func(o *eventsv1.StoreOrderApproved) {
			o.Customer.Document, o.Customer.TradeName = "12ABC34501DE36", "Loja"
		}, []problem{{"invalid_document", "customer.document"}}},
		{"alphanumeric CNPJ with a letter among its check digits", func(o *eventsv1.StoreOrderApproved) {
			o.Customer.Document, o.Customer.TradeName = "12ABC34501DE3A", "Loja"
		}, []problem{{"invalid_document", "customer.document"}}},
		{"alphanumeric CNPJ without trade name", func(o *eventsv1.StoreOrderApproved) { o.Customer.Document = "12ABC34501DE35" },
			[]problem{{"missing_trade_name", "customer.tradeName"}}},
		{"CNPJ check digit", func(o *eventsv1.StoreOrderApproved) {
			o.Customer.Document, o.Customer.TradeName = "11222333000180", "Loja"
		}, []problem{{"invalid_document", "customer.document"}}},
		{"e-mail without domain dot", func(o *eventsv1.StoreOrderApproved) { o.Customer.Email = "ana@example" }, []problem{{"invalid_email", "customer.email"}}},
		{"e-mail with a space", func(o *eventsv1.StoreOrderApproved) { o.Customer.Email = "ana souza@example.com" }, []problem{{"invalid_email", "customer.email"}}},
		{"e-mail with two @", func(o *eventsv1.StoreOrderApproved) { o.Customer.Email = "ana@x@example.com" }, []problem{{"invalid_email", "customer.email"}}},
		{"e-mail missing", func(o *eventsv1.StoreOrderApproved) { o.Customer.Email = "" }, []problem{{"required", "customer.email"}}},
		{"e-mail of 81 characters", func(o *eventsv1.StoreOrderApproved) { o.Customer.Email = long(69) + "@example.com" }, []problem{{"too_long", "customer.email"}}},
		{"name missing", func(o *eventsv1.StoreOrderApproved) { o.Customer.Name = "" }, []problem{{"required", "customer.name"}}},
		{"name of 81 characters", func(o *eventsv1.StoreOrderApproved) { o.Customer.Name = strings.Repeat("é", 81) }, []problem{{"too_long", "customer.name"}}},
		{"name of 80 characters", func(o *eventsv1.StoreOrderApproved) { o.Customer.Name = strings.Repeat("é", 80) }, nil},
		{"trade name of 61 characters", func(o *eventsv1.StoreOrderApproved) { o.Customer.TradeName = long(61) }, []problem{{"too_long", "customer.tradeName"}}},
		{"state registration with letters", func(o *eventsv1.StoreOrderApproved) { o.Customer.StateRegistration = "12A45" }, []problem{{"invalid_state_registration", "customer.stateRegistration"}}},
		{"state registration of 15 digits", func(o *eventsv1.StoreOrderApproved) { o.Customer.StateRegistration = strings.Repeat("1", 15) }, []problem{{"invalid_state_registration", "customer.stateRegistration"}}},
		{"state registration ISENTO", func(o *eventsv1.StoreOrderApproved) { o.Customer.StateRegistration = "ISENTO" }, nil},
		{"CEP of 7 digits", func(o *eventsv1.StoreOrderApproved) { o.BillingAddress.PostalCode = "8835100" }, []problem{{"invalid_postal_code", "billingAddress.postalCode"}}},
		{"CEP with letters", func(o *eventsv1.StoreOrderApproved) { o.ShippingAddress.PostalCode = "8835A-001" }, []problem{{"invalid_postal_code", "shippingAddress.postalCode"}}},
		{"CEP of zeros", func(o *eventsv1.StoreOrderApproved) { o.ShippingAddress.PostalCode = "00000-000" }, []problem{{"invalid_postal_code", "shippingAddress.postalCode"}}},
		{"CEP missing", func(o *eventsv1.StoreOrderApproved) { o.ShippingAddress.PostalCode = "" }, []problem{{"required", "shippingAddress.postalCode"}}},
		{"IBGE of 6 digits", func(o *eventsv1.StoreOrderApproved) { o.BillingAddress.IbgeCityCode = "420290" }, []problem{{"invalid_ibge_code", "billingAddress.ibgeCityCode"}}},
		{"IBGE of no state", func(o *eventsv1.StoreOrderApproved) { o.ShippingAddress.IbgeCityCode = "9902909" }, []problem{{"invalid_ibge_code", "shippingAddress.ibgeCityCode"}}},
		{"IBGE missing", func(o *eventsv1.StoreOrderApproved) { o.ShippingAddress.IbgeCityCode = "" }, []problem{{"required", "shippingAddress.ibgeCityCode"}}},
		{"no shipping address", func(o *eventsv1.StoreOrderApproved) { o.ShippingAddress = nil }, []problem{
			{"required", "shippingAddress.street"}, {"required", "shippingAddress.number"}, {"required", "shippingAddress.district"},
			{"required", "shippingAddress.postalCode"}, {"required", "shippingAddress.ibgeCityCode"}}},
		{"street of 61", func(o *eventsv1.StoreOrderApproved) { o.BillingAddress.Street = long(61) }, []problem{{"too_long", "billingAddress.street"}}},
		{"number of 11", func(o *eventsv1.StoreOrderApproved) { o.BillingAddress.Number = "12345678901" }, []problem{{"too_long", "billingAddress.number"}}},
		{"complement of 61", func(o *eventsv1.StoreOrderApproved) { o.ShippingAddress.Complement = long(61) }, []problem{{"too_long", "shippingAddress.complement"}}},
		{"district of 61", func(o *eventsv1.StoreOrderApproved) { o.ShippingAddress.District = long(61) }, []problem{{"too_long", "shippingAddress.district"}}},
		{"district missing", func(o *eventsv1.StoreOrderApproved) { o.BillingAddress.District = "  " }, []problem{{"required", "billingAddress.district"}}},
		{"no items", func(o *eventsv1.StoreOrderApproved) { o.Items = nil }, []problem{{"no_items", "items"}}},
		{"product id not a uuid", func(o *eventsv1.StoreOrderApproved) { o.Items[0].ProductId = "123" }, []problem{{"invalid_product_id", "items[0].productId"}}},
		{"neither product id nor ean", func(o *eventsv1.StoreOrderApproved) { o.Items[0].ProductId = "" }, []problem{{"required", "items[0].productId"}}},
		{"ean of the catalog", func(o *eventsv1.StoreOrderApproved) { o.Items[0].ProductId, o.Items[0].Ean = "", knownEAN }, nil},
		{"ean not in the catalog", func(o *eventsv1.StoreOrderApproved) {
			o.Items = append(o.Items, &eventsv1.OrderItem{Ean: "7890000000000", Quantity: "1", UnitPrice: "0"})
		}, []problem{{"unknown_product", "items[1].ean"}}},
		{"malformed ean", func(o *eventsv1.StoreOrderApproved) { o.Items[0].ProductId, o.Items[0].Ean = "", "78912A" }, []problem{{"invalid_ean", "items[0].ean"}}},
		{"quantity zero", func(o *eventsv1.StoreOrderApproved) { o.Items[0].Quantity = "0" }, []problem{{"invalid_quantity", "items[0].quantity"}}},
		{"quantity below 0.001", func(o *eventsv1.StoreOrderApproved) { o.Items[0].Quantity = "0.0005" }, []problem{{"invalid_quantity", "items[0].quantity"}}},
		{"quantity with 4 places", func(o *eventsv1.StoreOrderApproved) { o.Items[0].Quantity = "1.0001" }, []problem{{"invalid_quantity", "items[0].quantity"}}},
		{"quantity above the maximum", func(o *eventsv1.StoreOrderApproved) { o.Items[0].Quantity = "10000000000000" }, []problem{{"invalid_quantity", "items[0].quantity"}}},
		{"quantity not a number", func(o *eventsv1.StoreOrderApproved) { o.Items[0].Quantity = "one" }, []problem{{"invalid_quantity", "items[0].quantity"}}},
		{"quantity as a float", func(o *eventsv1.StoreOrderApproved) { o.Items[0].Quantity = "1e400" }, []problem{{"invalid_quantity", "items[0].quantity"}}},
		{"fractional quantity", func(o *eventsv1.StoreOrderApproved) {
			o.Items[0].Quantity, o.Items[0].UnitPrice, o.Payments[0].Amount = "0.375", "49.90", "28.71"
		}, nil},
		{"negative unit price", func(o *eventsv1.StoreOrderApproved) { o.Items[0].UnitPrice = "-1" }, []problem{{"invalid_amount", "items[0].unitPrice"}}},
		{"unit price missing", func(o *eventsv1.StoreOrderApproved) { o.Items[0].UnitPrice = "" }, []problem{{"required", "items[0].unitPrice"}}},
		{"unit price with 5 places", func(o *eventsv1.StoreOrderApproved) { o.Items[0].UnitPrice = "99.99001" }, []problem{{"invalid_amount", "items[0].unitPrice"}}},
		{"no payments", func(o *eventsv1.StoreOrderApproved) { o.Payments = nil }, []problem{{"no_payments", "payments"}}},
		{"unknown method", func(o *eventsv1.StoreOrderApproved) { o.Payments[0].Method = "BITCOIN" }, []problem{{"unknown_payment_method", "payments[0].method"}}},
		{"method missing", func(o *eventsv1.StoreOrderApproved) { o.Payments[0].Method = "" }, []problem{{"required", "payments[0].method"}}},
		{"method in lower case", func(o *eventsv1.StoreOrderApproved) { o.Payments[0].Method = "credit_card" }, nil},
		{"zero installments", func(o *eventsv1.StoreOrderApproved) { o.Payments[0].Installments = 0 }, []problem{{"invalid_installments", "payments[0].installments"}}},
		{"cash in installments", func(o *eventsv1.StoreOrderApproved) { o.Payments[0].Method, o.Payments[0].Installments = "CASH", 3 }, []problem{{"invalid_installments", "payments[0].installments"}}},
		{"payment of zero", func(o *eventsv1.StoreOrderApproved) {
			o.Payments = append(o.Payments, &eventsv1.Payment{Method: "CASH", Installments: 1, Amount: "0.00"})
		}, []problem{{"invalid_amount", "payments[1].amount"}}},
		{"payment in tenths of a cent", func(o *eventsv1.StoreOrderApproved) { o.Payments[0].Amount = "109.991" }, []problem{{"invalid_amount", "payments[0].amount"}}},
		{"payments short of the total", func(o *eventsv1.StoreOrderApproved) { o.Payments[0].Amount = "100.00" }, []problem{{"payment_mismatch", "payments"}}},
		{"payments a cent short", func(o *eventsv1.StoreOrderApproved) { o.Payments[0].Amount = "109.98" }, nil},
		{"payments two cents short", func(o *eventsv1.StoreOrderApproved) { o.Payments[0].Amount = "109.97" }, []problem{{"payment_mismatch", "payments"}}},
		{"split payments", func(o *eventsv1.StoreOrderApproved) {
			o.Payments = []*eventsv1.Payment{{Method: "CREDIT_CARD", Installments: 3, Amount: "100.00"}, {Method: "VOUCHER", Installments: 1, Amount: "9.99"}}
		}, nil},
		{"negative shipping", func(o *eventsv1.StoreOrderApproved) { o.ShippingAmount = "-10.00" }, []problem{{"invalid_amount", "shippingAmount"}}},
		{"no shipping amount is zero", func(o *eventsv1.StoreOrderApproved) { o.ShippingAmount, o.Payments[0].Amount = "", "99.99" }, nil},
		{"currency without a quote", func(o *eventsv1.StoreOrderApproved) { o.Currency = "EUR" }, []problem{{"unsupported_currency", "currency"}}},
		{"currency with a quote", func(o *eventsv1.StoreOrderApproved) { o.Currency = "usd" }, nil},
		{"empty currency is BRL", func(o *eventsv1.StoreOrderApproved) { o.Currency = "" }, nil},
		{"everything wrong at once", func(o *eventsv1.StoreOrderApproved) {
			o.Customer = &eventsv1.Customer{Document: "123", Email: "x", Name: ""}
			o.BillingAddress.PostalCode = "1"
			o.Items = []*eventsv1.OrderItem{{Ean: "7890000000000", Quantity: "0", UnitPrice: "1"}}
			o.Payments[0].Method = "GOLD"
			o.Currency = "XYZ"
		}, []problem{
			{"unsupported_currency", "currency"}, {"required", "customer.name"}, {"invalid_email", "customer.email"},
			{"invalid_document", "customer.document"}, {"invalid_postal_code", "billingAddress.postalCode"},
			{"unknown_product", "items[0].ean"}, {"invalid_quantity", "items[0].quantity"}, {"unknown_payment_method", "payments[0].method"},
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			o := validOrder("1001")
			tc.change(o)
			v, reasons, err := Validate(context.Background(), "acme", settings, cat, o)
			if err != nil {
				t.Fatal(err)
			}
			var got []problem
			for _, r := range reasons {
				got = append(got, problem{r.Code, r.Field})
				if !strings.HasSuffix(r.Message, ".") || len(r.Message) < 20 {
					t.Errorf("message of %s is not a sentence for a merchant: %q", r.Code, r.Message)
				}
				if strings.Contains(r.Message, "52998224725") || strings.Contains(r.Message, "@example.com") {
					t.Errorf("message repeats customer data: %q", r.Message)
				}
			}
			if !slices.Equal(got, tc.want) {
				t.Fatalf("problems = %v\nwant       %v\nreasons: %v", got, tc.want, reasons)
			}
			if len(tc.want) == 0 && len(v.Order.Items) == 0 {
				t.Fatal("a valid order built no items")
			}
		})
	}
}

// TestValidateBuildsTheSalesOrder checks what a valid order becomes: digits
// only, mapped payment ids, the barcode resolved, money converted exactly.
func TestValidateBuildsTheSalesOrder(t *testing.T) {
	t.Parallel()
	cat := testIndex(t)
	s := tenant.SettingsOf(&brokerv1.TenantSettings{
		CurrencyQuotes:  map[string]string{"USD": "5.40"},
		PaymentMap:      map[string]int32{"PIX": 17},
		MarketplaceCnpj: "11222333000181", MarketplaceName: "Shopping Online",
	})
	o := validOrder("PED-7")
	o.Customer.StateRegistration = "123.456.789"
	o.Items = append(o.Items, &eventsv1.OrderItem{Ean: knownEAN, Quantity: "2.5", UnitPrice: "10.0004"})
	o.Payments = []*eventsv1.Payment{{Method: "pix", Installments: 1, Amount: "60.00"}, {Method: "CREDIT_CARD", Installments: 2, Amount: "75.00"}}
	o.ShippingAmount = "10.00"
	o.Currency = "USD"
	v, reasons, err := Validate(context.Background(), "acme", s, cat, o)
	if err != nil || len(reasons) > 0 {
		t.Fatalf("Validate: %v %v", reasons, err)
	}
	so := v.Order
	check := func(what, got, want string) {
		t.Helper()
		if got != want {
			t.Errorf("%s = %q, want %q", what, got, want)
		}
	}
	check("document", string(so.Customer.Document), "52998224725")
	check("state registration", string(so.Customer.StateRegistration), "123456789")
	check("cep", string(so.BillingAddress.PostalCode), "88351001")
	check("numeroPedidoDeVenda", so.StoreOrderID, "PED-7")
	check("item 1 product", so.Items[1].ProductID, knownEANTarget)
	check("item 0 price", so.Items[0].NetUnitPrice.String(), "539.946") // 99.99 × 5.40
	check("item 1 price", so.Items[1].NetUnitPrice.String(), "54.0022") // 10.0004 × 5.40, 4 places
	check("item 1 quantity", so.Items[1].Quantity.String(), "2.5")      // never converted
	check("payment 0 amount", so.Payments[0].Amount.String(), "324")    // 60.00 × 5.40
	check("payment 1 amount", so.Payments[1].Amount.String(), "405")    // 75.00 × 5.40
	check("freight", so.Freight.String(), "54")                         // 10.00 × 5.40
	if so.Payments[0].MethodID != 17 || so.Payments[1].MethodID != 4 || so.Payments[1].Installments != 2 {
		t.Errorf("payments = %+v, want PIX mapped to 17 by the tenant, CREDIT_CARD 4 by default", so.Payments)
	}
	if so.Marketplace == nil || so.Marketplace.CNPJ != "11222333000181" || so.Marketplace.Name != "Shopping Online" {
		t.Errorf("marketplace = %+v", so.Marketplace)
	}
	if !v.ByEAN[1] || v.ByEAN[0] {
		t.Errorf("ByEAN = %v", v.ByEAN)
	}

	// Without marketplace settings there is no Marketplace; BRL passes as is.
	o = validOrder("PED-8")
	v, _, _ = Validate(context.Background(), "acme", tenant.SettingsOf(nil), cat, o)
	if v.Order.Marketplace != nil || v.Order.Payments[0].Amount.String() != "109.99" || v.Order.Payments[0].MethodID != 12 {
		t.Errorf("plain BRL order: marketplace %+v, payment %+v", v.Order.Marketplace, v.Order.Payments[0])
	}
}

func TestLabelsAndNumbers(t *testing.T) {
	t.Parallel()
	for field, want := range map[string]string{
		"customer.document":         "CPF/CNPJ do cliente",
		"billingAddress.postalCode": "CEP do endereço de cobrança",
		"items[1].ean":              "EAN do item 2",
		"payments[0].installments":  "parcelas do pagamento 1",
		"shippingAddress.street":    "logradouro do endereço de entrega",
	} {
		if got := label(field); got != want {
			t.Errorf("label(%q) = %q, want %q", field, got, want)
		}
	}
	for in, want := range map[string]string{"1234567.5": "1.234.567,5", "99.90": "99,90", "-1000": "-1.000", "0.01": "0,01"} {
		if got := ptNumber(in); got != want {
			t.Errorf("ptNumber(%q) = %q, want %q", in, got, want)
		}
	}
}

// FuzzValidate feeds Validate every shape of decoded StoreOrderApproved: it
// must never panic, and what it accepts must keep Hiper's rules.
func FuzzValidate(f *testing.F) {
	cat := testIndex(f)
	settings := tenant.SettingsOf(&brokerv1.TenantSettings{CurrencyQuotes: map[string]string{"USD": "5.40"}})
	seed := func(o *eventsv1.StoreOrderApproved) {
		b, err := proto.Marshal(o)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	seed(validOrder("1"))
	o := validOrder("2")
	o.Items = append(o.Items, &eventsv1.OrderItem{Ean: knownEAN, Quantity: "0.001", UnitPrice: "1e3"})
	o.Currency = "USD"
	seed(o)
	seed(&eventsv1.StoreOrderApproved{})
	o = validOrder("3")
	o.Customer = nil
	o.Payments = []*eventsv1.Payment{{}}
	seed(o)
	f.Add([]byte("\x0a\x01\xff"))

	f.Fuzz(func(t *testing.T, b []byte) {
		o := &eventsv1.StoreOrderApproved{}
		if err := proto.Unmarshal(b, o); err != nil {
			return
		}
		v, reasons, err := Validate(context.Background(), "acme", settings, cat, o)
		if err != nil {
			t.Fatalf("Validate failed on its catalog: %v", err)
		}
		for _, r := range reasons {
			if r.Code == "" || r.Message == "" {
				t.Fatalf("reason without code or message: %+v", r)
			}
		}
		if len(reasons) > 0 {
			return
		}
		so := v.Order
		if d := string(so.Customer.Document); len(d) != 11 && len(d) != 14 {
			t.Fatalf("accepted document %q", d)
		}
		if len(so.BillingAddress.PostalCode) != 8 || len(so.ShippingAddress.IBGECode) != 7 {
			t.Fatalf("accepted address %+v", so.BillingAddress)
		}
		if len(so.Items) == 0 || len(so.Payments) == 0 {
			t.Fatal("accepted an order without items or payments")
		}
		for i, it := range so.Items {
			if !hiper.ValidID(it.ProductID) || it.Quantity.LessThan(minQuantity) || it.Quantity.GreaterThan(maxQuantity) {
				t.Fatalf("accepted item %d: %+v", i, it)
			}
		}
		for i, p := range so.Payments {
			if p.MethodID <= 0 || p.Installments < 1 || p.Amount.LessThan(minPayment) {
				t.Fatalf("accepted payment %d: %+v", i, p)
			}
		}
		_ = fmt.Sprint(so)
	})
}
