package schedule

import (
	"container/heap"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"log/slog"
	"math/rand/v2"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/hipersync/hipersync/pkg/backoff"
	"github.com/hipersync/hipersync/pkg/brokerclient"
	"github.com/hipersync/hipersync/pkg/events"
	brokerv1 "github.com/hipersync/hipersync/pkg/gen/hipersync/broker/v1"
	"github.com/hipersync/hipersync/pkg/hiper"
	"github.com/hipersync/hipersync/pkg/kvwatch"
	"github.com/hipersync/hipersync/pkg/pace"
	"github.com/hipersync/hipersync/pkg/renew"
	"github.com/hipersync/hipersync/pkg/syncstatus"
	"github.com/hipersync/hipersync/pkg/tenant"
)

// Job runs one tenant's sync once. It records progress with Run.Save, and
// its error decides the next run: nil schedules it at the tenant's interval,
// anything else after a backoff (ErrLeaseLost ends the run silently).
type Job interface {
	Run(ctx context.Context, r *Run) error
}

// JobFunc adapts a function to Job.
type JobFunc func(ctx context.Context, r *Run) error

// Run calls f.
func (f JobFunc) Run(ctx context.Context, r *Run) error { return f(ctx, r) }

// ErrLeaseLost means another replica took the tenant's lease (this one was
// too slow to renew it): the run must stop without writing anything more.
var ErrLeaseLost = errors.New("sync lease lost to another replica")

// Why a run's context is cancelled.
var (
	errShutdown       = errors.New("poller shutting down")
	errTenantInactive = errors.New("tenant paused or disconnected")
)

// Defaults of Options.
const (
	DefaultConcurrency    = 8
	DefaultLeaseTTL       = 30 * time.Second
	DefaultBackoffBase    = 5 * time.Second
	DefaultBackoffMax     = 5 * time.Minute
	DefaultFullEvery      = 24 * time.Hour
	DefaultGrace          = 10 * time.Second
	DefaultFirstRunSpread = 2 * time.Second
	// contentionSpread delays each launch by up to this much, at random, so
	// that the replica that fires first has usually taken the lease — and
	// the others have seen it — before they try.
	contentionSpread = 20 * time.Millisecond
	// idleWait is how long the loop sleeps with nothing scheduled.
	idleWait = time.Minute
	// writeTimeout bounds a status write made after the run's context
	// ended.
	writeTimeout = 5 * time.Second
)

// Options tune a Scheduler; zero values take the defaults.
type Options struct {
	// Interval, when set, replaces every tenant's interval setting: tests
	// and benchmarks poll faster than tenant settings allow
	// (tenant.MinInterval).
	Interval time.Duration
	// Concurrency bounds the runs in progress on this replica, i.e. its
	// concurrent polls towards Hiper (default 8).
	Concurrency int
	// LeaseTTL is how long a run's lease lasts without renewal (default
	// 30s): how soon another replica takes over from a dead one.
	LeaseTTL time.Duration
	// BackoffBase and BackoffMax space the runs after failures: base, then
	// doubling per failure in a row, up to max, with jitter (defaults 5s
	// and 5m). A longer Retry-After from Hiper wins.
	BackoffBase, BackoffMax time.Duration
	// FullEvery is the safety net: a full resync when the last one is older
	// (default 24h; negative disables it).
	FullEvery time.Duration
	// Grace is how long a stopping scheduler lets runs finish before it
	// cancels them (default 10s; negative cancels at once).
	Grace time.Duration
	// FirstRunSpread spreads the first runs of tenants the replica has
	// never seen run (default 2s).
	FirstRunSpread time.Duration
	// Owner names this replica in leases (default: host name and a random
	// suffix).
	Owner string
}

func (o Options) withDefaults() Options {
	if o.Concurrency <= 0 {
		o.Concurrency = DefaultConcurrency
	}
	if o.LeaseTTL <= 0 {
		o.LeaseTTL = DefaultLeaseTTL
	}
	if o.BackoffBase <= 0 {
		o.BackoffBase = DefaultBackoffBase
	}
	if o.BackoffMax < o.BackoffBase {
		o.BackoffMax = max(DefaultBackoffMax, o.BackoffBase)
	}
	if o.FullEvery == 0 {
		o.FullEvery = DefaultFullEvery
	}
	switch {
	case o.Grace == 0:
		o.Grace = DefaultGrace
	case o.Grace < 0:
		o.Grace = 0
	}
	if o.FirstRunSpread <= 0 {
		o.FirstRunSpread = DefaultFirstRunSpread
	}
	if o.Owner == "" {
		host, _ := os.Hostname()
		o.Owner = fmt.Sprintf("%s-%08x", host, rand.Uint32())
	}
	return o
}

