package telemetry

import (
	"bytes"
	"io"

	"context"
	"encoding/json"
	"errors"
	"github.com/prometheus/client_golang/prometheus"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/propagation"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
)

func TestLoggerAddsTraceIDs(t *testing.T) {
	t.Parallel()
	var buf bytes.Buffer
	log := NewLogger("test-svc", &buf, slog.LevelInfo)
	tp := sdktrace.NewTracerProvider()
	ctx, span := tp.Tracer("t").Start(context.Background(), "op")
	log.InfoContext(ctx, "hello", "tenant", "acme")
	span.End()

	var rec map[string]any
	if err := json.Unmarshal(buf.Bytes(), &rec); err != nil {
		t.Fatalf("log line is not JSON: %v: %s", err, buf.String())
	}
	if rec["trace_id"] != span.SpanContext().TraceID().String() || rec["service"] != "test-svc" || rec["tenant"] != "acme" {
		t.Fatalf("unexpected record: %v", rec)
	}
}

func TestReadinessReportsEachCheck(t *testing.T) {
	t.Parallel()
	h := NewHealth()
	h.AddCheck("nats", func(context.Context) error { return nil })
	srv := httptest.NewServer(h.Handler())
	defer srv.Close()

	get := func(path string) (int, string) {
		resp, err := http.Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var b bytes.Buffer
		_, _ = b.ReadFrom(resp.Body)
		return resp.StatusCode, b.String()
	}
	if code, _ := get("/readyz"); code != http.StatusOK {
		t.Fatalf("ready with passing checks: %d", code)
	}
	h.AddCheck("cache", func(context.Context) error { return &DegradedError{errors.New("redis down")} })
	if code, body := get("/readyz"); code != http.StatusOK || !strings.Contains(body, "degraded: redis down") {
		t.Fatalf("readyz with a degraded check: %d %s", code, body)
	}
	h.AddCheck("redis", func(context.Context) error { return errors.New("connection refused") })
	code, body := get("/readyz")
	if code != http.StatusServiceUnavailable || !strings.Contains(body, "connection refused") {
		t.Fatalf("readyz with a failing check: %d %s", code, body)
	}
	if code, _ := get("/healthz"); code != http.StatusOK {
		t.Fatalf("healthz: %d", code)
	}
	if code, body := get("/metrics"); code != http.StatusOK || !strings.Contains(body, "go_goroutines") {
		t.Fatalf("metrics: %d", code)
	}
}

func TestIncludeMergesServicesWithALabel(t *testing.T) {
	t.Parallel()
	parent, a, b := NewHealth(), NewHealth(), NewHealth()
	for _, h := range []*Health{a, b} {
		c := prometheus.NewCounter(prometheus.CounterOpts{Name: "hipersync_test_total", Help: "same series in two services"})
		h.Registry.MustRegister(c)
		c.Inc()
	}
	b.AddCheck("nats", func(context.Context) error { return errors.New("down") })
	parent.Include("alpha", a)
	parent.Include("beta", b)
	srv := httptest.NewServer(parent.Handler())
	defer srv.Close()
	resp, err := http.Get(srv.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range []string{`hipersync_test_total{service="alpha"} 1`, `hipersync_test_total{service="beta"} 1`} {
		if !strings.Contains(string(body), want) {
			t.Fatalf("metrics lack %s:\n%s", want, body)
		}
	}
	resp, err = http.Get(srv.URL + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	body, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable || !strings.Contains(string(body), "beta/nats") {
		t.Fatalf("readyz: %d %s", resp.StatusCode, body)
	}
}

// With tracing off, spans are not recorded but have ids, so what a service
// publishes carries a traceparent and its logs a trace_id.
func TestTracingOffStillPropagatesATraceparent(t *testing.T) {
	for _, name := range []string{"OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"} {
		t.Setenv(name, "")
	}
	shutdown, err := SetupTracing(context.Background(), "test")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = shutdown(context.Background()) })
	ctx, span := otel.Tracer("test").Start(context.Background(), "publish")
	defer span.End()
	if span.IsRecording() || span.SpanContext().IsSampled() {
		t.Error("a span is recorded with tracing off")
	}
	h := propagation.MapCarrier{}
	otel.GetTextMapPropagator().Inject(ctx, h)
	if tp := h.Get("traceparent"); !strings.HasPrefix(tp, "00-"+span.SpanContext().TraceID().String()) {
		t.Errorf("traceparent %q with tracing off; want one naming the span's trace", tp)
	}
}
