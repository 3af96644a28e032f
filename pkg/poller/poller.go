// Package poller is the start-up of the two poller services (catalog and
// stock): their settings from the environment, what a poller's scheduler is
// wired with (Deps), and Main, which runs one as a service.
package poller

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/hipersync/hipersync/pkg/config"
	"github.com/hipersync/hipersync/pkg/events"
	"github.com/hipersync/hipersync/pkg/hiper"
	"github.com/hipersync/hipersync/pkg/pace"
	"github.com/hipersync/hipersync/pkg/schedule"
	"github.com/hipersync/hipersync/pkg/service"
	"github.com/hipersync/hipersync/pkg/syncstatus"
	"github.com/hipersync/hipersync/pkg/telemetry"
	"github.com/hipersync/hipersync/pkg/tenant"
)

// Settings is a poller's configuration from the environment: the variables
// every service reads, and the pollers' own.
type Settings struct {
	config.Common
	// Concurrency is POLL_CONCURRENCY: polls in progress per replica.
	Concurrency int
	// TenantRate is POLL_TENANT_RATE: Hiper calls a second per tenant.
	TenantRate float64
	// FullEvery is POLL_FULL_RESYNC_INTERVAL: the full-resync safety net.
	FullEvery time.Duration
}

// LoadSettings reads the environment; the error names every bad variable.
func LoadSettings(getenv config.Env) (Settings, error) {
	l := config.NewLoader(getenv)
	s := Settings{
		Common:      l.LoadCommon(),
		Concurrency: l.Int("POLL_CONCURRENCY", schedule.DefaultConcurrency),
		TenantRate:  l.Float("POLL_TENANT_RATE", schedule.DefaultTenantRate),
		FullEvery:   l.Duration("POLL_FULL_RESYNC_INTERVAL", schedule.DefaultFullEvery),
	}
	errs := []error{l.Err()}
	if s.Concurrency < 1 {
		errs = append(errs, fmt.Errorf("POLL_CONCURRENCY: want at least 1, got %d", s.Concurrency))
	}
	if s.TenantRate <= 0 {
		errs = append(errs, fmt.Errorf("POLL_TENANT_RATE: want a positive number of calls a second, got %v", s.TenantRate))
	}
	return s, errors.Join(errs...)
}

// Deps are what a poller needs from outside; its Start wires them. The dev
// run and tests build them directly, services through Main.
type Deps struct {
	NATS      *nats.Conn
	Namespace events.Namespace
	Directory *tenant.Directory
	// Tokens returns a tenant's token source: the process's cache's
	// (service.Process.Tokens, brokerclient.Cache.Source).
	Tokens       func(tenantID string) hiper.TokenSource
	HiperBaseURL string
	// HTTPClient, when set, carries the Hiper calls (tests record them).
	HTTPClient *http.Client
	Format     events.Format
	// Pacer, when set, is shared with the process's other poller.
	Pacer   *pace.Tenants
	Health  *telemetry.Health
	Log     *slog.Logger
	Options schedule.Options
}

// Hiper returns the Hiper client of d.
func (d Deps) Hiper() (*hiper.Client, error) {
	opts := []hiper.Option{hiper.WithLogger(d.Log)}
	if d.HTTPClient != nil {
		opts = append(opts, hiper.WithHTTPClient(d.HTTPClient))
	}
	if d.Health != nil {
		opts = append(opts, hiper.WithMetrics(d.Health.Registry))
	}
	return hiper.New(d.HiperBaseURL, opts...)
}

// Config returns the scheduler configuration of d for a poller of kind
// running job.
func (d Deps) Config(kind syncstatus.Kind, job schedule.Job) (schedule.Config, error) {
	js, err := jetstream.New(d.NATS)
	if err != nil {
		return schedule.Config{}, fmt.Errorf("open jetstream: %w", err)
	}
	client, err := d.Hiper()
	if err != nil {
		return schedule.Config{}, err
	}
	cfg := schedule.Config{
		Kind: kind, JS: js, Namespace: d.Namespace, Directory: d.Directory, Hiper: client,
		Tokens: d.Tokens, Pacer: d.Pacer, Log: d.Log, Job: job, Options: d.Options,
	}
	if d.Health != nil {
		cfg.Registry = d.Health.Registry
	}
	return cfg, nil
}

// StartFunc starts a poller: it provisions what the poller needs and returns
// its scheduler, which the caller runs.
type StartFunc func(ctx context.Context, d Deps) (*schedule.Scheduler, error)

// Main runs the poller service named service until ctx is done: it reads
// the environment, connects to NATS and token-broker, follows the tenants,
// serves health and metrics on HTTP_ADDR, and runs the scheduler that start
// returns; then it stops in the reverse order.
func Main(ctx context.Context, name string, getenv config.Env, logOut io.Writer, start StartFunc) error {
	s, err := LoadSettings(getenv)
	if err != nil {
		return err
	}
	return service.Main(ctx, name, s.Common, getenv, logOut, func(p *service.Process) (service.Runner, error) {
		dir, err := events.WatchTenants(p.Background, p.JS, p.NS, p.Log)
		if err != nil {
			return nil, err
		}
		p.Health.AddCheck("tenants", dir.Check)
		return start(ctx, Deps{
			NATS: p.NATS, Namespace: p.NS, Directory: dir, Tokens: p.Tokens.Source, HiperBaseURL: s.HiperBaseURL,
			Format: p.Format, Pacer: pace.New(s.TenantRate, schedule.DefaultTenantBurst, nil), Health: p.Health, Log: p.Log,
			Options: schedule.Options{Concurrency: s.Concurrency, FullEvery: s.FullEvery},
		})
	})
}
