package catalogsync

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/hipersync/hipersync/pkg/events"
	brokerv1 "github.com/hipersync/hipersync/pkg/gen/hipersync/broker/v1"
	"github.com/hipersync/hipersync/pkg/hiper"
	"github.com/hipersync/hipersync/pkg/hipersim"
	"github.com/hipersync/hipersync/pkg/schedule/scheduletest"
	"github.com/hipersync/hipersync/pkg/testkit"
	"github.com/hipersync/hipersync/services/token-broker/brokertest"
)

// The demo catalog: 79 products, two of them without category and brand.
const (
	demoProducts  = 79
	demoPublished = 77
)

func TestTwoReplicasThreeTenantsEachChangeOnce(t *testing.T) {
	t.Parallel()
	tenants := []string{"acme", "beta", "gama"}
	s := newStack(t, brokertest.Options{Tenants: tenants, Seed: hipersim.SeedDemo})
	start := time.Now()
	a, b := s.replica(t, scheduletest.Fast()), s.replica(t, scheduletest.Fast())
	for _, id := range tenants {
		s.waitSynced(t, id, start)
		ups := s.upserts(id)
		if len(ups) != demoPublished {
			t.Fatalf("%s: %d products published, want %d", id, len(ups), demoPublished)
		}
		for pid, list := range ups {
			if len(list) != 1 || !list[0].GetCreated() {
				t.Fatalf("%s: product %s published %d times", id, pid, len(list))
			}
		}
	}

	// gama is paused; everyone's prices change.
	if _, err := s.Broker.Tenants.PauseTenant(context.Background(), &brokerv1.PauseTenantRequest{TenantId: "gama"}); err != nil {
		t.Fatal(err)
	}
	scheduletest.WaitTenantState(t, "gama", brokerv1.TenantState_TENANT_STATE_PAUSED, a, b)
	testkit.WaitFor(t, 20*time.Second, "gama's poll to stop", func() bool { return !s.status(t, "gama").Running(time.Now()) })
	gamaBefore := s.catalogEvents("gama")
	changed := time.Now()
	repriced := map[string][]hiper.Product{}
	for _, id := range tenants {
		repriced[id] = s.change(t, id, firstN(5, simple), func(p *hiper.Product) {
			p.Price = hiper.Decimal{Decimal: p.Price.Add(hiper.MustDecimal("1").Decimal)}
		})
	}
	for _, id := range []string{"acme", "beta"} {
		s.waitSynced(t, id, changed)
		ups := s.upserts(id)
		prices := s.events.Events(id, events.KindCatalogPriceChanged)
		if len(prices) != 5 {
			t.Errorf("%s: %d price changes published, want 5", id, len(prices))
		}
		for _, p := range repriced[id] {
			if n := len(ups[p.ID]); n != 2 {
				t.Errorf("%s: product %s published %d times, want 2 (created, then its price)", id, p.Name, n)
			}
		}
	}
	// Both replicas kept polling acme and beta twice more since: gama
	// would have been polled too.
	since := time.Now()
	s.waitSynced(t, "acme", since)
	s.waitSynced(t, "beta", since)
	if n := s.catalogEvents("gama"); n != gamaBefore {
		t.Fatalf("paused gama got %d events", n-gamaBefore)
	}
	if st := s.status(t, "gama"); st.LastRunAt.After(changed) {
		t.Fatalf("paused gama was polled at %s", st.LastRunAt)
	}

	// Resumed, gama catches up within moments.
	resumed := time.Now()
	if _, err := s.Broker.Tenants.ResumeTenant(context.Background(), &brokerv1.ResumeTenantRequest{TenantId: "gama"}); err != nil {
		t.Fatal(err)
	}
	s.waitSynced(t, "gama", resumed)
	if n := len(s.events.Events("gama", events.KindCatalogPriceChanged)); n != 5 {
		t.Fatalf("gama: %d price changes after resuming, want 5", n)
	}
	t.Logf("replica %s and %s shared the work", a.Scheduler.Owner(), b.Scheduler.Owner())
	if errs := s.events.Errors(); len(errs) > 0 {
		t.Fatalf("undecodable events: %v", errs)
	}
}

