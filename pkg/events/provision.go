package events

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"slices"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/hipersync/hipersync/pkg/backoff"
	"github.com/hipersync/hipersync/pkg/jscall"
)

// Provisioning is safe when every replica of every service starts at the
// same moment against a fresh cluster: each stream, bucket and consumer is
// created, and on "already exists" compared with what is wanted and updated
// only when it really differs. A JetStream API call that times out (a
// cluster still electing leaders, a reply lost while routes settle, a node
// down) is tried again with backoff until ctx ends.
const (
	// provisionAttemptTimeout bounds one API call, so a lost reply costs
	// seconds, not the caller's whole deadline.
	provisionAttemptTimeout = 5 * time.Second
	provisionBackoffBase    = 100 * time.Millisecond
	provisionBackoffMax     = 5 * time.Second
)

// ContextWithLogger returns ctx carrying l: provisioning logs the attempts
// it retries there, and LoggerFrom returns it.
func ContextWithLogger(ctx context.Context, l *slog.Logger) context.Context {
	return withLogger(ctx, l)
}

type (
	retryHookKey   struct{}
	reportKey      struct{}
	storageHookKey struct{}
)

// ContextWithStorageHook returns ctx carrying f: provisioning under it
// calls f with each attempt JetStream refuses for want of storage
// (InsufficientStorage), the error saying what to do, and with nil once an
// attempt it had refused succeeds. package service keeps the process not
// ready meanwhile.
func ContextWithStorageHook(ctx context.Context, f func(error)) context.Context {
	return context.WithValue(ctx, storageHookKey{}, f)
}

// errCodeInsufficientStorage is JetStream's "insufficient storage resources
// available" (JSStorageResourcesExceededErr): the server cannot reserve a
// stream's MaxBytes within its max_file_store (or the account's limit).
const errCodeInsufficientStorage = 10047

// errCodeNoPeers is JetStream's "no suitable peers for placement".
const errCodeNoPeers = 10005

// InsufficientStorage reports whether err is JetStream refusing a stream
// or bucket because it cannot reserve its bound.
func InsufficientStorage(err error) bool {
	var apiErr *jetstream.APIError
	return errors.As(err, &apiErr) && apiErr.ErrorCode == errCodeInsufficientStorage
}

// StorageAdvice says what an operator does when JetStream has no room for
// a bound. No retry mends it by itself, yet provisioning keeps trying, so
// the process starts once the operator has made room.
const StorageAdvice = "the NATS server cannot reserve this bound: the namespace's bounds " +
	"(HIPERSYNC_STORE_MAX_BYTES, HIPERSYNC_HIPER_MAX_BYTES, HIPERSYNC_DEADLETTER_MAX_BYTES, " +
	"HIPERSYNC_BUCKET_MAX_BYTES for each bucket, HIPERSYNC_AUDIT_MAX_BYTES) add up to more than what is left of " +
	"the server's jetstream max_file_store (or the account's storage limit); lower the bounds or raise " +
	"max_file_store (docs/operations.md, \"Storage\"); retrying until then"

// noStorage counts the refusals (ProvisionMetrics).
var noStorage = prometheus.NewCounter(prometheus.CounterOpts{
	Name: "hipersync_provision_no_storage_total",
	Help: "Attempts to create or update a stream or bucket that JetStream refused for want of storage (insufficient storage resources); the process stays not ready and retries.",
})

// ProvisionMetrics is the collector of provisioning's own series, for a
// process's registry: hipersync_provision_no_storage_total.
func ProvisionMetrics() prometheus.Collector { return noStorage }

// report tells the WithReport function, if any, what happened to stream.
func report(ctx context.Context, stream, action string) {
	if f, ok := ctx.Value(reportKey{}).(func(string, string)); ok {
		f(stream, action)
	}
}

// retryProvision runs attempt, each try bounded by provisionAttemptTimeout,
// until it succeeds, fails in a way no retry mends, or ctx ends.
// A refusal for want of storage is counted, says what to do and goes to
// the storage hook (ContextWithStorageHook).
func retryProvision(ctx context.Context, what string, attempt func(context.Context) error) error {
	hook, _ := ctx.Value(storageHookKey{}).(func(error))
	refused := false
	return retry(ctx, what, "provisioning failed; retrying", permanent, func(ctx context.Context) error {
		err := attempt(ctx)
		switch {
		case InsufficientStorage(err):
			refused = true
			noStorage.Inc()
			err = fmt.Errorf("%w: %s", err, StorageAdvice)
			if hook != nil {
				hook(fmt.Errorf("%s: %w", what, err))
			}
		case err == nil && refused && hook != nil:
			hook(nil)
		}
		return err
	})
}

