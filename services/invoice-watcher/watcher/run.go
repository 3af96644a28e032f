package watcher

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/hipersync/hipersync/pkg/brokerclient"
	"github.com/hipersync/hipersync/pkg/config"
	"github.com/hipersync/hipersync/pkg/events"
	"github.com/hipersync/hipersync/pkg/telemetry"
)

// Main runs the invoice-watcher until ctx is done: it follows orders and
// serves health and metrics on HTTP_ADDR, then stops in the reverse order of
// intake (drain the consumers and the poll queue, then the connection).
func Main(ctx context.Context, getenv config.Env, logOut io.Writer) error {
	s, err := LoadSettings(getenv)
	if err != nil {
		return err
	}
	format, err := events.ParseFormat(s.EventsFormat)
	if err != nil {
		return fmt.Errorf("%s: %w", events.FormatEnv, err)
	}
	ns := events.Namespace{Prefix: s.Namespace, Replicas: s.StreamReplicas}
	err = ns.Validate()
	if err != nil {
		return fmt.Errorf("%s: %w", events.NamespaceEnv, err)
	}
	log := telemetry.NewLogger("invoice-watcher", logOut, telemetry.LevelFromEnv(getenv))
	shutdownTracing, err := telemetry.SetupTracing(ctx, "invoice-watcher")
	if err != nil {
		return err
	}
	defer func() { _ = shutdownTracing(context.Background()) }()

	nc, err := nats.Connect(s.NATSURL, nats.Name("invoice-watcher"), nats.MaxReconnects(-1))
	if err != nil {
		return fmt.Errorf("connect to NATS at %s: %w", s.NATSURL, err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return fmt.Errorf("open jetstream: %w", err)
	}
	if err := events.EnsureStreams(ctx, js, ns); err != nil {
		return err
	}
	broker, err := brokerclient.Dial(s.TokenBrokerAddr)
	if err != nil {
		return fmt.Errorf("TOKEN_BROKER_ADDR: %w", err)
	}
	defer broker.Close()

	// The tenant watch outlives the drain: polls finishing during the grace
	// period still read tenants.
	watchCtx, stopWatch := context.WithCancel(context.WithoutCancel(ctx))
	defer stopWatch()
	health := telemetry.NewHealth()
	w, err := Start(watchCtx, Deps{
		NATS: nc, Namespace: ns, Tokens: broker, HiperBaseURL: s.HiperBaseURL,
		Format: format, Health: health, Log: log, Config: s.Config,
	})
	if err != nil {
		return err
	}
	waitHTTP, err := health.Serve(ctx, s.HTTPAddr, log)
	if err != nil {
		return err
	}
	err = w.Run(ctx)
	stopWatch()
	err = errors.Join(err, waitHTTP(), nc.Drain())
	log.Info("invoice-watcher stopped", "err", err)
	return err
}
