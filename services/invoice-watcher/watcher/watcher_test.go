package watcher_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/hipersync/hipersync/pkg/config"
	"github.com/hipersync/hipersync/pkg/events"
	brokerv1 "github.com/hipersync/hipersync/pkg/gen/hipersync/broker/v1"
	eventsv1 "github.com/hipersync/hipersync/pkg/gen/hipersync/events/v1"
	"github.com/hipersync/hipersync/pkg/hiper"
	"github.com/hipersync/hipersync/pkg/ops"
	"github.com/hipersync/hipersync/pkg/syncstatus"
	"github.com/hipersync/hipersync/pkg/testkit"
	"github.com/hipersync/hipersync/services/invoice-watcher/order"
	"github.com/hipersync/hipersync/services/invoice-watcher/watcher"
)

// An order invoiced, then shipped, across several polls: each event once,
// with what Hiper said, and the order is no longer polled after.
func TestInvoicedThenShipped(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	r := h.start("a", fast())
	id := h.newOrder("1001")
	testkit.WaitFor(t, waitLong, "first poll", func() bool { return h.calls.of(id) > 0 })

	h.event(id, invoiceEvent("123"))
	inv := h.waitEvent("1001", events.KindInvoiceIssued).Msg.(*eventsv1.InvoiceIssued)
	if inv.GetNumber() != "123" || inv.GetAccessKey() != keyNFe || inv.GetDocumentType() != "NFe" ||
		inv.GetXmlUrl() != "https://nfe.example/123.xml" || inv.GetHiperOrderId() != id || inv.GetSeries() != "1" ||
		inv.GetIssuedAt() == nil || len(inv.GetProblems()) != 0 {
		t.Errorf("invoice.issued = %v", inv)
	}
	if !h.hasTask("1001") {
		t.Error("the order stopped being followed before it shipped")
	}

	h.event(id, shippedEvent("BR123456789BR"))
	h.waitFinal("1001")
	got := h.exactlyOnce("1001", events.KindInvoiceIssued, events.KindOrderShipped)
	if s := got[events.KindOrderShipped].(*eventsv1.OrderShipped); s.GetTrackingCode() != "BR123456789BR" || s.GetShippedAt() == nil {
		t.Errorf("order.shipped = %v", s)
	}
	if n := r.counter("hipersync_invoice_watch_orders_finished_total", "final", "delivered"); n != 1 {
		t.Errorf("finished delivered = %v", n)
	}
	if n := r.counter("hipersync_invoice_watch_invoice_age_seconds"); n != 1 {
		t.Errorf("invoice ages observed = %v, want 1", n)
	}
	if n := r.outcomes("hipersync_invoice_watch_duplicates_total"); n != 0 {
		t.Errorf("%v events published twice", n)
	}
}

// Invoice and shipping registered before the first poll: both go out from
// one answer, invoice first.
func TestEventsInOnePoll(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	id := h.createOrder("2002")
	h.event(id, invoiceEvent("777"))
	h.event(id, shippedEvent("10083912345678"))
	h.accept("2002", id)
	h.start("a", fast())
	h.waitFinal("2002")
	got := h.exactlyOnce("2002", events.KindInvoiceIssued, events.KindOrderShipped)
	if s := got[events.KindOrderShipped].(*eventsv1.OrderShipped); s.GetTrackingCode() != "10083912345678" {
		t.Errorf("tracking code %q", s.GetTrackingCode())
	}
	evs := h.published(events.KindInvoiceIssued, events.KindOrderShipped)
	if len(evs) != 2 || evs[0].Kind != events.KindInvoiceIssued {
		t.Errorf("published in the order %v", evs)
	}
	if n := h.calls.of(id); n != 1 {
		t.Errorf("%d polls for an order final at its first", n)
	}
}

// The merchant cancels in Hiper: order.cancelled with origin hiper, once,
// after the grace period.
func TestCancelledInHiper(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	h.start("a", fast())
	id := h.newOrder("3003")
	testkit.WaitFor(t, waitLong, "first poll", func() bool { return h.calls.of(id) > 0 })
	h.event(id, hiper.OrderEvent{Type: hiper.EventCancelled})
	h.waitFinal("3003")
	c := h.exactlyOnce("3003", events.KindOrderCancelled)[events.KindOrderCancelled].(*eventsv1.OrderCancelled)
	if c.GetOrigin() != "hiper" || c.GetHiperOrderId() != id || c.GetCancelledAt() == nil {
		t.Errorf("order.cancelled = %v", c)
	}
}

