package e2e

import (
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/protobuf/proto"

	"github.com/hipersync/hipersync/pkg/events"
	eventsv1 "github.com/hipersync/hipersync/pkg/gen/hipersync/events/v1"
	"github.com/hipersync/hipersync/pkg/hiper"
	"github.com/hipersync/hipersync/pkg/hipersim"
	"github.com/hipersync/hipersync/pkg/natstest"
	"github.com/hipersync/hipersync/pkg/testkit"
)

// clusterSystem is every service, two replicas each, on a three-node NATS
// cluster with HIPERSYNC_STREAM_REPLICAS=3.
type clusterSystem struct {
	*system
	cluster  *natstest.Cluster
	js       jetstream.JetStream
	ns       events.Namespace
	seen     *collector
	replicas map[string][]*proc
	byID     hiper.Product
	byEAN    hiper.Product
}

// startClusterSystem starts the cluster, hiper-sim, and then every
// service's two replicas at the same moment, as a fresh install does.
func startClusterSystem(t testing.TB, ctx context.Context) *clusterSystem {
	t.Helper()
	return startSystemOn(t, ctx, 3, 2, serviceOrder)
}

// startSystemOn starts a NATS cluster of nodes (1: a single server) with
// streams of as many replicas, hiper-sim, and replicas of each of services
// at the same moment.
func startSystemOn(t testing.TB, ctx context.Context, nodes, replicas int, services []string) *clusterSystem {
	t.Helper()
	bin := build(t)
	c := natstest.StartCluster(t, nodes)
	_, js := c.Connect(t)
	ns := events.Namespace{Prefix: testkit.Prefix(t), Replicas: nodes}
	redisURL := testkit.RedisURL()
	t.Cleanup(func() { deleteNamespace(t, js, ns, redisURL) })

	s := &system{bin: bin, key: testkit.RandomHex(32), services: map[string]*proc{}, httpAddr: map[string]string{}}
	simAddr := testkit.FreeAddr(t)
	sim := start(t, bin, "hiper-sim", map[string]string{"HIPER_SIM_ADDR": simAddr, "HIPER_SIM_KEYS": s.key,
		"HIPER_SIM_SEED": "demo", "HIPER_SIM_PROCESSING_DELAY": "0"})
	waitReady(t, sim, "http://"+simAddr+"/_sim/stats")
	s.control = hipersim.NewControlClient("http://"+simAddr, nil)
	brokerAddrs := []string{testkit.FreeAddr(t), testkit.FreeAddr(t)}
	s.env = map[string]string{
		"NATS_URL": c.URL(), "REDIS_URL": redisURL, "HIPER_BASE_URL": "http://" + simAddr + hipersim.APIPrefix,
		"HIPERSYNC_NAMESPACE": ns.Prefix, "TOKEN_BROKER_ADDR": brokerAddrs[0], "EVENTS_FORMAT": "json",
		"HIPERSYNC_STREAM_REPLICAS": fmt.Sprint(nodes),
	}
	for k, v := range testkit.SmallBounds {
		s.env[k] = v
	}
	s.brokerTLS(t)
	cs := &clusterSystem{system: s, cluster: c, js: js, ns: ns, replicas: map[string][]*proc{}}
	master := masterKey()
	type starting struct {
		p   *proc
		url string
	}
	var all []starting
	for _, name := range services {
		for r := range replicas {
			env := map[string]string{"HTTP_ADDR": testkit.FreeAddr(t)}
			for k, v := range s.env {
				env[k] = v
			}
			for k, v := range serviceEnv[name] {
				env[k] = v
			}
			for k, v := range clusterEnv[name] {
				env[k] = v
			}
			if slices.Contains(strings.Split(os.Getenv("E2E_DEBUG"), ","), name) {
				env["LOG_LEVEL"] = "debug" // with E2E_KEEP_LOGS, to see a failure
			}
			for k, v := range s.tls[name] {
				env[k] = v
			}
			if name == "token-broker" {
				env["GRPC_ADDR"], env["HIPERSYNC_MASTER_KEY"] = brokerAddrs[r], master
			}
			p := start(t, bin, name, env)
			cs.replicas[name] = append(cs.replicas[name], p)
			all = append(all, starting{p, "http://" + env["HTTP_ADDR"] + "/readyz"})
		}
	}
	for _, st := range all {
		waitReady(t, st.p, st.url)
	}
	t.Cleanup(func() {
		if d := os.Getenv("E2E_KEEP_LOGS"); d != "" {
			for i, st := range all {
				b, _ := os.ReadFile(st.p.log)
				_ = os.WriteFile(fmt.Sprintf("%s/%02d-%s.log", d, i, st.p.name), b, 0o644)
			}
		}
		if !t.Failed() {
			return
		}
		for _, st := range all {
			t.Logf("%s (%s), its warnings and errors:\n%s", st.p.name, st.p.log, problems(st.p.log))
		}
	})
	cs.seen = collect(t, js, ns)

	// Stock polled every 10s: a change is published within seconds even
	// when a node failure delays a "sync now" request.
	out := cli(t, bin, s.env, s.key, "tenant", "connect", "shop", "--key-file", "-")
	if !strings.Contains(out, "active") {
		t.Fatalf("connect: %s", out)
	}
	cli(t, bin, s.env, "", "tenant", "settings", "shop", "--stock-interval", "10s")
	products, err := s.control.Products(ctx, s.key)
	if err != nil {
		t.Fatal(err)
	}
	publishable := 0
	for _, p := range products {
		if p.Category == "" && p.Brand == "" {
			continue
		}
		publishable++
		if bool(p.Active) && !p.IsParent() && p.IsVariation() && cs.byID.ID == "" {
			cs.byID = p
		}
		if bool(p.Active) && !p.IsParent() && !p.IsVariation() && p.Barcode != "" && cs.byEAN.ID == "" {
			cs.byEAN = p
		}
	}
	testkit.WaitFor(t, 2*time.Minute, "the catalog", func() bool {
		return cs.seen.count(events.KindCatalogProductUpserted, nil) >= publishable
	})
	return cs
}

