package forwarder

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"unicode/utf8"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/shopspring/decimal"

	"github.com/hipersync/hipersync/pkg/catalog"
	eventsv1 "github.com/hipersync/hipersync/pkg/gen/hipersync/events/v1"
	"github.com/hipersync/hipersync/pkg/hiper"
	"github.com/hipersync/hipersync/pkg/tenant"
	"github.com/hipersync/hipersync/services/order-forwarder/orders"
)

// Catalog resolves a tenant's barcodes to Hiper product ids. Lookup returns
// an error matching catalog.ErrNotIndexed for an unknown barcode; any other
// error is the catalog failing, and the order waits for it.
type Catalog interface {
	Lookup(ctx context.Context, tenant, ean string) (string, error)
}

// KVCatalog is the Catalog of the shared barcode index (pkg/catalog).
type KVCatalog struct{ KV jetstream.KeyValue }

// Lookup implements Catalog.
func (c KVCatalog) Lookup(ctx context.Context, tenant, ean string) (string, error) {
	return catalog.Lookup(ctx, c.KV, tenant, ean)
}

// Limits of hiper-api.md §4 and of the money a store sends.
var (
	minQuantity = decimal.RequireFromString("0.001")
	maxQuantity = decimal.RequireFromString("9999999999999.999")
	minPayment  = decimal.RequireFromString("0.01")
	maxAmount   = decimal.RequireFromString("9999999999999.99")
	tolerance   = decimal.RequireFromString("0.01")
)

// Decimal places accepted: Hiper's quantities have three; money has cents;
// a unit price may have more (sold by weight) but not without bound.
const (
	quantityPlaces  = 3
	moneyPlaces     = 2
	unitPricePlaces = 4
)

// Maximum lengths of hiper-api.md §4, in characters.
const (
	maxEmail      = 80
	maxName       = 80
	maxTradeName  = 60
	maxStateReg   = 14
	maxStreet     = 60
	maxNumber     = 10
	maxComplement = 60
	maxDistrict   = 60
)

// Bounds of an order hipersync takes, so that no store's order can grow a
// record, an event or a handler's work without limit: past one, the order
// is rejected with its own code.
const (
	// MaxItems and MaxPayments bound an order's lists.
	MaxItems    = 500
	MaxPayments = 20
	// maxNotes and maxOrderID bound the free text Hiper has no limit of its
	// own for.
	maxNotes   = 2000
	maxOrderID = 1000
	// MaxReasons bounds the problems one rejection lists; the last one says
	// how many more there were.
	MaxReasons = 50
	// maxEcho bounds what of a store's value a message quotes back.
	maxEcho = 40
	// recordReserve is what an order record holds beside the approval
	// (history, reasons, the outcome event), when sizing the largest
	// approval a record can store against the server's max_payload.
	recordReserve = 64 << 10
)

// ApprovalBudget is the largest approval (protobuf bytes) whose record fits
// in a NATS message of maxPayload bytes: the record stores it base64 in
// JSON, beside at most recordReserve of its own.
func ApprovalBudget(maxPayload int64) int {
	return int(max(maxPayload-recordReserve, 0) * 3 / 4)
}

// Validated is an order that passed validation, ready to post.
type Validated struct {
	Order hiper.SalesOrder
	// ByEAN says which items the store named by barcode, to point Hiper's
	// complaints about an item at the field the store sent.
	ByEAN []bool
}

