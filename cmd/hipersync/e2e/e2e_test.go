package e2e

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/redis/go-redis/v9"
	"google.golang.org/protobuf/proto"

	"github.com/hipersync/hipersync/pkg/events"
	eventsv1 "github.com/hipersync/hipersync/pkg/gen/hipersync/events/v1"
	"github.com/hipersync/hipersync/pkg/hiper"
	"github.com/hipersync/hipersync/pkg/hipersim"
	"github.com/hipersync/hipersync/pkg/testkit"
	"github.com/hipersync/hipersync/pkg/tlsfiles"
	"github.com/hipersync/hipersync/pkg/tlsfiles/tlstest"
)

// seen is one event hipersync published, decoded.
type seen struct {
	kind events.Kind
	msg  proto.Message
	at   time.Time // when the test received it
	seq  uint64    // its sequence in the stream
	id   string    // its Nats-Msg-Id
}

// collector reads everything published on the namespace's HIPER stream.
type collector struct {
	mu     sync.Mutex
	events []seen
}

// collect follows the namespace's HIPER stream until the test ends.
func collect(t testing.TB, js jetstream.JetStream, ns events.Namespace) *collector {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	c := &collector{}
	stopped := make(chan struct{})
	t.Cleanup(func() { cancel(); testkit.Recv(t, stopped, 30*time.Second, "the event collector to stop") })
	go func() {
		defer close(stopped)
		c.follow(ctx, t, js, ns)
	}()
	return c
}

// follow reads the stream message by message, by sequence, from any server
// that has it. Unlike a consumer, nothing of this reader lives on one
// server: a server killed under it costs the moment the stream takes to
// elect a leader, and each stored message is seen once (a consumer's
// client recreating it after a failure was seen to take minutes).
func (c *collector) follow(ctx context.Context, t testing.TB, js jetstream.JetStream, ns events.Namespace) {
	var stream jetstream.Stream
	missing := 0
	pause := func(d time.Duration) {
		select {
		case <-ctx.Done():
		case <-time.After(d):
		}
	}
	for next := uint64(1); ctx.Err() == nil; {
		rctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		var (
			m   *jetstream.RawStreamMsg
			err error
		)
		if stream == nil {
			stream, err = js.Stream(rctx, ns.Stream(events.StreamHiper))
		}
		if err == nil {
			m, err = stream.GetMsg(rctx, next)
		}
		switch {
		case errors.Is(err, jetstream.ErrMsgNotFound):
			if missing++; missing%20 == 0 {
				// Messages aged out of the stream are skipped.
				if info, err := stream.Info(rctx); err == nil && info.State.FirstSeq > next {
					next = info.State.FirstSeq
				}
			}
			pause(50 * time.Millisecond)
		case err != nil:
			pause(100 * time.Millisecond)
		default:
			missing = 0
			c.add(t, ns, m)
			next++
		}
		cancel()
	}
}

// add decodes and keeps one message of the stream.
func (c *collector) add(t testing.TB, ns events.Namespace, msg *jetstream.RawStreamMsg) {
	s, err := ns.ParseSubject(msg.Subject)
	if err != nil {
		t.Errorf("hipersync published on an unexpected subject %s", msg.Subject)
		return
	}
	// Tracing is off in this test: the traceparent is there anyway.
	if msg.Header.Get("traceparent") == "" {
		t.Errorf("%s %s carries no traceparent", msg.Subject, msg.Header.Get(events.HeaderID))
		return
	}
	m, _ := s.NewMessage()
	if err := events.Decode(msg.Header, msg.Data, m); err != nil {
		t.Errorf("undecodable %s: %v", msg.Subject, err)
		return
	}
	c.mu.Lock()
	c.events = append(c.events, seen{kind: s.Kind, msg: m, at: time.Now(), seq: msg.Sequence, id: msg.Header.Get(events.HeaderMsgID)})
	c.mu.Unlock()
}

// count is how many events of kind match.
func (c *collector) count(kind events.Kind, match func(proto.Message) bool) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := 0
	for _, e := range c.events {
		if e.kind == kind && (match == nil || match(e.msg)) {
			n++
		}
	}
	return n
}

// first returns the first event of kind that matches.
func (c *collector) first(kind events.Kind, match func(proto.Message) bool) proto.Message {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, e := range c.events {
		if e.kind == kind && match(e.msg) {
			return e.msg
		}
	}
	return nil
}

