package events

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime/debug"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/protobuf/proto"
)

// Reason codes of dead letters the loop writes itself; handlers choose their
// own with Permanent.
const (
	ReasonMalformed        = "malformed_payload"
	ReasonInvalidSubject   = "invalid_subject"
	ReasonRetriesExhausted = "retries_exhausted"
	reasonHandlerFailed    = "handler_failed"
)

// ErrPermanent is matched (errors.Is) by errors made with Permanent.
var ErrPermanent = errors.New("permanent failure")

// PermanentError is a handler failure that no retry can fix.
type PermanentError struct {
	// Code is a stable reason code for the dead letter, e.g. "unknown_tenant".
	Code string
	Err  error
}

// Permanent marks err as a failure no retry can fix: the loop terminates the
// message and dead-letters it with code.
func Permanent(code string, err error) error {
	if code == "" {
		code = reasonHandlerFailed
	}
	return &PermanentError{Code: code, Err: err}
}

func (e *PermanentError) Error() string {
	if e.Err == nil {
		return e.Code
	}
	return e.Code + ": " + e.Err.Error()
}

func (e *PermanentError) Unwrap() error { return e.Err }

// Is makes errors.Is(err, ErrPermanent) true for every PermanentError.
func (e *PermanentError) Is(target error) bool { return target == ErrPermanent }

// RetryAfterError is a transient failure that knows when to retry, e.g. a
// rate limit's Retry-After.
type RetryAfterError struct {
	Delay time.Duration
	Err   error
}

// RetryAfter marks err as transient with a known delay: the loop redelivers
// the message after d instead of after its backoff.
func RetryAfter(d time.Duration, err error) error { return &RetryAfterError{Delay: d, Err: err} }

func (e *RetryAfterError) Error() string {
	msg := fmt.Sprintf("retry after %s", e.Delay)
	if e.Err != nil {
		msg += ": " + e.Err.Error()
	}
	return msg
}

func (e *RetryAfterError) Unwrap() error { return e.Err }

// permanentCode reports whether err ends the message's life, and why.
func permanentCode(err error) (string, bool) {
	if pe, ok := errors.AsType[*PermanentError](err); ok {
		return pe.Code, true
	}
	if errors.Is(err, ErrMalformed) {
		return ReasonMalformed, true
	}
	return "", false
}

// Message is one delivery of an event to a handler.
type Message struct {
	// Subject is the full subject, namespace included.
	Subject string
	Source  Source
	Tenant  string
	Kind    Kind
	Headers nats.Header
	Data    []byte
	// Deliveries counts this delivery: 1 the first time.
	Deliveries uint64
	Stream     string
	StreamSeq  uint64
	Consumer   string
	// Published is when the stream stored the message.
	Published time.Time
}

// Decode decodes the payload into into; see Decode.
func (m *Message) Decode(into proto.Message) error { return Decode(m.Headers, m.Data, into) }

// ID is the event's ce-id: stable across redeliveries and dead-letter
// retries, so handlers can use it to stay idempotent.
func (m *Message) ID() string { return headerGet(m.Headers, HeaderID) }

// Handler handles one message. Its error decides what happens next: nil
// acks; Permanent or a decoding error (ErrMalformed) dead-letters; RetryAfter
// redelivers after its delay; anything else redelivers with backoff, until
// MaxDeliver deliveries, when the message is dead-lettered as
// "retries_exhausted". Handlers must be idempotent: a message can be
// delivered again after a crash or a dead-letter retry.
type Handler func(ctx context.Context, m *Message) error

// ConsumerConfig names a durable consumer. Every replica of a service uses
// the same config, and so shares the one durable consumer.
type ConsumerConfig struct {
	// Stream is StreamStore or StreamHiper.
	Stream Stream
	// Name is the durable name, e.g. "order-forwarder"; A-Z, a-z, 0-9, '_'
	// and '-'.
	Name string
	// FilterSubjects selects the events, built with the Namespace (e.g.
	// ns.StoreSubject("*", KindOrderApproved)); empty means the whole stream.
	// More than one needs NATS 2.10 or later.
	FilterSubjects []string
	// AckWait is how long a delivery may go without an ack or heartbeat
	// before it is redelivered (default 30s). Handlers get heartbeats every
	// AckWait/3, so it bounds the time to notice a crashed replica, not how
	// long a handler may run.
	AckWait time.Duration
	// MaxDeliver is how many deliveries a failing message gets before it is
	// dead-lettered (default 10).
	MaxDeliver int
	// MaxAckPending bounds unacknowledged messages across all replicas
	// (default: the server's).
	MaxAckPending int
	Description   string
}