// Config is what a Scheduler needs.
type Config struct {
	Kind      syncstatus.Kind
	JS        jetstream.JetStream
	Namespace events.Namespace
	// Directory tells which tenants to sync and their settings.
	Directory *tenant.Directory
	Hiper     *hiper.Client
	// Tokens returns a tenant's token source: the process's token cache's
	// (brokerclient.Cache.Source), so a run asks token-broker once per
	// token, not before every call. A cached token is safe because runs
	// are only of syncing tenants, and a run whose tenant stops syncing is
	// cancelled (refresh).
	Tokens func(tenantID string) hiper.TokenSource
	// Pacer paces every tenant's Hiper calls; nil: one of this scheduler's
	// own with the defaults.
	Pacer    *pace.Tenants
	Registry prometheus.Registerer
	Log      *slog.Logger
	Job      Job
	Options
}

// Scheduler runs one kind of sync for every active tenant, on whichever
// replica takes the tenant's lease first. See the package documentation.
type Scheduler struct {
	cfg      Config
	kind     syncstatus.Kind
	opts     Options
	log      *slog.Logger
	status   jetstream.KeyValue
	requests jetstream.KeyValue
	m        *metrics

	wake chan struct{}

	mu       sync.Mutex
	tenants  map[string]tenantInfo
	views    map[string]statusView
	reqs     map[string]requestView
	running  map[string]*runHandle
	dirty    map[string]struct{}
	queue    dueQueue
	queued   map[string]*dueEntry
	free     int
	stopping bool
}

type tenantInfo struct {
	state  brokerv1.TenantState
	active bool
	// keyRefused: inactive because Hiper refused the tenant's key.
	keyRefused bool
	settings   tenant.Settings
}

type statusView struct {
	st  syncstatus.Status
	rev uint64
}

type requestView struct {
	req syncstatus.Request
	rev uint64
}

type runHandle struct {
	cancel context.CancelCauseFunc
}

