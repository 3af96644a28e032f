// Package service is the start-up and shutdown that every hipersync binary
// shares (token-broker, the pollers, the order-forwarder, the
// invoice-watcher, the console): logs and tracing, the health endpoints,
// NATS (natsconn) with the namespace's streams, and the connection to
// token-broker. A service's Main reads its settings, opens a Process, starts
// its own part with what the Process holds, and runs it (Main does the three
// steps). Run stops it all in the reverse order of intake: the service's own
// part drains, then the health server, then NATS (waiting for the drain to
// finish), token-broker's connection, and last the traces are flushed, each
// with a deadline, and every failure is reported.
package service

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/hipersync/hipersync/pkg/brokerclient"
	"github.com/hipersync/hipersync/pkg/config"
	"github.com/hipersync/hipersync/pkg/events"
	"github.com/hipersync/hipersync/pkg/metric"
	"github.com/hipersync/hipersync/pkg/natsconn"
	"github.com/hipersync/hipersync/pkg/telemetry"
)

// Process is what a service opens before its own part starts.
type Process struct {
	Name   string
	Log    *slog.Logger
	NATS   *nats.Conn
	JS     jetstream.JetStream
	NS     events.Namespace
	Format events.Format
	Broker *brokerclient.Client
	// Tokens is the process's one cache of Hiper tokens from Broker,
	// shared by all its callers of Hiper.
	Tokens *brokerclient.Cache
	Health *telemetry.Health
	// Background lives until Run has drained the service, past the
	// cancellation of Run's ctx: what handlers finishing during the drain
	// still need (the tenant watch) is started with it.
	Background context.Context

	common          config.Common
	stopBackground  context.CancelFunc
	shutdownTracing func(context.Context) error
	waitHTTP        func() error
	stopHTTP        context.CancelFunc
	// started is closed when Run starts the service's own part: until
	// then /readyz says the process is starting.
	started chan struct{}
	// provisioned holds the last provisioning failure, nil once done.
	provisioned atomic.Pointer[error]
	opts        options
}

// Timeouts of the shutdown.
const (
	// DrainTimeout bounds the wait for NATS to drain what is in flight.
	DrainTimeout = 30 * time.Second
	// FlushTimeout bounds the flush of the traces not yet exported.
	FlushTimeout = 5 * time.Second
)

// Option changes what Open sets up.
type Option func(*options)

type options struct {
	noStreams, noTokenBroker bool
}

// WithoutStreams leaves the namespace's streams alone: for token-broker,
// which keeps only key-value state.
func WithoutStreams() Option { return func(o *options) { o.noStreams = true } }

// WithoutTokenBroker does not dial token-broker: for token-broker itself.
func WithoutTokenBroker() Option { return func(o *options) { o.noTokenBroker = true } }

// Runner is a service's own part, which Run runs until its context ends
// and which then drains and returns.
type Runner interface {
	Run(ctx context.Context) error
}

// RunFunc adapts a function to Runner.
type RunFunc func(ctx context.Context) error

// Run calls f.
func (f RunFunc) Run(ctx context.Context) error { return f(ctx) }

// Main opens the Process of service name, lets start start the service's
// own part with what it holds, and runs that until ctx is done (Run); if
// start fails, what Open took is released.
func Main(ctx context.Context, name string, common config.Common, getenv config.Env, logOut io.Writer,
	start func(p *Process) (Runner, error), opts ...Option) error {
	p, err := Open(ctx, name, common, getenv, logOut, opts...)
	if err != nil {
		return err
	}
	r, err := start(p)
	if err != nil {
		return errors.Join(err, p.Close())
	}
	return p.Run(ctx, r.Run)
}

