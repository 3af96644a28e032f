package events

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/protobuf/proto"

	eventsv1 "github.com/hipersync/hipersync/pkg/gen/hipersync/events/v1"
	"github.com/hipersync/hipersync/pkg/testkit"
)

// These tests run against the real NATS server (NATS_URL, default
// 127.0.0.1:4222), each in its own namespace.

func (e *testEnv) publisher(f Format) *Publisher {
	return NewPublisher(e.js, e.ns, "hipersync/test", f, WithTracerProvider(e.tp))
}

func (e *testEnv) orderConsumer(name string) ConsumerConfig {
	return ConsumerConfig{
		Stream:         StreamStore,
		Name:           name,
		FilterSubjects: []string{e.ns.StoreSubject("*", KindOrderApproved)},
		AckWait:        2 * time.Second,
		MaxDeliver:     5,
	}
}

func (e *testEnv) publishOrder(t *testing.T, tenant, id string) {
	t.Helper()
	order := sampleOrder()
	order.OrderId = id
	if _, err := e.publisher(FormatProtobuf).Publish(t.Context(), e.ns.StoreSubject(tenant, KindOrderApproved), tenant+":"+id, order); err != nil {
		t.Fatalf("publish order %s: %v", id, err)
	}
}

// settled waits until the consumer has nothing unacknowledged and its ack
// floor reached seq.
func (e *testEnv) settled(t *testing.T, cfg ConsumerConfig, seq uint64) *jetstream.ConsumerInfo {
	t.Helper()
	var info *jetstream.ConsumerInfo
	testkit.WaitFor(t, 10*time.Second, "the condition", func() bool {
		info = e.consumerInfo(t, cfg.Stream, cfg.Name)
		return info.NumAckPending == 0 && info.AckFloor.Stream >= seq
	})
	return info
}

func (e *testEnv) deadLetters(t *testing.T, n int) []DeadLetterEntry {
	t.Helper()
	var entries []DeadLetterEntry
	testkit.WaitFor(t, 10*time.Second, "the condition", func() bool {
		var err error
		entries, err = ListDeadLetters(t.Context(), e.js, e.ns, 0)
		if err != nil {
			t.Fatalf("ListDeadLetters: %v", err)
		}
		return len(entries) >= n
	})
	if len(entries) != n {
		t.Fatalf("%d dead letters, want %d", len(entries), n)
	}
	return entries
}

