// Package simtest starts hiper-sim for tests: a real HTTP server on a local
// port, closed when the test ends.
package simtest

import (
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/hipersync/hipersync/pkg/hipersim"
)

// Server is a running hiper-sim.
type Server struct {
	Sim  *hipersim.Sim
	URL  string // the API base, ending in /api/v1: what HIPER_BASE_URL would be
	Root string // http://127.0.0.1:port, where the control API lives under /_sim
}

// Start runs a Sim configured by cfg on a local port until the test ends.
func Start(t testing.TB, cfg hipersim.Config) *Server {
	t.Helper()
	sim, err := hipersim.New(cfg)
	if err != nil {
		t.Fatalf("start hiper-sim: %v", err)
	}
	srv := httptest.NewServer(sim.Handler())
	t.Cleanup(srv.Close)
	return &Server{Sim: sim, URL: srv.URL + hipersim.APIPrefix, Root: srv.URL}
}

// Clock is a settable clock for Config.Now, so tests expire tokens and let
// orders be processed without sleeping. It is safe for concurrent use.
type Clock struct {
	mu  sync.Mutex
	now time.Time
}

// NewClock returns a Clock showing start.
func NewClock(start time.Time) *Clock { return &Clock{now: start} }

// Now is the clock's current time; pass it as Config.Now.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// Advance moves the clock forward by d.
func (c *Clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}