// The store asks for the cancellation and the order-forwarder carries it
// out and announces it: the watcher ends the watch without a second
// order.cancelled, whether the store's request reaches it before Hiper
// shows the cancellation or during the grace period after.
func TestCancelledByStore(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		name  string
		late  bool
		store bool // the store's own event, or only the forwarder's
	}{
		{"store event first", false, true},
		{"forwarder event first", false, false},
		{"store event during the grace period", true, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			h := newHarness(t)
			cfg := fast()
			cfg.CancelGrace = 2 * time.Second
			r := h.start("a", cfg)
			id := h.newOrder("4004")
			testkit.WaitFor(t, waitLong, "first poll", func() bool { return h.calls.of(id) > 0 })
			asked := func() {
				if c.store {
					h.publish(h.st.NS.StoreSubject(tenantID, events.KindOrderCancelled), "store-cancel:4004",
						&eventsv1.StoreOrderCancelled{OrderId: "4004", Reason: "customer request", CancelledAt: timestamppb.Now()})
				}
				// What the order-forwarder publishes once Hiper took the PUT.
				h.publish(h.st.NS.HiperSubject(tenantID, events.KindOrderCancelled), "forwarder-cancel:4004",
					&eventsv1.OrderCancelled{OrderId: "4004", HiperOrderId: id, Origin: "store", CancelledAt: timestamppb.Now()})
			}
			if !c.late {
				asked()
				testkit.WaitFor(t, waitLong, "the request recorded", func() bool {
					return h.recordOf("4004").StoreCancelAt.IsZero() == false
				})
			}
			if err := h.hiper.CancelSalesOrder(context.Background(), id); err != nil {
				t.Fatal(err)
			}
			if c.late {
				testkit.WaitFor(t, waitLong, "the cancellation seen", func() bool {
					return !h.recordOf("4004").CancelSeenAt.IsZero()
				})
				asked()
			}
			h.waitFinal("4004")
			evs := of(h.published(events.KindOrderCancelled), "4004")[events.KindOrderCancelled]
			if len(evs) != 1 || evs[0].ID != "forwarder-cancel:4004" {
				t.Errorf("order.cancelled events: %v, want only the forwarder's", evs)
			}
			if rec := h.recordOf("4004"); rec.Final != "cancelled" || rec.CancelOrigin != "store" {
				t.Errorf("record: final %q origin %q", rec.Final, rec.CancelOrigin)
			}
			if n := r.outcomes("hipersync_invoice_watch_events_total"); n != 0 {
				t.Errorf("the watcher published %v events", n)
			}
		})
	}
}

// Hiper processes the order with an error: order.failed with its message.
func TestFailedInProcessing(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	h.start("a", fast())
	id := h.createOrder("5005")
	if err := h.st.Sim.Sim.FailOrder(h.key, id, "Produto 34852cf6 sem estoque na filial."); err != nil {
		t.Fatal(err)
	}
	h.accept("5005", id)
	h.waitFinal("5005")
	f := h.exactlyOnce("5005", events.KindOrderFailed)[events.KindOrderFailed].(*eventsv1.OrderFailed)
	if f.GetMessage() != "Produto 34852cf6 sem estoque na filial." || f.GetHiperOrderId() != id || f.GetCode() != order.FailedInHiperCode {
		t.Errorf("order.failed = %v", f)
	}
}