// Retry runs one JetStream call (or a few that belong together) until it
// succeeds, fails with an error that is not Transient, or ctx ends. Each
// attempt gets at most 5 s even when ctx allows more: a request sent while a
// stream elects a leader may get no answer at all, and the caller's whole
// deadline must not go into waiting for it.
func Retry(ctx context.Context, what string, attempt func(context.Context) error) error {
	return retry(ctx, what, "JetStream call failed; retrying", func(err error) bool { return !Transient(err) }, attempt)
}

// Transient reports whether err is a JetStream call's failure worth the
// same call again a moment later (jscall.Transient).
func Transient(err error) bool { return jscall.Transient(err) }

// retry is Retry and retryProvision: final says which errors end it.
func retry(ctx context.Context, what, retrying string, final func(error) bool, attempt func(context.Context) error) error {
	log := LoggerFrom(ctx)
	d := provisionBackoffBase
	for n := 1; ; n++ {
		actx, cancel := context.WithTimeout(ctx, provisionAttemptTimeout)
		err := attempt(actx)
		cancel()
		if err == nil {
			if n > 1 {
				log.Info("succeeded after retries", "what", what, "attempts", n)
			}
			return nil
		}
		if final(err) {
			return fmt.Errorf("%s: %w", what, err)
		}
		if ctx.Err() != nil {
			return fmt.Errorf("%s: %w (last attempt: %v)", what, ctx.Err(), err)
		}
		// Storage an operator must make room for is an error, not a blip.
		level := slog.LevelWarn
		if InsufficientStorage(err) {
			level = slog.LevelError
		}
		log.Log(ctx, level, retrying, "what", what, "attempt", n, "error", err)
		if hook, ok := ctx.Value(retryHookKey{}).(func(error)); ok {
			hook(fmt.Errorf("%s: %w", what, err))
		}
		// Equal jitter: processes that failed together do not retry together.
		if !backoff.Sleep(ctx, d/2+rand.N(d/2+1)) {
			return fmt.Errorf("%s: %w (last attempt: %v)", what, ctx.Err(), err)
		}
		d = min(2*d, provisionBackoffMax)
	}
}

// permanent reports whether err is a refusal that the same request will
// meet again: a bad configuration, or replicas a single server cannot keep.
// Timeouts, a JetStream that is not ready, no responders, too few peers for
// the replicas right now are all worth another try.
func permanent(err error) bool {
	var apiErr *jetstream.APIError
	if !errors.As(err, &apiErr) {
		return false
	}
	switch apiErr.ErrorCode {
	case jetstream.JSErrCodeStreamNameInUse:
		// Another process won the race with its own configuration:
		// the next attempt compares and updates.
		return false
	case errCodeNoPeers:
		// The meta leader has not heard from enough peers to place the
		// replicas: a cluster still forming, or a node restarting. The
		// process stays not ready until the peer is back.
		return false
	case 10074: // replicas > 1 not supported in non-clustered mode
		return true
	}
	return apiErr.Code == 400
}

// EnsureStream creates stream cfg, or brings an existing one to cfg when it
// differs, retrying timeouts until ctx ends. Every process may call it at
// once.
func EnsureStream(ctx context.Context, js jetstream.JetStream, cfg jetstream.StreamConfig) (jetstream.Stream, error) {
	return ensure[jetstream.Stream]{
		kind: "stream", name: cfg.Name, report: true,
		get:     func(ctx context.Context) (jetstream.Stream, error) { return js.Stream(ctx, cfg.Name) },
		missing: func(err error) bool { return errors.Is(err, jetstream.ErrStreamNotFound) },
		create:  func(ctx context.Context) (jetstream.Stream, error) { return js.CreateStream(ctx, cfg) },
		raced:   func(err error) bool { return errors.Is(err, jetstream.ErrStreamNameAlreadyInUse) },
		differs: func(_ context.Context, s jetstream.Stream) (bool, error) {
			return streamDiffers(s.CachedInfo().Config, cfg), nil
		},
		update: func(ctx context.Context) (jetstream.Stream, error) { return js.UpdateStream(ctx, cfg) },
	}.run(ctx)
}

// ensure is the one way a stream or a bucket comes to hold the
// configuration asked for while any number of processes do the same at
// once: get it; create it when missing (another process creating it a
// moment before costs one more try, which compares); update it only when
// its configuration really differs.
type ensure[T any] struct {
	kind, name string
	report     bool // tell the WithReport function what happened
	get        func(context.Context) (T, error)
	missing    func(error) bool
	create     func(context.Context) (T, error)
	raced      func(error) bool
	differs    func(context.Context, T) (bool, error)
	update     func(context.Context) (T, error)
}

