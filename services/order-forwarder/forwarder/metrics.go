package forwarder

import (
	"net/http"
	"strconv"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the order-forwarder's Prometheus metrics.
type metrics struct {
	eventsIn    *prometheus.CounterVec
	eventsOut   *prometheus.CounterVec
	hiperCalls  *prometheus.CounterVec
	transitions *prometheus.CounterVec
	forwardSecs prometheus.Histogram
	circuitOpen *prometheus.GaugeVec
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		eventsIn: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "hipersync_order_events_in_total",
			Help: "Store order events handled, by kind (approved, cancelled) and outcome (accepted, rejected, needs_review, failed, cancelled, duplicate, retry, waiting, cancel_refused, error).",
		}, []string{"kind", "outcome"}),
		eventsOut: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "hipersync_order_events_out_total",
			Help: "Order outcome events published, by kind (order.accepted, order.rejected, …).",
		}, []string{"kind"}),
		hiperCalls: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "hipersync_order_hiper_calls_total",
			Help: "Calls to Hiper's sales order endpoints, by method and HTTP status (0: no answer).",
		}, []string{"method", "status"}),
		transitions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "hipersync_orders_total",
			Help: "Orders entering each state (sending, accepted, rejected, needs_review, failed, cancelling, cancelled); received counts each order once, when its approval is first recorded or it starts over, not its retries.",
		}, []string{"state"}),
		forwardSecs: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "hipersync_order_forward_seconds",
			Help:    "From the approval reaching the stream to Hiper's answer being recorded, for accepted orders.",
			Buckets: prometheus.ExponentialBuckets(0.005, 2, 14),
		}),
		circuitOpen: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "hipersync_order_hiper_circuit_open",
			Help: "1 while a circuit to Hiper is open (Hiper failing every call: orders wait, probed with backoff), by scope (endpoint: Hiper's create endpoint for every tenant; tenant: one store's Hiper account) and tenant.",
		}, []string{"scope", "tenant"}),
	}
	if reg != nil {
		reg.MustRegister(m.eventsIn, m.eventsOut, m.hiperCalls, m.transitions, m.forwardSecs, m.circuitOpen)
	}
	return m
}

// countingTransport counts Hiper calls by method and status.
type countingTransport struct {
	base http.RoundTripper
	m    *metrics
}

func (t countingTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	resp, err := t.base.RoundTrip(r)
	status := 0
	if err == nil {
		status = resp.StatusCode
	}
	t.m.hiperCalls.WithLabelValues(r.Method, strconv.Itoa(status)).Inc()
	return resp, err
}
