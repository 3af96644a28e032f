package admin

import (
	"errors"
	"sync"

	"golang.org/x/time/rate"

	"github.com/hipersync/hipersync/services/console/auth"
)

// CallLimit bounds the calls each store-role caller (an API key's or a
// token's subject) makes through the API: PerSecond on average, Burst at
// once. A store platform's backend calling for one store stays far below
// it; a key looping on calls is refused (rate_limited) instead of loading
// the deployment and pushing every tenant's oldest entries out of the
// shared audit log. Operators are not limited.
type CallLimit struct {
	PerSecond float64
	Burst     int
}

// DefaultStoreCalls is CallLimit's default (HIPERSYNC_STORE_CALLS_PER_SECOND,
// HIPERSYNC_STORE_CALLS_BURST).
var DefaultStoreCalls = CallLimit{PerSecond: 50, Burst: 200}

// ErrRateLimited refuses a store caller's call beyond its CallLimit.
var ErrRateLimited = errors.New("too many calls from this key: slow down and retry in a few seconds")

// maxCallers bounds the limiters kept; beyond it, those of callers idle
// long enough to have their whole burst back are forgotten (they would
// start afresh anyway).
const maxCallers = 10000

// callers holds one token bucket per store-role caller.
type callers struct {
	limit CallLimit
	mu    sync.Mutex
	of    map[string]*rate.Limiter
}

func newCallers(l CallLimit) *callers {
	if l.PerSecond <= 0 || l.Burst <= 0 {
		l = DefaultStoreCalls
	}
	return &callers{limit: l, of: map[string]*rate.Limiter{}}
}

// allow takes one call from p's bucket, and reports whether it was there.
func (c *callers) allow(p auth.Principal) bool {
	if p.Operator() {
		return true
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	l := c.of[p.Subject]
	if l == nil {
		if len(c.of) >= maxCallers {
			for s, idle := range c.of {
				if idle.Tokens() >= float64(c.limit.Burst) {
					delete(c.of, s)
				}
			}
		}
		l = rate.NewLimiter(rate.Limit(c.limit.PerSecond), c.limit.Burst)
		c.of[p.Subject] = l
	}
	return l.Allow()
}
