package forwarder

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

// Main runs the order-forwarder until ctx is done: it consumes order events
// and serves health and metrics on HTTP_ADDR, then stops in the reverse
// order of intake (drain the consumer, then the connection).
func Main(ctx context.Context, getenv config.Env, logOut io.Writer) error {
	s, err := LoadSettings(getenv)
	if err != nil {
		return err
	}
	format, err := events.ParseFormat(s.EventsFormat)
	if err != nil {
		return fmt.Errorf("%s: %w", events.FormatEnv, err)
	}
	log := telemetry.NewLogger("order-forwarder", logOut, telemetry.LevelFromEnv(getenv))
	shutdownTracing, err := telemetry.SetupTracing(ctx, "order-forwarder")
	if err != nil {
		return err
	}
	defer func() { _ = shutdownTracing(context.Background()) }()

	nc, err := nats.Connect(s.NATSURL, nats.Name("order-forwarder"), nats.MaxReconnects(-1))
	if err != nil {
		return fmt.Errorf("connect to NATS at %s: %w", s.NATSURL, err)
	}
	defer nc.Close()
	ns := events.Namespace{Prefix: s.Namespace, Replicas: s.StreamReplicas}
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

	// The tenant watch outlives the consumer's drain: handlers finishing
	// during the grace period still read tenants.
	watchCtx, stopWatch := context.WithCancel(context.WithoutCancel(ctx))
	defer stopWatch()
	health := telemetry.NewHealth()
	f, err := Start(watchCtx, Deps{
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
	err = f.Run(ctx)
	stopWatch()
	err = errors.Join(err, waitHTTP(), nc.Drain())
	log.Info("order-forwarder stopped", "err", err)
	return err
}
