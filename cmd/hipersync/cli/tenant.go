package cli

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/fieldmaskpb"

	"github.com/hipersync/hipersync/pkg/brokerclient"
	"github.com/hipersync/hipersync/pkg/config"
	adminv1 "github.com/hipersync/hipersync/pkg/gen/hipersync/admin/v1"
	brokerv1 "github.com/hipersync/hipersync/pkg/gen/hipersync/broker/v1"
	"github.com/hipersync/hipersync/pkg/tenant"
)

const tenantUsage = `usage:
  hipersync tenant connect <tenant> --key-file FILE   (FILE "-" reads stdin)
  hipersync tenant list
  hipersync tenant show <tenant>
  hipersync tenant pause | resume | disconnect <tenant>
  hipersync tenant credentials <tenant> [--out FILE] [--expires D] [--revoke]
  hipersync tenant settings <tenant> [--default-category S] [--default-brand S]
      [--update-images B] [--update-title B] [--update-dimensions B] [--update-description B]
      [--catalog-interval D] [--stock-interval D] [--payment-map METHOD=ID ...] [--quote USD=5.40 ...]
      [--guard-max-deactivate-percent N] [--guard-max-price-cuts N] [--order-watch-max-age D]
      [--marketplace-cnpj S] [--marketplace-name S] [--update-brand B] [--guard-min-products N]
      [--stock-sync on|off] [--stock-balance physical|available] [--status-map STATUS=approved|cancelled ...]
  A map flag (--payment-map, --quote, --status-map) changes the entries it names; KEY= removes one.`

func dialBroker(e Env) (*brokerclient.Client, error) {
	l := config.NewLoader(e.Getenv)
	common := l.LoadCommon()
	if err := l.Err(); err != nil {
		return nil, err
	}
	// The CLI manages tenants: its certificate carries the admin identity
	// (spiffe://hipersync/admin). Without one it calls in plaintext, which
	// only a dev run's token-broker answers.
	return brokerclient.DialTLS(common.TokenBrokerAddr, common.TokenBrokerTLS)
}

func (a *app) tenantCmd() *cobra.Command {
	var keyFile string
	var sf *settings
	sub := func(use, short string) *cobra.Command {
		name, _, _ := strings.Cut(use, " ")
		c := &cobra.Command{Use: use, Short: short}
		c.RunE = func(c *cobra.Command, pos []string) error { return a.runTenant(name, pos, c.Flags(), keyFile, sf) }
		return c
	}
	connect := sub("connect <tenant> --key-file FILE", "connect a store with its Hiper security key, or rotate the key")
	connect.Flags().StringVar(&keyFile, "key-file", "", "file holding the 64-character security key; - for stdin")
	settings := sub("settings <tenant>", "show a store's settings, or change those the flags name")
	sf = settingsFlags(settings.Flags())
	return group("tenant", "connect, list, show, pause, resume, disconnect stores; change their settings", tenantUsage,
		connect,
		sub("list", "every store with its state"),
		sub("show <tenant>", "a store's state and settings"),
		sub("pause <tenant>", "stop syncing a store until resumed"),
		sub("resume <tenant>", "sync a paused store again"),
		sub("disconnect <tenant>", "forget a store's key; its NATS credentials are revoked where possible"),
		settings,
		a.credentialsCmd())
}

// tenantReply is an admin API answer that carries the tenant it changed or
// read.
type tenantReply interface{ GetTenant() *brokerv1.Tenant }

// tenantOf is the tenant of an admin API answer, or the API's error as the
// CLI reports it.
func tenantOf[R tenantReply](resp R, err error) (*brokerv1.Tenant, error) {
	if err != nil {
		return nil, apiError(err)
	}
	return resp.GetTenant(), nil
}

