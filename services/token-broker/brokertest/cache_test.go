package brokertest_test

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hipersync/hipersync/pkg/brokerclient"
	"github.com/hipersync/hipersync/pkg/hiper"
	"github.com/hipersync/hipersync/pkg/hipersim"
	"github.com/hipersync/hipersync/services/token-broker/brokertest"
)

// The process's token cache (brokerclient.Cache) against a real
// token-broker and hiper-sim: what it spares the broker is counted on the
// broker's side.

// clock is a settable time for a cache's margin.
type clock struct{ at atomic.Int64 }

func (c *clock) set(t time.Time)      { c.at.Store(t.UnixNano()) }
func (c *clock) now() time.Time       { return time.Unix(0, c.at.Load()) }
func newClock(t time.Time) *clock     { c := &clock{}; c.set(t); return c }
func products(s *hiper.Session) error { _, err := s.Products(context.Background(), 0); return err }

func stack(t *testing.T) (*brokertest.Stack, *hiper.Client) {
	t.Helper()
	st := brokertest.Start(t, brokertest.Options{Seed: hipersim.SeedDemo})
	client, err := hiper.New(st.Sim.URL)
	if err != nil {
		t.Fatal(err)
	}
	return st, client
}

// One token for many calls, kept while token-broker is down, given up
// TokenMargin before the broker's expiry.
func TestCacheAsksOncePerToken(t *testing.T) {
	t.Parallel()
	st, client := stack(t)
	ctx := context.Background()
	tok, err := st.Broker.Token(ctx, "acme")
	if err != nil {
		t.Fatal(err)
	}
	base := st.TokenCalls()
	clk := newClock(time.Now())
	cache := brokerclient.NewCache(st.Broker, clk.now)
	if _, ok := cache.Cached("acme"); ok {
		t.Fatal("a token cached before any was asked for")
	}
	sess := client.Session(cache.Source("acme"))
	for range 10 {
		if err := products(sess); err != nil {
			t.Fatal(err)
		}
	}
	if n := st.TokenCalls() - base; n != 1 {
		t.Errorf("token-broker answered %d GetToken calls for 10 calls, want 1", n)
	}
	if v, ok := cache.Cached("acme"); !ok || v != tok.Value {
		t.Errorf("Cached = %q, %v; want the broker's token", v, ok)
	}

	st.StopBroker()
	if err := products(sess); err != nil {
		t.Errorf("a call with the token held failed while token-broker is down: %v", err)
	}

	// Within the margin the token is given up, and the broker (down) asked.
	clk.set(tok.ExpiresAt.Add(-brokerclient.TokenMargin + time.Second))
	if _, ok := cache.Cached("acme"); ok {
		t.Error("a token within the margin of its expiry is still handed out")
	}
	err = products(sess)
	if !errors.Is(err, brokerclient.ErrUnavailable) {
		t.Errorf("call with no token and token-broker down: %v, want ErrUnavailable", err)
	}
}

// A token Hiper refuses is dropped here and at the broker, and a new one
// asked for: the call goes through.
func TestCacheDropsARefusedToken(t *testing.T) {
	t.Parallel()
	st, client := stack(t)
	cache := brokerclient.NewCache(st.Broker, nil)
	sess := client.Session(cache.Source("acme"))
	if err := products(sess); err != nil {
		t.Fatal(err)
	}
	old, _ := cache.Cached("acme")
	base := st.TokenCalls()
	st.Sim.Sim.SetFaults(hipersim.Faults{ExpireTokensNow: true})
	if err := products(sess); err != nil {
		t.Fatalf("call after Hiper forgot the token: %v", err)
	}
	if n := st.TokenCalls() - base; n != 1 {
		t.Errorf("token-broker answered %d GetToken calls after the 401, want 1", n)
	}
	if v, ok := cache.Cached("acme"); !ok || v == old {
		t.Errorf("Cached = %q, %v after the 401; want a new token", v, ok)
	}
}

// keySources hands out KeySources, which do not say when their tokens
// expire.
type keySources struct{ s *hiper.KeySource }

func (k keySources) Source(string) hiper.TokenSource { return k.s }

// A source that does not say when tokens expire is asked every time.
func TestCachePassesThroughSourcesWithoutExpiry(t *testing.T) {
	t.Parallel()
	st, client := stack(t)
	cache := brokerclient.NewCache(keySources{hiper.NewKeySource(client, st.Keys["acme"])}, nil)
	if err := products(client.Session(cache.Source("acme"))); err != nil {
		t.Fatal(err)
	}
	if _, ok := cache.Cached("acme"); ok {
		t.Error("a token of a source without expiry was cached")
	}
}

// Cached is the process's cache itself, not a second one in front of it.
func TestCachedKeepsTheProcessCache(t *testing.T) {
	t.Parallel()
	st, _ := stack(t)
	c := brokerclient.NewCache(st.Broker, nil)
	if brokerclient.Cached(c, nil) != c {
		t.Error("Cached put a second cache in front of the process's")
	}
}
