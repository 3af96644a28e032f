package forwarder

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/shopspring/decimal"
	"google.golang.org/protobuf/proto"

	"github.com/hipersync/hipersync/pkg/catalog"
	"github.com/hipersync/hipersync/pkg/events"
	brokerv1 "github.com/hipersync/hipersync/pkg/gen/hipersync/broker/v1"
	eventsv1 "github.com/hipersync/hipersync/pkg/gen/hipersync/events/v1"
	"github.com/hipersync/hipersync/pkg/hiper"
	"github.com/hipersync/hipersync/pkg/hipersim"
	"github.com/hipersync/hipersync/pkg/service"
	"github.com/hipersync/hipersync/pkg/telemetry"
	"github.com/hipersync/hipersync/pkg/testkit"
	"github.com/hipersync/hipersync/services/order-forwarder/orders"
	"github.com/hipersync/hipersync/services/token-broker/brokertest"
)

// harness is one test's hipersync: the real stack of brokertest (NATS
// namespace, Redis, hiper-sim, token-broker), a store publishing orders,
// and a recorder of every event stored on the HIPER stream.
type harness struct {
	t     testing.TB
	st    *brokertest.Stack
	store *events.Publisher
	index jetstream.KeyValue
	state *orders.Store
	seen  *recorder
	// products are sellable products of each tenant's sim account.
	products map[string][]hiper.Product
	// hiperURL, when set, is where forwarders call Hiper instead of the sim.
	hiperURL string
	// catalog, when set, replaces the barcode index of forwarders.
	catalog Catalog
	// logs is what the harness's forwarders logged, for a test to read.
	logs testkit.SyncBuffer
	// turnStep, when set, gives each forwarder started its Forwarder.turnStep
	// (by its owner), before it runs.
	turnStep func(owner string) func(tenant, orderID string, step turnStep)
	// ownConns, when set, gives each forwarder started a NATS connection of
	// its own, as a deployment's replicas have, instead of the stack's.
	ownConns bool
}

type harnessOptions struct {
	tenants  []string
	settings *brokerv1.TenantSettings
	sim      hipersim.Config
	// unrecorded leaves the HIPER stream unrecorded (h.seen nil): the
	// benchmarks watch order.accepted themselves, and a second consumer
	// decoding every event would be the harness's cost, not the forwarder's.
	unrecorded bool
}

func newHarness(t testing.TB, o harnessOptions) *harness {
	t.Helper()
	if o.sim.ProcessingDelay == 0 {
		o.sim.ProcessingDelay = -1
	}
	st := brokertest.Start(t, brokertest.Options{Tenants: o.tenants, Seed: hipersim.SeedDemo, Sim: o.sim, Settings: o.settings})
	ctx := context.Background()
	index, err := catalog.EnsureIndex(ctx, st.JS, st.NS)
	if err != nil {
		t.Fatal(err)
	}
	state, err := orders.Open(ctx, st.JS, st.NS)
	if err != nil {
		t.Fatal(err)
	}
	h := &harness{
		t: t, st: st, index: index, state: state,
		store:    events.NewPublisher(st.JS, st.NS, "test-store", events.FormatJSON),
		products: map[string][]hiper.Product{},
	}
	for tenant, key := range st.Keys {
		for _, p := range st.Sim.Sim.Products(key) {
			if bool(p.Active) && !bool(p.Removed) && !bool(p.HasVariations) && p.Barcode != "" {
				h.products[tenant] = append(h.products[tenant], p)
			}
		}
	}
	if !o.unrecorded {
		h.seen = record(t, st)
	}
	return h
}

// testConfig is quick to retry and to notice what tests do.
func testConfig() Config {
	return Config{
		Concurrency:  16,
		RetryBase:    20 * time.Millisecond,
		RetryMax:     200 * time.Millisecond,
		PausedRetry:  100 * time.Millisecond,
		HiperTimeout: 5 * time.Second,
		GracePeriod:  5 * time.Second,
	}
}

// forwarder starts a replica that runs until the test ends.
func (h *harness) forwarder(cfg Config, owner string) *Forwarder {
	h.t.Helper()
	nc := h.st.NATS
	if h.ownConns {
		nc, _ = testkit.Connect(h.t)
	}
	ctx, cancel := context.WithCancel(context.Background())
	f, err := Start(ctx, Deps{
		Deps: service.Deps{
			NATS: nc, Namespace: h.st.NS, Tokens: h.st.Broker, HiperBaseURL: cmp.Or(h.hiperURL, h.st.Sim.URL),
			Format: events.FormatProtobuf, Health: telemetry.NewHealth(), Log: h.logger(),
		},
		Config: cfg, Owner: owner, Catalog: h.catalog,
	})
	if err != nil {
		cancel()
		h.t.Fatal(err)
	}
	if h.turnStep != nil {
		f.turnStep = h.turnStep(owner)
	}
	done := make(chan error, 1)
	go func() { done <- f.Run(ctx) }()
	h.t.Cleanup(func() {
		cancel()
		if err := testkit.Recv(h.t, done, time.Minute+StopTime(cfg), "forwarder "+owner+" to stop"); err != nil {
			h.t.Errorf("forwarder %s: %v", owner, err)
		}
	})
	return f
}

