package order

import (
	"math"
	"math/rand/v2"
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