// Open sets up logging and tracing, serves health and metrics on HTTP_ADDR,
// connects to NATS and provisions the namespace's streams, and dials
// token-broker, from the shared settings the service loaded. Close releases
// it all if the service fails before Run.
//
// A NATS or JetStream that cannot be reached yet (a cluster still starting,
// a node down) does not end the process: it stays up, /healthz answers and
// /readyz says why it is not ready, and Open retries with backoff until it
// succeeds or ctx ends.
func Open(ctx context.Context, name string, common config.Common, _ config.Env, logOut io.Writer, opts ...Option) (*Process, error) {
	format, err := events.ParseFormat(common.EventsFormat)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", events.FormatEnv, err)
	}
	ns := NamespaceOf(common)
	if err := ns.Validate(); err != nil {
		return nil, fmt.Errorf("%s: %w", events.NamespaceEnv, err)
	}
	p := &Process{Name: name, NS: ns, Format: format, common: common, Health: telemetry.NewHealth(),
		Log: telemetry.NewLogger(name, logOut, common.LogLevel), started: make(chan struct{})}
	for _, o := range opts {
		o(&p.opts)
	}
	p.Background, p.stopBackground = context.WithCancel(context.WithoutCancel(ctx))
	// What the service provisions as it starts (its buckets, its own
	// streams) logs with the process's logger, and a refusal for want of
	// storage keeps the process not ready, saying why, until it succeeds.
	p.Background = events.ContextWithLogger(events.ContextWithStorageHook(p.Background, func(err error) {
		p.provisioned.Store(&err)
	}), p.Log)
	if p.shutdownTracing, err = telemetry.SetupTracing(ctx, name); err != nil {
		p.Close()
		return nil, err
	}
	notYet := errors.New("not provisioned yet")
	p.provisioned.Store(&notYet)
	p.Health.AddCheck("jetstream", func(context.Context) error {
		if err := *p.provisioned.Load(); err != nil {
			return fmt.Errorf("streams: %w", err)
		}
		return nil
	})
	p.Health.AddCheck("started", func(context.Context) error {
		select {
		case <-p.started:
			return nil
		default:
			return errors.New("starting")
		}
	})
	metric.Register(p.Health.Registry, events.ProvisionMetrics())
	metric.Register(p.Health.Registry, events.StorageMetrics())
	var httpCtx context.Context
	httpCtx, p.stopHTTP = context.WithCancel(ctx)
	if p.waitHTTP, err = p.Health.Serve(httpCtx, common.HTTPAddr, p.Log); err != nil {
		p.Close()
		return nil, err
	}
	// RetryOnFailedConnect: a NATS not up yet is waited for, not fatal.
	if p.NATS, err = natsconn.Connect(name, common.NATS, p.Log, nats.RetryOnFailedConnect(true)); err != nil {
		p.Close()
		return nil, err
	}
	if p.JS, err = jetstream.New(p.NATS); err != nil {
		p.Close()
		return nil, fmt.Errorf("open jetstream: %w", err)
	}
	p.Health.AddCheck("nats", natsconn.Check(p.NATS))
	if p.opts.noStreams {
		p.provisioned.Store(new(error))
	} else {
		if err := p.provision(ctx); err != nil {
			p.Close()
			return nil, err
		}
		p.Health.Registry.MustRegister(events.NewUsageCollector(p.JS, ns))
	}
	if p.opts.noTokenBroker {
		return p, nil
	}
	if err := common.CheckBrokerTLS(); err != nil {
		p.Close()
		return nil, err
	}
	if common.Insecure && common.TokenBrokerTLS.Cert == "" {
		p.Log.Warn("calling token-broker WITHOUT TLS (" + config.InsecureEnv + "=1; dev only)")
	}
	if p.Broker, err = brokerclient.DialTLS(common.TokenBrokerAddr, common.TokenBrokerTLS); err != nil {
		p.Close()
		return nil, fmt.Errorf("TOKEN_BROKER_ADDR: %w", err)
	}
	p.Tokens = brokerclient.NewCache(p.Broker, nil)
	return p, nil
}

// NamespaceOf is the namespace the shared settings name, with its
// replicas and storage bounds.
func NamespaceOf(common config.Common) events.Namespace {
	return events.Namespace{Prefix: common.Namespace, Replicas: common.StreamReplicas, Limits: events.Limits{
		MaxAge: common.StreamMaxAge, StoreMaxBytes: common.StoreMaxBytes, HiperMaxBytes: common.HiperMaxBytes,
		DeadLetterMaxAge: common.DeadLetterMaxAge, DeadLetterMaxBytes: common.DeadLetterMaxBytes,
		BucketMaxBytes: common.BucketMaxBytes, AuditMaxBytes: common.AuditMaxBytes,
	}}
}

// provision creates or checks the namespace's streams, retrying until it
// succeeds or ctx ends; /readyz shows the last failure meanwhile.
func (p *Process) provision(ctx context.Context) error {
	ctx = events.ContextWithLogger(ctx, p.Log)
	err := events.EnsureStreams(ctx, p.JS, p.NS, events.WithRetryHook(func(err error) { p.provisioned.Store(&err) }))
	if err != nil {
		return err
	}
	p.provisioned.Store(new(error))
	return nil
}

// Run runs run until ctx is done; then it stops in the reverse order of
// intake: run drains and returns, the background work stops, then the
// health server, NATS drains (Run waits for the drain to finish, at most
// DrainTimeout), token-broker's connection closes, and the traces are
// flushed (at most FlushTimeout). Every failure on the way is in the error.
func (p *Process) Run(ctx context.Context, run func(context.Context) error) error {
	close(p.started)
	p.Log.Info(p.Name+" running", "namespace", p.NS.Prefix)
	err := run(ctx)
	err = errors.Join(err, p.shutdown(true))
	p.Log.Info(p.Name+" stopped", "err", err)
	return err
}

// Close releases what Open took, without draining, for a service that fails
// before Run; Run does it itself.
func (p *Process) Close() error { return p.shutdown(false) }

// shutdown releases what Open took, in the reverse order; drain drains NATS
// rather than closing it.
func (p *Process) shutdown(drain bool) error {
	var errs []error
	p.stopBackground()
	if p.stopHTTP != nil {
		p.stopHTTP()
	}
	if p.waitHTTP != nil {
		errs = append(errs, p.waitHTTP())
		p.waitHTTP = nil
	}
	if p.NATS != nil {
		if drain {
			errs = append(errs, natsconn.Drain(p.NATS, DrainTimeout))
		} else {
			p.NATS.Close()
		}
	}
	if p.Broker != nil {
		if err := p.Broker.Close(); err != nil {
			errs = append(errs, fmt.Errorf("close the token-broker connection: %w", err))
		}
	}
	if p.shutdownTracing != nil {
		ctx, cancel := context.WithTimeout(context.Background(), FlushTimeout)
		defer cancel()
		if err := p.shutdownTracing(ctx); err != nil {
			errs = append(errs, fmt.Errorf("flush traces: %w", err))
		}
		p.shutdownTracing = nil
	}
	return errors.Join(errs...)
}
