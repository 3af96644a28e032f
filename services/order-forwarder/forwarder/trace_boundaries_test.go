package forwarder_test

import (
	"bufio"
	"context"
	"encoding/json"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"go.opentelemetry.io/contrib/instrumentation/google.golang.org/grpc/otelgrpc"
	"go.opentelemetry.io/otel/propagation"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/hipersync/hipersync/pkg/brokerclient"
	"github.com/hipersync/hipersync/pkg/events"
	eventsv1 "github.com/hipersync/hipersync/pkg/gen/hipersync/events/v1"
	"github.com/hipersync/hipersync/pkg/hipersim"
	"github.com/hipersync/hipersync/pkg/service"
	"github.com/hipersync/hipersync/pkg/telemetry"
	"github.com/hipersync/hipersync/pkg/testkit"
	"github.com/hipersync/hipersync/services/order-forwarder/forwarder"
	"github.com/hipersync/hipersync/services/token-broker/brokertest"
)

// TestOneTraceAcrossProcesses follows one order across every process
// boundary — the store's event over NATS, the forwarder's call to
// token-broker over gRPC (token-broker's own span included), the POST to
// Hiper over HTTP, the outcome event over NATS to whoever consumes it — and
// expects a single trace, each hop the child of the one before, and the
// forwarder's log lines carrying its trace id. TestTraceFollowsTheOrder
// checks the forwarder's own spans; this one the hand-overs. Providers and
// propagators are passed explicitly, never set globally, so the test shares
// nothing with its neighbours.
func TestOneTraceAcrossProcesses(t *testing.T) {
	t.Parallel()
	spans := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(spans))
	t.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
	// What telemetry.SetupTracing installs globally in the binaries.
	prop := propagation.NewCompositeTextMapPropagator(propagation.TraceContext{}, propagation.Baggage{})

	st := brokertest.Start(t, brokertest.Options{
		Seed: hipersim.SeedDemo, Sim: hipersim.Config{ProcessingDelay: -1},
		TracerProvider: tp, Propagator: prop,
	})
	// The services' connection to token-broker, as brokerclient.Dial makes
	// it but with the test's provider.
	conn, err := grpc.NewClient(st.BrokerAddr, grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithStatsHandler(otelgrpc.NewClientHandler(otelgrpc.WithTracerProvider(tp), otelgrpc.WithPropagators(prop))))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })

	logs := &testkit.SyncBuffer{}
	ctx, cancel := context.WithCancel(context.Background())
	f, err := forwarder.Start(ctx, forwarder.Deps{Deps: service.Deps{
		NATS: st.NATS, Namespace: st.NS, Tokens: brokerclient.New(conn), HiperBaseURL: st.Sim.URL,
		Format: events.FormatProtobuf, Health: telemetry.NewHealth(),
		Log: telemetry.NewLogger("order-forwarder", logs, slog.LevelDebug), TracerProvider: tp,
	}})
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	var running sync.WaitGroup
	running.Go(func() { _ = f.Run(ctx) })

	// Downstream of hipersync, a consumer of the outcome events.
	outcome := make(chan trace.SpanContext, 1)
	running.Go(func() {
		_ = events.Consume(ctx, st.JS, st.NS, events.ConsumerConfig{
			Stream: events.StreamHiper, Name: "store-outcomes",
			FilterSubjects: []string{st.NS.HiperSubject("*", events.KindOrderAccepted)},
		}, func(ctx context.Context, m *events.Message) error {
			select {
			case outcome <- trace.SpanContextFromContext(ctx):
			default:
			}
			return nil
		}, events.WithTracerProvider(tp))
	})
	t.Cleanup(func() {
		cancel()
		testkit.Wait(t, &running, 30*time.Second, "the forwarder and the store's consumer to stop")
	})

	// The store checks out an order and publishes its approval.
	order := sellableOrder(t, st)
	sctx, checkout := tp.Tracer("store").Start(context.Background(), "store checkout")
	store := events.NewPublisher(st.JS, st.NS, "test-store", events.FormatJSON, events.WithTracerProvider(tp))
	if _, err := store.Publish(sctx, st.NS.StoreSubject("acme", events.KindOrderApproved), "acme:trace-1:approved", order); err != nil {
		t.Fatal(err)
	}
	checkout.End()
	traceID := checkout.SpanContext().TraceID()

	select {
	case sc := <-outcome:
		if sc.TraceID() != traceID {
			t.Fatalf("the outcome event's consumer is in trace %s, want the store's %s", sc.TraceID(), traceID)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("no order.accepted within 30s")
	}

	// Each hop, by span name and kind, and the hop it must descend from.
	hops := []struct {
		name   string
		kind   trace.SpanKind
		parent string // its direct parent; "" for the root
		within string // an ancestor, when the parent is some span between
	}{
		{"store checkout", trace.SpanKindInternal, "", ""},
		{"send hipersync.store.order.approved", trace.SpanKindProducer, "store checkout", ""},
		{"process hipersync.store.order.approved", trace.SpanKindConsumer, "send hipersync.store.order.approved", ""},
		{"hipersync.broker.v1.TokenService/GetToken", trace.SpanKindClient, "", "process hipersync.store.order.approved"},
		{"hipersync.broker.v1.TokenService/GetToken", trace.SpanKindServer, "hipersync.broker.v1.TokenService/GetToken", ""},
		{"hiper POST /pedido-de-venda/", trace.SpanKindClient, "", "process hipersync.store.order.approved"},
		{"send hipersync.order.accepted", trace.SpanKindProducer, "", "process hipersync.store.order.approved"},
		{"process hipersync.order.accepted", trace.SpanKindConsumer, "send hipersync.order.accepted", ""},
	}
	var inTrace map[trace.SpanID]tracetest.SpanStub
	find := func(name string, kind trace.SpanKind) (tracetest.SpanStub, bool) {
		for _, s := range inTrace {
			if s.Name == name && (kind == trace.SpanKindUnspecified || s.SpanKind == kind) {
				return s, true
			}
		}
		return tracetest.SpanStub{}, false
	}
	// The consumer spans end after their handlers return: wait for all.
	var missing []string
	if !testkit.Until(10*time.Second, func() bool {
		inTrace = map[trace.SpanID]tracetest.SpanStub{}
		for _, s := range spans.GetSpans() {
			if s.SpanContext.TraceID() == traceID {
				inTrace[s.SpanContext.SpanID()] = s
			}
		}
		missing = nil
		for _, h := range hops {
			if _, ok := find(h.name, h.kind); !ok {
				missing = append(missing, h.name+" ("+h.kind.String()+")")
			}
		}
		return len(missing) == 0
	}) {
		var got []string
		for _, s := range inTrace {
			got = append(got, s.Name+" ("+s.SpanKind.String()+")")
		}
		t.Fatalf("the store's trace lacks %q; it has %q", missing, got)
	}
	descends := func(s tracetest.SpanStub, ancestor string) bool {
		for p, ok := inTrace[s.Parent.SpanID()]; ok; p, ok = inTrace[p.Parent.SpanID()] {
			if p.Name == ancestor {
				return true
			}
		}
		return false
	}
	for _, h := range hops {
		s, _ := find(h.name, h.kind)
		parent, hasParent := inTrace[s.Parent.SpanID()]
		switch {
		case h.parent == "" && h.within == "" && s.Parent.IsValid():
			t.Errorf("%s (%s) has a parent; want it to be the root", h.name, h.kind)
		case h.parent != "" && (!hasParent || parent.Name != h.parent):
			t.Errorf("%s (%s): parent %q, want %q", h.name, h.kind, parent.Name, h.parent)
		case h.within != "" && !descends(s, h.within):
			t.Errorf("%s (%s) does not descend from %s", h.name, h.kind, h.within)
		}
	}
	client, _ := find("hipersync.broker.v1.TokenService/GetToken", trace.SpanKindClient)
	if srv, _ := find("hipersync.broker.v1.TokenService/GetToken", trace.SpanKindServer); !srv.Parent.IsRemote() || srv.Parent.SpanID() != client.SpanContext.SpanID() {
		t.Error("token-broker's span is not the child of the forwarder's call: gRPC metadata did not carry the context")
	}

	// The forwarder's log lines about the order carry the trace id.
	var traced []string
	sc := bufio.NewScanner(strings.NewReader(logs.String()))
	for sc.Scan() {
		var line map[string]any
		if json.Unmarshal(sc.Bytes(), &line) == nil && line["trace_id"] == traceID.String() {
			traced = append(traced, line["msg"].(string))
		}
	}
	if len(traced) == 0 {
		t.Errorf("no log line of the forwarder carries trace_id %s:\n%s", traceID, logs.String())
	}
	t.Logf("log lines with the trace id: %q", traced)
}