// Hiper failed the order, support resent it (the order-forwarder's new
// order.accepted names another Hiper order): the new Hiper order is followed
// to its invoice, under event ids of its own, and the failed one is not
// followed again.
func TestResentAfterFailedInHiper(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	h.start("a", fast())
	first := h.createOrder("5006")
	if err := h.st.Sim.Sim.FailOrder(h.key, first, "Produto sem estoque na filial."); err != nil {
		t.Fatal(err)
	}
	h.accept("5006", first)
	h.waitFinal("5006")

	second := h.createOrder("5006")
	h.publish(h.st.NS.HiperSubject(tenantID, events.KindOrderAccepted), "accepted:5006:1",
		&eventsv1.OrderAccepted{OrderId: "5006", HiperOrderId: second, AcceptedAt: timestamppb.Now()})
	testkit.WaitFor(t, waitLong, "the new Hiper order followed", func() bool { return h.calls.of(second) > 0 })
	h.event(second, invoiceEvent("124"))
	inv := h.waitEvent("5006", events.KindInvoiceIssued)
	if m := inv.Msg.(*eventsv1.InvoiceIssued); m.GetHiperOrderId() != second || inv.ID != tenantID+":5006:invoice.issued:1" {
		t.Errorf("invoice.issued %q = %v", inv.ID, m)
	}
	got := of(h.published(events.KindOrderFailed), "5006")[events.KindOrderFailed]
	if len(got) != 1 || got[0].Msg.(*eventsv1.OrderFailed).GetHiperOrderId() != first {
		t.Errorf("order.failed: %v", got)
	}
	if r := h.recordOf("5006"); r.Round != 1 || r.HiperOrderID != second || r.Final != "" {
		t.Errorf("record %+v", r)
	}
	if n := len(h.deadLetters()); n != 0 {
		t.Errorf("%d dead letters", n)
	}
}

// A watcher stopped mid-way, events added while none runs, a new one
// started: every event published once, none missed.
func TestRestartMidWay(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	a := h.start("a", fast())
	id := h.newOrder("6006")
	other := h.newOrder("6007")
	testkit.WaitFor(t, waitLong, "first polls", func() bool { return h.calls.of(id) > 0 && h.calls.of(other) > 0 })
	h.event(other, invoiceEvent("10"))
	h.waitEvent("6007", events.KindInvoiceIssued)
	a.stop()

	h.event(id, invoiceEvent("11"))
	b := h.start("b", fast())
	h.waitEvent("6006", events.KindInvoiceIssued)
	b.stop()

	h.event(id, shippedEvent("BR111111111BR"))
	h.event(other, shippedEvent("BR222222222BR"))
	c := h.start("c", fast())
	h.waitFinal("6006")
	h.waitFinal("6007")
	h.exactlyOnce("6006", events.KindInvoiceIssued, events.KindOrderShipped)
	h.exactlyOnce("6007", events.KindInvoiceIssued, events.KindOrderShipped)
	for name, r := range map[string]*replica{"a": a, "b": b, "c": c} {
		if n := r.outcomes("hipersync_invoice_watch_duplicates_total"); n != 0 {
			t.Errorf("replica %s published %v events again", name, n)
		}
	}
}

// Two replicas share the orders: every event once, no order polled by both
// at the same time, and a replica busy with one order does not hold up the
// others: replica a polls one order at a time and its first poll hangs, so
// every other order must be polled by b. That both take part is so
// guaranteed, not left to how the server spreads the tasks.
func TestTwoReplicas(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	release := make(chan struct{})
	var released sync.Once
	free := func() { released.Do(func() { close(release) }) }
	t.Cleanup(free)
	cfgA := fast()
	cfgA.Concurrency = 1
	cfgA.HiperTimeout = 2 * waitLong // the held call outlasts every wait
	a := h.startWith("a", cfgA, holdFirst(http.DefaultTransport, release))
	const n = 20
	ids := make([]string, n)
	for i := range n {
		ids[i] = h.newOrder(fmt.Sprint(7000 + i))
	}
	testkit.WaitFor(t, waitLong, "replica a holding an order", func() bool { return h.calls.polls("a") == 1 })
	b := h.start("b", fast())
	testkit.WaitFor(t, waitLong, "every order polled", func() bool {
		for _, id := range ids {
			if h.calls.of(id) == 0 {
				return false
			}
		}
		return true
	})
	if pa, pb := h.calls.polls("a"), h.calls.polls("b"); pa != 1 || pb < n-1 {
		t.Errorf("polls while a held one order: a %d, b %d; want 1 and at least %d", pa, pb, n-1)
	}
	free()
	for i, id := range ids {
		h.event(id, invoiceEvent(fmt.Sprint(100+i)))
	}
	for i := range n {
		h.waitEvent(fmt.Sprint(7000+i), events.KindInvoiceIssued)
	}
	for i, id := range ids {
		h.event(id, shippedEvent(fmt.Sprintf("BR%09dBR", i)))
	}
	for i := range n {
		h.waitFinal(fmt.Sprint(7000 + i))
		h.exactlyOnce(fmt.Sprint(7000+i), events.KindInvoiceIssued, events.KindOrderShipped)
	}
	h.calls.mu.Lock()
	defer h.calls.mu.Unlock()
	if h.calls.maxInflight != 1 {
		t.Errorf("an order was polled by %d at once", h.calls.maxInflight)
	}
	pub := a.outcomes("hipersync_invoice_watch_events_total") + b.outcomes("hipersync_invoice_watch_events_total")
	dup := a.outcomes("hipersync_invoice_watch_duplicates_total") + b.outcomes("hipersync_invoice_watch_duplicates_total")
	if pub != 2*n || dup != 0 {
		t.Errorf("published %v events (%v again), want %d", pub, dup, 2*n)
	}
}

