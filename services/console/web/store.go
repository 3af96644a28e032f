package web

import (
	"errors"
	"fmt"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/fieldmaskpb"

	adminv1 "github.com/hipersync/hipersync/pkg/gen/hipersync/admin/v1"
	brokerv1 "github.com/hipersync/hipersync/pkg/gen/hipersync/broker/v1"
	"github.com/hipersync/hipersync/pkg/tenant"
	"github.com/hipersync/hipersync/services/order-forwarder/orders"
)

type syncCell struct {
	Kind, Text, Class, Error string
	Published                int64
}

type settingsView struct {
	DefaultCategory, DefaultBrand string
	Catalog, Stock                string
	Payments, Quotes              string
	GuardPercent, GuardCuts       int
}

type switchView struct {
	Name, Label string
	On          bool
}

type storeData struct {
	Tenant   *brokerv1.Tenant
	State    string
	Syncs    []syncCell
	Held     []string
	Settings settingsView
	Switches []switchView
	Orders   []*adminv1.Order
	// OrdersTotal is how many orders match, shown or not.
	OrdersTotal            int32
	OrderStates            []string
	OrderState, OrderQuery string
}

// paymentMethods are the store payment methods the settings form lists.
var paymentMethods = []string{"BOLETO", "CASH", "CHEQUE", "CREDIT_CARD", "DEBIT_CARD", "PIX", "STORE_CREDIT", "VOUCHER"}

// switches are seed 000's "update products already published" switches:
// form field, label, and the settings field (its mask path).
var switches = []struct {
	name, label, path string
	get               func(*brokerv1.TenantSettings) bool
	set               func(*brokerv1.TenantSettings, bool)
}{
	{"update_images", "set.images", "update_images", (*brokerv1.TenantSettings).GetUpdateImages, func(s *brokerv1.TenantSettings, v bool) { s.UpdateImages = v }},
	{"update_title", "set.title", "update_title", (*brokerv1.TenantSettings).GetUpdateTitle, func(s *brokerv1.TenantSettings, v bool) { s.UpdateTitle = v }},
	{"update_dimensions", "set.dimensions", "update_dimensions", (*brokerv1.TenantSettings).GetUpdateDimensions, func(s *brokerv1.TenantSettings, v bool) { s.UpdateDimensions = v }},
	{"update_description", "set.description", "update_description", (*brokerv1.TenantSettings).GetUpdateDescription, func(s *brokerv1.TenantSettings, v bool) { s.UpdateDescription = v }},
	{"update_brand", "set.brandupdate", "update_brand", (*brokerv1.TenantSettings).GetUpdateBrand, func(s *brokerv1.TenantSettings, v bool) { s.UpdateBrand = v }},
	{"stock_sync", "set.stocksync", "stock_sync_off", func(s *brokerv1.TenantSettings) bool { return !s.GetStockSyncOff() }, func(s *brokerv1.TenantSettings, v bool) { s.StockSyncOff = !v }},
}

func (w *Web) store(q *req) (string, string, string, any, error) {
	id := q.r.PathValue("tenant")
	if id == "" {
		id = q.p.Tenant
	}
	title := fmt.Sprintf(q.t("store.title"), id)
	tr, err := w.d.Admin.GetTenant(q.ctx, &adminv1.GetTenantRequest{TenantId: id})
	if err != nil {
		return "store", "stores", title, nil, err
	}
	t := tr.GetTenant()
	d := storeData{Tenant: t, State: tenant.StateName(t.GetState()), OrderStates: stateNames(),
		OrderState: q.r.URL.Query().Get("ostate"), OrderQuery: q.r.URL.Query().Get("oq")}
	st, err := w.d.Admin.GetStatus(q.ctx, &adminv1.GetStatusRequest{TenantId: id})
	if err == nil && len(st.GetTenants()) == 1 {
		byKind := map[string]*adminv1.SyncStatus{}
		for _, s := range st.GetTenants()[0].GetSyncs() {
			byKind[s.GetKind()] = s
			if s.GetHeld() != "" {
				d.Held = append(d.Held, s.GetKind()+": "+s.GetHeld())
			}
		}
		for _, k := range syncKinds {
			s := byKind[k]
			c := freshness(q.lang, s, w.now())
			sc := syncCell{Kind: k, Text: c.Text, Class: c.Class, Published: s.GetItemsPublished()}
			if s.GetLastError() != "" && s.GetLastErrorAt().AsTime().After(s.GetLastSuccessAt().AsTime()) {
				sc.Error = s.GetLastError()
			}
			d.Syncs = append(d.Syncs, sc)
		}
	}
	s := t.GetSettings()
	eff := tenant.SettingsOf(s)
	d.Settings = settingsView{DefaultCategory: s.GetDefaultCategory(), DefaultBrand: s.GetDefaultBrand(),
		Catalog: shortDuration(eff.CatalogInterval()), Stock: shortDuration(eff.StockInterval()),
		GuardPercent: eff.GuardMaxDeactivatePercent(), GuardCuts: eff.GuardMaxPriceCuts()}
	var pay []string
	for _, m := range paymentMethods {
		id, _ := eff.PaymentID(m)
		pay = append(pay, fmt.Sprintf("%s=%d", m, id))
	}
	d.Settings.Payments = strings.Join(pay, "\n")
	var quotes []string
	for c, v := range s.GetCurrencyQuotes() {
		quotes = append(quotes, c+"="+v)
	}
	sort.Strings(quotes)
	d.Settings.Quotes = strings.Join(quotes, "\n")
	for _, sw := range switches {
		d.Switches = append(d.Switches, switchView{Name: sw.name, Label: sw.label, On: sw.get(s)})
	}
	ol, err := w.d.Admin.ListOrders(q.ctx, &adminv1.ListOrdersRequest{TenantId: id, State: d.OrderState, Query: d.OrderQuery, Limit: 50})
	if err != nil {
		return "store", "stores", title, d, err
	}
	d.Orders, d.OrdersTotal = ol.GetOrders(), ol.GetTotal()
	return "store", "stores", title, d, nil
}

