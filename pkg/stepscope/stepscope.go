// Package stepscope gives one step of a test or benchmark a cleanup of its
// own: a bench that doubles its work step by step builds a stack per step,
// and must release each (its streams reserve the NATS server's storage)
// before the next, not all at the end.
package stepscope

import (
	"sync"
	"testing"
)

// TB is a testing.TB whose Cleanup functions run at Close instead of at the
// end of the test.
type TB struct {
	testing.TB
	mu       sync.Mutex
	cleanups []func()
}

// New returns a TB for one step of tb.
func New(tb testing.TB) *TB { return &TB{TB: tb} }

// Cleanup registers f to run at Close.
func (s *TB) Cleanup(f func()) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.cleanups = append(s.cleanups, f)
}

// Close runs the registered functions, last registered first.
func (s *TB) Close() {
	s.mu.Lock()
	fns := s.cleanups
	s.cleanups = nil
	s.mu.Unlock()
	for i := len(fns) - 1; i >= 0; i-- {
		fns[i]()
	}
}