func TestRoundTrip(t *testing.T) {
	t.Parallel()
	for _, format := range []Format{FormatProtobuf, FormatJSON} {
		t.Run(string(format), func(t *testing.T) {
			t.Parallel()
			e := newTestEnv(t)
			logs := &testkit.SyncBuffer{}
			var got handled
			cfg := e.orderConsumer("roundtrip")
			e.consume(t, cfg, func(ctx context.Context, m *Message) error {
				LoggerFrom(ctx).Info("order received")
				got.add(ctx, m)
				return nil
			}, WithLogger(slog.New(slog.NewJSONHandler(logs, nil))))

			subject := e.ns.StoreSubject("acme", KindOrderApproved)
			published := time.Date(2026, 11, 23, 12, 0, 1, 0, time.UTC)
			dup, err := e.publisher(format).Publish(t.Context(), subject, "acme:1001:approved", sampleOrder(),
				WithEventSubject("1001"), WithEventTime(published))
			if err != nil || dup {
				t.Fatalf("Publish = %v, %v", dup, err)
			}
			testkit.WaitFor(t, 10*time.Second, "the condition", func() bool { return got.len() == 1 })
			ctx, m := got.get(0)

			wantHeaders := map[string]string{
				"Nats-Msg-Id":    "acme:1001:approved",
				"ce-specversion": "1.0",
				"ce-id":          "acme:1001:approved",
				"ce-type":        "hipersync.store.order.approved",
				"ce-source":      "hipersync/test",
				"ce-time":        "2026-11-23T12:00:01Z",
				"ce-subject":     "1001",
				"Content-Type":   format.ContentType(),
			}
			for k, want := range wantHeaders {
				if got := m.Headers.Get(k); got != want {
					t.Errorf("header %s = %q, want %q", k, got, want)
				}
			}
			if format == FormatJSON && !bytes.Contains(m.Data, []byte(`"orderId":"1001"`)) {
				t.Errorf("JSON payload %s lacks lowerCamelCase orderId", m.Data)
			}
			order := &eventsv1.StoreOrderApproved{}
			if err := m.Decode(order); err != nil {
				t.Fatalf("Decode: %v", err)
			}
			if !proto.Equal(order, sampleOrder()) {
				t.Errorf("decoded %v, want %v", order, sampleOrder())
			}
			if m.Subject != subject || m.Source != SourceStore || m.Tenant != "acme" || m.Kind != KindOrderApproved ||
				m.Deliveries != 1 || m.StreamSeq != 1 || m.Stream != e.ns.Stream(StreamStore) || m.Consumer != "roundtrip" ||
				m.ID() != "acme:1001:approved" {
				t.Errorf("message %+v: wrong identity", m)
			}

			// The handler runs in the publisher's trace: its span is a child
			// of the producer span, whose context traceparent carried.
			producer := findSpan(t, e, trace.SpanKindProducer)
			traceparent := m.Headers.Get("traceparent")
			want := fmt.Sprintf("00-%s-%s-01", producer.SpanContext().TraceID(), producer.SpanContext().SpanID())
			if traceparent != want {
				t.Errorf("traceparent = %q, want %q", traceparent, want)
			}
			sc := trace.SpanContextFromContext(ctx)
			if sc.TraceID() != producer.SpanContext().TraceID() {
				t.Errorf("handler trace id %s, want the publisher's %s", sc.TraceID(), producer.SpanContext().TraceID())
			}
			consumer := findSpan(t, e, trace.SpanKindConsumer)
			if consumer.Parent().SpanID() != producer.SpanContext().SpanID() || consumer.SpanContext().SpanID() != sc.SpanID() {
				t.Errorf("consumer span %s (parent %s), want the handler's %s under producer %s",
					consumer.SpanContext().SpanID(), consumer.Parent().SpanID(), sc.SpanID(), producer.SpanContext().SpanID())
			}
			if log := logs.String(); !strings.Contains(log, `"trace_id":"`+sc.TraceID().String()+`"`) || !strings.Contains(log, `"tenant":"acme"`) {
				t.Errorf("handler log %s lacks the trace id and tenant", log)
			}

			e.settled(t, cfg, 1)

			// hipersync's own events travel the same way on HIPER.
			var hiperGot handled
			e.consume(t, ConsumerConfig{Stream: StreamHiper, Name: "outcomes",
				FilterSubjects: []string{e.ns.HiperSubject("*", ">")}},
				func(ctx context.Context, m *Message) error { hiperGot.add(ctx, m); return nil })
			accepted := &eventsv1.OrderAccepted{OrderId: "1001", HiperOrderId: "h-77"}
			if _, err := e.publisher(format).Publish(t.Context(), e.ns.HiperSubject("acme", KindOrderAccepted), "acme:1001:accepted", accepted); err != nil {
				t.Fatalf("Publish OrderAccepted: %v", err)
			}
			testkit.WaitFor(t, 10*time.Second, "the condition", func() bool { return hiperGot.len() == 1 })
			_, hm := hiperGot.get(0)
			// Decode by kind, as `hipersync events tail` does.
			msg, err := NewMessage(hm.Source, hm.Kind)
			if err != nil {
				t.Fatalf("NewMessage(%s, %s): %v", hm.Source, hm.Kind, err)
			}
			if err := hm.Decode(msg); err != nil || !proto.Equal(msg, accepted) {
				t.Errorf("decoded %v (%v), want %v", msg, err, accepted)
			}
			if got := hm.Headers.Get("ce-type"); got != "hipersync.order.accepted" {
				t.Errorf("ce-type = %q", got)
			}
		})
	}
}

func findSpan(t *testing.T, e *testEnv, kind trace.SpanKind) sdktrace.ReadOnlySpan {
	t.Helper()
	var found sdktrace.ReadOnlySpan
	testkit.WaitFor(t, 20*time.Second, "the condition", func() bool {
		for _, s := range e.spans.Ended() {
			if s.SpanKind() == kind {
				found = s
				return true
			}
		}
		return false
	})
	return found
}

