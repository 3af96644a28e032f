package events

import (
	"context"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/protobuf/proto"
)

// Publisher publishes events in the envelope: one per service, safe for
// concurrent use.
type Publisher struct {
	js         jetstream.JetStream
	ns         Namespace
	source     string
	format     Format
	tracer     trace.Tracer
	propagator propagation.TextMapPropagator
	metrics    *metrics
	// streams are the namespaced names of StreamHiper and StreamStore,
	// made once: every event names the stream it expects.
	streams [2]string
}

// NewPublisher returns a Publisher for events from source (the ce-source,
// e.g. "hipersync/order-forwarder") encoded in format.
func NewPublisher(js jetstream.JetStream, ns Namespace, source string, format Format, opts ...Option) *Publisher {
	o := newOptions(opts)
	return &Publisher{
		js:         js,
		ns:         ns,
		source:     source,
		format:     format,
		tracer:     o.tracer(),
		propagator: o.propagator,
		metrics:    o.metrics,
		streams:    [2]string{ns.Stream(StreamHiper), ns.Stream(StreamStore)},
	}
}

// PublishOption sets optional attributes of one event.
type PublishOption func(*publishOptions)

type publishOptions struct {
	subject string
	time    time.Time
}

// WithEventSubject sets ce-subject, what the event is about (e.g. the order
// id), so a consumer can route or log without decoding the payload.
func WithEventSubject(s string) PublishOption { return func(o *publishOptions) { o.subject = s } }

// WithEventTime sets ce-time; the default is now.
func WithEventTime(t time.Time) PublishOption { return func(o *publishOptions) { o.time = t } }

// Publish sends msg on subject with id as both ce-id and Nats-Msg-Id. The id
// must be deterministic (derived from what the event is about, not random)
// so that a re-publish after a crash or retry is dropped by the stream's
// duplicate window; duplicate reports that it was. The subject must belong
// to the Publisher's namespace and its kind must carry msg's type.
func (p *Publisher) Publish(ctx context.Context, subject, id string, msg proto.Message, opts ...PublishOption) (duplicate bool, err error) {
	src, kind, _ := KindOf(msg)
	m, span, err := p.envelope(ctx, subject, id, msg, opts)
	if err != nil {
		p.metrics.publish(src, kind, resultError)
		return false, err
	}
	defer span.End()
	ack, err := p.js.PublishMsg(ctx, m)
	if err != nil {
		span.RecordError(err)
		span.SetStatus(codes.Error, "publish failed")
		p.metrics.publish(src, kind, resultError)
		return false, fmt.Errorf("publish on %s: %w", subject, err)
	}
	span.SetAttributes(attribute.Bool("hipersync.duplicate", ack.Duplicate))
	if ack.Duplicate {
		p.metrics.publish(src, kind, resultDuplicate)
	} else {
		p.metrics.publish(src, kind, resultOK)
	}
	return ack.Duplicate, nil
}

// PublishBatch is Publish without waiting for the stream's
// acknowledgement: it returns once the event is handed to the connection,
// through an AsyncPublisher's batch, which costs a bulk publisher (the
// catalog's initial sync) a fraction of jetstream's future per event;
// b.Wait tells which events the stream stored. The span covers the
// hand-over only.
func (p *Publisher) PublishBatch(ctx context.Context, b *Batch, subject, id string, msg proto.Message, opts ...PublishOption) error {
	return p.handOver(ctx, subject, id, msg, opts, func(m *nats.Msg) error { return b.Publish(ctx, m) })
}

// handOver wraps an event and gives it to send, which hands it to the
// connection without waiting for the stream.
func (p *Publisher) handOver(ctx context.Context, subject, id string, msg proto.Message, opts []PublishOption, send func(*nats.Msg) error) error {
	src, kind, _ := KindOf(msg)
	m, span, err := p.envelope(ctx, subject, id, msg, opts)
	if err != nil {
		p.metrics.publish(src, kind, resultError)
		return err
	}
	defer span.End()
	if err := send(m); err != nil {
		span.RecordError(err)
		span.SetStatus(codes.Error, "publish failed")
		p.metrics.publish(src, kind, resultError)
		return fmt.Errorf("publish on %s: %w", subject, err)
	}
	p.metrics.publish(src, kind, resultAsync)
	return nil
}

