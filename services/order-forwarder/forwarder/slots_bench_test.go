package forwarder

import (
	"context"
	"fmt"
	"math"
	"os"
	rtmetrics "runtime/metrics"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/hipersync/hipersync/pkg/events"
	"github.com/hipersync/hipersync/pkg/hipersim"
	"github.com/hipersync/hipersync/pkg/testkit"
	"github.com/hipersync/hipersync/services/order-forwarder/orders"
)

// BenchmarkForwardSlots is BenchmarkForward's burst at hiper=20ms, taken
// apart slot by slot from the order records' history (each order's
// sending and accepted steps name the replica and the time): how much of
// the burst each of the 16 slots (tenant × replica) held an order, how
// long the slots took to start (ramp), how long they stood idle at the
// end once out of orders (tail), and the gaps between one order's answer
// and the next order's sending on the same slot; sampled every 5 ms,
// how many handlers wait for each tenant's slot on each replica; the
// steps of a turn, timed in the handlers (turnTimes); and the Go
// scheduler's latency over the burst (how long a woken goroutine waited
// for a thread); and, every 5 ms, a probe's write of a record-sized value
// to the orders bucket, on the replicas' connection and on a connection of
// its own (writeProbe). It runs
// the burst at two sizes, each beside the POST loop of the same size, to
// show which costs are paid once per burst and which per order.
//
// It also reports the ratio to the POST loop and turn-bound: the ratio the
// same turns would reach with every slot busy the whole burst (the loop's
// time per POST over the mean turn), which no delivery can beat.
//
// A diagnosis, not a row of `make bench`'s table: it runs only with
// FORWARDER_SLOTS=1 (FORWARDER_SLOTS_BURST=n runs one size,
// FORWARDER_SLOTS_CONCURRENCY=n sets ORDER_CONCURRENCY,
// FORWARDER_SLOTS_REPLICAS=r and FORWARDER_SLOTS_INFLIGHT=k run r
// replicas with k slots per tenant each: one replica with two slots is
// the same sixteen slots, each tenant's two drawing on one queue, with
// the POST loop at the same concurrency; the turn's steps are then not
// timed, since two orders of a slot's key overlap; FORWARDER_SLOTS_OWN_CONNS=1
// gives each replica a NATS connection of its own, as in a deployment,
// rather than the one the store's publisher and the watcher use).
// docs/order-forwarder.md ("Where a burst's time goes") reads it.
func BenchmarkForwardSlots(b *testing.B) {
	skipUnlessDiagnosis(b)
	sizes := []int{1500, 6000}
	if n, _ := strconv.Atoi(os.Getenv("FORWARDER_SLOTS_BURST")); n > 0 {
		sizes = []int{n}
	}
	for _, n := range sizes {
		b.Run(fmt.Sprintf("burst=%d", n), func(b *testing.B) { benchForwardSlots(b, n) })
	}
}

func benchForwardSlots(b *testing.B, burst int) {
	tenants := benchTenantIDs()
	h := newHarness(b, harnessOptions{tenants: tenants, unrecorded: true})
	h.st.Sim.Sim.SetFaults(hipersim.Faults{LatencyMs: 20, Endpoints: []string{hipersim.EndpointCreateOrder}})
	cfg := Config{HiperTimeout: 10 * time.Second, TenantRate: -1, TenantInflight: 1}
	if c, _ := strconv.Atoi(os.Getenv("FORWARDER_SLOTS_CONCURRENCY")); c > 0 {
		cfg.Concurrency = c
	}
	if k, _ := strconv.Atoi(os.Getenv("FORWARDER_SLOTS_INFLIGHT")); k > 0 {
		cfg.TenantInflight = k
	}
	replicas := benchReplicas
	if r, _ := strconv.Atoi(os.Getenv("FORWARDER_SLOTS_REPLICAS")); r > 0 {
		replicas = r
	}
	h.ownConns = os.Getenv("FORWARDER_SLOTS_OWN_CONNS") != ""
	var fs []*Forwarder
	times := &turnTimes{}
	if cfg.TenantInflight == 1 {
		h.turnStep = times.hook
	}
	for i := range replicas {
		fs = append(fs, h.forwarder(cfg, fmt.Sprintf("r%d", i+1)))
	}
	waits := func() float64 {
		n := 0.0
		for _, f := range fs {
			n += testutil.ToFloat64(f.metrics.eventsIn.WithLabelValues(string(events.KindOrderApproved), outWaiting))
		}
		return n
	}
	w := h.watchAccepted(b)
	slots := len(tenants) * replicas * cfg.TenantInflight
	base := h.newBaseline(b, tenants, slots)
	h.burst(b, w, tenants, "warm", benchTenants*4)
	probe := h.writeProbe(b)

	b.ResetTimer()
	for i := range b.N {
		prefix := fmt.Sprintf("b%d-", i)
		start := time.Now()
		w0, c0 := waits(), testkit.CPUTime(b)
		stop := sampleWaiters(b, fs, tenants)
		times.start()
		sched0 := schedLatencies()
		stopProbe := probe(fmt.Sprintf("probe-%d.", i))
		rate := h.burst(b, w, tenants, prefix, burst)
		stopProbe()
		reportSchedLatencies(b, sched0, schedLatencies())
		times.report(b)
		stop()
		b.ReportMetric((waits()-w0)/float64(burst), "handed-back/order")
		b.ReportMetric(float64((testkit.CPUTime(b)-c0).Microseconds())/float64(burst), "cpu-us/order")
		end := start.Add(time.Duration(float64(burst) / rate * float64(time.Second)))
		baseRate := base.burst(b, burst)
		s := h.slotSpans(b, tenants, prefix, cfg.TenantInflight)
		b.ReportMetric(rate, "orders/s")
		b.ReportMetric(baseRate, "baseline-orders/s")
		b.ReportMetric(rate/baseRate, "ratio")
		meanTurn := s.report(b, start, end)
		loopPost := time.Duration(float64(slots) / baseRate * float64(time.Second))
		b.ReportMetric(float64(loopPost)/float64(meanTurn), "turn-bound")
	}
}

