package order

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"
	"time"
)

// lifetimes draws n order lives: processed a minute after acceptance,
// invoiced 10 minutes to 2 days later and handed to the carrier 30 minutes
// to 3 days after that, each log-uniform (most orders move within hours, a
// few take days). Seeded, so every run measures the same lives.
func lifetimes(n int) [][]time.Duration {
	r := rand.New(rand.NewPCG(6, 6))
	logUniform := func(lo, hi time.Duration) time.Duration {
		return time.Duration(math.Exp(math.Log(float64(lo)) + r.Float64()*(math.Log(float64(hi))-math.Log(float64(lo)))))
	}
	out := make([][]time.Duration, n)
	for i := range out {
		invoiced := time.Minute + logUniform(10*time.Minute, 48*time.Hour)
		shipped := invoiced + logUniform(30*time.Minute, 72*time.Hour)
		out[i] = []time.Duration{time.Minute, invoiced, shipped}
	}
	return out
}

// BenchmarkCallsPerOrder counts the Hiper calls the default schedule makes
// over each order's life (until its shipping is seen), beside polling
// every open order every 30 s for the same lives.
func BenchmarkCallsPerOrder(b *testing.B) {
	s := Schedule{}.WithDefaults()
	lives := lifetimes(10000)
	const naive = 30 * time.Second
	var calls, baseline float64
	for b.Loop() {
		calls, baseline = 0, 0
		for _, l := range lives {
			calls += float64(s.Calls(l))
			baseline += math.Ceil(float64(l[len(l)-1]) / float64(naive))
		}
	}
	b.ReportMetric(calls/float64(len(lives)), "calls/order")
	b.ReportMetric(baseline/float64(len(lives)), "baseline-calls/order")
}

// BenchmarkScheduleLatency simulates the default schedule, jitter
// included, over the population of the watcher's BenchmarkInvoiceLatency —
// 10,000 open orders whose last change is spread over 3 days, in steady
// state — for one hour, during which 3,000 of them are invoiced at random
// moments. It reports how long each invoice waits for the poll that sees
// it (the schedule's share of the delay: no network, queue or alignment)
// and the calls a second, beside polling every open order every 30 s. The
// figures depend on the schedule alone, not on the machine.
func BenchmarkScheduleLatency(b *testing.B) {
	const (
		orders   = 10_000
		invoiced = 3_000
		spread   = 72 * time.Hour
		window   = time.Hour
		naive    = 30 * time.Second
	)
	s := Schedule{}.WithDefaults()
	var waits []time.Duration
	var calls int
	for b.Loop() {
		r := rand.New(rand.NewPCG(17, 17))
		waits, calls = waits[:0], 0
		invoiceAt := make([]time.Duration, orders)
		for i := range invoiceAt {
			invoiceAt[i] = -1
		}
		for _, i := range r.Perm(orders)[:invoiced] {
			invoiceAt[i] = time.Duration(r.Int64N(int64(window)))
		}
		for i := range orders {
			changed := -time.Duration(r.Int64N(int64(spread)))
			// Steady state: the next poll falls anywhere in the current interval.
			t := time.Duration(r.Int64N(int64(s.Interval(-changed))))
			seen := invoiceAt[i] < 0
			for ; t < window; t += s.Next(t - changed) {
				calls++
				if !seen && t >= invoiceAt[i] {
					waits = append(waits, t-invoiceAt[i])
					seen, changed = true, invoiceAt[i]
				}
			}
		}
	}
	slices.Sort(waits)
	pct := func(p float64) float64 { return waits[int(p*float64(len(waits)-1))].Seconds() }
	b.ReportMetric(pct(0.50), "p50-s")
	b.ReportMetric(pct(0.99), "p99-s")
	b.ReportMetric(float64(calls)/window.Seconds(), "calls/s")
	b.ReportMetric(orders/naive.Seconds(), "baseline-calls/s")
}
