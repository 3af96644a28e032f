package forwarder

import (
	"context"
	"errors"
	"time"

	"github.com/hipersync/hipersync/pkg/backoff"
	"github.com/hipersync/hipersync/pkg/hiper"
	"github.com/hipersync/hipersync/pkg/tenant"
)

// verdict is what a failed attempt to create (or cancel) a sales order
// means for the order.
type verdict int

const (
	// notSent: Hiper surely did not act; trying again is safe.
	notSent verdict = iota
	// paused: the tenant is paused; the order waits without counting it as
	// an attempt.
	paused
	// refused: Hiper answered with its reasons; trying again fails again.
	refused
	// unknown: the request may have taken effect; never repeat a create.
	unknown
)

// judge classes an error of the token call or of a Hiper call, by the
// decision table of docs/order-forwarder.md: a create is tried again only
// when the answer proves Hiper did not store it (pkg/hiper leaves
// ErrOutcomeUnknown off exactly those): the connection was never made or
// the request never written, a 429, a 401 twice, or Hiper's own JSON
// envelope refusing it. Anything else that reached Hiper (a proxy's page
// or an empty body on a 5xx, a reset or a timeout after the request was
// written, an unreadable success) is unknown: never repeated.
func judge(err error) verdict {
	if errors.Is(err, tenant.ErrPaused) {
		return paused
	}
	var he *hiper.Error
	if !errors.As(err, &he) {
		// The token source's failures (token-broker, the tenant's state)
		// and our own deadline on it: Hiper was not called.
		return notSent
	}
	switch {
	case errors.Is(err, hiper.ErrRejected):
		return refused
	case errors.Is(err, hiper.ErrRateLimited), errors.Is(err, hiper.ErrUnauthorized), errors.Is(err, hiper.ErrNotFound):
		return notSent
	case errors.Is(err, hiper.ErrTransient) && !errors.Is(err, hiper.ErrOutcomeUnknown):
		return notSent
	}
	return unknown
}

// backoff is the delay before attempt n+1 after n failed: base·2^(n-1)
// capped at max, with equal jitter so replicas and tenants do not retry in
// step. Hiper's own Retry-After wins when it asked for longer.
func (c Config) backoff(attempts int, err error) time.Duration {
	return hiper.HonourRetryAfter(backoff.Exp{Base: c.RetryBase, Max: c.RetryMax}.Jittered(attempts), err)
}

// busyBackoff spaces the returns of a message whose tenant's slots and
// waiting places are all taken, growing with each such delivery so a long
// backlog does not spin.
var busyBackoff = backoff.Exp{Base: 50 * time.Millisecond, Max: 2 * time.Second}

// busyDelay is how long a message waits before coming back when its
// tenant is busy (busyBackoff).
func busyDelay(deliveries uint64) time.Duration { return busyBackoff.Jittered(int(deliveries)) }

// primed is a TokenSource whose first token was already fetched: the
// forwarder gets it before recording that it is sending, so a token-broker
// or tenant problem never leaves an order in sending.
type primed struct {
	hiper.TokenSource
	first string
	used  bool
}

func (p *primed) Token(ctx context.Context) (string, error) {
	if !p.used {
		p.used = true
		return p.first, nil
	}
	return p.TokenSource.Token(ctx)
}
