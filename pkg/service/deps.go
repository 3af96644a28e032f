package service

import (
	"context"
	"errors"
	"io"
	"log/slog"

	"github.com/nats-io/nats.go"
	"go.opentelemetry.io/otel/trace"

	"github.com/hipersync/hipersync/pkg/config"
	"github.com/hipersync/hipersync/pkg/events"
	"github.com/hipersync/hipersync/pkg/hiper"
	"github.com/hipersync/hipersync/pkg/telemetry"
)

// Settings is a service's configuration from the environment: the
// variables every service reads, and the service's own (Config).
type Settings[C any] struct {
	config.Common
	Config C
}

// LoadSettings reads the shared variables, then the service's own with
// load, which reads them through l and returns what checks across
// variables find. The error names every bad variable.
func LoadSettings[C any](getenv config.Env, load func(l *config.Loader, common config.Common) (C, error)) (Settings[C], error) {
	l := config.NewLoader(getenv)
	s := Settings[C]{Common: l.LoadCommon()}
	c, err := load(l, s.Common)
	s.Config = c
	return s, errors.Join(l.Err(), err)
}

// Deps is what the own part of a service that calls Hiper for the tenants
// (the order-forwarder, the invoice-watcher) needs from outside. The binary
// takes it from its Process (Process.Deps); the dev run and tests build it.
type Deps struct {
	NATS      *nats.Conn
	Namespace events.Namespace
	// Tokens are the tenants' Hiper tokens: the process's cache
	// (Process.Tokens), or in tests token-broker's client, which the
	// service puts behind a cache of its own (brokerclient.Cached).
	Tokens hiper.TokenSources
	// HiperBaseURL is where Hiper (or hiper-sim) serves its API.
	HiperBaseURL string
	// Format encodes the published events (EVENTS_FORMAT).
	Format events.Format
	Health *telemetry.Health
	Log    *slog.Logger
	// TracerProvider receives the service's spans; nil means otel's global
	// provider.
	TracerProvider trace.TracerProvider
}

// Check refuses Deps that lack what every such service needs; service
// names the one starting.
func (d Deps) Check(service string) error {
	if d.NATS == nil || d.Tokens == nil || d.Health == nil {
		return errors.New("start " + service + ": NATS, Tokens and Health are required")
	}
	return nil
}

// Logger is d.Log, or a logger that discards when there is none.
func (d Deps) Logger() *slog.Logger {
	if d.Log == nil {
		return slog.New(slog.DiscardHandler)
	}
	return d.Log
}

// Deps is what p hands the service's own part: its connections, namespace,
// health and log, and the Hiper base URL of the shared settings.
func (p *Process) Deps() Deps {
	d := Deps{
		NATS: p.NATS, Namespace: p.NS, HiperBaseURL: p.common.HiperBaseURL,
		Format: p.Format, Health: p.Health, Log: p.Log,
	}
	if p.Tokens != nil { // a nil *Cache is not a missing Tokens to Check
		d.Tokens = p.Tokens
	}
	return d
}

// MainWith runs service name (Main) from its settings: load reads the
// service's own variables (LoadSettings), and start starts its part, with
// the Process's Background context, from the Process's Deps and that
// configuration.
func MainWith[C any, R Runner](ctx context.Context, name string, getenv config.Env, logOut io.Writer,
	load func(l *config.Loader, common config.Common) (C, error),
	start func(ctx context.Context, d Deps, c C) (R, error), opts ...Option) error {
	s, err := LoadSettings(getenv, load)
	if err != nil {
		return err
	}
	return Main(ctx, name, s.Common, getenv, logOut, func(p *Process) (Runner, error) {
		return start(p.Background, p.Deps(), s.Config)
	}, opts...)
}
