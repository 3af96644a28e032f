package schedule

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/hipersync/hipersync/pkg/events"
	brokerv1 "github.com/hipersync/hipersync/pkg/gen/hipersync/broker/v1"
	"github.com/hipersync/hipersync/pkg/hiper"
	"github.com/hipersync/hipersync/pkg/syncstatus"
	"github.com/hipersync/hipersync/pkg/tenant"
	"github.com/hipersync/hipersync/pkg/testkit"
)

// env is a test's namespace on the machine's NATS, with a tenants bucket
// the test writes records into as token-broker would.
type env struct {
	t       testing.TB
	nc      *nats.Conn
	js      jetstream.JetStream
	ns      events.Namespace
	tenants jetstream.KeyValue
}

func newEnv(t testing.TB) *env {
	t.Helper()
	nc, js := testkit.Connect(t)
	e := &env{t: t, nc: nc, js: js, ns: events.Namespace{Prefix: testkit.Prefix(t)}}
	t.Cleanup(e.deleteBuckets)
	var err error
	e.tenants, err = events.EnsureKV(context.Background(), js, e.ns, tenant.Bucket)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

func (e *env) deleteBuckets() {
	ctx := context.Background()
	for name := range e.js.KeyValueStoreNames(ctx).Name() {
		if strings.HasPrefix(name, e.ns.Prefix+"_") {
			_ = e.js.DeleteKeyValue(ctx, name)
		}
	}
}

// setTenant writes a tenant record, as token-broker does.
func (e *env) setTenant(id string, state brokerv1.TenantState, settings *brokerv1.TenantSettings) {
	e.t.Helper()
	b, err := tenant.EncodeRecord(&brokerv1.TenantRecord{Tenant: &brokerv1.Tenant{TenantId: id, State: state, Settings: settings}})
	if err != nil {
		e.t.Fatal(err)
	}
	// Retried: on a cluster the bucket's stream may still be electing its
	// first leader ("no response from stream"), as services' own writes are.
	err = events.Retry(context.Background(), "put tenant "+id, func(ctx context.Context) error {
		_, err := e.tenants.Put(ctx, id, b)
		return err
	})
	if err != nil {
		e.t.Fatal(err)
	}
}

const active = brokerv1.TenantState_TENANT_STATE_ACTIVE

type staticTokens struct{}

func (staticTokens) Token(context.Context) (string, error)    { return "token", nil }
func (staticTokens) Invalidate(context.Context, string) error { return nil }

// start runs a scheduler of job until the test ends; stop stops it early.
func (e *env) start(job JobFunc, opts Options) (s *Scheduler, stop func()) {
	e.t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	dir, err := tenant.WatchDirectory(ctx, e.tenants, slog.New(slog.DiscardHandler))
	if err != nil {
		e.t.Fatal(err)
	}
	client, _ := hiper.New("http://127.0.0.1:1/api/v1")
	s, err = New(ctx, Config{
		Kind: syncstatus.Stock, JS: e.js, Namespace: e.ns, Directory: dir, Hiper: client,
		Tokens: func(string) hiper.TokenSource { return staticTokens{} }, Job: job, Options: opts,
	})
	if err != nil {
		e.t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { _ = s.Run(ctx); close(done) }()
	var once sync.Once
	stop = func() { once.Do(func() { cancel(); testkit.Recv(e.t, done, 30*time.Second, "the scheduler to stop") }) }
	e.t.Cleanup(stop)
	return s, stop
}

func (e *env) status(id string) (syncstatus.Status, bool) {
	e.t.Helper()
	st, ok, err := syncstatus.GetStatus(context.Background(), e.js, e.ns, id, syncstatus.Stock)
	if err != nil {
		e.t.Fatal(err)
	}
	return st, ok
}

func quick() Options {
	return Options{Interval: 50 * time.Millisecond, LeaseTTL: time.Second, BackoffBase: 50 * time.Millisecond,
		BackoffMax: 400 * time.Millisecond, FirstRunSpread: 10 * time.Millisecond, Grace: -1}
}

func TestOneReplicaRunsATenantAtATime(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	tenants := []string{"t1", "t2", "t3", "t4"}
	for _, id := range tenants {
		e.setTenant(id, active, nil)
	}
	var (
		mu      sync.Mutex
		running = map[string]int{}
		runs    = map[string]int{}
		by      = map[string]int{}
		overlap atomic.Bool
	)
	job := func(owner string) JobFunc {
		return func(ctx context.Context, r *Run) error {
			mu.Lock()
			running[r.Tenant]++
			if running[r.Tenant] > 1 {
				overlap.Store(true)
			}
			runs[r.Tenant]++
			by[owner]++
			mu.Unlock()
			// Progress through the lease, as a poll saves its cursor.
			err := r.Save(ctx, func(s *syncstatus.Status) { s.Cursor++ })
			mu.Lock()
			running[r.Tenant]--
			mu.Unlock()
			return err
		}
	}
	// The replicas are named up front: a job reads its replica's name
	// while the other replica starts.
	optsA, optsB := quick(), quick()
	optsA.Owner, optsB.Owner = "replica-a", "replica-b"
	// Both replicas live: no lease is to expire, however long a loaded
	// machine stalls a run (quick's 1s would let the other replica in).
	optsA.LeaseTTL, optsB.LeaseTTL = time.Minute, time.Minute
	_, stopA := e.start(job(optsA.Owner), optsA)
	_, stopB := e.start(job(optsB.Owner), optsB)
	testkit.WaitFor(t, 20*time.Second, "ten runs of every tenant", func() bool {
		mu.Lock()
		defer mu.Unlock()
		for _, id := range tenants {
			if runs[id] < 10 {
				return false
			}
		}
		return true
	})
	// Stopped, the replicas leave the counts and cursors still: a run
	// between reading one and the other is not a lost save.
	stopA()
	stopB()
	if overlap.Load() {
		t.Fatal("two runs of one tenant overlapped")
	}
	for _, id := range tenants {
		st, _ := e.status(id)
		n := runs[id]
		if st.Cursor < int64(n)-1 || st.Cursor > int64(n) {
			t.Fatalf("%s: cursor %d after %d runs: a run's save was lost", id, st.Cursor, n)
		}
	}
	t.Logf("runs by replica: %v", by)
}

func TestPauseStopsARunAndANewTenantStartsAtOnce(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.setTenant("acme", active, nil)
	started := make(chan string, 10)
	cancelled := make(chan error, 10)
	s, _ := e.start(func(ctx context.Context, r *Run) error {
		started <- r.Tenant
		if r.Tenant != "acme" {
			return nil
		}
		<-ctx.Done()
		cancelled <- context.Cause(ctx)
		return ctx.Err()
	}, Options{Interval: time.Hour, LeaseTTL: time.Second, Grace: -1})
	if got := testkit.Recv(t, started, 10*time.Second, "the run to start"); got != "acme" {
		t.Fatalf("started %s", got)
	}
	e.setTenant("acme", brokerv1.TenantState_TENANT_STATE_PAUSED, nil)
	select {
	case err := <-cancelled:
		if !errors.Is(err, errTenantInactive) {
			t.Fatalf("run cancelled by %v", err)
		}
	case <-time.After(20 * time.Second): // at once, against the schedule's hour
		t.Fatal("pausing the tenant did not stop its run")
	}
	testkit.WaitFor(t, 20*time.Second, "the lease released", func() bool { st, _ := e.status("acme"); return st.Lease == nil })
	if st, _ := e.status("acme"); st.Failures != 0 || st.LastError != "" {
		t.Fatalf("a paused run counted as failed: %+v", st)
	}
	testkit.WaitFor(t, 20*time.Second, "the scheduler to follow acme paused", func() bool {
		st, ok := s.TenantState("acme")
		return ok && st == brokerv1.TenantState_TENANT_STATE_PAUSED
	})

	e.setTenant("beta", active, nil)
	select {
	case got := <-started:
		if got != "beta" {
			t.Fatalf("started %s", got)
		}
	case <-time.After(20 * time.Second): // at once, against the schedule's hour
		t.Fatal("a new tenant did not start within 20s")
	}
}

func TestDeadReplicasLeaseExpires(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	status, _, err := syncstatus.EnsureBuckets(context.Background(), e.js, e.ns)
	if err != nil {
		t.Fatal(err)
	}
	until := time.Now().Add(700 * time.Millisecond)
	b, _ := json.Marshal(syncstatus.Status{Tenant: "acme", Kind: syncstatus.Stock, Cursor: 42, Lease: &syncstatus.Lease{Owner: "dead", Until: until}})
	if _, err := status.Put(context.Background(), syncstatus.StatusKey("acme", syncstatus.Stock), b); err != nil {
		t.Fatal(err)
	}
	e.setTenant("acme", active, nil)
	ran := make(chan syncstatus.Status, 1)
	e.start(func(ctx context.Context, r *Run) error {
		select {
		case ran <- r.Status():
		default:
		}
		return nil
	}, quick())
	select {
	case st := <-ran:
		if time.Now().Before(until) || st.Cursor != 42 {
			t.Fatalf("took over before the lease expired, or lost the cursor: %+v", st)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("nobody took over the dead replica's tenant")
	}
}

func TestALostLeaseStopsTheRun(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.setTenant("acme", active, nil)
	status, _, _ := syncstatus.EnsureBuckets(context.Background(), e.js, e.ns)
	result := make(chan error, 1)
	e.start(func(ctx context.Context, r *Run) error {
		// Another replica takes the lease behind this one's back.
		b, _ := json.Marshal(syncstatus.Status{Tenant: "acme", Kind: syncstatus.Stock, Lease: &syncstatus.Lease{Owner: "other", Until: time.Now().Add(time.Hour)}})
		if _, err := status.Put(ctx, syncstatus.StatusKey("acme", syncstatus.Stock), b); err != nil {
			return err
		}
		err := r.Save(ctx, func(s *syncstatus.Status) { s.Cursor = 99 })
		select {
		case result <- err:
		default:
		}
		return err
	}, quick())
	if err := testkit.Recv(t, result, 10*time.Second, "the run's save"); !errors.Is(err, ErrLeaseLost) {
		t.Fatalf("save after losing the lease: %v", err)
	}
	st, _ := e.status("acme")
	if st.Lease == nil || st.Lease.Owner != "other" || st.Cursor == 99 {
		t.Fatalf("the replica that lost the lease wrote on: %+v", st)
	}
}

func TestFailuresBackOff(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.setTenant("acme", active, nil)
	var mu sync.Mutex
	var at []time.Time
	e.start(func(ctx context.Context, r *Run) error {
		mu.Lock()
		at = append(at, time.Now())
		mu.Unlock()
		return errors.New("hiper is down")
	}, Options{Interval: 20 * time.Millisecond, BackoffBase: 40 * time.Millisecond, BackoffMax: time.Second, Grace: -1, FirstRunSpread: time.Millisecond})
	testkit.WaitFor(t, 10*time.Second, "five failed runs", func() bool { mu.Lock(); defer mu.Unlock(); return len(at) >= 5 })
	mu.Lock()
	gap := at[4].Sub(at[3])
	mu.Unlock()
	// The 4th failure waits 40ms·2³ = 320ms, half of it random.
	if gap < 160*time.Millisecond {
		t.Fatalf("the 5th run came %s after the 4th; want the backoff", gap)
	}
	st, _ := e.status("acme")
	if st.Failures < 4 || st.LastError != "hiper is down" {
		t.Fatalf("status %+v", st)
	}
}

func TestARequestRunsNowOnceAndTheScheduleStands(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.setTenant("acme", active, &brokerv1.TenantSettings{StockInterval: durationpb.New(time.Hour)})
	var runs atomic.Int32
	got := make(chan *syncstatus.Request, 10)
	e.start(func(ctx context.Context, r *Run) error {
		runs.Add(1)
		got <- r.Request
		return nil
	}, Options{LeaseTTL: time.Second, Grace: -1, FirstRunSpread: time.Millisecond})
	if r := testkit.Recv(t, got, 10*time.Second, "the first run"); r != nil {
		t.Fatalf("the first run served request %v", r)
	}
	testkit.WaitFor(t, 20*time.Second, "the first run recorded", func() bool { st, _ := e.status("acme"); return st.Lease == nil })
	first, _ := e.status("acme")
	if time.Duration(first.TargetInterval) != time.Hour {
		t.Fatalf("target interval %s, want the tenant's 1h", first.TargetInterval)
	}

	ctx := context.Background()
	req, err := syncstatus.RequestSync(ctx, e.js, e.ns, "acme", syncstatus.Stock, syncstatus.Request{Full: true, Products: []string{"p1"}})
	if err != nil {
		t.Fatal(err)
	}
	st, err := syncstatus.WaitServed(ctx, e.js, e.ns, "acme", syncstatus.Stock, req)
	if err != nil {
		t.Fatal(err)
	}
	if r := testkit.Recv(t, got, 10*time.Second, "the requested run"); r == nil || !r.Full || r.Products[0] != "p1" {
		t.Fatalf("the requested run got %v", r)
	}
	if st.LastRequest != req.ID || !st.NextRunAt.Equal(first.NextRunAt) {
		t.Fatalf("after the request: %+v; want it served and the next run still at %s", st, first.NextRunAt)
	}
	_, requests, _ := syncstatus.EnsureBuckets(ctx, e.js, e.ns)
	testkit.WaitFor(t, 20*time.Second, "the request cleared", func() bool {
		_, err := requests.Get(ctx, syncstatus.StatusKey("acme", syncstatus.Stock))
		return errors.Is(err, jetstream.ErrKeyNotFound)
	})
	if n := runs.Load(); n != 2 {
		t.Fatalf("%d runs, want 2", n)
	}
}

func TestRequestsMerge(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := context.Background()
	if _, err := syncstatus.RequestSync(ctx, e.js, e.ns, "acme", syncstatus.Catalog, syncstatus.Request{Products: []string{"a"}}); err != nil {
		t.Fatal(err)
	}
	r, err := syncstatus.RequestSync(ctx, e.js, e.ns, "acme", syncstatus.Catalog, syncstatus.Request{Approve: true, Products: []string{"b", "a"}})
	if err != nil {
		t.Fatal(err)
	}
	if !r.Approve || r.Full || len(r.Products) != 2 {
		t.Fatalf("merged request %+v", r)
	}
	if _, err := syncstatus.RequestSync(ctx, e.js, e.ns, "Not Valid", syncstatus.Catalog, syncstatus.Request{}); err == nil {
		t.Fatal("a request for an invalid tenant was accepted")
	}
}

// A request whose run failed waits for the backoff before it runs again,
// as the schedule does: a failing Hiper or NATS is not asked in a loop.
func TestARequestBacksOffAfterAFailure(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.setTenant("acme", active, &brokerv1.TenantSettings{StockInterval: durationpb.New(time.Hour)})
	var mu sync.Mutex
	var at []time.Time
	e.start(func(ctx context.Context, r *Run) error {
		if r.Request == nil {
			return nil
		}
		mu.Lock()
		at = append(at, time.Now())
		mu.Unlock()
		return errors.New("hiper is down")
	}, Options{LeaseTTL: time.Second, BackoffBase: 300 * time.Millisecond, BackoffMax: time.Second, Grace: -1, FirstRunSpread: time.Millisecond})
	testkit.WaitFor(t, 20*time.Second, "the first run recorded", func() bool { st, ok := e.status("acme"); return ok && st.Lease == nil })
	if _, err := syncstatus.RequestSync(context.Background(), e.js, e.ns, "acme", syncstatus.Stock, syncstatus.Request{}); err != nil {
		t.Fatal(err)
	}
	testkit.WaitFor(t, 10*time.Second, "three requested runs", func() bool { mu.Lock(); defer mu.Unlock(); return len(at) >= 3 })
	mu.Lock()
	defer mu.Unlock()
	// The first failure waits 300ms, half of it random; the second 600ms.
	if gap := at[1].Sub(at[0]); gap < 150*time.Millisecond {
		t.Fatalf("the request ran again %s after its run failed; want the backoff", gap)
	}
}

// A save cancelled while its write is on the way still leaves the run
// knowing the status it wrote: the run's next save, and the release of its
// lease when it ends, do not take it for another replica's write.
func TestACancelledSaveKeepsTheLease(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.setTenant("acme", active, nil)
	result := make(chan error, 1)
	e.start(func(ctx context.Context, r *Run) error {
		for i := range 40 {
			sctx, cancel := context.WithCancel(ctx)
			go func() {
				// Not a wait: the cancellation lands at a spread of moments
				// of the write's round trip, before, during and after it.
				time.Sleep(time.Duration(i%8) * 250 * time.Microsecond)
				cancel()
			}()
			_ = r.Save(sctx, func(s *syncstatus.Status) { s.Cursor++ })
			cancel()
		}
		err := r.Save(ctx, func(s *syncstatus.Status) { s.InitialDone = true })
		select {
		case result <- err:
		default:
		}
		return err
	}, Options{Interval: time.Hour, LeaseTTL: time.Hour, Grace: -1, FirstRunSpread: time.Millisecond})
	if err := testkit.Recv(t, result, 20*time.Second, "the run's last save"); err != nil {
		t.Fatalf("the save after cancelled ones: %v", err)
	}
	testkit.WaitFor(t, 10*time.Second, "the lease released", func() bool { st, _ := e.status("acme"); return st.InitialDone && st.Lease == nil })
}