// Validate checks an approved order against every field rule of
// hiper-api.md §4 and the tenant's settings, and builds the sales order to
// post. It returns every problem found at once; an error only when the
// catalog could not be read.
func Validate(ctx context.Context, tenantID string, s tenant.Settings, cat Catalog, o *eventsv1.StoreOrderApproved) (Validated, []orders.Reason, error) {
	c := &checker{}
	quote, currency := c.currency(o.GetCurrency(), s)

	so := hiper.SalesOrder{
		Customer:        c.customer(o.GetCustomer()),
		BillingAddress:  c.address("billingAddress", o.GetBillingAddress()),
		ShippingAddress: c.address("shippingAddress", o.GetShippingAddress()),
		StoreOrderID:    c.text("orderId", o.GetOrderId(), maxOrderID, true),
		Notes:           c.text("notes", o.GetNotes(), maxNotes, false),
	}
	if cnpj := strings.TrimSpace(s.GetMarketplaceCnpj()); cnpj != "" {
		so.Marketplace = &hiper.Marketplace{CNPJ: cnpj, Name: strings.TrimSpace(s.GetMarketplaceName())}
	}

	items, byEAN, itemsTotal, err := c.items(ctx, tenantID, cat, o.GetItems())
	if err != nil {
		return Validated{}, nil, err
	}
	payments, paid := c.payments(o.GetPayments(), s)
	freight, freightOK := c.money("shippingAmount", o.GetShippingAmount(), decimal.Zero, false)

	if itemsTotal != nil && paid != nil && freightOK {
		due := itemsTotal.Add(freight)
		if paid.Sub(due).Abs().GreaterThan(tolerance) {
			c.add(CodePaymentMismatch, "payments", fmt.Sprintf(
				"A soma dos pagamentos (%s) não confere com o total do pedido (%s: itens %s + frete %s); a diferença tolerada é de %s.",
				formatMoney(*paid, currency), formatMoney(due, currency), formatMoney(*itemsTotal, currency), formatMoney(freight, currency), formatMoney(tolerance, currency)))
		}
	}
	if len(c.reasons) > 0 {
		return Validated{}, c.bounded(), nil
	}

	// Converted at the tenant's quote; BRL (quote 1) passes unchanged.
	for i := range items {
		for _, p := range []**hiper.Decimal{&items[i].NetUnitPrice, &items[i].GrossUnitPrice} {
			v := convert((*p).Decimal, quote, unitPricePlaces)
			*p = &hiper.Decimal{Decimal: v}
		}
	}
	for i := range payments {
		payments[i].Amount = hiper.Decimal{Decimal: convert(payments[i].Amount.Decimal, quote, moneyPlaces)}
	}
	so.Items, so.Payments = items, payments
	so.Freight = hiper.Decimal{Decimal: convert(freight, quote, moneyPlaces)}
	return Validated{Order: so, ByEAN: byEAN}, nil, nil
}

func convert(v, quote decimal.Decimal, places int32) decimal.Decimal {
	if quote.Equal(decimal.NewFromInt(1)) {
		return v
	}
	return v.Mul(quote).Round(places)
}

// checker collects the problems of one order.
type checker struct {
	reasons []orders.Reason
}

func (c *checker) add(code, field, message string) {
	c.reasons = append(c.reasons, orders.Reason{Code: code, Field: field, Message: message})
}

// bounded returns the reasons, at most MaxReasons: the last says how many
// more problems there were.
func (c *checker) bounded() []orders.Reason {
	if len(c.reasons) <= MaxReasons {
		return c.reasons
	}
	more := len(c.reasons) - (MaxReasons - 1)
	return append(c.reasons[:MaxReasons-1:MaxReasons-1], orders.Reason{Code: CodeTooManyProblems, Message: fmt.Sprintf(
		"E mais %d problemas no pedido: corrija os listados e envie-o de novo para ver os demais.", more)})
}

// tooLarge rejects an order whose record would not fit in a NATS message.
func tooLarge(size, budget int) []orders.Reason {
	return []orders.Reason{{Code: CodeOrderTooLarge, Message: fmt.Sprintf(
		"O pedido é grande demais para ser processado (%d bytes; no máximo %d): reduza os textos ou divida-o em pedidos menores.", size, budget)}}
}

// echo quotes a store's value back in a message, bounded.
func echo(v string) string {
	if utf8.RuneCountInString(v) <= maxEcho {
		return v
	}
	return string([]rune(v)[:maxEcho]) + "…"
}

func (c *checker) required(field string) {
	c.add(CodeRequired, field, "Campo obrigatório: "+label(field)+".")
}

// text checks a free-text field and returns it trimmed.
func (c *checker) text(field, v string, maxLen int, required bool) string {
	v = strings.TrimSpace(v)
	switch n := utf8.RuneCountInString(v); {
	case v == "" && required:
		c.required(field)
	case n > maxLen:
		c.add(CodeTooLong, field, fmt.Sprintf("%s: no máximo %d caracteres (recebido: %d).", capitalize(label(field)), maxLen, n))
	}
	return v
}

