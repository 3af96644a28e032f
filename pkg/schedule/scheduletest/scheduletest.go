// Package scheduletest helps the pollers' tests: it starts poller replicas
// in-process against a real NATS, token-broker and hiper-sim, collects the
// events they publish from the HIPER stream, and records the cursors they
// send to Hiper's product feed.
package scheduletest

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/protobuf/proto"

	"github.com/hipersync/hipersync/pkg/brokerclient"
	"github.com/hipersync/hipersync/pkg/events"
	brokerv1 "github.com/hipersync/hipersync/pkg/gen/hipersync/broker/v1"
	"github.com/hipersync/hipersync/pkg/poller"
	"github.com/hipersync/hipersync/pkg/schedule"
	"github.com/hipersync/hipersync/pkg/syncstatus"
	"github.com/hipersync/hipersync/pkg/telemetry"
	"github.com/hipersync/hipersync/pkg/tenant"
	"github.com/hipersync/hipersync/pkg/testkit"
)

// Env is what replicas need from the test's stack.
type Env struct {
	NATS      *nats.Conn
	Namespace events.Namespace
	Broker    *brokerclient.Client
	// HiperURL is the API base of hiper-sim.
	HiperURL string
	// Log receives the replicas' logs; nil discards them.
	Log *slog.Logger
}

// Replica is a running poller replica.
type Replica struct {
	Scheduler *schedule.Scheduler
	// Directory is the replica's own view of the tenants, which its
	// scheduler follows.
	Directory *tenant.Directory
	Health    *telemetry.Health
	// Feed records the cursors this replica sent to the product feed.
	Feed *FeedRecorder
	stop func()
}

// Stop cancels the replica's context and waits for it to return.
func (r *Replica) Stop() { r.stop() }

// StartReplica starts a poller with start and opts until Stop or the end of
// the test. Each replica has its own tenant directory, Hiper client and
// Pacer, as separate processes would.
func StartReplica(t testing.TB, env Env, start poller.StartFunc, opts schedule.Options) *Replica {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	js, _ := jetstream.New(env.NATS)
	kv, err := events.EnsureKV(ctx, js, env.Namespace, tenant.Bucket)
	if err != nil {
		t.Fatal(err)
	}
	log := env.Log
	if log == nil {
		log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	dir, err := tenant.WatchDirectory(ctx, kv, log)
	if err != nil {
		t.Fatal(err)
	}
	rec := &FeedRecorder{}
	// The replica's tokens go through a cache, as its process's do
	// (service.Process.Tokens).
	health := telemetry.NewHealth()
	s, err := start(ctx, poller.Deps{
		NATS: env.NATS, Namespace: env.Namespace, Directory: dir, Tokens: brokerclient.NewCache(env.Broker, nil).Source,
		HiperBaseURL: env.HiperURL, HTTPClient: &http.Client{Transport: rec}, Format: events.FormatProtobuf,
		Health: health, Log: log, Options: opts,
	})
	if err != nil {
		cancel()
		t.Fatalf("start poller: %v", err)
	}
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	var once sync.Once
	r := &Replica{Scheduler: s, Directory: dir, Health: health, Feed: rec}
	r.stop = func() {
		once.Do(func() {
			cancel()
			select {
			case err := <-done:
				if err != nil {
					t.Errorf("poller replica: %v", err)
				}
			case <-time.After(30 * time.Second):
				t.Errorf("poller replica did not stop within 30s")
			}
		})
	}
	t.Cleanup(r.Stop)
	return r
}

// FeedRecorder is an http.RoundTripper that records every product feed
// request (its cursor and when it was sent) before passing it on.
type FeedRecorder struct {
	mu    sync.Mutex
	calls []FeedCall
}

// FeedCall is one request to the product feed.
type FeedCall struct {
	Cursor int64
	At     time.Time
	// Status is the answer's HTTP status, 0 when none came.
	Status int
}

// RoundTrip records and sends r.
func (f *FeedRecorder) RoundTrip(r *http.Request) (*http.Response, error) {
	q := r.URL.Query()
	n, err := strconv.ParseInt(q.Get("pontoDeSincronizacao"), 10, 64)
	if err != nil || q.Has("ProdutoId") {
		return http.DefaultTransport.RoundTrip(r)
	}
	call := FeedCall{Cursor: n, At: time.Now()}
	resp, err := http.DefaultTransport.RoundTrip(r)
	if resp != nil {
		call.Status = resp.StatusCode
	}
	f.mu.Lock()
	f.calls = append(f.calls, call)
	f.mu.Unlock()
	return resp, err
}

// Calls returns the requests sent so far, in order.
func (f *FeedRecorder) Calls() []FeedCall {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.calls)
}