func TestPublishDuplicateDropped(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t)
	pub := e.publisher(FormatProtobuf)
	subject := e.ns.StoreSubject("acme", KindOrderApproved)
	for i, tt := range []struct {
		id      string
		wantDup bool
		msgs    uint64
	}{
		{"acme:1001:approved", false, 1},
		{"acme:1001:approved", true, 1},
		{"acme:1002:approved", false, 2},
	} {
		dup, err := pub.Publish(t.Context(), subject, tt.id, sampleOrder())
		if err != nil || dup != tt.wantDup {
			t.Fatalf("publish %d (%s) = %v, %v; want duplicate %v", i, tt.id, dup, err, tt.wantDup)
		}
		if n := e.streamMsgs(t, StreamStore); n != tt.msgs {
			t.Errorf("after publish %d the stream has %d messages, want %d", i, n, tt.msgs)
		}
	}
}

func TestPublishToMissingStream(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t)
	if err := e.js.DeleteStream(t.Context(), e.ns.Stream(StreamHiper)); err != nil {
		t.Fatal(err)
	}
	_, err := e.publisher(FormatJSON).Publish(t.Context(), e.ns.HiperSubject("acme", KindStockChanged), "s1", &eventsv1.StockChanged{ProductId: "p"})
	if err == nil {
		t.Fatal("Publish without a HIPER stream succeeded")
	}
}

func TestPoisonMessageDeadLettered(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t)
	var got handled
	cfg := e.orderConsumer("forwarder")
	e.consume(t, cfg, func(ctx context.Context, m *Message) error {
		order := &eventsv1.StoreOrderApproved{}
		if err := m.Decode(order); err != nil {
			return fmt.Errorf("decode order: %w", err)
		}
		got.add(ctx, m)
		return nil
	})

	garbage := []byte{0xff, 0xff, 0xff, 0x01}
	subject := e.ns.StoreSubject("acme", KindOrderApproved)
	if _, err := e.js.PublishMsg(t.Context(), &nats.Msg{Subject: subject, Data: garbage,
		Header: nats.Header{"Content-Type": {"application/protobuf"}, "ce-id": {"bad-1"}}}); err != nil {
		t.Fatal(err)
	}
	// A subject the filter matches but no tenant can have: the handler never
	// sees it.
	badSubject := e.ns.StoreSubject("ACME", KindOrderApproved)
	if _, err := e.js.Publish(t.Context(), badSubject, []byte(contractOrderJSON)); err != nil {
		t.Fatal(err)
	}
	e.publishOrder(t, "acme", "1002")

	testkit.WaitFor(t, 10*time.Second, "the condition", func() bool { return got.len() == 1 })
	if _, m := got.get(0); m.StreamSeq != 3 {
		t.Errorf("handled sequence %d, want the good message's 3", m.StreamSeq)
	}
	entries := e.deadLetters(t, 2)
	byCode := map[string]DeadLetterEntry{}
	for _, en := range entries {
		if en.Err != nil {
			t.Fatalf("dead letter %d: %v", en.Seq, en.Err)
		}
		byCode[en.Letter.GetReasonCode()] = en
	}

	poison, ok := byCode[ReasonMalformed]
	if !ok {
		t.Fatalf("no %s dead letter in %v", ReasonMalformed, byCode)
	}
	dl := poison.Letter
	if !bytes.Equal(dl.GetData(), garbage) || dl.GetSubject() != subject || dl.GetTenant() != "acme" ||
		dl.GetStream() != e.ns.Stream(StreamStore) || dl.GetStreamSequence() != 1 || dl.GetConsumer() != "forwarder" ||
		dl.GetDeliveries() != 1 || dl.GetHeaders()["Content-Type"] != "application/protobuf" || dl.GetHeaders()["ce-id"] != "bad-1" ||
		dl.GetFailedAt() == nil {
		t.Errorf("dead letter %v: wrong record of the original", dl)
	}
	if !strings.Contains(dl.GetReason(), "decode order") || !strings.Contains(dl.GetReason(), "cannot parse invalid wire-format data") {
		t.Errorf("reason %q does not say why", dl.GetReason())
	}
	if want := e.ns.DeadLetterSubject("acme", "forwarder"); poison.Subject != want {
		t.Errorf("dead letter on %s, want %s", poison.Subject, want)
	}

	invalid, ok := byCode[ReasonInvalidSubject]
	if !ok {
		t.Fatalf("no %s dead letter in %v", ReasonInvalidSubject, byCode)
	}
	if invalid.Letter.GetTenant() != "" || invalid.Subject != e.ns.DeadLetterSubject("_unknown", "forwarder") ||
		!strings.Contains(invalid.Letter.GetReason(), "invalid tenant") {
		t.Errorf("invalid-subject dead letter %v on %s", invalid.Letter, invalid.Subject)
	}

	info := e.settled(t, cfg, 3)
	if info.NumRedelivered != 0 {
		t.Errorf("%d redeliveries: a malformed message must not be retried", info.NumRedelivered)
	}
}

