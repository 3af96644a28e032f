package hiper

import (
	"context"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/hipersync/hipersync/pkg/metric"
)

// metrics are a Client's Prometheus series (WithMetrics). A nil *metrics
// records nothing.
type metrics struct {
	requests *prometheus.CounterVec
	seconds  *prometheus.HistogramVec
}

func newMetrics(reg prometheus.Registerer) *metrics {
	if reg == nil {
		return nil
	}
	labels := []string{"endpoint", "status_class"}
	return &metrics{
		requests: metric.Register(reg, prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "hipersync_hiper_requests_total",
			Help: "Calls to the Hiper API, by endpoint (method and path template) and status class (2xx, 4xx, 5xx; none: no answer; cancelled: the caller gave up).",
		}, labels)),
		seconds: metric.Register(reg, prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "hipersync_hiper_request_duration_seconds",
			Help:    "Time from sending a call to the Hiper API to having read its answer, by endpoint and status class.",
			Buckets: prometheus.ExponentialBuckets(0.01, 2, 12),
		}, labels)),
	}
}

// observe records one call that took d; status 0 means no whole answer
// came back. The class of such a call tells Hiper's silence (none) from the
// caller leaving (cancelled), which is not Hiper's fault.
func (m *metrics) observe(ctx context.Context, ep *endpoint, status int, d time.Duration) {
	if m == nil {
		return
	}
	class := "none"
	switch {
	case status > 0:
		class = strconv.Itoa(status/100) + "xx"
	case ctx.Err() != nil:
		class = "cancelled"
	}
	m.requests.WithLabelValues(ep.name, class).Inc()
	m.seconds.WithLabelValues(ep.name, class).Observe(d.Seconds())
}
