package events

import (
	"context"
	"testing"
	"time"

	eventsv1 "github.com/hipersync/hipersync/pkg/gen/hipersync/events/v1"
)

// BenchmarkEnvelope measures what wrapping one catalog event costs before
// it is handed to the connection: a bulk sync pays it a hundred thousand
// times, so its allocations are watched (-benchmem).
func BenchmarkEnvelope(b *testing.B) {
	p := NewPublisher(nil, Namespace{Prefix: "bench"}, "hipersync/catalog-poller", FormatProtobuf)
	subject := p.ns.HiperSubject("acme", KindCatalogProductUpserted)
	msg := &eventsv1.CatalogProductUpserted{ProductId: "p-1", ParentId: "p"}
	at := time.Unix(1_700_000_000, 0)
	b.ReportAllocs()
	for b.Loop() {
		m, span, err := p.envelope(context.Background(), subject, "acme:p-1:1", msg,
			[]PublishOption{WithEventSubject("p-1"), WithEventTime(at)})
		if err != nil || len(m.Header) == 0 {
			b.Fatal(err)
		}
		span.End()
	}
}