func (a *app) runTenant(sub string, pos []string, fs *pflag.FlagSet, keyFile string, sf *settings) error {
	ctx, e := a.ctx, a.e
	wantArgs := 1
	if sub == "list" {
		wantArgs = 0
	}
	if len(pos) != wantArgs {
		return usagef("tenant %s: want %d argument(s), got %d\n%s", sub, wantArgs, len(pos), tenantUsage)
	}
	id := ""
	if wantArgs == 1 {
		id = pos[0]
	}

	// The key first: a command line without one needs no deployment.
	var key string
	if sub == "connect" {
		var err error
		if key, err = readKey(keyFile, e.Stdin); err != nil {
			return err
		}
	}

	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	c, err := a.admin(needs{broker: true})
	if err != nil {
		return err
	}
	defer c.Close()

	var t *brokerv1.Tenant
	switch sub {
	case "connect":
		t, err = tenantOf(c.ConnectTenant(ctx, &adminv1.ConnectTenantRequest{TenantId: id, SecurityKey: key}))
	case "show":
		t, err = tenantOf(c.GetTenant(ctx, &adminv1.GetTenantRequest{TenantId: id}))
	case "pause":
		t, err = tenantOf(c.PauseTenant(ctx, &adminv1.PauseTenantRequest{TenantId: id}))
	case "resume":
		t, err = tenantOf(c.ResumeTenant(ctx, &adminv1.ResumeTenantRequest{TenantId: id}))
	case "disconnect":
		if t, err = tenantOf(c.DisconnectTenant(ctx, &adminv1.DisconnectTenantRequest{TenantId: id})); err == nil {
			// A disconnected store keeps no NATS credentials either.
			err = revokeAfterDisconnect(ctx, e, c, id)
		}
	case "settings":
		req, rerr := sf.request(fs, id)
		switch {
		case rerr != nil:
			err = rerr
		case len(req.GetUpdateMask().GetPaths()) == 0:
			t, err = tenantOf(c.GetTenant(ctx, &adminv1.GetTenantRequest{TenantId: id}))
		default:
			t, err = tenantOf(c.UpdateTenantSettings(ctx, req))
		}
	case "list":
		resp, err := c.ListTenants(ctx, &adminv1.ListTenantsRequest{})
		if err != nil {
			return apiError(err)
		}
		if a.asJSON {
			return writeJSON(e.Stdout, resp)
		}
		return writeTenantTable(e.Stdout, resp.GetTenants())
	default:
		return usagef("tenant: unknown subcommand %q\n%s", sub, tenantUsage)
	}
	if err != nil {
		return err
	}
	if a.asJSON {
		return writeJSON(e.Stdout, t)
	}
	return writeTenant(e.Stdout, t)
}

func readKey(file string, stdin io.Reader) (string, error) {
	if file == "" {
		return "", usagef("tenant connect: --key-file is required (the key never goes on the command line)")
	}
	var b []byte
	var err error
	if file == "-" {
		b, err = io.ReadAll(io.LimitReader(stdin, 4096))
	} else {
		b, err = os.ReadFile(file)
	}
	if err != nil {
		return "", fmt.Errorf("read the security key: %w", err)
	}
	return strings.TrimSpace(string(b)), nil
}

type settings struct {
	s        brokerv1.TenantSettings
	payments pairs
	quotes   pairs
	statuses lowerPairs
	stock    onOff
	balance  string
	minimum  int
	catalog  durationFlag
	stockInt durationFlag
	watch    durationFlag
	percent  int
	cuts     int
}

// flagPaths maps each settings flag to its field in TenantSettings.
var flagPaths = map[string]string{
	"default-category": "default_category", "default-brand": "default_brand",
	"update-images": "update_images", "update-title": "update_title",
	"update-dimensions": "update_dimensions", "update-description": "update_description",
	"catalog-interval": "catalog_interval", "stock-interval": "stock_interval",
	"payment-map": "payment_map", "quote": "currency_quotes",
	"guard-max-deactivate-percent": "guard_max_deactivate_percent", "guard-max-price-cuts": "guard_max_price_cuts",
	"order-watch-max-age": "order_watch_max_age",
	"marketplace-cnpj":    "marketplace_cnpj", "marketplace-name": "marketplace_name",
	"update-brand": "update_brand", "guard-min-products": "guard_min_products",
	"stock-sync": "stock_sync_off", "stock-balance": "stock_balance", "status-map": "status_map",
}

