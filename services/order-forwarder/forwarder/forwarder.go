// Package forwarder is the order-forwarder: it consumes the store's
// approved and cancelled orders, validates them against Hiper's field rules,
// creates or cancels each sales order in Hiper exactly once, and publishes
// the outcome. The per-order state machine lives in package orders;
// docs/order-forwarder.md describes it.
package forwarder

import (
	"cmp"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"strconv"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/otel/trace"

	"github.com/hipersync/hipersync/pkg/brokerclient"
	"github.com/hipersync/hipersync/pkg/catalog"
	"github.com/hipersync/hipersync/pkg/events"
	brokerv1 "github.com/hipersync/hipersync/pkg/gen/hipersync/broker/v1"
	"github.com/hipersync/hipersync/pkg/hiper"
	"github.com/hipersync/hipersync/pkg/natsconn"
	"github.com/hipersync/hipersync/pkg/pace"
	"github.com/hipersync/hipersync/pkg/service"
	"github.com/hipersync/hipersync/pkg/tenant"
	"github.com/hipersync/hipersync/services/order-forwarder/orders"
)

// ConsumerName is the durable consumer every replica shares.
const ConsumerName = "order-forwarder"

// HiperCancelConsumerName is the durable consumer, on the HIPER stream, of
// the merchant's cancellations in Hiper.
const HiperCancelConsumerName = "order-forwarder-hiper-cancels"

// HiperFailedConsumerName is the durable consumer, on the HIPER stream, of
// order.failed: the orders Hiper processed with an error (the
// invoice-watcher's). A consumer of its own, since a server before 2.10
// takes one filter per consumer.
const HiperFailedConsumerName = "order-forwarder-hiper-failures"

// eventSource is the ce-source of the events the forwarder publishes.
const eventSource = "hipersync/order-forwarder"

// Deps are what a forwarder needs from outside; Start wires them. The
// binary, the dev run and tests all go through Start.
type Deps struct {
	service.Deps
	Config Config
	// Owner names this replica in order records; default host name plus a
	// random suffix.
	Owner string
	// Now is the clock of leases and records; nil means time.Now.
	Now func() time.Time
	// Catalog resolves barcodes; nil means the shared barcode index.
	Catalog Catalog
}

// Forwarder is one replica of the order-forwarder.
type Forwarder struct {
	// reg receives the shared event metrics of the consumer loop.
	reg     prometheus.Registerer
	cfg     Config
	ns      events.Namespace
	js      jetstream.JetStream
	store   *orders.Store
	catalog Catalog
	dir     *tenant.Directory
	tokens  *brokerclient.Cache
	hiper   *hiper.Client
	pub     *events.Publisher
	log     *slog.Logger
	metrics *metrics
	gates   *gates
	// pace spaces each tenant's calls that change an order in Hiper.
	pace     *pace.Tenants
	circuits *circuits
	outages  *outageNotes
	// calls counts what must finish before the connection closes: calls to
	// Hiper being answered and recorded past a drain's grace period, and
	// outcome events being marked published.
	calls sync.WaitGroup
	// marks hands outcomes to mark published to Run's mark workers
	// (unbuffered: a mark no worker is ready for gets a goroutine).
	marks chan mark
	// refresh coalesces the stock refreshes orders ask for.
	refresh stockRefresh
	owner   string
	now     func() time.Time
	tp      trace.TracerProvider
	// approvalBudget is the largest approval a record can hold, from the
	// server's max_payload measured at start.
	approvalBudget int
	// repeats counts the failures in a row of each message (by stream
	// sequence) that are not a deliberate wait.
	repeats repeats
	// turnStep, when set (BenchmarkForwardSlots, BenchmarkForwardLatency),
	// is told when a create passes each step of its turn on the tenant's
	// slot.
	turnStep func(tenant, orderID string, step turnStep)
}

// turnStep is a point of a create's handling, in order: from its
// approval decoded, through its turn on the tenant's slot.
type turnStep int