// sellableOrder is an approval every validation rule accepts, of one unit
// of a product acme's demo catalog sells.
func sellableOrder(t *testing.T, st *brokertest.Stack) *eventsv1.StoreOrderApproved {
	t.Helper()
	for _, p := range st.Sim.Sim.Products(st.Keys["acme"]) {
		if !bool(p.Active) || bool(p.Removed) || p.IsParent() {
			continue
		}
		price := p.Price.StringFixed(2)
		addr := &eventsv1.Address{Street: "Rua Principal", Number: "01", District: "Centro", PostalCode: "88351-001", IbgeCityCode: "4202909"}
		return &eventsv1.StoreOrderApproved{
			OrderId:         "trace-1",
			Currency:        "BRL",
			Customer:        &eventsv1.Customer{Document: "529.982.247-25", Email: "ana@example.com", Name: "Ana Souza"},
			BillingAddress:  addr,
			ShippingAddress: addr,
			Items:           []*eventsv1.OrderItem{{ProductId: p.ID, Quantity: "1", UnitPrice: price}},
			Payments:        []*eventsv1.Payment{{Method: "PIX", Installments: 1, Amount: price}},
			ShippingAmount:  "0.00",
		}
	}
	t.Fatal("the demo catalog sells nothing")
	return nil
}