// publishOrders publishes approved orders prefix-from..prefix-to-1 as a
// store's client does through a node failure: each retried until the
// stream acknowledges it, under its id so a retry is never a second order.
func (cs *clusterSystem) publishOrders(t testing.TB, ctx context.Context, prefix string, from, to int, every time.Duration) {
	t.Helper()
	subject := cs.ns.StoreSubject("shop", events.KindOrderApproved)
	for i := from; i < to; i++ {
		id := fmt.Sprintf("%s-%d", prefix, i)
		body := order(id, cs.byID, cs.byEAN)
		if err := retry(ctx, func() error {
			pctx, cancel := context.WithTimeout(ctx, 2*time.Second)
			defer cancel()
			_, err := cs.js.Publish(pctx, subject, body, jetstream.WithMsgID(id))
			return err
		}); err != nil {
			t.Errorf("publish %s: %v", id, err) // Errorf: the caller may be a goroutine
			return
		}
		if every > 0 {
			time.Sleep(every)
		}
	}
}

// publishOrdersUntil publishes orders prefix-0, prefix-1, ... as
// publishOrders does, one every interval, until stop is closed; it returns
// how many it published.
func (cs *clusterSystem) publishOrdersUntil(t testing.TB, ctx context.Context, prefix string, stop <-chan struct{}, every time.Duration) int {
	for n := 0; ; n++ {
		select {
		case <-stop:
			return n
		default:
		}
		cs.publishOrders(t, ctx, prefix, n, n+1, every)
		if ctx.Err() != nil {
			return n
		}
	}
}

// inHiper counts the orders in Hiper whose store order id has prefix.
func (cs *clusterSystem) inHiper(t testing.TB, ctx context.Context, prefix string) int {
	t.Helper()
	orders, err := cs.control.Orders(ctx, cs.key)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, o := range orders {
		if strings.HasPrefix(o.Body.StoreOrderID, prefix) {
			n++
		}
	}
	return n
}