// last returns the last event of kind that matches.
func (c *collector) last(kind events.Kind, match func(proto.Message) bool) proto.Message {
	c.mu.Lock()
	defer c.mu.Unlock()
	for i := len(c.events) - 1; i >= 0; i-- {
		if e := c.events[i]; e.kind == kind && match(e.msg) {
			return e.msg
		}
	}
	return nil
}

type orderIDer interface{ GetOrderId() string }

func forOrder(id string) func(proto.Message) bool {
	return func(m proto.Message) bool { o, ok := m.(orderIDer); return ok && o.GetOrderId() == id }
}

// accessKey returns a 44-digit NF-e access key with a valid check digit.
func accessKey(serial int) string {
	base := fmt.Sprintf("4226112335384500012055001%09d1%08d", serial, serial)
	sum, w := 0, 2
	for i := len(base) - 1; i >= 0; i-- {
		sum += int(base[i]-'0') * w
		if w++; w > 9 {
			w = 2
		}
	}
	dv := 11 - sum%11
	if dv >= 10 {
		dv = 0
	}
	return base + fmt.Sprint(dv)
}

// system is every binary running against one hiper-sim account.
type system struct {
	bin      string
	key      string
	env      map[string]string
	control  *hipersim.ControlClient
	services map[string]*proc
	httpAddr map[string]string
	// tls is each process's environment for mutual TLS with token-broker:
	// its server certificate, each service's client certificate.
	tls map[string]map[string]string
}

func (s *system) startService(t testing.TB, name string, extra map[string]string) {
	t.Helper()
	env := map[string]string{"HTTP_ADDR": s.httpAddr[name]}
	for k, v := range s.env {
		env[k] = v
	}
	for k, v := range s.tls[name] {
		env[k] = v
	}
	for k, v := range extra {
		env[k] = v
	}
	p := start(t, s.bin, name, env)
	s.services[name] = p
	waitReady(t, p, "http://"+s.httpAddr[name]+"/readyz")
}

// brokerTLS sets token-broker up over mutual TLS, as in production: each
// service calls with its own identity, the CLI (s.env) with the admin's.
func (s *system) brokerTLS(t testing.TB) {
	t.Helper()
	ca := tlstest.NewCA(t)
	certs := t.TempDir()
	clientEnv := func(f tlsfiles.Files) map[string]string {
		return map[string]string{"TOKEN_BROKER_TLS_CA": f.CA, "TOKEN_BROKER_TLS_CERT": f.Cert, "TOKEN_BROKER_TLS_KEY": f.Key}
	}
	srv := ca.Issue(t, certs, "token-broker", "token-broker", "localhost")
	s.tls = map[string]map[string]string{"token-broker": {"GRPC_TLS_CERT": srv.Cert, "GRPC_TLS_KEY": srv.Key, "GRPC_TLS_CLIENT_CA": srv.CA}}
	for _, name := range serviceOrder[1:] {
		s.tls[name] = clientEnv(ca.Issue(t, certs, name, name))
	}
	for k, v := range clientEnv(ca.Issue(t, certs, "admin", "admin")) {
		s.env[k] = v
	}
}

var serviceEnv = map[string]map[string]string{
	"token-broker":    nil,
	"catalog-poller":  nil,
	"stock-poller":    nil,
	"order-forwarder": {"ORDER_RETRY_BASE": "100ms", "ORDER_RETRY_MAX": "1s"},
	"invoice-watcher": {"INVOICE_POLL_MIN": "200ms", "INVOICE_POLL_MAX": "1s", "INVOICE_RETRY_DELAY": "200ms", "INVOICE_CANCEL_GRACE": "1s"},
}

var serviceOrder = []string{"token-broker", "catalog-poller", "stock-poller", "order-forwarder", "invoice-watcher"}

func (s *system) startAll(t testing.TB, brokerExtra map[string]string) {
	t.Helper()
	for _, name := range serviceOrder {
		extra := serviceEnv[name]
		if name == "token-broker" {
			extra = brokerExtra
		}
		s.startService(t, name, extra)
	}
}

func (s *system) stopAll(t testing.TB) {
	t.Helper()
	for i := len(serviceOrder) - 1; i >= 0; i-- {
		s.services[serviceOrder[i]].stop(t)
	}
}