func TestNothingNewNeverRestartsTheSync(t *testing.T) {
	t.Parallel()
	s := newStack(t, brokertest.Options{Seed: hipersim.SeedDemo})
	r := s.replica(t, scheduletest.Fast())
	st := s.waitSynced(t, "acme", time.Now())
	cursor := st.Cursor
	testkit.WaitFor(t, 10*time.Second, "five polls finding nothing new", func() bool { return len(r.Feed.Cursors()) >= 6 })
	cursors := r.Feed.Cursors()
	if cursors[0] != 0 {
		t.Fatalf("the initial sync started at %d", cursors[0])
	}
	for i, c := range cursors[1:] {
		if c != cursor {
			t.Fatalf("feed call %d sent cursor %d, want the saved %d (all: %v)", i+1, c, cursor, cursors)
		}
	}
	if n := s.Sim.Sim.Stats().Requests[hipersim.EndpointProducts]; n < len(cursors) {
		t.Fatalf("hiper-sim counted %d feed calls, the poller sent %d", n, len(cursors))
	}
	if n := s.catalogEvents("acme"); n != demoProducts {
		t.Fatalf("%d events after polls that found nothing new, want the initial %d", n, demoProducts)
	}

	// A change moves the cursor forward, never back.
	s.change(t, "acme", firstN(1, simple), func(p *hiper.Product) { p.Price = hiper.MustDecimal("1234.5") })
	st = s.waitSynced(t, "acme", time.Now())
	if st.Cursor <= cursor {
		t.Fatalf("cursor %d after a change, want more than %d", st.Cursor, cursor)
	}
	for _, c := range r.Feed.Cursors()[1:] {
		if c < cursor {
			t.Fatalf("a poll sent cursor %d, behind the saved %d", c, cursor)
		}
	}
}

func TestCrashMidFeedResumesFromTheSavedCursor(t *testing.T) {
	t.Parallel()
	s := newStack(t, brokertest.Options{Sim: hipersim.Config{Batch: 10}})
	catalog := hipersim.GenerateCatalog(40, 2, 200, 7)
	loadInFamilies(t, s.Sim.Sim, s.Keys["acme"], catalog)
	// Slow answers, so the poller is stopped mid-feed.
	slow := func(ms int) {
		s.Sim.Sim.SetFaults(hipersim.Faults{LatencyMs: ms, Endpoints: []string{hipersim.EndpointProducts}})
	}
	slow(15)

	a := s.replica(t, scheduletest.Fast())
	testkit.WaitFor(t, 20*time.Second, "a few batches saved", func() bool { return s.status(t, "acme").Cursor >= 50 })
	// The feed answers nothing more until the stop: a loaded machine may
	// take longer to stop the poller than the poller takes to read the
	// remaining batches.
	slow(int(time.Hour / time.Millisecond))
	a.Stop()
	slow(15)
	saved := s.status(t, "acme")
	if saved.InitialDone || saved.Lease != nil {
		t.Fatalf("after the stop: %+v; want an initial sync under way, lease released", saved)
	}

	b := s.replica(t, scheduletest.Fast())
	s.waitSynced(t, "acme", time.Now())
	if first := b.Feed.Cursors()[0]; first != saved.Cursor {
		t.Fatalf("the second replica started the feed at %d, want the saved cursor %d", first, saved.Cursor)
	}
	ups := s.upserts("acme")
	for _, p := range catalog {
		if n := len(ups[p.ID]); n != 1 {
			t.Fatalf("product %s published %d times, want once", p.Name, n)
		}
	}
	if len(ups) != len(catalog) {
		t.Fatalf("%d products published, want %d", len(ups), len(catalog))
	}
}

