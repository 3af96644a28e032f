package events

import (
	"context"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// Defaults of the streams.
const (
	// DefaultMaxAge keeps a week of events: enough to replay a day with room
	// for a long weekend's outage.
	DefaultMaxAge           = 7 * 24 * time.Hour
	DefaultDuplicateWindow  = 2 * time.Minute
	DefaultDeadLetterMaxAge = 30 * 24 * time.Hour
	defaultKVHistory        = 1
)

// StreamOption configures EnsureStreams.
type StreamOption func(*streamOptions)

type streamOptions struct {
	maxAge           time.Duration
	duplicates       time.Duration
	deadLetterMaxAge time.Duration
	replicas         int
}

// WithMaxAge sets how long STORE and HIPER keep events.
func WithMaxAge(d time.Duration) StreamOption { return func(o *streamOptions) { o.maxAge = d } }

// WithDuplicateWindow sets how long a Nats-Msg-Id is remembered, i.e. how
// late a re-publish is still dropped.
func WithDuplicateWindow(d time.Duration) StreamOption {
	return func(o *streamOptions) { o.duplicates = d }
}

// WithDeadLetterMaxAge sets how long dead letters are kept.
func WithDeadLetterMaxAge(d time.Duration) StreamOption {
	return func(o *streamOptions) { o.deadLetterMaxAge = d }
}

// WithReplicas sets the replicas of every stream (a NATS cluster).
func WithReplicas(n int) StreamOption { return func(o *streamOptions) { o.replicas = n } }

// EnsureStreams creates the STORE, HIPER and DEADLETTER streams of ns, or
// updates them to this configuration; it is safe to call from every replica
// at every start.
func EnsureStreams(ctx context.Context, js jetstream.JetStream, ns Namespace, opts ...StreamOption) error {
	if err := ns.Validate(); err != nil {
		return fmt.Errorf("ensure streams: %w", err)
	}
	o := streamOptions{
		maxAge:           DefaultMaxAge,
		duplicates:       DefaultDuplicateWindow,
		deadLetterMaxAge: DefaultDeadLetterMaxAge,
		replicas:         ns.StreamReplicas(),
	}
	for _, opt := range opts {
		opt(&o)
	}
	for _, s := range Streams {
		cfg := jetstream.StreamConfig{
			Name:       ns.Stream(s),
			Subjects:   []string{ns.StreamSubjects(s)},
			Storage:    jetstream.FileStorage,
			Retention:  jetstream.LimitsPolicy,
			Discard:    jetstream.DiscardOld,
			MaxAge:     o.maxAge,
			Duplicates: o.duplicates,
			Replicas:   o.replicas,
		}
		switch s {
		case StreamStore:
			cfg.Description = "hipersync: events published by stores"
		case StreamHiper:
			cfg.Description = "hipersync: events hipersync publishes about Hiper"
		case StreamDeadLetter:
			cfg.Description = "hipersync: messages that could not be processed, with why"
			cfg.MaxAge = o.deadLetterMaxAge
		}
		// The server rejects a duplicate window longer than the retention.
		cfg.Duplicates = min(cfg.Duplicates, cfg.MaxAge)
		if _, err := js.CreateOrUpdateStream(ctx, cfg); err != nil {
			return fmt.Errorf("ensure stream %s: %w", cfg.Name, err)
		}
	}
	return nil
}

// KVOption configures EnsureKV.
type KVOption func(*jetstream.KeyValueConfig)

// WithKVHistory keeps n revisions per key instead of 1.
func WithKVHistory(n uint8) KVOption { return func(c *jetstream.KeyValueConfig) { c.History = n } }

// WithKVTTL expires keys after d.
func WithKVTTL(d time.Duration) KVOption { return func(c *jetstream.KeyValueConfig) { c.TTL = d } }

// WithKVDescription describes the bucket for operators.
func WithKVDescription(s string) KVOption {
	return func(c *jetstream.KeyValueConfig) { c.Description = s }
}

// WithKVReplicas sets the bucket's replicas (a NATS cluster).
func WithKVReplicas(n int) KVOption { return func(c *jetstream.KeyValueConfig) { c.Replicas = n } }

// EnsureKV creates bucket name of ns (file storage, one revision per key by
// default) or updates it to this configuration, and returns it.
func EnsureKV(ctx context.Context, js jetstream.JetStream, ns Namespace, name string, opts ...KVOption) (jetstream.KeyValue, error) {
	if err := ns.Validate(); err != nil {
		return nil, fmt.Errorf("ensure bucket %s: %w", name, err)
	}
	cfg := jetstream.KeyValueConfig{
		Bucket:   ns.Bucket(name),
		History:  defaultKVHistory,
		Storage:  jetstream.FileStorage,
		Replicas: ns.StreamReplicas(),
	}
	for _, opt := range opts {
		opt(&cfg)
	}
	kv, err := js.CreateOrUpdateKeyValue(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("ensure bucket %s: %w", cfg.Bucket, err)
	}
	return kv, nil
}
