// Package pace spaces each tenant's Hiper calls: Hiper publishes no rate
// limit, so a client must pace itself. One token bucket per tenant
// (golang.org/x/time/rate), on a clock that tests can set.
package pace

import (
	"context"
	"fmt"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// Tenants paces each tenant at perSecond calls a second, with bursts of
// burst.
type Tenants struct {
	limit rate.Limit
	burst int
	now   func() time.Time

	mu       sync.Mutex
	limiters map[string]*rate.Limiter
}

// New returns Tenants pacing at perSecond calls a second per tenant (≤ 0:
// no pacing) with bursts of burst (at least 1), on the clock now (nil: the
// wall clock).
func New(perSecond float64, burst int, now func() time.Time) *Tenants {
	limit := rate.Limit(perSecond)
	if perSecond <= 0 {
		limit = rate.Inf
	}
	if now == nil {
		now = time.Now
	}
	return &Tenants{limit: limit, burst: max(burst, 1), now: now, limiters: map[string]*rate.Limiter{}}
}

func (p *Tenants) limiter(tenantID string) *rate.Limiter {
	p.mu.Lock()
	defer p.mu.Unlock()
	l := p.limiters[tenantID]
	if l == nil {
		l = rate.NewLimiter(p.limit, p.burst)
		p.limiters[tenantID] = l
	}
	return l
}

// Wait blocks until tenant may make one more call, or ctx is done. Callers
// queue up in order: each takes its call at once, even before it is due,
// and waits for its own share of the rate.
func (p *Tenants) Wait(ctx context.Context, tenantID string) error {
	if p == nil {
		return nil
	}
	now := p.now()
	r := p.limiter(tenantID).ReserveN(now, 1)
	wait := r.DelayFrom(now)
	if wait == 0 {
		return nil
	}
	t := time.NewTimer(wait)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		r.CancelAt(p.now())
		return fmt.Errorf("wait for tenant pace: %w", context.Cause(ctx))
	}
}

// Book takes tenant's next free call: at once (it returns zero) when the
// tenant may call now, else the first call no one has booked yet, and it
// returns how long until then. Unlike Wait it never blocks, so a busy
// tenant's work can go back to a queue meanwhile; the call stays booked,
// so callers are served first come, first served, each at a definite time.
// The caller makes its call then without booking again (the call is paid
// for), and should make it: a booked call not made is lost to the tenant.
func (p *Tenants) Book(tenantID string) time.Duration {
	if p == nil {
		return 0
	}
	now := p.now()
	return p.limiter(tenantID).ReserveN(now, 1).DelayFrom(now)
}

// Forget drops a tenant's bucket (it left).
func (p *Tenants) Forget(tenantID string) {
	p.mu.Lock()
	delete(p.limiters, tenantID)
	p.mu.Unlock()
}