func testLogger() *slog.Logger {
	if os.Getenv("FORWARDER_TEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

// logger writes into h.logs, and to stderr with FORWARDER_TEST_LOG set.
func (h *harness) logger() *slog.Logger {
	var w io.Writer = &h.logs
	if os.Getenv("FORWARDER_TEST_LOG") != "" {
		w = io.MultiWriter(&h.logs, os.Stderr)
	}
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// order returns a valid approval of the tenant's products: one unit each of
// the first n, paid with PIX.
func (h *harness) order(tenant, id string, n int) *eventsv1.StoreOrderApproved {
	h.t.Helper()
	ps := h.products[tenant]
	if len(ps) < n {
		h.t.Fatalf("tenant %s has %d products, want %d", tenant, len(ps), n)
	}
	o := validOrder(id)
	o.Items = nil
	total := decimal.Zero
	for _, p := range ps[:n] {
		o.Items = append(o.Items, &eventsv1.OrderItem{ProductId: p.ID, Quantity: "1", UnitPrice: p.Price.StringFixed(2)})
		total = total.Add(p.Price.Round(2))
	}
	o.Payments = []*eventsv1.Payment{{Method: "PIX", Installments: 1, Amount: total.StringFixed(2)}}
	o.ShippingAmount = "0.00"
	return o
}

// customerData is what of validOrder names or locates its customer.
var customerData = []string{"Ana Souza", "52998224725", "529.982.247-25", "ana@example.com", "Rua Principal"}

// namesNoCustomer fails when a text a person reads (a reason, an event's
// message, a log line) carries validOrder's personal data (LGPD).
func namesNoCustomer(t *testing.T, texts ...string) {
	t.Helper()
	for _, text := range texts {
		for _, p := range customerData {
			if strings.Contains(strings.ToLower(text), strings.ToLower(p)) {
				t.Errorf("%q names the customer (%q)", text, p)
			}
		}
	}
}

// validOrder is an order every rule accepts, naming a product by id.
func validOrder(id string) *eventsv1.StoreOrderApproved {
	addr := func(number string) *eventsv1.Address {
		return &eventsv1.Address{Street: "Rua Principal", Number: number, District: "Centro", PostalCode: "88351-001", IbgeCityCode: "4202909"}
	}
	return &eventsv1.StoreOrderApproved{
		OrderId:         id,
		Currency:        "BRL",
		Customer:        &eventsv1.Customer{Document: "529.982.247-25", Email: "ana@example.com", Name: "Ana Souza"},
		BillingAddress:  addr("01"),
		ShippingAddress: addr("22"),
		Items:           []*eventsv1.OrderItem{{ProductId: "34852cf6-f222-4d61-86d1-045a1aee66f4", Quantity: "1", UnitPrice: "99.99"}},
		Payments:        []*eventsv1.Payment{{Method: "PIX", Installments: 1, Amount: "109.99"}},
		ShippingAmount:  "10.00",
	}
}

// approve publishes an approval as the store would, with event id msgID.
func (h *harness) approve(tenant string, o *eventsv1.StoreOrderApproved, msgID string) {
	h.t.Helper()
	if _, err := h.store.Publish(context.Background(), h.st.NS.StoreSubject(tenant, events.KindOrderApproved), msgID, o); err != nil {
		h.t.Fatal(err)
	}
}

func (h *harness) cancel(tenant, orderID, msgID string) {
	h.t.Helper()
	c := &eventsv1.StoreOrderCancelled{OrderId: orderID, Reason: "customer request"}
	if _, err := h.store.Publish(context.Background(), h.st.NS.StoreSubject(tenant, events.KindOrderCancelled), msgID, c); err != nil {
		h.t.Fatal(err)
	}
}

// simOrders returns the orders hiper-sim received for a store order id.
func (h *harness) simOrders(tenant, orderID string) []hipersim.Order {
	var out []hipersim.Order
	for _, o := range h.st.Sim.Sim.Orders(h.st.Keys[tenant]) {
		if o.Body.StoreOrderID == orderID {
			out = append(out, o)
		}
	}
	return out
}

// posted counts the create calls that reached hiper-sim, faulted or not.
func (h *harness) posted() int {
	return h.st.Sim.Sim.Stats().Requests[hipersim.EndpointCreateOrder]
}

func (h *harness) cancels() int {
	return h.st.Sim.Sim.Stats().Requests[hipersim.EndpointCancelOrder]
}

// record returns the order state, failing the test when there is none.
func (h *harness) record(tenant, orderID string) *orders.Record {
	h.t.Helper()
	rec, _, err := h.state.Get(context.Background(), tenant, orderID)
	if err != nil {
		h.t.Fatal(err)
	}
	return rec
}

func (h *harness) waitState(tenant, orderID string, want orders.State, timeout time.Duration) *orders.Record {
	h.t.Helper()
	var rec *orders.Record
	testkit.WaitFor(h.t, timeout, fmt.Sprintf("order %s/%s %s", tenant, orderID, want), func() bool {
		r, _, err := h.state.Get(context.Background(), tenant, orderID)
		rec = r
		return err == nil && r.State == want && (r.Outbox == nil || r.Outbox.Published)
	})
	return rec
}

// event is one event stored on the HIPER stream.
type event struct {
	kind   events.Kind
	tenant string
	id     string
	msg    proto.Message
}

// recorder keeps every event the HIPER stream stores, in order.
type recorder struct {
	mu     sync.Mutex
	events []event
}

func record(t testing.TB, st *brokertest.Stack) *recorder {
	t.Helper()
	r := &recorder{}
	ctx, cancel := context.WithCancel(context.Background())
	cons, err := st.JS.OrderedConsumer(ctx, st.NS.Stream(events.StreamHiper), jetstream.OrderedConsumerConfig{
		FilterSubjects: []string{st.NS.HiperSubject("*", ">")},
	})
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	cc, err := cons.Consume(func(m jetstream.Msg) {
		s, err := st.NS.ParseSubject(m.Subject())
		if err != nil {
			return
		}
		msg, err := s.NewMessage()
		if err != nil {
			return
		}
		if err := events.Decode(m.Headers(), m.Data(), msg); err != nil {
			t.Errorf("undecodable %s: %v", m.Subject(), err)
			return
		}
		r.mu.Lock()
		r.events = append(r.events, event{kind: s.Kind, tenant: s.Tenant, id: m.Headers().Get(events.HeaderID), msg: msg})
		r.mu.Unlock()
	})
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	t.Cleanup(func() { cc.Stop(); cancel() })
	return r
}

// of returns the events of kind about orderID.
func (r *recorder) of(kind events.Kind, orderID string) []event {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []event
	for _, e := range r.events {
		if e.kind == kind && orderIDOf(e.msg) == orderID {
			out = append(out, e)
		}
	}
	return out
}

func (r *recorder) count(kind events.Kind) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for _, e := range r.events {
		if e.kind == kind {
			n++
		}
	}
	return n
}

// waitOne waits for an event of kind about orderID and returns it.
func (h *harness) waitEvent(kind events.Kind, orderID string, timeout time.Duration) proto.Message {
	h.t.Helper()
	var got []event
	testkit.WaitFor(h.t, timeout, fmt.Sprintf("%s of %s", kind, orderID), func() bool {
		got = h.seen.of(kind, orderID)
		return len(got) > 0
	})
	return got[0].msg
}

func orderIDOf(m proto.Message) string {
	if g, ok := m.(interface{ GetOrderId() string }); ok {
		return g.GetOrderId()
	}
	return ""
}

// deadLetters returns the dead letters of the test's namespace.
func (h *harness) deadLetters() []events.DeadLetterEntry {
	h.t.Helper()
	dl, err := events.ListDeadLetters(context.Background(), h.st.JS, h.st.NS, 0)
	if err != nil && !errors.Is(err, jetstream.ErrStreamNotFound) {
		h.t.Fatal(err)
	}
	return dl
}

// outcomes counts the events of kind (e.g. "order.approved") a replica
// handled with outcome.
func outcomes(f *Forwarder, kind events.Kind, outcome string) int {
	return int(testutil.ToFloat64(f.metrics.eventsIn.WithLabelValues(string(kind), outcome)))
}

// pause pauses tenant and waits until the forwarder f has seen it.
func (h *harness) pause(f *Forwarder, tenant string) {
	h.t.Helper()
	if _, err := h.st.Broker.Tenants.PauseTenant(context.Background(), &brokerv1.PauseTenantRequest{TenantId: tenant}); err != nil {
		h.t.Fatal(err)
	}
	testkit.WaitFor(h.t, wait, "the pause seen", func() bool {
		s, _ := f.dir.State(tenant)
		return s == brokerv1.TenantState_TENANT_STATE_PAUSED
	})
}
