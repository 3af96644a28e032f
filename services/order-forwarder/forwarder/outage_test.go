package forwarder

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/hipersync/hipersync/pkg/events"
	"github.com/hipersync/hipersync/pkg/hiper"
	"github.com/hipersync/hipersync/pkg/hipersim"
	"github.com/hipersync/hipersync/pkg/ops"
	"github.com/hipersync/hipersync/pkg/testkit"
	"github.com/hipersync/hipersync/services/order-forwarder/orders"
)

// compress turns a production duration into test time: one minute is
// 100ms, so a 30-minute outage lasts 3s.
func compress(d time.Duration) time.Duration { return d / 600 }

// compressedConfig is the production configuration in compressed time.
func compressedConfig() Config {
	cfg := testConfig()
	cfg.MaxAttempts = DefaultMaxAttempts
	cfg.RetryBase, cfg.RetryMax = compress(DefaultRetryBase), compress(DefaultRetryMax)
	cfg.CircuitProbeBase, cfg.CircuitProbeMax = compress(DefaultCircuitProbeBase), compress(DefaultCircuitProbeMax)
	return cfg
}

// TestThirtyMinuteOutage: Hiper answers its own 503 to every call for 30
// minutes (compressed time) while 20 orders arrive. Ten attempts with
// backoff capped at a minute would spend about four minutes; with the
// circuit the orders wait, the outage shows (metric, hipersync status'
// bucket), and once Hiper answers again every order is in Hiper once,
// none failed, nothing is dead-lettered.
func TestThirtyMinuteOutage(t *testing.T) {
	t.Parallel()
	h := newHarness(t, harnessOptions{})
	cfg := compressedConfig()
	f := h.forwarder(cfg, "r1")
	h.st.Sim.Sim.SetFaults(hipersim.Faults{ErrorRate: 1, ErrorStatus: 503, Answer: hipersim.AnswerHiper})
	began := time.Now()
	ids := h.publishMany("acme", "O", 20)

	open := func(scope, tenant string) float64 {
		return testutil.ToFloat64(f.metrics.circuitOpen.WithLabelValues(scope, tenant))
	}
	testkit.WaitFor(t, wait, "the circuits open", func() bool {
		return open(ops.ScopeEndpoint, "") == 1 && open(ops.ScopeTenant, "acme") == 1
	})
	kv, err := h.st.JS.KeyValue(context.Background(), h.st.NS.Bucket(ops.OutageBucket))
	if err != nil {
		t.Fatal(err)
	}
	var seen ops.Outage
	testkit.WaitFor(t, wait, "the outage noted for hipersync status", func() bool {
		e, err := kv.Get(context.Background(), ops.OutageKey(ops.Outage{Scope: ops.ScopeEndpoint, Name: hiperEndpointCreate, Replica: "r1"}))
		return err == nil && json.Unmarshal(e.Value(), &seen) == nil
	})
	if seen.LastError == "" || seen.Since.IsZero() {
		t.Errorf("outage noted %+v", seen)
	}

	time.Sleep(max(compress(30*time.Minute)-time.Since(began), 0)) // the outage itself: time is the point
	calls := h.posted()
	for _, id := range ids {
		rec := h.record("acme", id)
		if rec.State != orders.StateReceived && rec.State != orders.StateSending { // sending: the probe
			t.Fatalf("order %s is %s during the outage", id, rec.State)
		}
		if rec.Attempts >= DefaultCircuitThreshold { // only the failures before the circuit opened
			t.Errorf("order %s spent %d attempts on the outage", id, rec.Attempts)
		}
	}
	h.st.Sim.Sim.SetFaults(hipersim.Faults{})
	h.exactlyOnce("acme", ids)
	t.Logf("%d create calls during the outage for %d orders", calls, len(ids))
	if calls > 3*DefaultCircuitThreshold+40 {
		t.Errorf("%d create calls during the outage: the circuit did not hold the orders back", calls)
	}
	for _, k := range []events.Kind{events.KindOrderFailed, events.KindOrderNeedsReview} {
		if n := h.seen.count(k); n != 0 {
			t.Errorf("%d %s events", n, k)
		}
	}
	if dl := h.deadLetters(); len(dl) != 0 {
		t.Errorf("%d dead letters", len(dl))
	}
	testkit.WaitFor(t, wait, "the circuits closed", func() bool {
		_, err := kv.Get(context.Background(), ops.OutageKey(seen))
		return open(ops.ScopeEndpoint, "") == 0 && open(ops.ScopeTenant, "acme") == 0 && err != nil
	})
}

// TestCircuitsPerTenant: one store's Hiper account failing opens its own
// circuit only, while another's answers keep the endpoint's closed; a
// probe's failure spends no attempt and spaces the next probe further.
func TestCircuitsPerTenant(t *testing.T) {
	t.Parallel()
	now := time.Unix(1_800_000_000, 0)
	cfg := Config{}.withDefaults()
	gauge := newMetrics(nil).circuitOpen
	var noted []ops.Outage
	cs := newCircuits(cfg, func() time.Time { return now }, "r1", func() int { return 2 }, gauge,
		func(o ops.Outage, open bool) { noted = append(noted, o) })
	outage := &hiper.Error{Status: 503, Kind: hiper.ErrTransient}
	fail := func(tenant string) bool {
		tk, hold := cs.admit(tenant)
		if hold > 0 {
			t.Fatalf("%s held %s", tenant, hold)
		}
		return tk.failed(outage)
	}
	for i := range cfg.CircuitThreshold {
		own := fail("acme")
		if want := i < cfg.CircuitThreshold-1; own != want {
			t.Errorf("failure %d counted as the order's: %v, want %v", i+1, own, want)
		}
		tk, _ := cs.admit("beta")
		tk.answered()
	}
	if testutil.ToFloat64(gauge.WithLabelValues(ops.ScopeTenant, "acme")) != 1 || testutil.ToFloat64(gauge.WithLabelValues(ops.ScopeEndpoint, "")) != 0 {
		t.Fatal("want acme's circuit open and the endpoint's closed")
	}
	if _, hold := cs.admit("acme"); hold <= 0 {
		t.Error("acme's order admitted while its circuit is open")
	}
	if tk, hold := cs.admit("beta"); hold > 0 {
		t.Error("beta held by acme's outage")
	} else {
		tk.answered()
	}
	now = now.Add(cfg.CircuitProbeBase)
	probe, hold := cs.admit("acme")
	if hold > 0 || probe.probe == nil {
		t.Fatal("no probe once it was due")
	}
	if _, hold := cs.admit("acme"); hold <= 0 {
		t.Error("a second order admitted while the probe is out")
	}
	if probe.failed(outage) {
		t.Error("a failed probe counted as the order's attempt")
	}
	now = now.Add(cfg.CircuitProbeBase)
	if _, hold := cs.admit("acme"); hold <= 0 {
		t.Error("the next probe is not spaced further")
	}
	now = now.Add(cfg.CircuitProbeBase)
	probe, _ = cs.admit("acme")
	probe.answered()
	if testutil.ToFloat64(gauge.WithLabelValues(ops.ScopeTenant, "acme")) != 0 {
		t.Error("acme's circuit still open after Hiper answered")
	}
	if tk, hold := cs.admit("acme"); hold > 0 || tk.probe != nil {
		t.Error("orders still held after the circuit closed")
	}
	if len(noted) < 2 || noted[0].Scope != ops.ScopeTenant || noted[0].Name != "acme" {
		t.Errorf("noted %+v", noted)
	}
}
