package tenant

import (
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/shopspring/decimal"
	"google.golang.org/protobuf/types/known/durationpb"

	brokerv1 "github.com/hipersync/hipersync/pkg/gen/hipersync/broker/v1"
	"github.com/hipersync/hipersync/pkg/hiper"
)

// Documented defaults of a tenant's settings (README, "Tenant settings").
const (
	DefaultCatalogInterval           = 5 * time.Minute
	DefaultStockInterval             = 60 * time.Second
	DefaultGuardMaxDeactivatePercent = 20
	DefaultGuardMaxPriceCuts         = 50
	DefaultGuardMinProducts          = 20
	DefaultOrderWatchMaxAge          = 30 * 24 * time.Hour
	// Intervals shorter than this are refused: they would hammer Hiper.
	MinInterval = 10 * time.Second
)

// DefaultPaymentMap maps the store's payment methods to Hiper's
// idMeioDePagamento (docs/hiper-api.md).
var DefaultPaymentMap = map[string]int32{
	"BOLETO":       hiper.PaymentBoleto,
	"CASH":         hiper.PaymentCash,
	"CHEQUE":       hiper.PaymentCheque,
	"CREDIT_CARD":  hiper.PaymentCreditCard,
	"DEBIT_CARD":   hiper.PaymentDebitCard,
	"STORE_CREDIT": hiper.PaymentStoreCredit,
	"VOUCHER":      hiper.PaymentVoucher,
	"PIX":          hiper.PaymentPix,
}

// Settings is a tenant's settings with the defaults applied where a field is
// unset. It wraps the stored message so there is one settings type.
type Settings struct {
	*brokerv1.TenantSettings
}

// SettingsOf returns s with defaults; a nil s is all defaults.
func SettingsOf(s *brokerv1.TenantSettings) Settings {
	if s == nil {
		s = &brokerv1.TenantSettings{}
	}
	return Settings{s}
}

// positiveOr returns d, or def when d is unset or not positive. AsDuration is
// nil-safe, so an unset field reads as zero.
func positiveOr(d *durationpb.Duration, def time.Duration) time.Duration {
	if v := d.AsDuration(); v > 0 {
		return v
	}
	return def
}

// CatalogInterval is how often the catalog is polled.
func (s Settings) CatalogInterval() time.Duration {
	return positiveOr(s.GetCatalogInterval(), DefaultCatalogInterval)
}

// StockInterval is how often stock is polled.
func (s Settings) StockInterval() time.Duration {
	return positiveOr(s.GetStockInterval(), DefaultStockInterval)
}

// OrderWatchMaxAge is how long an accepted order is followed in Hiper.
func (s Settings) OrderWatchMaxAge() time.Duration {
	return positiveOr(s.GetOrderWatchMaxAge(), DefaultOrderWatchMaxAge)
}

// GuardMaxDeactivatePercent is the share of products a poll may deactivate or
// zero before the guardrail holds it.
func (s Settings) GuardMaxDeactivatePercent() int {
	if v := s.GetGuardMaxDeactivatePercent(); v > 0 {
		return int(v)
	}
	return DefaultGuardMaxDeactivatePercent
}

// GuardMaxPriceCuts is how many prices a poll may cut by over half before the
// guardrail holds it.
func (s Settings) GuardMaxPriceCuts() int {
	if v := s.GetGuardMaxPriceCuts(); v > 0 {
		return int(v)
	}
	return DefaultGuardMaxPriceCuts
}

// GuardMinProducts is the catalogue size below which the guardrail never
// holds a poll: a small store deactivating a few products is no mass change.
func (s Settings) GuardMinProducts() int {
	if v := s.GetGuardMinProducts(); v > 0 {
		return int(v)
	}
	return DefaultGuardMinProducts
}

// StockBalanceName is how the CLI and the docs name a stock balance.
func StockBalanceName(b brokerv1.StockBalance) string {
	if b == brokerv1.StockBalance_STOCK_BALANCE_AVAILABLE {
		return "available"
	}
	return "physical"
}

// StatusAction is what the tenant's status map does with a store order
// status (store.<tenant>.order.<status>): "approved", "cancelled", or ""
// for a status to acknowledge and ignore. approved and cancelled map to
// themselves unless mapped otherwise.
func (s Settings) StatusAction(status string) string {
	status = strings.ToLower(status)
	if a, ok := s.GetStatusMap()[status]; ok {
		return a
	}
	if status == "approved" || status == "cancelled" {
		return status
	}
	return ""
}