const (
	stepDecoded      turnStep = iota + 1 // the approval is in a handler, decoded
	stepSlotTaken                        // the slot is this order's
	stepSendingWrite                     // the sending record goes out
	stepSendingSaved                     // the server stored it
	stepSettled                          // the previous holder's answer is stored
	stepAnswered                         // Hiper answered the POST
	stepAnswerQueued                     // the answer's write is on the connection: the slot is handed on
	stepAnswerSaved                      // the server stored the answer
)

// step tells the turn's timer, if any, that the order passed s.
func (o *order) step(s turnStep) {
	if o.f.turnStep != nil {
		o.f.turnStep(o.tenant, o.id, s)
	}
}

// Start provisions the order state and barcode index buckets, starts
// watching the tenants, and returns a forwarder ready to Run. The streams
// must exist (events.EnsureStreams). ctx bounds the tenant watch: cancel it
// after Run returns.
func Start(ctx context.Context, d Deps) (*Forwarder, error) {
	if err := d.Check("order-forwarder"); err != nil {
		return nil, err
	}
	log := d.Logger()
	cfg := d.Config.withDefaults()
	// A write handed to the connection whose answer never comes (writeQueued)
	// is let go of, not kept pending for the life of the connection.
	js, err := jetstream.New(d.NATS, jetstream.WithPublishAsyncTimeout(queuedWriteWait))
	if err != nil {
		return nil, fmt.Errorf("open jetstream: %w", err)
	}
	store, err := orders.Open(ctx, js, d.Namespace)
	if err != nil {
		return nil, err
	}
	index, err := catalog.EnsureIndex(ctx, js, d.Namespace)
	if err != nil {
		return nil, err
	}
	dir, err := events.WatchTenants(ctx, js, d.Namespace, log)
	if err != nil {
		return nil, err
	}
	outageKV, err := openOutageNotes(ctx, js, d.Namespace)
	if err != nil {
		return nil, err
	}
	m := newMetrics(d.Health.Registry)
	hopts := []hiper.Option{
		hiper.WithLogger(log),
		hiper.WithTimeout(cfg.HiperTimeout),
		hiper.WithUserAgent("hipersync-order-forwarder"),
		hiper.WithHTTPClient(&http.Client{Transport: countingTransport{base: hiperTransport(cfg.Concurrency), m: m}}),
		hiper.WithMetrics(d.Health.Registry),
	}
	if d.TracerProvider != nil {
		hopts = append(hopts, hiper.WithTracerProvider(d.TracerProvider))
	}
	hc, err := hiper.New(d.HiperBaseURL, hopts...)
	if err != nil {
		return nil, fmt.Errorf("HIPER_BASE_URL: %w", err)
	}
	popts := []events.Option{events.WithMetrics(d.Health.Registry)}
	if d.TracerProvider != nil {
		popts = append(popts, events.WithTracerProvider(d.TracerProvider))
	}
	f := &Forwarder{
		cfg:     cfg,
		ns:      d.Namespace,
		js:      js,
		store:   store,
		catalog: cmp.Or[Catalog](d.Catalog, KVCatalog{KV: index}),
		dir:     dir,
		hiper:   hc,
		pub:     events.NewPublisher(js, d.Namespace, eventSource, d.Format, popts...),
		log:     log,
		metrics: m,
		gates:   newGates(cfg.TenantInflight, cfg.Concurrency),
		pace:    pace.New(cfg.TenantRate, max(cfg.TenantInflight, tenantBurst), d.Now),
		owner:   d.Owner,
		now:     d.Now,
		tp:      d.TracerProvider,
		reg:     d.Health.Registry,
		marks:   make(chan mark),
	}
	if f.owner == "" {
		f.owner = replicaName()
	}
	f.approvalBudget = ApprovalBudget(d.NATS.MaxPayload())
	f.repeats.n = map[uint64]int{}
	log.Info("order bounds", "max_payload", d.NATS.MaxPayload(), "approval_budget_bytes", f.approvalBudget,
		"max_items", MaxItems, "max_payments", MaxPayments, "max_reasons", MaxReasons)
	if f.now == nil {
		f.now = time.Now
	}
	f.tokens = brokerclient.Cached(d.Tokens, f.now)
	f.outages = &outageNotes{kv: outageKV, log: log, wake: make(chan struct{}, 1)}
	f.circuits = newCircuits(cfg, f.now, f.owner, dir.Count, m.circuitOpen, f.outages.add)
	d.Health.AddCheck("nats", natsconn.Check(d.NATS))
	d.Health.AddCheck("tenants", dir.Check)
	return f, nil
}

