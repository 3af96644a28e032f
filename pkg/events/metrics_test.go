package events

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	eventsv1 "github.com/hipersync/hipersync/pkg/gen/hipersync/events/v1"
	"github.com/hipersync/hipersync/pkg/testkit"
)

// metricValue reads one series of reg: a counter's or gauge's value, a
// histogram's sample count; ok is false when the series does not exist.
func metricValue(t *testing.T, reg *prometheus.Registry, name string, labels map[string]string) (v float64, ok bool) {
	t.Helper()
	families, err := reg.Gather()
	if err != nil {
		t.Fatalf("gather metrics: %v", err)
	}
	for _, f := range families {
		if f.GetName() != name {
			continue
		}
	series:
		for _, m := range f.GetMetric() {
			got := map[string]string{}
			for _, lp := range m.GetLabel() {
				got[lp.GetName()] = lp.GetValue()
			}
			for k, want := range labels {
				if got[k] != want {
					continue series
				}
			}
			switch f.GetType() {
			case dto.MetricType_COUNTER:
				return m.GetCounter().GetValue(), true
			case dto.MetricType_GAUGE:
				return m.GetGauge().GetValue(), true
			case dto.MetricType_HISTOGRAM:
				return float64(m.GetHistogram().GetSampleCount()), true
			}
		}
	}
	return 0, false
}

func TestMetricsCountPublishedAndSettled(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t)
	reg := prometheus.NewRegistry()
	pub := NewPublisher(e.js, e.ns, "hipersync/test", FormatProtobuf, WithMetrics(reg))
	publish := func(id string) {
		t.Helper()
		order := sampleOrder()
		order.OrderId = id
		if _, err := pub.Publish(t.Context(), e.ns.StoreSubject("acme", KindOrderApproved), "acme:"+id, order); err != nil {
			t.Fatalf("publish %s: %v", id, err)
		}
	}
	for _, id := range []string{"ok", "bad", "flaky", "ok"} {
		publish(id)
	}
	if _, err := pub.Publish(t.Context(), e.ns.HiperSubject("acme", KindOrderApproved), "x", sampleOrder()); err == nil {
		t.Fatal("publishing a store event on a hiper subject succeeded")
	}

	cfg := e.orderConsumer("forwarder")
	e.consume(t, cfg, func(ctx context.Context, m *Message) error {
		order := &eventsv1.StoreOrderApproved{}
		if err := m.Decode(order); err != nil {
			return err
		}
		switch {
		case order.GetOrderId() == "bad":
			return Permanent("bad_order", errors.New("no such product"))
		case order.GetOrderId() == "flaky" && m.Deliveries == 1:
			return errors.New("hiper unavailable")
		}
		return nil
	}, WithMetrics(reg))
	e.settled(t, cfg, 3)

	consumed := func(outcome string) float64 {
		v, _ := metricValue(t, reg, "hipersync_events_consumed_total", map[string]string{
			"consumer": "forwarder", "source": "store", "kind": "order.approved", "outcome": outcome})
		return v
	}
	// The dead-letter publish and the final ack land before the consumer's
	// ack floor moves, but the counters right after: poll.
	testkit.WaitFor(t, 20*time.Second, "the condition", func() bool { return consumed(outcomeAck) == 2 && consumed(outcomeDeadLetter) == 1 })
	if n := consumed(outcomeRetry); n != 1 {
		t.Errorf("retries = %v, want 1", n)
	}
	if n, _ := metricValue(t, reg, "hipersync_event_handler_seconds", map[string]string{"consumer": "forwarder", "kind": "order.approved"}); n != 4 {
		t.Errorf("handler latency samples = %v, want one per delivery (4)", n)
	}
	for result, want := range map[string]float64{resultOK: 3, resultDuplicate: 1, resultError: 1} {
		if n, _ := metricValue(t, reg, "hipersync_events_published_total", map[string]string{"source": "store", "kind": "order.approved", "result": result}); n != want {
			t.Errorf("published %s = %v, want %v", result, n, want)
		}
	}
}

func TestMetricsReportConsumerBacklog(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t)
	reg := prometheus.NewRegistry()
	release := make(chan struct{})
	cfg := e.orderConsumer("forwarder")
	stop := e.consume(t, cfg, func(ctx context.Context, m *Message) error {
		select {
		case <-release:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	}, WithMetrics(reg), WithConcurrency(1), withPendingInterval(20*time.Millisecond))
	for _, id := range []string{"1", "2", "3"} {
		e.publishOrder(t, "acme", id)
	}

	labels := map[string]string{"stream": e.ns.Stream(StreamStore), "consumer": "forwarder"}
	gauges := func() (pending, ackPending float64) {
		pending, _ = metricValue(t, reg, "hipersync_consumer_pending_messages", labels)
		ackPending, _ = metricValue(t, reg, "hipersync_consumer_ack_pending_messages", labels)
		return pending, ackPending
	}
	// One loop handling one message at a time: one delivered and held, two
	// waiting in the stream.
	testkit.WaitFor(t, 20*time.Second, "the condition", func() bool { p, a := gauges(); return p == 2 && a == 1 })
	close(release)
	testkit.WaitFor(t, 20*time.Second, "the condition", func() bool { p, a := gauges(); return p == 0 && a == 0 })

	if err := stop(); err != nil {
		t.Fatal(err)
	}
	if _, ok := metricValue(t, reg, "hipersync_consumer_pending_messages", labels); ok {
		t.Error("a stopped loop still reports its consumer's backlog")
	}
}

func TestMetricsShareOneRegistry(t *testing.T) {
	t.Parallel()
	reg := prometheus.NewRegistry()
	a, b := newOptions([]Option{WithMetrics(reg)}), newOptions([]Option{WithMetrics(reg)})
	if a.metrics.consumed != b.metrics.consumed || a.metrics.published != b.metrics.published {
		t.Error("two users of one registry got different series")
	}
	if o := newOptions(nil); o.metrics != nil {
		t.Error("metrics without WithMetrics")
	}
}
