package schedule

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/hipersync/hipersync/pkg/metric"
)

// metrics are a poller's Prometheus series. The catalog and stock
// schedulers of one process (the dev run) share them (metric.Register), told
// apart by kind.
type metrics struct {
	runs      *prometheus.CounterVec
	published *prometheus.CounterVec
	calls     *prometheus.CounterVec
	running   *prometheus.GaugeVec
}

// Outcomes of a run, the outcome label of hipersync_sync_runs_total.
const (
	outcomeOK        = "ok"
	outcomeHeld      = "held"
	outcomeFailed    = "failed"
	outcomeCancelled = "cancelled"
	outcomeLost      = "lease_lost"
)

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		runs: metric.Register(reg, prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "hipersync_sync_runs_total",
			Help: "Sync runs by kind and outcome (ok, held, failed, cancelled, lease_lost).",
		}, []string{"kind", "outcome"})),
		published: metric.Register(reg, prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "hipersync_sync_items_published_total",
			Help: "Events published by the pollers, per kind and tenant.",
		}, []string{"kind", "tenant"})),
		calls: metric.Register(reg, prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "hipersync_hiper_calls_total",
			Help: "Hiper API calls made by the pollers, per kind and tenant.",
		}, []string{"kind", "tenant"})),
		running: metric.Register(reg, prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "hipersync_sync_running",
			Help: "Sync runs in progress on this replica, per kind.",
		}, []string{"kind"})),
	}
	return m
}

var (
	lagDesc = prometheus.NewDesc("hipersync_sync_lag_seconds",
		"Seconds since the store was last brought up to date with Hiper, per kind and tenant.",
		[]string{"kind", "tenant"}, nil)
	intervalDesc = prometheus.NewDesc("hipersync_sync_target_interval_seconds",
		"The interval each tenant is polled at, per kind and tenant.",
		[]string{"kind", "tenant"}, nil)
	heldDesc = prometheus.NewDesc("hipersync_sync_held",
		"1 while the guardrail holds a mass change of the tenant, per kind and tenant.",
		[]string{"kind", "tenant"}, nil)
)

// lagCollector reads the lag of every tenant from a scheduler's view at
// scrape time. It describes nothing (an unchecked collector), so the two
// schedulers of a dev run can both register one.
type lagCollector struct{ s *Scheduler }

func (lagCollector) Describe(chan<- *prometheus.Desc) {}

func (c lagCollector) Collect(ch chan<- prometheus.Metric) {
	now := time.Now()
	kind := string(c.s.kind)
	for _, st := range c.s.statuses() {
		ch <- prometheus.MustNewConstMetric(lagDesc, prometheus.GaugeValue, st.Lag(now).Seconds(), kind, st.Tenant)
		ch <- prometheus.MustNewConstMetric(intervalDesc, prometheus.GaugeValue, time.Duration(st.TargetInterval).Seconds(), kind, st.Tenant)
		held := 0.0
		if st.Held != nil {
			held = 1
		}
		ch <- prometheus.MustNewConstMetric(heldDesc, prometheus.GaugeValue, held, kind, st.Tenant)
	}
}