func TestTransientErrorRedelivered(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name     string
		err      error
		minDelay time.Duration
	}{
		{"backoff", errors.New("hiper unavailable"), 5 * time.Millisecond}, // half of the 10ms base
		{"retry after", RetryAfter(300*time.Millisecond, errors.New("rate limited")), 300 * time.Millisecond},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			e := newTestEnv(t)
			var got handled
			var calls []time.Time
			var mu sync.Mutex
			cfg := e.orderConsumer("forwarder")
			e.consume(t, cfg, func(ctx context.Context, m *Message) error {
				mu.Lock()
				calls = append(calls, time.Now())
				mu.Unlock()
				got.add(ctx, m)
				if m.Deliveries == 1 {
					return tt.err
				}
				return nil
			})
			e.publishOrder(t, "acme", "1001")
			testkit.WaitFor(t, 10*time.Second, "the condition", func() bool { return got.len() == 2 })
			_, first := got.get(0)
			_, second := got.get(1)
			if first.Deliveries != 1 || second.Deliveries != 2 || second.StreamSeq != first.StreamSeq {
				t.Errorf("deliveries %d then %d of seqs %d, %d; want 1 then 2 of one message", first.Deliveries, second.Deliveries, first.StreamSeq, second.StreamSeq)
			}
			mu.Lock()
			gap := calls[1].Sub(calls[0])
			mu.Unlock()
			if gap < tt.minDelay {
				t.Errorf("redelivered after %s, want at least %s", gap, tt.minDelay)
			}
			e.settled(t, cfg, 1)
			if got.len() != 2 {
				t.Errorf("handled %d times after the ack, want 2", got.len())
			}
			if entries, err := ListDeadLetters(t.Context(), e.js, e.ns, 0); err != nil || len(entries) != 0 {
				t.Errorf("dead letters %v, %v; want none", entries, err)
			}
		})
	}
}

func TestRetriesExhausted(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t)
	var calls atomic.Int32
	cfg := e.orderConsumer("forwarder")
	cfg.MaxDeliver = 3
	e.consume(t, cfg, func(ctx context.Context, m *Message) error {
		calls.Add(1)
		return errors.New("hiper answered 503")
	})
	e.publishOrder(t, "acme", "1001")
	entries := e.deadLetters(t, 1)
	dl := entries[0].Letter
	if dl.GetReasonCode() != ReasonRetriesExhausted || dl.GetDeliveries() != 3 || !strings.Contains(dl.GetReason(), "hiper answered 503") {
		t.Errorf("dead letter %v, want %s after 3 deliveries with the last error", dl, ReasonRetriesExhausted)
	}
	e.settled(t, cfg, 1)
	if n := calls.Load(); n != 3 {
		t.Errorf("handler called %d times, want MaxDeliver = 3", n)
	}
}

// A replica that dies mid-handler never settles its delivery; once such
// deliveries pass MaxDeliver the message is dead-lettered without running the
// handler again, instead of crashing replica after replica.
func TestUnsettledDeliveriesDeadLettered(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t)
	cfg := e.orderConsumer("forwarder")
	cfg.AckWait = 300 * time.Millisecond
	cfg.MaxDeliver = 2
	cfg, err := cfg.validate()
	if err != nil {
		t.Fatal(err)
	}
	cons, err := e.js.CreateOrUpdateConsumer(t.Context(), e.ns.Stream(StreamStore), cfg.jetstream())
	if err != nil {
		t.Fatal(err)
	}
	e.publishOrder(t, "acme", "1001")
	for want := uint64(1); want <= 2; want++ {
		// A replica takes the message and dies: no ack, no heartbeat.
		testkit.WaitFor(t, 20*time.Second, "the condition", func() bool {
			msg, err := cons.Next(jetstream.FetchMaxWait(200 * time.Millisecond))
			if err != nil {
				return false
			}
			md, _ := msg.Metadata()
			if md.NumDelivered != want {
				t.Fatalf("delivery %d, want %d", md.NumDelivered, want)
			}
			return true
		})
	}
	var calls atomic.Int32
	e.consume(t, cfg, func(ctx context.Context, m *Message) error {
		calls.Add(1)
		return nil
	})
	dl := e.deadLetters(t, 1)[0].Letter
	if dl.GetReasonCode() != ReasonRetriesExhausted || dl.GetDeliveries() != 3 || !strings.Contains(dl.GetReason(), "did not settle") {
		t.Errorf("dead letter %v, want %s on delivery 3", dl, ReasonRetriesExhausted)
	}
	e.settled(t, cfg, 1)
	if n := calls.Load(); n != 0 {
		t.Errorf("handler ran %d times on a message past MaxDeliver", n)
	}
}

