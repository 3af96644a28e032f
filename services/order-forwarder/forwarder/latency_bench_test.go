package forwarder

import (
	"fmt"
	rtmetrics "runtime/metrics"
	"sync"
	"testing"
	"time"
)

// BenchmarkForwardLatency is BenchmarkForward's steady run (200 orders a
// second, eight stores, two replicas, hiper=0ms) taken apart order by
// order, to say where the added p99 goes: each stage's median and p99,
// and, over the slowest 1 % of orders, each stage's mean. The stages:
// delivery (published, until a handler has the approval decoded), to-slot
// (validation, the token, and waiting for the tenant's slot), the
// sending write, the POST (with the wait for the previous answer), the
// answer's write, and the outcome (its publish, until the watcher sees
// order.accepted); beside them the Go scheduler's latency and the
// collections a second over the run.
//
// A diagnosis, not a row of `make bench`'s table: it runs only with
// FORWARDER_SLOTS=1. docs/order-forwarder.md ("Where an order's time
// goes") reads it.
func BenchmarkForwardLatency(b *testing.B) {
	skipUnlessDiagnosis(b)
	tenants := benchTenantIDs()
	h := newHarness(b, harnessOptions{tenants: tenants, unrecorded: true})
	cfg := Config{HiperTimeout: 10 * time.Second, TenantRate: -1}
	steps := &orderSteps{at: map[string]map[turnStep]time.Time{}}
	h.turnStep = func(string) func(string, string, turnStep) { return steps.hook }
	for i := range benchReplicas {
		h.forwarder(cfg, fmt.Sprintf("r%d", i+1))
	}
	w := h.watchAccepted(b)
	h.burst(b, w, tenants, "warm", benchTenants*4)

	b.ResetTimer()
	for i := range b.N {
		sched0, gc0 := schedLatencies(), gcCycles()
		ids, sent := h.steadyRun(b, w, tenants, fmt.Sprintf("s%d-", i))
		reportSchedLatencies(b, sched0, schedLatencies())
		b.ReportMetric(float64(gcCycles()-gc0)/benchSteady.Seconds(), "gc/s")
		w.mu.Lock()
		accepted := make([]time.Time, len(ids))
		for j, id := range ids {
			accepted[j] = w.at[id]
		}
		w.mu.Unlock()
		steps.report(b, ids, sent, accepted)
	}
}

func gcCycles() uint64 {
	s := []rtmetrics.Sample{{Name: "/gc/cycles/total:gc-cycles"}}
	rtmetrics.Read(s)
	return s[0].Value.Uint64()
}

// orderSteps notes when each order passed each step (the first time it
// was decoded, the last time for the others).
type orderSteps struct {
	mu sync.Mutex
	at map[string]map[turnStep]time.Time
}

func (s *orderSteps) hook(_, orderID string, step turnStep) {
	now := time.Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	at := s.at[orderID]
	if at == nil {
		at = map[turnStep]time.Time{}
		s.at[orderID] = at
	}
	if _, seen := at[step]; step != stepDecoded || !seen {
		at[step] = now
	}
}

// latencyStages are the stages report splits an order's latency into,
// each from the end of the one before (the first from the publish).
var latencyStages = []struct {
	name string
	end  turnStep // 0: order.accepted seen
}{
	{"delivery", stepDecoded},
	{"to-slot", stepSlotTaken},
	{"sending-write", stepSendingSaved},
	{"post", stepAnswered},
	{"answer-write", stepAnswerSaved},
	{"outcome", 0},
}

func (s *orderSteps) report(b *testing.B, ids []string, sent, accepted []time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	type split struct {
		total  time.Duration
		stages []time.Duration
	}
	var all []split
	for i, id := range ids {
		at := s.at[id]
		sp := split{total: accepted[i].Sub(sent[i])}
		from, ok := sent[i], true
		for _, st := range latencyStages {
			end := accepted[i]
			if st.end != 0 {
				end, ok = at[st.end]
				if !ok {
					break
				}
			}
			sp.stages = append(sp.stages, end.Sub(from))
			from = end
		}
		if ok {
			all = append(all, sp)
		}
	}
	b.ReportMetric(float64(len(ids)-len(all)), "orders-unsplit")
	if len(all) == 0 {
		return
	}
	for k, st := range latencyStages {
		d := make([]time.Duration, len(all))
		for i, sp := range all {
			d[i] = sp.stages[k]
		}
		b.ReportMetric(ms(median(d)), st.name+"-p50-ms")
		b.ReportMetric(ms(p99(d)), st.name+"-p99-ms")
	}
	totals := make([]time.Duration, len(all))
	for i, sp := range all {
		totals[i] = sp.total
	}
	b.ReportMetric(ms(median(totals)), "total-p50-ms")
	cut := p99(totals)
	b.ReportMetric(ms(cut), "total-p99-ms")
	// The slowest 1 %: what each stage took in them, on average.
	sums := make([]time.Duration, len(latencyStages))
	n := 0
	for _, sp := range all {
		if sp.total < cut {
			continue
		}
		n++
		for k, d := range sp.stages {
			sums[k] += d
		}
	}
	for k, st := range latencyStages {
		b.ReportMetric(ms(sums[k]/time.Duration(n)), "slowest-"+st.name+"-ms")
	}
}