// span is one order's turn on its slot: from its sending step to Hiper's
// answer (the steps' own times, taken just before each write).
type span struct{ from, to time.Time }

// slotSpans reads every order of the burst and groups their turns by slot:
// tenant and replica, and with inflight slots per tenant and replica, the
// turns of each split into inflight lanes (lanes).
func (h *harness) slotSpans(b *testing.B, tenants []string, prefix string, inflight int) slotRuns {
	out := slotRuns{}
	for _, t := range tenants {
		recs, err := h.state.List(context.Background(), t)
		if err != nil {
			b.Fatal(err)
		}
		for _, r := range recs {
			if !strings.HasPrefix(r.OrderID, prefix) {
				continue
			}
			var sp span
			var owner string
			for _, tr := range r.History {
				switch tr.To {
				case orders.StateSending:
					sp.from, owner = tr.At, tr.By
				case orders.StateAccepted:
					sp.to = tr.At
				}
			}
			if sp.from.IsZero() || sp.to.IsZero() {
				b.Fatalf("order %s/%s has no sending or accepted step", t, r.OrderID)
			}
			k := t + "/" + owner
			out[k] = append(out[k], sp)
		}
	}
	lanes := slotRuns{}
	for k, ss := range out {
		slices.SortFunc(ss, func(a, b span) int { return a.from.Compare(b.from) })
		for i, l := range splitLanes(ss, inflight) {
			lanes[k+"/"+strconv.Itoa(i)] = l
		}
	}
	return lanes
}

// splitLanes deals turns sorted by start into n lanes whose turns do not
// overlap, each turn to the lane that freed last before it began: with n
// slots a key, some such split is the slots' own.
func splitLanes(ss []span, n int) [][]span {
	if n <= 1 {
		return [][]span{ss}
	}
	lanes := make([][]span, n)
	// freed is when lane i's last turn ended (zero: none yet).
	freed := make([]time.Time, n)
	for _, sp := range ss {
		best := -1
		for i, t := range freed {
			free := !t.After(sp.from)
			switch {
			case best < 0:
				best = i
			case free && (freed[best].After(sp.from) || t.After(freed[best])):
				best = i // free, and freed latest of those free
			case !free && freed[best].After(sp.from) && t.Before(freed[best]):
				best = i // none free (the clocks of two replicas): the first to free
			}
		}
		lanes[best] = append(lanes[best], sp)
		freed[best] = sp.to
	}
	return slices.DeleteFunc(lanes, func(l []span) bool { return len(l) == 0 })
}

type slotRuns map[string][]span