func stateNames() []string {
	out := make([]string, 0, len(orders.States))
	for _, s := range orders.States {
		out = append(out, string(s))
	}
	return out
}

func (w *Web) storeAction(q *req) (string, string, error) {
	id := q.r.PathValue("tenant")
	back := "/stores/" + id
	var err error
	ok := ""
	switch q.r.PathValue("action") {
	case "sync":
		var resp *adminv1.SyncNowResponse
		resp, err = w.d.Admin.SyncNow(q.ctx, &adminv1.SyncNowRequest{TenantId: id, Full: q.r.PostForm.Get("full") == "1"})
		if err == nil {
			var kinds []string
			for _, r := range resp.GetResults() {
				kinds = append(kinds, q.t("col."+r.GetKind()))
			}
			ok = fmt.Sprintf(q.t("store.synced"), strings.Join(kinds, ", "))
		}
	case "approve":
		_, err = w.d.Admin.ApproveHeldChange(q.ctx, &adminv1.ApproveHeldChangeRequest{TenantId: id})
		ok = q.t("store.approved")
	case "settings":
		var req *adminv1.UpdateTenantSettingsRequest
		if req, err = settingsRequest(id, q); err == nil {
			_, err = w.d.Admin.UpdateTenantSettings(q.ctx, req)
		}
		ok = q.t("store.saved")
	case "connect":
		_, err = w.d.Admin.ConnectTenant(q.ctx, &adminv1.ConnectTenantRequest{TenantId: id, SecurityKey: q.r.PostForm.Get("security_key")})
		ok = q.t("store.connected")
	case "pause":
		_, err = w.d.Admin.PauseTenant(q.ctx, &adminv1.PauseTenantRequest{TenantId: id})
		ok = q.t("state.paused")
	case "resume":
		_, err = w.d.Admin.ResumeTenant(q.ctx, &adminv1.ResumeTenantRequest{TenantId: id})
		ok = q.t("state.active")
	default:
		err = errors.New("unknown action")
	}
	w.invalidate()
	return back, ok, err
}