// outcomes counts, per order, the outcome events hipersync published.
func (cs *clusterSystem) outcomes(id string) (accepted, other int) {
	accepted = cs.seen.count(events.KindOrderAccepted, forOrder(id))
	for _, k := range []events.Kind{events.KindOrderNeedsReview, events.KindOrderRejected, events.KindOrderFailed} {
		other += cs.seen.count(k, forOrder(id))
	}
	return accepted, other
}

// checkOrders waits for an outcome of every order and checks each is in
// Hiper exactly once, or is in needs_review, with one outcome event.
func (cs *clusterSystem) checkOrders(t testing.TB, ctx context.Context, prefix string, n int) {
	t.Helper()
	testkit.WaitFor(t, 3*time.Minute, fmt.Sprintf("an outcome for each of %d %s orders", n, prefix), func() bool {
		for i := range n {
			if a, o := cs.outcomes(fmt.Sprintf("%s-%d", prefix, i)); a+o == 0 {
				return false
			}
		}
		return true
	})
	orders, err := cs.control.Orders(ctx, cs.key)
	if err != nil {
		t.Fatal(err)
	}
	inHiper := map[string]int{}
	for _, o := range orders {
		inHiper[o.Body.StoreOrderID]++
	}
	review := 0
	for i := range n {
		id := fmt.Sprintf("%s-%d", prefix, i)
		accepted, other := cs.outcomes(id)
		reviewed := cs.seen.count(events.KindOrderNeedsReview, forOrder(id))
		review += reviewed
		switch {
		case accepted+other != 1:
			t.Errorf("order %s: %d outcome events (%d accepted), want 1", id, accepted+other, accepted)
		case accepted == 1 && inHiper[id] != 1:
			t.Errorf("order %s accepted but in Hiper %d times", id, inHiper[id])
		case reviewed == 1 && inHiper[id] > 1:
			t.Errorf("order %s in needs_review and in Hiper %d times", id, inHiper[id])
		case accepted == 0 && reviewed == 0:
			t.Errorf("order %s neither accepted nor in needs_review", id)
		}
	}
	t.Logf("%d %s orders: %d in needs_review", n, prefix, review)
}

// clusterEnv is what TestCluster sets beside serviceEnv. Its 1,000 orders
// stay open in one store, and each would be polled every second: a
// thousand Hiper calls a second where the store's pace allows ten (5 per
// replica), so which order gets a call is a lottery and an invoice took up to
// two minutes to come, kill or no kill. Polled every 5 s at most, at up to
// 150 calls a second per replica, every open order has its turn within
// the schedule, and the invoices measure what a node kill costs.
var clusterEnv = map[string]map[string]string{
	"invoice-watcher": {"INVOICE_POLL_MAX": "5s", "INVOICE_TENANT_RATE": "150"},
}

// invoiceAfterKill bounds the time from a node kill to an invoice issued
// then reaching the store: the schedule's ceiling (5 s, +10 % jitter), a
// poll task whose settling the kill lost coming back after its ack wait
// (30 s), and a publish retried after the stream's election (5 s).
const invoiceAfterKill = 45 * time.Second