// mapFlags are the settings flags that change the entries they name of a
// map, not the whole map.
var mapFlags = map[string]bool{"payment-map": true, "quote": true, "status-map": true}

func settingsFlags(fs *pflag.FlagSet) *settings {
	sf := &settings{payments: pairs{}, quotes: pairs{}, statuses: lowerPairs{}}
	fs.StringVar(&sf.s.DefaultCategory, "default-category", "", "category for products that have none in Hiper")
	fs.StringVar(&sf.s.DefaultBrand, "default-brand", "", "brand for products that have none in Hiper")
	fs.BoolVar(&sf.s.UpdateImages, "update-images", false, "updates carry images")
	fs.BoolVar(&sf.s.UpdateTitle, "update-title", false, "updates carry the title")
	fs.BoolVar(&sf.s.UpdateDimensions, "update-dimensions", false, "updates carry weight and dimensions")
	fs.BoolVar(&sf.s.UpdateDescription, "update-description", false, "updates carry the description")
	fs.Var(&sf.catalog, "catalog-interval", "catalog poll interval (default 5m)")
	fs.Var(&sf.stockInt, "stock-interval", "stock poll interval (default 60s)")
	fs.Var(&sf.watch, "order-watch-max-age", "how long an order is followed in Hiper (default 720h)")
	fs.Var(sf.payments, "payment-map", "METHOD=ID, repeatable")
	fs.Var(sf.quotes, "quote", "CURRENCY=BRL value, repeatable")
	fs.IntVar(&sf.percent, "guard-max-deactivate-percent", 0, "guardrail: share of products one poll may deactivate (default 20)")
	fs.IntVar(&sf.cuts, "guard-max-price-cuts", 0, "guardrail: prices one poll may cut by over half (default 50)")
	fs.StringVar(&sf.s.MarketplaceCnpj, "marketplace-cnpj", "", "marketplace CNPJ sent with orders (Santa Catarina)")
	fs.StringVar(&sf.s.MarketplaceName, "marketplace-name", "", "marketplace name sent with orders")
	seedSettingsFlags(fs, sf)
	return sf
}

// seedSettingsFlags are the settings the seeds name beyond the first ones:
// update-brand beside seed 000's switches, the guardrail's minimum, seed
// 004's stock switch, the balance of seeds 003/004, and the store status map
// of seeds 002/004.
func seedSettingsFlags(fs *pflag.FlagSet, sf *settings) {
	fs.BoolVar(&sf.s.UpdateBrand, "update-brand", false, "updates carry the brand (it always goes with the first upsert that has one)")
	fs.IntVar(&sf.minimum, "guard-min-products", 0, "guardrail: catalogues smaller than this are never held (default 20)")
	fs.Var(&sf.stock, "stock-sync", "on or off: publish stock (default on)")
	fs.StringVar(&sf.balance, "stock-balance", "", "physical or available (quantity minus reserved) (default physical)")
	fs.Var(sf.statuses, "status-map", "STORE_STATUS=approved|cancelled, repeatable; STATUS= removes one")
}

// onOff is an on|off flag.
type onOff struct{ off, set bool }

func (f *onOff) String() string { return map[bool]string{false: "on", true: "off"}[f.off] }

func (f *onOff) Type() string { return "on|off" }

func (f *onOff) Set(v string) error {
	switch strings.ToLower(v) {
	case "on", "true", "yes":
		f.off = false
	case "off", "false", "no":
		f.off = true
	default:
		return fmt.Errorf("want on or off")
	}
	f.set = true
	return nil
}

