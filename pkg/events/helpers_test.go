package events

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/hipersync/hipersync/pkg/testkit"
)

// testEnv is one test's own corner of the real NATS server: a namespace
// nobody else uses, with its streams, removed when the test ends.
type testEnv struct {
	nc    *nats.Conn
	js    jetstream.JetStream
	ns    Namespace
	spans *tracetest.SpanRecorder
	tp    *sdktrace.TracerProvider
	log   *slog.Logger
}

// testNamespace is unique per test and per run (testkit.Prefix).
func testNamespace(t testing.TB) Namespace { return Namespace{Prefix: testkit.Prefix(t)} }

func newTestEnv(t *testing.T, opts ...StreamOption) *testEnv {
	t.Helper()
	return newTestEnvOn(t, testkit.NATSURL(), opts...)
}

// newTestEnvOn is newTestEnv on the NATS server at url: a test that lists
// every stream of the server runs on a server of its own (natstest), where
// no other test creates or deletes streams while it pages through them.
func newTestEnvOn(t *testing.T, url string, opts ...StreamOption) *testEnv {
	t.Helper()
	nc, err := nats.Connect(url, nats.Name("events-test "+t.Name()))
	if err != nil {
		t.Fatalf("connect to NATS at %s (set NATS_URL): %v", url, err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatalf("jetstream: %v", err)
	}
	e := &testEnv{nc: nc, js: js, ns: testNamespace(t), spans: tracetest.NewSpanRecorder()}
	e.tp = sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(e.spans))
	e.log = slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelDebug}))
	t.Cleanup(func() { e.deleteAll(t) })
	if err := EnsureStreams(t.Context(), js, e.ns, opts...); err != nil {
		t.Fatalf("EnsureStreams: %v", err)
	}
	return e
}

// deleteAll removes every stream and bucket of the namespace.
func (e *testEnv) deleteAll(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	names := e.js.StreamNames(ctx)
	for name := range names.Name() {
		if strings.HasPrefix(name, e.ns.Prefix+"_") || strings.HasPrefix(name, "KV_"+e.ns.Prefix+"_") {
			if err := e.js.DeleteStream(ctx, name); err != nil && !errors.Is(err, jetstream.ErrStreamNotFound) {
				t.Errorf("delete stream %s: %v", name, err)
			}
		}
	}
	if err := names.Err(); err != nil {
		t.Errorf("list streams: %v", err)
	}
}

// consumerOpts are the loop's options for tests: fast retries, the test's
// logger and tracer.
func (e *testEnv) consumerOpts(extra ...Option) []Option {
	return append([]Option{
		WithLogger(e.log),
		WithTracerProvider(e.tp),
		WithBackoff(10*time.Millisecond, 50*time.Millisecond),
		WithGracePeriod(10 * time.Second),
		withFetchWait(time.Second),
	}, extra...)
}

// consume runs Consume until stop (or the test's end) and returns stop,
// which reports Consume's error.
func (e *testEnv) consume(t *testing.T, cfg ConsumerConfig, h Handler, opts ...Option) (stop func() error) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- Consume(ctx, e.js, e.ns, cfg, h, e.consumerOpts(opts...)...) }()
	var once sync.Once
	var err error
	stop = func() error {
		once.Do(func() {
			cancel()
			select {
			case err = <-errc:
			case <-time.After(30 * time.Second):
				err = errors.New("Consume did not return 30s after its context was cancelled")
			}
		})
		return err
	}
	t.Cleanup(func() {
		if err := stop(); err != nil {
			t.Errorf("Consume: %v", err)
		}
	})
	return stop
}

// consumerInfo waits for the durable to exist and returns its state.
func (e *testEnv) consumerInfo(t *testing.T, stream Stream, name string) *jetstream.ConsumerInfo {
	t.Helper()
	var info *jetstream.ConsumerInfo
	testkit.WaitFor(t, 20*time.Second, "the condition", func() bool {
		c, err := e.js.Consumer(t.Context(), e.ns.Stream(stream), name)
		if err != nil {
			return false
		}
		info, err = c.Info(t.Context())
		return err == nil
	})
	return info
}

func (e *testEnv) streamMsgs(t *testing.T, stream Stream) uint64 {
	t.Helper()
	s, err := e.js.Stream(t.Context(), e.ns.Stream(stream))
	if err != nil {
		t.Fatalf("stream %s: %v", stream, err)
	}
	info, err := s.Info(t.Context())
	if err != nil {
		t.Fatalf("stream %s info: %v", stream, err)
	}
	return info.State.Msgs
}

// handled records what a handler saw, safe for concurrent handlers.
type handled struct {
	mu   sync.Mutex
	msgs []*Message
	ctxs []context.Context
}

func (h *handled) add(ctx context.Context, m *Message) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.msgs = append(h.msgs, m)
	h.ctxs = append(h.ctxs, ctx)
}

func (h *handled) len() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.msgs)
}

func (h *handled) get(i int) (context.Context, *Message) {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.ctxs[i], h.msgs[i]
}

// count returns how many times the event with ce-id id was handled.
func (h *handled) count(id string) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	n := 0
	for _, m := range h.msgs {
		if m.ID() == id {
			n++
		}
	}
	return n
}