// tokenSource is the tenant's tokens: through the process's cache while the
// directory shows the tenant syncing, else from the broker itself, whose
// refusal (disconnected, key refused) is what must stop the call; a cached
// token would not (brokerclient.Cache).
func (f *Forwarder) tokenSource(tenantID string, syncing bool) hiper.TokenSource {
	if syncing {
		return f.tokens.Source(tenantID)
	}
	return f.tokens.Bypass(tenantID)
}

// Owner is the name this replica writes in the records it holds.
func (f *Forwarder) Owner() string { return f.owner }

// Run consumes order events until ctx is done, then drains: in-flight
// orders finish (or are handed back after the grace period) before it
// returns.
func (f *Forwarder) Run(ctx context.Context) error {
	cfg := events.ConsumerConfig{
		Stream:         events.StreamStore,
		Name:           ConsumerName,
		FilterSubjects: []string{f.ns.StoreSubject("*", "order.>")},
		AckWait:        f.cfg.AckWait,
		// The forwarder bounds each order's attempts itself (a paused
		// tenant's wait must not count): the loop's own bound only stops a
		// message that keeps failing for reasons of its own, e.g. a bug.
		MaxDeliver:    1 << 20,
		MaxAckPending: f.cfg.MaxAckPending,
		Description:   "hipersync order-forwarder: store orders to Hiper",
	}
	opts := []events.Option{
		events.WithLogger(f.log),
		events.WithConcurrency(f.cfg.Concurrency),
		events.WithBackoff(f.cfg.RetryBase, f.cfg.RetryMax),
		events.WithGracePeriod(f.cfg.GracePeriod),
		events.WithMetrics(f.reg),
		events.WithStoreOrderStatuses(),
		// A handled event delivered again finds its order settled and
		// changes nothing (the duplicate window drops a repeated outcome),
		// so the ack need not be waited for.
		events.WithAsyncAck(),
	}
	if f.tp != nil {
		opts = append(opts, events.WithTracerProvider(f.tp))
	}
	f.log.Info("order-forwarder consuming", "owner", f.owner, "filter", cfg.FilterSubjects[0],
		"concurrency", f.cfg.Concurrency, "tenant_inflight", f.cfg.TenantInflight)
	f.watchResumes(ctx)
	nctx, stopNotes := context.WithCancel(context.WithoutCancel(ctx))
	var notes sync.WaitGroup
	notes.Go(func() { f.outages.run(nctx) })
	notes.Go(func() { f.removePersonalData(nctx) })
	// The merchant's own cancellations in Hiper, announced by the
	// invoice-watcher, keep the order records true; they and the orders
	// Hiper failed free stock there.
	hcfg := events.ConsumerConfig{
		Stream:         events.StreamHiper,
		Name:           HiperCancelConsumerName,
		FilterSubjects: []string{f.ns.HiperSubject("*", events.KindOrderCancelled)},
		AckWait:        f.cfg.AckWait,
		MaxAckPending:  f.cfg.MaxAckPending,
		Description:    "hipersync order-forwarder: orders the merchant cancelled in Hiper",
	}
	fcfg := hcfg
	fcfg.Name, fcfg.FilterSubjects = HiperFailedConsumerName, []string{f.ns.HiperSubject("*", events.KindOrderFailed)}
	fcfg.Description = "hipersync order-forwarder: orders Hiper processed with an error, for their stock"
	var cancels sync.WaitGroup
	cancels.Go(func() {
		if err := events.Consume(ctx, f.js, f.ns, fcfg, f.hiperFailed, opts...); err != nil && ctx.Err() == nil {
			f.log.Error("consume the orders Hiper failed", "error", err)
		}
	})
	cancels.Go(func() {
		if err := events.Consume(ctx, f.js, f.ns, hcfg, f.hiperCancelled, opts...); err != nil && ctx.Err() == nil {
			f.log.Error("consume the merchant's cancellations in Hiper", "error", err)
		}
	})
	stopMarkers := make(chan struct{})
	markers := f.runMarkers(stopMarkers)
	err := events.Consume(ctx, f.js, f.ns, cfg, f.handle, opts...)
	cancels.Wait()
	f.calls.Wait() // the marks handed to the workers included
	close(stopMarkers)
	markers.Wait()
	stopNotes()
	notes.Wait()
	return err
}

