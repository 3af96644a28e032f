package events

import (
	"context"
	"errors"
	"fmt"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/hipersync/hipersync/pkg/kvwatch"
)

// Errors of Update.
var (
	// ErrConflict is a compare-and-set that lost: the value changed (or was
	// created) since it was read. Update wraps it when it lost
	// MaxConflicts races in a row.
	ErrConflict = errors.New("changed concurrently")
	// ErrNoChange, from an Update change function, means there is nothing
	// to write: Update returns the current value as it is.
	ErrNoChange = errors.New("no change")
)

// MaxConflicts bounds the compare-and-set attempts of one Update: the
// writers of one key are few (a record's poller and the intake of its
// events, two replicas taking one lease), so losing this many races in a
// row means something is wrong.
const MaxConflicts = 16

// KeySubject is the subject a put to key of bucket is published on (no
// domain, no API prefix): a raw publish there is a key-value write, which
// may go out without waiting for the one before it.
// It is kvwatch's, which reads keys by it and stands below this package.
func KeySubject(bucket, key string) string { return kvwatch.KeySubject(bucket, key) }

// Conflict reports whether a key-value write lost a compare-and-set race:
// another writer created the key (Create) or changed it since the revision
// read (Update, or Delete with LastRevision). Replicated streams report it
// with another code than single-replica ones; both count.
func Conflict(err error) bool {
	var apiErr *jetstream.APIError
	return errors.Is(err, ErrConflict) || errors.Is(err, jetstream.ErrKeyExists) ||
		errors.Is(err, jetstream.ErrKeyRevisionMismatch) ||
		errors.As(err, &apiErr) && (apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequence ||
			// a replicated stream's code for the same (an async publish's
			// error is not mapped by the client)
			apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequenceConstant)
}

// Codec turns a value stored under a key into a T and back.
type Codec[T any] struct {
	Encode func(T) ([]byte, error)
	Decode func([]byte) (T, error)
}

// Get reads key's value; found is false (and the value zero) when the key
// has none or was deleted. rev is the revision to compare-and-set on.
func Get[T any](ctx context.Context, kv jetstream.KeyValue, key string, c Codec[T]) (v T, rev uint64, found bool, err error) {
	var e jetstream.KeyValueEntry
	err = Retry(ctx, "read "+key, func(ctx context.Context) error {
		var err error
		e, err = kv.Get(ctx, key)
		return err
	})
	if errors.Is(err, jetstream.ErrKeyNotFound) || errors.Is(err, jetstream.ErrKeyDeleted) {
		return v, 0, false, nil
	}
	if err != nil {
		return v, 0, false, err
	}
	if v, err = c.Decode(e.Value()); err != nil {
		return v, 0, false, fmt.Errorf("read %s: %w", key, err)
	}
	return v, e.Revision(), true, nil
}

// Update changes key's value by compare-and-set: it reads the value (the
// zero T when there is none), lets change decide on it, and writes what
// change returns, on the revision read (a create when there was none). When
// another writer got there first it reads again and lets change decide
// again, at most MaxConflicts times. It returns the value as stored and its
// revision. change returns ErrNoChange to write nothing (Update then returns
// the current value); any other error from change stops Update and is
// returned as is, with the current value.
func Update[T any](ctx context.Context, kv jetstream.KeyValue, key string, c Codec[T], change func(cur T) (T, error)) (T, uint64, error) {
	var zero T
	for range MaxConflicts {
		cur, rev, found, err := Get(ctx, kv, key, c)
		if err != nil {
			return zero, 0, err
		}
		next, err := change(cur)
		if errors.Is(err, ErrNoChange) {
			return cur, rev, nil
		}
		if err != nil {
			return cur, rev, err
		}
		b, err := c.Encode(next)
		if err != nil {
			return zero, 0, fmt.Errorf("write %s: %w", key, err)
		}
		// A write whose answer was lost is tried again; if the first one
		// landed, the second loses the compare-and-set, and the loop reads
		// the value as written and lets change decide on it.
		var written uint64
		err = Retry(ctx, "write "+key, func(ctx context.Context) error {
			var err error
			if found {
				written, err = kv.Update(ctx, key, b, rev)
			} else {
				written, err = kv.Create(ctx, key, b)
			}
			return err
		})
		if err == nil {
			return next, written, nil
		}
		if !Conflict(err) {
			return zero, 0, err
		}
		if ctx.Err() != nil {
			return zero, 0, fmt.Errorf("write %s: %w", key, ctx.Err())
		}
	}
	return zero, 0, fmt.Errorf("write %s: lost %d compare-and-set races in a row: %w", key, MaxConflicts, ErrConflict)
}
