package watcher_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/hipersync/hipersync/pkg/events"
	brokerv1 "github.com/hipersync/hipersync/pkg/gen/hipersync/broker/v1"
	eventsv1 "github.com/hipersync/hipersync/pkg/gen/hipersync/events/v1"
	"github.com/hipersync/hipersync/pkg/hiper"
	"github.com/hipersync/hipersync/pkg/hipersim"
	"github.com/hipersync/hipersync/pkg/service"
	"github.com/hipersync/hipersync/pkg/telemetry"
	"github.com/hipersync/hipersync/pkg/tenant"
	"github.com/hipersync/hipersync/pkg/testkit"
	"github.com/hipersync/hipersync/services/invoice-watcher/order"
	"github.com/hipersync/hipersync/services/invoice-watcher/watcher"
	"github.com/hipersync/hipersync/services/token-broker/brokertest"
)

const (
	tenantID  = "acme"
	productID = "34852cf6-f222-4d61-86d1-045a1aee66f4"
	keyNFe    = "35250512345678000190550010000001231000000124"
	// waitLong bounds every wait for a condition: generous, since the
	// machine is shared; conditions usually hold within a few polls.
	waitLong = 20 * time.Second
)

// fast is the schedule of the tests: the production shape, a thousand
// times faster at the start.
func fast() watcher.Config {
	return watcher.Config{
		Schedule:    order.Schedule{Min: 50 * time.Millisecond, Max: 200 * time.Millisecond},
		CancelGrace: 300 * time.Millisecond,
		PausedRetry: 100 * time.Millisecond,
		RetryDelay:  100 * time.Millisecond,
		TenantRate:  1000,
		TenantBurst: 100,
		AckWait:     5 * time.Second,
		GracePeriod: 3 * time.Second,
	}
}

// harness is one test's stack: NATS, Redis, token-broker and hiper-sim of
// its own, a store and an order-forwarder played by the test, and the
// watchers it starts.
type harness struct {
	t     testing.TB
	st    *brokertest.Stack
	key   string
	hiper *hiper.Session
	// as publishes what the store and the order-forwarder would.
	as    *events.Publisher
	calls *hiperCalls
}

func newHarness(t *testing.T) *harness {
	t.Helper()
	st := brokertest.Start(t, brokertest.Options{Tenants: []string{tenantID}, Sim: hipersim.Config{ProcessingDelay: -1}})
	h := &harness{t: t, st: st, key: st.Keys[tenantID], calls: newHiperCalls()}
	if err := st.Sim.Sim.UpsertProducts(h.key, []hiper.Product{product()}); err != nil {
		t.Fatal(err)
	}
	client, err := hiper.New(st.Sim.URL)
	if err != nil {
		t.Fatal(err)
	}
	h.hiper = client.Session(hiper.NewKeySource(client, h.key))
	h.as = events.NewPublisher(st.JS, st.NS, "test", events.FormatProtobuf)
	return h
}

// replica is one running watcher.
type replica struct {
	health *telemetry.Health
	stop   func()
}

// start runs a watcher replica until the test ends or stop is called.
func (h *harness) start(name string, cfg watcher.Config) *replica {
	h.t.Helper()
	return h.startWith(name, cfg, http.DefaultTransport)
}

// startWith is start with Hiper's answers coming through base.
func (h *harness) startWith(name string, cfg watcher.Config, base http.RoundTripper) *replica {
	h.t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	health := telemetry.NewHealth()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	if os.Getenv("WATCHER_TEST_LOG") != "" {
		log = slog.New(slog.NewTextHandler(h.t.Output(), &slog.HandlerOptions{Level: slog.LevelDebug})).With("replica", name)
	}
	w, err := watcher.Start(ctx, watcher.Deps{
		Deps: service.Deps{
			NATS: h.st.NATS, Namespace: h.st.NS, Tokens: h.st.Broker, HiperBaseURL: h.st.Sim.URL,
			Format: events.FormatProtobuf, Health: health, Log: log,
		},
		HTTPClient: &http.Client{Transport: h.calls.transport(name, base)}, Config: cfg,
	})
	if err != nil {
		cancel()
		h.t.Fatalf("start watcher %s: %v", name, err)
	}
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx) }()
	var once sync.Once
	stop := func() {
		once.Do(func() {
			cancel()
			// The drain takes at most the grace period (its default when
			// unset), and then the polls' return.
			if err := testkit.Recv(h.t, done, events.DefaultGracePeriod+cfg.GracePeriod+waitLong, "watcher "+name+" to stop"); err != nil {
				h.t.Errorf("watcher %s: %v", name, err)
			}
		})
	}
	h.t.Cleanup(stop)
	return &replica{health: health, stop: stop}
}