func TestPanickingHandlerDoesNotStopTheLoop(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t)
	var got handled
	cfg := e.orderConsumer("forwarder")
	e.consume(t, cfg, func(ctx context.Context, m *Message) error {
		got.add(ctx, m)
		if m.ID() == "acme:1001" && m.Deliveries == 1 {
			panic("nil map in the mapping code")
		}
		return nil
	}, WithConcurrency(1))
	for _, id := range []string{"1001", "1002", "1003"} {
		e.publishOrder(t, "acme", id)
	}
	e.settled(t, cfg, 3)
	for id, want := range map[string]int{"acme:1001": 2, "acme:1002": 1, "acme:1003": 1} {
		if n := got.count(id); n != want {
			t.Errorf("%s handled %d times, want %d", id, n, want)
		}
	}
}

func TestInProgressKeepsSlowHandlerMessage(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t)
	var got handled
	cfg := e.orderConsumer("forwarder")
	// A second AckWait: a heartbeat every third of it, so a -race run on a
	// loaded machine has 600ms of slack before the server gives up on one.
	cfg.AckWait = time.Second
	const work = 3200 * time.Millisecond // more than three AckWaits
	e.consume(t, cfg, func(ctx context.Context, m *Message) error {
		got.add(ctx, m)
		select {
		case <-time.After(work):
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	})
	e.publishOrder(t, "acme", "1001")
	info := e.settled(t, cfg, 1)
	if n := got.len(); n != 1 || info.NumRedelivered != 0 {
		t.Errorf("handled %d times, %d redeliveries; want exactly one delivery", n, info.NumRedelivered)
	}
}

func TestDrainFinishesInFlightHandler(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t)
	cfg := e.orderConsumer("forwarder")
	started, release := make(chan struct{}), make(chan struct{})
	var finished atomic.Bool
	stop := e.consume(t, cfg, func(ctx context.Context, m *Message) error {
		close(started)
		select { // ignores ctx: a handler still at work; bounded should the test fail first
		case <-release:
		case <-time.After(time.Minute):
		}
		finished.Store(true)
		return nil
	})
	e.publishOrder(t, "acme", "1001")
	select {
	case <-started:
	case <-time.After(10 * time.Second):
		t.Fatal("handler never started")
	}
	stopped := make(chan error, 1)
	go func() { stopped <- stop() }()
	// Shutdown has begun; the handler is still working.
	testkit.WaitFor(t, 20*time.Second, "the condition", func() bool {
		info := e.consumerInfo(t, cfg.Stream, cfg.Name)
		return info.NumWaiting == 0 // no pull request: the loop stopped fetching
	})
	close(release)
	if err := testkit.Recv(t, stopped, 10*time.Second, "Consume to return"); err != nil {
		t.Fatalf("Consume: %v", err)
	}
	if !finished.Load() {
		t.Fatal("Consume returned before its in-flight handler finished")
	}
	// The ack landed before Consume returned.
	info := e.consumerInfo(t, cfg.Stream, cfg.Name)
	if info.NumAckPending != 0 || info.AckFloor.Stream != 1 || info.NumRedelivered != 0 {
		t.Errorf("after drain: %d pending acks, ack floor %d, %d redelivered; want the message acked", info.NumAckPending, info.AckFloor.Stream, info.NumRedelivered)
	}

	// A replica taking over sees what comes next, not the drained message.
	var got handled
	e.consume(t, cfg, func(ctx context.Context, m *Message) error { got.add(ctx, m); return nil })
	e.publishOrder(t, "acme", "1002")
	testkit.WaitFor(t, 10*time.Second, "the condition", func() bool { return got.count("acme:1002") == 1 })
	if n := got.count("acme:1001"); n != 0 {
		t.Errorf("drained message handled %d more times", n)
	}
}