// New provisions the schedule's buckets and returns a Scheduler; Run runs
// it.
func New(ctx context.Context, cfg Config) (*Scheduler, error) {
	switch {
	case !cfg.Kind.Valid():
		return nil, fmt.Errorf("new scheduler: unknown kind %q", cfg.Kind)
	case cfg.JS == nil || cfg.Directory == nil || cfg.Hiper == nil || cfg.Tokens == nil || cfg.Job == nil:
		return nil, errors.New("new scheduler: JS, Directory, Hiper, Tokens and Job are required")
	}
	status, requests, err := syncstatus.EnsureBuckets(ctx, cfg.JS, cfg.Namespace)
	if err != nil {
		return nil, err
	}
	opts := cfg.Options.withDefaults()
	if cfg.Pacer == nil {
		cfg.Pacer = pace.New(DefaultTenantRate, DefaultTenantBurst, nil)
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	s := &Scheduler{
		cfg:      cfg,
		kind:     cfg.Kind,
		opts:     opts,
		log:      cfg.Log.With("sync", string(cfg.Kind), "replica", opts.Owner),
		status:   status,
		requests: requests,
		m:        newMetrics(cfg.Registry),
		wake:     make(chan struct{}, 1),
		tenants:  map[string]tenantInfo{},
		views:    map[string]statusView{},
		reqs:     map[string]requestView{},
		running:  map[string]*runHandle{},
		dirty:    map[string]struct{}{},
		queued:   map[string]*dueEntry{},
		free:     opts.Concurrency,
	}
	if cfg.Registry != nil {
		if err := cfg.Registry.Register(lagCollector{s}); err != nil {
			return nil, fmt.Errorf("register lag metrics: %w", err)
		}
	}
	return s, nil
}

// Owner is the replica's name in leases.
func (s *Scheduler) Owner() string { return s.opts.Owner }

// Run schedules runs until ctx is done, then stops launching, lets runs in
// progress finish for the grace period, cancels the rest (each releases its
// lease, with its cursor saved up to the last whole batch) and returns.
func (s *Scheduler) Run(ctx context.Context) error {
	watchCtx, stopWatches := context.WithCancel(ctx)
	defer stopWatches()
	filter := "*." + string(s.kind)
	statusLoaded, reqLoaded := make(chan struct{}), make(chan struct{})
	for _, w := range []struct {
		kv     jetstream.KeyValue
		what   string
		apply  func(jetstream.KeyValueEntry)
		loaded chan struct{}
	}{{s.status, "sync status", s.applyStatus, statusLoaded}, {s.requests, "sync requests", s.applyRequest, reqLoaded}} {
		var once sync.Once
		// The watch survives the NATS server it lives on: package
		// kvwatch watches again when it ends or falls behind, and the
		// values it delivers again apply as the same state.
		if _, err := kvwatch.Start(watchCtx, w.kv, kvwatch.Config{
			Keys: []string{filter}, JS: s.cfg.JS, Entry: w.apply, Log: s.log,
			Synced: func() { once.Do(func() { close(w.loaded) }) },
		}); err != nil {
			return fmt.Errorf("watch %s: %w", w.what, err)
		}
	}

	s.cfg.Directory.OnChange(func(c tenant.Change) { s.applyTenant(c.TenantID, c.Tenant) })
	for _, t := range s.cfg.Directory.List() {
		s.applyTenant(t.GetTenantId(), t)
	}
	for _, loaded := range []chan struct{}{statusLoaded, reqLoaded} {
		select {
		case <-loaded:
		case <-ctx.Done():
			return nil
		}
	}
	s.log.Info("scheduler running", "concurrency", s.opts.Concurrency)

	// Runs outlive ctx by the grace period.
	jobsCtx, cancelJobs := context.WithCancelCause(context.WithoutCancel(ctx))
	defer cancelJobs(errShutdown)
	var wg sync.WaitGroup
	timer := time.NewTimer(idleWait)
	defer timer.Stop()
	for {
		now := time.Now()
		s.mu.Lock()
		s.refresh(now)
		s.launchDue(jobsCtx, now, &wg)
		wait := idleWait
		if len(s.queue) > 0 && s.free > 0 {
			wait = max(s.queue[0].due.Sub(now), 0)
		}
		s.mu.Unlock()
		timer.Reset(wait)
		select {
		case <-ctx.Done():
			s.stop(cancelJobs, &wg)
			return nil
		case <-timer.C:
		case <-s.wake:
		}
	}
}

// stop waits for runs in progress up to the grace period, then cancels them.
func (s *Scheduler) stop(cancelJobs context.CancelCauseFunc, wg *sync.WaitGroup) {
	s.mu.Lock()
	s.stopping = true
	n := len(s.running)
	s.mu.Unlock()
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	if n > 0 {
		s.log.Info("scheduler stopping; waiting for runs in progress", "runs", n, "grace", s.opts.Grace)
	}
	grace := time.NewTimer(s.opts.Grace)
	defer grace.Stop()
	select {
	case <-done:
	case <-grace.C:
		cancelJobs(errShutdown)
		<-done
	}
	s.log.Info("scheduler stopped")
}

func (s *Scheduler) applyStatus(e jetstream.KeyValueEntry) {
	id, k, ok := syncstatus.ParseKey(e.Key())
	if !ok || k != s.kind {
		return
	}
	var st syncstatus.Status
	put := e.Operation() == jetstream.KeyValuePut
	if put {
		var err error
		if st, err = syncstatus.Decode(e.Value()); err != nil {
			s.log.Error("skip undecodable sync status", "key", e.Key(), "error", err)
			return
		}
	}
	s.mu.Lock()
	if put {
		s.setViewLocked(id, st, e.Revision())
	} else {
		delete(s.views, id)
	}
	s.markLocked(id)
	s.mu.Unlock()
}

func (s *Scheduler) applyRequest(e jetstream.KeyValueEntry) {
	id, k, ok := syncstatus.ParseKey(e.Key())
	if !ok || k != s.kind {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if e.Operation() != jetstream.KeyValuePut {
		delete(s.reqs, id)
	} else {
		var r syncstatus.Request
		if err := json.Unmarshal(e.Value(), &r); err != nil {
			s.log.Error("skip undecodable sync request", "key", e.Key(), "error", err)
			return
		}
		s.reqs[id] = requestView{req: r, rev: e.Revision()}
	}
	s.markLocked(id)
}

// applyTenant takes a tenant's new state from the Directory (nil: gone).
func (s *Scheduler) applyTenant(id string, t *brokerv1.Tenant) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if t == nil {
		delete(s.tenants, id)
		s.cfg.Pacer.Forget(id)
	} else {
		s.tenants[id] = tenantInfo{state: t.GetState(), active: tenant.Syncs(t.GetState()), settings: tenant.SettingsOf(t.GetSettings()),
			keyRefused: t.GetState() == brokerv1.TenantState_TENANT_STATE_INVALID_KEY}
	}
	s.markLocked(id)
}

// TenantState reports the state of tenant id that this scheduler's runs
// follow: the one it last took from its directory, once it has acted on it
// (a paused tenant's next run dropped, its run in progress cancelled). The
// directory knows of a change a moment before its scheduler does. ok is
// false while the scheduler does not know the tenant, or has a change of
// it still to act on.
func (s *Scheduler) TenantState(id string) (state brokerv1.TenantState, ok bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	info, known := s.tenants[id]
	_, pending := s.dirty[id]
	return info.state, known && !pending
}

// setViewLocked keeps the newest status seen, whether from the watch or
// from this replica's own writes (which the watch echoes later).
func (s *Scheduler) setViewLocked(id string, st syncstatus.Status, rev uint64) {
	if cur, ok := s.views[id]; ok && cur.rev >= rev {
		return
	}
	s.views[id] = statusView{st: st, rev: rev}
}

func (s *Scheduler) setView(id string, st syncstatus.Status, rev uint64) {
	s.mu.Lock()
	s.setViewLocked(id, st, rev)
	s.mu.Unlock()
}

func (s *Scheduler) markLocked(id string) {
	s.dirty[id] = struct{}{}
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// statuses returns the statuses this replica knows, for the metrics.
func (s *Scheduler) statuses() []syncstatus.Status {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]syncstatus.Status, 0, len(s.views))
	for _, v := range s.views {
		out = append(out, v.st)
	}
	return out
}