func (c *checker) currency(code string, s tenant.Settings) (decimal.Decimal, string) {
	code = strings.ToUpper(strings.TrimSpace(code))
	if code == "" {
		code = "BRL"
	}
	q, ok := s.Quote(code)
	if !ok {
		c.add(CodeUnsupportedCurrency, "currency", fmt.Sprintf(
			"Moeda %q sem cotação configurada para a loja: envie o pedido em BRL ou cadastre a cotação (hipersync tenant settings --quote %s=5.40).",
			echo(code), safeCode(code)))
		return decimal.NewFromInt(1), code
	}
	return q, code
}

// safeCode keeps an unknown currency code printable in a suggestion.
func safeCode(code string) string {
	if len(code) == 3 && strings.IndexFunc(code, func(r rune) bool { return r < 'A' || r > 'Z' }) < 0 {
		return code
	}
	return "USD"
}

func (c *checker) customer(cu *eventsv1.Customer) hiper.Customer {
	out := hiper.Customer{
		Email:     c.text("customer.email", cu.GetEmail(), maxEmail, true),
		Name:      c.text("customer.name", cu.GetName(), maxName, true),
		TradeName: c.text("customer.tradeName", cu.GetTradeName(), maxTradeName, false),
	}
	if out.Email != "" && utf8.RuneCountInString(out.Email) <= maxEmail && !validEmail(out.Email) {
		c.add(CodeInvalidEmail, "customer.email", "E-mail do cliente inválido: use o formato nome@dominio.com.br.")
	}

	doc := strings.ToUpper(stripPunctuation(cu.GetDocument()))
	switch {
	case doc == "":
		c.required("customer.document")
	case len(doc) == 11 && validCPF(doc), len(doc) == 14 && validCNPJ(doc):
		out.Document = hiper.Digits(doc)
	default:
		c.add(CodeInvalidDocument, "customer.document",
			"CPF/CNPJ do cliente inválido: informe um CPF (11 dígitos) ou um CNPJ (14 dígitos, ou 12 letras e dígitos seguidos de 2 dígitos no CNPJ alfanumérico) com os dígitos verificadores corretos.")
	}
	if len(doc) == 14 && out.TradeName == "" {
		c.add(CodeMissingTradeName, "customer.tradeName", "Campo obrigatório para cliente com CNPJ: nome fantasia.")
	}

	// "ISENTO" is how a store writes that the buyer has no registration;
	// Hiper wants digits or nothing.
	switch ie := stripPunctuation(cu.GetStateRegistration()); {
	case ie == "" || strings.EqualFold(ie, "isento"):
	case !allDigits(ie) || len(ie) > maxStateReg:
		c.add(CodeInvalidStateRegistration, "customer.stateRegistration",
			"Inscrição estadual do cliente inválida: informe apenas dígitos, no máximo 14, ou deixe em branco se o cliente for isento.")
	default:
		out.StateRegistration = hiper.Digits(ie)
	}
	return out
}

func (c *checker) address(prefix string, a *eventsv1.Address) hiper.Address {
	out := hiper.Address{
		Street:     c.text(prefix+".street", a.GetStreet(), maxStreet, true),
		Number:     c.text(prefix+".number", a.GetNumber(), maxNumber, true),
		Complement: c.text(prefix+".complement", a.GetComplement(), maxComplement, false),
		District:   c.text(prefix+".district", a.GetDistrict(), maxDistrict, true),
	}
	switch cep := stripPunctuation(a.GetPostalCode()); {
	case cep == "":
		c.required(prefix + ".postalCode")
	case len(cep) != 8 || !allDigits(cep) || allSame(cep) && cep[0] == '0':
		c.add(CodeInvalidPostalCode, prefix+".postalCode", capitalize(label(prefix+".postalCode"))+" inválido: informe os 8 dígitos do CEP.")
	default:
		out.PostalCode = hiper.Digits(cep)
	}
	switch ibge := strings.TrimSpace(a.GetIbgeCityCode()); {
	case ibge == "":
		c.required(prefix + ".ibgeCityCode")
	case !validIBGE(ibge):
		c.add(CodeInvalidIBGECode, prefix+".ibgeCityCode", capitalize(label(prefix+".ibgeCityCode"))+
			" inválido: informe os 7 dígitos do código do município no IBGE (ex.: 4202909).")
	default:
		out.IBGECode = hiper.Digits(ibge)
	}
	return out
}