// PaymentID maps a store payment method (PIX, CASH…) to Hiper's id, from the
// tenant's map first, then the defaults.
func (s Settings) PaymentID(method string) (int, bool) {
	method = strings.ToUpper(strings.TrimSpace(method))
	if id, ok := s.GetPaymentMap()[method]; ok {
		return int(id), true
	}
	id, ok := DefaultPaymentMap[method]
	return int(id), ok
}

// Quote returns the value in BRL of one unit of currency; BRL is 1.
func (s Settings) Quote(currency string) (decimal.Decimal, bool) {
	currency = strings.ToUpper(strings.TrimSpace(currency))
	if currency == "" || currency == "BRL" {
		return decimal.NewFromInt(1), true
	}
	v, ok := s.GetCurrencyQuotes()[currency]
	if !ok {
		return decimal.Decimal{}, false
	}
	d, err := hiper.NewDecimal(v) // bounded: "1e999999999" must not allocate a billion digits
	if err != nil || !d.IsPositive() {
		return decimal.Decimal{}, false
	}
	return d.Decimal, true
}

// Validate reports every setting that is out of range, naming it the way the
// CLI flag does.
func Validate(s *brokerv1.TenantSettings) error {
	var problems []string
	check := func(name string, d *durationpb.Duration) {
		if d != nil && d.AsDuration() < MinInterval {
			problems = append(problems, fmt.Sprintf("%s must be at least %s", name, MinInterval))
		}
	}
	check("catalog-interval", s.GetCatalogInterval())
	check("stock-interval", s.GetStockInterval())
	if d := s.GetOrderWatchMaxAge(); d != nil && d.AsDuration() < time.Hour {
		problems = append(problems, "order-watch-max-age must be at least 1h")
	}
	if p := s.GetGuardMaxDeactivatePercent(); p < 0 || p > 100 {
		problems = append(problems, "guard-max-deactivate-percent must be between 0 and 100")
	}
	if s.GetGuardMinProducts() < 0 {
		problems = append(problems, "guard-min-products must not be negative")
	}
	if s.GetGuardMaxPriceCuts() < 0 {
		problems = append(problems, "guard-max-price-cuts must not be negative")
	}
	methods := make([]string, 0, len(s.GetPaymentMap()))
	for m := range s.GetPaymentMap() {
		methods = append(methods, m)
	}
	sort.Strings(methods)
	for _, m := range methods {
		if _, known := DefaultPaymentMap[m]; !known {
			problems = append(problems, fmt.Sprintf("payment-map: unknown method %q (want one of BOLETO, CASH, CHEQUE, CREDIT_CARD, DEBIT_CARD, PIX, STORE_CREDIT, VOUCHER)", m))
		} else if id := s.GetPaymentMap()[m]; id <= 0 || id > 99 {
			problems = append(problems, fmt.Sprintf("payment-map: %s=%d is not a Hiper payment id (1-99)", m, id))
		}
	}
	currencies := make([]string, 0, len(s.GetCurrencyQuotes()))
	for c := range s.GetCurrencyQuotes() {
		currencies = append(currencies, c)
	}
	sort.Strings(currencies)
	for _, c := range currencies {
		if len(c) != 3 || strings.ToUpper(c) != c {
			problems = append(problems, fmt.Sprintf("quote: %q is not an ISO 4217 code such as USD", c))
			continue
		}
		if d, err := hiper.NewDecimal(s.GetCurrencyQuotes()[c]); err != nil || !d.IsPositive() {
			problems = append(problems, fmt.Sprintf("quote: %s=%q must be a positive decimal", c, s.GetCurrencyQuotes()[c]))
		}
	}
	statuses := make([]string, 0, len(s.GetStatusMap()))
	for st := range s.GetStatusMap() {
		statuses = append(statuses, st)
	}
	sort.Strings(statuses)
	for _, st := range statuses {
		if a := s.GetStatusMap()[st]; a != "approved" && a != "cancelled" {
			problems = append(problems, fmt.Sprintf("status-map: %s=%q must map to approved or cancelled", st, a))
		}
		if strings.ContainsAny(st, ".*> ") || st == "" {
			problems = append(problems, fmt.Sprintf("status-map: %q is not a subject token", st))
		}
	}
	if cnpj := s.GetMarketplaceCnpj(); cnpj != "" && len(cnpj) != 14 {
		problems = append(problems, "marketplace-cnpj must have 14 digits")
	}
	if len(problems) == 0 {
		return nil
	}
	return fmt.Errorf("invalid settings: %s", strings.Join(problems, "; "))
}
