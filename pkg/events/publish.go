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
	m, stream, span, err := p.envelope(ctx, subject, id, msg, opts)
	if err != nil {
		p.metrics.publish(src, kind, resultError)
		return false, err
	}
	defer span.End()
	// Expecting the stream turns a missing or misconfigured stream into an
	// error instead of a message that no stream kept.
	ack, err := p.js.PublishMsg(ctx, m, jetstream.WithExpectStream(stream))
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

// PublishAsync is Publish without waiting for the stream's acknowledgement:
// it returns once the message is handed to the connection, and the future
// settles when the stream stored it (or refused it). Bulk publishers (the
// catalog's initial sync) keep many messages in flight this way and wait for
// all of them with the JetStream context's PublishAsyncComplete before they
// record progress. The span covers the hand-over only.
func (p *Publisher) PublishAsync(ctx context.Context, subject, id string, msg proto.Message, opts ...PublishOption) (jetstream.PubAckFuture, error) {
	src, kind, _ := KindOf(msg)
	m, stream, span, err := p.envelope(ctx, subject, id, msg, opts)
	if err != nil {
		p.metrics.publish(src, kind, resultError)
		return nil, err
	}
	defer span.End()
	f, err := p.js.PublishMsgAsync(m, jetstream.WithExpectStream(stream))
	if err != nil {
		span.RecordError(err)
		span.SetStatus(codes.Error, "publish failed")
		p.metrics.publish(src, kind, resultError)
		return nil, fmt.Errorf("publish on %s: %w", subject, err)
	}
	p.metrics.publish(src, kind, resultAsync)
	return f, nil
}

// envelope validates an event and wraps it: the message to send, the stream
// that must keep it and the producer span, which the caller ends.
func (p *Publisher) envelope(ctx context.Context, subject, id string, msg proto.Message, opts []PublishOption) (*nats.Msg, string, trace.Span, error) {
	s, err := p.ns.ParseSubject(subject)
	if err != nil {
		return nil, "", nil, fmt.Errorf("publish: %w", err)
	}
	src, kind, err := KindOf(msg)
	if err != nil {
		return nil, "", nil, fmt.Errorf("publish on %s: %w", subject, err)
	}
	if src != s.Source || kind != s.Kind {
		return nil, "", nil, fmt.Errorf("publish on %s: %w: it carries %s %s events, not %s %s",
			subject, ErrInvalidSubject, s.Source, s.Kind, src, kind)
	}
	if id == "" {
		return nil, "", nil, fmt.Errorf("publish on %s: empty event id", subject)
	}
	data, err := p.format.Marshal(msg)
	if err != nil {
		return nil, "", nil, fmt.Errorf("publish on %s: encode %s: %w", subject, p.format, err)
	}

	var po publishOptions
	for _, opt := range opts {
		opt(&po)
	}
	if po.time.IsZero() {
		po.time = time.Now()
	}

	ceType := s.CEType()
	ctx, span := p.tracer.Start(ctx, "send "+ceType, trace.WithSpanKind(trace.SpanKindProducer))
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

	h := make(nats.Header, 10)
	h.Set(HeaderMsgID, id)
	h.Set(HeaderSpecVersion, specVersion)
	h.Set(HeaderID, id)
	h.Set(HeaderType, ceType)
	h.Set(HeaderSource, p.source)
	h.Set(HeaderTime, po.time.UTC().Format(time.RFC3339Nano))
	if po.subject != "" {
		h.Set(HeaderSubject, po.subject)
	}
	h.Set(HeaderContentType, p.format.ContentType())
	p.propagator.Inject(ctx, HeaderCarrier(h))

	stream := StreamHiper
	if s.Source == SourceStore {
		stream = StreamStore
	}
	return &nats.Msg{Subject: subject, Header: h, Data: data}, p.ns.Stream(stream), span, nil
}
