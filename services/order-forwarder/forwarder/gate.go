package forwarder

import (
	"context"
	"sync"
)

// gates bound, per tenant, the sales orders one replica is posting at once
// (Config.TenantInflight) and the handlers waiting to. Waiting is bounded
// too, so that one tenant's backlog or one slow Hiper account can hold at
// most half of the replica's handlers: the others keep serving other
// tenants.
type gates struct {
	size       int
	maxWaiters int

	mu     sync.Mutex
	tenant map[string]*gate
}

type gate struct {
	slots   chan struct{}
	waiters int
}

func newGates(size, concurrency int) *gates {
	return &gates{size: size, maxWaiters: max(1, concurrency/2), tenant: map[string]*gate{}}
}

// acquire takes one of the tenant's slots, waiting if a handler may still
// wait. It returns false, without a slot, when the tenant already has as
// many waiters as allowed or ctx ends; the caller hands the message back.
func (g *gates) acquire(ctx context.Context, tenant string) (release func(), ok bool) {
	g.mu.Lock()
	t := g.tenant[tenant]
	if t == nil {
		t = &gate{slots: make(chan struct{}, g.size)}
		g.tenant[tenant] = t
	}
	select {
	case t.slots <- struct{}{}:
		g.mu.Unlock()
		return func() { <-t.slots }, true
	default:
	}
	if t.waiters >= g.maxWaiters {
		g.mu.Unlock()
		return nil, false
	}
	t.waiters++
	g.mu.Unlock()
	defer func() {
		g.mu.Lock()
		t.waiters--
		g.mu.Unlock()
	}()
	select {
	case t.slots <- struct{}{}:
		return func() { <-t.slots }, true
	case <-ctx.Done():
		return nil, false
	}
}
