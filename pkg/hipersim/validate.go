package hipersim

import (
	"fmt"
	"strings"
	"unicode/utf8"

	"github.com/hipersync/hipersync/pkg/hiper"
)

// Limits of hiper-api.md §4. They are values, never changed.
var (
	minQuantity = hiper.MustDecimal("0.001")
	maxQuantity = hiper.MustDecimal("9999999999999.999")
	minAmount   = hiper.MustDecimal("0.01")
)

// validateOrder lists every structural problem of a sales order (Hiper
// answers them all at once, with HTTP 400). Whether the products exist is
// checked later, against the account's catalog.
func validateOrder(o *hiper.SalesOrder) []string {
	var v validator

	c := o.Customer
	doc := strings.TrimSpace(string(c.Document))
	switch {
	case doc == "":
		v.add("cliente.documento", "é obrigatório.")
	case !(len(doc) == 11 && allDigits(doc) || len(doc) == 14 && alphanumericCNPJ(doc)):
		v.add("cliente.documento", "deve conter 11 dígitos (CPF) ou 14 caracteres (CNPJ: 12 letras maiúsculas ou dígitos e 2 dígitos).")
	}
	v.text("cliente.email", c.Email, 80, true)
	v.text("cliente.nomeDoCliente", c.Name, 80, true)
	v.text("cliente.nomeFantasia", c.TradeName, 60, len(doc) == 14)
	if ie := strings.TrimSpace(string(c.StateRegistration)); ie != "" && (!allDigits(ie) || len(ie) > 14) {
		v.add("cliente.inscricaoEstadual", "deve conter apenas dígitos, no máximo 14.")
	}

	v.address("enderecoDeCobranca", o.BillingAddress)
	v.address("enderecoDeEntrega", o.ShippingAddress)

	if len(o.Items) == 0 {
		v.add("itens", "informe ao menos um item.")
	}
	for i, it := range o.Items {
		field := fmt.Sprintf("itens[%d]", i)
		switch id := strings.TrimSpace(it.ProductID); {
		case id == "":
			v.add(field+".produtoId", "é obrigatório.")
		case !hiper.ValidID(id):
			v.add(field+".produtoId", "deve ser um identificador (uuid) de produto do Hiper.")
		}
		if it.Quantity.LessThan(minQuantity.Decimal) || it.Quantity.GreaterThan(maxQuantity.Decimal) {
			v.add(field+".quantidade", "deve estar entre 0,001 e 9999999999999,999.")
		}
		if it.GrossUnitPrice != nil && it.GrossUnitPrice.IsNegative() {
			v.add(field+".precoUnitarioBruto", "não pode ser negativo.")
		}
		if it.NetUnitPrice != nil && it.NetUnitPrice.IsNegative() {
			v.add(field+".precoUnitarioLiquido", "não pode ser negativo.")
		}
	}

	for i, p := range o.Payments {
		field := fmt.Sprintf("meiosDePagamento[%d]", i)
		if p.MethodID <= 0 {
			v.add(field+".idMeioDePagamento", "é obrigatório.")
		}
		if p.Installments < 1 {
			v.add(field+".parcelas", "deve ser no mínimo 1.")
		}
		if p.Amount.LessThan(minAmount.Decimal) {
			v.add(field+".valor", "deve ser no mínimo 0,01.")
		}
	}
	if o.Freight.IsNegative() {
		v.add("valorDoFrete", "não pode ser negativo.")
	}
	return v.problems
}

// validator collects problems as "field: message".
type validator struct {
	problems []string
}

func (v *validator) add(field, msg string) {
	v.problems = append(v.problems, field+": "+msg)
}

// text checks a free-text field's presence and length (in characters).
func (v *validator) text(field, s string, maxLen int, required bool) {
	switch {
	case required && strings.TrimSpace(s) == "":
		v.add(field, "é obrigatório.")
	case utf8.RuneCountInString(s) > maxLen:
		v.add(field, fmt.Sprintf("deve ter no máximo %d caracteres.", maxLen))
	}
}

// digits checks a required code of exactly n digits.
func (v *validator) digits(field string, d hiper.Digits, n int) {
	s := strings.TrimSpace(string(d))
	switch {
	case s == "":
		v.add(field, "é obrigatório.")
	case len(s) != n || !allDigits(s):
		v.add(field, fmt.Sprintf("deve conter %d dígitos.", n))
	}
}

func (v *validator) address(prefix string, a hiper.Address) {
	v.text(prefix+".logradouro", a.Street, 60, true)
	v.text(prefix+".numero", a.Number, 10, true)
	v.text(prefix+".complemento", a.Complement, 60, false)
	v.text(prefix+".bairro", a.District, 60, true)
	v.digits(prefix+".cep", a.PostalCode, 8)
	v.digits(prefix+".codigoIbge", a.IBGECode, 7)
}

func allDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return s != ""
}

// alphanumericCNPJ reports the shape of a CNPJ, digits-only or the
// alphanumeric one issued since July 2026: 12 characters 0-9 A-Z and two
// check digits.
func alphanumericCNPJ(s string) bool {
	for i := 0; i < 12; i++ {
		if !('0' <= s[i] && s[i] <= '9' || 'A' <= s[i] && s[i] <= 'Z') {
			return false
		}
	}
	return allDigits(s[12:])
}