// items checks and resolves the items; total is nil when some amount
// could not be read, so no payment mismatch is claimed on top.
func (c *checker) items(ctx context.Context, tenantID string, cat Catalog, in []*eventsv1.OrderItem) ([]hiper.OrderItem, []bool, *decimal.Decimal, error) {
	if len(in) == 0 {
		c.add(CodeNoItems, "items", "O pedido não tem itens: informe ao menos um produto.")
		return nil, nil, nil, nil
	}
	if len(in) > MaxItems {
		c.add(CodeTooManyItems, "items", fmt.Sprintf("O pedido tem %d itens; o máximo é %d: divida-o em pedidos menores.", len(in), MaxItems))
		return nil, nil, nil, nil
	}
	out := make([]hiper.OrderItem, len(in))
	byEAN := make([]bool, len(in))
	total, totalOK := decimal.Zero, true
	for i, it := range in {
		field := fmt.Sprintf("items[%d]", i)
		id, err := c.product(ctx, field, tenantID, cat, it)
		if err != nil {
			return nil, nil, nil, err
		}
		out[i].ProductID = id
		byEAN[i] = strings.TrimSpace(it.GetProductId()) == "" && strings.TrimSpace(it.GetEan()) != ""

		q, qOK := c.quantity(field+".quantity", it.GetQuantity())
		price, pOK := c.unitPrice(field+".unitPrice", it.GetUnitPrice())
		out[i].Quantity = hiper.Decimal{Decimal: q}
		out[i].NetUnitPrice = &hiper.Decimal{Decimal: price}
		out[i].GrossUnitPrice = &hiper.Decimal{Decimal: price}
		if qOK && pOK {
			total = total.Add(q.Mul(price))
		} else {
			totalOK = false
		}
	}
	if !totalOK {
		return out, byEAN, nil, nil
	}
	return out, byEAN, &total, nil
}

// product resolves an item's Hiper product id: its productId, or its
// barcode through the synced catalog.
func (c *checker) product(ctx context.Context, field, tenantID string, cat Catalog, it *eventsv1.OrderItem) (string, error) {
	if id := strings.TrimSpace(it.GetProductId()); id != "" {
		if !hiper.ValidID(id) {
			c.add(CodeInvalidProductID, field+".productId", capitalize(label(field+".productId"))+
				" inválido: productId deve ser o identificador (UUID) do produto no Hiper.")
		}
		return id, nil
	}
	ean := strings.TrimSpace(it.GetEan())
	if ean == "" {
		c.add(CodeRequired, field+".productId", capitalize(label(field+".productId"))+" não informado: informe productId ou ean.")
		return "", nil
	}
	id, err := cat.Lookup(ctx, tenantID, ean)
	switch {
	case errors.Is(err, catalog.ErrInvalidEAN):
		c.add(CodeInvalidEAN, field+".ean", capitalize(label(field+".ean"))+" inválido: informe de 8 a 14 dígitos.")
	case errors.Is(err, catalog.ErrNotIndexed), err == nil && !hiper.ValidID(id):
		c.add(CodeUnknownProduct, field+".ean", fmt.Sprintf(
			"Produto do %s (EAN %s) não encontrado no catálogo sincronizado do Hiper: confira o código de barras e se o produto está ativo e marcado para a loja virtual no Hiper.",
			strings.TrimPrefix(label(field+".ean"), "EAN do "), ean))
	case err != nil:
		return "", fmt.Errorf("resolve %s.ean: %w", field, err)
	}
	return id, nil
}

func (c *checker) quantity(field, v string) (decimal.Decimal, bool) {
	d, ok := parseDecimal(v)
	if !ok || d.LessThan(minQuantity) || d.GreaterThan(maxQuantity) || !d.Equal(d.Truncate(quantityPlaces)) {
		c.add(CodeInvalidQuantity, field, capitalize(label(field))+
			" inválida: informe um número entre 0,001 e 9.999.999.999.999,999, com até 3 casas decimais.")
		return decimal.Zero, false
	}
	return d, true
}