// lowerPairs is a repeatable key=value flag of lowercase names (store
// statuses); an empty value removes the key.
type lowerPairs map[string]string

func (p lowerPairs) String() string { return pairs(p).String() }

func (p lowerPairs) Type() string { return "STATUS=ACTION" }

func (p lowerPairs) Set(v string) error {
	for _, item := range strings.Split(v, ",") {
		k, val, ok := strings.Cut(strings.TrimSpace(item), "=")
		if !ok || strings.TrimSpace(k) == "" {
			return fmt.Errorf("want STATUS=approved|cancelled, got %q", item)
		}
		p[strings.ToLower(strings.TrimSpace(k))] = strings.ToLower(strings.TrimSpace(val))
	}
	return nil
}

// seedSettings fills the seed settings into s and names their paths.
func (sf *settings) seedSettings(s *brokerv1.TenantSettings) error {
	s.GuardMinProducts = int32(sf.minimum)
	s.StockSyncOff = sf.stock.off
	switch strings.ToLower(sf.balance) {
	case "", "physical":
		s.StockBalance = brokerv1.StockBalance_STOCK_BALANCE_UNSPECIFIED
	case "available":
		s.StockBalance = brokerv1.StockBalance_STOCK_BALANCE_AVAILABLE
	default:
		return usagef("--stock-balance %s: want physical or available", sf.balance)
	}
	return nil
}

// mapEntries names, as mask paths, the entries a map flag changes, and sets
// the ones it gives a value in m (set).
func mapEntries(field string, given map[string]string, set func(k, v string) error) ([]string, error) {
	var paths []string
	for k, v := range given {
		paths = append(paths, field+"."+k)
		if v == "" {
			continue
		}
		if err := set(k, v); err != nil {
			return nil, err
		}
	}
	sort.Strings(paths)
	return paths, nil
}

func (sf *settings) request(fs *pflag.FlagSet, id string) (*adminv1.UpdateTenantSettingsRequest, error) {
	mask := &fieldmaskpb.FieldMask{}
	fs.Visit(func(f *pflag.Flag) {
		if p, ok := flagPaths[f.Name]; ok && !mapFlags[f.Name] {
			mask.Paths = append(mask.Paths, p)
		}
	})
	s := &sf.s
	if err := sf.seedSettings(s); err != nil {
		return nil, err
	}
	if sf.catalog.set {
		s.CatalogInterval = durationpb.New(sf.catalog.d)
	}
	if sf.stockInt.set {
		s.StockInterval = durationpb.New(sf.stockInt.d)
	}
	if sf.watch.set {
		s.OrderWatchMaxAge = durationpb.New(sf.watch.d)
	}
	s.GuardMaxDeactivatePercent = int32(sf.percent)
	s.GuardMaxPriceCuts = int32(sf.cuts)
	s.PaymentMap, s.CurrencyQuotes, s.StatusMap = map[string]int32{}, map[string]string{}, map[string]string{}
	payments, err := mapEntries("payment_map", sf.payments, func(m, v string) error {
		id, err := strconv.Atoi(v)
		if err != nil {
			return usagef("--payment-map %s=%s: the Hiper id must be a number", m, v)
		}
		s.PaymentMap[m] = int32(id)
		return nil
	})
	if err != nil {
		return nil, err
	}
	quotes, _ := mapEntries("currency_quotes", sf.quotes, func(k, v string) error { s.CurrencyQuotes[k] = v; return nil })
	statuses, _ := mapEntries("status_map", sf.statuses, func(k, v string) error { s.StatusMap[k] = v; return nil })
	mask.Paths = append(append(append(mask.Paths, payments...), quotes...), statuses...)
	return &adminv1.UpdateTenantSettingsRequest{TenantId: id, Settings: s, UpdateMask: mask}, nil
}

type durationFlag struct {
	d   time.Duration
	set bool
}

