package forwarder

import (
	"context"
	"strings"
	"testing"
	"time"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/hipersync/hipersync/pkg/events"
	"github.com/hipersync/hipersync/pkg/service"
	"github.com/hipersync/hipersync/pkg/telemetry"
	"github.com/hipersync/hipersync/pkg/testkit"
	"github.com/hipersync/hipersync/services/order-forwarder/orders"
)

// TestTraceFollowsTheOrder: one trace runs from the store's event through
// the forwarder's handling and Hiper's POST to the outcome event.
func TestTraceFollowsTheOrder(t *testing.T) {
	t.Parallel()
	h := newHarness(t, harnessOptions{})
	spans := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(spans))
	t.Cleanup(func() { _ = tp.Shutdown(context.Background()) })

	ctx, cancel := context.WithCancel(context.Background())
	f, err := Start(ctx, Deps{Deps: service.Deps{NATS: h.st.NATS, Namespace: h.st.NS, Tokens: h.st.Broker, HiperBaseURL: h.st.Sim.URL,
		Health: telemetry.NewHealth(), Log: testLogger(), TracerProvider: tp}, Config: testConfig()})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- f.Run(ctx) }()
	t.Cleanup(func() { cancel(); testkit.Recv(t, done, 30*time.Second, "the forwarder to stop") })

	store := events.NewPublisher(h.st.JS, h.st.NS, "test-store", events.FormatJSON, events.WithTracerProvider(tp))
	sctx, span := tp.Tracer("store").Start(context.Background(), "store approves")
	if _, err := store.Publish(sctx, h.st.NS.StoreSubject("acme", events.KindOrderApproved), "store-8001", h.order("acme", "8001", 1)); err != nil {
		t.Fatal(err)
	}
	span.End()
	traceID := span.SpanContext().TraceID()
	h.waitState("acme", "8001", orders.StateAccepted, wait)

	want := map[string]bool{"process hipersync.store.order.approved": false, "hiper POST /pedido-de-venda/": false, "send hipersync.order.accepted": false}
	for _, s := range spans.Ended() {
		if _, ok := want[s.Name()]; ok && s.SpanContext().TraceID() == traceID {
			want[s.Name()] = true
		}
	}
	for name, found := range want {
		if !found {
			t.Errorf("no span %q in the store's trace", name)
		}
	}
	stream, err := h.st.JS.Stream(context.Background(), h.st.NS.Stream(events.StreamHiper))
	if err != nil {
		t.Fatal(err)
	}
	msg, err := stream.GetLastMsgForSubject(context.Background(), h.st.NS.HiperSubject("acme", events.KindOrderAccepted))
	if err != nil {
		t.Fatal(err)
	}
	if tp := msg.Header.Get("traceparent"); !strings.Contains(tp, traceID.String()) {
		t.Errorf("order.accepted carries traceparent %q, want trace %s", tp, traceID)
	}
}
