package schedule

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/hipersync/hipersync/pkg/hiper"
)

// Defaults of a Pacer.
const (
	DefaultTenantRate  = 5.0
	DefaultTenantBurst = 10
)

// Pacer spaces each tenant's Hiper calls: a token bucket per tenant, rate
// calls a second with bursts of burst. Hiper publishes no rate limit, so a
// client must pace itself; the pollers of one process share one Pacer.
type Pacer struct {
	rate  float64
	burst float64

	mu      sync.Mutex
	buckets map[string]*paceBucket
}

type paceBucket struct {
	tokens float64
	last   time.Time
}

// NewPacer returns a Pacer of rate calls a second per tenant (≤ 0: no
// pacing) with bursts of burst.
func NewPacer(rate float64, burst int) *Pacer {
	return &Pacer{rate: rate, burst: float64(max(burst, 1)), buckets: map[string]*paceBucket{}}
}

// Wait blocks until tenant may make one more call, or ctx is done.
func (p *Pacer) Wait(ctx context.Context, tenantID string) error {
	if p == nil || p.rate <= 0 {
		return nil
	}
	p.mu.Lock()
	now := time.Now()
	b := p.buckets[tenantID]
	if b == nil {
		b = &paceBucket{tokens: p.burst, last: now}
		p.buckets[tenantID] = b
	}
	b.tokens = min(p.burst, b.tokens+now.Sub(b.last).Seconds()*p.rate)
	b.last = now
	// Take the token now, even if it is not there yet: callers queue up in
	// order and each waits for its own share of the rate.
	b.tokens--
	wait := time.Duration(0)
	if b.tokens < 0 {
		wait = time.Duration(-b.tokens / p.rate * float64(time.Second))
	}
	p.mu.Unlock()
	if wait == 0 {
		return nil
	}
	t := time.NewTimer(wait)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("wait for tenant pace: %w", context.Cause(ctx))
	}
}

// Forget drops a tenant's bucket (it left).
func (p *Pacer) Forget(tenantID string) {
	p.mu.Lock()
	delete(p.buckets, tenantID)
	p.mu.Unlock()
}

// pacedTokens is a tenant's TokenSource behind the Pacer: a hiper.Session
// asks for a token before every call, so every call waits its turn there,
// and is counted.
type pacedTokens struct {
	hiper.TokenSource
	tenant string
	pacer  *Pacer
	calls  func()
}

func (s pacedTokens) Token(ctx context.Context) (string, error) {
	if err := s.pacer.Wait(ctx, s.tenant); err != nil {
		return "", err
	}
	s.calls()
	return s.TokenSource.Token(ctx)
}