// watchResumes sends, whenever a paused tenant is resumed, every order of
// it still received: the STORE stream may have dropped their messages while
// the pause outlasted its retention, and then nothing else would.
func (f *Forwarder) watchResumes(ctx context.Context) {
	var mu sync.Mutex
	paused := map[string]bool{}
	for _, t := range f.dir.List() {
		paused[t.GetTenantId()] = t.GetState() == brokerv1.TenantState_TENANT_STATE_PAUSED
	}
	op := orders.Operator{Store: f.store, Publisher: f.pub, NS: f.ns, By: f.owner}
	f.dir.OnChange(func(c tenant.Change) {
		mu.Lock()
		was := paused[c.TenantID]
		now := c.Tenant.GetState() == brokerv1.TenantState_TENANT_STATE_PAUSED
		paused[c.TenantID] = now
		mu.Unlock()
		if !was || now || c.Tenant == nil || ctx.Err() != nil {
			return
		}
		// Every replica sees the resume; the tag (the time of the resume)
		// makes their messages one per order.
		tag := strconv.FormatInt(c.Tenant.GetStateChangedAt().AsTime().UnixMilli(), 10)
		f.calls.Go(func() {
			n, err := op.RequeueReceived(ctx, c.TenantID, tag)
			if err != nil {
				f.log.Error("resume: re-queue the orders waiting since the pause; `hipersync orders list --state received` shows them",
					"tenant", c.TenantID, "error", err)
				return
			}
			f.log.Info("resume: orders waiting since the pause sent again", "tenant", c.TenantID, "orders", n)
		})
	})
}

// personalDataSweep is how often settled orders are checked for personal
// data past its retention.
const personalDataSweep = time.Hour

// removePersonalData drops, every personalDataSweep until ctx ends, the
// customer's data from orders settled for longer than the retention (LGPD).
func (f *Forwarder) removePersonalData(ctx context.Context) {
	for {
		n, err := f.store.RemoveExpiredPersonalData(ctx, f.cfg.PersonalDataRetention, time.Now())
		switch {
		case err != nil && ctx.Err() == nil:
			f.log.Warn("remove expired personal data", "error", err, "removed", n)
		case n > 0:
			f.log.Info("removed expired personal data", "orders", n, "retention", f.cfg.PersonalDataRetention.String())
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(personalDataSweep):
		}
	}
}

// markWorkers is how many long-lived goroutines of Run mark outcomes
// published; a mark finding them all busy gets a goroutine of its own.
const markWorkers = 8

// mark is one outcome to mark published: the record as written at rev.
type mark struct {
	rec *orders.Record
	rev uint64
}