func (c ConsumerConfig) validate() (ConsumerConfig, error) {
	if c.Stream != StreamStore && c.Stream != StreamHiper {
		return c, fmt.Errorf("stream %q: want %s or %s", c.Stream, StreamStore, StreamHiper)
	}
	if c.Name == "" {
		return c, errors.New("empty consumer name")
	}
	for i := 0; i < len(c.Name); i++ {
		if ch := c.Name[i]; !isLowerAlnum(ch) && !('A' <= ch && ch <= 'Z') && ch != '_' && ch != '-' {
			return c, fmt.Errorf("consumer name %q: %q at %d; want only A-Z, a-z, 0-9, '_' or '-'", c.Name, rune(ch), i)
		}
	}
	if c.AckWait <= 0 {
		c.AckWait = DefaultAckWait
	}
	if c.MaxDeliver <= 0 {
		c.MaxDeliver = DefaultMaxDeliver
	}
	return c, nil
}

func (c ConsumerConfig) jetstream() jetstream.ConsumerConfig {
	jc := jetstream.ConsumerConfig{
		Durable:       c.Name,
		Description:   c.Description,
		DeliverPolicy: jetstream.DeliverAllPolicy,
		AckPolicy:     jetstream.AckExplicitPolicy,
		AckWait:       c.AckWait,
		// The server never gives up on a message by itself: the loop
		// enforces MaxDeliver, so that a message whose last delivery crashed
		// the process, or whose dead-lettering failed, still ends up in the
		// dead-letter stream instead of being silently dropped.
		MaxDeliver:    -1,
		MaxAckPending: c.MaxAckPending,
	}
	// One filter goes in FilterSubject, which servers before 2.10 require.
	switch len(c.FilterSubjects) {
	case 0:
	case 1:
		jc.FilterSubject = c.FilterSubjects[0]
	default:
		jc.FilterSubjects = c.FilterSubjects
	}
	return jc
}

// Consume runs the consumer loop until ctx is done, then drains: it stops
// fetching, lets in-flight handlers finish (cancelling their context and
// handing their messages back to the stream once the grace period expires),
// and returns nil. It creates or updates the durable consumer first, so the
// streams must exist (EnsureStreams). It returns an error only when the loop
// cannot start or the NATS connection is closed.
//
// Each handler's ctx carries the trace context of the message (a consumer
// span, child of the publisher's) and a logger with the tenant, subject and
// trace ids (LoggerFrom).
func Consume(ctx context.Context, js jetstream.JetStream, ns Namespace, cfg ConsumerConfig, h Handler, opts ...Option) error {
	if err := ns.Validate(); err != nil {
		return fmt.Errorf("consume: %w", err)
	}
	cfg, err := cfg.validate()
	if err != nil {
		return fmt.Errorf("consume: %w", err)
	}
	if h == nil {
		return errors.New("consume: nil handler")
	}
	o := newOptions(opts)
	stream := ns.Stream(cfg.Stream)
	cons, err := EnsureConsumer(ctx, js, stream, cfg.jetstream())
	if err != nil {
		return fmt.Errorf("consume: %w", err)
	}

	l := &loop{
		js:      js,
		ns:      ns,
		cfg:     cfg,
		handler: h,
		o:       o,
		log:     o.logger.With("consumer", cfg.Name, "stream", stream),
		tracer:  o.tracer(),
	}
	if o.metrics != nil {
		watchCtx, stopWatch := context.WithCancel(ctx)
		var watching sync.WaitGroup
		watching.Go(func() { l.watchPending(watchCtx, o.pendingEvery) })
		defer watching.Wait()
		defer stopWatch()
	}
	err = pull(ctx, js, cons, PullConfig{
		Stream:      stream,
		Consumer:    cfg.jetstream(),
		Concurrency: o.concurrency,
		GracePeriod: o.grace,
		Log:         o.logger,
		fetchWait:   o.fetchWait,
		onHandBack: func(msg jetstream.Msg) {
			subj, _ := ns.ParseSubject(msg.Subject())
			o.metrics.settled(cfg.Name, subj.Source, subj.Kind, outcomeHandedBack)
		},
	}, l.process)
	if o.asyncAck {
		// The acks of the last handlers are written, not waited for: put
		// them on the wire before the caller closes the connection.
		if ferr := js.Conn().FlushTimeout(ackTimeout); ferr != nil && !errors.Is(ferr, nats.ErrConnectionClosed) {
			l.log.Warn("flush the last acks; their messages may be delivered again", "error", ferr)
		}
	}
	return err
}