// createOrder creates an order in hiper-sim as the order-forwarder would and
// returns Hiper's id.
func (h *harness) createOrder(storeID string) string {
	h.t.Helper()
	id, err := h.hiper.CreateSalesOrder(context.Background(), salesOrder(storeID))
	if err != nil {
		h.t.Fatalf("create order %s in hiper-sim: %v", storeID, err)
	}
	return id
}

// resumeThenInvoice checks that no invoice went out while the tenant was
// paused, resumes it, and waits for the order's invoice, published once.
func (h *harness) resumeThenInvoice(storeID string) {
	h.t.Helper()
	if evs := h.published(events.KindInvoiceIssued); len(evs) != 0 {
		h.t.Errorf("published while paused: %v", evs)
	}
	if _, err := h.st.Broker.Tenants.ResumeTenant(context.Background(), &brokerv1.ResumeTenantRequest{TenantId: tenantID}); err != nil {
		h.t.Fatal(err)
	}
	h.waitEvent(storeID, events.KindInvoiceIssued)
	h.exactlyOnce(storeID, events.KindInvoiceIssued)
}

// product is the one product the tests' orders buy.
func product() hiper.Product {
	return hiper.Product{
		ID: productID, Code: 1, Name: "Produto", Unit: "UN", Price: hiper.MustDecimal("10.50"), Active: true,
		Stock: hiper.MustDecimal("1000000"), ParentID: hiper.ZeroID, Brand: "Marca", Category: "Categoria",
	}
}

// salesOrder is a valid order of one product.
func salesOrder(storeID string) hiper.SalesOrder {
	addr := hiper.Address{Street: "Rua Principal", Number: "22", District: "Centro", PostalCode: "88351001", IBGECode: "4202909"}
	return hiper.SalesOrder{
		Customer:       hiper.Customer{Document: "52998224725", Email: "ana@example.com", Name: "Ana Souza"},
		BillingAddress: addr, ShippingAddress: addr,
		Items:        []hiper.OrderItem{{ProductID: productID, Quantity: hiper.MustDecimal("1")}},
		Payments:     []hiper.Payment{{MethodID: hiper.PaymentPix, Installments: 1, Amount: hiper.MustDecimal("10.50")}},
		Freight:      hiper.MustDecimal("0"),
		StoreOrderID: storeID,
	}
}

// accept publishes order.accepted as the order-forwarder does.
func (h *harness) accept(storeID, hiperID string) {
	h.t.Helper()
	h.publish(h.st.NS.HiperSubject(tenantID, events.KindOrderAccepted), "accepted:"+storeID,
		&eventsv1.OrderAccepted{OrderId: storeID, HiperOrderId: hiperID, AcceptedAt: timestamppb.Now()})
}

// newOrder creates an order in Hiper and has it accepted.
func (h *harness) newOrder(storeID string) string {
	h.t.Helper()
	id := h.createOrder(storeID)
	h.accept(storeID, id)
	return id
}

func (h *harness) publish(subject, id string, msg proto.Message) {
	h.t.Helper()
	if _, err := h.as.Publish(context.Background(), subject, id, msg); err != nil {
		h.t.Fatalf("publish %s: %v", subject, err)
	}
}

// event registers an event in hiper-sim, as the merchant's Hiper would.
func (h *harness) event(hiperID string, ev hiper.OrderEvent) {
	h.t.Helper()
	if err := h.st.Sim.Sim.AddOrderEvent(h.key, hiperID, ev); err != nil {
		h.t.Fatalf("add event %d to %s: %v", ev.Type, hiperID, err)
	}
}

func invoiceEvent(number string) hiper.OrderEvent {
	return hiper.OrderEvent{Type: hiper.EventInvoiceIssued, Note: "NF " + number, FiscalKey: keyNFe,
		FiscalType: "NFe", FiscalXMLURL: "https://nfe.example/" + number + ".xml"}
}

func shippedEvent(code string) hiper.OrderEvent {
	return hiper.OrderEvent{Type: hiper.EventShipped, Note: "Código de rastreio: " + code}
}

// published is one event hipersync published, as the stream keeps it.
type published struct {
	Kind    events.Kind
	ID      string
	OrderID string
	Msg     proto.Message
}