// order is a valid approved order for the demo catalog: one variation by
// id, one product by barcode, paid by Pix.
func order(id string, byID, byEAN hiper.Product) []byte {
	total := byID.Price.Add(byEAN.Price.Mul(hiper.DecimalFromInt(2).Decimal))
	b, _ := json.Marshal(map[string]any{
		"orderId": id, "approvedAt": time.Now().UTC().Format(time.RFC3339), "currency": "BRL",
		"customer": map[string]string{"document": "52998224725", "email": "ana@example.com", "name": "Ana Souza"},
		"billingAddress": map[string]string{"street": "Rua Principal", "number": "01", "district": "Centro",
			"postalCode": "88351001", "ibgeCityCode": "4202909"},
		"shippingAddress": map[string]string{"street": "Rua Principal", "number": "22", "district": "Centro",
			"postalCode": "88351001", "ibgeCityCode": "4202909"},
		"items": []map[string]string{
			{"productId": byID.ID, "quantity": "1", "unitPrice": byID.Price.StringFixed(2)},
			{"ean": byEAN.Barcode, "quantity": "2", "unitPrice": byEAN.Price.StringFixed(2)},
		},
		"payments":       []map[string]any{{"method": "PIX", "installments": 1, "amount": total.StringFixed(2)}},
		"shippingAmount": "0.00",
	})
	return b
}