func (c *checker) unitPrice(field, v string) (decimal.Decimal, bool) {
	if strings.TrimSpace(v) == "" {
		c.required(field)
		return decimal.Zero, false
	}
	d, ok := parseDecimal(v)
	if !ok || d.IsNegative() || d.GreaterThan(maxAmount) || !d.Equal(d.Truncate(unitPricePlaces)) {
		c.add(CodeInvalidAmount, field, capitalize(label(field))+
			" inválido: informe um valor decimal não negativo com até 4 casas decimais (ex.: 99.90).")
		return decimal.Zero, false
	}
	return d, true
}

// money checks an amount in cents between min and maxAmount; an empty one
// is zero unless required.
func (c *checker) money(field, v string, min decimal.Decimal, required bool) (decimal.Decimal, bool) {
	if strings.TrimSpace(v) == "" && !required {
		return decimal.Zero, true
	}
	d, ok := parseDecimal(v)
	if !ok || d.LessThan(min) || d.GreaterThan(maxAmount) || !d.Equal(d.Truncate(moneyPlaces)) {
		c.add(CodeInvalidAmount, field, fmt.Sprintf("%s inválido: informe um valor de no mínimo %s com até 2 casas decimais (ex.: 19.90).",
			capitalize(label(field)), ptNumber(min.StringFixed(2))))
		return decimal.Zero, false
	}
	return d, true
}

// payments checks and maps the payments; paid is nil when some amount
// could not be read.
func (c *checker) payments(in []*eventsv1.Payment, s tenant.Settings) ([]hiper.Payment, *decimal.Decimal) {
	if len(in) == 0 {
		c.add(CodeNoPayments, "payments", "O pedido não tem pagamentos: informe ao menos um meio de pagamento.")
		return nil, nil
	}
	if len(in) > MaxPayments {
		c.add(CodeTooManyPayments, "payments", fmt.Sprintf("O pedido tem %d pagamentos; o máximo é %d.", len(in), MaxPayments))
		return nil, nil
	}
	out := make([]hiper.Payment, len(in))
	paid, paidOK := decimal.Zero, true
	for i, p := range in {
		field := fmt.Sprintf("payments[%d]", i)
		method := strings.ToUpper(strings.TrimSpace(p.GetMethod()))
		id, ok := s.PaymentID(method)
		switch {
		case method == "":
			c.required(field + ".method")
		case !ok:
			c.add(CodeUnknownPaymentMethod, field+".method", fmt.Sprintf(
				"Meio de pagamento %q do pagamento %d não é aceito: use %s, ou configure o mapa de meios de pagamento da loja.",
				echo(p.GetMethod()), i+1, knownMethods()))
		}
		switch n := p.GetInstallments(); {
		case n < 1:
			c.add(CodeInvalidInstallments, field+".installments", fmt.Sprintf("Parcelas do pagamento %d inválidas: informe no mínimo 1.", i+1))
		case n > 1 && method == "CASH":
			c.add(CodeInvalidInstallments, field+".installments", fmt.Sprintf("Parcelas do pagamento %d inválidas: pagamento em dinheiro (CASH) é em 1 parcela.", i+1))
		}
		amount, amountOK := c.money(field+".amount", p.GetAmount(), minPayment, true)
		out[i] = hiper.Payment{MethodID: id, Installments: int(p.GetInstallments()), Amount: hiper.Decimal{Decimal: amount}}
		if amountOK {
			paid = paid.Add(amount)
		} else {
			paidOK = false
		}
	}
	if !paidOK {
		return out, nil
	}
	return out, &paid
}

func knownMethods() string {
	ms := make([]string, 0, len(tenant.DefaultPaymentMap))
	for m := range tenant.DefaultPaymentMap {
		ms = append(ms, m)
	}
	sort.Strings(ms)
	return strings.Join(ms[:len(ms)-1], ", ") + " ou " + ms[len(ms)-1]
}

// parseDecimal reads a decimal string exactly, never through float64.
func parseDecimal(s string) (decimal.Decimal, bool) {
	if strings.TrimSpace(s) == "" || len(s) > 64 {
		return decimal.Zero, false
	}
	d, err := hiper.NewDecimal(s)
	if err != nil {
		return decimal.Zero, false
	}
	return d.Decimal, true
}

// formatMoney formats an amount in its currency: "R$ 19,90" or "USD 19,90".
func formatMoney(d decimal.Decimal, currency string) string {
	if currency == "BRL" {
		return brl(d)
	}
	return currency + " " + ptNumber(d.StringFixed(2))
}