// TestCluster runs the whole system on a three-node NATS cluster: every
// service starts at once in two replicas against the fresh cluster; 1,000
// orders flow while the leader of STORE is killed with -9 and restarted;
// pollers and the invoice-watcher publish each change once across a node
// kill; and a rolling restart of the cluster loses no order.
func TestCluster(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a NATS cluster and every binary twice")
	}
	t.Parallel()
	// Room for a machine loaded by others: a run takes about 4 minutes.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	cs := startClusterSystem(t, ctx)

	t.Run("1000 orders across a leader kill", func(t *testing.T) {
		leader, err := cs.cluster.StreamLeader(ctx, cs.js, cs.ns.Stream(events.StreamStore))
		if err != nil {
			t.Fatal(err)
		}
		// 800 orders before the kill, 200 once it happened: those meet
		// STORE without a leader and are retried through the election,
		// however fast the machine published the others. The forwarders'
		// pace (ORDER_TENANT_RATE, 50 calls a second per replica) keeps the
		// first 800 in flight for seconds after the 100th is accepted, on
		// any machine. (200, not more, after the kill: one publisher's
		// acknowledged publishes are slower than the forwarders here.)
		const before = 800
		killed, done := make(chan struct{}), make(chan struct{})
		go func() {
			defer close(done)
			cs.publishOrders(t, ctx, "k", 0, before, 0)
			select {
			case <-killed:
				cs.publishOrders(t, ctx, "k", before, 1000, 0)
			case <-ctx.Done():
			}
		}()
		testkit.WaitFor(t, time.Minute, "orders flowing", func() bool {
			return cs.seen.count(events.KindOrderAccepted, nil) >= 100
		})
		leader.Kill()
		close(killed)
		// Read after the kill, Hiper's count is at least what was done at
		// the kill.
		left := before - cs.inHiper(t, ctx, "k-")
		t.Logf("killed %s, the leader of %s: %d of the first %d orders not in Hiper yet", leader.Name, cs.ns.Stream(events.StreamStore), left, before)
		if left <= 0 {
			t.Errorf("the kill came after the first %d orders were in Hiper: no order was in flight", before)
		}
		testkit.WaitFor(t, time.Minute, "orders accepted after the kill", func() bool {
			return cs.seen.count(events.KindOrderAccepted, nil) >= 300
		})
		leader.Restart()
		testkit.Recv(t, done, 2*time.Minute, "the publisher to finish")
		cs.checkOrders(t, ctx, "k", 1000)
		cs.cluster.WaitHealthy(t, time.Minute)
	})

	t.Run("cursors across a node kill", func(t *testing.T) {
		// Five accepted orders are invoiced in Hiper and two stock levels
		// change while a node is down.
		var invoiced []string
		for i := 0; len(invoiced) < 5 && i < 1000; i++ {
			id := fmt.Sprintf("k-%d", i)
			if m := cs.seen.first(events.KindOrderAccepted, forOrder(id)); m != nil {
				invoiced = append(invoiced, id)
			}
		}
		if len(invoiced) < 5 { // run alone
			invoiced = invoiced[:0]
			cs.publishOrders(t, ctx, "c", 0, 5, 0)
			for i := range 5 {
				id := fmt.Sprintf("c-%d", i)
				testkit.WaitFor(t, time.Minute, id+" accepted", func() bool { return cs.seen.count(events.KindOrderAccepted, forOrder(id)) > 0 })
				invoiced = append(invoiced, id)
			}
		}
		upserts := cs.seen.count(events.KindCatalogProductUpserted, nil)
		leader, err := cs.cluster.StreamLeader(ctx, cs.js, cs.ns.Stream(events.StreamHiper))
		if err != nil {
			t.Fatal(err)
		}
		killed := time.Now()
		leader.Kill()
		t.Logf("%s killed %s, the leader of %s", killed.Format("15:04:05.000"), leader.Name, cs.ns.Stream(events.StreamHiper))
		for n, id := range invoiced {
			h := cs.seen.first(events.KindOrderAccepted, forOrder(id)).(*eventsv1.OrderAccepted).GetHiperOrderId()
			if err := cs.control.AddOrderEvent(ctx, cs.key, h, hiper.OrderEvent{Type: hiper.EventInvoiceIssued,
				Note: fmt.Sprintf("NF %d", 5000+n), FiscalKey: accessKey(5000 + n), FiscalType: "NFe"}); err != nil {
				t.Fatal(err)
			}
		}
		quantities := []string{"101", "102"}
		for _, q := range quantities {
			if err := cs.control.SetStock(ctx, cs.key, cs.byEAN.ID, hiper.MustDecimal(q)); err != nil {
				t.Fatal(err)
			}
			cliRetry(t, ctx, cs.system, "sync", "shop", "--stock")
			// Seconds after the kill: the poller's lease, its watches and its
			// publishes all recover within that (docs/operations.md).
			testkit.WaitFor(t, time.Minute, "stock "+q, func() bool { return cs.stockSeen(q) > 0 })
			at, _ := cs.seen.firstAt(events.KindStockChanged, cs.stockAt(q))
			t.Logf("%s stock %s published, %s after the kill", at.Format("15:04:05.000"), q, at.Sub(killed).Round(time.Millisecond))
		}
		leader.Restart()
		t.Logf("%s restarted %s", time.Now().Format("15:04:05.000"), leader.Name)
		testkit.WaitFor(t, invoiceAfterKill-time.Since(killed), "the invoices", func() bool {
			for _, id := range invoiced {
				if cs.seen.count(events.KindInvoiceIssued, forOrder(id)) == 0 {
					return false
				}
			}
			return true
		})
		for _, id := range invoiced {
			at, _ := cs.seen.firstAt(events.KindInvoiceIssued, forOrder(id))
			t.Logf("the invoice of %s published %s after the kill", id, at.Sub(killed).Round(time.Millisecond))
		}
		cs.cluster.WaitHealthy(t, time.Minute)
		// One more change after the node is back: whatever was to be
		// published twice would be by the time this one arrives.
		if err := cs.control.SetStock(ctx, cs.key, cs.byEAN.ID, hiper.MustDecimal("104")); err != nil {
			t.Fatal(err)
		}
		cliRetry(t, ctx, cs.system, "sync", "shop", "--stock")
		testkit.WaitFor(t, time.Minute, "stock 104", func() bool { return cs.stockSeen("104") > 0 })
		for _, id := range invoiced {
			if n := cs.seen.count(events.KindInvoiceIssued, forOrder(id)); n != 1 {
				t.Errorf("invoice.issued published %d times for %s", n, id)
			}
		}
		for _, q := range append(quantities, "104") {
			switch n := cs.stockSeen(q); {
			case n == 0:
				t.Errorf("stock change to %s never published", q)
			case n > 1:
				t.Errorf("stock change to %s published %d times: %s", q, n, cs.seen.describe(events.KindStockChanged, cs.stockAt(q)))
			}
		}
		if n := cs.seen.count(events.KindCatalogProductUpserted, nil); n != upserts {
			t.Errorf("the catalog cursor was lost: %d upserts after the kill, %d before", n, upserts)
		}
	})

	t.Run("rolling restart", func(t *testing.T) {
		// Orders every 20 ms from the first node's stop until the last is
		// back: each restart has orders in flight, however fast the
		// machine (a fixed 150 could all be done before the last node
		// stopped).
		restarted := make(chan struct{})
		published := make(chan int, 1)
		go func() { published <- cs.publishOrdersUntil(t, ctx, "r", restarted, 20*time.Millisecond) }()
		for _, nd := range cs.cluster.Nodes {
			nd.Stop()
			nd.Restart()
			cs.cluster.WaitHealthy(t, time.Minute)
		}
		close(restarted)
		n := testkit.Recv(t, published, 2*time.Minute, "the publisher to finish")
		cs.checkOrders(t, ctx, "r", n)
	})
}

