package forwarder

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"unicode"

	"github.com/shopspring/decimal"
)

// Rejection codes: stable, for a store to branch on. docs/order-forwarder.md
// lists them with their messages.
const (
	CodeRequired                 = "required"
	CodeTooLong                  = "too_long"
	CodeInvalidDocument          = "invalid_document"
	CodeMissingTradeName         = "missing_trade_name"
	CodeInvalidEmail             = "invalid_email"
	CodeInvalidStateRegistration = "invalid_state_registration"
	CodeInvalidPostalCode        = "invalid_postal_code"
	CodeInvalidIBGECode          = "invalid_ibge_code"
	CodeNoItems                  = "no_items"
	CodeInvalidProductID         = "invalid_product_id"
	CodeInvalidEAN               = "invalid_ean"
	CodeUnknownProduct           = "unknown_product"
	CodeInvalidQuantity          = "invalid_quantity"
	CodeInvalidAmount            = "invalid_amount"
	CodeNoPayments               = "no_payments"
	CodeInvalidInstallments      = "invalid_installments"
	CodeUnknownPaymentMethod     = "unknown_payment_method"
	CodePaymentMismatch          = "payment_mismatch"
	CodeUnsupportedCurrency      = "unsupported_currency"
	CodeHiperRejected            = "hiper_rejected"
	CodeTooManyItems             = "too_many_items"
	CodeTooManyPayments          = "too_many_payments"
	CodeOrderTooLarge            = "order_too_large"
	CodeTooManyProblems          = "too_many_problems"
)

// Review codes (OrderNeedsReview.code): why a person must look at an
// order, stable beside the Portuguese reason. docs/order-forwarder.md lists
// them.
const (
	ReviewOutcomeUnknown    = "outcome_unknown"
	ReviewSendInterrupted   = "send_interrupted"
	ReviewCancelUnderReview = "cancel_under_review"
	ReviewCancelRefused     = "cancel_refused"
	ReviewCancelUnconfirmed = "cancel_unconfirmed"
)

// label names a field of StoreOrderApproved for a merchant, in Portuguese:
// "customer.document" is "CPF/CNPJ do cliente", "items[1].ean" is "EAN do
// item 2".
func label(field string) string {
	if l, ok := customerLabels[field]; ok {
		return l
	}
	head, rest, _ := strings.Cut(field, ".")
	switch head {
	case "billingAddress", "shippingAddress":
		where := "endereço de cobrança"
		if head == "shippingAddress" {
			where = "endereço de entrega"
		}
		if rest == "" {
			return where
		}
		return addressLabels[rest] + " do " + where
	}
	if name, n, ok := indexed(head); ok {
		switch name {
		case "items":
			return itemLabels[rest] + " do item " + strconv.Itoa(n+1)
		case "payments":
			return paymentLabels[rest] + " do pagamento " + strconv.Itoa(n+1)
		}
	}
	return field
}

var (
	customerLabels = map[string]string{
		"customer.document":          "CPF/CNPJ do cliente",
		"customer.email":             "e-mail do cliente",
		"customer.name":              "nome do cliente",
		"customer.tradeName":         "nome fantasia do cliente",
		"customer.stateRegistration": "inscrição estadual do cliente",
		"shippingAmount":             "valor do frete",
		"currency":                   "moeda",
		"items":                      "itens",
		"notes":                      "observações do pedido",
		"orderId":                    "número do pedido",
		"payments":                   "pagamentos",
	}
	addressLabels = map[string]string{
		"street": "logradouro", "number": "número", "complement": "complemento",
		"district": "bairro", "postalCode": "CEP", "ibgeCityCode": "código IBGE do município",
	}
	itemLabels = map[string]string{
		"productId": "produto", "ean": "EAN", "quantity": "quantidade", "unitPrice": "preço unitário",
	}
	paymentLabels = map[string]string{
		"method": "meio de pagamento", "installments": "parcelas", "amount": "valor",
	}
)

// indexed splits "items[3]" into ("items", 3).
func indexed(s string) (string, int, bool) {
	name, rest, ok := strings.Cut(s, "[")
	if !ok || !strings.HasSuffix(rest, "]") {
		return "", 0, false
	}
	n, err := strconv.Atoi(strings.TrimSuffix(rest, "]"))
	return name, n, err == nil
}

// capitalize upper-cases the first letter of a label starting a sentence.
func capitalize(s string) string {
	r := []rune(s)
	if len(r) > 0 {
		r[0] = unicode.ToUpper(r[0])
	}
	return string(r)
}

// brl formats an amount as a merchant reads it: "R$ 1.234,56".
func brl(d decimal.Decimal) string {
	return "R$ " + ptNumber(d.StringFixed(2))
}

// ptNumber turns "1234.5" into "1.234,5".
func ptNumber(s string) string {
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	whole, frac, hasFrac := strings.Cut(s, ".")
	var b strings.Builder
	for i, c := range whole {
		if i > 0 && (len(whole)-i)%3 == 0 {
			b.WriteByte('.')
		}
		b.WriteRune(c)
	}
	out := b.String()
	if hasFrac {
		out += "," + frac
	}
	if neg {
		out = "-" + out
	}
	return out
}

// hiperField maps a field Hiper names in its errors ("itens[0].produtoId")
// to the store's ("items[0].productId", or ".ean" when the store gave a
// barcode), so a merchant sees the field of the order they sent.
var hiperItemField = regexp.MustCompile(`^\s*itens\[(\d+)\]\.(\w+)`)

func hiperField(text string, byEAN func(i int) bool) string {
	m := hiperItemField.FindStringSubmatch(text)
	if m == nil {
		return ""
	}
	i, err := strconv.Atoi(m[1])
	if err != nil {
		return ""
	}
	switch m[2] {
	case "produtoId":
		if byEAN(i) {
			return fmt.Sprintf("items[%d].ean", i)
		}
		return fmt.Sprintf("items[%d].productId", i)
	case "quantidade":
		return fmt.Sprintf("items[%d].quantity", i)
	}
	return fmt.Sprintf("items[%d]", i)
}