func (f *durationFlag) String() string {
	if !f.set {
		return "" // no default printed: the tenant's is kept
	}
	return f.d.String()
}

func (f *durationFlag) Type() string { return "duration" }

func (f *durationFlag) Set(v string) error {
	d, err := time.ParseDuration(v)
	if err != nil {
		return fmt.Errorf("want a duration such as 90s or 5m")
	}
	f.d, f.set = d, true
	return nil
}

var jsonOut = protojson.MarshalOptions{Indent: "  "}

// writeJSON prints v: protojson for API messages, encoding/json otherwise.
func writeJSON(w io.Writer, v any) error {
	if m, ok := v.(proto.Message); ok {
		b, err := jsonOut.Marshal(m)
		if err != nil {
			return err
		}
		_, err = fmt.Fprintln(w, string(b))
		return err
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

func writeTenantTable(w io.Writer, ts []*brokerv1.Tenant) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "TENANT\tSTATE\tSINCE\tREASON")
	for _, t := range ts {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", t.GetTenantId(), tenant.StateName(t.GetState()),
			t.GetStateChangedAt().AsTime().Format(time.RFC3339), cmp.Or(t.GetStateReasonCode(), t.GetStateReason()))
	}
	return tw.Flush()
}

func writeTenant(w io.Writer, t *brokerv1.Tenant) error {
	s := tenant.SettingsOf(t.GetSettings())
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	row := func(k string, v any) { fmt.Fprintf(tw, "%s\t%v\n", k, v) }
	row("tenant", t.GetTenantId())
	row("state", tenant.StateName(t.GetState()))
	row("since", t.GetStateChangedAt().AsTime().Format(time.RFC3339))
	if r := t.GetStateReason(); r != "" {
		row("reason", reasonText(r, t.GetStateReasonCode()))
	}
	row("default category", orNone(s.GetDefaultCategory()))
	row("default brand", orNone(s.GetDefaultBrand()))
	row("update images/title/dimensions/description", fmt.Sprintf("%v/%v/%v/%v", s.GetUpdateImages(), s.GetUpdateTitle(), s.GetUpdateDimensions(), s.GetUpdateDescription()))
	row("catalog interval", s.CatalogInterval())
	row("stock interval", s.StockInterval())
	row("order watch max age", s.OrderWatchMaxAge())
	row("guardrail", fmt.Sprintf("hold above %d%% deactivated or %d prices halved", s.GuardMaxDeactivatePercent(), s.GuardMaxPriceCuts()))
	row("payment map", paymentMap(s))
	if q := pairs(s.GetCurrencyQuotes()); len(q) > 0 {
		row("quotes", q.String())
	}
	if s.GetMarketplaceCnpj() != "" {
		row("marketplace", s.GetMarketplaceCnpj()+" "+s.GetMarketplaceName())
	}
	row("update brand", s.GetUpdateBrand())
	row("guardrail minimum catalogue", s.GuardMinProducts())
	row("stock sync", map[bool]string{false: "on", true: "off"}[s.GetStockSyncOff()])
	row("stock balance", tenant.StockBalanceName(s.GetStockBalance()))
	if m := pairs(s.GetStatusMap()); len(m) > 0 {
		row("status map", m.String())
	}
	return tw.Flush()
}

func paymentMap(s tenant.Settings) string {
	var parts []string
	for _, m := range []string{"BOLETO", "CASH", "CHEQUE", "CREDIT_CARD", "DEBIT_CARD", "PIX", "STORE_CREDIT", "VOUCHER"} {
		id, _ := s.PaymentID(m)
		parts = append(parts, fmt.Sprintf("%s=%d", m, id))
	}
	return strings.Join(parts, " ")
}

func orNone(s string) string {
	if s == "" {
		return "(none)"
	}
	return s
}

// reasonText is a reason a merchant reads followed by its code, for support.
func reasonText(text, code string) string {
	if code == "" {
		return text
	}
	return text + " [" + code + "]"
}