// TestAsyncAckSettles: acks not waited for still settle every handled
// message, none is delivered twice, and a drained loop's last acks reach
// the server.
func TestAsyncAckSettles(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t)
	cfg := e.orderConsumer("forwarder")
	var got handled
	stop := e.consume(t, cfg, func(ctx context.Context, m *Message) error { got.add(ctx, m); return nil }, WithAsyncAck())
	const n = 20
	for i := range n {
		e.publishOrder(t, "acme", strconv.Itoa(1000+i))
	}
	testkit.WaitFor(t, 10*time.Second, "every order handled", func() bool { return got.len() == n })
	if err := stop(); err != nil {
		t.Fatalf("Consume: %v", err)
	}
	info := e.settled(t, cfg, n)
	if info.NumRedelivered != 0 || got.len() != n {
		t.Errorf("%d redelivered, %d handled; want each of the %d once", info.NumRedelivered, got.len(), n)
	}
}

func TestDrainHandsBackAfterGrace(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t)
	cfg := e.orderConsumer("forwarder")
	// Far beyond the wait for the handed-back message below: only a
	// message handed back comes within it.
	cfg.AckWait = time.Minute
	started := make(chan struct{})
	var cancelled atomic.Bool
	stop := e.consume(t, cfg, func(ctx context.Context, m *Message) error {
		close(started)
		<-ctx.Done() // a handler stuck until it is told to give up
		cancelled.Store(true)
		return ctx.Err()
	}, WithGracePeriod(200*time.Millisecond))
	e.publishOrder(t, "acme", "1001")
	testkit.Recv(t, started, 10*time.Second, "the handler to start")
	begin := time.Now()
	if err := stop(); err != nil {
		t.Fatalf("Consume: %v", err)
	}
	if d := time.Since(begin); d < 200*time.Millisecond {
		t.Errorf("Consume returned after %s, before the 200ms grace", d)
	}
	testkit.WaitFor(t, 20*time.Second, "the condition", cancelled.Load)

	// The message went back to the stream at once, not after AckWait. (Its
	// delivery count is not checked: NATS 2.9 does not count a delivery the
	// server skipped for a pull request nobody listens to any more.)
	var got handled
	e.consume(t, cfg, func(ctx context.Context, m *Message) error { got.add(ctx, m); return nil })
	testkit.WaitFor(t, 15*time.Second, "the handed-back message, long before its AckWait", func() bool { return got.len() == 1 })
	if _, m := got.get(0); m.StreamSeq != 1 {
		t.Errorf("got sequence %d, want the handed-back 1", m.StreamSeq)
	}
	e.settled(t, cfg, 1)
	if entries, err := ListDeadLetters(t.Context(), e.js, e.ns, 0); err != nil || len(entries) != 0 {
		t.Errorf("dead letters %v, %v; a handed-back message is not a failure", entries, err)
	}
}

func TestConsumerRecreatedAfterDeletion(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t)
	var got handled
	cfg := e.orderConsumer("forwarder")
	e.consume(t, cfg, func(ctx context.Context, m *Message) error { got.add(ctx, m); return nil })
	e.consumerInfo(t, cfg.Stream, cfg.Name)
	if err := e.js.DeleteConsumer(t.Context(), e.ns.Stream(cfg.Stream), cfg.Name); err != nil {
		t.Fatal(err)
	}
	e.publishOrder(t, "acme", "1001")
	testkit.WaitFor(t, 15*time.Second, "the condition", func() bool { return got.count("acme:1001") >= 1 })
	e.settled(t, cfg, 1)
}

func TestConsumersShareDurable(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t)
	cfg := e.orderConsumer("forwarder")
	var got [2]handled
	var once [2]sync.Once
	first := [2]chan struct{}{make(chan struct{}), make(chan struct{})}
	for i := range got {
		e.consume(t, cfg, func(ctx context.Context, m *Message) error {
			got[i].add(ctx, m)
			once[i].Do(func() { close(first[i]) })
			// Hold this replica's slots until the other has handled one:
			// a replica can then take at most its concurrency alone, so
			// if both share the consumer, both handle some, however the
			// machine schedules them; if they did not share, this waits
			// out its deadline and the assertion below fails.
			select {
			case <-first[1-i]:
			case <-time.After(10 * time.Second):
			}
			return nil
		}, WithConcurrency(2))
	}
	// Both replicas are pulling before anything is published.
	testkit.WaitFor(t, 10*time.Second, "the condition", func() bool { return e.consumerInfo(t, cfg.Stream, cfg.Name).NumWaiting >= 2 })
	const n = 40
	for i := range n {
		e.publishOrder(t, "acme", fmt.Sprint(i))
	}
	info := e.settled(t, cfg, n)
	if info.NumRedelivered != 0 {
		t.Errorf("%d redeliveries", info.NumRedelivered)
	}
	for i := range n {
		id := fmt.Sprintf("acme:%d", i)
		if c := got[0].count(id) + got[1].count(id); c != 1 {
			t.Errorf("%s handled %d times, want once", id, c)
		}
	}
	if got[0].len() == 0 || got[1].len() == 0 {
		t.Errorf("replicas handled %d and %d messages; want both to share", got[0].len(), got[1].len())
	}
}