// report adds the slots' figures to the benchmark's: busy share of the
// burst (mean and lowest), ramp, tail, and the gaps between turns, split
// at 5 ms into hand-overs (a waiting order took the slot) and idling (no
// order of the tenant was in hand); it returns the mean turn.
func (s slotRuns) report(b *testing.B, start, end time.Time) time.Duration {
	wall := end.Sub(start)
	var busy, ramp, tail, handGap, idleGap time.Duration
	var idleN, minOrders, maxOrders int
	var turns, gaps []time.Duration
	minShare := 1.0
	minOrders = 1 << 30
	for _, ss := range s {
		var sb time.Duration
		for j, sp := range ss {
			sb += sp.to.Sub(sp.from)
			turns = append(turns, sp.to.Sub(sp.from))
			if j > 0 {
				g := sp.from.Sub(ss[j-1].to)
				gaps = append(gaps, g)
				if g < 5*time.Millisecond {
					handGap += g
				} else {
					idleGap += g
					idleN++
				}
			}
		}
		busy += sb
		minShare = min(minShare, float64(sb)/float64(wall))
		ramp += ss[0].from.Sub(start)
		tail += end.Sub(ss[len(ss)-1].to)
		minOrders, maxOrders = min(minOrders, len(ss)), max(maxOrders, len(ss))
	}
	n := time.Duration(len(s))
	pct := func(d time.Duration) float64 { return 100 * float64(d) / float64(wall) }
	b.ReportMetric(float64(len(s)), "slots")
	b.ReportMetric(ms(wall), "wall-ms")
	b.ReportMetric(pct(busy/n), "busy-%")
	b.ReportMetric(100*minShare, "min-busy-%")
	b.ReportMetric(pct(ramp/n), "ramp-%")
	b.ReportMetric(pct(tail/n), "tail-%")
	b.ReportMetric(pct(handGap/n), "handover-gaps-%")
	b.ReportMetric(pct(idleGap/n), "idle-gaps-%")
	b.ReportMetric(float64(idleN)/float64(len(s)), "idle-gaps/slot")
	var sum time.Duration
	for _, t := range turns {
		sum += t
	}
	mean := sum / time.Duration(len(turns))
	b.ReportMetric(ms(mean), "mean-turn-ms")
	b.ReportMetric(ms(median(turns)), "turn-ms")
	b.ReportMetric(ms(median(gaps)), "gap-ms")
	b.ReportMetric(float64(minOrders), "min-orders/slot")
	b.ReportMetric(float64(maxOrders), "max-orders/slot")
	return mean
}

func median(d []time.Duration) time.Duration {
	if len(d) == 0 {
		return 0
	}
	slices.Sort(d)
	return d[len(d)/2]
}

// sampleWaiters samples, every 5 ms until stop, how many handlers wait for
// each tenant's slot on each replica, and reports their mean, their
// largest, and the mean difference between the two replicas' waiters of
// one tenant (what one replica still has to send after the other ran
// out).
func sampleWaiters(b *testing.B, fs []*Forwarder, tenants []string) (stop func()) {
	done := make(chan struct{})
	var wg sync.WaitGroup
	var sum, diff float64
	var samples, most int
	wg.Go(func() {
		tick := time.NewTicker(5 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-done:
				return
			case <-tick.C:
			}
			for _, t := range tenants {
				var ws []int
				for _, f := range fs {
					f.gates.mu.Lock()
					n := 0
					if g := f.gates.tenant[t]; g != nil {
						n = g.waiters
					}
					f.gates.mu.Unlock()
					ws = append(ws, n)
					sum += float64(n)
					most = max(most, n)
				}
				if len(ws) > 1 {
					diff += math.Abs(float64(ws[0] - ws[1]))
				}
				samples++
			}
		}
	})
	return func() {
		close(done)
		wg.Wait()
		b.ReportMetric(sum/float64(samples*len(fs)), "waiters/slot")
		b.ReportMetric(float64(most), "max-waiters/slot")
		b.ReportMetric(diff/float64(samples), "waiters-diff/tenant")
	}
}

// turnTimes times the steps of each create's turn on its slot, as the
// handlers pass them (Forwarder.turnStep). A slot's turns follow one
// another, so each step is timed from the step before it on the same
// slot.
type turnTimes struct {
	mu   sync.Mutex
	on   bool
	last map[string]map[turnStep]time.Time
	took map[turnStep][]time.Duration
}

// since is the step each step is timed from.
var since = map[turnStep]turnStep{
	stepSlotTaken:    stepAnswerQueued, // the hand-over
	stepSendingWrite: stepSlotTaken,
	stepSendingSaved: stepSendingWrite, // the sending write's round trip
	stepSettled:      stepSendingSaved, // the previous holder's answer
	stepAnswered:     stepSettled,      // the POST
	stepAnswerQueued: stepAnswered,
	stepAnswerSaved:  stepAnswerQueued, // the answer write's round trip
}