// interval is how often the tenant is polled.
func (s *Scheduler) interval(t tenantInfo) time.Duration {
	if s.opts.Interval > 0 {
		return s.opts.Interval
	}
	if s.kind == syncstatus.Catalog {
		return t.settings.CatalogInterval()
	}
	return t.settings.StockInterval()
}

// refresh recomputes the due time of every tenant marked dirty; it cancels
// the run of a tenant that was paused or disconnected.
func (s *Scheduler) refresh(now time.Time) {
	for id := range s.dirty {
		delete(s.dirty, id)
		due, ok := s.dueLocked(id, now)
		if h := s.running[id]; h != nil {
			if info := s.tenants[id]; info.keyRefused {
				// The cause says why, so the sync log can tell the merchant.
				h.cancel(fmt.Errorf("%w: %w", errTenantInactive, tenant.ErrKeyRefused))
			} else if !info.active {
				h.cancel(errTenantInactive)
			}
			ok = false // rescheduled when the run ends
		}
		e := s.queued[id]
		switch {
		case !ok && e != nil:
			heap.Remove(&s.queue, e.index)
			delete(s.queued, id)
		case ok && e != nil:
			e.due = due
			heap.Fix(&s.queue, e.index)
		case ok:
			e = &dueEntry{tenant: id, due: due}
			heap.Push(&s.queue, e)
			s.queued[id] = e
		}
	}
}

// dueLocked is when tenant id's next run is due; false when it is not to
// run at all. Every replica computes the same time from the shared status.
func (s *Scheduler) dueLocked(id string, now time.Time) (time.Time, bool) {
	info, ok := s.tenants[id]
	if !ok || !info.active || s.stopping {
		return time.Time{}, false
	}
	spread := time.Duration(rand.Int64N(int64(contentionSpread)))
	v, seen := s.views[id]
	if !seen {
		// A tenant never run: soon, its start spread over FirstRunSpread
		// so that a fleet of new tenants does not start in one burst.
		h := fnv.New64a()
		h.Write([]byte(id))
		return now.Add(time.Duration(h.Sum64()%uint64(s.opts.FirstRunSpread)) + spread), true
	}
	st := v.st
	if st.Running(now) && st.Lease.Owner != s.opts.Owner {
		return st.Lease.Until.Add(spread), true // look again when the lease would expire
	}
	if r, asked := s.pendingLocked(id, st); asked && (st.Failures == 0 || st.LastErrorAt.Before(r.req.At)) {
		// Asked for: now, unless a run since the request failed; then
		// the request waits for the backoff like the schedule does, or a
		// failing Hiper or NATS would be asked again and again.
		return now.Add(spread), true
	}
	due := st.NextRunAt
	if st.Failures == 0 && !st.LastRunAt.IsZero() {
		// A shortened interval applies at once.
		if alt := st.LastRunAt.Add(s.interval(info)); due.IsZero() || alt.Before(due) {
			due = alt
		}
	}
	if due.IsZero() {
		due = now
	}
	return due.Add(spread), true
}

