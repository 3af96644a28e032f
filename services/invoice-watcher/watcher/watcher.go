// Package watcher is the invoice-watcher: it follows every order Hiper
// accepted through GET /pedido-de-venda/eventos/{id} until it is final and
// publishes, once each, its invoice, its shipping, its failure and a
// cancellation the merchant made in Hiper. docs/invoices.md describes the
// polling schedule, how replicas share the orders and what each event
// means; package order holds the rules, this package runs them against
// NATS and Hiper.
package watcher

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/hipersync/hipersync/pkg/brokerclient"
	"github.com/hipersync/hipersync/pkg/events"
	"github.com/hipersync/hipersync/pkg/hiper"
	"github.com/hipersync/hipersync/pkg/natsconn"
	"github.com/hipersync/hipersync/pkg/pace"
	"github.com/hipersync/hipersync/pkg/service"
	"github.com/hipersync/hipersync/pkg/syncstatus"
	"github.com/hipersync/hipersync/pkg/tenant"
)

// ConsumerName names the watcher in dead letters; its durable consumers
// are named after it.
const ConsumerName = "invoice-watcher"

// eventSource is the ce-source of the events the watcher publishes.
const eventSource = "hipersync/invoice-watcher"

// Deps are what a watcher needs from outside; Start wires them. The binary,
// the dev run and tests all go through Start.
type Deps struct {
	service.Deps
	// HTTPClient makes the Hiper calls; nil means a default one. Tests pass
	// one that counts the calls per order.
	HTTPClient *http.Client
	Config     Config
	// Now is the clock of ages and records; nil means time.Now.
	Now func() time.Time
}

// Watcher is one replica of the invoice-watcher.
type Watcher struct {
	cfg     Config
	ns      events.Namespace
	js      jetstream.JetStream
	records records
	dir     *tenant.Directory
	// tokens are the process's token cache: safe because follow polls
	// only tenants the directory shows syncing.
	tokens *brokerclient.Cache
	hiper  *hiper.Client
	pub    *events.Publisher
	pace   *pace.Tenants
	log    *slog.Logger
	m      *metrics
	now    func() time.Time
	opts   []events.Option
	// quantum aligns the ends of the tasks' delays (see align).
	quantum time.Duration
	// report tells `hipersync status` how each tenant's follow-up goes.
	report *statusReporter
	// polling holds the tasks this replica is polling (see take).
	polling inPoll
}

// Start provisions the watcher's bucket and poll queue, starts watching
// the tenants, and returns a watcher ready to Run. The event streams must
// exist (events.EnsureStreams). ctx bounds the tenant watch: cancel it
// after Run returns.
func Start(ctx context.Context, d Deps) (*Watcher, error) {
	if err := d.Check("invoice-watcher"); err != nil {
		return nil, err
	}
	log := d.Logger()
	cfg := d.Config.withDefaults()
	now := d.Now
	if now == nil {
		now = time.Now
	}
	js, err := jetstream.New(d.NATS)
	if err != nil {
		return nil, fmt.Errorf("open jetstream: %w", err)
	}
	statusKV, _, err := syncstatus.EnsureBuckets(ctx, js, d.Namespace)
	if err != nil {
		return nil, err
	}
	recs, err := openRecords(ctx, js, d.Namespace, cfg.RecordTTL)
	if err != nil {
		return nil, err
	}
	tasks, err := ensureTaskStream(ctx, js, d.Namespace)
	if err != nil {
		return nil, err
	}
	if n, err := recs.migrate(ctx); err != nil {
		return nil, err
	} else if n > 0 {
		log.Info("order records moved from their legacy keys", "records", n)
	}
	dir, err := events.WatchTenants(ctx, js, d.Namespace, log)
	if err != nil {
		return nil, err
	}
	hc := d.HTTPClient
	if hc == nil {
		hc = &http.Client{}
	}
	base := hc.Transport
	if base == nil {
		base = http.DefaultTransport
	}
	hc = &http.Client{Transport: captureTransport{base: base}, CheckRedirect: hc.CheckRedirect, Jar: hc.Jar, Timeout: hc.Timeout}
	hopts := []hiper.Option{
		hiper.WithLogger(log), hiper.WithTimeout(cfg.HiperTimeout), hiper.WithHTTPClient(hc),
		hiper.WithUserAgent("hipersync-invoice-watcher"), hiper.WithMetrics(d.Health.Registry),
	}
	opts := []events.Option{events.WithLogger(log), events.WithMetrics(d.Health.Registry)}
	if d.TracerProvider != nil {
		hopts = append(hopts, hiper.WithTracerProvider(d.TracerProvider))
		opts = append(opts, events.WithTracerProvider(d.TracerProvider))
	}
	client, err := hiper.New(d.HiperBaseURL, hopts...)
	if err != nil {
		return nil, fmt.Errorf("HIPER_BASE_URL: %w", err)
	}
	w := &Watcher{
		cfg:     cfg,
		ns:      d.Namespace,
		js:      js,
		records: recs,
		report:  newStatusReporter(statusKV, cfg.Schedule, log),
		dir:     dir,
		tokens:  brokerclient.Cached(d.Tokens, now),
		hiper:   client,
		pub:     events.NewPublisher(js, d.Namespace, eventSource, d.Format, opts...),
		pace:    pace.New(cfg.TenantRate, cfg.TenantBurst, now),
		log:     log,
		m:       newMetrics(d.Health.Registry, tasks),
		now:     now,
		opts:    opts,
		quantum: min(cfg.Schedule.Max/48, 5*time.Second),
	}
	dir.OnChange(func(c tenant.Change) {
		if c.Tenant == nil {
			w.pace.Forget(c.TenantID)
		}
	})
	d.Health.AddCheck("nats", natsconn.Check(d.NATS))
	d.Health.AddCheck("tenants", dir.Check)
	return w, nil
}