func (t *turnTimes) hook(owner string) func(string, string, turnStep) {
	return func(tenant, _ string, s turnStep) {
		now := time.Now()
		t.mu.Lock()
		defer t.mu.Unlock()
		if !t.on {
			return
		}
		slot := tenant + "/" + owner
		last := t.last[slot]
		if last == nil {
			last = map[turnStep]time.Time{}
			t.last[slot] = last
		}
		if from, ok := last[since[s]]; ok {
			t.took[s] = append(t.took[s], now.Sub(from))
		}
		last[s] = now
	}
}

func (t *turnTimes) start() {
	t.mu.Lock()
	t.on, t.last, t.took = true, map[string]map[turnStep]time.Time{}, map[turnStep][]time.Duration{}
	t.mu.Unlock()
}

// report adds each step's mean and median (and the sending write's p90).
// The hand-over's mean takes in the slot's idle gaps (no order waiting):
// its median is the hand-over.
func (t *turnTimes) report(b *testing.B) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.on = false
	for s, name := range map[turnStep]string{
		stepSlotTaken: "handover", stepSendingSaved: "sending-write", stepSettled: "settle-wait",
		stepAnswered: "post", stepAnswerSaved: "answer-write",
	} {
		d := t.took[s]
		reportTimes(b, name, d)
		if s == stepSendingSaved && len(d) > 0 {
			b.ReportMetric(ms(d[len(d)*9/10]), name+"-p90-ms")
		}
	}
}

const schedMetric = "/sched/latencies:seconds"

func schedLatencies() *rtmetrics.Float64Histogram {
	s := []rtmetrics.Sample{{Name: schedMetric}}
	rtmetrics.Read(s)
	return s[0].Value.Float64Histogram()
}

// reportSchedLatencies reports the p50, p90 and p99 of the Go scheduler's
// latency between two readings (each the upper bound of its bucket).
func reportSchedLatencies(b *testing.B, before, after *rtmetrics.Float64Histogram) {
	var total uint64
	counts := make([]uint64, len(after.Counts))
	for i := range counts {
		counts[i] = after.Counts[i] - before.Counts[i]
		total += counts[i]
	}
	for _, q := range []struct {
		name string
		p    float64
	}{{"sched-p50-ms", 0.5}, {"sched-p90-ms", 0.9}, {"sched-p99-ms", 0.99}} {
		var acc uint64
		for i, c := range counts {
			acc += c
			if float64(acc) >= q.p*float64(total) {
				b.ReportMetric(1000*after.Buckets[i+1], q.name)
				break
			}
		}
	}
}

// writeProbe returns a probe that, until stopped, creates every 5 ms a
// record-sized key in the orders bucket, alternately on the replicas'
// connection and on one of its own, and reports each one's mean and
// median round trip: the server's latency under the burst, and what
// sharing the replicas' connection adds to it.
func (h *harness) writeProbe(b *testing.B) func(prefix string) (stop func()) {
	_, js := testkit.Connect(b)
	own, err := js.KeyValue(context.Background(), h.st.NS.Bucket(orders.Bucket))
	if err != nil {
		b.Fatal(err)
	}
	shared, err := h.st.JS.KeyValue(context.Background(), h.st.NS.Bucket(orders.Bucket))
	if err != nil {
		b.Fatal(err)
	}
	value := make([]byte, 2048)
	return func(prefix string) func() {
		done := make(chan struct{})
		var wg sync.WaitGroup
		took := [2][]time.Duration{}
		wg.Go(func() {
			tick := time.NewTicker(5 * time.Millisecond)
			defer tick.Stop()
			for n := 0; ; n++ {
				select {
				case <-done:
					return
				case <-tick.C:
				}
				kv := []jetstream.KeyValue{shared, own}[n%2]
				t0 := time.Now()
				if _, err := kv.Create(context.Background(), prefix+strconv.Itoa(n), value); err != nil {
					b.Error(err)
					return
				}
				took[n%2] = append(took[n%2], time.Since(t0))
			}
		})
		return func() {
			close(done)
			wg.Wait()
			for i, name := range []string{"probe-shared-conn", "probe-own-conn"} {
				reportTimes(b, name, took[i])
			}
		}
	}
}

// reportTimes reports the mean and the median of d as name-ms and
// name-p50-ms, and leaves d sorted.
func reportTimes(b *testing.B, name string, d []time.Duration) {
	if len(d) == 0 {
		return
	}
	var sum time.Duration
	for _, x := range d {
		sum += x
	}
	b.ReportMetric(ms(sum/time.Duration(len(d))), name+"-ms")
	b.ReportMetric(ms(median(d)), name+"-p50-ms")
}