// pendingLocked is the tenant's sync request that no run has served yet,
// given the tenant's status st. A run that served a request records it in
// the status and then deletes it from the bucket; until the watch delivers
// that deletion, the request is still in s.reqs, and is not to run again.
func (s *Scheduler) pendingLocked(id string, st syncstatus.Status) (requestView, bool) {
	r, ok := s.reqs[id]
	return r, ok && (r.req.ID == "" || r.req.ID != st.LastRequest)
}

// launchDue starts the runs that are due, as slots allow.
func (s *Scheduler) launchDue(ctx context.Context, now time.Time, wg *sync.WaitGroup) {
	for s.free > 0 && len(s.queue) > 0 && !s.queue[0].due.After(now) {
		e := heap.Pop(&s.queue).(*dueEntry)
		delete(s.queued, e.tenant)
		info := s.tenants[e.tenant]
		runCtx, cancel := context.WithCancelCause(ctx)
		s.running[e.tenant] = &runHandle{cancel: cancel}
		s.free--
		s.m.running.WithLabelValues(string(s.kind)).Inc()
		wg.Add(1)
		view, hasView := s.views[e.tenant]
		var req *requestView
		if r, ok := s.pendingLocked(e.tenant, view.st); ok {
			req = &r
		}
		go func() {
			defer wg.Done()
			defer cancel(nil)
			s.execute(runCtx, cancel, e.tenant, info, view, hasView, req)
			s.mu.Lock()
			delete(s.running, e.tenant)
			s.free++
			s.markLocked(e.tenant)
			s.mu.Unlock()
			s.m.running.WithLabelValues(string(s.kind)).Dec()
		}()
	}
}

// execute takes the tenant's lease and, if it got it, runs the job and
// records the outcome.
func (s *Scheduler) execute(ctx context.Context, cancel context.CancelCauseFunc, id string, info tenantInfo, view statusView, hasView bool, req *requestView) {
	start := time.Now()
	interval := s.interval(info)
	st := syncstatus.Status{Tenant: id, Kind: s.kind}
	if hasView {
		st = view.st.Clone()
	}
	if st.Running(start) && st.Lease.Owner != s.opts.Owner {
		return
	}
	planned := st.NextRunAt
	st.Lease = &syncstatus.Lease{Owner: s.opts.Owner, Until: start.Add(s.opts.LeaseTTL)}
	st.LastRunAt = start
	st.TargetInterval = syncstatus.Duration(interval)
	b, _ := json.Marshal(st)
	key := syncstatus.StatusKey(id, s.kind)
	var rev uint64
	var err error
	if hasView {
		rev, err = s.status.Update(ctx, key, b, view.rev)
	} else {
		rev, err = s.status.Create(ctx, key, b)
	}
	if err != nil {
		if !events.Conflict(err) {
			s.log.Warn("take sync lease", "tenant", id, "error", err)
		} else {
			s.log.Debug("sync lease taken by another replica", "tenant", id, "revision", view.rev)
		}
		return // another replica runs it; its writes reschedule this one
	}
	s.setView(id, st, rev)

	r := &Run{
		Tenant:   id,
		Kind:     s.kind,
		Settings: info.settings,
		Start:    start,
		Log:      s.log.With("tenant", id),
		s:        s,
		status:   st,
		rev:      rev,
	}
	r.Session = s.cfg.Hiper.Session(pacedTokens{
		TokenSource: s.cfg.Tokens(id),
		tenant:      id,
		pacer:       s.cfg.Pacer,
		calls:       s.m.calls.WithLabelValues(string(s.kind), id).Inc,
	})
	if req != nil {
		r.Request = &req.req
		r.Approve = req.req.Approve
	}
	r.Full = r.Request != nil && r.Request.Full || st.FullRunning ||
		st.InitialDone && s.opts.FullEvery > 0 && start.Sub(st.LastFullAt) >= s.opts.FullEvery

	stopRenew := renew.Every(ctx, s.opts.LeaseTTL/3, func(ctx context.Context) bool { return s.renewLease(ctx, r, cancel) })
	jobErr := s.cfg.Job.Run(ctx, r)
	stopRenew()
	s.finish(ctx, r, jobErr, planned, req, interval)
}

