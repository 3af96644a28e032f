package forwarder

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/hipersync/hipersync/pkg/events"
	eventsv1 "github.com/hipersync/hipersync/pkg/gen/hipersync/events/v1"
	"github.com/hipersync/hipersync/pkg/hiper"
	"github.com/hipersync/hipersync/pkg/hipersim"
	"github.com/hipersync/hipersync/pkg/tenant"
	"github.com/hipersync/hipersync/pkg/testkit"
)

// Shape of BenchmarkForward: eight stores, two replicas. With one order
// in flight per tenant and replica, the forwarder posts at most sixteen
// orders at once: the baseline posts with the same sixteen.
const (
	benchTenants     = 8
	benchReplicas    = 2
	benchConcurrency = benchTenants * benchReplicas
	benchRate        = 200 // orders per second in the latency run
	benchSteady      = 6 * time.Second
)

// BenchmarkForward measures orders per second from publishing the store's
// event to order.accepted, with two replicas, the test process's CPU per
// order in that burst, and the p99 latency of that path at a steady 200
// orders per second; beside each, the same figure for
// a plain HTTP POST loop of the same sales orders to the same hiper-sim at
// the same concurrency (no NATS, no state, no token-broker). It runs twice:
// against hiper-sim answering at once (the forwarder's whole overhead, set
// against an in-process HTTP call), and with 20 ms added to each create, a
// Hiper on the same continent.
func BenchmarkForward(b *testing.B) {
	for _, tc := range []struct {
		name    string
		latency int
		burst   int
	}{{"hiper=0ms", 0, 3000}, {"hiper=20ms", 20, 1500}} {
		b.Run(tc.name, func(b *testing.B) { benchForward(b, tc.latency, tc.burst) })
	}
}

func benchForward(b *testing.B, latencyMs, burst int) {
	tenants := benchTenantIDs()
	h := newHarness(b, harnessOptions{tenants: tenants, unrecorded: true})
	h.st.Sim.Sim.SetFaults(hipersim.Faults{LatencyMs: latencyMs, Endpoints: []string{hipersim.EndpointCreateOrder}})
	// Unpaced: the figure is the forwarder's own cost, not the pace it keeps
	// with Hiper (ORDER_TENANT_RATE), which the baseline does not keep.
	cfg := Config{HiperTimeout: 10 * time.Second, TenantRate: -1}
	for i := range benchReplicas {
		h.forwarder(cfg, fmt.Sprintf("r%d", i+1))
	}
	w := h.watchAccepted(b)
	base := h.newBaseline(b, tenants, benchConcurrency)

	// Warm up: tokens cached, connections open, consumer created.
	h.burst(b, w, tenants, "warm", benchTenants*4)

	b.ResetTimer()
	for i := range b.N {
		c0 := testkit.CPUTime(b)
		rate := h.burst(b, w, tenants, fmt.Sprintf("b%d-", i), burst)
		c1 := testkit.CPUTime(b)
		baseRate := base.burst(b, burst)
		c2 := testkit.CPUTime(b)
		p99 := h.steady(b, w, tenants, fmt.Sprintf("s%d-", i))
		baseP99 := base.steady(b)
		b.ReportMetric(rate, "orders/s")
		b.ReportMetric(baseRate, "baseline-orders/s")
		// The CPU of this process (forwarders, hiper-sim, the driver) per
		// order of each burst; the NATS server's is not in it.
		b.ReportMetric(float64((c1-c0).Microseconds())/float64(burst), "cpu-us/order")
		b.ReportMetric(float64((c2-c1).Microseconds())/float64(burst), "baseline-cpu-us/order")
		b.ReportMetric(ms(p99), "p99-ms")
		b.ReportMetric(ms(baseP99), "baseline-p99-ms")
	}
}

// benchTenantIDs names the benchmarks' benchTenants stores.
func benchTenantIDs() []string {
	tenants := make([]string, benchTenants)
	for i := range tenants {
		tenants[i] = fmt.Sprintf("s%d", i)
	}
	return tenants
}