// loop turns the deliveries of one Consume into handler calls and settles
// them by the handler's outcome.
type loop struct {
	js      jetstream.JetStream
	ns      Namespace
	cfg     ConsumerConfig
	handler Handler
	o       options
	log     *slog.Logger
	tracer  trace.Tracer
}

// errRedelivered is the failure of a delivery past MaxDeliver: the previous
// one never settled (the process died, or dead-lettering failed).
var errRedelivered = errors.New("delivered again after its last attempt did not settle")

func (l *loop) process(ctx context.Context, d *Delivery) {
	msg := d.msg
	m := &Message{Subject: msg.Subject(), Headers: msg.Headers(), Data: msg.Data()}
	md, mdErr := msg.Metadata()
	if mdErr == nil {
		m.Deliveries = md.NumDelivered
		m.Stream = md.Stream
		m.StreamSeq = md.Sequence.Stream
		m.Consumer = md.Consumer
		m.Published = md.Timestamp
	}
	subj, subjErr := l.ns.ParseSubject(m.Subject)
	if subjErr != nil && l.o.storeStatuses {
		if tenant, status, ok := l.ns.ParseStoreStatus(m.Subject); ok {
			subj, subjErr = Subject{Source: SourceStore, Tenant: tenant, Kind: Kind("order." + status)}, nil
		}
	}
	if subjErr == nil {
		m.Source, m.Tenant, m.Kind = subj.Source, subj.Tenant, subj.Kind
	}

	ctx = l.o.propagator.Extract(ctx, HeaderCarrier(m.Headers))
	var spanName string
	if subjErr == nil {
		spanName = processName(subj)
	} else {
		spanName = "process " + l.ns.Stream(l.cfg.Stream)
	}
	ctx, span := l.tracer.Start(ctx, spanName, consumerSpan...)
	if span.IsRecording() {
		// Only then: with tracing off (or the span not sampled) they would
		// be garbage for every message.
		span.SetAttributes(
			attribute.String("messaging.system", "nats"),
			attribute.String("messaging.operation.type", "process"),
			attribute.String("messaging.destination.name", m.Subject),
			attribute.String("messaging.consumer.group.name", l.cfg.Name),
			attribute.String("messaging.message.id", m.ID()),
			attribute.Int64("messaging.message.delivery_count", int64(m.Deliveries)),
			attribute.String("hipersync.tenant", m.Tenant),
		)
	}
	defer span.End()

	sc := span.SpanContext()
	log := l.log.With(
		"subject", m.Subject,
		"tenant", m.Tenant,
		"kind", string(m.Kind),
		"stream_seq", m.StreamSeq,
		"deliveries", m.Deliveries,
		"event_id", m.ID(),
	)
	if sc.IsValid() {
		log = log.With("trace_id", sc.TraceID().String(), "span_id", sc.SpanID().String())
	}
	ctx = withLogger(ctx, log)

	if mdErr != nil {
		// Not a JetStream delivery: nothing to dead-letter it by.
		log.Error("read message metadata; terminating it", "error", mdErr)
		if d.Claim() {
			_ = l.term(msg, "invalid_metadata")
			l.o.metrics.settled(l.cfg.Name, m.Source, m.Kind, outcomeTerminated)
		}
		return
	}

	var err error
	switch {
	case subjErr != nil:
		err = Permanent(ReasonInvalidSubject, subjErr)
	case m.Deliveries > uint64(l.cfg.MaxDeliver):
		err = errRedelivered
	default:
		start := time.Now()
		err = l.call(ctx, m)
		l.o.metrics.handled(l.cfg.Name, m.Source, m.Kind, time.Since(start))
	}
	l.settle(ctx, d, m, err, span)
}

// processNames are each event type's span name in a consumer, made once
// rather than concatenated for every message.
var processNames = func() map[eventType]string {
	m := make(map[eventType]string, len(messageTypes))
	for et := range messageTypes {
		m[et] = "process " + CEType(et.source, et.kind)
	}
	return m
}()

// processName is the span name of handling an event on subject s.
func processName(s Subject) string {
	if name, ok := processNames[eventType{s.Source, s.Kind}]; ok {
		return name
	}
	return "process " + s.CEType()
}

// consumerSpan starts a handler's span; shared, so that each message does
// not allocate the options anew.
var consumerSpan = []trace.SpanStartOption{trace.WithSpanKind(trace.SpanKindConsumer)}