// Cursors returns the cursors sent so far, in order.
func (f *FeedRecorder) Cursors() []int64 {
	var out []int64
	for _, c := range f.Calls() {
		out = append(out, c.Cursor)
	}
	return out
}

// Event is one published event.
type Event struct {
	Tenant string
	Kind   events.Kind
	ID     string
	Msg    proto.Message
}

// Collector gathers every event of the HIPER stream of a namespace, from
// its start.
type Collector struct {
	stream jetstream.Stream

	mu     sync.Mutex
	events []Event
	errs   []error
	// seq is the stream sequence of the last message read.
	seq uint64
}

// Collect starts a Collector until the end of the test.
func Collect(t testing.TB, js jetstream.JetStream, ns events.Namespace) *Collector {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	cons, err := js.OrderedConsumer(ctx, ns.Stream(events.StreamHiper), jetstream.OrderedConsumerConfig{})
	if err != nil {
		t.Fatalf("collect events: %v", err)
	}
	stream, err := js.Stream(ctx, ns.Stream(events.StreamHiper))
	if err != nil {
		t.Fatalf("collect events: %v", err)
	}
	c := &Collector{stream: stream}
	cc, err := cons.Consume(func(m jetstream.Msg) {
		ev, err := decodeEvent(ns, m)
		c.mu.Lock()
		defer c.mu.Unlock()
		if md, mdErr := m.Metadata(); mdErr == nil {
			c.seq = md.Sequence.Stream
		}
		if err != nil {
			c.errs = append(c.errs, err)
			return
		}
		c.events = append(c.events, ev)
	})
	if err != nil {
		t.Fatalf("collect events: %v", err)
	}
	t.Cleanup(cc.Stop)
	return c
}

// decodeEvent reads a message of the HIPER stream.
func decodeEvent(ns events.Namespace, m jetstream.Msg) (Event, error) {
	s, err := ns.ParseSubject(m.Subject())
	if err != nil {
		return Event{}, err
	}
	msg, err := s.NewMessage()
	if err != nil {
		return Event{}, err
	}
	if err := events.Decode(m.Headers(), m.Data(), msg); err != nil {
		return Event{}, err
	}
	return Event{Tenant: s.Tenant, Kind: s.Kind, ID: m.Headers().Get(events.HeaderID), Msg: msg}, nil
}

// Events returns the events of tenant and kind collected so far (every
// tenant when tenantID is empty, every kind when kind is).
func (c *Collector) Events(tenantID string, kind events.Kind) []Event {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []Event
	for _, e := range c.events {
		if (tenantID == "" || e.Tenant == tenantID) && (kind == "" || e.Kind == kind) {
			out = append(out, e)
		}
	}
	return out
}

// CaughtUp waits until the collector has read everything the stream holds
// now. A run's events are all published once its status says it is done,
// but this reader of the stream may still be behind them.
func (c *Collector) CaughtUp(t testing.TB) {
	t.Helper()
	info, err := c.stream.Info(context.Background())
	if err != nil {
		t.Fatalf("read the stream's end: %v", err)
	}
	last := info.State.LastSeq
	testkit.WaitFor(t, 10*time.Second, "the event reader to catch up with the stream", func() bool {
		c.mu.Lock()
		defer c.mu.Unlock()
		return c.seq >= last
	})
}

// Errors returns the events that could not be decoded.
func (c *Collector) Errors() []error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.errs)
}

// WaitTenantState waits until every replica's scheduler follows tenant id
// in state. A change made through token-broker (a pause) reaches each
// replica through its own watch of the tenants bucket, after the call that
// made it has returned, and its scheduler a moment after its directory:
// until then the replica may still start a run the change forbids.
func WaitTenantState(t testing.TB, id string, state brokerv1.TenantState, replicas ...*Replica) {
	t.Helper()
	testkit.WaitFor(t, 20*time.Second, "every replica's scheduler to follow "+id+" "+state.String(), func() bool {
		for _, r := range replicas {
			if s, ok := r.Scheduler.TenantState(id); !ok || s != state {
				return false
			}
		}
		return true
	})
}

// Fast are scheduler options for tests: polls every 200ms, a dead replica's
// lease given up after 2s, quick backoff, no grace on stop (a stopped
// replica hands its tenants over at once).
func Fast() schedule.Options {
	return schedule.Options{
		Interval: 200 * time.Millisecond, LeaseTTL: 2 * time.Second,
		BackoffBase: 100 * time.Millisecond, BackoffMax: time.Second,
		FirstRunSpread: 50 * time.Millisecond, Grace: -1,
	}
}

// Status returns a tenant's status of kind (zero when it never ran).
func Status(t testing.TB, js jetstream.JetStream, ns events.Namespace, tenantID string, kind syncstatus.Kind) syncstatus.Status {
	t.Helper()
	st, _, err := syncstatus.GetStatus(context.Background(), js, ns, tenantID, kind)
	if err != nil {
		t.Fatal(err)
	}
	return st
}

