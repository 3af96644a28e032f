// Package backoff is the one exponential backoff of hipersync: how long to
// wait after failures in a row, before a retry, a redelivery, a poll or a
// restart of a loop.
package backoff

import (
	"context"
	"math/rand/v2"
	"time"
)

// Exp waits Base after the first failure, doubling with each failure in a
// row, up to Max.
type Exp struct {
	Base, Max time.Duration
}

// Step is the delay after n failures in a row (n ≥ 1; less counts as 1):
// Base·2^(n-1), at most Max.
func (e Exp) Step(n int) time.Duration {
	d := e.Base
	for i := 1; i < n && d < e.Max; i++ {
		d *= 2
	}
	return min(d, e.Max)
}

// Jittered is Step(n) with equal jitter: half of it fixed, so a retry never
// comes at once, half at random, so replicas and tenants that failed
// together do not retry in step.
func (e Exp) Jittered(n int) time.Duration {
	d := e.Step(n)
	half := d / 2
	return half + rand.N(d-half+1)
}

// Restart spaces the restarts of a loop that keeps failing (a consumer's
// fetch, a poll queue): Restart.Step(n) after n failures in a row.
var Restart = Exp{Base: 100 * time.Millisecond, Max: 5 * time.Second}

// Sleep waits d, and reports false when ctx ends first: the wait between
// two attempts.
func Sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
