package stocksync

import (
	"slices"
	"testing"
	"time"

	"github.com/hipersync/hipersync/pkg/hiper"
	"github.com/hipersync/hipersync/pkg/hipersim"
	"github.com/hipersync/hipersync/pkg/schedule/scheduletest"
	"github.com/hipersync/hipersync/services/token-broker/brokertest"
)

// The poller asks token-broker once per token, not before every Hiper
// call, so a stock change still reaches the store while token-broker is
// down (a rollout, an outage).
func TestStockFlowsWithTokenBrokerDown(t *testing.T) {
	t.Parallel()
	s := newStack(t, brokertest.Options{Seed: hipersim.SeedDemo})
	scheduletest.StartReplica(t, s.env, Start, scheduletest.Fast())
	s.waitSynced(t, "acme", time.Now())
	s.waitSynced(t, "acme", time.Now()) // a second run, with the token held
	if n := s.TokenCalls(); n != 1 {
		t.Errorf("token-broker answered %d GetToken calls for two runs, want 1", n)
	}
	store := scheduletest.ConsumeAsStore(t, s.JS, s.NS, "acme")
	p := s.stocked("acme", 1)[0]

	s.StopBroker()
	since := time.Now()
	s.setStock(t, "acme", []hiper.Product{p}, "3")
	s.waitSynced(t, "acme", since)
	store.CaughtUp(t)
	if got := quantities(store, p.ID); !slices.Equal(got, []string{"3"}) {
		t.Fatalf("with token-broker down the store read the stock of %s as %v, want [3]", p.Name, got)
	}
}