// skipUnlessDiagnosis skips a benchmark that diagnoses rather than fills a
// row of the table, unless FORWARDER_SLOTS is set.
func skipUnlessDiagnosis(b *testing.B) {
	if os.Getenv("FORWARDER_SLOTS") == "" {
		b.Skip("a diagnosis, not a figure of the table: set FORWARDER_SLOTS=1")
	}
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// acceptedWatch notes when each order.accepted arrives.
type acceptedWatch struct {
	mu sync.Mutex
	at map[string]time.Time
}

func (h *harness) watchAccepted(b *testing.B) *acceptedWatch {
	w := &acceptedWatch{at: map[string]time.Time{}}
	sub, err := h.st.NATS.Subscribe(h.st.NS.HiperSubject("*", events.KindOrderAccepted), func(m *nats.Msg) {
		now := time.Now()
		acc := &eventsv1.OrderAccepted{}
		if events.Decode(m.Header, m.Data, acc) != nil {
			return
		}
		w.mu.Lock()
		if _, seen := w.at[acc.GetOrderId()]; !seen {
			w.at[acc.GetOrderId()] = now
		}
		w.mu.Unlock()
	})
	if err != nil {
		b.Fatal(err)
	}
	_ = sub.SetPendingLimits(-1, -1)
	b.Cleanup(func() { _ = sub.Unsubscribe() })
	return w
}

func (w *acceptedWatch) count(ids []string) int {
	w.mu.Lock()
	defer w.mu.Unlock()
	n := 0
	for _, id := range ids {
		if _, ok := w.at[id]; ok {
			n++
		}
	}
	return n
}

func (w *acceptedWatch) last(ids []string) time.Time {
	w.mu.Lock()
	defer w.mu.Unlock()
	var t time.Time
	for _, id := range ids {
		if w.at[id].After(t) {
			t = w.at[id]
		}
	}
	return t
}

// burst publishes n orders at once, one publisher per tenant, and returns
// orders per second from the first publish to the last order.accepted.
func (h *harness) burst(b *testing.B, w *acceptedWatch, tenants []string, prefix string, n int) float64 {
	ids := make([]string, n)
	orders := make([]*eventsv1.StoreOrderApproved, n)
	for i := range n {
		ids[i] = fmt.Sprintf("%s%d", prefix, i)
		orders[i] = h.order(tenants[i%len(tenants)], ids[i], 1+i%3)
	}
	start := time.Now()
	var wg sync.WaitGroup
	for ti, tenant := range tenants {
		wg.Go(func() {
			for i := ti; i < n; i += len(tenants) {
				if _, err := h.store.Publish(context.Background(), h.st.NS.StoreSubject(tenant, events.KindOrderApproved), "store-"+ids[i], orders[i]); err != nil {
					b.Error(err)
					return
				}
			}
		})
	}
	testkit.Wait(b, &wg, 5*time.Minute, "the burst's publishers")
	testkit.WaitFor(b, 5*time.Minute, "every order of the burst accepted", func() bool { return w.count(ids) == n })
	return float64(n) / w.last(ids).Sub(start).Seconds()
}

// steady publishes benchRate orders a second for benchSteady and returns
// the p99 of publish-to-accepted.
func (h *harness) steady(b *testing.B, w *acceptedWatch, tenants []string, prefix string) time.Duration {
	ids, sent := h.steadyRun(b, w, tenants, prefix)
	lat := make([]time.Duration, len(ids))
	w.mu.Lock()
	for i, id := range ids {
		lat[i] = w.at[id].Sub(sent[i])
	}
	w.mu.Unlock()
	return p99(lat)
}

// steadyRun publishes benchRate orders a second for benchSteady, waits
// until every one is accepted, and returns their ids and when each was
// published.
func (h *harness) steadyRun(b *testing.B, w *acceptedWatch, tenants []string, prefix string) ([]string, []time.Time) {
	n := int(benchSteady.Seconds() * benchRate)
	ids := make([]string, n)
	sent := make([]time.Time, n)
	tick := time.NewTicker(time.Second / benchRate)
	defer tick.Stop()
	for i := range n {
		<-tick.C
		ids[i] = fmt.Sprintf("%s%d", prefix, i)
		tenant := tenants[i%len(tenants)]
		o := h.order(tenant, ids[i], 1+i%3)
		sent[i] = time.Now()
		if _, err := h.store.Publish(context.Background(), h.st.NS.StoreSubject(tenant, events.KindOrderApproved), "store-"+ids[i], o); err != nil {
			b.Fatal(err)
		}
	}
	testkit.WaitFor(b, 5*time.Minute, "every order of the steady run accepted", func() bool { return w.count(ids) == n })
	return ids, sent
}

func p99(d []time.Duration) time.Duration {
	slices.Sort(d)
	return d[len(d)*99/100]
}

// Shape of BenchmarkOneLargeStore: one store, two replicas, a Hiper 100 ms
// away.
const (
	largeLatency = 100 // ms
	largeBurst   = 600
)

// BenchmarkOneLargeStore measures orders per second of a single store from
// publishing to order.accepted, two replicas with the default pace
// (ORDER_TENANT_RATE), Hiper answering each create in 100 ms: with the
// default ORDER_TENANT_INFLIGHT=1 and with 4. Beside each, the plain POST
// loop of the same orders at the same concurrency (replicas × inflight).
func BenchmarkOneLargeStore(b *testing.B) {
	for _, inflight := range []int{1, 4} {
		b.Run(fmt.Sprintf("inflight=%d", inflight), func(b *testing.B) { benchLargeStore(b, inflight) })
	}
}

func benchLargeStore(b *testing.B, inflight int) {
	tenants := []string{"big"}
	h := newHarness(b, harnessOptions{tenants: tenants, unrecorded: true})
	h.st.Sim.Sim.SetFaults(hipersim.Faults{LatencyMs: largeLatency, Endpoints: []string{hipersim.EndpointCreateOrder}})
	cfg := Config{HiperTimeout: 10 * time.Second, TenantInflight: inflight}
	for i := range benchReplicas {
		h.forwarder(cfg, fmt.Sprintf("r%d", i+1))
	}
	w := h.watchAccepted(b)
	base := h.newBaseline(b, tenants, benchReplicas*inflight)
	h.burst(b, w, tenants, "warm", 2*benchReplicas*inflight)
	n := largeBurst * inflight / 4 // about 15 s at 40 orders/s

	b.ResetTimer()
	for i := range b.N {
		rate := h.burst(b, w, tenants, fmt.Sprintf("b%d-", i), n)
		baseRate := base.burst(b, n)
		b.ReportMetric(rate, "orders/s")
		b.ReportMetric(baseRate, "baseline-orders/s")
	}
}

// baseline posts the same sales orders straight to hiper-sim.
type baseline struct {
	h *harness
	// concurrency is how many posts are under way at once.
	concurrency int
	hc          *http.Client
	url         string
	bodies      [][]byte
	tokens      []string
}

func (h *harness) newBaseline(b *testing.B, tenants []string, concurrency int) *baseline {
	bl := &baseline{h: h, url: h.st.Sim.URL + "/pedido-de-venda/", concurrency: concurrency,
		hc: &http.Client{Transport: hiperTransport(concurrency)}}
	b.Cleanup(bl.hc.CloseIdleConnections)
	for i, id := range tenants {
		tok, err := h.st.Broker.Token(context.Background(), id)
		if err != nil {
			b.Fatal(err)
		}
		// Items name products by id: no catalog is needed.
		v, reasons, err := Validate(context.Background(), id, tenant.SettingsOf(nil), nil, h.order(id, fmt.Sprintf("base-%d", i), 1+i%3))
		if err != nil || len(reasons) > 0 {
			b.Fatalf("baseline order: %v %v", reasons, err)
		}
		body, err := json.Marshal(v.Order)
		if err != nil {
			b.Fatal(err)
		}
		bl.bodies = append(bl.bodies, body)
		bl.tokens = append(bl.tokens, tok.Value)
	}
	return bl
}

func (bl *baseline) post(b *testing.B, i int) {
	k := i % len(bl.bodies)
	req, _ := http.NewRequest(http.MethodPost, bl.url, bytes.NewReader(bl.bodies[k]))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+bl.tokens[k])
	resp, err := bl.hc.Do(req)
	if err != nil {
		b.Error(err)
		return
	}
	var out hiper.CreateOrderAnswer
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil || resp.StatusCode != http.StatusOK || out.ID == "" {
		b.Errorf("baseline post: %d %v %v", resp.StatusCode, out.Errors, err)
	}
	resp.Body.Close()
}

// burst posts n orders from bl.concurrency goroutines; orders per second.
func (bl *baseline) burst(b *testing.B, n int) float64 {
	start := time.Now()
	var wg sync.WaitGroup
	for g := range bl.concurrency {
		wg.Go(func() {
			for i := g; i < n; i += bl.concurrency {
				bl.post(b, i)
			}
		})
	}
	testkit.Wait(b, &wg, 5*time.Minute, "the baseline's posters")
	return float64(n) / time.Since(start).Seconds()
}

// steady posts benchRate orders a second for benchSteady; p99 latency.
func (bl *baseline) steady(b *testing.B) time.Duration {
	n := int(benchSteady.Seconds() * benchRate)
	lat := make([]time.Duration, n)
	tick := time.NewTicker(time.Second / benchRate)
	defer tick.Stop()
	var wg sync.WaitGroup
	for i := range n {
		<-tick.C
		wg.Go(func() {
			t0 := time.Now()
			bl.post(b, i)
			lat[i] = time.Since(t0)
		})
	}
	testkit.Wait(b, &wg, 5*time.Minute, "the baseline's paced posts")
	return p99(lat)
}