// call runs the handler, turning a panic into a transient failure so one bad
// message or bug never takes the service down.
func (l *loop) call(ctx context.Context, m *Message) (err error) {
	defer func() {
		if r := recover(); r != nil {
			LoggerFrom(ctx).Error("handler panicked", "panic", fmt.Sprint(r), "stack", string(debug.Stack()))
			err = fmt.Errorf("handler panicked: %v", r)
		}
	}()
	return l.handler(ctx, m)
}

// settle acks, retries or dead-letters the message by the handler's error.
func (l *loop) settle(ctx context.Context, d *Delivery, m *Message, herr error, span trace.Span) {
	if !d.Claim() {
		return // handed back by the drain
	}
	log := LoggerFrom(ctx)
	// Settling must happen even when the handler's context was cancelled;
	// an async ack needs no context at all.
	settleCtx := func() (context.Context, context.CancelFunc) {
		return context.WithTimeout(context.WithoutCancel(ctx), ackTimeout)
	}

	if herr == nil {
		// A double ack makes "handled" mean "the server knows", so a drain
		// returns only after its acks landed; WithAsyncAck trades that for
		// a round trip, where a redelivery is harmless.
		var err error
		if l.o.asyncAck {
			err = d.msg.Ack()
		} else {
			sctx, cancel := settleCtx()
			err = d.msg.DoubleAck(sctx)
			cancel()
		}
		if err != nil {
			log.Warn("ack message; it will be redelivered", "error", err)
		}
		l.o.metrics.settled(l.cfg.Name, m.Source, m.Kind, outcomeAck)
		return
	}

	span.RecordError(herr)
	span.SetStatus(codes.Error, "handler failed")
	code, permanent := permanentCode(herr)
	if !permanent && m.Deliveries >= uint64(l.cfg.MaxDeliver) {
		code, permanent = ReasonRetriesExhausted, true
		if !errors.Is(herr, errRedelivered) {
			herr = fmt.Errorf("failed %d deliveries, last: %w", m.Deliveries, herr)
		}
	}
	if permanent {
		sctx, cancel := settleCtx()
		defer cancel()
		if err := publishDeadLetter(sctx, l.js, l.ns, l.o.propagator, m, code, herr); err != nil {
			delay := l.o.backoff.Jittered(int(m.Deliveries))
			log.Error("dead-letter message failed; it will be redelivered", "error", err, "reason_code", code, "retry_in", delay)
			_ = d.msg.NakWithDelay(delay)
			l.o.metrics.settled(l.cfg.Name, m.Source, m.Kind, outcomeRetry)
			return
		}
		log.Warn("message dead-lettered", "reason_code", code, "error", herr)
		l.o.metrics.settled(l.cfg.Name, m.Source, m.Kind, outcomeDeadLetter)
		if err := l.term(d.msg, code); err != nil {
			log.Warn("terminate message", "error", err)
		}
		return
	}

	delay := l.o.backoff.Jittered(int(m.Deliveries))
	if ra, ok := errors.AsType[*RetryAfterError](herr); ok && ra.Delay > 0 {
		delay = ra.Delay
	}
	log.Warn("handler failed; message will be redelivered", "error", herr, "retry_in", delay)
	if err := d.msg.NakWithDelay(delay); err != nil {
		log.Warn("nak message", "error", err)
	}
	l.o.metrics.settled(l.cfg.Name, m.Source, m.Kind, outcomeRetry)
}

// term stops redelivery of msg. The reason goes to the server's advisory
// where the server understands it: before 2.10 a "+TERM <reason>" is not
// recognised at all, and the message would come back after AckWait.
func (l *loop) term(msg jetstream.Msg, reason string) error {
	if serverAtLeast(l.js.Conn(), 2, 10) {
		return msg.TermWithReason(reason)
	}
	return msg.Term()
}

// serverAtLeast reports whether the connected server is at least major.minor.
func serverAtLeast(nc *nats.Conn, major, minor int) bool {
	var ma, mi int
	if _, err := fmt.Sscanf(nc.ConnectedServerVersion(), "%d.%d", &ma, &mi); err != nil {
		return false
	}
	return ma > major || ma == major && mi >= minor
}

type loggerKey struct{}

func withLogger(ctx context.Context, l *slog.Logger) context.Context {
	return context.WithValue(ctx, loggerKey{}, l)
}

// LoggerFrom returns the logger the consumer loop put in a handler's ctx,
// with the message's tenant, subject and trace ids; outside a handler, a
// logger that discards.
func LoggerFrom(ctx context.Context) *slog.Logger {
	if l, ok := ctx.Value(loggerKey{}).(*slog.Logger); ok {
		return l
	}
	return slog.New(slog.DiscardHandler)
}