// renewLease extends the run's lease (renew.Every calls it every third of the
// lease's TTL); a lost lease cancels the run and ends the renewals.
func (s *Scheduler) renewLease(ctx context.Context, r *Run, cancel context.CancelCauseFunc) bool {
	err := r.Save(ctx, func(*syncstatus.Status) {})
	switch {
	case errors.Is(err, ErrLeaseLost):
		cancel(ErrLeaseLost)
		return false
	case err != nil && ctx.Err() == nil:
		r.Log.Warn("renew sync lease", "error", err)
	}
	return true
}

// finish records the run's outcome and the next due time, releases the
// lease, and clears the request the run served.
func (s *Scheduler) finish(ctx context.Context, r *Run, jobErr error, planned time.Time, req *requestView, interval time.Duration) {
	cause := context.Cause(ctx)
	if errors.Is(jobErr, ErrLeaseLost) || errors.Is(cause, ErrLeaseLost) {
		s.m.runs.WithLabelValues(string(s.kind), outcomeLost).Inc()
		r.Log.Warn("sync lease lost; another replica goes on")
		return
	}
	now := time.Now()
	r.mu.Lock()
	st := r.status.Clone()
	rev := r.rev
	r.mu.Unlock()
	st.Lease = nil
	published := r.published.Load()
	st.LastPublished = published
	st.ItemsPublished += published
	outcome := outcomeOK
	served := false
	switch {
	case jobErr != nil && cause != nil:
		// Paused, disconnected or shutting down: not the tenant's failure.
		// The cursor holds what was done; the next run goes on from there.
		outcome = outcomeCancelled
		st.NextRunAt = planned
	case jobErr == nil:
		st.Failures, st.LastError = 0, ""
		if st.Held == nil {
			st.LastSuccessAt = r.Start
		} else {
			outcome = outcomeHeld
		}
		if req != nil {
			st.LastRequest, st.LastRequestAt, served = req.req.ID, req.req.At, true
		}
		st.NextRunAt = s.next(planned, r.Start, now, interval)
	case inactive(jobErr):
		// The directory will stop scheduling the tenant in a moment.
		outcome = outcomeFailed
		st.LastError, st.LastErrorAt = jobErr.Error(), now
		st.NextRunAt = now.Add(interval)
	default:
		outcome = outcomeFailed
		st.Failures++
		st.LastError, st.LastErrorAt = jobErr.Error(), now
		st.NextRunAt = now.Add(s.backoff(st.Failures, jobErr))
	}
	s.m.runs.WithLabelValues(string(s.kind), outcome).Inc()
	if outcome == outcomeFailed {
		r.Log.Warn("sync failed", "error", jobErr, "failures", st.Failures, "next_run_at", st.NextRunAt)
	} else {
		r.Log.Debug("sync finished", "outcome", outcome, "published", published, "took", now.Sub(r.Start))
	}

	wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), writeTimeout)
	defer cancel()
	b, _ := json.Marshal(st)
	newRev, err := s.status.Update(wctx, syncstatus.StatusKey(r.Tenant, s.kind), b, rev)
	if err != nil {
		if !events.Conflict(err) {
			r.Log.Error("record sync outcome; the lease expires on its own", "error", err)
		}
		return
	}
	s.setView(r.Tenant, st, newRev)
	if served {
		// Only the request this run saw: one merged in since stays.
		err := s.requests.Delete(wctx, syncstatus.StatusKey(r.Tenant, s.kind), jetstream.LastRevision(req.rev))
		if err != nil && !events.Conflict(err) {
			r.Log.Warn("clear served sync request", "error", err)
		}
	}
}

// inactive reports whether err says the tenant cannot be synced as it is
// (paused, disconnected, key refused) rather than that Hiper failed.
func inactive(err error) bool {
	return errors.Is(err, tenant.ErrPaused) || errors.Is(err, tenant.ErrNotConnected) ||
		errors.Is(err, tenant.ErrKeyRefused) || errors.Is(err, tenant.ErrUnknown)
}