// An order that never ends is given up on after its maximum age, with
// order.watch_expired.
func TestGiveUpAfterMaxAge(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	cfg := fast()
	cfg.MaxAge = 500 * time.Millisecond
	h.start("a", cfg)
	id := h.newOrder("8008")
	h.waitFinal("8008")
	e := h.exactlyOnce("8008", events.KindOrderWatchExpired)[events.KindOrderWatchExpired].(*eventsv1.OrderWatchExpired)
	if e.GetHiperOrderId() != id || e.GetAcceptedAt() == nil {
		t.Errorf("order.watch_expired = %v", e)
	}
}

// An order Hiper does not know (404 at every poll) is dead-lettered once,
// asked about again, and given up on at its maximum age all the same.
func TestGiveUpOnAnOrderHiperDoesNotKnow(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	cfg := fast()
	cfg.MaxAge = 600 * time.Millisecond
	h.start("a", cfg)
	ghost := "6f0e3f43-3a4c-4c2b-9d55-2f1f8d1c0a01"
	h.accept("8009", ghost)
	h.waitFinal("8009")
	h.exactlyOnce("8009", events.KindOrderWatchExpired)
	if n := h.calls.of(ghost); n < 2 {
		t.Errorf("%d polls; want it asked about again after the 404", n)
	}
	letters := h.deadLetters()
	if len(letters) != 1 || letters[0].GetReasonCode() != "hiper_bad_answer" || letters[0].GetHeaders()["http-status"] != "404" {
		t.Errorf("dead letters: %v; want one 404 recorded once", letters)
	}
}

// Garbage from Hiper, then an answer that parses but makes no sense: each
// is dead-lettered with the raw body, the order is polled again, and the
// watcher goes on to publish the invoice once Hiper answers properly.
func TestBadAnswersAreDeadLetteredAndRetried(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	id := h.createOrder("9009")
	h.event(id, invoiceEvent("99"))
	garbage := []string{`{"cancelado": "talvez", "eventos": [`, `{"cancelado":false,"codigoDaSituacaoDeProcessamento":7,"eventos":[],"pedidoDeVendaId":"` + id + `","errors":[]}`}
	var mu sync.Mutex
	served := 0
	// Hiper's first two answers about the order are replaced.
	rewrite := roundTripFunc(func(r *http.Request) (*http.Response, error) {
		resp, err := http.DefaultTransport.RoundTrip(r)
		mu.Lock()
		defer mu.Unlock()
		if err != nil || !strings.Contains(r.URL.Path, "/pedido-de-venda/eventos/") || served >= len(garbage) {
			return resp, err
		}
		_ = resp.Body.Close()
		resp.Body = io.NopCloser(strings.NewReader(garbage[served]))
		resp.ContentLength = int64(len(garbage[served]))
		resp.Header.Del("Content-Length")
		served++
		return resp, nil
	})
	r := h.startWith("a", fast(), rewrite)
	h.accept("9009", id)
	h.waitEvent("9009", events.KindInvoiceIssued)
	h.exactlyOnce("9009", events.KindInvoiceIssued)

	letters := h.deadLetters()
	if len(letters) != 2 {
		t.Fatalf("%d dead letters, want 2: %v", len(letters), letters)
	}
	for i, code := range []string{"hiper_bad_answer", "hiper_unexpected"} {
		dl := letters[i]
		if dl.GetReasonCode() != code || string(dl.GetData()) != garbage[i] || dl.GetTenant() != tenantID ||
			dl.GetHeaders()["hiper-order-id"] != id || dl.GetHeaders()["http-status"] != "200" {
			t.Errorf("dead letter %d: code %q data %q headers %v", i, dl.GetReasonCode(), dl.GetData(), dl.GetHeaders())
		}
	}
	if n := r.counter("hipersync_invoice_watch_polls_total", "outcome", "bad_answer"); n != 2 {
		t.Errorf("bad answers counted: %v", n)
	}
}

