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
	// free holds the tenant's slots not taken.
	free    chan *slot
	waiters int
}

// slot is one of a tenant's sending slots. A holder may hand it on while
// its own answer is still being written (handOver): the next holder may
// then write its own order's sending, which the connection delivers behind
// that answer, but must not post before the answer landed (settled).
type slot struct {
	g *gate
	// prev is the answer of an earlier holder still being recorded, nil
	// when none is.
	prev *answerWrite
}

// answerWrite is the outcome, once done is closed, of recording a holder's
// answer from Hiper.
type answerWrite struct {
	done chan struct{}
	err  error
}

func newAnswerWrite() *answerWrite { return &answerWrite{done: make(chan struct{})} }

// finish records the outcome; once only.
func (a *answerWrite) finish(err error) {
	a.err = err
	close(a.done)
}

func newGates(size, concurrency int) *gates {
	return &gates{size: size, maxWaiters: max(1, concurrency/2), tenant: map[string]*gate{}}
}

// acquire takes one of the tenant's slots, waiting if a handler may still
// wait. It returns nil, without a slot, when the tenant already has as many
// waiters as allowed or ctx ends; the caller hands the message back.
func (g *gates) acquire(ctx context.Context, tenant string) *slot {
	g.mu.Lock()
	t := g.tenant[tenant]
	if t == nil {
		t = &gate{free: make(chan *slot, g.size)}
		for range g.size {
			t.free <- &slot{g: t}
		}
		g.tenant[tenant] = t
	}
	select {
	case s := <-t.free:
		g.mu.Unlock()
		return s
	default:
	}
	if t.waiters >= g.maxWaiters {
		g.mu.Unlock()
		return nil
	}
	t.waiters++
	g.mu.Unlock()
	defer func() {
		g.mu.Lock()
		t.waiters--
		g.mu.Unlock()
	}()
	select {
	case s := <-t.free:
		return s
	case <-ctx.Done():
		return nil
	}
}

// release gives the slot back. An earlier holder's answer not waited for
// stays with the slot, for whoever posts next.
func (s *slot) release() { s.g.free <- s }

// handOver gives the slot back while the holder's answer is being
// recorded: the next holder posts only once a has finished without error.
// The holder must have handed the answer's write to the connection
// already, so that the next holder's writes land behind it.
func (s *slot) handOver(a *answerWrite) {
	s.prev = a
	s.g.free <- s
}

// pending reports whether an earlier holder's answer is still being
// recorded on this slot: settled would wait.
func (s *slot) pending() bool {
	if s.prev == nil {
		return false
	}
	select {
	case <-s.prev.done:
		return false
	default:
		return true
	}
}

// settled waits until no earlier holder's answer is being recorded on
// this slot, and returns the error of one that could not be recorded: then
// nothing may be posted on the slot until that order is settled some other
// way (another try, the lease's end). ctx ends the wait with its error.
func (s *slot) settled(ctx context.Context) error {
	a := s.prev
	if a == nil {
		return nil
	}
	select {
	case <-a.done:
	case <-ctx.Done():
		return ctx.Err()
	}
	// Told to this holder, which will not post: the order that failed is
	// settled by another try or its lease's end, not by holding the slot.
	s.prev = nil
	return a.err
}