// next is when the run after one that succeeded is due: a fixed rate from
// the planned start, so lateness does not accumulate.
func (s *Scheduler) next(planned, start, now time.Time, interval time.Duration) time.Time {
	switch {
	case planned.IsZero():
		// The tenant's first run: choose its phase at random, so that
		// tenants connected together do not poll in step forever.
		return start.Add(time.Duration((0.5 + rand.Float64()) * float64(interval)))
	case planned.After(start):
		// An early run asked for by a request: the schedule stands.
		return planned
	}
	next := planned.Add(interval)
	if next.Before(now) {
		// The run overran its interval, or nobody ran it for a while:
		// go again soon, spread a little.
		next = now.Add(rand.N(min(interval/10, time.Second) + 1))
	}
	return next
}

// backoff is the delay after failures failed runs in a row: base·2^(n-1)
// capped at max, half of it random, or Hiper's Retry-After if longer.
func (s *Scheduler) backoff(failures int, err error) time.Duration {
	d := hiper.HonourRetryAfter(backoff.Exp{Base: s.opts.BackoffBase, Max: s.opts.BackoffMax}.Jittered(failures), err)
	if errors.Is(err, brokerclient.ErrUnavailable) {
		d = max(d, s.opts.BackoffBase)
	}
	return d
}

// Run is one run of a tenant's sync, handed to the Job.
type Run struct {
	Tenant   string
	Kind     syncstatus.Kind
	Settings tenant.Settings
	// Session calls Hiper with the tenant's tokens, paced.
	Session *hiper.Session
	// Request is the request this run serves, nil for a scheduled run.
	Request *syncstatus.Request
	// Full asks for a full resync: the whole feed from sync point 0 (or
	// from Status.FullCursor when one was interrupted).
	Full bool
	// Approve releases a change the guardrail holds.
	Approve bool
	Start   time.Time
	Log     *slog.Logger

	s         *Scheduler
	mu        sync.Mutex
	status    syncstatus.Status
	rev       uint64
	published atomic.Int64
}

// Status returns the tenant's status as this run last wrote it.
func (r *Run) Status() syncstatus.Status {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.status.Clone()
}

// Save changes the status with update and writes it, renewing the lease. It
// fails with ErrLeaseLost when another replica has taken the lease: the run
// must then stop.
//
// A write once begun is not given up when ctx ends (writeTimeout bounds
// it): given up, it may still land, and the run, not knowing its revision,
// would take its own write for another replica's — its next save would
// fail, and its lease would outlive it by the lease's TTL.
func (r *Run) Save(ctx context.Context, update func(*syncstatus.Status)) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("save sync status: %w", err)
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), writeTimeout)
	defer cancel()
	st := r.status.Clone()
	update(&st)
	st.Lease = &syncstatus.Lease{Owner: r.s.opts.Owner, Until: time.Now().Add(r.s.opts.LeaseTTL)}
	b, err := json.Marshal(st)
	if err != nil {
		return fmt.Errorf("encode sync status: %w", err)
	}
	rev, err := r.s.status.Update(ctx, syncstatus.StatusKey(r.Tenant, r.Kind), b, r.rev)
	if err != nil {
		if events.Conflict(err) {
			return ErrLeaseLost
		}
		return fmt.Errorf("save sync status: %w", err)
	}
	r.status, r.rev = st, rev
	r.s.setView(r.Tenant, st, rev)
	return nil
}

// Published counts n events published by the run.
func (r *Run) Published(n int) {
	r.published.Add(int64(n))
	r.s.m.published.WithLabelValues(string(r.Kind), r.Tenant).Add(float64(n))
}

// dueEntry is a tenant in the due queue.
type dueEntry struct {
	tenant string
	due    time.Time
	index  int
}

// dueQueue is a min-heap of due times.
type dueQueue []*dueEntry

func (q dueQueue) Len() int           { return len(q) }
func (q dueQueue) Less(i, j int) bool { return q[i].due.Before(q[j].due) }
func (q dueQueue) Swap(i, j int) {
	q[i], q[j] = q[j], q[i]
	q[i].index, q[j].index = i, j
}
func (q *dueQueue) Push(x any) {
	e := x.(*dueEntry)
	e.index = len(*q)
	*q = append(*q, e)
}
func (q *dueQueue) Pop() any {
	old := *q
	e := old[len(old)-1]
	old[len(old)-1] = nil
	*q = old[:len(old)-1]
	return e
}