// WaitSynced waits until a run of tenant's sync of kind that started after
// since brought the store up to date, and returns the status it left.
func WaitSynced(t testing.TB, js jetstream.JetStream, ns events.Namespace, tenantID string, kind syncstatus.Kind, since time.Time) syncstatus.Status {
	t.Helper()
	var st syncstatus.Status
	testkit.WaitFor(t, 20*time.Second, tenantID+" "+string(kind)+" synced", func() bool {
		st = Status(t, js, ns, tenantID, kind)
		return st.InitialDone && st.LastSuccessAt.After(since) && st.Lease == nil
	})
	return st
}

// StoreConsumer reads a tenant's events as a store does: a durable
// consumer on the HIPER stream that acknowledges each event. It sees what
// the stream stored, no more: an event the duplicate window dropped never
// arrives (a core subscription would still see it).
type StoreConsumer struct {
	cons jetstream.Consumer

	mu     sync.Mutex
	events []Event
	errs   []error
}

// ConsumeAsStore starts a StoreConsumer of tenantID's events stored from
// now on, until the end of the test.
func ConsumeAsStore(t testing.TB, js jetstream.JetStream, ns events.Namespace, tenantID string) *StoreConsumer {
	t.Helper()
	ctx := context.Background()
	stream := ns.Stream(events.StreamHiper)
	name := "store-" + tenantID
	cons, err := js.CreateOrUpdateConsumer(ctx, stream, jetstream.ConsumerConfig{
		Durable: name, FilterSubject: ns.HiperSubject(tenantID, ">"), AckPolicy: jetstream.AckExplicitPolicy,
		DeliverPolicy: jetstream.DeliverNewPolicy,
	})
	if err != nil {
		t.Fatalf("consume as the store: %v", err)
	}
	t.Cleanup(func() { _ = js.DeleteConsumer(context.Background(), stream, name) })
	c := &StoreConsumer{cons: cons}
	cc, err := cons.Consume(func(m jetstream.Msg) {
		ev, err := decodeEvent(ns, m)
		c.mu.Lock()
		if err != nil {
			c.errs = append(c.errs, err)
		} else {
			c.events = append(c.events, ev)
		}
		c.mu.Unlock()
		_ = m.Ack()
	})
	if err != nil {
		t.Fatalf("consume as the store: %v", err)
	}
	t.Cleanup(cc.Stop)
	return c
}

// Events returns the events of kind received so far (every kind when kind
// is empty).
func (c *StoreConsumer) Events(kind events.Kind) []Event {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []Event
	for _, e := range c.events {
		if kind == "" || e.Kind == kind {
			out = append(out, e)
		}
	}
	return out
}

// CaughtUp waits until the consumer has received and acknowledged every
// event the stream holds for it now, and fails t on an event it could not
// decode.
func (c *StoreConsumer) CaughtUp(t testing.TB) {
	t.Helper()
	testkit.WaitFor(t, 10*time.Second, "the store's consumer to catch up with the stream", func() bool {
		info, err := c.cons.Info(context.Background())
		return err == nil && info.NumPending == 0 && info.NumAckPending == 0
	})
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.errs) > 0 {
		t.Fatalf("the store could not decode events: %v", c.errs)
	}
}

// FreezeBucket makes every write to the namespace's bucket fail until the
// returned thaw is called (or the test ends), by moving its stream off the
// bucket's subjects (reads, by stream, still work): a poller then stores
// its events but not the product states that record them, as when it dies
// between the two.
func FreezeBucket(t testing.TB, js jetstream.JetStream, ns events.Namespace, bucket string) (thaw func()) {
	t.Helper()
	ctx := context.Background()
	s, err := js.Stream(ctx, "KV_"+ns.Bucket(bucket))
	if err != nil {
		t.Fatalf("freeze bucket %s: %v", bucket, err)
	}
	info, err := s.Info(ctx)
	if err != nil {
		t.Fatalf("freeze bucket %s: %v", bucket, err)
	}
	cfg := info.Config
	frozen := cfg
	frozen.Subjects = []string{"frozen." + ns.Bucket(bucket) + ".>"}
	if _, err := js.UpdateStream(ctx, frozen); err != nil {
		t.Fatalf("freeze bucket %s: %v", bucket, err)
	}
	var once sync.Once
	thaw = func() {
		once.Do(func() {
			if _, err := js.UpdateStream(ctx, cfg); err != nil {
				t.Errorf("thaw bucket %s: %v", bucket, err)
			}
		})
	}
	t.Cleanup(thaw)
	return thaw
}
