package watcher

import (
	"context"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
)

// Outcomes of a poll of Hiper (label "outcome" of polls).
const (
	pollUnchanged  = "unchanged"   // Hiper's answer is the one last seen
	pollChanged    = "changed"     // something new, maybe published
	pollTransient  = "transient"   // a failure worth retrying: 5xx, timeout, 429
	pollBadAnswer  = "bad_answer"  // dead-lettered: unreadable or unexpected
	pollTenantGone = "tenant_gone" // token-broker refused the tenant
)

// Reasons an order's turn passed without a poll (label "reason" of waits).
const (
	waitNotDue   = "not_due"         // just accepted: Hiper is still processing
	waitPaced    = "paced"           // the tenant's calls are spent: a later one booked
	waitInactive = "tenant_inactive" // paused, disconnected or unknown tenant
	waitPolling  = "in_poll"         // delivered again while this replica polls it
)

// metrics are the invoice-watcher's Prometheus metrics.
type metrics struct {
	started      prometheus.Counter
	finished     *prometheus.CounterVec
	polls        *prometheus.CounterVec
	waits        *prometheus.CounterVec
	published    *prometheus.CounterVec
	duplicates   *prometheus.CounterVec
	publishDelay *prometheus.HistogramVec
	invoiceAge   prometheus.Histogram
	turnWait     prometheus.Histogram
	deadLetters  *prometheus.CounterVec
}

func newMetrics(reg prometheus.Registerer, tasks jetstream.Stream) *metrics {
	m := &metrics{
		started: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "hipersync_invoice_watch_orders_started_total",
			Help: "Orders that began to be followed (their order.accepted seen).",
		}),
		finished: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "hipersync_invoice_watch_orders_finished_total",
			Help: "Orders no longer followed, by how they ended: delivered, cancelled, failed, expired.",
		}, []string{"final"}),
		polls: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "hipersync_invoice_watch_polls_total",
			Help: "Calls to Hiper's order state, by outcome: unchanged, changed, transient, bad_answer, tenant_gone.",
		}, []string{"outcome"}),
		waits: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "hipersync_invoice_watch_waits_total",
			Help: "Turns of an order that passed without calling Hiper, by reason: not_due, paced (a later call booked), tenant_inactive, in_poll.",
		}, []string{"reason"}),
		published: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "hipersync_invoice_watch_events_total",
			Help: "Events published, by kind (invoice.issued, order.shipped, order.cancelled, order.failed, order.watch_expired).",
		}, []string{"kind"}),
		duplicates: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "hipersync_invoice_watch_duplicates_total",
			Help: "Events published again (after a crash between publishing and recording) and dropped by the stream's duplicate window, by kind.",
		}, []string{"kind"}),
		publishDelay: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "hipersync_invoice_watch_publish_delay_seconds",
			Help:    "From Hiper registering an event (its date) to its publication, by kind. Hiper's dates have whole seconds.",
			Buckets: []float64{1, 5, 15, 30, 60, 120, 180, 240, 300, 600, 1800, 3600},
		}, []string{"kind"}),
		invoiceAge: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "hipersync_invoice_watch_invoice_age_seconds",
			Help:    "From an order's acceptance to Hiper registering its invoice: when the stores' invoices come, what INVOICE_EXPECT_FOR must cover.",
			Buckets: []float64{600, 1800, 3600, 3 * 3600, 6 * 3600, 12 * 3600, 86400, 2 * 86400, 3 * 86400, 5 * 86400, 7 * 86400, 14 * 86400, 30 * 86400},
		}),
		turnWait: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "hipersync_invoice_watch_turn_wait_seconds",
			Help:    "How long a due order whose store's calls were spent waits for the call it booked: at most the store's open orders / INVOICE_TENANT_RATE.",
			Buckets: []float64{1, 5, 15, 30, 60, 120, 300, 600, 1800, 3600},
		}),
		deadLetters: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "hipersync_invoice_watch_dead_letters_total",
			Help: "Hiper answers dead-lettered, by reason code.",
		}, []string{"code"}),
	}
	if reg == nil {
		return m
	}
	open := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "hipersync_invoice_watch_orders_open",
		Help: "Orders being followed, all replicas together: the poll tasks in the work queue.",
	}, func() float64 {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		info, err := tasks.Info(ctx)
		if err != nil {
			return -1
		}
		return float64(info.State.Msgs)
	})
	reg.MustRegister(m.started, m.finished, m.polls, m.waits, m.published, m.duplicates, m.publishDelay, m.invoiceAge, m.turnWait, m.deadLetters, open)
	return m
}