func (e ensure[T]) run(ctx context.Context) (T, error) {
	say := func(action string) {
		if e.report {
			report(ctx, e.name, action)
		}
	}
	var v T
	err := retryProvision(ctx, "ensure "+e.kind+" "+e.name, func(ctx context.Context) error {
		var err error
		v, err = e.get(ctx)
		if e.missing(err) {
			v, err = e.create(ctx)
			if e.raced(err) {
				// Created by another process a moment ago, maybe with a
				// different configuration: compare on the next try.
				return errRaced
			}
			if err == nil {
				say("created")
			}
			return err
		}
		if err != nil {
			return err
		}
		differs, err := e.differs(ctx, v)
		if err != nil || !differs {
			if err == nil {
				say("unchanged")
			}
			return err
		}
		LoggerFrom(ctx).Info("updating "+e.kind+" configuration", e.kind, e.name)
		if v, err = e.update(ctx); err == nil {
			say("updated")
		}
		return err
	})
	return v, err
}

// errRaced asks retryProvision for another attempt at once-ish.
var errRaced = errors.New("created concurrently by another process")

// streamDiffers reports whether have, as the server holds it, differs
// from want in a field hipersync sets. Limits want leaves at 0 mean
// "unlimited" to the server, which stores them as -1.
func streamDiffers(have, want jetstream.StreamConfig) bool {
	limit := func(v int64) int64 {
		if v == 0 {
			return -1
		}
		return v
	}
	limit32 := func(v int32) int32 {
		if v == 0 {
			return -1
		}
		return v
	}
	return !slices.Equal(have.Subjects, want.Subjects) ||
		have.Description != want.Description ||
		have.Retention != want.Retention ||
		have.Storage != want.Storage ||
		have.Discard != want.Discard ||
		have.DiscardNewPerSubject != want.DiscardNewPerSubject ||
		have.Replicas != max(want.Replicas, 1) ||
		have.MaxAge != want.MaxAge ||
		have.MaxBytes != limit(want.MaxBytes) ||
		have.MaxMsgs != limit(want.MaxMsgs) ||
		have.MaxMsgsPerSubject != limit(want.MaxMsgsPerSubject) ||
		have.MaxMsgSize != limit32(want.MaxMsgSize) ||
		want.Duplicates != 0 && have.Duplicates != want.Duplicates ||
		have.AllowRollup != want.AllowRollup ||
		have.AllowDirect != want.AllowDirect ||
		have.DenyDelete != want.DenyDelete ||
		have.DenyPurge != want.DenyPurge
}

// EnsureConsumer creates or updates the durable consumer cfg on stream,
// retrying timeouts until ctx ends. The server treats a create with the
// same configuration as a success, so every replica may call it at once.
func EnsureConsumer(ctx context.Context, js jetstream.JetStream, stream string, cfg jetstream.ConsumerConfig) (jetstream.Consumer, error) {
	var c jetstream.Consumer
	name := cfg.Durable
	if name == "" {
		name = cfg.Name
	}
	err := retryProvision(ctx, "ensure consumer "+name+" on "+stream, func(ctx context.Context) error {
		var err error
		c, err = js.CreateOrUpdateConsumer(ctx, stream, cfg)
		return err
	})
	return c, err
}

// ensureBucket creates bucket cfg, or updates an existing one whose
// settings differ, retrying timeouts until ctx ends.
func ensureBucket(ctx context.Context, js jetstream.JetStream, cfg jetstream.KeyValueConfig) (jetstream.KeyValue, error) {
	return ensure[jetstream.KeyValue]{
		kind: "bucket", name: cfg.Bucket,
		get:     func(ctx context.Context) (jetstream.KeyValue, error) { return js.KeyValue(ctx, cfg.Bucket) },
		missing: func(err error) bool { return errors.Is(err, jetstream.ErrBucketNotFound) },
		create:  func(ctx context.Context) (jetstream.KeyValue, error) { return js.CreateKeyValue(ctx, cfg) },
		raced: func(err error) bool {
			return errors.Is(err, jetstream.ErrBucketExists) || errors.Is(err, jetstream.ErrStreamNameAlreadyInUse)
		},
		differs: func(ctx context.Context, kv jetstream.KeyValue) (bool, error) {
			st, err := kv.Status(ctx)
			if err != nil {
				return false, err
			}
			bs, ok := st.(*jetstream.KeyValueBucketStatus)
			return ok && bucketDiffers(bs.StreamInfo().Config, cfg), nil
		},
		update: func(ctx context.Context) (jetstream.KeyValue, error) { return js.UpdateKeyValue(ctx, cfg) },
	}.run(ctx)
}

// bucketDiffers compares a bucket's stream with the settings asked for.
func bucketDiffers(have jetstream.StreamConfig, want jetstream.KeyValueConfig) bool {
	history := int64(max(want.History, 1))
	maxBytes := want.MaxBytes
	if maxBytes == 0 {
		maxBytes = -1
	}
	return have.Description != want.Description ||
		have.MaxMsgsPerSubject != history ||
		have.MaxAge != want.TTL ||
		have.MaxBytes != maxBytes ||
		have.Storage != want.Storage ||
		have.Replicas != max(want.Replicas, 1)
}