func TestDeadLetterListAndRetry(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t)
	var connected atomic.Bool
	var got handled
	cfg := e.orderConsumer("forwarder")
	e.consume(t, cfg, func(ctx context.Context, m *Message) error {
		if !connected.Load() {
			return Permanent("tenant_not_connected", fmt.Errorf("tenant %s has no security key", m.Tenant))
		}
		got.add(ctx, m)
		return nil
	})
	for _, id := range []string{"1001", "1002", "1003"} {
		e.publishOrder(t, "acme", id)
	}
	all := e.deadLetters(t, 3)
	for i, en := range all {
		if en.Letter.GetReasonCode() != "tenant_not_connected" || !strings.Contains(en.Letter.GetReason(), "acme has no security key") {
			t.Errorf("dead letter %d: %v", i, en.Letter)
		}
		if i > 0 && en.Seq <= all[i-1].Seq {
			t.Errorf("dead letters out of order: %d after %d", en.Seq, all[i-1].Seq)
		}
	}
	first2, err := ListDeadLetters(t.Context(), e.js, e.ns, 2)
	if err != nil || len(first2) != 2 || first2[0].Seq != all[0].Seq || first2[1].Seq != all[1].Seq {
		t.Fatalf("ListDeadLetters(limit 2) = %v, %v; want the two oldest", first2, err)
	}

	// The tenant gets connected; the operator retries order 1002's (the
	// dead letters' order is the handlers', not the stream's).
	connected.Store(true)
	var retry DeadLetterEntry
	var others []uint64
	for _, en := range all {
		if en.Letter.GetStreamSequence() == 2 {
			retry = en
		} else {
			others = append(others, en.Seq)
		}
	}
	if err := RetryDeadLetter(t.Context(), e.js, e.ns, retry.Seq); err != nil {
		t.Fatalf("RetryDeadLetter: %v", err)
	}
	testkit.WaitFor(t, 10*time.Second, "the condition", func() bool { return got.len() == 1 })
	_, m := got.get(0)
	order := &eventsv1.StoreOrderApproved{}
	if err := m.Decode(order); err != nil || order.GetOrderId() != "1002" {
		t.Errorf("retried order %v (%v), want 1002", order, err)
	}
	if m.ID() != "acme:1002" || m.Deliveries != 1 || m.StreamSeq != 4 || m.Headers.Get("ce-type") != "hipersync.store.order.approved" {
		t.Errorf("retried message %+v: want the original envelope as a new stream message", m)
	}
	if id := m.Headers.Get(HeaderMsgID); id == "" || id == "acme:1002" {
		t.Errorf("retried Nats-Msg-Id %q, want a new one", id)
	}

	rest, err := ListDeadLetters(t.Context(), e.js, e.ns, 0)
	if err != nil || len(rest) != 2 || rest[0].Seq != others[0] || rest[1].Seq != others[1] {
		t.Errorf("after retry ListDeadLetters = %v, %v; want %v", rest, err, others)
	}
	// A page of one skips the retried gap; the next page is the older one.
	newest, err := PageDeadLetters(t.Context(), e.js, e.ns, "", 0, 1)
	if err != nil || len(newest.Entries) != 1 || newest.Entries[0].Seq != others[1] || newest.Total != 2 || newest.Older != others[1] {
		t.Errorf("PageDeadLetters(limit 1) = %+v, %v; want %d of 2 and an older page", newest, err, others[1])
	}
	if older, err := PageDeadLetters(t.Context(), e.js, e.ns, "", newest.Older, 1); err != nil || len(older.Entries) != 1 || older.Entries[0].Seq != others[0] || older.Older != 0 {
		t.Errorf("PageDeadLetters(before %d) = %+v, %v; want %d and nothing older", newest.Older, older, err, others[0])
	}
	if all, err := PageDeadLetters(t.Context(), e.js, e.ns, "", 0, 0); err != nil || len(all.Entries) != 2 || all.Entries[0].Seq != others[1] || all.Entries[1].Seq != others[0] || all.Older != 0 {
		t.Errorf("PageDeadLetters() = %+v, %v; want %v newest first", all, err, others)
	}
	if err := RetryDeadLetter(t.Context(), e.js, e.ns, retry.Seq); !errors.Is(err, ErrDeadLetterNotFound) {
		t.Errorf("second retry of %d = %v, want ErrDeadLetterNotFound", retry.Seq, err)
	}
	e.settled(t, cfg, 4)
}