// A paused tenant's orders wait, not lost: nothing is asked of Hiper while
// it is paused, and the invoice goes out once it is resumed.
func TestPausedTenantWaits(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	ctx := context.Background()
	r := h.start("a", fast())
	if _, err := h.st.Broker.Tenants.PauseTenant(ctx, &brokerv1.PauseTenantRequest{TenantId: tenantID}); err != nil {
		t.Fatal(err)
	}
	id := h.newOrder("1010")
	h.event(id, invoiceEvent("5"))
	// A turn waits when the watcher knows of the pause, or fails to get a
	// token when token-broker knew first; Hiper is not called either way.
	testkit.WaitFor(t, waitLong, "the order to wait its turns", func() bool {
		return r.counter("hipersync_invoice_watch_waits_total", "reason", "tenant_inactive")+
			r.counter("hipersync_invoice_watch_polls_total", "outcome", "tenant_gone") >= 3
	})
	if n := h.calls.of(id); n != 0 {
		t.Errorf("%d polls of a paused tenant's order", n)
	}
	h.resumeThenInvoice("1010")
}

func TestLoadSettings(t *testing.T) {
	t.Parallel()
	s, err := watcher.LoadSettings(func(string) string { return "" })
	if sch := s.Config.Schedule.WithDefaults(); err != nil || sch.Min != 30*time.Second || sch.Max != 5*time.Minute ||
		sch.Expect != 100*time.Second || sch.ExpectFor != 72*time.Hour {
		t.Errorf("defaults: %+v, %v", s.Config, err)
	}
	// A shorter ceiling alone is enough: the invoice ceiling follows it.
	s, err = watcher.LoadSettings(config.Map(map[string]string{"INVOICE_POLL_MAX": "1m"}))
	if sch := s.Config.Schedule.WithDefaults(); err != nil || sch.Expect != time.Minute {
		t.Errorf("INVOICE_POLL_MAX=1m: %+v, %v", s.Config.Schedule, err)
	}
	env0 := map[string]string{"INVOICE_POLL_EXPECT": "4m", "INVOICE_POLL_MAX": "3m"}
	if _, err := watcher.LoadSettings(config.Map(env0)); err == nil || !strings.Contains(err.Error(), "INVOICE_POLL_EXPECT") {
		t.Errorf("invoice ceiling over the ceiling: %v", err)
	}
	env := map[string]string{"INVOICE_POLL_MAX": "10m", "INVOICE_CONCURRENCY": "many", "INVOICE_CANCEL_GRACE": "-1s"}
	_, err = watcher.LoadSettings(func(k string) string { return env[k] })
	for _, name := range []string{"INVOICE_POLL_MAX", "INVOICE_CONCURRENCY", "INVOICE_CANCEL_GRACE"} {
		if err == nil || !strings.Contains(err.Error(), name) {
			t.Errorf("error %v does not name %s", err, name)
		}
	}
	env = map[string]string{"INVOICE_POLL_MIN": "5m", "INVOICE_POLL_MAX": "1m"}
	if _, err := watcher.LoadSettings(func(k string) string { return env[k] }); err == nil || !strings.Contains(err.Error(), "INVOICE_POLL_MIN") {
		t.Errorf("min over max: %v", err)
	}
}

