// Package renew keeps something held by renewing it on a period: a lease, a
// lock. It is the one loop of hipersync that does so.
package renew

import (
	"context"
	"time"
)

// Every calls renew every period, in a goroutine of its own, until renew
// returns false (what it held is lost), ctx ends, or stop is called. stop
// returns once the goroutine has ended, so that nothing renews after it.
// renew gets a context that ends with stop.
func Every(ctx context.Context, period time.Duration, renew func(ctx context.Context) bool) (stop func()) {
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTicker(period)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				if !renew(ctx) {
					return
				}
			}
		}
	}()
	return func() { cancel(); <-done }
}
