package hiper

import (
	"context"
	"net/http"
	"net/url"
	"strconv"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	semconv "go.opentelemetry.io/otel/semconv/v1.26.0"
	"go.opentelemetry.io/otel/trace"
)

// instrumentationName names the tracer of the Client's spans.
const instrumentationName = "github.com/hipersync/hipersync/pkg/hiper"

// startSpan starts the client span of one call, "hiper <endpoint>", child
// of the caller's span. Its provider is the Client's (WithTracerProvider),
// else the caller span's, else the global one.
//
// The Client traces its calls itself, not with otelhttp's transport: that
// also works out OpenTelemetry metric attributes for every call (hashing
// each attribute set), which this project counts with Prometheus instead
// (WithMetrics), and it cost about a third of a call's client side.
func (c *Client) startSpan(ctx context.Context, ep *endpoint, u *url.URL, full string) (context.Context, trace.Span) {
	tp := c.tracerProv
	if tp == nil {
		if parent := trace.SpanFromContext(ctx); parent.SpanContext().IsValid() {
			tp = parent.TracerProvider()
		} else {
			tp = otel.GetTracerProvider()
		}
	}
	ctx, span := tp.Tracer(instrumentationName).Start(ctx, "hiper "+ep.name, trace.WithSpanKind(trace.SpanKindClient))
	if span.IsRecording() {
		attrs := []attribute.KeyValue{
			semconv.HTTPRequestMethodKey.String(ep.method),
			semconv.URLFull(full),
			semconv.ServerAddress(u.Hostname()),
		}
		if p, err := strconv.Atoi(u.Port()); err == nil {
			attrs = append(attrs, semconv.ServerPort(p))
		}
		span.SetAttributes(attrs...)
	}
	return ctx, span
}

// endSpan records the answer's status, or the failure, on span; a status
// of 400 or more is an error, as for any HTTP client span.
func endSpan(span trace.Span, status int, err *Error) {
	if !span.IsRecording() {
		return
	}
	if status > 0 {
		span.SetAttributes(semconv.HTTPResponseStatusCode(status))
	}
	switch {
	case err != nil:
		kind := "_OTHER"
		if err.Kind != nil {
			kind = err.Kind.Error()
		}
		span.SetAttributes(semconv.ErrorTypeKey.String(kind))
		span.SetStatus(codes.Error, err.Error())
	case status >= 400:
		span.SetAttributes(semconv.ErrorTypeKey.String(strconv.Itoa(status)))
		span.SetStatus(codes.Error, http.StatusText(status))
	}
}