// settingsRequest reads the settings form: every field it shows is set.
func settingsRequest(id string, q *req) (*adminv1.UpdateTenantSettingsRequest, error) {
	f := q.r.PostForm
	s := &brokerv1.TenantSettings{DefaultCategory: strings.TrimSpace(f.Get("default_category")), DefaultBrand: strings.TrimSpace(f.Get("default_brand"))}
	paths := []string{"default_category", "default_brand"}
	for _, sw := range switches {
		if v := f.Get(sw.name); v != "" {
			sw.set(s, v == "true")
			paths = append(paths, sw.path)
		}
	}
	for _, iv := range []struct {
		name string
		set  func(*durationpb.Duration)
	}{
		{"catalog_interval", func(d *durationpb.Duration) { s.CatalogInterval = d }},
		{"stock_interval", func(d *durationpb.Duration) { s.StockInterval = d }},
	} {
		if v := strings.TrimSpace(f.Get(iv.name)); v != "" {
			d, err := time.ParseDuration(v)
			if err != nil {
				return nil, fmt.Errorf("%s: %q %s", q.t("set."+strings.TrimSuffix(iv.name, "_interval")), v, q.t("set.interval.help"))
			}
			iv.set(durationpb.New(d))
			paths = append(paths, iv.name)
		}
	}
	pay, err := pairs(f.Get("payment_map"))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", q.t("set.payments"), err)
	}
	s.PaymentMap = map[string]int32{}
	for m, v := range pay {
		n, err := strconv.Atoi(v)
		if err != nil {
			return nil, fmt.Errorf("%s: %s=%s", q.t("set.payments"), m, v)
		}
		s.PaymentMap[m] = int32(n)
	}
	quotes, err := pairs(f.Get("currency_quotes"))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", q.t("set.quotes"), err)
	}
	s.CurrencyQuotes = quotes
	paths = append(paths, "payment_map", "currency_quotes")
	for _, g := range []struct {
		name string
		set  func(int32)
	}{
		{"guard_max_deactivate_percent", func(n int32) { s.GuardMaxDeactivatePercent = n }},
		{"guard_max_price_cuts", func(n int32) { s.GuardMaxPriceCuts = n }},
	} {
		if v := strings.TrimSpace(f.Get(g.name)); v != "" {
			n, err := strconv.Atoi(v)
			if err != nil {
				return nil, fmt.Errorf("%s: %q", g.name, v)
			}
			g.set(int32(n))
			paths = append(paths, g.name)
		}
	}
	return &adminv1.UpdateTenantSettingsRequest{TenantId: id, Settings: s, UpdateMask: &fieldmaskpb.FieldMask{Paths: paths}}, nil
}

// pairs reads KEY=VALUE lines (or comma-separated pairs).
func pairs(text string) (map[string]string, error) {
	out := map[string]string{}
	for _, item := range strings.FieldsFunc(text, func(r rune) bool { return r == '\n' || r == ',' || r == ';' }) {
		item = strings.TrimSpace(item)
		if item == "" {
			continue
		}
		k, v, ok := strings.Cut(item, "=")
		if !ok || strings.TrimSpace(k) == "" || strings.TrimSpace(v) == "" {
			return nil, fmt.Errorf("%q: KEY=VALUE", item)
		}
		out[strings.ToUpper(strings.TrimSpace(k))] = strings.TrimSpace(v)
	}
	return out, nil
}

type step struct {
	ISO, When, Step, Label, By, Note string
}

type orderData struct {
	Order  *adminv1.Order
	Review bool
	// Failed: Hiper processed the order with an error; it may be resent.
	Failed   bool
	ReasonPT string
	Steps    []step
}

func (w *Web) order(q *req) (string, string, string, any, error) {
	id, oid := q.r.PathValue("tenant"), q.r.PathValue("order")
	title := fmt.Sprintf(q.t("order.title"), oid)
	resp, err := w.d.Admin.GetOrder(q.ctx, &adminv1.GetOrderRequest{TenantId: id, OrderId: oid})
	if err != nil {
		return "order", "stores", title, nil, err
	}
	o := resp.GetOrder()
	d := orderData{Order: o, Review: slices.Contains(o.GetActions(), "resolve"), ReasonPT: o.GetReason(),
		Failed: o.GetHiperFailedAt() != nil && slices.Contains(o.GetActions(), "resend")}
	for _, e := range o.GetTimeline() {
		label := e.GetStep()
		if has("step." + label) {
			label = q.t("step." + label)
		} else if has("ostate." + label) {
			label = q.t("ostate." + label)
		}
		at := e.GetAt().AsTime()
		d.Steps = append(d.Steps, step{ISO: at.UTC().Format(time.RFC3339), When: when(e.GetAt()), Step: e.GetStep(), Label: label, By: e.GetBy(), Note: e.GetNote()})
	}
	return "order", "stores", title, d, nil
}

func (w *Web) resolve(q *req) (string, string, error) {
	id, oid := q.r.PathValue("tenant"), q.r.PathValue("order")
	r := &adminv1.ResolveOrderRequest{TenantId: id, OrderId: oid}
	if q.r.PostForm.Get("resend") == "1" {
		r.Resolution = &adminv1.ResolveOrderRequest_Resend{Resend: true}
	} else {
		r.Resolution = &adminv1.ResolveOrderRequest_HiperOrderId{HiperOrderId: strings.TrimSpace(q.r.PostForm.Get("hiper_order_id"))}
	}
	_, err := w.d.Admin.ResolveOrder(q.ctx, r)
	w.invalidate()
	return "/stores/" + id + "/orders/" + oid, q.t("order.resolved"), err
}
