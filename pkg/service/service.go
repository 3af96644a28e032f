// Package service is the start-up and shutdown that every event-driven
// hipersync service shares (the pollers, the order-forwarder, the
// invoice-watcher): logs and tracing, NATS with the namespace's streams, the
// connection to token-broker, and the health endpoints. A service's Main
// reads its settings, opens a Process, starts its own part with what the
// Process holds, and runs it.
package service

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync/atomic"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/hipersync/hipersync/pkg/brokerclient"
	"github.com/hipersync/hipersync/pkg/config"
	"github.com/hipersync/hipersync/pkg/events"
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
func Open(ctx context.Context, name string, common config.Common, _ config.Env, logOut io.Writer) (*Process, error) {
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
	p.Background, p.stopBackground = context.WithCancel(context.WithoutCancel(ctx))
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
	if err := p.provision(ctx); err != nil {
		p.Close()
		return nil, err
	}
	p.Health.Registry.MustRegister(events.NewUsageCollector(p.JS, ns))
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
	nc := p.NATS
	p.Health.AddCheck("nats", func(context.Context) error {
		if !nc.IsConnected() {
			return fmt.Errorf("not connected (%s)", nc.Status())
		}
		return nil
	})
	return p, nil
}

// NamespaceOf is the namespace the shared settings name, with its
// replicas and storage bounds.
func NamespaceOf(common config.Common) events.Namespace {
	return events.Namespace{Prefix: common.Namespace, Replicas: common.StreamReplicas, Limits: events.Limits{
		MaxAge: common.StreamMaxAge, StoreMaxBytes: common.StoreMaxBytes, HiperMaxBytes: common.HiperMaxBytes,
		DeadLetterMaxAge: common.DeadLetterMaxAge, DeadLetterMaxBytes: common.DeadLetterMaxBytes,
		BucketMaxBytes: common.BucketMaxBytes,
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
// intake: run drains and returns, the background work stops, the health
// server, NATS drains, and the rest is closed.
func (p *Process) Run(ctx context.Context, run func(context.Context) error) error {
	defer p.Close()
	close(p.started)
	p.Log.Info(p.Name+" running", "namespace", p.NS.Prefix)
	err := run(ctx)
	p.stopBackground()
	waitHTTP := p.waitHTTP
	p.waitHTTP = nil
	p.stopHTTP()
	err = errors.Join(err, waitHTTP(), p.NATS.Drain())
	p.Log.Info(p.Name+" stopped", "err", err)
	return err
}

// Close releases what Open took; Run calls it.
func (p *Process) Close() {
	p.stopBackground()
	if p.waitHTTP != nil {
		// Open failed after the health server started.
		p.stopHTTP()
		_ = p.waitHTTP()
	}
	if p.stopHTTP != nil {
		p.stopHTTP()
	}
	if p.Broker != nil {
		_ = p.Broker.Close()
	}
	if p.NATS != nil {
		p.NATS.Close()
	}
	if p.shutdownTracing != nil {
		_ = p.shutdownTracing(context.Background())
	}
}
