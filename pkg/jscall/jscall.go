// Package jscall says which failures of a JetStream call are worth the same
// call again a moment later: the one place pkg/events' retries and
// pkg/kvwatch's watches take that from.
package jscall

import (
	"context"
	"errors"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Timeout bounds one attempt of a JetStream call, whatever the caller's
// deadline: a request sent while a stream elects a leader may get no
// answer at all, and the caller's whole deadline must not go into waiting
// for it.
const Timeout = 5 * time.Second

// Transient reports whether err is a JetStream call's failure that the same
// call may well not meet a moment later: no answer in time, nobody to
// answer, a cluster or stream without a leader for now.
func Transient(err error) bool {
	var apiErr *jetstream.APIError
	return errors.Is(err, context.DeadlineExceeded) || errors.Is(err, nats.ErrTimeout) ||
		errors.Is(err, nats.ErrNoResponders) || errors.Is(err, jetstream.ErrNoStreamResponse) ||
		errors.Is(err, jetstream.ErrConsumerLeadershipChanged) ||
		errors.As(err, &apiErr) && apiErr.Code == 503
}
