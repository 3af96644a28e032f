package feed

import (
	"context"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/hipersync/hipersync/pkg/events"
	"github.com/hipersync/hipersync/pkg/poller"
	"github.com/hipersync/hipersync/pkg/schedule"
	"github.com/hipersync/hipersync/pkg/syncstatus"
	"github.com/hipersync/hipersync/pkg/tenant"
)

// maxInFlight bounds the events and writes a replica has in flight without
// an acknowledgement, across all its runs.
const maxInFlight = 16_384

// Poller describes a poller service for Start: what it is called, where it
// keeps its product states, and its own rules.
type Poller struct {
	// Service names it in logs and in ce-source ("hipersync/<Service>").
	Service string
	Kind    syncstatus.Kind
	// StateBucket (before the namespace) holds its product states.
	StateBucket      string
	StateDescription string
	// Provision creates what else the poller writes (the barcode index).
	Provision func(ctx context.Context, js jetstream.JetStream, ns events.Namespace) error
	// NewProcessor returns the Processor of one run.
	NewProcessor func(r *schedule.Run, states *States) Processor
	// Refresh is JobConfig.Refresh.
	Refresh func(ctx context.Context, r *schedule.Run, states *States, sink *Sink) error
	// Enabled is JobConfig.Enabled.
	Enabled func(tenant.Settings) bool
}

// Start provisions p's buckets and returns its scheduler, which the caller
// runs: what each poller's Start does, for the service's main and for
// in-process runs (the dev run, tests).
func Start(ctx context.Context, d poller.Deps, p Poller) (*schedule.Scheduler, error) {
	js, err := jetstream.New(d.NATS)
	if err != nil {
		return nil, err
	}
	states, err := events.EnsureKV(ctx, js, d.Namespace, p.StateBucket, events.WithKVDescription(p.StateDescription))
	if err != nil {
		return nil, err
	}
	if p.Provision != nil {
		if err := p.Provision(ctx, js, d.Namespace); err != nil {
			return nil, err
		}
	}
	popts := []events.Option{events.WithLogger(d.Log)}
	if d.Health != nil {
		popts = append(popts, events.WithMetrics(d.Health.Registry))
	}
	pub := events.NewPublisher(js, d.Namespace, "hipersync/"+p.Service, d.Format, popts...)
	job := NewJob(JobConfig{
		Kind:         p.Kind,
		Namespace:    d.Namespace,
		States:       states,
		Sink:         NewSink(pub, events.NewAsyncPublisher(d.NATS, maxInFlight)),
		Publisher:    pub,
		NewProcessor: p.NewProcessor,
		Refresh:      p.Refresh,
		Enabled:      p.Enabled,
	})
	cfg, err := d.Config(p.Kind, job)
	if err != nil {
		return nil, err
	}
	return schedule.New(ctx, cfg)
}
