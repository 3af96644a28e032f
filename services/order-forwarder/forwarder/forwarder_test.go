package forwarder

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/shopspring/decimal"

	"github.com/hipersync/hipersync/pkg/catalog"
	"github.com/hipersync/hipersync/pkg/events"
	brokerv1 "github.com/hipersync/hipersync/pkg/gen/hipersync/broker/v1"
	eventsv1 "github.com/hipersync/hipersync/pkg/gen/hipersync/events/v1"
	"github.com/hipersync/hipersync/pkg/hipersim"
	"github.com/hipersync/hipersync/pkg/testkit"
	"github.com/hipersync/hipersync/services/order-forwarder/orders"
)

const wait = 20 * time.Second

// TestForwardsAnOrder follows one order by barcode and one by id, in
// another currency, from the store's event to Hiper and back.
func TestForwardsAnOrder(t *testing.T) {
	t.Parallel()
	h := newHarness(t, harnessOptions{settings: &brokerv1.TenantSettings{
		CurrencyQuotes: map[string]string{"USD": "5.00"}, PaymentMap: map[string]int32{"PIX": 17},
	}})
	h.forwarder(testConfig(), "r1")
	p := h.products["acme"]
	if err := catalog.Put(context.Background(), h.index, "acme", p[1].Barcode, p[1].ID); err != nil {
		t.Fatal(err)
	}
	o := h.order("acme", "1001", 1)
	o.Items = append(o.Items, &eventsv1.OrderItem{Ean: p[1].Barcode, Quantity: "2", UnitPrice: "10.00"})
	o.Payments[0].Amount = p[0].Price.Round(2).Add(decimal.NewFromInt(20)).StringFixed(2)
	o.Currency = "USD"
	h.approve("acme", o, "store-1001")

	acc := h.waitEvent(events.KindOrderAccepted, "1001", wait).(*eventsv1.OrderAccepted)
	got := h.simOrders("acme", "1001")
	if len(got) != 1 || got[0].ID != acc.GetHiperOrderId() {
		t.Fatalf("hiper has %d orders for 1001 (%+v), accepted says %s", len(got), got, acc.GetHiperOrderId())
	}
	body := got[0].Body
	if body.Items[1].ProductID != p[1].ID || body.Items[1].NetUnitPrice.String() != "50" || body.Payments[0].MethodID != 17 {
		t.Errorf("Hiper got %+v", body)
	}
	if body.Customer.Document != "52998224725" || body.ShippingAddress.PostalCode != "88351001" {
		t.Errorf("Hiper got customer %+v", body.Customer)
	}
	rec := h.waitState("acme", "1001", orders.StateAccepted, wait)
	if rec.HiperOrderID != acc.GetHiperOrderId() || rec.Attempts != 1 {
		t.Errorf("record %+v", rec)
	}
	want := []orders.State{orders.StateReceived, orders.StateSending, orders.StateAccepted}
	var path []orders.State
	for _, tr := range rec.History {
		path = append(path, tr.To)
	}
	if !slices.Equal(path, want) {
		t.Errorf("history %v, want %v", path, want)
	}
}

// TestRejectedOrdersNeverReachHiper sends orders that break rules and
// checks that each is rejected with every problem and Hiper hears nothing.
func TestRejectedOrdersNeverReachHiper(t *testing.T) {
	t.Parallel()
	h := newHarness(t, harnessOptions{})
	h.forwarder(testConfig(), "r1")
	bad := map[string]func(o *eventsv1.StoreOrderApproved){
		"doc":      func(o *eventsv1.StoreOrderApproved) { o.Customer.Document = "12345678900" },
		"currency": func(o *eventsv1.StoreOrderApproved) { o.Currency = "USD" },
		"payment":  func(o *eventsv1.StoreOrderApproved) { o.Payments[0].Method = "CRYPTO"; o.Payments[0].Amount = "1.00" },
		"ean":      func(o *eventsv1.StoreOrderApproved) { o.Items[0].ProductId, o.Items[0].Ean = "", "7890000000000" },
		"empty":    func(o *eventsv1.StoreOrderApproved) { o.Items = nil; o.Customer = nil },
	}
	for id, change := range bad {
		o := h.order("acme", id, 1)
		change(o)
		h.approve("acme", o, "store-"+id)
	}
	wantCodes := map[string][]string{
		"doc":      {"invalid_document"},
		"currency": {"unsupported_currency"},
		"payment":  {"unknown_payment_method", "payment_mismatch"},
		"ean":      {"unknown_product"},
		"empty":    {"required", "required", "required", "no_items"},
	}
	for id, want := range wantCodes {
		rej := h.waitEvent(events.KindOrderRejected, id, wait).(*eventsv1.OrderRejected)
		var codes []string
		for _, r := range rej.GetReasons() {
			codes = append(codes, r.GetCode())
			if r.GetMessage() == "" {
				t.Errorf("%s: reason %s without message", id, r.GetCode())
			}
		}
		if !slices.Equal(codes, want) {
			t.Errorf("order %s rejected with %v, want %v", id, codes, want)
		}
		h.waitState("acme", id, orders.StateRejected, wait)
	}
	if n := h.posted(); n != 0 {
		t.Fatalf("Hiper received %d create calls for invalid orders", n)
	}
	if tok := h.st.Sim.Sim.Stats().TokensIssued[h.st.Keys["acme"]]; tok > 1 {
		t.Errorf("%d tokens issued for orders that never went out", tok)
	}
}