// Hiper's events 1 (processed) and 2 (stock separated) reach the store as
// order.processing with Hiper's order number, which later events carry too.
func TestOrderProcessingThroughHiperSim(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	h.start("a", fast())
	id := h.newOrder("1101")
	p := h.waitEvent("1101", events.KindOrderProcessing).Msg.(*eventsv1.OrderProcessing)
	code := h.st.Sim.Sim.Orders(h.st.Keys[tenantID])[0].Status.Code
	if p.GetStage() != "processed" || p.GetHiperEventCode() != 1 || p.GetHiperOrderId() != id || code == "" || p.GetHiperOrderCode() != code {
		t.Fatalf("order.processing = %v (Hiper's code %q)", p, code)
	}
	h.event(id, hiper.OrderEvent{Type: hiper.EventStockSeparated, Note: "Produtos separados"})
	testkit.WaitFor(t, waitLong, "the stock separated stage", func() bool {
		return len(of(h.published(events.KindOrderProcessing), "1101")[events.KindOrderProcessing]) == 2
	})
	h.event(id, invoiceEvent("321"))
	inv := h.waitEvent("1101", events.KindInvoiceIssued).Msg.(*eventsv1.InvoiceIssued)
	if inv.GetHiperOrderCode() != code {
		t.Fatalf("invoice.issued without Hiper's order number: %v", inv)
	}
	stages := of(h.published(events.KindOrderProcessing), "1101")[events.KindOrderProcessing]
	if s := stages[1].Msg.(*eventsv1.OrderProcessing); s.GetStage() != "stock_separated" || s.GetHiperEventCode() != 2 || s.GetHiperOrderCode() != code {
		t.Fatalf("second stage: %v", s)
	}
}

// TestCancelRefusedThenMadeByHand: the store asked to cancel, Hiper refused
// (so the forwarder announced nothing), and the merchant later cancelled the
// order by hand in Hiper: the watcher announces it, once, as Hiper's.
func TestCancelRefusedThenMadeByHand(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	h.start("a", fast())
	id := h.newOrder("4104")
	testkit.WaitFor(t, waitLong, "first poll", func() bool { return h.calls.of(id) > 0 })
	h.publish(h.st.NS.StoreSubject(tenantID, events.KindOrderCancelled), "store-cancel:4104",
		&eventsv1.StoreOrderCancelled{OrderId: "4104", Reason: "customer request", CancelledAt: timestamppb.Now()})
	if err := h.hiper.CancelSalesOrder(context.Background(), id); err != nil {
		t.Fatal(err)
	}
	h.waitFinal("4104")
	c := h.exactlyOnce("4104", events.KindOrderCancelled)[events.KindOrderCancelled].(*eventsv1.OrderCancelled)
	if c.GetOrigin() != "hiper" || c.GetHiperOrderId() != id {
		t.Errorf("order.cancelled = %v", c)
	}
	if rec := h.recordOf("4104"); rec.Final != "cancelled" || rec.CancelOrigin != "hiper" {
		t.Errorf("record: final %q origin %q", rec.Final, rec.CancelOrigin)
	}
}

// `hipersync status` and the console show the invoices' polling as it is:
// the ceiling of the orders expecting their invoice and that of the others,
// not only the schedule's ceiling.
func TestStatusShowsBothCeilings(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	cfg := fast()
	cfg.Schedule.Expect = 100 * time.Millisecond
	h.start("a", cfg)
	id := h.newOrder("8008")
	testkit.WaitFor(t, waitLong, "first poll", func() bool { return h.calls.of(id) > 0 })
	var view *ops.SyncView
	testkit.WaitFor(t, waitLong, "the invoices' status reported", func() bool {
		ts, ok, err := ops.StatusOf(context.Background(), h.st.JS, h.st.NS, tenantID, time.Now())
		if err != nil || !ok {
			return false
		}
		view = ts.Syncs[string(syncstatus.Invoices)]
		return view != nil && view.LastSuccessAt != nil
	})
	if view.Interval != "200ms" || view.ExpectInterval != "100ms" {
		t.Errorf("status intervals: %q, expecting %q; want 200ms and 100ms", view.Interval, view.ExpectInterval)
	}
}