// problems is the lines of a service's log at WARN or ERROR level.
func problems(path string) string {
	b, _ := os.ReadFile(path)
	var out []string
	for _, line := range strings.Split(string(b), "\n") {
		if strings.Contains(line, `"level":"WARN"`) || strings.Contains(line, `"level":"ERROR"`) {
			out = append(out, line)
		}
	}
	return strings.Join(out[max(0, len(out)-15):], "\n")
}

// stockSeen counts stock.changed events of the test's product at q.
func (cs *clusterSystem) stockSeen(q string) int {
	return cs.seen.count(events.KindStockChanged, cs.stockAt(q))
}

// stockAt matches a stock.changed event of the test's product at q.
func (cs *clusterSystem) stockAt(q string) func(proto.Message) bool {
	return func(m proto.Message) bool {
		sc := m.(*eventsv1.StockChanged)
		return sc.GetProductId() == cs.byEAN.ID && sc.GetQuantity() == q
	}
}

// describe lists the events of kind that match: stream sequence, id and
// when the test read each, to tell a message stored twice from two changes.
func (c *collector) describe(kind events.Kind, match func(proto.Message) bool) string {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []string
	for _, e := range c.events {
		if e.kind == kind && match(e.msg) {
			out = append(out, fmt.Sprintf("#%d %s at %s", e.seq, e.id, e.at.Format("15:04:05.000")))
		}
	}
	return strings.Join(out, "; ")
}

