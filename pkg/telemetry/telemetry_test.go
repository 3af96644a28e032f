package telemetry

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

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
