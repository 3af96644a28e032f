package watcher

import (
	"sync"
	"time"
)

// pace spaces one replica's Hiper calls per tenant: a token bucket per
// tenant of rate calls a second, holding up to burst. Unlike a limiter that
// makes callers wait, it says how long until the next call, so a busy
// tenant's orders go back to the queue for that long instead of holding
// the poll slots every tenant shares.
type pace struct {
	rate  float64
	burst float64
	now   func() time.Time

	mu      sync.Mutex
	buckets map[string]*paceBucket
}

type paceBucket struct {
	tokens float64
	last   time.Time
}

func newPace(rate float64, burst int, now func() time.Time) *pace {
	return &pace{rate: rate, burst: float64(max(burst, 1)), now: now, buckets: map[string]*paceBucket{}}
}

// take takes a call for tenant: zero when it may go now, else how long
// until it may.
func (p *pace) take(tenantID string) time.Duration {
	p.mu.Lock()
	defer p.mu.Unlock()
	now := p.now()
	b := p.buckets[tenantID]
	if b == nil {
		b = &paceBucket{tokens: p.burst, last: now}
		p.buckets[tenantID] = b
	}
	b.tokens = min(p.burst, b.tokens+now.Sub(b.last).Seconds()*p.rate)
	b.last = now
	if b.tokens >= 1 {
		b.tokens--
		return 0
	}
	return time.Duration((1 - b.tokens) / p.rate * float64(time.Second))
}

// forget drops a tenant's bucket.
func (p *pace) forget(tenantID string) {
	p.mu.Lock()
	delete(p.buckets, tenantID)
	p.mu.Unlock()
}
