package broker

import "github.com/prometheus/client_golang/prometheus"

// Metrics are token-broker's Prometheus metrics.
type Metrics struct {
	hits *prometheus.CounterVec
	// The hit counters of each layer, resolved once: the memory one is on
	// every token request.
	memoryHits, redisHits, hiperHits prometheus.Counter
	hiperCalls                       *prometheus.CounterVec
	refreshSeconds                   prometheus.Histogram
	invalidations                    prometheus.Counter
	redisErrors                      prometheus.Counter
}

// NewMetrics creates the metrics and registers them with reg, when not nil.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		hits: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "hipersync_token_cache_hits_total",
			Help: "Tokens handed out, by the layer that had them: memory, redis or hiper.",
		}, []string{"layer"}),
		hiperCalls: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "hipersync_hiper_token_calls_total",
			Help: "Calls to Hiper's token endpoint, by outcome.",
		}, []string{"outcome"}),
		refreshSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "hipersync_token_refresh_seconds",
			Help:    "Latency of Hiper's token endpoint.",
			Buckets: prometheus.ExponentialBuckets(0.005, 2, 12),
		}),
		invalidations: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "hipersync_token_invalidations_total",
			Help: "Tokens dropped after a caller reported a 401 for the current token.",
		}),
		redisErrors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "hipersync_token_redis_errors_total",
			Help: "Redis failures; tokens are then served from this replica alone.",
		}),
	}
	m.memoryHits, m.redisHits, m.hiperHits = m.hits.WithLabelValues("memory"), m.hits.WithLabelValues("redis"), m.hits.WithLabelValues("hiper")
	if reg != nil {
		reg.MustRegister(m.hits, m.hiperCalls, m.refreshSeconds, m.invalidations, m.redisErrors)
	}
	return m
}
