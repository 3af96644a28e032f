package forwarder

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/hipersync/hipersync/pkg/testkit"
)

// TestGates: a tenant's slots are its own, and its waiters are bounded so
// that a stuck tenant holds at most half of a replica's handlers.
func TestGates(t *testing.T) {
	t.Parallel()
	g := newGates(1, 4) // one slot per tenant, two waiters
	ctx := context.Background()
	held := g.acquire(ctx, "acme")
	if held == nil {
		t.Fatal("first acquire refused")
	}
	if s := g.acquire(ctx, "beta"); s == nil {
		t.Fatal("another tenant was held up")
	} else {
		s.release()
	}
	waiters := func() int {
		g.mu.Lock()
		defer g.mu.Unlock()
		return g.tenant["acme"].waiters
	}
	got := make(chan bool, 2)
	for range 2 {
		go func() {
			s := g.acquire(ctx, "acme")
			if s != nil {
				s.release()
			}
			got <- s != nil
		}()
	}
	testkit.WaitFor(t, 5*time.Second, "two waiters", func() bool { return waiters() == 2 })
	if g.acquire(ctx, "acme") != nil {
		t.Fatal("a third waiter was let in")
	}
	held.release()
	first := testkit.Recv(t, got, 5*time.Second, "the first waiter")
	second := testkit.Recv(t, got, 5*time.Second, "the second waiter")
	if !first || !second {
		t.Fatal("a waiter never got the slot")
	}

	// A waiter whose delivery ends gives up its place.
	held = g.acquire(ctx, "acme")
	cctx, cancel := context.WithCancel(ctx)
	gaveUp := make(chan bool, 1)
	go func() { gaveUp <- g.acquire(cctx, "acme") == nil }()
	testkit.WaitFor(t, 5*time.Second, "a waiter", func() bool { return waiters() == 1 })
	cancel()
	if !testkit.Recv(t, gaveUp, 5*time.Second, "the cancelled waiter to give up") || waiters() != 0 {
		t.Fatal("a cancelled waiter kept its place")
	}
	held.release()
}

// TestSlotHandOver: a slot handed on with its holder's answer still being
// written lets the next holder in at once, but tells it to post only once
// that answer is recorded, and not at all when it could not be.
func TestSlotHandOver(t *testing.T) {
	t.Parallel()
	g := newGates(1, 4)
	ctx := context.Background()
	first := g.acquire(ctx, "acme")
	answer := newAnswerWrite()
	first.handOver(answer)
	next := g.acquire(ctx, "acme")
	if next == nil {
		t.Fatal("the slot handed on was not free")
	}
	ended, cancel := context.WithCancel(ctx)
	cancel()
	if err := next.settled(ended); !errors.Is(err, context.Canceled) {
		t.Fatalf("settled before the answer was recorded: %v", err)
	}
	settled := make(chan error, 1)
	go func() { settled <- next.settled(ctx) }()
	answer.finish(nil)
	if err := testkit.Recv(t, settled, 5*time.Second, "settled after the answer"); err != nil {
		t.Fatalf("settled: %v", err)
	}

	// A holder that releases without waiting leaves the answer with the
	// slot; the one after it learns that it failed.
	failed := newAnswerWrite()
	next.handOver(failed)
	g.acquire(ctx, "acme").release()
	last := g.acquire(ctx, "acme")
	if err := last.settled(ended); !errors.Is(err, context.Canceled) {
		t.Fatalf("settled on an ended context: %v", err)
	}
	failed.finish(errors.New("bucket down"))
	if err := last.settled(ctx); err == nil {
		t.Fatal("settled without the failure of the answer before")
	}
	if err := last.settled(ctx); err != nil {
		t.Fatalf("a failure told once was told again: %v", err)
	}
	last.release()
}