// published returns every event the stream holds about the tenant's
// orders, of the given kinds (all when none), oldest first.
func (h *harness) published(kinds ...events.Kind) []published {
	h.t.Helper()
	ctx := context.Background()
	s, err := h.st.JS.Stream(ctx, h.st.NS.Stream(events.StreamHiper))
	if err != nil {
		h.t.Fatal(err)
	}
	filter := h.st.NS.HiperSubject(tenantID, ">")
	var out []published
	for seq := uint64(1); ; {
		raw, err := s.GetMsg(ctx, seq, jetstream.WithGetMsgSubject(filter))
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			return out
		}
		if err != nil {
			h.t.Fatalf("read %s: %v", filter, err)
		}
		seq = raw.Sequence + 1
		sub, err := h.st.NS.ParseSubject(raw.Subject)
		if err != nil {
			h.t.Fatal(err)
		}
		if len(kinds) > 0 && !contains(kinds, sub.Kind) {
			continue
		}
		msg, _ := sub.NewMessage()
		if err := events.Decode(raw.Header, raw.Data, msg); err != nil {
			h.t.Fatalf("decode %s: %v", raw.Subject, err)
		}
		orderID := raw.Header.Get(events.HeaderSubject)
		if o, ok := msg.(interface{ GetOrderId() string }); ok {
			orderID = o.GetOrderId()
		}
		out = append(out, published{Kind: sub.Kind, ID: raw.Header.Get(events.HeaderID), OrderID: orderID, Msg: msg})
	}
}

func contains[T comparable](list []T, v T) bool {
	for _, x := range list {
		if x == v {
			return true
		}
	}
	return false
}

// of returns the events about one order, by kind.
func of(evs []published, orderID string) map[events.Kind][]published {
	m := map[events.Kind][]published{}
	for _, e := range evs {
		if e.OrderID == orderID {
			m[e.Kind] = append(m[e.Kind], e)
		}
	}
	return m
}

// waitEvent waits until the order has an event of kind and returns it.
func (h *harness) waitEvent(orderID string, kind events.Kind) published {
	h.t.Helper()
	var got published
	testkit.WaitFor(h.t, waitLong, fmt.Sprintf("%s of order %s", kind, orderID), func() bool {
		evs := of(h.published(kind), orderID)[kind]
		if len(evs) > 0 {
			got = evs[0]
		}
		return len(evs) > 0
	})
	return got
}

// waitFinal waits until the order is no longer followed: its record is
// final and its task gone from the poll queue.
func (h *harness) waitFinal(orderID string) {
	h.t.Helper()
	testkit.WaitFor(h.t, waitLong, "order "+orderID+" no longer followed", func() bool {
		return h.recordOf(orderID).Final != "" && !h.hasTask(orderID)
	})
}

// hasTask reports whether the order has a poll task.
func (h *harness) hasTask(orderID string) bool {
	h.t.Helper()
	s, err := h.st.JS.Stream(context.Background(), h.st.NS.Stream(watcher.TaskStream))
	if err != nil {
		h.t.Fatal(err)
	}
	tok, _ := tenant.OrderToken(orderID)
	_, err = s.GetLastMsgForSubject(context.Background(), h.st.NS.ServiceSubject("invoicewatch", tenantID, tok))
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return false
	}
	if err != nil {
		h.t.Fatal(err)
	}
	return true
}

// exactlyOnce checks that each order has exactly the events of the kinds
// wanted, one each, and no other.
func (h *harness) exactlyOnce(orderID string, kinds ...events.Kind) map[events.Kind]proto.Message {
	h.t.Helper()
	got := of(h.published(), orderID)
	out := map[events.Kind]proto.Message{}
	for kind, evs := range got {
		if kind == events.KindOrderAccepted || kind == events.KindOrderProcessing {
			continue // order.processing: TestOrderProcessingThroughHiperSim
		}
		if !contains(kinds, kind) {
			h.t.Errorf("order %s: unexpected %s", orderID, kind)
		}
		if len(evs) != 1 {
			h.t.Errorf("order %s: %d × %s, want 1", orderID, len(evs), kind)
		}
		if want := tenantID + ":" + orderID + ":" + string(kind); evs[0].ID != want && kind != events.KindOrderCancelled {
			h.t.Errorf("order %s: %s id %q, want %q", orderID, kind, evs[0].ID, want)
		}
		out[kind] = evs[0].Msg
	}
	for _, k := range kinds {
		if out[k] == nil {
			h.t.Errorf("order %s: no %s", orderID, k)
		}
	}
	return out
}