// Run follows orders until ctx is done: it takes in accepted orders and
// the store's cancellations, and polls the orders that are due. Then it
// drains: it stops taking messages and tasks, lets work in progress finish
// for the grace period and hands back the rest.
func (w *Watcher) Run(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	intake := []struct {
		cfg events.ConsumerConfig
		h   events.Handler
	}{
		{events.ConsumerConfig{
			Stream: events.StreamHiper, Name: ConsumerName + "-accepted",
			FilterSubjects: []string{w.ns.HiperSubject("*", events.KindOrderAccepted)},
			Description:    "hipersync invoice-watcher: orders to follow in Hiper",
		}, w.accepted},
		{events.ConsumerConfig{
			Stream: events.StreamStore, Name: ConsumerName + "-store-cancels",
			FilterSubjects: []string{w.ns.StoreSubject("*", events.KindOrderCancelled)},
			Description:    "hipersync invoice-watcher: cancellations the store asked for",
		}, w.cancelRequested},
		{events.ConsumerConfig{
			Stream: events.StreamHiper, Name: ConsumerName + "-cancels",
			FilterSubjects: []string{w.ns.HiperSubject("*", events.KindOrderCancelled)},
			Description:    "hipersync invoice-watcher: cancellations the order-forwarder carried out",
		}, w.cancelRequested},
	}
	opts := append([]events.Option{events.WithGracePeriod(w.cfg.GracePeriod)}, w.opts...)
	errs := make(chan error, len(intake)+1)
	var wg sync.WaitGroup
	for _, in := range intake {
		in.cfg.AckWait = w.cfg.AckWait
		wg.Go(func() {
			err := events.Consume(ctx, w.js, w.ns, in.cfg, in.h, opts...)
			if err != nil {
				cancel() // one part down stops the replica, for its supervisor to restart
			}
			errs <- err
		})
	}
	// The report outlives the consumers by its last flush, not the replica.
	reportCtx, stopReport := context.WithCancel(context.WithoutCancel(ctx))
	reported := make(chan struct{})
	go func() { defer close(reported); w.report.run(reportCtx) }()
	defer func() { stopReport(); <-reported }()
	wg.Go(func() {
		err := w.runPolls(ctx)
		if err != nil {
			cancel()
		}
		errs <- err
	})
	w.log.Info("invoice-watcher running", "concurrency", w.cfg.Concurrency,
		"poll_min", w.cfg.Schedule.Min.String(), "poll_max", w.cfg.Schedule.Max.String())
	wg.Wait()
	close(errs)
	var all []error
	for err := range errs {
		all = append(all, err)
	}
	return errors.Join(all...)
}