// markPublished records in the background that rec's outcome event went
// out; rev is the revision rec was written at (0: unknown). One of Run's
// mark workers takes it when one is free: a goroutine per mark grew a
// fresh stack for every order, about half of the mark's CPU.
func (f *Forwarder) markPublished(rec *orders.Record, rev uint64) {
	m := mark{rec: new(*rec), rev: rev} // as written at rev, whatever the handler does with rec next
	f.calls.Add(1)
	select {
	case f.marks <- m:
	default:
		go func() {
			defer f.calls.Done()
			f.mark(m)
		}()
	}
}

// runMarkers runs the mark workers until stop is closed.
func (f *Forwarder) runMarkers(stop <-chan struct{}) *sync.WaitGroup {
	var wg sync.WaitGroup
	for range markWorkers {
		wg.Go(func() {
			for {
				select {
				case m := <-f.marks:
					f.mark(m)
					f.calls.Done()
				case <-stop:
					return
				}
			}
		})
	}
	return &wg
}

func (f *Forwarder) mark(m mark) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := f.store.MarkPublishedAt(ctx, m.rec, m.rev); err != nil {
		f.log.Warn("mark outcome event published; a late duplicate may publish it again",
			"tenant", m.rec.Tenant, "order_id", m.rec.OrderID, "event_id", m.rec.Outbox.ID, "error", err)
	}
}

// handle is the consumer loop's handler: it routes an event by kind and
// counts its outcome.
func (f *Forwarder) handle(ctx context.Context, m *events.Message) error {
	var (
		outcome string
		err     error
	)
	if m.Source == events.SourceStore {
		// The tenant's status map names what the store's own statuses
		// mean; approved and cancelled mean themselves unless mapped.
		switch f.statusAction(m) {
		case "approved":
			m.Kind = events.KindOrderApproved
		case "cancelled":
			m.Kind = events.KindOrderCancelled
		}
	}
	switch m.Kind {
	case events.KindOrderApproved:
		outcome, err = f.approved(ctx, m)
	case events.KindOrderCancelled:
		outcome, err = f.cancelled(ctx, m)
	default:
		if m.Source != events.SourceStore {
			return nil // not the store's: this service does not handle it
		}
		outcome, err = f.ignoreStatus(ctx, m)
		m.Kind = events.KindOrderStatusIgnored // one metric label, whatever the store calls its statuses
	}
	if repeated(err) {
		if n := f.repeats.add(m.StreamSeq); n >= f.cfg.MaxErrors {
			f.repeats.forget(m.StreamSeq)
			outcome, err = f.giveUp(ctx, m, n, err)
		}
	} else {
		f.repeats.forget(m.StreamSeq)
	}
	if outcome == "" {
		outcome = outcomeOf(err)
	}
	f.metrics.eventsIn.WithLabelValues(string(m.Kind), outcome).Inc()
	return err
}

// Outcomes of handling one event, for the events_in metric.
const (
	outAccepted      = "accepted"
	outRejected      = "rejected"
	outNeedsReview   = "needs_review"
	outFailed        = "failed"
	outCancelled     = "cancelled"
	outDuplicate     = "duplicate"
	outRetry         = "retry"
	outWaiting       = "waiting"
	outCancelRefused = "cancel_refused"
	outError         = "error"
)

func outcomeOf(err error) string {
	if err == nil {
		return outDuplicate
	}
	if _, ok := errors.AsType[*events.RetryAfterError](err); ok {
		return outRetry
	}
	return outError
}

// hiperTransport keeps as many idle connections to Hiper as handlers can
// call it at once: every tenant's calls go to one host, and the default of
// two would open and close a connection for most calls.
func hiperTransport(concurrency int) http.RoundTripper {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.MaxIdleConnsPerHost = max(concurrency, 2)
	return t
}

func replicaName() string {
	host, _ := os.Hostname()
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	if host == "" {
		host = "replica"
	}
	return host + "-" + hex.EncodeToString(b)
}