// recordOf reads the order's record.
func (h *harness) recordOf(orderID string) *order.Record {
	h.t.Helper()
	kv, err := h.st.JS.KeyValue(context.Background(), h.st.NS.Bucket(watcher.Bucket))
	if err != nil {
		h.t.Fatal(err)
	}
	key, _ := order.Key(tenantID, orderID)
	e, err := kv.Get(context.Background(), key)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return &order.Record{}
	}
	if err != nil {
		h.t.Fatal(err)
	}
	r, err := order.Decode(e.Value())
	if err != nil {
		h.t.Fatal(err)
	}
	return r
}

// deadLetters lists the namespace's dead letters, oldest first.
func (h *harness) deadLetters() []*eventsv1.DeadLetter {
	h.t.Helper()
	entries, err := events.ListDeadLetters(context.Background(), h.st.JS, h.st.NS, 0)
	if err != nil {
		h.t.Fatal(err)
	}
	var out []*eventsv1.DeadLetter
	for _, e := range entries {
		out = append(out, e.Letter)
	}
	return out
}

// counter reads a counter of the replica's metrics, or the samples of a
// histogram.
func (r *replica) counter(name string, labels ...string) float64 {
	mfs, err := r.health.Registry.Gather()
	if err != nil {
		panic(err)
	}
	var sum float64
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	metric:
		for _, m := range mf.GetMetric() {
			for i := 0; i+1 < len(labels); i += 2 {
				for _, lp := range m.GetLabel() {
					if lp.GetName() == labels[i] && lp.GetValue() != labels[i+1] {
						continue metric
					}
				}
			}
			sum += m.GetCounter().GetValue() + float64(m.GetHistogram().GetSampleCount())
		}
	}
	return sum
}

// hiperCalls counts the calls to Hiper's order state per order and per
// replica, and the most calls for one order in flight at once.
type hiperCalls struct {
	mu          sync.Mutex
	total       map[string]int
	inflight    map[string]int
	maxInflight int
	byReplica   map[string]int
	// at holds when each call of an order began.
	at map[string][]time.Time
}

func newHiperCalls() *hiperCalls {
	return &hiperCalls{total: map[string]int{}, inflight: map[string]int{}, byReplica: map[string]int{}, at: map[string][]time.Time{}}
}

func (c *hiperCalls) transport(replica string, base http.RoundTripper) http.RoundTripper {
	return roundTripFunc(func(r *http.Request) (*http.Response, error) {
		_, id, ok := strings.Cut(r.URL.Path, "/pedido-de-venda/eventos/")
		if !ok {
			return base.RoundTrip(r)
		}
		c.mu.Lock()
		c.total[id]++
		c.at[id] = append(c.at[id], time.Now())
		c.byReplica[replica]++
		c.inflight[id]++
		c.maxInflight = max(c.maxInflight, c.inflight[id])
		c.mu.Unlock()
		done := func() {
			c.mu.Lock()
			c.inflight[id]--
			c.mu.Unlock()
		}
		resp, err := base.RoundTrip(r)
		if err != nil {
			done()
			return nil, err
		}
		// The call lasts until its answer is read.
		resp.Body = &closeHook{ReadCloser: resp.Body, hook: done}
		return resp, nil
	})
}

type closeHook struct {
	io.ReadCloser
	once sync.Once
	hook func()
}

func (c *closeHook) Close() error {
	err := c.ReadCloser.Close()
	c.once.Do(c.hook)
	return err
}

// sum is every call counted.
func (c *hiperCalls) sum() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := 0
	for _, v := range c.byReplica {
		n += v
	}
	return n
}

// polls is how many polls a replica made.
func (c *hiperCalls) polls(replica string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.byReplica[replica]
}

// holdFirst passes Hiper's calls to base, but for the first poll of an
// order, which it holds until release is closed.
func holdFirst(base http.RoundTripper, release <-chan struct{}) http.RoundTripper {
	var first sync.Once
	return roundTripFunc(func(r *http.Request) (*http.Response, error) {
		hold := false
		if strings.Contains(r.URL.Path, "/pedido-de-venda/eventos/") {
			first.Do(func() { hold = true })
		}
		if hold {
			select {
			case <-release:
			case <-r.Context().Done():
				return nil, r.Context().Err()
			}
		}
		return base.RoundTrip(r)
	})
}

// times returns when each call of the order began, oldest first.
func (c *hiperCalls) times(hiperID string) []time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.at[hiperID])
}

func (c *hiperCalls) of(hiperID string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.total[hiperID]
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// outcomes is counter without order.processing: the progress events are
// checked by TestOrderProcessingThroughHiperSim, the outcomes here.
func (r *replica) outcomes(name string) float64 {
	return r.counter(name) - r.counter(name, "kind", string(events.KindOrderProcessing))
}
