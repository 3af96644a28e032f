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
	retryHookKey struct{}
	reportKey    struct{}
)

// report tells the WithReport function, if any, what happened to stream.
func report(ctx context.Context, stream, action string) {
	if f, ok := ctx.Value(reportKey{}).(func(string, string)); ok {
		f(stream, action)
	}
}

// retryProvision runs attempt, each try bounded by provisionAttemptTimeout,
// until it succeeds, fails in a way no retry mends, or ctx ends.
func retryProvision(ctx context.Context, what string, attempt func(context.Context) error) error {
	return retry(ctx, what, "provisioning failed; retrying", permanent, attempt)
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
		log.Warn(retrying, "what", what, "attempt", n, "error", err)
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
	case 10074: // replicas > 1 not supported in non-clustered mode
		return true
	}
	return apiErr.Code == 400
}

// EnsureStream creates stream cfg, or brings an existing one to cfg when it
// differs, retrying timeouts until ctx ends. Every process may call it at
// once.
func EnsureStream(ctx context.Context, js jetstream.JetStream, cfg jetstream.StreamConfig) (jetstream.Stream, error) {
	var s jetstream.Stream
	err := retryProvision(ctx, "ensure stream "+cfg.Name, func(ctx context.Context) error {
		var err error
		s, err = js.Stream(ctx, cfg.Name)
		if errors.Is(err, jetstream.ErrStreamNotFound) {
			s, err = js.CreateStream(ctx, cfg)
			if errors.Is(err, jetstream.ErrStreamNameAlreadyInUse) {
				// Created by another process a moment ago with a
				// different configuration: compare on the next try.
				return errRaced
			}
			if err == nil {
				report(ctx, cfg.Name, "created")
			}
			return err
		}
		if err != nil {
			return err
		}
		if !streamDiffers(s.CachedInfo().Config, cfg) {
			report(ctx, cfg.Name, "unchanged")
			return nil
		}
		LoggerFrom(ctx).Info("updating stream configuration", "stream", cfg.Name)
		if s, err = js.UpdateStream(ctx, cfg); err == nil {
			report(ctx, cfg.Name, "updated")
		}
		return err
	})
	return s, err
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
	var kv jetstream.KeyValue
	err := retryProvision(ctx, "ensure bucket "+cfg.Bucket, func(ctx context.Context) error {
		var err error
		kv, err = js.KeyValue(ctx, cfg.Bucket)
		if errors.Is(err, jetstream.ErrBucketNotFound) {
			kv, err = js.CreateKeyValue(ctx, cfg)
			if errors.Is(err, jetstream.ErrBucketExists) || errors.Is(err, jetstream.ErrStreamNameAlreadyInUse) {
				return errRaced
			}
			return err
		}
		if err != nil {
			return err
		}
		st, err := kv.Status(ctx)
		if err != nil {
			return err
		}
		bs, ok := st.(*jetstream.KeyValueBucketStatus)
		if !ok || !bucketDiffers(bs.StreamInfo().Config, cfg) {
			return nil
		}
		LoggerFrom(ctx).Info("updating bucket configuration", "bucket", cfg.Bucket)
		kv, err = js.UpdateKeyValue(ctx, cfg)
		return err
	})
	return kv, err
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