// loadInFamilies upserts a generated catalog one product family at a time,
// as a merchant registers products: each family's variations, then its
// parent, are next to each other in the feed.
func loadInFamilies(t testing.TB, sim *hipersim.Sim, key string, catalog []hiper.Product) {
	t.Helper()
	for i := 0; i < len(catalog); {
		j := i + 1
		for j < len(catalog) && catalog[j].IsVariation() {
			j++
		}
		if err := sim.UpsertProducts(key, catalog[i:j]); err != nil {
			t.Fatal(err)
		}
		i = j
	}
}

func TestHiperStormSlowsPollingDownAndRecovers(t *testing.T) {
	t.Parallel()
	s := newStack(t, brokertest.Options{Seed: hipersim.SeedDemo})
	opts := scheduletest.Fast()
	opts.Interval = 100 * time.Millisecond
	opts.BackoffBase, opts.BackoffMax = 100*time.Millisecond, 2*time.Second
	r := s.replica(t, opts)
	s.waitSynced(t, "acme", time.Now())

	storm := func(f hipersim.Faults, failures int) []scheduletest.FeedCall {
		t.Helper()
		f.Endpoints = []string{hipersim.EndpointProducts}
		began := time.Now()
		s.Sim.Sim.SetFaults(f)
		testkit.WaitFor(t, 20*time.Second, "failing polls", func() bool { return s.status(t, "acme").Failures >= failures })
		var calls []scheduletest.FeedCall
		for _, c := range r.Feed.Calls() {
			if c.At.After(began) {
				calls = append(calls, c)
			}
		}
		return calls
	}

	// 503s: each failure waits about twice as long as the one before.
	calls := storm(hipersim.Faults{ErrorRate: 1, ErrorStatus: 503}, 5)
	if len(calls) > 6 {
		t.Fatalf("%d feed calls for 5 failures: the poller retried inside its runs", len(calls))
	}
	if gap := calls[4].At.Sub(calls[3].At); gap < 3*opts.Interval {
		t.Fatalf("the 5th failing poll came %s after the 4th; want a backoff of several intervals", gap)
	}

	// Recovery: the next poll after the storm publishes what changed.
	s.Sim.Sim.SetFaults(hipersim.Faults{})
	s.change(t, "acme", firstN(1, simple), func(p *hiper.Product) { p.Price = hiper.MustDecimal("777") })
	st := s.waitSynced(t, "acme", time.Now())
	if st.Failures != 0 || st.LastError != "" {
		t.Fatalf("after recovery: failures %d, last error %q", st.Failures, st.LastError)
	}
	if n := len(s.events.Events("acme", events.KindCatalogPriceChanged)); n != 1 {
		t.Fatalf("%d price changes after the storm, want 1", n)
	}

	// 429s with Retry-After: 1 — after each, the next poll waits that long.
	began := time.Now()
	s.Sim.Sim.SetFaults(hipersim.Faults{RateLimitPerSecond: 1, Endpoints: []string{hipersim.EndpointProducts}})
	var limited int
	testkit.WaitFor(t, 20*time.Second, "three polls answered 429", func() bool {
		limited = 0
		for _, c := range r.Feed.Calls() {
			if c.At.After(began) && c.Status == http.StatusTooManyRequests {
				limited++
			}
		}
		return limited >= 3
	})
	calls = r.Feed.Calls()
	for i, c := range calls[:len(calls)-1] {
		if gap := calls[i+1].At.Sub(c.At); c.At.After(began) && c.Status == http.StatusTooManyRequests && gap < 900*time.Millisecond {
			t.Fatalf("a poll came %s after a 429 that asked for 1s", gap)
		}
	}
	s.Sim.Sim.SetFaults(hipersim.Faults{})
	s.waitSynced(t, "acme", time.Now())
}
