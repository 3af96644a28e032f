package broker_test

import (
	"context"
	"math/rand/v2"
	"runtime"
	"runtime/metrics"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/hipersync/hipersync/pkg/testkit"
	"github.com/hipersync/hipersync/services/token-broker/broker"
	"github.com/hipersync/hipersync/services/token-broker/brokertest"
)

// BenchmarkGetToken measures GetToken with 50 concurrent callers and a hot
// cache, as production serves it (mutual TLS, per-method authorization, a
// service's certificate, the binary's garbage collection target), beside
// the same-run baseline of the bare gRPC health check on the same
// connection: the broker's whole path against what any call to that
// server costs.
//
// It measures each saturated, then paced at several loads. Saturated: every
// caller calls again as soon as it is answered, which gives the most calls
// a second; the latency there is mostly the time a call queues behind the
// other 49 (by Little's law the mean is 50 over the rate), whatever the
// call. Paced: open-loop arrivals, as from many independent services: each
// caller's calls come at exponentially distributed gaps (so the 50 together
// are a Poisson stream), the same schedule for both kinds of call in a
// round; a call held up by the caller's call before counts its latency from
// its appointed time, so a backlog is not hidden. The p99 there is the cost
// of a call at that load, so it is measured at fixed loads (pacedRates:
// production's, docs/operations.md "Garbage collection in token-broker",
// is under the lowest on average, its bursts about the next) and at half
// the lower of the two saturated rates ("paced-", a load this machine
// keeps up with at any moment). Each load reports its p50, p99 and the p99
// of how late the callers woke from their sleep for a call: Go's own wait
// for a timer (whole milliseconds while the process is idle, so about 1 ms
// at the lowest load, where the calls are faster than that) plus the
// machine's delay in running a thread of this process, which a loaded
// machine puts under any p99 of the same rounds. At half saturation the
// process's CPU share and garbage collections a second say what that load
// was, and the share of the calls during which a garbage collection ended
// says whether the collections can set the p99 (one percent or more).
// Allocations and bytes allocated per call (client and server, as both
// run in this process, and whatever else the process allocates meanwhile)
// are counted during the saturated rounds: unlike the rates, they hardly
// change with the machine's load.
//
// The process runs at token-broker's garbage collection target
// (broker.GCPercent, unless GOGC is set), as the binary does; client and
// server share it here, as they share the process. At Go's default the
// collections, tens a second, set the p99 of both kinds of call.
func BenchmarkGetToken(b *testing.B) {
	const callers, perCaller = 50, 800
	// pacedRates are the fixed loads, in calls a second, each named in its
	// metrics ("paced5k-p99-ms").
	pacedRates := []struct {
		name string
		rate float64
	}{{"1k", 1_000}, {"5k", 5_000}, {"10k", 10_000}, {"20k", 20_000}}
	b.Cleanup(broker.TuneGC())
	st := brokertest.Start(b, brokertest.Options{TLS: true, Tenants: []string{"acme"}})
	cl := dial(b, st.BrokerAddr, st.ClientTLS(b, "order-forwarder"))
	health := healthpb.NewHealthClient(cl.Conn())
	ctx := context.Background()
	if _, err := cl.Token(ctx, "acme"); err != nil {
		b.Fatal(err)
	}

	// rounds alternates the two kinds of call, so that a change in the
	// shared machine's load falls on both alike; the loads take turns in
	// each round, so it falls on every load too.
	const rounds = 4
	// pacedRound is how long a round at rate offers calls: at least 200
	// ms, and at least 500 calls, so that the p99 of the lowest load is
	// still the 20th slowest of its 2,000 calls of each kind.
	pacedRound := func(rate float64) time.Duration {
		return max(200*time.Millisecond, time.Duration(500/rate*float64(time.Second)))
	}
	type pacedTally struct {
		lat     []time.Duration
		elapsed time.Duration
		cpu     time.Duration
		gcs     uint64
		// gcCalls are the calls during which a collection ended;
		// wakeLate, how late the callers woke for their calls (a call is
		// timed from when its caller woke, or from its appointed time
		// when the call before held it up).
		gcCalls  int
		wakeLate []time.Duration
	}
	type tally struct {
		lat            []time.Duration
		elapsed        time.Duration
		calls, mallocs uint64
		bytes          uint64
		// half is the load at half saturation; fixed, pacedRates' in order.
		half  pacedTally
		fixed []pacedTally
	}
	gcCycles := func(s []metrics.Sample) uint64 { metrics.Read(s); return s[0].Value.Uint64() }
	gcSample := func() []metrics.Sample { return []metrics.Sample{{Name: "/gc/cycles/total:gc-cycles"}} }
	// run has each caller make n calls, or, when sched is not nil, its
	// calls at the times sched(i) gives one after the other (false: the
	// caller is done); then it also counts the calls during which a
	// garbage collection ended (reading the count costs 70 ns, no
	// allocation) and returns how late each sleeping caller woke.
	run := func(call func() error, n int, sched func(i int) func() (time.Time, bool)) (all []time.Duration, gcCalls int, late []time.Duration) {
		lat := make([][]time.Duration, callers)
		woke := make([][]time.Duration, callers)
		var spanned atomic.Int64
		var wg sync.WaitGroup
		for i := range callers {
			wg.Add(1)
			go func(i int) {
				defer wg.Done()
				lat[i] = make([]time.Duration, 0, n)
				var at func() (time.Time, bool)
				if sched != nil {
					at = sched(i)
				}
				gs := gcSample()
				var gc0 uint64
				for k := 0; ; k++ {
					t0 := time.Now()
					if at != nil {
						due, ok := at()
						if !ok {
							return
						}
						if wait := time.Until(due); wait > 0 {
							time.Sleep(wait) // pacing, not waiting for a condition
							t0 = time.Now()
							woke[i] = append(woke[i], t0.Sub(due))
						} else {
							t0 = due // held up by the call before
						}
					} else if k == n {
						return
					}
					if at != nil {
						gc0 = gcCycles(gs)
					}
					if err := call(); err != nil {
						b.Error(err)
						return
					}
					d := time.Since(t0)
					lat[i] = append(lat[i], d)
					if at != nil && gcCycles(gs) != gc0 {
						spanned.Add(1)
					}
				}
			}(i)
		}
		testkit.Wait(b, &wg, 5*time.Minute, "the callers of a round")
		return slices.Concat(lat...), int(spanned.Load()), slices.Concat(woke...)
	}
	saturated := func(t *tally, call func() error) {
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		start := time.Now()
		lat, _, _ := run(call, perCaller/rounds, nil)
		t.elapsed += time.Since(start)
		runtime.ReadMemStats(&after)
		t.mallocs += after.Mallocs - before.Mallocs
		t.bytes += after.TotalAlloc - before.TotalAlloc
		t.calls += uint64(len(lat))
		t.lat = append(t.lat, lat...)
	}
	gcs := gcSample()
	paced := func(t *pacedTally, call func() error, rate float64, seed uint64) {
		interval := float64(time.Second) * callers / rate // each caller's mean gap
		start := time.Now().Add(10 * time.Millisecond)
		end := start.Add(pacedRound(rate))
		gc0, cpu0 := gcCycles(gcs), testkit.CPUTime(b)
		all, gcCalls, late := run(call, 0, func(i int) func() (time.Time, bool) {
			// Seeded by caller, round and load: both kinds get the same arrivals.
			rng := rand.New(rand.NewPCG(uint64(i), seed))
			due := start
			return func() (time.Time, bool) {
				due = due.Add(time.Duration(rng.ExpFloat64() * interval))
				return due, due.Before(end)
			}
		})
		t.lat = append(t.lat, all...)
		t.gcCalls += gcCalls
		t.wakeLate = append(t.wakeLate, late...)
		t.elapsed += time.Since(start)
		t.cpu += testkit.CPUTime(b) - cpu0
		t.gcs += gcCycles(gcs) - gc0
	}
	p := func(lat []time.Duration, q int) float64 {
		slices.Sort(lat)
		return float64(lat[len(lat)*q/100].Microseconds()) / 1000
	}
	report := func(t *tally, prefix string, rate float64) {
		b.ReportMetric(float64(len(t.lat))/t.elapsed.Seconds(), prefix+"calls/s")
		b.ReportMetric(p(t.lat, 50), prefix+"p50-ms")
		b.ReportMetric(p(t.lat, 99), prefix+"p99-ms")
		if prefix == "" {
			b.ReportMetric(rate, "paced-calls/s") // the same for both
		}
		h := &t.half
		b.ReportMetric(p(h.lat, 50), prefix+"paced-p50-ms")
		b.ReportMetric(p(h.lat, 99), prefix+"paced-p99-ms")
		b.ReportMetric(100*h.cpu.Seconds()/h.elapsed.Seconds()/float64(runtime.GOMAXPROCS(0)), prefix+"paced-cpu-%")
		b.ReportMetric(float64(h.gcs)/h.elapsed.Seconds(), prefix+"paced-gc/s")
		b.ReportMetric(100*float64(h.gcCalls)/float64(len(h.lat)), prefix+"paced-gc-calls-%")
		b.ReportMetric(p(h.wakeLate, 99), prefix+"paced-wake-p99-ms")
		for k, r := range pacedRates {
			f := &t.fixed[k]
			b.ReportMetric(p(f.lat, 50), prefix+"paced"+r.name+"-p50-ms")
			b.ReportMetric(p(f.lat, 99), prefix+"paced"+r.name+"-p99-ms")
			b.ReportMetric(p(f.wakeLate, 99), prefix+"paced"+r.name+"-wake-p99-ms")
		}
		b.ReportMetric(float64(t.mallocs)/float64(t.calls), prefix+"allocs/call")
		b.ReportMetric(float64(t.bytes)/float64(t.calls), prefix+"B/call")
	}
	healthCheck := func() error { _, err := health.Check(ctx, &healthpb.HealthCheckRequest{}); return err }
	getToken := func() error { _, err := cl.Token(ctx, "acme"); return err }

	b.ResetTimer()
	for range b.N {
		base := tally{fixed: make([]pacedTally, len(pacedRates))}
		tok := tally{fixed: make([]pacedTally, len(pacedRates))}
		// Each kind goes first in every other round: what a round leaves
		// behind (garbage to collect, goroutines to park) falls on both.
		both := func(r int, measure func(*tally, func() error)) {
			if r%2 == 0 {
				measure(&base, healthCheck)
				measure(&tok, getToken)
			} else {
				measure(&tok, getToken)
				measure(&base, healthCheck)
			}
		}
		for r := range rounds {
			both(r, saturated)
		}
		rate := min(float64(len(base.lat))/base.elapsed.Seconds(), float64(len(tok.lat))/tok.elapsed.Seconds()) / 2
		for r := range rounds {
			for k, fr := range pacedRates {
				both(r, func(t *tally, call func() error) { paced(&t.fixed[k], call, fr.rate, uint64(r*16+k)) })
			}
			both(r, func(t *tally, call func() error) { paced(&t.half, call, rate, uint64(r*16+len(pacedRates))) })
		}
		report(&tok, "", rate)
		report(&base, "baseline-", rate)
	}
}
