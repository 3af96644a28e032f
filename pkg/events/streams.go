package events

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/hipersync/hipersync/pkg/tenant"
)

// Defaults of the streams (more in Limits).
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
	limits     Limits
	duplicates time.Duration
	replicas   int
	onRetry    func(error)
	report     func(stream, action string)
}

// WithMaxAge sets how long STORE and HIPER keep events (instead of
// ns.Limits.MaxAge).
func WithMaxAge(d time.Duration) StreamOption { return func(o *streamOptions) { o.limits.MaxAge = d } }

// WithDuplicateWindow sets how long a Nats-Msg-Id is remembered, i.e. how
// late a re-publish is still dropped.
func WithDuplicateWindow(d time.Duration) StreamOption {
	return func(o *streamOptions) { o.duplicates = d }
}

// WithDeadLetterMaxAge sets how long dead letters are kept (instead of
// ns.Limits.DeadLetterMaxAge).
func WithDeadLetterMaxAge(d time.Duration) StreamOption {
	return func(o *streamOptions) { o.limits.DeadLetterMaxAge = d }
}

// WithReport has f told, per stream, whether it was "created", "updated"
// or "unchanged" (hipersync provision prints it).
func WithReport(f func(stream, action string)) StreamOption {
	return func(o *streamOptions) { o.report = f }
}

// WithReplicas sets the replicas of every stream (a NATS cluster).
func WithReplicas(n int) StreamOption { return func(o *streamOptions) { o.replicas = n } }

// WithRetryHook has f called with each failed attempt that provisioning
// retries (a service shows it on /readyz while it waits).
func WithRetryHook(f func(error)) StreamOption { return func(o *streamOptions) { o.onRetry = f } }

// EnsureStreams creates the STORE, HIPER and DEADLETTER streams of ns, or
// updates them to this configuration; it is safe to call from every replica
// at every start, all at once (EnsureStream).
func EnsureStreams(ctx context.Context, js jetstream.JetStream, ns Namespace, opts ...StreamOption) error {
	if err := ns.Validate(); err != nil {
		return fmt.Errorf("ensure streams: %w", err)
	}
	o := streamOptions{
		limits:     ns.Limits,
		duplicates: DefaultDuplicateWindow,
		replicas:   ns.StreamReplicas(),
	}
	for _, opt := range opts {
		opt(&o)
	}
	o.limits = o.limits.withDefaults()
	if o.onRetry != nil {
		ctx = context.WithValue(ctx, retryHookKey{}, o.onRetry)
	}
	if o.report != nil {
		ctx = context.WithValue(ctx, reportKey{}, o.report)
	}
	for _, s := range Streams {
		cfg := jetstream.StreamConfig{
			Name:       ns.Stream(s),
			Subjects:   []string{ns.StreamSubjects(s)},
			Storage:    jetstream.FileStorage,
			Retention:  jetstream.LimitsPolicy,
			Discard:    jetstream.DiscardOld,
			MaxAge:     o.limits.MaxAge,
			Duplicates: o.duplicates,
			Replicas:   o.replicas,
		}
		switch s {
		case StreamStore:
			cfg.Description = "hipersync: events published by stores"
			cfg.MaxBytes = o.limits.StoreMaxBytes
		case StreamHiper:
			cfg.Description = "hipersync: events hipersync publishes about Hiper"
			cfg.MaxBytes = o.limits.HiperMaxBytes
		case StreamDeadLetter:
			cfg.Description = "hipersync: messages that could not be processed, with why"
			cfg.MaxAge = o.limits.DeadLetterMaxAge
			cfg.MaxBytes = o.limits.DeadLetterMaxBytes
		}
		// The server rejects a duplicate window longer than the retention.
		cfg.Duplicates = min(cfg.Duplicates, cfg.MaxAge)
		if _, err := EnsureStream(ctx, js, cfg); err != nil {
			return err
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
// default) or updates it to this configuration, and returns it. Its Get
// reads from the bucket's stream leader when it has more than one replica
// (leaderKV), so that a value written is never read older again.
func EnsureKV(ctx context.Context, js jetstream.JetStream, ns Namespace, name string, opts ...KVOption) (jetstream.KeyValue, error) {
	if err := ns.Validate(); err != nil {
		return nil, fmt.Errorf("ensure bucket %s: %w", name, err)
	}
	cfg := jetstream.KeyValueConfig{
		Bucket:   ns.Bucket(name),
		History:  defaultKVHistory,
		Storage:  jetstream.FileStorage,
		Replicas: ns.StreamReplicas(),
		MaxBytes: ns.BucketMaxBytes(),
	}
	for _, opt := range opts {
		opt(&cfg)
	}
	kv, err := ensureBucket(ctx, js, cfg)
	if err != nil {
		return nil, err
	}
	return newLeaderKV(js, kv, cfg.Replicas), nil
}

// WatchTenants ensures ns's tenants bucket and follows it until ctx ends:
// the directory every service that works per tenant reads.
func WatchTenants(ctx context.Context, js jetstream.JetStream, ns Namespace, log *slog.Logger) (*tenant.Directory, error) {
	kv, err := EnsureKV(ctx, js, ns, tenant.Bucket)
	if err != nil {
		return nil, err
	}
	return tenant.WatchDirectory(ctx, kv, log)
}
