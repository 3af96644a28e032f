package events

import (
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"

	"github.com/hipersync/hipersync/pkg/backoff"
)

// Defaults of the consumer loop.
const (
	DefaultConcurrency = 16
	DefaultAckWait     = 30 * time.Second
	DefaultMaxDeliver  = 10
	DefaultBackoffBase = time.Second
	DefaultBackoffMax  = time.Minute
	// DefaultGracePeriod fits inside Kubernetes' default 30s termination
	// grace, leaving time to drain the connection and flush telemetry.
	DefaultGracePeriod = 20 * time.Second
)

const (
	instrumentationName = "github.com/hipersync/hipersync/pkg/events"
	// fetchWait bounds one pull request, so a loop notices a deleted
	// consumer and a shutdown never waits on the server.
	defaultFetchWait = 5 * time.Second
	// ackTimeout bounds a synchronous ack and a dead-letter publish.
	ackTimeout = 5 * time.Second
)

// Option configures a Publisher or the consumer loop (Consume); options that
// do not apply to one are ignored by it.
type Option func(*options)

type options struct {
	logger         *slog.Logger
	tracerProvider trace.TracerProvider
	propagator     propagation.TextMapPropagator
	concurrency    int
	backoff        backoff.Exp
	grace          time.Duration
	fetchWait      time.Duration
	metrics        *metrics
	pendingEvery   time.Duration
	storeStatuses  bool
	asyncAck       bool
}

func newOptions(opts []Option) options {
	o := options{
		concurrency:  DefaultConcurrency,
		backoff:      backoff.Exp{Base: DefaultBackoffBase, Max: DefaultBackoffMax},
		grace:        DefaultGracePeriod,
		fetchWait:    defaultFetchWait,
		pendingEvery: defaultPendingInterval,
	}
	for _, opt := range opts {
		opt(&o)
	}
	if o.logger == nil {
		o.logger = slog.New(slog.DiscardHandler)
	}
	if o.tracerProvider == nil {
		o.tracerProvider = otel.GetTracerProvider()
	}
	if o.propagator == nil {
		// W3C trace context is the contract (DESIGN.md), so it does not
		// depend on whether a service remembered to set the global one.
		o.propagator = propagation.NewCompositeTextMapPropagator(propagation.TraceContext{}, propagation.Baggage{})
	}
	if o.concurrency < 1 {
		o.concurrency = 1
	}
	if o.backoff.Base <= 0 {
		o.backoff.Base = DefaultBackoffBase
	}
	if o.backoff.Max < o.backoff.Base {
		o.backoff.Max = o.backoff.Base
	}
	if o.grace < 0 {
		o.grace = 0
	}
	return o
}

func (o options) tracer() trace.Tracer { return o.tracerProvider.Tracer(instrumentationName) }

// WithLogger sets the logger; without it nothing is logged.
func WithLogger(l *slog.Logger) Option { return func(o *options) { o.logger = l } }

// WithTracerProvider sets where spans go; the default is otel's global
// provider, which services set up at start.
func WithTracerProvider(tp trace.TracerProvider) Option {
	return func(o *options) { o.tracerProvider = tp }
}

// WithPropagator replaces the W3C trace-context and baggage propagator.
func WithPropagator(p propagation.TextMapPropagator) Option {
	return func(o *options) { o.propagator = p }
}

// WithStoreOrderStatuses hands the handler, instead of dead-lettering them
// as invalid subjects, the store's order statuses this package does not
// know (store.<tenant>.order.<status>, one token): Kind is "order.<status>"
// and the handler decides what the status means (a tenant's status map).
func WithStoreOrderStatuses() Option { return func(o *options) { o.storeStatuses = true } }

// WithAsyncAck makes the loop ack a handled message without waiting for
// the server's confirmation (the default is a double ack, one round trip).
// Only for handlers whose redelivery of a handled message is a no-op: an
// ack lost on the way (a crash, a broken connection) means one more
// delivery. The handler's slot is free one round trip sooner. A draining
// loop flushes the connection before Consume returns, so its last acks are
// not left in the client's buffer.
func WithAsyncAck() Option { return func(o *options) { o.asyncAck = true } }

// WithConcurrency bounds how many messages one loop handles at once.
func WithConcurrency(n int) Option { return func(o *options) { o.concurrency = n } }

// WithBackoff sets the redelivery delay after a transient failure: base
// after the first delivery, doubling per delivery up to max, with jitter.
func WithBackoff(base, max time.Duration) Option {
	return func(o *options) { o.backoff = backoff.Exp{Base: base, Max: max} }
}

// WithGracePeriod sets how long a draining loop lets in-flight handlers
// finish before it cancels their context and hands their messages back.
func WithGracePeriod(d time.Duration) Option { return func(o *options) { o.grace = d } }

// WithMetrics counts into reg what a Publisher publishes and what a
// consumer loop settles (hipersync_events_published_total,
// hipersync_events_consumed_total, hipersync_event_handler_seconds), and
// makes the loop report its durable consumer's backlog
// (hipersync_consumer_pending_messages and friends). Several loops and
// Publishers may share one registry. Without it nothing is counted.
func WithMetrics(reg prometheus.Registerer) Option {
	return func(o *options) { o.metrics = newMetrics(reg) }
}

// withPendingInterval makes the loop read its consumer's state more often
// in tests.
func withPendingInterval(d time.Duration) Option { return func(o *options) { o.pendingEvery = d } }

// withFetchWait shortens pull requests in tests.
func withFetchWait(d time.Duration) Option { return func(o *options) { o.fetchWait = d } }