// TestHiperRefusal: a well-formed product id Hiper does not know is refused
// with status 200 and errors; the merchant gets Hiper's own text.
func TestHiperRefusal(t *testing.T) {
	t.Parallel()
	h := newHarness(t, harnessOptions{})
	h.forwarder(testConfig(), "r1")
	o := h.order("acme", "2001", 2)
	o.Items[1].ProductId = "00000000-0000-4000-8000-000000000001"
	h.approve("acme", o, "store-2001")
	rej := h.waitEvent(events.KindOrderRejected, "2001", wait).(*eventsv1.OrderRejected)
	r := rej.GetReasons()
	if len(r) != 1 || r[0].GetCode() != "hiper_rejected" || r[0].GetField() != "items[1].productId" ||
		!strings.Contains(r[0].GetMessage(), "não encontrado") {
		t.Fatalf("reasons %v", r)
	}
	if n := h.posted(); n != 1 {
		t.Errorf("%d create calls, want 1 (a refusal is not retried)", n)
	}
	if len(h.simOrders("acme", "2001")) != 0 {
		t.Error("a refused order exists in Hiper")
	}
}

// TestDuplicatesAreNoOps publishes one order four times: twice with one
// message id (dropped by the stream), twice with others (seen by the
// forwarder), the last long after the first was settled.
func TestDuplicatesAreNoOps(t *testing.T) {
	t.Parallel()
	h := newHarness(t, harnessOptions{})
	h.forwarder(testConfig(), "r1")
	o := h.order("acme", "3001", 1)
	h.approve("acme", o, "store-3001")
	h.approve("acme", o, "store-3001")
	h.approve("acme", o, "store-3001-again")
	h.waitState("acme", "3001", orders.StateAccepted, wait)
	h.approve("acme", o, "store-3001-later")
	// The last duplicate is handled once the consumer has acked everything.
	testkit.WaitFor(t, wait, "every approval handled", func() bool { return h.pending() == 0 })
	if got := h.simOrders("acme", "3001"); len(got) != 1 {
		t.Fatalf("Hiper has %d orders for 3001, want 1", len(got))
	}
	if n := len(h.seen.of(events.KindOrderAccepted, "3001")); n != 1 {
		t.Fatalf("%d order.accepted events, want 1", n)
	}
}

// TestOddOrderIDs: a store's order id is any string; each is its own
// record and reaches Hiper unchanged.
func TestOddOrderIDs(t *testing.T) {
	t.Parallel()
	h := newHarness(t, harnessOptions{})
	h.forwarder(testConfig(), "r1")
	ids := []string{"a.b", "a=2Eb", "*", ">", "PED 12/3", "pedido#ção", "A.B", strings.Repeat("x.", 150), strings.Repeat("x.", 150) + "y"}
	for i, id := range ids {
		h.approve("acme", h.order("acme", id, 1), fmt.Sprintf("store-odd-%d", i))
	}
	for _, id := range ids {
		h.waitState("acme", id, orders.StateAccepted, wait)
		if got := h.simOrders("acme", id); len(got) != 1 {
			t.Errorf("order %q: %d in Hiper", id, len(got))
		}
	}
	list, err := h.state.List(context.Background(), "acme")
	if err != nil || len(list) != len(ids) {
		t.Fatalf("List: %d records, %v", len(list), err)
	}
}

