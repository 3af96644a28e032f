package events

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/hipersync/hipersync/pkg/metric"
)

// Outcomes of a delivery, the outcome label of hipersync_events_consumed_total.
const (
	outcomeAck        = "ack"
	outcomeRetry      = "retry"
	outcomeDeadLetter = "dead_letter"
	// outcomeHandedBack is a delivery the drain gave back to the stream
	// when the grace period ran out.
	outcomeHandedBack = "handed_back"
	// outcomeTerminated is a message with no JetStream metadata: stopped,
	// with nothing to dead-letter it by.
	outcomeTerminated = "terminated"
)

// Results of a publication, the result label of
// hipersync_events_published_total.
const (
	resultOK        = "ok"
	resultDuplicate = "duplicate"
	resultError     = "error"
	// resultAsync is a PublishBatch handed to the connection; whether the
	// stream stored it is the batch's Wait to say.
	resultAsync = "async"
)

// defaultPendingInterval is how often a loop with metrics reads its
// consumer's state: the server answers from memory, and a scrape every 15 to
// 60 seconds sees at most one interval's staleness.
const defaultPendingInterval = 15 * time.Second

// metrics are the event layer's Prometheus series (WithMetrics). A nil
// *metrics records nothing.
type metrics struct {
	consumed       *prometheus.CounterVec
	handlerSeconds *prometheus.HistogramVec
	published      *prometheus.CounterVec
	pending        *prometheus.GaugeVec
	ackPending     *prometheus.GaugeVec
	redelivered    *prometheus.GaugeVec
}

func newMetrics(reg prometheus.Registerer) *metrics {
	if reg == nil {
		return nil
	}
	return &metrics{
		consumed: metric.Register(reg, prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "hipersync_events_consumed_total",
			Help: "Deliveries settled by the consumer loop, by consumer, event source and kind, and outcome (ack, retry, dead_letter, handed_back, terminated).",
		}, []string{"consumer", "source", "kind", "outcome"})),
		handlerSeconds: metric.Register(reg, prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "hipersync_event_handler_seconds",
			Help:    "Time a handler took over one delivery, by consumer, event source and kind.",
			Buckets: prometheus.ExponentialBuckets(0.005, 2, 14),
		}, []string{"consumer", "source", "kind"})),
		published: metric.Register(reg, prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "hipersync_events_published_total",
			Help: "Events published, by event source and kind, and result (ok, duplicate: dropped by the stream's duplicate window, error, async: handed over without waiting for the stream).",
		}, []string{"source", "kind", "result"})),
		// Every replica reads the one shared durable: aggregate with max.
		pending: metric.Register(reg, prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "hipersync_consumer_pending_messages",
			Help: "Messages of the stream the durable consumer has not delivered yet (the backlog); every replica reports the same consumer, so aggregate with max.",
		}, []string{"stream", "consumer"})),
		ackPending: metric.Register(reg, prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "hipersync_consumer_ack_pending_messages",
			Help: "Messages delivered to some replica and not settled yet.",
		}, []string{"stream", "consumer"})),
		redelivered: metric.Register(reg, prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "hipersync_consumer_redelivered_messages",
			Help: "Messages delivered more than once and not settled yet.",
		}, []string{"stream", "consumer"})),
	}
}

func labelOr(s, unknown string) string {
	if s == "" {
		return unknown
	}
	return s
}

func (m *metrics) settled(consumer string, src Source, kind Kind, outcome string) {
	if m == nil {
		return
	}
	m.consumed.WithLabelValues(consumer, labelOr(string(src), "unknown"), labelOr(string(kind), "unknown"), outcome).Inc()
}

func (m *metrics) handled(consumer string, src Source, kind Kind, d time.Duration) {
	if m == nil {
		return
	}
	m.handlerSeconds.WithLabelValues(consumer, labelOr(string(src), "unknown"), labelOr(string(kind), "unknown")).Observe(d.Seconds())
}

func (m *metrics) publish(src Source, kind Kind, result string) {
	if m == nil {
		return
	}
	m.published.WithLabelValues(labelOr(string(src), "unknown"), labelOr(string(kind), "unknown"), result).Inc()
}

// watchPending sets the consumer gauges from the server's view of the
// durable every interval until ctx is done, then removes them: a stopped
// loop must not keep reporting a backlog it no longer reads.
func (l *loop) watchPending(ctx context.Context, interval time.Duration) {
	m := l.o.metrics
	stream := l.ns.Stream(l.cfg.Stream)
	defer func() {
		m.pending.DeleteLabelValues(stream, l.cfg.Name)
		m.ackPending.DeleteLabelValues(stream, l.cfg.Name)
		m.redelivered.DeleteLabelValues(stream, l.cfg.Name)
	}()
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		ictx, cancel := context.WithTimeout(ctx, ackTimeout)
		// A fresh lookup rather than the loop's handle, which the loop
		// replaces when it recreates a deleted consumer.
		cons, err := l.js.Consumer(ictx, stream, l.cfg.Name)
		cancel()
		if err == nil {
			info := cons.CachedInfo()
			m.pending.WithLabelValues(stream, l.cfg.Name).Set(float64(info.NumPending))
			m.ackPending.WithLabelValues(stream, l.cfg.Name).Set(float64(info.NumAckPending))
			m.redelivered.WithLabelValues(stream, l.cfg.Name).Set(float64(info.NumRedelivered))
		} else if ctx.Err() == nil {
			l.log.Debug("read consumer state for metrics", "error", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
