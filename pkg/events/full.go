package events

import (
	"errors"
	"strings"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
)

// errCodeStoreFailed is JetStream's "store failed" (JSStreamStoreFailedF):
// a message was not stored. Its description says why; "maximum bytes
// exceeded" (or messages) is a stream or bucket that discards new messages
// (every bucket) at its bound.
const errCodeStoreFailed = 10077

// Full reports whether err is JetStream refusing a write because the
// stream or bucket reached its bound (MaxBytes, MaxMsgs): no retry mends
// it until an operator makes room.
func Full(err error) bool {
	var apiErr *jetstream.APIError
	if !errors.As(err, &apiErr) || apiErr.ErrorCode != errCodeStoreFailed {
		return false
	}
	return strings.Contains(apiErr.Description, "maximum bytes") || strings.Contains(apiErr.Description, "maximum messages")
}

// storeFull counts writes refused by a full stream or bucket (CountFull).
var storeFull = prometheus.NewCounterVec(prometheus.CounterOpts{
	Name: "hipersync_store_full_total",
	Help: "Writes JetStream refused because the stream or bucket reached its bound (maximum bytes exceeded); what depends on them stops until room is made.",
}, []string{"stream"})

// CountFull counts a write to stream (a bucket's stream is KV_<bucket>)
// that JetStream refused because it is full (Full).
func CountFull(stream string) { storeFull.WithLabelValues(stream).Inc() }

// StorageMetrics is the collector of hipersync_store_full_total, for a
// process's registry.
func StorageMetrics() prometheus.Collector { return storeFull }