// TestTwoReplicas shares one stream between two replicas; each order
// reaches Hiper once.
func TestTwoReplicas(t *testing.T) {
	t.Parallel()
	h := newHarness(t, harnessOptions{tenants: []string{"acme", "beta"}})
	h.forwarder(testConfig(), "r1")
	h.forwarder(testConfig(), "r2")
	const n = 100
	for i := range n {
		tenant := []string{"acme", "beta"}[i%2]
		o := h.order(tenant, fmt.Sprintf("R%d", i), 1+i%3)
		h.approve(tenant, o, fmt.Sprintf("store-R%d", i))
		if i%10 == 0 { // a duplicate with another message id
			h.approve(tenant, o, fmt.Sprintf("store-R%d-dup", i))
		}
	}
	testkit.WaitFor(t, wait, "every order accepted", func() bool { return h.seen.count(events.KindOrderAccepted) >= n })
	owners := map[string]int{}
	for i := range n {
		tenant := []string{"acme", "beta"}[i%2]
		id := fmt.Sprintf("R%d", i)
		if got := h.simOrders(tenant, id); len(got) != 1 {
			t.Errorf("order %s: %d in Hiper", id, len(got))
		}
		rec := h.record(tenant, id)
		owners[rec.History[len(rec.History)-1].By]++
	}
	if h.posted() != n {
		t.Errorf("%d create calls for %d orders", h.posted(), n)
	}
	if len(owners) != 2 {
		t.Logf("only one replica took orders: %v", owners)
	}
}

// pending is how many order events the forwarder has not acked yet.
func (h *harness) pending() int {
	ctx := context.Background()
	cons, err := h.st.JS.Consumer(ctx, h.st.NS.Stream(events.StreamStore), ConsumerName)
	if err != nil {
		return -1
	}
	info, err := cons.Info(ctx)
	if err != nil {
		return -1
	}
	return int(info.NumPending) + info.NumAckPending
}

// TestUntrackableEvents: an event that cannot be read, or names no order,
// goes to the dead letters with its reason; the next order is not held up.
func TestUntrackableEvents(t *testing.T) {
	t.Parallel()
	h := newHarness(t, harnessOptions{})
	h.forwarder(testConfig(), "r1")
	ctx := context.Background()
	msg := nats.NewMsg(h.st.NS.StoreSubject("acme", events.KindOrderApproved))
	msg.Header.Set(events.HeaderContentType, events.ContentTypeJSON)
	msg.Data = []byte(`{"orderId": 1001,`)
	if _, err := h.st.JS.PublishMsg(ctx, msg); err != nil {
		t.Fatal(err)
	}
	o := h.order("acme", "", 1)
	h.approve("acme", o, "store-no-id")
	h.cancel("acme", "", "store-no-id-cancel")
	h.approve("acme", h.order("acme", "1101", 1), "store-1101")
	h.exactlyOnce("acme", []string{"1101"})
	var dl []events.DeadLetterEntry
	testkit.WaitFor(t, wait, "three dead letters", func() bool { dl = h.deadLetters(); return len(dl) == 3 })
	var codes []string
	for _, d := range dl {
		codes = append(codes, d.Letter.GetReasonCode())
	}
	slices.Sort(codes)
	if !slices.Equal(codes, []string{"malformed_payload", "missing_order_id", "missing_order_id"}) {
		t.Fatalf("dead letters %v", codes)
	}
}

// TestOrdersMetric: "received" counts orders, whatever their retries, so
// that it can be the denominator of a failure rate.
func TestOrdersMetric(t *testing.T) {
	t.Parallel()
	h := newHarness(t, harnessOptions{})
	cfg := testConfig()
	cfg.MaxAttempts = 100
	cfg.CircuitThreshold = 1000
	f := h.forwarder(cfg, "r1")
	h.st.Sim.Sim.SetFaults(failing(503))
	h.approve("acme", h.order("acme", "1201", 1), "store-1201")
	testkit.WaitFor(t, wait, "retries", func() bool {
		rec, _, err := h.state.Get(context.Background(), "acme", "1201")
		return err == nil && rec.Attempts >= 3
	})
	h.st.Sim.Sim.SetFaults(hipersim.Faults{})
	h.approve("acme", h.order("acme", "1202", 1), "store-1202")
	h.exactlyOnce("acme", []string{"1201", "1202"})
	count := func(s orders.State) int {
		return int(testutil.ToFloat64(f.metrics.transitions.WithLabelValues(string(s))))
	}
	if count(orders.StateReceived) != 2 || count(orders.StateAccepted) != 2 || count(orders.StateSending) < 4 {
		t.Errorf("received %d, accepted %d, sending %d", count(orders.StateReceived), count(orders.StateAccepted), count(orders.StateSending))
	}
}
