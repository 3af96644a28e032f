package broker

import (
	"context"
	"sort"
	"sync"
	"testing"
	"time"
)

// BenchmarkGetToken measures GetToken over gRPC with 50 concurrent clients
// and a hot cache, beside the same-run baseline of a plain Redis GET from 50
// goroutines: the broker's whole path against one network round trip.
func BenchmarkGetToken(b *testing.B) {
	const clients, perClient = 50, 800
	c := newCluster(b, clusterOpts{replicas: 1})
	c.addColdTenant("acme")
	ctx := context.Background()
	if _, err := c.clients[0].Token(ctx, "acme"); err != nil {
		b.Fatal(err)
	}
	if err := c.rdb.Set(ctx, c.prefix+"bench", "x", time.Minute).Err(); err != nil {
		b.Fatal(err)
	}

	run := func(call func() error) (perSecond float64, p50, p99 time.Duration) {
		lat := make([][]time.Duration, clients)
		var wg sync.WaitGroup
		start := time.Now()
		for i := range clients {
			wg.Add(1)
			go func(i int) {
				defer wg.Done()
				lat[i] = make([]time.Duration, 0, perClient)
				for range perClient {
					t0 := time.Now()
					if err := call(); err != nil {
						b.Error(err)
						return
					}
					lat[i] = append(lat[i], time.Since(t0))
				}
			}(i)
		}
		wg.Wait()
		elapsed := time.Since(start)
		var all []time.Duration
		for _, l := range lat {
			all = append(all, l...)
		}
		sort.Slice(all, func(i, j int) bool { return all[i] < all[j] })
		return float64(len(all)) / elapsed.Seconds(), all[len(all)/2], all[len(all)*99/100]
	}

	b.ResetTimer()
	for range b.N {
		base, baseP50, baseP99 := run(func() error { return c.rdb.Get(ctx, c.prefix+"bench").Err() })
		rate, p50, p99 := run(func() error { _, err := c.clients[0].Token(ctx, "acme"); return err })
		b.ReportMetric(rate, "calls/s")
		b.ReportMetric(base, "baseline-calls/s")
		b.ReportMetric(float64(p50.Microseconds())/1000, "p50-ms")
		b.ReportMetric(float64(baseP50.Microseconds())/1000, "baseline-p50-ms")
		b.ReportMetric(float64(p99.Microseconds())/1000, "p99-ms")
		b.ReportMetric(float64(baseP99.Microseconds())/1000, "baseline-p99-ms")
	}
}