// envelope validates an event and wraps it: the message to send, which
// names the stream that must keep it, and the producer span, which the
// caller ends.
func (p *Publisher) envelope(ctx context.Context, subject, id string, msg proto.Message, opts []PublishOption) (*nats.Msg, trace.Span, error) {
	s, err := p.ns.ParseSubject(subject)
	if err != nil {
		return nil, nil, fmt.Errorf("publish: %w", err)
	}
	src, kind, err := KindOf(msg)
	if err != nil {
		return nil, nil, fmt.Errorf("publish on %s: %w", subject, err)
	}
	if src != s.Source || kind != s.Kind {
		return nil, nil, fmt.Errorf("publish on %s: %w: it carries %s %s events, not %s %s",
			subject, ErrInvalidSubject, s.Source, s.Kind, src, kind)
	}
	if id == "" {
		return nil, nil, fmt.Errorf("publish on %s: empty event id", subject)
	}
	data, err := p.format.Marshal(msg)
	if err != nil {
		return nil, nil, fmt.Errorf("publish on %s: encode %s: %w", subject, p.format, err)
	}

	var po publishOptions
	for _, opt := range opts {
		opt(&po)
	}
	if po.time.IsZero() {
		po.time = time.Now()
	}

	names, ok := publishNames[eventType{src, kind}]
	if !ok {
		names.ceType = s.CEType()
		names.span = "send " + names.ceType
	}
	ceType := names.ceType
	ctx, span := p.tracer.Start(ctx, names.span, producerSpan...)
	if span.IsRecording() {
		// Only then: a bulk sync publishes a hundred thousand events, and
		// these attributes would be garbage for every one.
		span.SetAttributes(
			attribute.String("messaging.system", "nats"),
			attribute.String("messaging.operation.type", "send"),
			attribute.String("messaging.destination.name", subject),
			attribute.String("messaging.message.id", id),
			attribute.String("hipersync.tenant", s.Tenant),
		)
	}

	stream := p.streams[0]
	if s.Source == SourceStore {
		stream = p.streams[1]
	}
	h := newEventHeader()
	h.set(HeaderMsgID, id)
	h.set(HeaderSpecVersion, specVersion)
	h.set(HeaderID, id)
	h.set(HeaderType, ceType)
	h.set(HeaderSource, p.source)
	h.set(HeaderTime, po.time.UTC().Format(time.RFC3339Nano))
	if po.subject != "" {
		h.set(HeaderSubject, po.subject)
	}
	h.set(HeaderContentType, p.format.ContentType())
	// Expecting the stream turns a missing or misconfigured stream into an
	// error instead of a message that no stream kept. The header is what
	// jetstream.WithExpectStream would set, without the option's garbage.
	h.set(jetstream.ExpectedStreamHeader, stream)
	p.propagator.Inject(ctx, HeaderCarrier(h.h))
	return &nats.Msg{Subject: subject, Header: h.h, Data: data}, span, nil
}

// publishNames are each event type's ce-type and span name, made once
// rather than concatenated for every event.
var publishNames = func() map[eventType]struct{ ceType, span string } {
	m := make(map[eventType]struct{ ceType, span string }, len(messageTypes))
	for et := range messageTypes {
		t := CEType(et.source, et.kind)
		m[et] = struct{ ceType, span string }{t, "send " + t}
	}
	return m
}()

// producerSpan starts a publish's span; shared, so that each publish does
// not allocate the options anew.
var producerSpan = []trace.SpanStartOption{trace.WithSpanKind(trace.SpanKindProducer)}

// eventHeaderSlots is how many headers an event has room for without
// growing: the envelope's nine and the trace context's (traceparent,
// tracestate, baggage).
const eventHeaderSlots = 12

// eventHeader builds an event's headers with two allocations, the map and
// one array for the values, instead of one more per header: a bulk sync
// publishes a hundred thousand events, and the headers were most of their
// garbage. Each value is a slice of capacity one into the array, so an Add
// or append by anyone later copies instead of writing over its neighbour.
type eventHeader struct {
	h    nats.Header
	vals []string
}

func newEventHeader() eventHeader {
	return eventHeader{h: make(nats.Header, eventHeaderSlots), vals: make([]string, 0, eventHeaderSlots)}
}

// set sets key to the single value v.
func (e *eventHeader) set(key, v string) {
	e.vals = append(e.vals, v)
	n := len(e.vals)
	e.h[key] = e.vals[n-1 : n : n]
}
