package events

import (
	"context"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
)

// Limits bound the namespace's streams and buckets on disk. A full
// JetStream disk stops every stream at once; a bounded stream drops its
// oldest events (a bucket refuses new writes), and an alert fires at 80 %
// first. The services take them from HIPERSYNC_STREAM_MAX_AGE and friends,
// whose defaults are sized for 2,000 stores (docs/operations.md,
// "Storage"). A zero MaxAge takes its default; a zero MaxBytes means no
// bound (tests and tools sharing one server).
type Limits struct {
	// MaxAge and the two MaxBytes bound STORE and HIPER.
	MaxAge        time.Duration
	StoreMaxBytes int64
	HiperMaxBytes int64
	// DeadLetterMaxAge and DeadLetterMaxBytes bound DEADLETTER on their own:
	// dead letters are kept longer, and a flood of them must not push
	// events out of the other streams.
	DeadLetterMaxAge   time.Duration
	DeadLetterMaxBytes int64
	// BucketMaxBytes bounds each KV bucket and each service's own stream
	// (the invoice-watcher's tasks).
	BucketMaxBytes int64
	// AuditMaxBytes bounds the console's audit log (AUDIT), kept 400 days
	// unless it reaches the bound first.
	AuditMaxBytes int64
}

// withDefaults fills the zero ages.
func (l Limits) withDefaults() Limits {
	if l.MaxAge == 0 {
		l.MaxAge = DefaultMaxAge
	}
	if l.DeadLetterMaxAge == 0 {
		l.DeadLetterMaxAge = DefaultDeadLetterMaxAge
	}
	return l
}

// BucketMaxBytes is the bound of each bucket and service-owned stream of ns.
func (ns Namespace) BucketMaxBytes() int64 { return ns.Limits.BucketMaxBytes }

// StreamUsage is what one stream or bucket of the namespace holds.
type StreamUsage struct {
	Stream   string `json:"stream"`
	Messages uint64 `json:"messages"`
	Bytes    uint64 `json:"bytes"`
	// MaxBytes is the bound, -1 when there is none.
	MaxBytes int64         `json:"maxBytes"`
	MaxAge   time.Duration `json:"maxAge"`
	Replicas int           `json:"replicas"`
}

// Used is Bytes as a fraction of MaxBytes, 0 without a bound.
func (u StreamUsage) Used() float64 {
	if u.MaxBytes <= 0 {
		return 0
	}
	return float64(u.Bytes) / float64(u.MaxBytes)
}

// owns reports whether stream belongs to ns: its STORE, HIPER and
// DEADLETTER, its services' own streams and its buckets. The production
// namespace owns every stream of its account.
func (ns Namespace) owns(stream string) bool {
	if ns.Prefix == "" {
		return true
	}
	return strings.HasPrefix(stream, ns.Prefix+"_") || strings.HasPrefix(stream, "KV_"+ns.Prefix+"_")
}

// Usage lists the size and bound of every stream and bucket of ns.
func Usage(ctx context.Context, js jetstream.JetStream, ns Namespace) ([]StreamUsage, error) {
	var out []StreamUsage
	list := js.ListStreams(ctx)
	for info := range list.Info() {
		if !ns.owns(info.Config.Name) {
			continue
		}
		out = append(out, StreamUsage{Stream: info.Config.Name, Messages: info.State.Msgs, Bytes: info.State.Bytes,
			MaxBytes: info.Config.MaxBytes, MaxAge: info.Config.MaxAge, Replicas: info.Config.Replicas})
	}
	return out, list.Err()
}

// usageCollector reports Usage on every scrape.
type usageCollector struct {
	js                  jetstream.JetStream
	ns                  Namespace
	bytes, max, entries *prometheus.Desc
}

// NewUsageCollector returns a collector of hipersync_stream_bytes,
// hipersync_stream_max_bytes and hipersync_stream_messages for every stream
// and bucket of ns, read from the server at each scrape; the 80 % alerts
// divide the first by the second.
func NewUsageCollector(js jetstream.JetStream, ns Namespace) prometheus.Collector {
	return &usageCollector{js: js, ns: ns,
		bytes:   prometheus.NewDesc("hipersync_stream_bytes", "Bytes a JetStream stream or bucket of the namespace holds.", []string{"stream"}, nil),
		max:     prometheus.NewDesc("hipersync_stream_max_bytes", "The stream's or bucket's MaxBytes bound (absent when unbounded).", []string{"stream"}, nil),
		entries: prometheus.NewDesc("hipersync_stream_messages", "Messages a JetStream stream or bucket of the namespace holds.", []string{"stream"}, nil),
	}
}

func (c *usageCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.bytes
	ch <- c.max
	ch <- c.entries
}

func (c *usageCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	usage, _ := Usage(ctx, c.js, c.ns) // a scrape during an outage reports what it got
	for _, u := range usage {
		ch <- prometheus.MustNewConstMetric(c.bytes, prometheus.GaugeValue, float64(u.Bytes), u.Stream)
		ch <- prometheus.MustNewConstMetric(c.entries, prometheus.GaugeValue, float64(u.Messages), u.Stream)
		if u.MaxBytes > 0 {
			ch <- prometheus.MustNewConstMetric(c.max, prometheus.GaugeValue, float64(u.MaxBytes), u.Stream)
		}
	}
}