func TestWholeSystem(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs every binary")
	}
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	bin := build(t)
	ns := events.Namespace{Prefix: testkit.Prefix(t)}
	redisURL := testkit.RedisURL()
	// Every service and the CLI run under a NATS user holding exactly the
	// permissions docs/operations.md lists; the test itself is the store.
	server := startNATS(t, ns)
	natsURL := server.ServicesURL
	defer func() {
		if v := server.Violations(); len(v) > 0 {
			t.Errorf("the documented NATS permissions are not enough; the server refused:\n%s", strings.Join(v, "\n"))
		}
	}()

	nc, err := nats.Connect(server.TestURL)
	if err != nil {
		t.Fatalf("connect to NATS: %v", err)
	}
	t.Cleanup(nc.Close)
	js, _ := jetstream.New(nc)
	t.Cleanup(func() { deleteNamespace(t, js, ns, redisURL) })
	if err := events.EnsureStreams(ctx, js, ns); err != nil {
		t.Fatal(err)
	}
	seenEvents := collect(t, js, ns)

	s := &system{bin: bin, key: testkit.RandomHex(32), services: map[string]*proc{}, httpAddr: map[string]string{}}
	simAddr, brokerAddr := testkit.FreeAddr(t), testkit.FreeAddr(t)
	sim := start(t, bin, "hiper-sim", map[string]string{"HIPER_SIM_ADDR": simAddr, "HIPER_SIM_KEYS": s.key,
		"HIPER_SIM_SEED": "demo", "HIPER_SIM_PROCESSING_DELAY": "0"})
	waitReady(t, sim, "http://"+simAddr+"/_sim/stats")
	s.control = hipersim.NewControlClient("http://"+simAddr, nil)
	s.env = map[string]string{
		"NATS_URL": natsURL, "REDIS_URL": redisURL, "HIPER_BASE_URL": "http://" + simAddr + hipersim.APIPrefix,
		"HIPERSYNC_NAMESPACE": ns.Prefix, "TOKEN_BROKER_ADDR": brokerAddr, "EVENTS_FORMAT": "json",
		// Everything a service may log, so the secrets scan at the end reads it all.
		"LOG_LEVEL": "debug",
	}
	for k, v := range testkit.SmallBounds {
		s.env[k] = v
	}
	for _, name := range serviceOrder {
		s.httpAddr[name] = testkit.FreeAddr(t)
	}
	s.brokerTLS(t)
	brokerEnv := map[string]string{"GRPC_ADDR": brokerAddr, "HIPERSYNC_MASTER_KEY": masterKey()}
	s.startService(t, "token-broker", brokerEnv)

	// Connect the store, as an operator does.
	out := cli(t, bin, s.env, s.key, "tenant", "connect", "shop", "--key-file", "-")
	if !strings.Contains(out, "active") {
		t.Fatalf("connect: %s", out)
	}
	for _, name := range serviceOrder[1:] {
		s.startService(t, name, serviceEnv[name])
	}
	// The console, as its own process: ready, and it answers an operator.
	s.startConsole(ctx, t, "shop")

	// Catalog and stock arrive: every product with a category or a brand
	// is published, the others are held back with a reason.
	products, err := s.control.Products(ctx, s.key)
	if err != nil {
		t.Fatal(err)
	}
	var publishable, held int
	var byID, byEAN hiper.Product
	for _, p := range products {
		if p.Category == "" && p.Brand == "" {
			held++
			continue
		}
		publishable++
		if bool(p.Active) && !p.IsParent() && p.IsVariation() && byID.ID == "" {
			byID = p
		}
		if bool(p.Active) && !p.IsParent() && !p.IsVariation() && p.Barcode != "" && byEAN.ID == "" {
			byEAN = p
		}
	}
	testkit.WaitFor(t, 60*time.Second, "the catalog", func() bool {
		return seenEvents.count(events.KindCatalogProductUpserted, nil) == publishable &&
			seenEvents.count(events.KindCatalogProductSkipped, nil) == held && seenEvents.count(events.KindStockChanged, nil) > 0
	})

	// A stock change in Hiper reaches the store after a sync asked for now.
	if err := s.control.SetStock(ctx, s.key, byEAN.ID, hiper.MustDecimal("42")); err != nil {
		t.Fatal(err)
	}
	cli(t, bin, s.env, "", "sync", "shop", "--stock")
	// stockIs: the store's last stock of byEAN is want.
	stockIs := func(want string) func() bool {
		return func() bool {
			sc, _ := seenEvents.last(events.KindStockChanged, func(m proto.Message) bool {
				return m.(*eventsv1.StockChanged).GetProductId() == byEAN.ID
			}).(*eventsv1.StockChanged)
			return sc.GetQuantity() == want
		}
	}
	testkit.WaitFor(t, 30*time.Second, "the stock change", stockIs("42"))
	// From now on only the orders' refreshes can bring stock to the store
	// within the test (seed 001: orders reserve and free stock).
	cli(t, bin, s.env, "", "tenant", "settings", "shop", "--stock-interval", "1h")

	// Orders published by a plain NATS client: no headers at all.
	publish := func(subject string, body []byte) {
		t.Helper()
		if _, err := js.Publish(ctx, subject, body); err != nil {
			t.Fatal(err)
		}
	}
	approved := ns.StoreSubject("shop", events.KindOrderApproved)
	hiperID := func(orderID string) string {
		t.Helper()
		testkit.WaitFor(t, 30*time.Second, "order "+orderID+" to be accepted", func() bool {
			return seenEvents.count(events.KindOrderAccepted, forOrder(orderID)) > 0
		})
		return seenEvents.first(events.KindOrderAccepted, forOrder(orderID)).(*eventsv1.OrderAccepted).GetHiperOrderId()
	}
	for _, id := range []string{"e2e-1", "e2e-2", "e2e-3"} {
		publish(approved, order(id, byID, byEAN))
	}
	h1, h2, h3 := hiperID("e2e-1"), hiperID("e2e-2"), hiperID("e2e-3")

	// Hiper invoices and ships e2e-1.
	key := accessKey(1234)
	if err := s.control.AddOrderEvent(ctx, s.key, h1, hiper.OrderEvent{Type: hiper.EventInvoiceIssued, Note: "NF 1234",
		FiscalKey: key, FiscalType: "NFe", FiscalXMLURL: "https://nfe.example/1234.xml"}); err != nil {
		t.Fatal(err)
	}
	if err := s.control.AddOrderEvent(ctx, s.key, h1, hiper.OrderEvent{Type: hiper.EventShipped, Note: "BR123456789BR"}); err != nil {
		t.Fatal(err)
	}
	testkit.WaitFor(t, 30*time.Second, "invoice.issued and order.shipped", func() bool {
		return seenEvents.count(events.KindInvoiceIssued, forOrder("e2e-1")) > 0 && seenEvents.count(events.KindOrderShipped, forOrder("e2e-1")) > 0
	})
	inv := seenEvents.first(events.KindInvoiceIssued, forOrder("e2e-1")).(*eventsv1.InvoiceIssued)
	if inv.GetNumber() != "1234" || inv.GetAccessKey() != key || inv.GetHiperOrderId() != h1 {
		t.Fatalf("invoice: %v", inv)
	}
	if sh := seenEvents.first(events.KindOrderShipped, forOrder("e2e-1")).(*eventsv1.OrderShipped); !strings.Contains(sh.GetTrackingCode(), "BR123456789BR") {
		t.Fatalf("shipped: %v", sh)
	}

	// The store cancels e2e-2; the merchant cancels e2e-3 in Hiper.
	cancelBody, _ := json.Marshal(map[string]string{"orderId": "e2e-2", "reason": "customer request"})
	publish(ns.StoreSubject("shop", events.KindOrderCancelled), cancelBody)
	if err := s.control.AddOrderEvent(ctx, s.key, h3, hiper.OrderEvent{Type: hiper.EventCancelled, Note: "Cancelado pelo lojista"}); err != nil {
		t.Fatal(err)
	}
	origin := func(id, want string) func() bool {
		return func() bool {
			return seenEvents.count(events.KindOrderCancelled, func(m proto.Message) bool {
				c := m.(*eventsv1.OrderCancelled)
				return c.GetOrderId() == id && c.GetOrigin() == want
			}) > 0
		}
	}
	testkit.WaitFor(t, 30*time.Second, "the store's cancellation", origin("e2e-2", "store"))
	testkit.WaitFor(t, 30*time.Second, "Hiper's cancellation", origin("e2e-3", "hiper"))
	// Both cancellations freed their stock, and the store sees it at once,
	// not at the next poll an hour away: 42, less 2 for each of the three
	// orders, plus 2 for each cancelled.
	testkit.WaitFor(t, 30*time.Second, "the stock the cancellations freed", stockIs("40"))

	// A bad order is rejected with its reasons and never reaches Hiper.
	bad := strings.Replace(strings.Replace(string(order("e2e-bad", byID, byEAN)), "52998224725", "12345678900", 1), "88351001", "8835", 1)
	publish(approved, []byte(bad))
	testkit.WaitFor(t, 30*time.Second, "the rejection", func() bool { return seenEvents.count(events.KindOrderRejected, forOrder("e2e-bad")) > 0 })
	rej := seenEvents.first(events.KindOrderRejected, forOrder("e2e-bad")).(*eventsv1.OrderRejected)
	codes := map[string]bool{}
	for _, r := range rej.GetReasons() {
		codes[r.GetCode()+"@"+r.GetField()] = true
		if r.GetMessage() == "" {
			t.Errorf("reason %s has no message", r.GetCode())
		}
	}
	if !codes["invalid_document@customer.document"] || len(rej.GetReasons()) < 2 {
		t.Fatalf("rejection reasons: %v", rej.GetReasons())
	}

	// Every service restarts mid-flow: orders published while they are down
	// are all forwarded once when they come back.
	s.stopAll(t)
	for i := 4; i <= 13; i++ {
		publish(approved, order(fmt.Sprintf("e2e-%d", i), byID, byEAN))
	}
	s.startAll(t, brokerEnv)
	for i := 4; i <= 13; i++ {
		hiperID(fmt.Sprintf("e2e-%d", i))
	}

	// Exactly once, everywhere.
	orders, err := s.control.Orders(ctx, s.key)
	if err != nil {
		t.Fatal(err)
	}
	inHiper := map[string]int{}
	for _, o := range orders {
		inHiper[o.Body.StoreOrderID]++
		if o.ID == h2 && !o.Status.Cancelled {
			t.Error("the store's cancellation of e2e-2 never reached Hiper")
		}
	}
	for i := 1; i <= 13; i++ {
		id := fmt.Sprintf("e2e-%d", i)
		if inHiper[id] != 1 {
			t.Errorf("order %s is in Hiper %d times", id, inHiper[id])
		}
		if n := seenEvents.count(events.KindOrderAccepted, forOrder(id)); n != 1 {
			t.Errorf("order %s accepted %d times", id, n)
		}
	}
	if inHiper["e2e-bad"] != 0 {
		t.Error("the bad order reached Hiper")
	}
	for _, k := range []events.Kind{events.KindInvoiceIssued, events.KindOrderShipped} {
		if n := seenEvents.count(k, forOrder("e2e-1")); n != 1 {
			t.Errorf("%s published %d times for e2e-1", k, n)
		}
	}
	for _, id := range []string{"e2e-2", "e2e-3"} {
		if n := seenEvents.count(events.KindOrderCancelled, forOrder(id)); n != 1 {
			t.Errorf("order.cancelled published %d times for %s", n, id)
		}
	}
	if n := seenEvents.count(events.KindCatalogProductUpserted, nil); n != publishable {
		t.Errorf("the restart republished the catalog: %d upserts for %d products", n, publishable)
	}

	// No log line, dead letter or Redis value holds a secret.
	s.stopAll(t)
	assertNoSecrets(t, js, ns, redisURL, map[string]string{
		"security key": s.key, "master key": brokerEnv["HIPERSYNC_MASTER_KEY"],
	})
}

// deleteNamespace removes the test's streams, buckets and Redis keys.
func deleteNamespace(t testing.TB, js jetstream.JetStream, ns events.Namespace, redisURL string) {
	testkit.DeleteNamespace(t, js, ns.Prefix)
	if opts, err := redis.ParseURL(redisURL); err == nil {
		rdb := redis.NewClient(opts)
		defer rdb.Close()
		testkit.DeleteRedisKeys(rdb, ns.Prefix)
	}
}