// cliRetry runs the CLI until it succeeds: during a node failure a command
// may meet a stream without a leader for a moment.
func cliRetry(t testing.TB, ctx context.Context, s *system, args ...string) {
	t.Helper()
	if err := retry(ctx, func() error {
		_, err := cliErr(s.bin, s.env, "", args...)
		return err
	}); err != nil {
		t.Fatal(err)
	}
}

// retry calls try until it succeeds, by ctx's deadline: nil, or try's last
// error.
func retry(ctx context.Context, try func() error) error {
	deadline, _ := ctx.Deadline()
	var last error
	if testkit.Until(time.Until(deadline), func() bool { last = try(); return last == nil || ctx.Err() != nil }) && last == nil {
		return nil
	}
	return errors.Join(ctx.Err(), last)
}

// firstAt is when the test first received an event of kind that matches.
func (c *collector) firstAt(kind events.Kind, match func(proto.Message) bool) (time.Time, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, e := range c.events {
		if e.kind == kind && match(e.msg) {
			return e.at, true
		}
	}
	return time.Time{}, false
}

// BenchmarkOrdersOnCluster measures orders/s through the order-forwarder
// on a three-node cluster with R3 streams against the baseline of a single
// server in the same run, and on the cluster the time from a kill -9 of
// STORE's leader to the first order, published after the kill, that Hiper
// accepted. Each system runs token-broker, catalog-poller and one
// order-forwarder.
func BenchmarkOrdersOnCluster(b *testing.B) {
	const batch = 300
	services := []string{"token-broker", "catalog-poller", "order-forwarder"}
	rate := func(nodes int) (float64, *clusterSystem, context.Context) {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		b.Cleanup(cancel)
		cs := startSystemOn(b, ctx, nodes, 1, services)
		start := time.Now()
		prefix := fmt.Sprintf("b%d", nodes)
		for i := range b.N {
			p := fmt.Sprintf("%s-%d", prefix, i)
			cs.publishOrders(b, ctx, p, 0, batch, 0)
			testkit.WaitFor(b, 3*time.Minute, "the batch accepted", func() bool {
				return cs.seen.count(events.KindOrderAccepted, nil) >= (i+1)*batch
			})
		}
		return float64(b.N*batch) / time.Since(start).Seconds(), cs, ctx
	}
	single, _, _ := rate(1)
	clustered, cs, ctx := rate(3)

	// Orders keep coming while STORE's leader is killed.
	leader, err := cs.cluster.StreamLeader(ctx, cs.js, cs.ns.Stream(events.StreamStore))
	if err != nil {
		b.Fatal(err)
	}
	killed := time.Now()
	leader.Kill()
	cs.publishOrders(b, ctx, "after", 0, 20, 0)
	var first time.Duration
	testkit.WaitFor(b, 2*time.Minute, "an order published after the kill accepted", func() bool {
		for i := range 20 {
			if at, ok := cs.seen.firstAt(events.KindOrderAccepted, forOrder(fmt.Sprintf("after-%d", i))); ok {
				first = at.Sub(killed)
				return true
			}
		}
		return false
	})
	leader.Restart()
	b.ReportMetric(clustered, "orders/s")
	b.ReportMetric(single, "baseline-orders/s")
	b.ReportMetric(float64(first.Milliseconds()), "kill-to-accept-ms")
	b.ReportMetric(0, "ns/op")
}
