package forwarder

import (
	"context"
	"testing"
	"time"

	"github.com/hipersync/hipersync/pkg/testkit"
	"github.com/hipersync/hipersync/services/token-broker/brokertest"
)

// TestGates: a tenant's slots are its own, and its waiters are bounded so
// that a stuck tenant holds at most half of a replica's handlers.
func TestGates(t *testing.T) {
	t.Parallel()
	g := newGates(1, 4) // one slot per tenant, two waiters
	ctx := context.Background()
	release, ok := g.acquire(ctx, "acme")
	if !ok {
		t.Fatal("first acquire refused")
	}
	if r, ok := g.acquire(ctx, "beta"); !ok {
		t.Fatal("another tenant was held up")
	} else {
		r()
	}
	waiters := func() int {
		g.mu.Lock()
		defer g.mu.Unlock()
		return g.tenant["acme"].waiters
	}
	got := make(chan bool, 2)
	for range 2 {
		go func() {
			r, ok := g.acquire(ctx, "acme")
			if ok {
				r()
			}
			got <- ok
		}()
	}
	brokertest.WaitFor(t, 5*time.Second, "two waiters", func() bool { return waiters() == 2 })
	if _, ok := g.acquire(ctx, "acme"); ok {
		t.Fatal("a third waiter was let in")
	}
	release()
	first := testkit.Recv(t, got, 5*time.Second, "the first waiter")
	second := testkit.Recv(t, got, 5*time.Second, "the second waiter")
	if !first || !second {
		t.Fatal("a waiter never got the slot")
	}

	// A waiter whose delivery ends gives up its place.
	release, _ = g.acquire(ctx, "acme")
	cctx, cancel := context.WithCancel(ctx)
	gaveUp := make(chan bool, 1)
	go func() { _, ok := g.acquire(cctx, "acme"); gaveUp <- !ok }()
	brokertest.WaitFor(t, 5*time.Second, "a waiter", func() bool { return waiters() == 1 })
	cancel()
	if !<-gaveUp || waiters() != 0 {
		t.Fatal("a cancelled waiter kept its place")
	}
	release()
}