func TestEnsureIdempotent(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t)
	ctx := t.Context()
	opts := []StreamOption{WithMaxAge(48 * time.Hour), WithDuplicateWindow(5 * time.Minute)}
	for range 2 {
		if err := EnsureStreams(ctx, e.js, e.ns, opts...); err != nil {
			t.Fatalf("EnsureStreams: %v", err)
		}
	}
	for _, tt := range []struct {
		stream   Stream
		maxAge   time.Duration
		subjects string
	}{
		{StreamStore, 48 * time.Hour, e.ns.Prefix + ".store.>"},
		{StreamHiper, 48 * time.Hour, e.ns.Prefix + ".hiper.>"},
		{StreamDeadLetter, DefaultDeadLetterMaxAge, e.ns.Prefix + ".dlq.>"},
	} {
		s, err := e.js.Stream(ctx, e.ns.Stream(tt.stream))
		if err != nil {
			t.Fatalf("stream %s: %v", tt.stream, err)
		}
		c := s.CachedInfo().Config
		if c.Storage != jetstream.FileStorage || c.MaxAge != tt.maxAge || c.Duplicates != 5*time.Minute ||
			len(c.Subjects) != 1 || c.Subjects[0] != tt.subjects {
			t.Errorf("stream %s: storage %v, max age %s, duplicates %s, subjects %v", c.Name, c.Storage, c.MaxAge, c.Duplicates, c.Subjects)
		}
	}

	for range 2 {
		kv, err := EnsureKV(ctx, e.js, e.ns, "orders")
		if err != nil {
			t.Fatalf("EnsureKV: %v", err)
		}
		st, err := kv.Status(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if st.Bucket() != e.ns.Bucket("orders") || st.History() != 1 {
			t.Errorf("bucket %s history %d", st.Bucket(), st.History())
		}
	}
	s, err := e.js.Stream(ctx, "KV_"+e.ns.Bucket("orders"))
	if err != nil || s.CachedInfo().Config.Storage != jetstream.FileStorage {
		t.Errorf("bucket stream: %v", err)
	}
}

// A consumer deleted while no pull request of the loop is waiting on the
// server (between two fetches, or before the first) gets no "consumer
// deleted" answer: the loop's next request simply goes unanswered. The loop
// must notice that too and put the consumer back.
func TestConsumerDeletedBetweenFetches(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t)
	cfg, err := e.orderConsumer("forwarder").validate()
	if err != nil {
		t.Fatal(err)
	}
	stream := e.ns.Stream(cfg.Stream)
	cons, err := EnsureConsumer(t.Context(), e.js, stream, cfg.jetstream())
	if err != nil {
		t.Fatal(err)
	}
	if err := e.js.DeleteConsumer(t.Context(), stream, cfg.Name); err != nil {
		t.Fatal(err)
	}
	var n atomic.Int32
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- pull(ctx, e.js, cons, PullConfig{Stream: stream, Consumer: cfg.jetstream(), Log: e.log}, func(ctx context.Context, d *Delivery) {
			if d.Claim() {
				n.Add(1)
				_ = d.Msg().Ack()
			}
		})
	}()
	defer func() {
		cancel()
		if err := testkit.Recv(t, done, 30*time.Second, "the loop to return"); err != nil {
			t.Errorf("pull: %v", err)
		}
	}()
	e.publishOrder(t, "acme", "1001")
	testkit.WaitFor(t, 15*time.Second, "the order, through the consumer put back", func() bool { return n.Load() == 1 })
}
